#!/usr/bin/env bash
# Streaming benchmark (issue #5): in one run, the same memhog process is dumped with CRIU's plain
# 'criu dump' and with 'sealpoint dump' (CRIU --stream, sealed on the fly), REPS times, interleaved so
# both see the same machine load; then both checkpoints are restored ('criu restore' vs
# 'sealpoint restore'). Prints per-run times, medians, the stream/plain ratio (target <= 1.15) and the
# streamer's peak memory (VmHWM of the sealpoint process, target < 64 MiB).
#
#   sudo bash tests/bench/stream-bench.sh [MIB=1024] [REPS=5] [DIR=/dev/shm]
#
# DIR is where both dumps are written: /dev/shm (tmpfs) measures CPU cost, a disk folder
# (e.g. /var/tmp) adds the disk. Env: SEALPOINT (CLI path; default: the repo's Release build),
# CRIU (default: criu on PATH), SYNC=0 to pass --no-sync (plain CRIU does not fsync either).
# Under flock(1) use 'flock -o': without it memhog inherits the locked descriptor, CRIU refuses to dump a
# task holding a file lock ("Some file locks are hold by dumping tasks") and, if memhog outlives the run,
# the lock stays taken.
set -euo pipefail

mib=${1:-1024}
reps=${2:-5}
base=${3:-/dev/shm}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
sealpoint=${SEALPOINT:-$repo/shim/Sealpoint.Cli/bin/Release/net10.0/sealpoint}
criu=${CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
memhog=${MEMHOG:-/opt/sealpoint/workloads/memhog}
sync_flag=()
[[ ${SYNC:-1} == 0 ]] && sync_flag=(--no-sync)

die() { echo "stream-bench: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (CRIU): run it with sudo"
[[ -x $sealpoint ]] || die "$sealpoint not built: dotnet build $repo/Shim.sln -c Release"
[[ -x $criu ]] || die "criu not found: run packaging/install.sh"
[[ -x $memhog ]] || die "$memhog not found: run packaging/install.sh"

work=$(mktemp -d /tmp/sealpoint-stream-bench.XXXXXX)
out=$(mktemp -d "$base/sealpoint-stream-bench.XXXXXX")
pid=
cleanup() {
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
    rm -rf "$work" "$out"
}
trap cleanup EXIT

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
wait_gone() { for _ in $(seq 600); do [[ -d /proc/$1 ]] || return 0; sleep 0.05; done; die "pid $1 did not go away"; }
counter() { tr -d ' \n' < "$work/counter" 2>/dev/null || echo 0; }
wait_counter_above() { for _ in $(seq 600); do (( $(counter) > $1 )) && return 0; sleep 0.05; done; die "memhog stopped counting"; }
median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%d\n", (v[NR/2]+v[NR/2+1])/2}'; }

"$sealpoint" keys init --pki "$work/pki" >/dev/null
"$sealpoint" keys issue bench --pki "$work/pki" >/dev/null

echo "starting memhog $mib MiB ..."
setsid --fork sh -c 'echo $$ > "$1/pid"; exec "$2" "$3" "$4" "$1/counter" </dev/null >/dev/null 2>&1' \
    sh "$work" "$memhog" "$mib" "BENCHSECRET$RANDOM$RANDOM"
for _ in $(seq 600); do [[ -s $work/pid && -s $work/counter ]] && break; sleep 0.1; done
pid=$(cat "$work/pid")
wait_counter_above 1
echo "memhog pid $pid, RSS $(awk '/VmRSS/{print $2, $3}' /proc/$pid/status); output in $base; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %12s %12s %8s %10s %14s %14s\n' rep plain_ms stream_ms ratio peak_MiB plain_rst_ms stream_rst_ms

: > "$work/plain"; : > "$work/stream"; : > "$work/peak"; : > "$work/prst"; : > "$work/srst"
for i in $(seq "$reps"); do
    # Dumps, both leaving the process running (the same process each time).
    mkdir "$out/plain-$i"
    t0=$(now); "$criu" dump -t "$pid" -D "$out/plain-$i" -o dump.log --leave-running; t1=$(now)
    plain=$(ms "$t0" "$t1")
    t0=$(now)
    json=$("$sealpoint" dump -t "$pid" -D "$out/sealed-$i" -r "$work/pki/bench/cert.pem" --pki "$work/pki" \
        --leave-running --work-dir "$work/dump-work-$i" --json "${sync_flag[@]}")
    t1=$(now)
    stream=$(ms "$t0" "$t1")
    peak=$(sed -nE 's/.*"peakRssBytes": ([0-9]+).*/\1/p' <<<"$json")

    # Restores: plain images with criu, sealed ones through the stream (each restores the same memhog).
    kill -9 "$pid"; wait_gone "$pid"
    t0=$(now); "$criu" restore -D "$out/plain-$i" -d -o restore.log; t1=$(now)
    prst=$(ms "$t0" "$t1")
    wait_counter_above "$(counter)"
    kill -9 "$pid"; wait_gone "$pid"
    t0=$(now)
    "$sealpoint" restore -D "$out/sealed-$i" --key "$work/pki/bench/private/key.pem" -d --work-dir "$work/restore-work-$i" >/dev/null
    t1=$(now)
    srst=$(ms "$t0" "$t1")
    wait_counter_above "$(counter)"
    rm -rf "$out/plain-$i" "$out/sealed-$i"

    echo "$plain" >> "$work/plain"; echo "$stream" >> "$work/stream"; echo "$peak" >> "$work/peak"
    echo "$prst" >> "$work/prst"; echo "$srst" >> "$work/srst"
    printf '%-4s %12s %12s %8s %10s %14s %14s\n' "$i" "$plain" "$stream" \
        "$(awk -v a="$stream" -v b="$plain" 'BEGIN{printf "%.2f", a/b}')" "$(( peak / 1048576 ))" "$prst" "$srst"
done

mp=$(median < "$work/plain"); msd=$(median < "$work/stream")
mpr=$(median < "$work/prst"); msr=$(median < "$work/srst")
maxpeak=$(sort -n "$work/peak" | tail -1)
echo
echo "median plain criu dump:      $mp ms"
echo "median sealpoint dump:       $msd ms   (ratio $(awk -v a="$msd" -v b="$mp" 'BEGIN{printf "%.2f", a/b}'), target <= 1.15)"
echo "streamer peak memory (max):  $(awk -v p="$maxpeak" 'BEGIN{printf "%.1f", p/1048576}') MiB (VmHWM; target < 64 MiB)"
echo "median plain criu restore:   $mpr ms"
echo "median sealpoint restore:    $msr ms   (ratio $(awk -v a="$msr" -v b="$mpr" 'BEGIN{printf "%.2f", a/b}'), target 1.25; default checks: metadata and tag tables first, pages as served)"
