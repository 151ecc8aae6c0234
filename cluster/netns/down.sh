#!/usr/bin/env bash
# Removes the test hosts made by up.sh (every namespace named PREFIX-h* and PREFIX-sw).
# Usage: cluster/netns/down.sh [--prefix srdpr]
set -uo pipefail
prefix=srdpr
[ "${1:-}" = "--prefix" ] && prefix="$2"
for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-(h[0-9]+|sw)$"); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns"
done
exit 0
