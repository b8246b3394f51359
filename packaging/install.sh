#!/usr/bin/env bash
# Sealpoint installer for a Debian 12 (bookworm) x86-64 machine, run as root.
#
# Brings everything Sealpoint and its end-to-end tests need onto a fresh machine and installs
# Sealpoint from the checkout this script lives in. Safe to run again: finished steps are skipped.
#
#   bash packaging/install.sh            system packages, private CRIU 4.x, podman config,
#                                        Sealpoint build, test workloads, busybox test image
#   bash packaging/install.sh --no-build system parts only (no dotnet publish, no workloads,
#                                        no test image)
#   bash packaging/install.sh --system-openssl
#                                        no private OpenSSL build: Sealpoint then uses the
#                                        system's OpenSSL 3.0 (AES-GCM about half as fast)
#
# What lands where: see packaging/README.md.
set -euo pipefail

readonly PREFIX=/opt/sealpoint
readonly CRIU_PREFIX=$PREFIX/criu
readonly CRIU_LAUNCHER=/usr/local/sbin/criu
readonly OPENSSL_PREFIX=$PREFIX/openssl
readonly BIN_DIR=$PREFIX/bin
readonly WORKLOAD_DIR=$PREFIX/workloads
readonly TESTDATA_DIR=$PREFIX/testdata
readonly ROOTFS_DIR=$TESTDATA_DIR/busybox-rootfs
readonly TEST_IMAGE=localhost/sealpoint-test:latest
readonly TRIXIE_SOURCES=/etc/apt/sources.list.d/sealpoint-trixie.sources
readonly TRIXIE_PIN=/etc/apt/preferences.d/sealpoint-trixie
readonly PODMAN_DROPIN=/etc/containers/containers.conf.d/50-sealpoint.conf

# System packages. Why the less obvious ones: uidmap/fuse-overlayfs/slirp4netns/catatonit are
# podman's recommends (installed without the rest of the recommends, which would pull systemd);
# iptables and iproute2 are run by CRIU when it dumps a network namespace; apache2-utils gives
# htpasswd -B (the registry's htpasswd auth accepts only bcrypt); psmisc/procps for debugging;
# make/perl/dpkg-dev build the private OpenSSL from Debian's source package.
readonly APT_PACKAGES=(
    runc podman skopeo buildah containerd docker-registry busybox-static
    openssl gnupg age zstd gcc libc6-dev make perl dpkg-dev
    uidmap fuse-overlayfs slirp4netns catatonit iptables iproute2 apache2-utils
    ca-certificates tar procps psmisc
)

