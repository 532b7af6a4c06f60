#!/usr/bin/env bash
# Runs one libFuzzer target (or all) for a bounded time: scripts/fuzz.sh NAME SECONDS [libFuzzer options…]
#   NAME: safetensors gguf config-json trace-json tokenizer-char tokenizer-bpe tokenizer-wordpiece
#         tokenizer-gguf matrix chat-template worksheet, or all
# Builds Fuzz/ (release, -sanitize=fuzzer,address) into .build-fuzz if needed, fuzzes from a scratch
# copy of the committed seeds (Fuzz/Corpus/NAME; set FUZZ_MERGE=1 to merge new coverage back into it),
# writes crash/timeout/oom inputs to .build-fuzz/artifacts/NAME/, and prints
#   fuzz NAME: N executions in S s (E/s), C crashes
# Exits non-zero if any target found a crash, a hang (> 10 s per input) or an out-of-memory (a single
# allocation over 1 GB, or 2 GB resident). FUZZ_BIN=DIR skips the build; FUZZ_TAG=SUFFIX keeps logs and
# scratch corpora of concurrent runs apart.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
ALL="safetensors gguf config-json trace-json tokenizer-char tokenizer-bpe tokenizer-wordpiece tokenizer-gguf matrix chat-template worksheet"
NAME=${1:?usage: scripts/fuzz.sh NAME|all SECONDS [libFuzzer options]}
SECONDS_EACH=${2:?usage: scripts/fuzz.sh NAME|all SECONDS [libFuzzer options]}
shift 2
SCRATCH=.build-fuzz

product() {  # tokenizer-wordpiece → FuzzTokenizerWordPiece
  case "$1" in
    safetensors) echo FuzzSafetensors ;; gguf) echo FuzzGGUF ;; config-json) echo FuzzConfigJSON ;;
    trace-json) echo FuzzTraceJSON ;; tokenizer-char) echo FuzzTokenizerChar ;; tokenizer-bpe) echo FuzzTokenizerBPE ;;
    tokenizer-wordpiece) echo FuzzTokenizerWordPiece ;; tokenizer-gguf) echo FuzzTokenizerGGUF ;; matrix) echo FuzzMatrix ;;
    chat-template) echo FuzzChatTemplate ;; worksheet) echo FuzzWorksheet ;;
    *) echo "unknown fuzz target $1 (known: $ALL)" >&2; exit 2 ;;
  esac
}

if [ "$NAME" = all ]; then names=$ALL; else product "$NAME" > /dev/null; names=$NAME; fi

# One build for every target (incremental after the first). FUZZ_BIN=DIR runs binaries already built.
mkdir -p "$SCRATCH"
if [ -n "${FUZZ_BIN:-}" ]; then BIN=$FUZZ_BIN; else
swift build -c release --package-path Fuzz --scratch-path "$SCRATCH" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library > "$SCRATCH/build.log" 2>&1 ||
  { tail -40 "$SCRATCH/build.log"; echo "fuzz: the build failed (log: $SCRATCH/build.log)"; exit 1; }
BIN=$(cd "$SCRATCH/release" && pwd)
fi

# Swift's own crash backtracer would run under ASan after a trap and add noise; libFuzzer reports.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
failed=0
for n in $names; do
  exe="$BIN/$(product "$n")"
  work="$SCRATCH/work${FUZZ_TAG:-}/$n"; artifacts="$SCRATCH/artifacts/$n"
  rm -rf "$work"; mkdir -p "$work/corpus" "$artifacts"
  cp Fuzz/Corpus/"$n"/* "$work/corpus/"
  log="$SCRATCH/logs${FUZZ_TAG:-}/$n.log"; mkdir -p "$(dirname "$log")"
  rc=0; t0=$(date +%s)
  "$exe" "$work/corpus" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -max_len=65536 -artifact_prefix="$artifacts/" "$@" > "$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(( $(date +%s) - t0 ))
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=$(find "$artifacts" -type f -newer "$work" | wc -l)
    [ "$crashes" -gt 0 ] || crashes=1
    failed=1
    grep -E "^==[0-9]+==ERROR|fuzz property failed|Fatal error|SUMMARY|ALARM|out-of-memory|Test unit written" "$log" | head -8 || true
  fi
  rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
  echo "fuzz $n: ${execs:-0} executions in ${secs} s (${rate}/s), $crashes crashes (log: $log)"
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
    "$exe" -merge=1 Fuzz/Corpus/"$n" "$work/corpus" > "$SCRATCH/logs/$n.merge.log" 2>&1
  fi
done
exit $failed
