#!/usr/bin/env bash
# Installs what is needed, builds in release (numeric tests are slow in debug) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export SRDPR_PYTHON="$PWD/.venv/bin/python"
swift build -c release
# The module boundaries docs/ARCHITECTURE.md states (Coordinator never reaches Worker, ...).
scripts/module-graph.sh >/dev/null
# XCTest only: an empty Swift Testing run would otherwise be the last line the CI reads.
swift test -c release --disable-swift-testing "$@"
