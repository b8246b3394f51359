#!/usr/bin/env bash
# How much of `sealpoint restore`'s time on a process tree is CRIU's streaming protocol, and how much is Sealpoint's.
# Restores the same tree, interleaved, three ways and prints the medians:
#   plain       criu restore -D IMAGES -d                      (files; the suite's baseline)
#   stream      criu restore --stream, served by plain-streamer (the protocol alone: plaintext from memory, in C)
#   sealpoint   sealpoint restore -D SEALED --key KEY -d        (the suite's contender)
#
#   sudo bash tests/Sealpoint.Bench/stream-floor/run.sh [PROCESSES (100)] [ROUNDS (8)]
#
# Needs what packaging/install.sh installs: CRIU (/usr/local/sbin/criu or $SEALPOINT_CRIU), sealpoint (on PATH, or
# $SEALPOINT_CLI: another build's), the proctree workload, gcc. Images live in /dev/shm, as in the suite. Not a test: it
# asserts no time.
set -euo pipefail

processes=${1:-100}
rounds=${2:-8}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
criu=${SEALPOINT_CRIU:-/usr/local/sbin/criu}
cli=${SEALPOINT_CLI:-sealpoint}
proctree=/opt/sealpoint/workloads/proctree

die() { echo "stream-floor: $1. Fix: $2" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "CRIU needs root" "run it with sudo"
[[ -x $criu ]] || die "no CRIU at $criu" "run packaging/install.sh, or set SEALPOINT_CRIU"
command -v "$cli" >/dev/null || die "no sealpoint program ($cli)" "run packaging/install.sh, or set SEALPOINT_CLI"
[[ -x $proctree ]] || die "no proctree workload at $proctree" "run packaging/install.sh"
command -v gcc >/dev/null || die "gcc not found" "apt-get install gcc"
[[ $processes =~ ^[0-9]+$ && $processes -ge 1 && $processes -le 1000 ]] || die "PROCESSES must be 1..1000" "give a number of processes"
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 ]] || die "ROUNDS must be a positive number" "give a number of rounds"

scratch=$(mktemp -d /dev/shm/sealpoint-stream-floor.XXXXXX)
root=
tree_gone() {
    [[ -n $root ]] || return 0
    pkill -9 -s "$root" 2>/dev/null || true
    for _ in $(seq 200); do pgrep -s "$root" >/dev/null || return 0; sleep 0.05; done
    die "the restored tree (session $root) did not exit" "kill it by hand: pkill -9 -s $root"
}
cleanup() { tree_gone || true; rm -rf "$scratch"; }
trap cleanup EXIT

gcc -O2 -Wall -Wextra -o "$scratch/plain-streamer" "$here/plain-streamer.c"
export SEALPOINT_PKI=$scratch/pki SEALPOINT_CRIU=$criu
"$cli" keys init --days 1 >/dev/null
"$cli" keys issue floor --days 1 >/dev/null
mkdir -p "$scratch"/{plain,sealed,stream,work}

setsid "$proctree" "$processes" "$scratch/counter" </dev/null >/dev/null 2>&1 &
root=$!
disown "$root"   # killed on purpose later: no job-control notice
for _ in $(seq 200); do [[ $(pgrep -c -s "$root" || true) -ge $processes ]] && break; sleep 0.05; done
[[ $(pgrep -c -s "$root" || true) -ge $processes ]] || die "proctree did not start $processes processes" "check $proctree $processes by hand"
"$criu" dump -t "$root" -D "$scratch/plain" -o dump.log --leave-running >/dev/null 2>&1 \
    || die "criu dump failed" "read $scratch/plain/dump.log (kept until this script exits)"
"$cli" dump -t "$root" -D "$scratch/sealed" -r floor --no-sync -W "$scratch/work" >/dev/null
tree_gone

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
echo "stream-floor: $processes processes, $rounds interleaved rounds; CRIU $("$criu" --version | awk '/Version/ {print $2}'), $(nproc) cores, kernel $(uname -r)"
for round in $(seq "$rounds"); do
    start=$(date +%s%N)
    "$criu" restore -D "$scratch/plain" -d -o restore.log >/dev/null 2>&1 || die "plain criu restore failed" "read $scratch/plain/restore.log"
    echo "plain $(ms "$start")"
    tree_gone

    rm -f "$scratch/stream/ready"
    "$scratch/plain-streamer" "$scratch/plain" "$scratch/stream" >"$scratch/stream/ready" 2>"$scratch/stream/streamer.err" &
    streamer=$!
    for _ in $(seq 500); do grep -q ready "$scratch/stream/ready" 2>/dev/null && break; sleep 0.01; done
    start=$(date +%s%N)
    "$criu" restore --stream -D "$scratch/stream" -W "$scratch/stream" -d -o restore.log >/dev/null 2>&1 \
        || die "criu restore --stream failed" "read $scratch/stream/restore.log and streamer.err"
    echo "stream $(ms "$start")"
    wait "$streamer" || die "plain-streamer failed" "read $scratch/stream/streamer.err"
    tree_gone

    start=$(date +%s%N)
    "$cli" restore -D "$scratch/sealed" --key "$scratch/pki/floor/private/key.pem" -d -W "$scratch/work" >/dev/null 2>&1 \
        || die "sealpoint restore failed" "run it by hand with the same arguments"
    echo "sealpoint $(ms "$start")"
    tree_gone
done | tee "$scratch/times" | sed 's/^/  /; s/$/ ms/'

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
plain=$(awk '$1 == "plain" { print $2 }' "$scratch/times" | median)
stream=$(awk '$1 == "stream" { print $2 }' "$scratch/times" | median)
sealed=$(awk '$1 == "sealpoint" { print $2 }' "$scratch/times" | median)
awk -v p="$plain" -v s="$stream" -v e="$sealed" 'BEGIN {
    printf "medians: plain %s ms; stream (the protocol alone) %s ms, %.2fx plain; sealpoint restore %s ms, %.2fx plain\n", p, s, s / p, e, e / p }'
