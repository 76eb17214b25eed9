#!/usr/bin/env bash
# Build a minimal Debian bookworm image with Python 3.11 from Debian's own packages, for machines
# that can reach an apt mirror but no container registry (so `python:3.11-slim-bookworm` cannot be
# pulled). The Dockerfile then builds on it:
#
#   scripts/build-base-image.sh
#   docker build --build-arg BASE_IMAGE=greenlight-base:bookworm -t greenlight .
#
# debootstrap (minbase) + python3 + python3-venv (ensurepip, which the Dockerfile's builder stage
# needs) + ca-certificates, then `docker import`. Idempotent: does nothing when the tag exists
# (FORCE=1 rebuilds). Needs root, debootstrap and a running Docker engine.
#
# Settings (environment):
#   BASE_TAG        image tag to create            (default greenlight-base:bookworm)
#   DEBIAN_MIRROR   apt mirror for bookworm        (default: the one this machine's apt uses)
#   SECURITY_MIRROR apt mirror for bookworm-security (default: derived from DEBIAN_MIRROR)
#   FORCE=1         rebuild even if the tag exists
#   NO_UPGRADE=1    skip applying bookworm-updates/-security on top of the debootstrap
#   EXTRA_CA_CERTS  space-separated CA certificate files to trust inside the image (default: this
#                   machine's own additions in /usr/local/share/ca-certificates/*.crt, so that pip
#                   in the builder stage works behind the same TLS-intercepting proxy as the host;
#                   set it empty to add none)
set -euo pipefail

BASE_TAG="${BASE_TAG:-greenlight-base:bookworm}"
SUITE=bookworm
DOCKER="${DOCKER:-docker}"

log() { printf 'build-base-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The first URI this machine's apt uses for Debian bookworm (not -security), one-line or deb822.
detect_mirror() {
    local uri=""
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '
        $1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\// && $(i + 1) == "bookworm") { print $i; exit } }')
    if [[ -z "$uri" ]]; then
        uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
            BEGIN { RS = ""; FS = "\n" }
            { u = ""; ok = 0
              for (i = 1; i <= NF; i++) {
                  if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
                  if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) ok = 1
              }
              if (ok && u != "" && u !~ /security/) { print u; exit } }')
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers ('$DOCKER info' failed)"

if [[ "${FORCE:-0}" != 1 ]] && "$DOCKER" image inspect "$BASE_TAG" >/dev/null 2>&1; then
    log "$BASE_TAG already exists (FORCE=1 rebuilds)"
    exit 0
fi

MIRROR="${DEBIAN_MIRROR:-$(detect_mirror)}"
MIRROR="${MIRROR%/}"
SECURITY_MIRROR="${SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}"
log "mirror $MIRROR (security: $SECURITY_MIRROR)"

WORK=$(mktemp -d /var/tmp/greenlight-base.XXXXXX)
ROOTFS="$WORK/rootfs"
cleanup() {
    # Never leave a bind mount behind inside the rootfs before deleting it.
    for m in proc dev/pts dev sys; do
        mountpoint -q "$ROOTFS/$m" 2>/dev/null && umount -l "$ROOTFS/$m"
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

log "debootstrap $SUITE (minbase + python3, python3-venv, ca-certificates) into $ROOTFS"
debootstrap --variant=minbase --components=main \
    --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

# Small like Debian's official slim images: no docs (copyright files kept), man pages or locales,
# no downloaded .debs or package lists in the image.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
EOF
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF

if [[ "${NO_UPGRADE:-0}" != 1 ]]; then
    log "applying $SUITE-updates and $SUITE-security"
    mount -t proc proc "$ROOTFS/proc"
    if ! chroot "$ROOTFS" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' \
        >"$WORK/upgrade.log" 2>&1; then
        tail -n 20 "$WORK/upgrade.log" >&2
        die "apt-get upgrade inside the rootfs failed (NO_UPGRADE=1 skips it)"
    fi
    umount "$ROOTFS/proc"
fi

if [[ -z "${EXTRA_CA_CERTS+set}" ]]; then
    EXTRA_CA_CERTS=$(ls /usr/local/share/ca-certificates/*.crt 2>/dev/null | tr '\n' ' ' || true)
fi
if [[ -n "${EXTRA_CA_CERTS// /}" ]]; then
    log "trusting extra CA certificates: $EXTRA_CA_CERTS"
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    for cert in $EXTRA_CA_CERTS; do
        cp "$cert" "$ROOTFS/usr/local/share/ca-certificates/$(basename "${cert%.crt}").crt"
    done
    chroot "$ROOTFS" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed"
fi

rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/log/*.log \
    "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/*
find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
find "$ROOTFS" -name __pycache__ -type d -prune -exec rm -rf {} +
: >"$ROOTFS/etc/machine-id"

PYVER=$(chroot "$ROOTFS" /usr/bin/python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
chroot "$ROOTFS" /usr/bin/python3 -c 'import ensurepip, venv, ssl' || die "python3 in the rootfs lacks ensurepip/venv/ssl"
log "Python $PYVER; importing as $BASE_TAG"

tar --numeric-owner --xattrs -C "$ROOTFS" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase + Python $PYVER (debootstrap from $MIRROR)\"" \
    --change 'CMD ["/bin/bash"]' \
    - "$BASE_TAG" >/dev/null
log "done: $("$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$BASE_TAG")"
