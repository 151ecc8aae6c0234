#!/usr/bin/env bash
# Runs one training job (or an index or embeddings, below) with mpirun starting the workers: the coordinator here, then
# `mpirun -n N --host H1,H2,...` runs the same `srdpr worker` command on every host; each worker
# takes its rank and the world size from mpirun's environment (OMPI_COMM_WORLD_RANK/SIZE; PMI_RANK/
# SIZE under MPICH's Hydra) and binds its ring port on the address it reaches the coordinator from
# (`--bind-host auto`). MPI only launches: the collectives stay srdpr's own.
#   cluster/launch-mpirun.sh --hosts H1,H2,... [--coordinator-host ADDR] [--port P] [--threads T]
#                            [--heartbeat-timeout S] KEY=VALUE...
# Or an index built across the hosts: `index` and the options of `srdpr index` (the coordinator,
# `srdpr index --bind --world-size N`, writes --output here; mpirun runs one identical
# `srdpr index-worker` per host, its rank from OMPI_COMM_WORLD_RANK, which encodes the shards it is
# handed from its own copy of the corpus and model):
#   cluster/launch-mpirun.sh --hosts H1,H2,... [--coordinator-host ADDR] [--port P] [--threads T] index --model M --corpus C --output DIR
# Or embeddings: `encode` and the options of `srdpr encode` (the coordinator writes --output and --ids
# here; the same index-workers embed the input lines, each from its host's copy of the input):
#   cluster/launch-mpirun.sh --hosts H1,H2,... [--threads T] encode --model M --input IN --output OUT.npy --format npy --ids IDS
# Every host needs the srdpr binary, the ByteDatasets and the model at the same paths, and mpirun's
# own way in (Open MPI: passwordless ssh; its options through OMPI_MCA_* variables, e.g.
# OMPI_MCA_plm_rsh_agent="ssh -F FILE"). Extra mpirun arguments: SRDPR_MPIRUN_ARGS (split on spaces).
# Environment: SRDPR_BIN (srdpr on the hosts, default `srdpr`), SRDPR_LOCAL_BIN (here),
# SRDPR_SECRET (default: a fresh random secret; mpirun exports it to the workers with -x).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
host_list="" coordinator_host="" port=29555 threads=1 timeout_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) host_list="$2"; shift 2 ;;
        --coordinator-host) coordinator_host="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --heartbeat-timeout) timeout_args=(--heartbeat-timeout "$2"); shift 2 ;;
        *) break ;;
    esac
done
[ -n "$host_list" ] || { echo "usage: cluster/launch-mpirun.sh --hosts H1,H2,... [--coordinator-host ADDR] [--port P] KEY=VALUE..." >&2; exit 2; }
command -v mpirun >/dev/null 2>&1 || { echo "launch-mpirun.sh: no mpirun on PATH (Debian: apt-get install openmpi-bin)" >&2; exit 2; }
IFS=, read -r -a hosts <<<"$host_list"
n=${#hosts[@]}
[ -n "$coordinator_host" ] || coordinator_host="$(hostname -f 2>/dev/null || hostname)"
remote_bin="${SRDPR_BIN:-srdpr}"
local_bin="${SRDPR_LOCAL_BIN:-}"
[ -n "$local_bin" ] || { [ -x "$here/../.build/release/srdpr" ] && local_bin="$here/../.build/release/srdpr" || local_bin="srdpr"; }
export SRDPR_SECRET="${SRDPR_SECRET:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"
read -r -a extra <<<"${SRDPR_MPIRUN_ARGS:-}"

mode=worker coordinator_command=(coordinator) worker_args=(--bind-host auto)
# An index-worker binds nothing (it only connects to the coordinator).
case "${1:-}" in index|encode|mine-hard-negatives) mode=index-worker coordinator_command=("$1") worker_args=(); shift ;; esac
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'cleanup; exit 130' INT TERM
"$local_bin" "${coordinator_command[@]}" --world-size "$n" --bind "tcp://0.0.0.0:$port" "${timeout_args[@]}" "$@" &
coordinator=$!
pids+=("$coordinator")
mpirun -n "$n" --host "$host_list" --tag-output -x SRDPR_SECRET "${extra[@]}" \
    "$remote_bin" "$mode" --coordinator "tcp://$coordinator_host:$port" "${worker_args[@]}" --threads "$threads" "${timeout_args[@]}" &
workers=$!
pids+=("$workers")
status=0
wait "$coordinator" || status=$?
worker_status=0
for _ in $(seq 1 100); do kill -0 "$workers" 2>/dev/null || break; sleep 0.1; done
kill "$workers" 2>/dev/null || true
wait "$workers" || worker_status=$?
[ "$status" -ne 0 ] || status=$worker_status
exit "$status"
