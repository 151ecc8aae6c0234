#!/usr/bin/env bash
# Installs what srdpr needs on Debian 12 (idempotent, quiet when everything is there):
#   system libraries: OpenBLAS, libzmq, pkg-config;
#   with --test: the Python packages the tests use, in .venv (python3 itself is assumed), and
#   slurm-wlm, munge, openssh-server, openmpi-bin for the launcher tests.
# The Swift 6 toolchain is expected on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        *) echo "setup.sh: unknown option $arg (known: --test)" >&2; exit 2 ;;
    esac
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in libopenblas-dev libzmq3-dev pkg-config python3-venv nftables; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: no 'swift' on PATH; install the Swift 6 toolchain (swift.org) first" >&2
    exit 1
fi

if [ "$want_test" -eq 1 ]; then
    # The launchers' tests (LauncherClusterTests) run a real Slurm (slurmctld, slurmd, munge), an
    # sshd per test host and Open MPI's mpirun on network-namespace hosts; they start the daemons
    # themselves from their own configuration (cluster/testcluster), never the system's services.
    missing=()
    for pkg in slurm-wlm munge openssh-server openmpi-bin; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: installing ${missing[*]} (for the launcher tests)" >&2
        as_root apt-get update -qq
        if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
            # The tests then skip, saying which package is missing.
            echo "setup: WARNING: could not install ${missing[*]}; LauncherClusterTests will skip" >&2
        fi
    fi
    # Python packages the tests use (one per line in scripts/python-test-requirements.txt).
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    stamp=.venv/.requirements-installed
    if [ ! -f "$stamp" ] || ! cmp -s scripts/python-test-requirements.txt "$stamp"; then
        echo "setup: installing Python test packages into .venv" >&2
        .venv/bin/pip install -q --disable-pip-version-check -r scripts/python-test-requirements.txt
        cp scripts/python-test-requirements.txt "$stamp"
    fi
fi
