#!/usr/bin/env bash
# A small cluster on this machine, for tests of the launchers: K hosts in network namespaces
# (cluster/netns), host I named nodeI (a UTS namespace of its own per daemon) at SUBNET.(I+1), with
#   --ssh    an sshd on every host (port 22 of its address; host and user keys made here, root by
#            key only) and DIR/ssh_config, DIR/known_hosts, DIR/hostfile for launch-ssh.sh / mpirun;
#   --slurm  Debian's slurm-wlm + munge: one munged (its socket is a file every host sees), slurmctld
#            on node0 and one slurmd per host, partition `test` (Default), DIR/slurm.conf.
# Everything lives in DIR (keys, configs, logs, spool, state); every daemon runs inside the hosts'
# namespaces except munged, whose pid is in DIR. `down.sh DIR` stops all of it and removes the hosts.
# Commands on host I: `run.sh DIR I COMMAND...` (SLURM_CONF is set there).
# Usage: cluster/testcluster/up.sh DIR [--hosts K] [--prefix P] [--subnet A.B.C] [--cpus N] [--ssh] [--slurm]
#   --cpus: CPUs each Slurm node declares (default: this machine's; all nodes share its cores).
# Needs root, iproute2, util-linux (unshare); --ssh: openssh-server; --slurm: slurm-wlm, munge.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:?usage: up.sh DIR [--hosts K] [--prefix P] [--subnet A.B.C] [--cpus N] [--ssh] [--slurm]}"; shift
hosts=3 prefix=srtc subnet=10.239.0 cpus="$(nproc)" want_ssh=0 want_slurm=0
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts="$2"; shift 2 ;;
        --prefix) prefix="$2"; shift 2 ;;
        --subnet) subnet="$2"; shift 2 ;;
        --cpus) cpus="$2"; shift 2 ;;
        --ssh) want_ssh=1; shift ;;
        --slurm) want_slurm=1; shift ;;
        *) echo "testcluster/up.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$hosts" in ''|*[!0-9]*) echo "testcluster/up.sh: --hosts must be a number, got '$hosts'" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "testcluster/up.sh: needs root (network namespaces, daemons as root)" >&2; exit 2; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "testcluster/up.sh: '$1' is missing: install the Debian package $2 (scripts/setup.sh --test does)" >&2; exit 3; }; }
need unshare util-linux
[ "$want_ssh" -eq 0 ] || { need /usr/sbin/sshd openssh-server; need ssh-keygen openssh-client; }
[ "$want_slurm" -eq 0 ] || { need slurmctld slurmctld; need slurmd slurmd; need sbatch slurm-client; need munged munge; }

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
chmod 700 "$dir"
rm -f "$dir"/boot-node*.sh
# Written first, so that down.sh can undo a half-built cluster.
cat > "$dir/cluster.env" <<EOF
PREFIX=$prefix
SUBNET=$subnet
HOSTS=$hosts
SLURM_CONF=$dir/slurm/slurm.conf
EOF
trap 'echo "testcluster/up.sh: failed; removing the partial cluster (logs were in $dir)" >&2; "$here/down.sh" "$dir" --keep-logs' ERR
"$here/../netns/up.sh" "$hosts" --prefix "$prefix" --subnet "$subnet" >/dev/null
# Runs a daemon on host I in a UTS namespace named nodeI: output to LOG, pid to LOG.pid. `ip netns
# exec` gives it a fresh /sys without the cgroup mounts; slurmd insists on finding a cgroup file
# system there even when no cgroup plugin is used (proctrack/linuxproc, task/none), so an empty
# tmpfs stands in (private to the daemon's mount namespace).
# The same line goes to DIR/boot-nodeI.sh, which node.sh DIR I boot runs after a crash.
daemon() {
    local i=$1 log=$2; shift 2
    local line
    line="ip netns exec $(printf %q "$prefix-h$i") unshare --uts /bin/sh -c $(printf %q 'hostname "$0" && mount -t tmpfs -o size=64k,mode=755 srdpr-no-cgroups /sys/fs/cgroup && exec "$@"') node$i $(printf '%q ' "$@") >>$(printf %q "$log") 2>&1 &"
    echo "$line" >> "$dir/boot-node$i.sh"
    eval "$line"
}
addresses=()
for i in $(seq 0 $((hosts - 1))); do addresses+=("$subnet.$((i + 1))"); done

if [ "$want_ssh" -eq 1 ]; then
    mkdir -p "$dir/ssh" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -C "srdpr-testcluster-host" -f "$dir/ssh/host_key"
    ssh-keygen -q -t ed25519 -N '' -C "srdpr-testcluster-user" -f "$dir/ssh/id_ed25519"
    cp "$dir/ssh/id_ed25519.pub" "$dir/ssh/authorized_keys"
    echo "$(IFS=,; echo "${addresses[*]}") $(cut -d' ' -f1-2 "$dir/ssh/host_key.pub")" > "$dir/known_hosts"
    cat > "$dir/ssh/sshd_config" <<EOF
Port 22
HostKey $dir/ssh/host_key
AuthorizedKeysFile $dir/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
X11Forwarding no
LogLevel ERROR
EOF
    cat > "$dir/ssh_config" <<EOF
