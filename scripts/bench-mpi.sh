#!/usr/bin/env bash
# Data-parallel overhead on this machine: step time, tokens/s and the gradient all-reduce's share of
# the step, with 1 rank and with 2 ranks, for three configs (through `transformer train`, so the
# figures include everything a real step does: shard, forward, backward, all-reduce, clipping, AdamW).
# On one machine the ranks share its cores (each rank gets cores ÷ ranks threads), so the point is the
# overhead, not a speed-up.
#
#   scripts/bench-mpi.sh BIN [STEPS]     # BIN built with --traits MPI; STEPS per run (default 12)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:?usage: scripts/bench-mpi.sh path/to/transformer [steps]}
STEPS=${2:-12}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
SHAKESPEARE=${SHAKESPEARE:-data/tinyshakespeare.txt}
MULTI30K=${MULTI30K:?set MULTI30K to a folder with Multi30k (the multi30k/dataset repository on GitHub, data/task1/raw)}
T=$(mktemp -d /tmp/bench-mpi.XXXXXX)
trap 'rm -rf "$T"' EXIT
COMMON=(--steps "$STEPS" --eval-every 100000 --checkpoint-every 100000 --log-every 100000 --schedule constant --lr 1e-4 --warmup 0 --dropout 0)
run() {  # name, ranks, train options…
    local name=$1 np=$2; shift 2
    rm -rf "$T/run"
    mpirun --oversubscribe -np "$np" "$BIN" train "$@" "${COMMON[@]}" --output "$T/run" 2> "$T/log" || { cat "$T/log"; exit 1; }
    echo "$name · $(grep '^data parallel: [0-9]* rank.* steps' "$T/log")"
}
echo "== $(date -u +%FT%TZ) · $(nproc) cores · load $(cut -d' ' -f1-3 /proc/loadavg) · $STEPS steps per run (the first included) =="
for np in 1 2; do
    run "GPT tiny (nanoGPT Shakespeare: 4 layers, 128 wide, context 64, batch 12)" $np \
        --model gpt --data "$SHAKESPEARE" --tokenizer char --d-model 128 --heads 4 --layers 4 --max-length 64 --batch-size 12
    run "GPT small (bench gpt-small: 6 layers, 384 wide, context 256, batch 16)" $np \
        --model gpt --data "$SHAKESPEARE" --tokenizer char --d-model 384 --heads 6 --layers 6 --max-length 256 --batch-size 16
    run "encoder–decoder (Multi30k de→en, BPE 8000, d 256, 3+3 layers, ≤128 pairs / 6000 tokens)" $np \
        --source-file "$MULTI30K/train.de.gz" --target-file "$MULTI30K/train.en.gz" --tokenizer bpe --vocab-size 8000 \
        --d-model 256 --heads 8 --d-ff 1024 --layers 3 --max-length 64 --batch-size 128 --max-tokens 6000
done
