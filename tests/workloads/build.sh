#!/usr/bin/env bash
# Builds the static test workloads (secretholder, memhog, proctree) into OUTDIR.
# Used by packaging/install.sh; run it by hand after editing a workload:
#   bash tests/workloads/build.sh /opt/sealpoint/workloads
# Static so the same binaries run on the host and inside the busybox test rootfs (no libc there).
set -euo pipefail

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! command -v gcc >/dev/null; then
    echo "build.sh: gcc not found: install gcc and libc6-dev (apt-get install gcc libc6-dev)" >&2
    exit 1
fi
mkdir -p "$out"
for name in secretholder memhog proctree; do
    # Build to a temporary name and rename: a running copy of the old binary is not disturbed.
    if ! gcc -O2 -static -Wall -Wextra -Werror -o "$out/.$name.new" "$src/$name.c"; then
        echo "build.sh: compiling $src/$name.c failed (static linking needs libc6-dev)" >&2
        rm -f "$out/.$name.new"
        exit 1
    fi
    mv -f "$out/.$name.new" "$out/$name"
done
# Checksums of the sources, so tests can tell the binaries match their checkout (Tools.Workload).
(cd "$src" && sha256sum workload.h secretholder.c memhog.c proctree.c) >"$out/sources.sha256"
echo "built secretholder memhog proctree into $out"
