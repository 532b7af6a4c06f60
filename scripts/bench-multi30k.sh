#!/usr/bin/env bash
# Trains a small encoder–decoder on Multi30k German→English on this machine and reports BLEU on
# test2016 (sacreBLEU's default computation) with the wall time. Not a CI test.
#
#   scripts/bench-multi30k.sh [MINUTES] [extra `transformer train` options…]
#
# Data: $MULTI30K, a folder with Multi30k's train/val/test files (the multi30k/dataset repository on
# GitHub, data/task1/raw). Output: runs/multi30k (or $RUN).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-60}; shift || true
DATA=${MULTI30K:?set MULTI30K to a folder with Multi30k (the multi30k/dataset repository on GitHub, data/task1/raw)}
RUN=${RUN:-runs/multi30k}
if [ -z "${BIN:-}" ]; then
  swift build -c release >/dev/null
  BIN=$(swift build -c release --show-bin-path)/transformer
fi
echo "== $(date -u +%FT%TZ) · $(nproc) cores · $MINUTES min budget =="
start=$(date +%s)
"$BIN" train \
  --source-file "$DATA/train.de.gz" --target-file "$DATA/train.en.gz" \
  --valid-source "$DATA/val.de.gz" --valid-target "$DATA/val.en.gz" \
  --tokenizer bpe --vocab-size 8000 \
  --d-model 256 --heads 8 --d-ff 1024 --layers 3 --max-length 64 \
  --batch-size 128 --max-tokens 6000 --epochs 100 --time-limit "$MINUTES" \
  --schedule noam --lr 1 --warmup 1000 --label-smoothing 0.1 --dropout 0.1 \
  --eval-every 500 --checkpoint-every 1000 --log-every 50 --output "$RUN" "$@"
train_end=$(date +%s)
"$BIN" evaluate --model "$RUN" --source-file "$DATA/test_2016_flickr.de.gz" --target-file "$DATA/test_2016_flickr.en.gz" \
  --beam 4 --hypotheses "$RUN/test2016.hyp.en" | tee "$RUN/test2016.bleu.txt"
end=$(date +%s)
echo "training wall time: $(( (train_end - start) / 60 )) min $(( (train_end - start) % 60 )) s; evaluation $(( end - train_end )) s"
echo "reproduce: scripts/bench-multi30k.sh $MINUTES $*"
