#!/usr/bin/env bash
# Crashes or boots host I of the test cluster made by up.sh DIR:
#   crash  kill -9 every process on the host (its slurmd, sshd, job steps and their workers), as
#          when a machine dies; the host's network stays, so the others see silence, not resets;
#   boot   start its daemons again (the lines up.sh ran for it, DIR/boot-nodeI.sh).
# Usage: cluster/testcluster/node.sh DIR I crash|boot
set -euo pipefail
dir="${1:?usage: node.sh DIR I crash|boot}"
i="${2:?usage: node.sh DIR I crash|boot}"
action="${3:?usage: node.sh DIR I crash|boot}"
[ -f "$dir/cluster.env" ] || { echo "testcluster/node.sh: $dir/cluster.env is missing: not a test cluster" >&2; exit 2; }
# shellcheck disable=SC1091
. "$dir/cluster.env"
case "$action" in
    crash)
        pids="$(ip netns pids "$PREFIX-h$i")"
        [ -z "$pids" ] || kill -9 $pids
        for _ in $(seq 1 50); do [ -z "$(ip netns pids "$PREFIX-h$i")" ] && break; sleep 0.1; done
        echo "node$i crashed (killed: $(echo $pids | wc -w) process(es))" ;;
    boot)
        [ -f "$dir/boot-node$i.sh" ] || { echo "testcluster/node.sh: no $dir/boot-node$i.sh" >&2; exit 2; }
        # Its daemons outlive this script, as they outlive up.sh.
        bash "$dir/boot-node$i.sh"
        echo "node$i booted" ;;
    *) echo "testcluster/node.sh: unknown action '$action' (crash or boot)" >&2; exit 2 ;;
esac
