#!/usr/bin/env bash
# Installs what is needed, builds in release (numeric tests are slow in debug) and runs every test.
# Without arguments (the full run, as CI does) it also runs the README's walkthrough
# (scripts/readme-walkthrough.sh: install, data, train, export, encode, evaluate at small sizes),
# right after the build: its install step's `swift build` is then a no-op (after `swift test`,
# which builds with testability, it would rebuild everything), and as an XCTest it would wait for
# the build directory that `swift test` holds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export SRDPR_PYTHON="$PWD/.venv/bin/python"
swift build -c release
# The test bundles link OpenBLAS too but cannot restart themselves as srdpr does when OpenBLAS falls
# back to kernels without AVX2 on a CPU it does not know (BLASCoreChoice): they get srdpr's choice.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then export OPENBLAS_CORETYPE="$(.build/release/srdpr bench blas-core --name)"; fi
# The module boundaries docs/ARCHITECTURE.md states (Coordinator never reaches Worker, ...).
scripts/module-graph.sh >/dev/null
walkthrough=0
if [ $# -eq 0 ]; then
    bash scripts/readme-walkthrough.sh || walkthrough=$?
fi
# XCTest only: an empty Swift Testing run would otherwise be the last line the CI reads.
status=0
swift test -c release --disable-swift-testing "$@" || status=$?
if [ "$walkthrough" -ne 0 ]; then echo "test.sh: scripts/readme-walkthrough.sh FAILED (see its output above)" >&2; fi
[ "$status" -eq 0 ] && [ "$walkthrough" -eq 0 ]
