#!/usr/bin/env bash
# The anchors' Python with jemalloc keeping every page it was given (no decay back to the kernel):
# PyTorch allocates its tensors anew every step, and glibc hands large ones back to the kernel
# and faults them in again; on a VM where a first touch costs ~28 µs (session 13/14's Firecracker
# guest) that is seconds of system CPU per step. Run as the bench scripts' PYTHON to see the anchor
# without that cost, beside the plain run:
#   PYTHON=Benchmarks/anchor-python-keep-pages.sh Benchmarks/bench-train-step.sh 5 2
#   LENGTHS=128 PYTHON=Benchmarks/anchor-python-keep-pages.sh Benchmarks/bench-train-real.sh 8 2
# Only the Python processes get jemalloc; srdpr runs as always. ANCHOR_PYTHON picks the interpreter
# (default .venv-bench/bin/python, else .venv/bin/python). Benchmarks/setup-anchors.sh installs libjemalloc2.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${ANCHOR_PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$here/.venv-bench/bin/python" ]; then python="$here/.venv-bench/bin/python"; else python="$here/.venv/bin/python"; fi
fi
library="$(/sbin/ldconfig -p | sed -n 's/^[[:space:]]*libjemalloc\.so\.2 .* => //p' | head -n 1)"
if [ -z "$library" ]; then
    echo "anchor-python-keep-pages: libjemalloc.so.2 not found; run Benchmarks/setup-anchors.sh (or apt-get install libjemalloc2)" >&2
    exit 1
fi
export LD_PRELOAD="$library${LD_PRELOAD:+:$LD_PRELOAD}"
export MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1"
exec "$python" "$@"
