#!/usr/bin/env bash
# Runs one training job as N worker processes on this machine: a coordinator on loopback and
# N `srdpr worker` processes, joined by a fresh random secret. Arguments after N are the training
# arguments of `srdpr train` (KEY=VALUE..., --config FILE).
#   cluster/launch-local.sh N [--threads T] [--port P] [--heartbeat-timeout S] KEY=VALUE...
# Environment: SRDPR_BIN (default: the release build of this checkout, else `srdpr` on PATH).
# Exit status: the coordinator's; every process is stopped when one fails or on Ctrl-C.
# (`srdpr train --workers N ...` does the same from the binary itself.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
n="${1:-}"
case "$n" in ''|*[!0-9]*) echo "launch-local.sh: the first argument must be the number of workers, got '${n}'" >&2
    echo "usage: cluster/launch-local.sh N [--threads T] [--port P] [--heartbeat-timeout S] KEY=VALUE..." >&2; exit 2 ;; esac
[ "$n" -ge 1 ] || { echo "launch-local.sh: N must be at least 1" >&2; exit 2; }
shift
threads="" port="" timeout_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --heartbeat-timeout) timeout_args=(--heartbeat-timeout "$2"); shift 2 ;;
        *) break ;;
    esac
done
bin="${SRDPR_BIN:-}"
if [ -z "$bin" ]; then
    if [ -x "$here/../.build/release/srdpr" ]; then bin="$here/../.build/release/srdpr"; else bin="$(command -v srdpr || true)"; fi
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "launch-local.sh: no srdpr binary (build with 'swift build -c release' or set SRDPR_BIN)" >&2; exit 2; }
# Split the cores among the workers (at least one thread each).
[ -n "$threads" ] || threads=$(( $(nproc) / n )); [ "$threads" -ge 1 ] || threads=1
# A port nobody listens on: random in 20000-59999, checked against the listening sockets.
if [ -z "$port" ]; then
    for _ in $(seq 1 50); do
        port=$(( 20000 + RANDOM % 40000 ))
        ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$port\$" || break
    done
fi
# A fresh secret per job, passed through the environment (not the command line, which `ps` shows).
export SRDPR_SECRET="${SRDPR_SECRET:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'cleanup; exit 130' INT TERM
"$bin" coordinator --world-size "$n" --bind "tcp://127.0.0.1:$port" "${timeout_args[@]}" "$@" &
coordinator=$!
pids+=("$coordinator")
for rank in $(seq 0 $((n - 1))); do
    "$bin" worker --rank "$rank" --coordinator "tcp://127.0.0.1:$port" --bind-host 127.0.0.1 --threads "$threads" \
        "${timeout_args[@]}" > >(sed -u "s/^/[rank $rank] /") 2>&1 &
    pids+=("$!")
done
status=0
wait "$coordinator" || status=$?
# Workers exit by themselves when the coordinator ends the job (or loses them); give them a moment.
for p in "${pids[@]:1}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
done
exit "$status"
