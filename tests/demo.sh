#!/usr/bin/env bash
# The main job, end to end on real CRIU: a process holding a secret is checkpointed, the checkpoint is
# sealed (the secret is no longer in any file), then opened on a memory-backed folder and restored, and
# the process carries on. Needs root and what packaging/install.sh installs.
set -euo pipefail
for tool in sealpoint sealpoint-runc criu setsid podman zstd; do
    command -v "$tool" >/dev/null || { echo "demo: $tool not found. Fix: run 'sudo bash packaging/install.sh' first" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "demo: CRIU needs root. Fix: run as root" >&2; exit 1; }
workloads=${SEALPOINT_WORKLOADS:-/opt/sealpoint/workloads}
[[ -x $workloads/secretholder ]] || { echo "demo: $workloads/secretholder missing. Fix: run 'sudo bash packaging/install.sh'" >&2; exit 1; }

work=$(mktemp -d /var/tmp/sealpoint-demo.XXXXXX)
opened=$(mktemp -d /dev/shm/sealpoint-demo.XXXXXX)
pid=
ctr=sealpoint-demo-$$
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null
    podman rm -f --ignore "$ctr" >/dev/null 2>&1 || true
    rm -rf "$work" "$opened"
}
trap cleanup EXIT
export SEALPOINT_PKI=$work/pki
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
leaks() { grep -rlaF "$secret" "$1" 2>/dev/null | sed "s|^|   leaked in |" || true; }

say "1. A PKI with a CA and two node identities (CRIU's TLS layout)"
sealpoint keys init >/dev/null
sealpoint keys issue node-a | sed 's/^/   /'
sealpoint keys issue node-b --algorithm rsa2048 | sed 's/^/   /'

say "2. A process keeps a random secret in its memory and counts"
secret="demo-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
setsid --fork sh -c 'echo $$ > "$1"; exec "$2" "$3" "$4" </dev/null >/dev/null 2>&1' sh "$work/pid" "$workloads/secretholder" "$secret" "$work/counter"
for _ in $(seq 50); do [[ -s $work/counter ]] && break; sleep 0.1; done
pid=$(cat "$work/pid")
sleep 0.5
echo "   pid $pid, counter $(tr -d " " <"$work/counter")"

say "3. CRIU dumps it: the plain images hold the secret"
mkdir "$work/images"
criu dump -t "$pid" -D "$work/images" -o dump.log
atdump=$(tr -d " " <"$work/counter")
# CRIU ended the process; its pid must be free (reaped) before it can be restored under the same pid.
for _ in $(seq 100); do [[ -e /proc/$pid ]] || break; sleep 0.1; done
leaks "$work/images"

say "4. sealpoint seals the images for node-a and node-b: the secret is gone"
sealpoint seal "$work/images" -r node-a -r node-b | sed 's/^/   /'
if grep -rqaF "$secret" "$work"; then echo "   FAILED: the secret is still on disk"; exit 1; fi
echo "   grep finds the secret in no file under $work"
sealpoint inspect "$work/images" | sed 's/^/   /'

say "5. node-b verifies everything, decrypts into tmpfs, and CRIU restores"
sealpoint open "$work/images" --key "$SEALPOINT_PKI/node-b/private/key.pem" --out "$opened/images" | sed 's/^/   /'
criu restore -D "$opened/images" -d -o restore.log || { echo "demo: criu restore failed:"; tail -5 "$opened/images/restore.log"; exit 1; }
rm -rf "$opened/images"
sleep 1
now=$(tr -d " " <"$work/counter")
echo "   counter was $atdump at the dump, now $now: the process carried on with its state"
[[ $now -gt $atdump ]] || { echo "   FAILED: the counter did not continue"; exit 1; }
kill -0 "$pid" && echo "   pid $pid is alive and still holds its secret (it exits if the secret changed)"
kill "$pid"; pid=

say "6. The same for a container: podman checkpoints through sealpoint-runc"
# The runtime reads its node config from SEALPOINT_CONFIG (default /etc/sealpoint/config.toml); podman
# passes the runtime a clean environment, so the demo points it at its own config through a tiny wrapper.
cat >"$work/config.toml" <<TOML
[runtime]
runc = "$(command -v runc)"
criu = "$(command -v criu)"
staging = "/dev/shm/sealpoint-demo-staging"
[keys]
pki = "$SEALPOINT_PKI"
identity = "node-b"
recipients = ["node-b"]
TOML
printf '#!/bin/sh\nSEALPOINT_CONFIG=%s exec %s "$@"\n' "$work/config.toml" "$(command -v sealpoint-runc)" >"$work/sealpoint-runc"
chmod +x "$work/sealpoint-runc"
podman="podman --runtime $work/sealpoint-runc"
secret2="demo-container-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
$podman run -d --network none --name "$ctr" localhost/sealpoint-test:latest secretholder "$secret2" /tmp/counter >/dev/null
sleep 1
echo "   container $ctr counts: $($podman exec "$ctr" cat /tmp/counter | tr -d ' ')"
$podman container checkpoint --export "$work/ctr.tar.zst" "$ctr" >/dev/null
mkdir "$work/archive" && tar --zstd -xf "$work/ctr.tar.zst" -C "$work/archive"
echo "   exported $(du -h "$work/ctr.tar.zst" | cut -f1) archive; its CRIU images are sealed:"
sealpoint inspect "$work/archive/checkpoint" | sed -n '1,5p' | sed 's/^/     /'
if grep -rqaF "$secret2" "$work/archive/checkpoint"; then echo "   FAILED: the secret is in the CRIU images"; exit 1; fi
echo "   grep finds the container's secret in none of the CRIU images"
echo "   (podman's own spec.dump still holds the command line; 'sealpoint pack' seals those files too)"
$podman rm -f "$ctr" >/dev/null
$podman container restore --import "$work/ctr.tar.zst" >/dev/null
sleep 1
echo "   restored from the sealed archive; counter now $($podman exec "$ctr" cat /tmp/counter | tr -d ' ') and rising"
[[ -z $(ls -A /dev/shm/sealpoint-demo-staging 2>/dev/null) ]] && echo "   staging on tmpfs was wiped after restore"
echo
echo "demo: OK"