Host *
    User root
    IdentityFile $dir/ssh/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
    LogLevel ERROR
EOF
    : > "$dir/hostfile"
    for i in $(seq 0 $((hosts - 1))); do
        daemon "$i" "$dir/ssh/sshd.node$i.log" /usr/sbin/sshd -D -e -f "$dir/ssh/sshd_config" \
            -o "ListenAddress=${addresses[$i]}" -o "PidFile=$dir/ssh/sshd.node$i.sshpid"
        echo "${addresses[$i]}" >> "$dir/hostfile"
    done
    for i in $(seq 0 $((hosts - 1))); do
        ok=0
        for _ in $(seq 1 50); do
            if ip netns exec "$prefix-h0" ssh -F "$dir/ssh_config" "${addresses[$i]}" true 2>/dev/null; then ok=1; break; fi
            sleep 0.2
        done
        [ "$ok" -eq 1 ] || { echo "testcluster/up.sh: sshd on node$i (${addresses[$i]}) does not answer; see $dir/ssh/sshd.node$i.log" >&2; false; }
    done
fi

if [ "$want_slurm" -eq 1 ]; then
    mkdir -p "$dir/slurm/state" "$dir/munge"
    for i in $(seq 0 $((hosts - 1))); do mkdir -p "$dir/slurm/spool-node$i"; done
    chmod 700 "$dir/munge"
    head -c 1024 /dev/urandom > "$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    munged --foreground --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
        >"$dir/munge/munged.out" 2>&1 &
    echo $! > "$dir/munge/munged.out.pid"
    for _ in $(seq 1 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
    [ -S "$dir/munge/munge.socket" ] || { echo "testcluster/up.sh: munged did not start; see $dir/munge/munged.log" >&2; false; }
    {
        echo "ClusterName=srdprtest"
        echo "SlurmctldHost=node0(${addresses[0]})"
        echo "AuthType=auth/munge"
        # cred_expire also delays a requeued job's restart (default 120 s).
        echo "AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10"
        echo "CredType=cred/munge"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "StateSaveLocation=$dir/slurm/state"
        echo "SlurmdSpoolDir=$dir/slurm/spool-%n"
        echo "SlurmctldPidFile=$dir/slurm/slurmctld.slurmpid"
        echo "SlurmdPidFile=$dir/slurm/slurmd.%n.slurmpid"
        echo "SlurmctldLogFile=$dir/slurm/slurmctld.log"
        echo "SlurmdLogFile=$dir/slurm/slurmd.%n.log"
        # No cgroups in this sandbox: processes are tracked by parentage, tasks not bound.
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "AccountingStorageType=accounting_storage/none"
        echo "JobCompType=jobcomp/none"
        echo "MpiDefault=none"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_CPU"
        echo "SchedulerType=sched/builtin"
        # Pending jobs are looked at every 2 s (default 60): a requeued job starts soon after its node is back.
        echo "SchedulerParameters=sched_interval=2"
        echo "SlurmdParameters=config_overrides"
        # A node whose slurmd comes back is usable again at once; one silent for 5 s is DOWN (and
        # its jobs requeued when submitted with --requeue). KillWait: the seconds between SIGTERM
        # and SIGKILL, in which the coordinator checkpoints (tiny models here).
        echo "ReturnToService=2"
        echo "SlurmdTimeout=5"
        echo "KillWait=10"
        echo "InactiveLimit=0"
        for i in $(seq 0 $((hosts - 1))); do
            echo "NodeName=node$i NodeAddr=${addresses[$i]} CPUs=$cpus State=UNKNOWN"
        done
        echo "PartitionName=test Nodes=node[0-$((hosts - 1))] Default=YES MaxTime=INFINITE State=UP"
    } > "$dir/slurm/slurm.conf"
    echo "CgroupPlugin=cgroup/v1" > "$dir/slurm/cgroup.conf"
    daemon 0 "$dir/slurm/slurmctld.out" slurmctld -D -f "$dir/slurm/slurm.conf"
    for i in $(seq 0 $((hosts - 1))); do
        daemon "$i" "$dir/slurm/slurmd.node$i.out" slurmd -D -f "$dir/slurm/slurm.conf"
    done
    # Ready when every node is idle.
    ok=0
    for _ in $(seq 1 150); do
        states="$(ip netns exec "$prefix-h0" env SLURM_CONF="$dir/slurm/slurm.conf" sinfo -h -N -o '%N %T' 2>/dev/null || true)"
        if [ "$(grep -c ' idle$' <<<"$states")" -eq "$hosts" ]; then ok=1; break; fi
        sleep 0.2
    done
    [ "$ok" -eq 1 ] || { echo "testcluster/up.sh: the Slurm nodes are not idle after 30 s (${states:-no answer}); see $dir/slurm/*.log" >&2; false; }
fi
echo "testcluster: $hosts host(s) $(for i in $(seq 0 $((hosts - 1))); do printf 'node%d=%s ' "$i" "${addresses[$i]}"; done)in $dir" \
    "$([ "$want_ssh" -eq 0 ] || echo "(ssh: -F $dir/ssh_config)")" "$([ "$want_slurm" -eq 0 ] || echo "(SLURM_CONF=$dir/slurm/slurm.conf)")"
