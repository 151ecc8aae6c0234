#!/usr/bin/env bash
# Runs every fuzz target one after the other (run.sh's defaults: 1,000,000 runs or 30 minutes
# each; extra arguments are passed on, e.g. -max_total_time=600) and prints one line per
# target: executions, exec/s, wall seconds, peak RSS and the findings in .build-fuzz/artifacts.
# Logs: .build-fuzz/logs/TARGET.log. Exit status 1 if any target found something.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
logs="$root/.build-fuzz/logs"
mkdir -p "$logs"
"$here/run.sh" list >/dev/null || exit 1  # builds once
found=0
printf '%-12s %12s %8s %8s %8s %s\n' target executions exec/s seconds rss_mb findings
for target in $(SRDPR_FUZZ_NO_BUILD=1 "$here/run.sh" list | awk '{print $1}'); do
    start=$(date +%s)
    SRDPR_FUZZ_NO_BUILD=1 "$here/run.sh" "$target" "$@" > "$logs/$target.log" 2>&1
    status=$?
    seconds=$(( $(date +%s) - start ))
    stat() { sed -n "s/^stat::$1: *//p" "$logs/$target.log" | tail -1; }
    artifacts=$(ls "$root/.build-fuzz/artifacts/$target" 2>/dev/null | wc -l)
    [ "$status" -ne 0 ] || [ "$artifacts" -ne 0 ] && found=1
    printf '%-12s %12s %8s %8s %8s %s\n' "$target" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "$seconds" "$(stat peak_rss_mb)" \
        "$([ "$artifacts" -eq 0 ] && [ "$status" -eq 0 ] && echo none || echo "exit $status, $artifacts file(s)")"
done
exit $found
