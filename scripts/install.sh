#!/usr/bin/env bash
# Builds srdpr in release and installs the executable as PREFIX/bin/srdpr, so that `srdpr ...`
# works from any directory once PREFIX/bin is on PATH.
#   bash scripts/install.sh            # PREFIX = $PREFIX, else ~/.local
#   bash scripts/install.sh /opt/srdpr # another prefix
# Installs the system libraries first if they are missing (scripts/setup.sh). Re-run it after
# pulling changes: the build is incremental.
set -euo pipefail
# The checkout this script belongs to (also when it is called through a symbolic link).
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
prefix=${1:-${PREFIX:-$HOME/.local}}
scripts/setup.sh
swift build -c release --product srdpr
mkdir -p "$prefix/bin"
install -m 0755 .build/release/srdpr "$prefix/bin/srdpr"
echo "installed $prefix/bin/srdpr ($("$prefix/bin/srdpr" --version))"
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "add it to PATH:  export PATH=\"$prefix/bin:\$PATH\"   (e.g. in ~/.bashrc)" ;;
esac