# CRIU 4.x and the libraries it links, all from trixie, unpacked into CRIU_PREFIX only.
readonly CRIU_PACKAGES=(
    criu libcompel1 libc6
    libbsd0 libmd0 libgnutls30t64 libnettle8t64 libhogweed6t64 libgmp10 libp11-kit0 libffi8
    libidn2-0 libunistring5 libtasn1-6 libprotobuf-c1 libnftables1 libnftnl11 libmnl0
    libxtables12 libjansson4 libedit2 libnl-3-200 libnet1 libuuid1
)

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO_ROOT
DO_BUILD=1
REINSTALL_CRIU=0
SYSTEM_OPENSSL=0
START_TIME=$SECONDS
CLEANUP=()
cleanup() { [[ ${#CLEANUP[@]} -eq 0 ]] || rm -rf "${CLEANUP[@]}"; }
trap cleanup EXIT

usage() {
    cat <<EOF
usage: bash packaging/install.sh [--no-build] [--reinstall-criu] [--system-openssl] [--help]

Installs Sealpoint and its test dependencies on Debian 12 (run as root).
  --no-build        only system parts: apt packages, private CRIU 4.x, private OpenSSL 3.5,
                    podman configuration
  --reinstall-criu  download and unpack CRIU again even if $CRIU_PREFIX looks complete
  --system-openssl  do not build OpenSSL 3.5 into $OPENSSL_PREFIX (and remove it if there):
                    Sealpoint then uses the system's OpenSSL 3.0, whose AES-GCM is about half as fast
  --help            this text
EOF
}

for arg in "$@"; do
    case $arg in
        --no-build) DO_BUILD=0 ;;
        --reinstall-criu) REINSTALL_CRIU=1 ;;
        --system-openssl) SYSTEM_OPENSSL=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
fail() {
    # $1: what failed, $2: how to fix it.
    printf '\ninstall.sh: FAILED: %s\n  fix: %s\n' "$1" "$2" >&2
    exit 1
}
# Runs a command, and once more after a pause if it fails (apt mirrors have bad moments).
retry() {
    "$@" && return 0
    info "retrying in 5 s: $*"
    sleep 5
    "$@"
}

export DEBIAN_FRONTEND=noninteractive
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

check_machine() {
    step "Checking the machine"
    [[ $(id -u) -eq 0 ]] || fail "install.sh must run as root" "run it as root: sudo bash packaging/install.sh"
    [[ $(uname -m) == x86_64 ]] || fail "unsupported architecture $(uname -m)" "use an x86-64 machine"
    # shellcheck disable=SC1091
    local codename; codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [[ $codename == bookworm ]] || fail "this is '$codename', not Debian 12 bookworm" \
        "use Debian 12: the CRIU set-up pins trixie packages against a bookworm base"
    info "Debian bookworm, $(uname -r), repo $REPO_ROOT"
    # sealpoint-runc serves a restored container's memory to CRIU through FUSE (it decrypts into staging without it).
    [[ -e /dev/fuse ]] || modprobe fuse 2>/dev/null || true
    if [[ -e /dev/fuse ]]; then info "/dev/fuse present (memory served on restore)"
    else info "no /dev/fuse (modprobe fuse failed): restores decrypt memory into staging instead; the FUSE tests will fail"; fi
}

# --- apt ----------------------------------------------------------------------------------------

APT_UPDATED=0
apt_update() {
    [[ $APT_UPDATED -eq 1 ]] && return 0
    info "apt-get update"
    retry apt-get update -q >/dev/null || fail "apt-get update failed" \
        "check the apt sources in /etc/apt/sources.list.d and the network, then run install.sh again"
    APT_UPDATED=1
}

missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"
    done
}

