#!/usr/bin/env bash
# The explorer in a real browser (headless Chromium through Selenium): the live page of `transformer serve`
# and the static pages of `transformer walkthrough --format html`. Builds nothing.
#
#   scripts/browser-test.sh BIN [CHECKPOINT] [OUT]
#
# BIN: the transformer binary. CHECKPOINT: a GPT or encoder–decoder run folder; without one, a tiny GPT is
# trained for a few steps. OUT (default /tmp/browser-test): pages, traces, the screenshot explorer.png.
# Needs: chromium, chromium-driver (Debian), and Python with selenium (PYTHON, default python3).
set -euo pipefail
BIN=${1:?usage: scripts/browser-test.sh BIN [CHECKPOINT] [OUT]}
CKPT=${2:-}
OUT=${3:-/tmp/browser-test}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"

if [ -z "$CKPT" ]; then
  CKPT="$OUT/gpt"
  printf 'To be, or not to be, that is the question.\nROMEO: But soft, what light through yonder window breaks?\n%.0s' $(seq 100) > "$OUT/text.txt"
  rm -rf "$CKPT"
  "$BIN" train --model gpt --data "$OUT/text.txt" --tokenizer char --d-model 32 --heads 4 --layers 2 --max-length 32 \
    --batch-size 8 --steps 10 --schedule constant --lr 3e-3 --warmup 0 --dropout 0 --log-every 10 --output "$CKPT" > "$OUT/train.log"
fi

# Static pages and the same traces as JSON (the test checks every step of the JSON is on the page).
"$BIN" walkthrough --train --format html --output "$OUT/walkthrough.html"
"$BIN" walkthrough --train --format json --output "$OUT/walkthrough.json"
"$BIN" walkthrough --model gpt --format html --output "$OUT/gpt.html"
"$BIN" walkthrough --model gpt --format json --output "$OUT/gpt.json"
"$BIN" explain --checkpoint "$CKPT" --text "ROMEO:" --output "$OUT/explain.html"
"$BIN" explain --checkpoint "$CKPT" --text "ROMEO:" --format json --output "$OUT/explain.json"

"$PY" "$HERE/browser_test.py" --bin "$BIN" --checkpoint "$CKPT" --out "$OUT" \
  --static "$OUT/walkthrough.html:$OUT/walkthrough.json" "$OUT/gpt.html:$OUT/gpt.json" "$OUT/explain.html:$OUT/explain.json"
