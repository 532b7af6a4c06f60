#!/usr/bin/env bash
# Data-parallel training over MPI gives the same model as one process.
#
#   scripts/mpi-test.sh BIN [PLAIN_BIN]   # BIN built with `--traits MPI`; PLAIN_BIN (optional) without it
#
# Trains a small GPT (2 and 3 ranks) and a small encoder–decoder (2 ranks) with `mpirun --oversubscribe`
# and with one process on the same global batch, and compares the loss curves and the final weights
# (scripts/compare_runs.swift). Then: resuming with a different number of ranks continues the same
# curve; ranks started with different options or data refuse to train; a NaN on one rank makes every
# rank skip that step (or stops the job, naming it); a rank killed mid-run stops the job with a
# message and leaves the last checkpoint loadable. Skips (exit 0) when mpirun is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:?usage: scripts/mpi-test.sh path/to/transformer (built with --traits MPI)}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
if ! command -v mpirun > /dev/null; then
    echo "SKIP: mpirun not found (install openmpi-bin and libopenmpi-dev, build with --traits MPI)"; exit 0
fi
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
MPIRUN=(mpirun --oversubscribe)
COMPARE=(swift scripts/compare_runs.swift)
T=$(mktemp -d /tmp/mpi-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
head -c 20000 data/tinyshakespeare.txt > "$T/text.txt"

# AdamW's ε is 1e-6 rather than 1e-9: the K bias of attention has a gradient of exactly zero in exact
# arithmetic (softmax ignores a constant added to every score), so in floating point it is rounding
# noise of ~1e-9, which ε 1e-9 would turn into full-size steps of random sign in one run and the other.
GPT=(train --model gpt --adam-eps 1e-6 --data "$T/text.txt" --tokenizer char --d-model 32 --heads 4 --layers 2 --max-length 32
     --batch-size 8 --schedule constant --lr 3e-3 --warmup 0 --dropout 0 --log-every 5 --eval-every 5)
S2S=(train --tokenizer char --d-model 32 --heads 4 --d-ff 64 --layers 2 --max-length 16 --batch-size 8
     --schedule constant --lr 3e-3 --warmup 0 --dropout 0 --label-smoothing 0.1 --log-every 5)

echo "== GPT: 1 process, 2 ranks, 3 ranks (shards of 4+4 and 2+3+3 windows), 10 steps =="
"$BIN" "${GPT[@]}" --steps 10 --output "$T/gpt1" 2> "$T/gpt1.log"
"${MPIRUN[@]}" -np 2 "$BIN" "${GPT[@]}" --steps 10 --output "$T/gpt2" 2> "$T/gpt2.log"
grep "data parallel" "$T/gpt2.log"
"${COMPARE[@]}" "$T/gpt1" "$T/gpt2"
"${MPIRUN[@]}" -np 3 "$BIN" "${GPT[@]}" --steps 10 --output "$T/gpt3" 2> "$T/gpt3.log"
"${COMPARE[@]}" "$T/gpt1" "$T/gpt3"

echo "== encoder–decoder (the toy corpus, batches of ≤8 pairs split by sentence): 1 process and 2 ranks, 10 steps =="
"$BIN" "${S2S[@]}" --steps 10 --output "$T/s2s1" 2> "$T/s2s1.log"
"${MPIRUN[@]}" -np 2 "$BIN" "${S2S[@]}" --steps 10 --output "$T/s2s2" 2> "$T/s2s2.log"
"${COMPARE[@]}" "$T/s2s1" "$T/s2s2"

echo "== resume across rank counts: 2 ranks to step 4, 1 process to step 7, 2 ranks to step 10 =="
"${MPIRUN[@]}" -np 2 "$BIN" "${GPT[@]}" --steps 4 --output "$T/gptr" 2> "$T/r1.log"
"$BIN" "${GPT[@]}" --steps 7 --output "$T/gptr" --resume 2> "$T/r2.log"
"${MPIRUN[@]}" -np 2 "$BIN" "${GPT[@]}" --steps 10 --output "$T/gptr" --resume 2> "$T/r3.log"
grep -h "resuming" "$T/r2.log" "$T/r3.log"
"${COMPARE[@]}" "$T/gpt1" "$T/gptr"

echo "== ranks started differently refuse to train =="
# $0 is the binary; rank 1 gets another learning rate, then another text.
if "${MPIRUN[@]}" -np 2 bash -c '"$0" "$@" --lr $([ "$OMPI_COMM_WORLD_RANK" = 1 ] && echo 1e-3 || echo 3e-3) --steps 3 --output '"$T/bad1" \
    "$BIN" "${GPT[@]}" > "$T/bad1.log" 2>&1; then echo "expected a failure"; exit 1; fi
grep -m1 "error (rank" "$T/bad1.log"
grep -q "rank 1: options" "$T/bad1.log"
head -c 15000 "$T/text.txt" > "$T/other.txt"
if "${MPIRUN[@]}" -np 2 bash -c 'd=$1; [ "$OMPI_COMM_WORLD_RANK" = 1 ] && d=$2; shift 2; "$0" "$@" --data "$d" --steps 3 --output '"$T/bad2" \
    "$BIN" "$T/text.txt" "$T/other.txt" "${GPT[@]}" > "$T/bad2.log" 2>&1; then echo "expected a failure"; exit 1; fi
grep -m1 "error (rank" "$T/bad2.log"
grep -q "rank 1: .*training data" "$T/bad2.log"

echo "== a NaN on rank 0 only: every rank skips the same step (as one process does), or the job stops naming it =="
# The fault hook poisons one gradient value on rank 0 at step 3; the all-reduce carries it to every rank.
FAULT=(-x TRANSFORMER_FAULT_NAN_STEP=3 -x TRANSFORMER_FAULT_NAN_PARAM=h.1.mlp.c_fc.weight)
TRANSFORMER_FAULT_NAN_STEP=3 TRANSFORMER_FAULT_NAN_PARAM=h.1.mlp.c_fc.weight \
    "$BIN" "${GPT[@]}" --steps 6 --on-non-finite skip --output "$T/nan1" 2> "$T/nan1.log"
"${MPIRUN[@]}" "${FAULT[@]}" -np 2 "$BIN" "${GPT[@]}" --steps 6 --on-non-finite skip --output "$T/nan2" 2> "$T/nan2.log"
grep -m1 "step 3: gradient of h.1.mlp.c_fc.weight" "$T/nan2.log"
tr -d ' \n' < "$T/nan2/$(cat "$T/nan2/latest")/state.json" > "$T/nan2-state.txt"
grep -q '"skippedSteps":\[3\]' "$T/nan2-state.txt" || { echo "the 2-rank run did not record step 3 as its one skipped step"; exit 1; }
"${COMPARE[@]}" "$T/nan1" "$T/nan2"
if "${MPIRUN[@]}" "${FAULT[@]}" -np 2 "$BIN" "${GPT[@]}" --steps 6 --checkpoint-every 2 --output "$T/nan3" > "$T/nan3.log" 2>&1; then
    echo "expected the job to stop at the NaN"; exit 1
fi
grep -m1 "step 3: gradient of h.1.mlp.c_fc.weight .*stopped" "$T/nan3.log"
[ "$(cat "$T/nan3/latest")" = "checkpoints/step-0000002" ] || { echo "latest is $(cat "$T/nan3/latest"), expected step 2"; exit 1; }
"$BIN" generate --model "$T/nan3" --prompt "ROMEO:" --max-tokens 5 --seed 1 > /dev/null 2>&1
echo "stopped at step 3; latest is still step 2 and loads"

echo "== a rank killed mid-run: the job stops with a message, the last checkpoint stays loadable =="
"${MPIRUN[@]}" -np 2 bash -c 'echo $$ > '"$T"'/rank$OMPI_COMM_WORLD_RANK.pid; exec "$0" "$@"' \
    "$BIN" "${GPT[@]}" --steps 100000 --checkpoint-every 20 --output "$T/dead" > "$T/dead.log" 2>&1 &
JOB=$!
for _ in $(seq 600); do [ -f "$T/dead/latest" ] && [ -f "$T/rank1.pid" ] && break; sleep 0.1; done
[ -f "$T/dead/latest" ] || { echo "no checkpoint appeared"; cat "$T/dead.log"; kill "$JOB"; exit 1; }
sleep 0.5
kill -9 "$(cat "$T/rank1.pid")"
if wait "$JOB"; then echo "expected mpirun to fail"; exit 1; fi
grep -iE "rank 1 .*(signal|exited)" "$T/dead.log"
"$BIN" generate --model "$T/dead" --prompt "ROMEO:" --max-tokens 10 --seed 1 > /dev/null 2>&1
echo "checkpoint $(cat "$T/dead/latest") loads"
if [ -n "${2:-}" ]; then
    echo "== a build without the MPI trait, started by mpirun, says so =="
    if "${MPIRUN[@]}" -np 2 "$2" "${GPT[@]}" --steps 1 --output "$T/plain" > "$T/plain.log" 2>&1; then echo "expected a failure"; exit 1; fi
    grep -m1 "this build has no MPI" "$T/plain.log"
fi
echo "mpi-test: all passed"