install_packages() {
    step "System packages"
    local missing
    missing=$(missing_packages "${APT_PACKAGES[@]}" | tr '\n' ' ')
    if [[ -z ${missing// /} ]]; then
        info "all ${#APT_PACKAGES[@]} packages already installed"
        return 0
    fi
    info "installing: $missing"
    apt_update
    # Keep package scripts from starting daemons (containerd, docker-registry): on this machine
    # there is no service manager to look after them, and tests start their own instances.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; own_policy=1
    fi
    # shellcheck disable=SC2086
    if ! retry apt-get install -y -q --no-install-recommends $missing; then
        [[ $own_policy -eq 1 ]] && rm -f "$policy"
        fail "apt-get install of: $missing" \
            "read the apt output above; try 'apt-get install $missing' by hand, then run install.sh again"
    fi
    [[ $own_policy -eq 1 ]] && rm -f "$policy"
    missing=$(missing_packages "${APT_PACKAGES[@]}" | tr '\n' ' ')
    [[ -z ${missing// /} ]] || fail "packages still not installed: $missing" "run apt-get install $missing and read its output"
}

# --- CRIU 4.x from trixie, private -----------------------------------------------------------------

# Writes the trixie deb822 source from the machine's own bookworm source (same mirror and keyring),
# so no host name is hard-coded here.
write_trixie_source() {
    local uris="" signed="" line
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        # The first stanza whose Suites list the plain "bookworm" suite.
        local block
        block=$(awk 'BEGIN{RS=""} /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t\n]|$)/ {print; exit}' \
            /etc/apt/sources.list.d/debian.sources)
        uris=$(sed -n 's/^URIs:[[:space:]]*//p' <<<"$block" | head -n1)
        signed=$(sed -n 's/^Signed-By:[[:space:]]*//p' <<<"$block" | head -n1)
    fi
    if [[ -z $uris && -f /etc/apt/sources.list ]]; then
        # One-line format: deb [options] URI bookworm components
        line=$(grep -E '^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+bookworm[[:space:]]' \
            /etc/apt/sources.list | head -n1 || true)
        uris=$(sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/' <<<"$line")
    fi
    [[ -n $uris ]] || fail "no Debian bookworm apt source found to derive the trixie source from" \
        "add the Debian bookworm main archive to /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
    [[ -n $signed ]] || signed=/usr/share/keyrings/debian-archive-keyring.gpg
    # The security archive too, as source only: the private OpenSSL is built from trixie's newest source, fixes
    # included. Derived from the bookworm-security stanza when there is one.
    local security=""
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        security=$(awk 'BEGIN{RS=""} /(^|\n)Suites:[^\n]*[ \t]bookworm-security([ \t\n]|$)/ {print; exit}' \
            /etc/apt/sources.list.d/debian.sources | sed -n 's/^URIs:[[:space:]]*//p' | head -n1)
    fi
    local want
    want=$(printf 'Types: deb deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' "$uris" "$signed")
    [[ -z $security ]] || want+=$(printf '\n\nTypes: deb-src\nURIs: %s\nSuites: trixie-security\nComponents: main\nSigned-By: %s\n' "$security" "$signed")
    if [[ ! -f $TRIXIE_SOURCES || $(grep -v '^#' "$TRIXIE_SOURCES") != "$want" ]]; then
        printf '# Added by Sealpoint install.sh: only for downloading CRIU 4.x and the OpenSSL source (pinned low, see %s)\n%s\n' \
            "$TRIXIE_PIN" "$want" >"$TRIXIE_SOURCES"
        APT_UPDATED=0
        info "wrote $TRIXIE_SOURCES (from the bookworm source $uris)"
    fi
    # Priority 100: trixie packages are never chosen over bookworm ones, nothing gets upgraded.
    local pin='Package: *
Pin: release n=trixie
Pin-Priority: 100'
    if [[ ! -f $TRIXIE_PIN || $(grep -v '^#' "$TRIXIE_PIN") != "$pin" ]]; then
        printf '# Added by Sealpoint install.sh: trixie is only for the private CRIU and OpenSSL downloads\n%s\n' "$pin" >"$TRIXIE_PIN"
        APT_UPDATED=0
        info "wrote $TRIXIE_PIN"
    fi
}

criu_private() {
    "$CRIU_PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
        --library-path "$CRIU_PREFIX/usr/lib/x86_64-linux-gnu" "$CRIU_PREFIX/usr/sbin/criu" "$@"
}

write_criu_launcher() {
    local want
    want="#!/bin/sh
# Sealpoint: CRIU 4.x from Debian trixie, run with its own loader and libraries from
# $CRIU_PREFIX (Debian 12's CRIU 3.17 fails on this kernel). Written by packaging/install.sh.
exec $CRIU_PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path $CRIU_PREFIX/usr/lib/x86_64-linux-gnu $CRIU_PREFIX/usr/sbin/criu \"\$@\""
    if [[ ! -f $CRIU_LAUNCHER || $(cat "$CRIU_LAUNCHER") != "$want" ]]; then
        mkdir -p "$(dirname "$CRIU_LAUNCHER")"
        printf '%s\n' "$want" >"$CRIU_LAUNCHER.new"
        chmod 755 "$CRIU_LAUNCHER.new"
        mv -f "$CRIU_LAUNCHER.new" "$CRIU_LAUNCHER"
        info "wrote launcher $CRIU_LAUNCHER"
    fi
}

# Every library the private criu resolves must come from the private prefix: a system library
# would be a bookworm build mixed with trixie's libc.
check_criu_libraries() {
    local listing bad
    listing=$("$CRIU_PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --list \
        --library-path "$CRIU_PREFIX/usr/lib/x86_64-linux-gnu" "$CRIU_PREFIX/usr/sbin/criu" 2>&1) \
        || fail "the private loader cannot load criu: $listing" "run install.sh --reinstall-criu"
    if grep -q 'not found' <<<"$listing"; then
        fail "criu needs libraries missing from $CRIU_PREFIX: $(grep 'not found' <<<"$listing" | awk '{print $1}' | tr '\n' ' ')" \
            "add the trixie packages holding them to CRIU_PACKAGES in packaging/install.sh, then run it with --reinstall-criu"
    fi
    bad=$(grep '=>' <<<"$listing" | awk '{print $3}' | grep -v "^$CRIU_PREFIX/" || true)
    [[ -z $bad ]] || fail "criu resolves libraries outside $CRIU_PREFIX: $bad" \
        "add the trixie packages holding them to CRIU_PACKAGES in packaging/install.sh, then run it with --reinstall-criu"
}

install_criu() {
    step "CRIU 4.x (private copy from Debian trixie in $CRIU_PREFIX)"
    write_trixie_source
    local stamp=$CRIU_PREFIX/.sealpoint-installed version=""
    if [[ $REINSTALL_CRIU -eq 0 && -f $stamp && -x $CRIU_PREFIX/usr/sbin/criu ]]; then
        version=$(criu_private --version 2>/dev/null | sed -n 's/^Version: //p' || true)
    fi
    if [[ $version == 4.* ]]; then
        info "CRIU $version already unpacked ($(cat "$stamp")), skipping the download"
    else
        apt_update
        local work; work=$(mktemp -d /tmp/sealpoint-criu.XXXXXX)
        CLEANUP+=("$work")
        # apt downloads as its sandbox user _apt, which must be able to write there.
        id _apt >/dev/null 2>&1 && chown _apt "$work"
        info "downloading from trixie: ${CRIU_PACKAGES[*]}"
        (cd "$work" && retry apt-get download -q -t trixie "${CRIU_PACKAGES[@]}" >/dev/null) \
            || fail "apt-get download -t trixie of the CRIU packages" \
                "check that 'apt-cache policy criu' lists a trixie 4.x version (source $TRIXIE_SOURCES); a package renamed in trixie must be renamed in CRIU_PACKAGES"
        local staging=$CRIU_PREFIX.new deb
        rm -rf "$staging"; mkdir -p "$staging"
        for deb in "$work"/*.deb; do
            dpkg -x "$deb" "$staging" || fail "dpkg -x $deb" "run install.sh --reinstall-criu; if it repeats, the download is damaged: apt-get clean"
        done
        [[ -x $staging/usr/sbin/criu && -e $staging/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 ]] \
            || fail "the unpacked packages lack usr/sbin/criu or the trixie loader" "check the trixie package list in CRIU_PACKAGES"
        (cd "$work" && ls -1 ./*.deb | sed 's|^\./||') >"$staging/.sealpoint-packages"
        rm -rf "$CRIU_PREFIX.old"
        [[ -d $CRIU_PREFIX ]] && mv "$CRIU_PREFIX" "$CRIU_PREFIX.old"
        mv "$staging" "$CRIU_PREFIX"
        rm -rf "$CRIU_PREFIX.old"
        version=$(criu_private --version | sed -n 's/^Version: //p')
        [[ $version == 4.* ]] || fail "unpacked CRIU reports version '$version', expected 4.x" "check 'apt-cache policy criu' for the trixie version"
        echo "criu $version from trixie, $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$stamp"
        info "unpacked CRIU $version"
    fi
    check_criu_libraries
    write_criu_launcher
    local out
    out=$("$CRIU_LAUNCHER" --version 2>&1) || fail "$CRIU_LAUNCHER --version: $out" "run install.sh --reinstall-criu"
    [[ $out == *"Version: 4."* ]] || fail "$CRIU_LAUNCHER --version says: $out" "run install.sh --reinstall-criu"
    local found; found=$(command -v criu || true)
    [[ $found == "$CRIU_LAUNCHER" ]] || info "WARNING: 'criu' on PATH is '$found', not $CRIU_LAUNCHER; put /usr/local/sbin first in PATH"
    out=$("$CRIU_LAUNCHER" check 2>&1) || fail "criu check: $out" "read CRIU's messages above; the kernel may lack a checkpoint/restore feature"
    [[ $out == *"Looks good"* ]] || fail "criu check did not say 'Looks good': $out" "read CRIU's messages above"
    info "criu check: Looks good ($(grep -c -i warn <<<"$out" || true) warnings)"
}

# --- OpenSSL 3.5 for Sealpoint, private -------------------------------------------------------------

# Debian 12's OpenSSL 3.0 has no AES-GCM code for VAES/AVX-512; 3.5's seals a 4 KiB page about twice as fast
# (docs/benchmarks.md). Trixie's binary package needs trixie's libc, so its source is built here against the
# system's, with Debian's patches, and only libcrypto/libssl are kept. Sealpoint's programs load them by path at
# start (Sealpoint.Core/Crypto/OpenSslLibrary.cs); nothing else on the machine sees them. The configuration and
# trusted certificates stay the system's (--openssldir=/usr/lib/ssl). Running install.sh again rebuilds it when
# trixie or trixie-security has a newer source.

# The trixie source versions of openssl apt knows, newest first (sort -V orders '~' first, as dpkg does).
openssl_source_versions() {
    apt-cache madison openssl 2>/dev/null | awk -F'|' '$3 ~ /trixie/ && $3 ~ /Sources/ {gsub(/ /, "", $2); print $2}' | sort -urV
}

# The loader must resolve both libraries against this system's libc, libssl against this libcrypto (the programs
# load libcrypto first, by path). ld.so --list exits 0 even when a symbol version is missing: its text is checked.
check_openssl_libraries() {
    local dir=$1 lib listing
    for lib in libcrypto.so.3 libssl.so.3; do
        listing=$(/lib64/ld-linux-x86-64.so.2 --library-path "$dir" --list "$dir/$lib" 2>&1) \
            || fail "the system loader cannot load $dir/$lib: $listing" "run install.sh again; to do without it: install.sh --system-openssl"
        ! grep -q 'not found' <<<"$listing" \
            || fail "$dir/$lib needs what this system lacks: $(grep 'not found' <<<"$listing" | tr '\n' ' ')" \
                "run install.sh again; to do without it: install.sh --system-openssl"
    done
}

install_openssl() {
    step "OpenSSL 3.5 for Sealpoint (private build of Debian trixie's source in $OPENSSL_PREFIX)"
    if [[ $SYSTEM_OPENSSL -eq 1 ]]; then
        rm -rf "$OPENSSL_PREFIX"
        info "--system-openssl: none built; Sealpoint uses the system's OpenSSL $(openssl version | awk '{print $2}')"
        return 0
    fi
    local stamp=$OPENSSL_PREFIX/.sealpoint-installed versions installed=""
    versions=$(openssl_source_versions)
    if [[ -z $versions ]]; then
        apt_update
        versions=$(openssl_source_versions)
    fi
    [[ -n $versions ]] || fail "apt knows no trixie source package of openssl" \
        "check the deb-src entries in $TRIXIE_SOURCES and run apt-get update; to do without it: install.sh --system-openssl"
    [[ -f $stamp && -f $OPENSSL_PREFIX/lib/libssl.so.3 ]] && installed=$(sed -n 's/^openssl //p' "$stamp" | head -n1)
    local work; work=$(mktemp -d /tmp/sealpoint-openssl.XXXXXX)
    CLEANUP+=("$work")
    id _apt >/dev/null 2>&1 && chown _apt "$work"
    # Newest first; a version whose files the mirror lacks (an index ahead of its pool) gives way to the next.
    # apt checks the source files against the signed archive index, and dpkg-source applies Debian's patches.
    local version="" v newest; newest=$(head -n1 <<<"$versions")
    for v in $versions; do
        if [[ $v == "$installed" ]]; then
            check_openssl_libraries "$OPENSSL_PREFIX/lib"
            info "OpenSSL $v already built ($(sed -n 2p "$stamp")), skipping the build"
            [[ $v == "$newest" ]] || info "WARNING: trixie lists openssl $newest, whose source could not be downloaded; run install.sh again later"
            return 0
        fi
        info "downloading and unpacking the openssl $v source"
        if (cd "$work" && apt-get source -q "openssl=$v" >"$work/source.log" 2>&1); then version=$v; break; fi
        info "openssl $v: $(grep -m1 -E '^(E|W):' "$work/source.log" || tail -n1 "$work/source.log")"
        find "$work" -mindepth 1 -delete
    done
    [[ -n $version ]] || fail "apt-get source of openssl (tried: $(tr '\n' ' ' <<<"$versions"))" \
        "check the deb-src entries in $TRIXIE_SOURCES and the network; to do without it: install.sh --system-openssl"
    [[ $version == "$newest" ]] || info "WARNING: building openssl $version, not trixie's newest $newest (its source could not be downloaded)"
    local src; src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'openssl-*' | head -n1)
    [[ -n $src && -x $src/Configure ]] || fail "the openssl source did not unpack in $work" "install dpkg-dev, then run install.sh again"
    local log=/var/log/sealpoint-openssl-build.log
    info "building libcrypto and libssl (about 2 minutes on 2 cores; log $log)"
    # Only what Sealpoint's programs (and .NET's OpenSSL shim) use: no apps, docs, tests, engines, or legacy provider.
    (cd "$src" && ./Configure linux-x86_64 --prefix="$OPENSSL_PREFIX" --libdir=lib --openssldir=/usr/lib/ssl \
        shared no-tests no-docs no-apps no-legacy no-engine no-module && make -j"$(nproc)" build_libs) >"$log" 2>&1 \
        || fail "building OpenSSL $version (last lines: $(tail -n 3 "$log" | tr '\n' ' '))" \
            "read $log; to do without it: install.sh --system-openssl"
    local staging=$OPENSSL_PREFIX.new
    rm -rf "$staging"; mkdir -p "$staging/lib"
    install -m 644 "$src/libcrypto.so.3" "$src/libssl.so.3" "$staging/lib/"
    check_openssl_libraries "$staging/lib"
    printf 'openssl %s\nbuilt from Debian trixie source %s\n' "$version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$staging/.sealpoint-installed"
    rm -rf "$OPENSSL_PREFIX.old"
    [[ -d $OPENSSL_PREFIX ]] && mv "$OPENSSL_PREFIX" "$OPENSSL_PREFIX.old"
    mv "$staging" "$OPENSSL_PREFIX"
    rm -rf "$OPENSSL_PREFIX.old"
    info "built OpenSSL $version into $OPENSSL_PREFIX/lib"
}

# --- podman -------------------------------------------------------------------------------------------

configure_podman() {
    step "Podman configuration"
    local runc; runc=$(command -v runc) || fail "runc is not on PATH" "apt-get install runc"
    # Why each setting: root here lacks CAP_SYS_RESOURCE, so podman's default ulimits (nofile
    # 1048576) fail; crun (podman's default runtime) links bookworm's old libcriu, so use runc;
    # there is no systemd, so cgroupfs and file-based events.
    local want
    want="# Written by Sealpoint packaging/install.sh for machines without CAP_SYS_RESOURCE or systemd.
[containers]
default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"

[engine.runtimes]
runc = [\"$runc\"]"
    mkdir -p "$(dirname "$PODMAN_DROPIN")"
    if [[ ! -f $PODMAN_DROPIN || $(cat "$PODMAN_DROPIN") != "$want" ]]; then
        printf '%s\n' "$want" >"$PODMAN_DROPIN"
        info "wrote $PODMAN_DROPIN"
    else
        info "$PODMAN_DROPIN up to date"
    fi
    local out
    out=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}} {{.Host.CgroupManager}} {{.Store.GraphDriverName}}' 2>&1) \
        || fail "podman info: $out" "read podman's message; check $PODMAN_DROPIN and /etc/containers/storage.conf"
    info "podman info: runtime, path, cgroup manager, storage = $out"
}

# --- Sealpoint build ------------------------------------------------------------------------------------

build_sealpoint() {
    step "Building Sealpoint into $BIN_DIR"
    local staging=$BIN_DIR.new name
    rm -rf "$staging"
    # The same publish the benchmark measures: see packaging/publish.sh for what and why.
    bash "$REPO_ROOT/packaging/publish.sh" "$staging" | sed 's/^/    /' \
        || fail "publishing Sealpoint into $staging (messages above)" "fix what publish.sh names, then run install.sh again"
    rm -rf "$BIN_DIR.old"
    [[ -d $BIN_DIR ]] && mv "$BIN_DIR" "$BIN_DIR.old"
    mv "$staging" "$BIN_DIR"
    rm -rf "$BIN_DIR.old"
    for name in sealpoint sealpoint-runc sealpoint-hook; do
        if [[ -e $BIN_DIR/$name ]]; then
            ln -sfn "$BIN_DIR/$name" "/usr/local/bin/$name"
        else
            rm -f "/usr/local/bin/$name"
        fi
    done
    info "installed: $(cd "$BIN_DIR" && ls sealpoint sealpoint-runc sealpoint-runc-core sealpoint-hook 2>/dev/null | tr '\n' ' ')"
    # The programs must run on the private OpenSSL when it is installed (OpenSslLibrary loads it; a failure warns).
    local reported
    reported=$("$BIN_DIR/sealpoint" --version 2>&1) || fail "$BIN_DIR/sealpoint --version: $reported" "read the message above"
    if [[ -f $OPENSSL_PREFIX/.sealpoint-installed && $reported != *"private build in $OPENSSL_PREFIX/lib"* ]]; then
        fail "sealpoint does not use the private OpenSSL in $OPENSSL_PREFIX: $reported" \
            "read the warning above; run install.sh again, or install.sh --system-openssl to do without it"
    fi
    info "$reported"

    local hooks=("$REPO_ROOT"/hooks/hooks.d/*.json)
    if [[ -e ${hooks[0]} ]]; then
        mkdir -p /usr/share/containers/oci/hooks.d
        install -m 644 "${hooks[@]}" /usr/share/containers/oci/hooks.d/
        info "OCI hooks: ${hooks[*]##*/} -> /usr/share/containers/oci/hooks.d/"
    else
        info "no hooks/hooks.d/*.json yet, no OCI hook installed"
    fi
    local example
    for example in "$REPO_ROOT/config.example.toml" "$REPO_ROOT/packaging/config.example.toml"; do
        [[ -f $example ]] || continue
        if [[ -f /etc/sealpoint/config.toml ]]; then
            info "/etc/sealpoint/config.toml exists, left as it is"
        else
            install -D -m 644 "$example" /etc/sealpoint/config.toml
            info "installed $example as /etc/sealpoint/config.toml"
        fi
        return 0
    done
    info "no config.example.toml in the repo yet, /etc/sealpoint/config.toml not installed"
}

build_workloads() {
    step "Test workloads into $WORKLOAD_DIR"
    bash "$REPO_ROOT/tests/workloads/build.sh" "$WORKLOAD_DIR" >/dev/null \
        || fail "building the test workloads" "run: bash tests/workloads/build.sh $WORKLOAD_DIR and read the compiler output"
    info "built: $(ls "$WORKLOAD_DIR" | tr '\n' ' ')"
}

# The busybox rootfs is rebuilt each run (it is small); the image is imported again only when the
# rootfs content changed, which a checksum of a reproducible tar tells.
prepare_test_image() {
    step "Busybox test rootfs and image $TEST_IMAGE"
    local busybox=/bin/busybox
    [[ -x $busybox ]] || fail "$busybox not found" "apt-get install busybox-static"
    # The rootfs has no libc: busybox must be the static build.
    if ldd "$busybox" >/dev/null 2>&1; then
        fail "$busybox is dynamically linked (package busybox, not busybox-static)" "apt-get install busybox-static"
    fi
    local staging=$ROOTFS_DIR.new applet
    rm -rf "$staging"
    mkdir -p "$staging"/{bin,dev,etc,proc,sys,tmp,root,run,var/tmp}
    chmod 1777 "$staging/tmp" "$staging/var/tmp"
    cp "$busybox" "$staging/bin/busybox"
    for applet in $("$busybox" --list); do
        [[ $applet == busybox ]] || ln -s busybox "$staging/bin/$applet"
    done
    cp "$WORKLOAD_DIR"/{secretholder,memhog,proctree} "$staging/bin/"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$staging/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$staging/etc/group"
    rm -rf "$ROOTFS_DIR"; mv "$staging" "$ROOTFS_DIR"

    local tarball=$TESTDATA_DIR/busybox-rootfs.tar sum stampfile=$TESTDATA_DIR/busybox-rootfs.sha256
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$ROOTFS_DIR" -cf "$tarball" .
    sum=$(sha256sum "$tarball" | cut -d' ' -f1)
    if podman image exists "$TEST_IMAGE" && [[ -f $stampfile && $(cat "$stampfile") == "$sum" ]]; then
        info "$TEST_IMAGE is up to date"
    else
        podman image rm -f "$TEST_IMAGE" >/dev/null 2>&1 || true
        local out
        out=$(podman import --change 'CMD ["/bin/sh"]' "$tarball" "$TEST_IMAGE" 2>&1) \
            || fail "podman import of $tarball: $out" "check 'podman info' works, then run install.sh again"
        echo "$sum" >"$stampfile"
        info "imported $TEST_IMAGE"
    fi
    local runc; runc=$(command -v runc)
    local out
    out=$(timeout 120 podman run --rm --network none --runtime "$runc" "$TEST_IMAGE" /bin/sh -c 'echo sealpoint-ok; /bin/secretholder x 2>&1 | head -n 1' 2>&1) \
        || fail "podman run of $TEST_IMAGE: $out" "read podman's message; check $PODMAN_DROPIN (ulimits, runtime)"
    [[ $out == *sealpoint-ok* ]] || fail "podman run printed: $out" "read podman's message above"
    info "podman run --network none --runtime $runc $TEST_IMAGE: ok"
}

summary() {
    step "Done in $((SECONDS - START_TIME)) s"
    info "criu:      $CRIU_LAUNCHER -> $CRIU_PREFIX ($("$CRIU_LAUNCHER" --version | head -n1))"
    info "openssl:   $([[ -f $OPENSSL_PREFIX/.sealpoint-installed ]] && echo "$OPENSSL_PREFIX ($(head -n1 "$OPENSSL_PREFIX/.sealpoint-installed"))" || echo "the system's ($(openssl version | awk '{print $2}'))")"
    info "runc:      $(command -v runc) ($(runc --version | head -n1))"
    info "podman:    $(command -v podman), drop-in $PODMAN_DROPIN"
    if [[ $DO_BUILD -eq 1 ]]; then
        info "sealpoint: $BIN_DIR (links in /usr/local/bin)"
        info "workloads: $WORKLOAD_DIR"
        info "rootfs:    $ROOTFS_DIR, image $TEST_IMAGE"
    fi
}

main() {
    check_machine
    install_packages
    install_criu
    install_openssl
    configure_podman
    if [[ $DO_BUILD -eq 1 ]]; then
        build_sealpoint
        build_workloads
        prepare_test_image
    else
        info "--no-build: skipped the Sealpoint build, workloads and test image"
    fi
    summary
}

main
