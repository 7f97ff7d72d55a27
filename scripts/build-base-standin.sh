#!/usr/bin/env bash
# Build optml/python-standin:bookworm, a stand-in for python:3.11-slim, from Debian packages.
#
# Why: no container registry is reachable here (`docker pull` fails), but Debian's archive is.
# debootstrap's minbase variant plus python3 (bookworm ships 3.11, matching python:3.11-slim and
# the host) gives a small root filesystem that `docker import` turns into an image. Dockerfile.base
# builds FROM it with `--build-arg BASE_IMAGE=optml/python-standin:bookworm`.
#
# Cached: does nothing when the image already exists (pass --force to rebuild).
# Environment: OPTML_STANDIN_IMAGE (tag), OPTML_DEBIAN_MIRROR (default deb.debian.org).
set -euo pipefail

IMAGE="${OPTML_STANDIN_IMAGE:-optml/python-standin:bookworm}"
SUITE="bookworm"
MIRROR="${OPTML_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build-base-standin: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf 'build-base-standin: %s\n' "$*" >&2; }

if [ "$FORCE" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE exists; reusing it"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

ROOTFS="$(mktemp -d /tmp/optml-standin.XXXXXX)"
cleanup() { rm -rf --one-file-system "$ROOTFS"; }
trap cleanup EXIT

log "debootstrap $SUITE into $ROOTFS (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -n 30 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"

# Keep the image slim like python:*-slim: no apt lists, caches, docs or man pages.
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/*
# python:*-slim has `python` too; user scripts and shebangs often ask for it.
ln -sf python3 "$ROOTFS/usr/bin/python"

log "importing as $IMAGE"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >/dev/null
log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
