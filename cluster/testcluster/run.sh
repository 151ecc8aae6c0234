#!/usr/bin/env bash
# Runs a command on host I of the test cluster made by up.sh DIR, with SLURM_CONF set (so sbatch,
# srun, squeue, scontrol talk to its slurmctld).
# Usage: cluster/testcluster/run.sh DIR I COMMAND...
set -euo pipefail
dir="${1:?usage: run.sh DIR I COMMAND...}"
i="${2:?usage: run.sh DIR I COMMAND...}"
shift 2
[ -f "$dir/cluster.env" ] || { echo "testcluster/run.sh: $dir/cluster.env is missing: not a test cluster" >&2; exit 2; }
# shellcheck disable=SC1091
. "$dir/cluster.env"
export SLURM_CONF
exec ip netns exec "$PREFIX-h$i" "$@"
