#!/usr/bin/env bash
# Runs one libFuzzer target (README.md here).
#   Tests/Fuzz/run.sh TARGET [-runs=N] [-max_total_time=S] [other libFuzzer flags]   fuzz
#   Tests/Fuzz/run.sh TARGET FILE...                                              replay inputs once
#   Tests/Fuzz/run.sh list                                                        the targets
# Builds the harness first (release, -sanitize=fuzzer,address, in .build-fuzz/ of the checkout;
# SRDPR_FUZZ_NO_BUILD=1 skips it). The growing corpus is .build-fuzz/corpus/TARGET (not committed;
# the committed seeds in seeds/TARGET are read alongside it); findings go to
# .build-fuzz/artifacts/TARGET/. Default limits: 1,000,000 runs or 30 minutes, whichever comes
# first; 10 s per input (a hang), 2 GB RSS, 256 MB for any single allocation.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
scratch="$root/.build-fuzz"
target="${1:-}"
[ -n "$target" ] || { sed -n '2,10p' "$0" >&2; exit 2; }
shift

if [ "${SRDPR_FUZZ_NO_BUILD:-0}" != 1 ]; then
    # Not `--sanitize fuzzer --sanitize address`: SwiftPM emits those as two -sanitize= flags in
    # a random order and swiftc keeps the last, so a build got either coverage or ASan, never
    # both. `--sanitize fuzzer` alone (SwiftPM then links libFuzzer's main), and one combined
    # flag after it. ld.gold warns about every ASan helper symbol; those lines are dropped.
    swift build --package-path "$here" --scratch-path "$scratch" -c release \
        --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address 2>&1 | grep -v "Cannot export local symbol" >&2
fi
binary="$scratch/release/SRDPRFuzz"
# Without coverage counters libFuzzer degrades to blind random testing (and says so only in a
# warning); without ASan, out-of-bounds reads go unseen. Refuse a binary that lacks either.
sections=$(readelf -S "$binary" 2>/dev/null || true)
symbols=$(nm "$binary" 2>/dev/null || true)
if [[ "$sections" != *__sancov_cntrs* || "$symbols" != *__asan_init* ]]; then
    echo "run.sh: $binary lacks coverage or ASan instrumentation; rm -rf $scratch/release and run again" >&2
    exit 1
fi

export SWIFT_BACKTRACE=enable=no  # Swift's crash handler would get in ASan's way
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}"
if [ "$target" = list ]; then { SRDPR_FUZZ_TARGET= "$binary" -runs=0 2>&1 || true; } | sed "0,/known targets/d"; exit 0; fi
if [ ! -d "$here/seeds/$target" ]; then
    echo "run.sh: no seeds/$target; known targets:" >&2
    { SRDPR_FUZZ_TARGET= "$binary" -runs=0 2>&1 || true; } | sed "0,/known targets/d" >&2
    exit 2
fi
export SRDPR_FUZZ_TARGET="$target"
limits=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -max_len=65536)

for arg in "$@"; do
    if [[ "$arg" != -* ]]; then  # input files: run each once, no fuzzing
        exec "$binary" "${limits[@]}" "$@"
    fi
done
corpus="$scratch/corpus/$target"
artifacts="$scratch/artifacts/$target"
mkdir -p "$corpus" "$artifacts"
# Later flags win, so the caller's -runs / -max_total_time override these defaults.
exec "$binary" "${limits[@]}" -runs=1000000 -max_total_time=1800 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" "$corpus" "$here/seeds/$target"
