#!/usr/bin/env sh
# Compile the package with mono's mcs against the stubs in Tests~/Stubs and run its tests.
# Needs: apt-get install -y --no-install-recommends mono-mcs
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${TMPDIR:-/tmp}/exposure-bridge-tests.exe
mcs -nologo -warnaserror+ -out:"$out" -r:System.Core.dll $(find "$here/Runtime" "$here/Samples~" "$here/Tests~" -name '*.cs' | sort)
mono "$out" "$here/../vectors.json"
