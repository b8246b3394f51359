#!/usr/bin/env bash
# Publishes the Sealpoint programs from this checkout into DEST, as packaging/install.sh installs them (it calls
# this) and as the benchmark measures them (tests/Sealpoint.Bench publishes with it too):
#
#   bash packaging/publish.sh DEST
#
#   DEST/cli/sealpoint             framework-dependent ReadyToRun, tiered compilation off
#   DEST/runtime/sealpoint-runc-core   self-contained, one composite ReadyToRun image, tiered compilation off
#   DEST/hook/sealpoint-hook       framework-dependent ReadyToRun (small, off the checkpoint path)
#   DEST/sealpoint, DEST/sealpoint-runc-core, DEST/sealpoint-hook   links into those folders
#   DEST/sealpoint-runc            the C launcher (gcc); it runs sealpoint-runc-core from its own folder
#
# Why composite for the runtime: with the framework and Sealpoint compiled together, the generic code they share is
# precompiled as well, so far less is JIT-compiled on the checkpoint path (a streamed dump: ~450 methods
# framework-dependent, ~60 composite). Why not for the CLI: the composite image's code pages count in the streamer's
# peak RSS (VmHWM), +8 MB, and a dump of a process tree then went over the 64 MiB bound issue #5 sets (68.7 MiB in
# a CI run), although a 1 GiB 'sealpoint dump' was 55-115 ms faster with it (docs/benchmarks.md, "Night").
# Tiered compilation off: no second compile of hot methods on a core the checkpoint needs. Costs ~95 MB of disk for
# the runtime.
set -euo pipefail

dest=${1:?usage: publish.sh DEST}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "publish.sh: $1. Fix: $2" >&2; exit 1; }
command -v dotnet >/dev/null || die "dotnet not found" "install the .NET 10 SDK (dotnet) and put it on PATH"
command -v gcc >/dev/null || die "gcc not found" "apt-get install gcc (it builds the sealpoint-runc launcher)"

composite=(--self-contained true -p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true -p:TieredCompilation=false)
shared=(--self-contained false -p:PublishReadyToRun=true -p:TieredCompilation=false)
hook=(--self-contained false -p:PublishReadyToRun=true)
mkdir -p "$dest"
for entry in shim/Sealpoint.Cli:cli:sealpoint shim/Sealpoint.Runtime:runtime:sealpoint-runc-core hooks/Sealpoint.Hook:hook:sealpoint-hook; do
    IFS=: read -r project folder name <<<"$entry"
    case $folder in
        runtime) options=("${composite[@]}") ;;
        cli) options=("${shared[@]}") ;;
        *) options=("${hook[@]}") ;;
    esac
    echo "publish.sh: dotnet publish $project ${options[*]}"
    # ReadyToRun output from a publish with other options (composite or not) is taken as up to date and shipped
    # as is; seen once: a composite experiment left IL-only assemblies, and the CLI published next aborted at start.
    rm -rf "$repo/$project/obj/Release/net10.0/linux-x64/R2R"
    log=$(mktemp)
    if ! dotnet publish "$repo/$project" -c Release -r linux-x64 "${options[@]}" -o "$dest/$folder" --nologo -v quiet >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"
        die "dotnet publish $project failed (output above)" "fix the build error; check it with: dotnet build $repo/Shim.sln -c Release"
    fi
    rm -f "$log"
    [[ -x $dest/$folder/$name ]] || die "publish produced no $dest/$folder/$name" "check the AssemblyName of $project"
    # It must start: exit 0, or a usage error for the hook, which has no --version; not a crash of the runtime.
    rc=0
    "$dest/$folder/$name" --version >/dev/null 2>&1 || rc=$?
    [[ $rc == 0 || ( $folder == hook && $rc == 2 ) ]] \
        || die "the published $dest/$folder/$name does not start (exit $rc for --version)" "run it to see why; publish again after removing $repo/$project/obj"
    # The .NET host follows the link to find the program's files.
    ln -sfn "$folder/$name" "$dest/$name"
done
gcc -O2 -Wall -o "$dest/sealpoint-runc" "$repo/shim/Sealpoint.Runtime/launcher/sealpoint-runc.c" \
    || die "compiling shim/Sealpoint.Runtime/launcher/sealpoint-runc.c failed" "fix the compiler error above"
