#!/usr/bin/env bash
# Runs the test suite under AddressSanitizer and/or ThreadSanitizer (README: Reliability → Sanitizers).
#
#   scripts/sanitize.sh address|thread|all|quick [extra `swift test` arguments, e.g. --filter GemmTests]
#
# `all` (what .ci/run does): both, the whole suite. `quick`: ASan on the whole suite, TSan on the
# concurrency tests only ($concurrency below: the thread pool, GEMM and the parallel kernels with 2+
# threads, data-parallel ranks, the server).
#
# Each sanitizer builds in its own folder (.build-asan, .build-tsan), so it never invalidates the
# ordinary .build. The full log goes to <folder>/sanitize-test.log. Prints a summary per sanitizer and
# exits non-zero if a test failed, the run did not finish, or the sanitizer reported anything.
#
# ASan: leak detection on (LeakSanitizer is part of the ASan runtime Swift ships); leaks count as findings.
# TSan: halt_on_error=1, so the first race stops the run with a report.
# Suppression files (scripts/sanitizers/*.supp) hold only reports shown not to come from our code, each
# with its reason. TSan skips the tests in scripts/sanitizers/tsan-skip.txt (slow, single-threaded
# numerics; see the reasons there) unless SANITIZE_TSAN_SKIP=none.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
here=$(pwd)

usage() { echo "usage: $0 address|thread|all|quick [swift test arguments]" >&2; exit 2; }
[ $# -ge 1 ] || usage
mode=$1; shift
case "$mode" in address|thread) modes=("$mode") ;; all|quick) modes=(address thread) ;; *) usage ;; esac

# The suites that run code on more than one thread.
concurrency="ThreadPoolTests|GemmTests|ParallelAttentionTests|FastAttentionTests|CachedAttentionTests|RowKernelTests|KernelGradientTests|KernelTests|DataParallelTests|ExplorerServerTests"

symbolizer=$(command -v llvm-symbolizer || true)

run_one() {
  local sanitizer=$1; shift
  local scratch log short
  case "$sanitizer" in
    address) scratch=.build-asan; short=ASan ;;
    thread) scratch=.build-tsan; short=TSan ;;
  esac
  mkdir -p "$scratch"
  log="$scratch/sanitize-test.log"
  local extra=()
  if [ "$sanitizer" = thread ] && [ "${SANITIZE_TSAN_SKIP:-}" != none ]; then
    # One regular expression from the non-comment lines of tsan-skip.txt.
    local skip
    skip=$(grep -v '^[[:space:]]*#' scripts/sanitizers/tsan-skip.txt | sed 's/[[:space:]]*#.*//' | grep -v '^[[:space:]]*$' | paste -sd'|' -)
    [ -n "$skip" ] && extra=(--skip "$skip")
  fi
  echo "== $short: swift test --sanitize=$sanitizer --scratch-path $scratch ${extra[*]} $* (log: $log) =="
  local start=$SECONDS status
  # Build first (timed separately), then test.
  swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" > "$scratch/sanitize-build.log" 2>&1
  status=$?
  local built=$SECONDS
  if [ $status -ne 0 ]; then
    tail -n 40 "$scratch/sanitize-build.log"
    echo "$short: BUILD FAILED (log: $scratch/sanitize-build.log)"
    return 1
  fi
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=0:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
  LSAN_OPTIONS="suppressions=$here/scripts/sanitizers/lsan.supp:print_suppressions=1${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$here/scripts/sanitizers/tsan.supp:print_suppressions=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}" \
  ASAN_SYMBOLIZER_PATH="$symbolizer" TSAN_SYMBOLIZER_PATH="$symbolizer" \
    swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "${extra[@]}" "$@" > "$log" 2>&1
  status=$?
  local finished=$SECONDS

  # Swift Testing's lines: "<symbol> Test name() passed after …", "… failed after …", "… skipped.",
  # and one "Test run with N tests in M suites passed|failed after …" per runner invocation.
  local total passed failed skipped reports
  total=$(grep -aE "Test run with [0-9]+ tests?" "$log" | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' | awk '{s+=$1} END {print s+0}')
  # Bytes, not characters (LC_ALL=C below): a symbol like ✔ is 3 bytes.
  passed=$(LC_ALL=C grep -aE "^.{1,6}Test [^ ].* passed after" "$log" | grep -avc "Test run with")
  failed=$(LC_ALL=C grep -aE "^.{1,6}Test [^ ].* failed after" "$log" | grep -avc "Test run with")
  skipped=$(LC_ALL=C grep -acE "^.{1,6}Test [^ ].* skipped" "$log")
  # One "ERROR: …Sanitizer" / "WARNING: ThreadSanitizer" header per report (each also has a SUMMARY line).
  reports=$(grep -acE "ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer" "$log")
  local xctest
  xctest=$(grep -aE "Executed [0-9]+ tests?" "$log" | tail -n 1 | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
  local ok=1
  grep -aqE "Test run with [0-9]+ tests? .*passed" "$log" || ok=0
  [ "$status" -eq 0 ] || ok=0
  [ "$failed" -eq 0 ] || ok=0
  [ "$reports" -eq 0 ] || ok=0

  if [ "$reports" -ne 0 ]; then
    echo "--- $short reports (first 80 lines; full log $log) ---"
    grep -anE -A 30 "ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer" "$log" | head -n 80
  elif [ $ok -eq 0 ]; then
    # The tail, then the failing tests and what they recorded (✘ lines and the expectation text after
    # them) last, where a truncated CI log still shows them.
    echo "--- last 30 lines of $log ---"
    tail -n 30 "$log"
    echo "--- failures in $log (first 80 lines) ---"
    grep -anE -A 6 "✘|recorded an issue|Fatal error|error:" "$log" | grep -av "known issue" | head -n 80
  fi
  printf '%s summary: %s tests run (Swift Testing), %s passed, %s failed, %s skipped; XCTest %s; sanitizer reports: %s; exit %s; build %ds, tests %ds\n' \
    "$short" "$total" "$passed" "$failed" "$skipped" "${xctest:-0}" "$reports" "$status" $((built - start)) $((finished - built))
  if [ $ok -eq 1 ]; then echo "$short: CLEAN"; return 0; fi
  echo "$short: NOT CLEAN"
  return 1
}

result=0
for m in "${modes[@]}"; do
  if [ "$mode" = quick ] && [ "$m" = thread ]; then
    run_one thread --filter "$concurrency" "$@" || result=1
  else
    run_one "$m" "$@" || result=1
  fi
done
exit $result
