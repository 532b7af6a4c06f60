#!/usr/bin/env bash
# nanoGPT's CPU configuration on Tiny Shakespeare (character level, 90/10 split), here and in PyTorch,
# in one run: validation loss and wall time. Not a CI test. Both start from N(0, 0.02) weights
# (--initialisation normal; the PyTorch peer does not scale the residual projections either).
#   scripts/bench-shakespeare.sh [STEPS]      (PyTorch from $VENV, default .build/venv-bench; installed if missing)
# PRECISION=bf16 trains this project with bf16 matrix inputs (the AVX-512 BF16 kernel, or emulated without it:
# see README, "bf16 mixed precision");
# PEER=0 skips PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-2000}
DATA=${SHAKESPEARE:-data/tinyshakespeare.txt}
VENV=${VENV:-.build/venv-bench}
if [ -z "${BIN:-}" ]; then swift build -c release >/dev/null; BIN=$(swift build -c release --show-bin-path)/transformer; fi
PRECISION=${PRECISION:-fp32}
echo "== $(date -u +%FT%TZ) · $(nproc) cores · $STEPS steps · precision $PRECISION =="
rm -rf runs/shakespeare
start=$(date +%s.%N)
"$BIN" train --model gpt --data "$DATA" --tokenizer char --validation-fraction 0.1 \
  --d-model 128 --heads 4 --layers 4 --max-length 64 --batch-size 12 --steps "$STEPS" \
  --schedule cosine --lr 1e-3 --min-lr 1e-4 --warmup 100 --beta2 0.99 --adam-eps 1e-8 --weight-decay 0.1 --clip 1 --initialisation normal \
  --dropout 0 --label-smoothing 0 --eval-every "$STEPS" --checkpoint-every "$STEPS" --log-every 100 --output runs/shakespeare --precision "$PRECISION" 2>&1 | tail -4
end=$(date +%s.%N)
echo "swift: $(python3 -c "print(f'{$end - $start:.1f}')") s wall for the whole command (tokenizing, training, evaluation, checkpoint)"
[ "${PEER:-1}" = 0 ] && exit 0
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -c "import torch" 2>/dev/null || "$VENV/bin/pip" install -q torch
"$VENV/bin/python" scripts/bench_pytorch_gpt.py "$DATA" 2 "$STEPS"
echo "reproduce: scripts/bench-shakespeare.sh $STEPS"
