#!/usr/bin/env bash
# Runs the Collectives and Worker tests under AddressSanitizer and ThreadSanitizer (issue 8,
# part 5). Debug builds (sanitizers and -O do not mix well in SwiftPM), each in its own scratch
# directory (.build-asan, .build-tsan) so the normal .build is left alone. Not part of CI: a
# sanitizer build of the whole package takes minutes on 2 cores.
#   scripts/sanitize.sh [address|thread]... [-- extra swift test arguments]   (default: both)
# Env: FILTER (the test filter, default 'CollectivesTests|WorkerTests'; as a regular expression it
# also takes EndToEndTests.MultiWorkerTests: multi-process training through the Worker module).
# Every sanitized process writes its reports to its own file in $scratch/sanitizer-reports: the
# test runner and the sanitized `srdpr` processes the tests start, whose stderr the tests delete.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
export SRDPR_PYTHON="$PWD/.venv/bin/python"
kinds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do kinds+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#kinds[@]} -gt 0 ] || kinds=(address thread)
filter=${FILTER:-'CollectivesTests|WorkerTests'}
# Sanitizer reports stop the run; Swift's own crash handler would get in their way.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1}
# Leaks do not fail the test process (exitcode=0): XCTest itself leaks its test case objects
# once per process. The log is searched afterwards for leaks allocated from our Sources/.
export LSAN_OPTIONS=${LSAN_OPTIONS:-exitcode=0:suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
status=0
for kind in "${kinds[@]}"; do
    case "$kind" in address|thread) ;; *) echo "sanitize.sh: unknown sanitizer $kind (address, thread)" >&2; exit 2 ;; esac
    scratch=".build-${kind:0:1}san"
    echo "== $kind sanitizer: building in $scratch" >&2
    swift build --build-tests --sanitize="$kind" --scratch-path "$scratch" 2>&1 | grep -v "Cannot export local symbol" | tail -3 >&2
    log="$scratch/sanitize-tests.log"
    reports="$PWD/$scratch/sanitizer-reports"
    rm -rf "$reports"
    mkdir -p "$reports"
    case "$kind" in
        address) options="ASAN_OPTIONS=$ASAN_OPTIONS:log_path=$reports/asan" ;;
        thread) options="TSAN_OPTIONS=$TSAN_OPTIONS:log_path=$reports/tsan" ;;
    esac
    if env "$options" swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" --disable-swift-testing \
        --filter "$filter" "$@" > "$log" 2>&1; then
        echo "$kind: $(grep -E 'Executed [0-9]+ tests' "$log" | tail -1 | sed 's/^[[:space:]]*//')" >&2
    else
        status=1
        echo "$kind: FAILED (log: $log)" >&2
        grep -E "error:|failed" "$log" | head -20 >&2
    fi
    # Memory errors and data races in any process (leaks are sorted out below).
    # (/dev/null: grep and awk must not read stdin when no process wrote a report.)
    if grep -l -E "ERROR: AddressSanitizer|(WARNING|ERROR): ThreadSanitizer" /dev/null "$reports"/* >&2; then
        status=1
        echo "$kind: sanitizer reports in the files above" >&2
        grep -h -E "ERROR: AddressSanitizer|(WARNING|ERROR): ThreadSanitizer|SUMMARY" /dev/null "$reports"/* | head -20 >&2
    fi
    # Leak reports with a frame in our own sources (not only in XCTest, Foundation or tests).
    ours=$(awk -v src="$PWD/Sources/" '
        FNR == 1 { if (block ~ src) print block; block = "" }
        /^(Direct|Indirect) leak/ { if (block ~ src) print block; block = $0; next }
        /^$/ { if (block ~ src) print block; block = ""; next }
        block != "" { block = block "\n" $0 }
        END { if (block ~ src) print block }' /dev/null "$reports"/*)
    if [ -n "$ours" ]; then
        status=1
        echo "$kind: leaks allocated from Sources/ (reports: $reports):" >&2
        printf '%b\n' "$ours" | head -60 >&2
    fi
done
exit $status
