#!/usr/bin/env bash
# Runs a command on test host I made by up.sh: cluster/netns/run.sh I [--prefix P] COMMAND...
set -euo pipefail
i="${1:?usage: run.sh I [--prefix P] COMMAND...}"; shift
prefix=srdpr
if [ "${1:-}" = "--prefix" ]; then prefix="$2"; shift 2; fi
exec ip netns exec "$prefix-h$i" "$@"
