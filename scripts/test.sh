#!/usr/bin/env bash
# Installs what is needed, builds in release (numeric tests are slow in debug) and runs every test;
# without arguments (the full run, as CI does) it then runs the README's walkthrough
# (scripts/readme-walkthrough.sh: install, data, train, export, encode, evaluate at small sizes).
# It runs here rather than as an XCTest because its install step calls `swift build`, which
# waits for the build directory that `swift test` holds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export SRDPR_PYTHON="$PWD/.venv/bin/python"
swift build -c release
# XCTest only: an empty Swift Testing run would otherwise be the last line the CI reads.
swift test -c release --disable-swift-testing "$@"
if [ $# -eq 0 ]; then
    bash scripts/readme-walkthrough.sh
fi
