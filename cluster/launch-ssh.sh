#!/usr/bin/env bash
# Runs one training job on several machines over ssh: the coordinator here, one worker per line of
# HOSTFILE (line i is rank i). Every host needs the srdpr binary, the ByteDatasets and the model at
# the same paths as the training arguments name, and passwordless ssh from here.
#   cluster/launch-ssh.sh HOSTFILE [--coordinator-host ADDR] [--port P] [--threads T]
#                         [--heartbeat-timeout S] [--curve] KEY=VALUE...
# Or an index built across the hosts: `index` and the options of `srdpr index` (the coordinator,
# `srdpr index --bind --world-size N`, writes --output here; one `srdpr index-worker` per host
# encodes the shards it is handed from its own copy of the corpus and model):
#   cluster/launch-ssh.sh HOSTFILE [--coordinator-host ADDR] [--port P] [--threads T] index --model M --corpus C --output DIR
# Or embeddings: `encode` and the options of `srdpr encode` (written here; the same index-workers embed
# the input lines, each from its host's copy of the input):
#   cluster/launch-ssh.sh HOSTFILE [--threads T] encode --model M --input IN --output OUT.jsonl
# HOSTFILE: one worker per line, `SSH_HOST [BIND_ADDR]` (BIND_ADDR: the address the other workers
# reach it on, default: SSH_HOST); blank lines and `#` comments are skipped.
# Before anything starts, every host is asked over ssh for `srdpr --version`: a host that refuses
# ssh, lacks the binary or runs another version than this one is named and nothing is started.
# Environment: SRDPR_BIN (path of srdpr on the hosts, default `srdpr`), SRDPR_LOCAL_BIN (here),
# SRDPR_SSH_CONFIG (an ssh_config file, `ssh -F`), SRDPR_SECRET (default: a fresh random secret,
# sent to each host on ssh's stdin, never on a command line).
set -euo pipefail
hostfile="${1:-}"
[ -n "$hostfile" ] || { echo "usage: cluster/launch-ssh.sh HOSTFILE [--coordinator-host ADDR] [--port P] KEY=VALUE..." >&2; exit 2; }
[ -r "$hostfile" ] || { echo "launch-ssh.sh: cannot read the host file '$hostfile'" >&2; exit 2; }
shift
coordinator_host="" port=29555 threads="" extra=() worker_extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --coordinator-host) coordinator_host="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --heartbeat-timeout) extra+=(--heartbeat-timeout "$2"); worker_extra+=(--heartbeat-timeout "$2"); shift 2 ;;
        --curve) extra+=(--curve); worker_extra+=(--curve); shift ;;
        *) break ;;
    esac
done
hosts=() binds=()
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line="${line%%#*}"
    read -r host bind rest <<<"$line" || true
    [ -n "${host:-}" ] || continue
    [ -z "${rest:-}" ] || { echo "launch-ssh.sh: $hostfile line $lineno: expected 'SSH_HOST [BIND_ADDR]', got '$line'" >&2; exit 2; }
    hosts+=("$host"); binds+=("${bind:-$host}")
done < "$hostfile"
n=${#hosts[@]}
[ "$n" -ge 1 ] || { echo "launch-ssh.sh: $hostfile lists no hosts" >&2; exit 2; }
[ -n "$coordinator_host" ] || coordinator_host="$(hostname -f 2>/dev/null || hostname)"
remote_bin="${SRDPR_BIN:-srdpr}"
here="$(cd "$(dirname "$0")" && pwd)"
local_bin="${SRDPR_LOCAL_BIN:-}"
[ -n "$local_bin" ] || { [ -x "$here/../.build/release/srdpr" ] && local_bin="$here/../.build/release/srdpr" || local_bin="srdpr"; }
secret="${SRDPR_SECRET:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"
ssh_cmd=(ssh -o BatchMode=yes)
[ -z "${SRDPR_SSH_CONFIG:-}" ] || ssh_cmd+=(-F "$SRDPR_SSH_CONFIG")

# Every host answers with its srdpr version before anything starts.
local_version="$("$local_bin" --version 2>/dev/null)" || { echo "launch-ssh.sh: cannot run the local srdpr '$local_bin' (set SRDPR_LOCAL_BIN)" >&2; exit 2; }
problems=()
for rank in $(seq 0 $((n - 1))); do
    host="${hosts[$rank]}"
    status=0
    answer="$("${ssh_cmd[@]}" "$host" "command -v $(printf '%q' "$remote_bin") >/dev/null 2>&1 || exit 127; exec $(printf '%q' "$remote_bin") --version" 2>&1 </dev/null)" || status=$?
    if [ "$status" -eq 255 ]; then
        problems+=("rank $rank: host $host refuses ssh or cannot be reached: ${answer:-no answer} (passwordless ssh from here is needed)")
    elif [ "$status" -eq 127 ]; then
        problems+=("rank $rank: host $host has no srdpr at '$remote_bin' (install it there, or set SRDPR_BIN to its path on the hosts)")
    elif [ "$status" -ne 0 ]; then
        problems+=("rank $rank: host $host: '$remote_bin --version' failed (status $status): $answer")
    elif [ "$answer" != "$local_version" ]; then
        problems+=("rank $rank: host $host runs srdpr $answer, this host $local_version (install the same srdpr on every host)")
    fi
done
if [ ${#problems[@]} -gt 0 ]; then
    echo "launch-ssh.sh: nothing started; ${#problems[@]} of $n host(s) cannot run a worker:" >&2
    printf '  %s\n' "${problems[@]}" >&2
    exit 2
fi
echo "launch-ssh.sh: $n host(s) answer, all with srdpr $local_version"

mode=worker coordinator_command=(coordinator)
case "${1:-}" in index|encode|mine-hard-negatives) mode=index-worker coordinator_command=("$1"); shift ;; esac
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'cleanup; exit 130' INT TERM
SRDPR_SECRET="$secret" "$local_bin" "${coordinator_command[@]}" --world-size "$n" --bind "tcp://0.0.0.0:$port" "${extra[@]}" "$@" &
coordinator=$!
pids+=("$coordinator")
for rank in $(seq 0 $((n - 1))); do
    args=(--rank "$rank" --coordinator "tcp://$coordinator_host:$port" "${worker_extra[@]}")
    # An index-worker binds nothing (it only connects to the coordinator).
    [ "$mode" = index-worker ] || args+=(--bind-host "${binds[$rank]}")
    [ -z "$threads" ] || args+=(--threads "$threads")
    # The secret travels on stdin; the remote shell reads it into the environment of the worker.
    printf '%s\n' "$secret" | "${ssh_cmd[@]}" "${hosts[$rank]}" \
        "read -r SRDPR_SECRET && export SRDPR_SECRET && exec $(printf '%q' "$remote_bin") $mode $(printf '%q ' "${args[@]}")" \
        > >(sed -u "s/^/[rank $rank ${hosts[$rank]}] /") 2>&1 &
    pids+=("$!")
done
status=0
wait "$coordinator" || status=$?
for p in "${pids[@]:1}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
done
exit "$status"
