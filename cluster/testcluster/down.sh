#!/usr/bin/env bash
# Stops the test cluster made by up.sh DIR: every process in its hosts (slurmctld, slurmd, job
# steps, sshd and what they started), munged, then removes the hosts and DIR.
# Usage: cluster/testcluster/down.sh DIR [--keep-logs]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:?usage: down.sh DIR [--keep-logs]}"
[ -f "$dir/cluster.env" ] || { echo "testcluster/down.sh: $dir/cluster.env is missing: not a test cluster" >&2; exit 2; }
# shellcheck disable=SC1091
. "$dir/cluster.env"
# The netns harness kills everything left inside the hosts, then removes them.
"$here/../netns/down.sh" --prefix "$PREFIX"
for pidfile in "$dir"/munge/munged.out.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
done
[ "${2:-}" = "--keep-logs" ] || rm -rf "$dir"
exit 0
