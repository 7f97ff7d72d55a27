#!/usr/bin/env bash
# Build the conformance suite's third-party images (tests/docker/conformance/images/<name>/),
# offline, as optml-conformance/<name>:latest. None of them is built on optml except three-line,
# which is the README's own "image in three lines".
#
# Why a script: these images are what a user would write for the service -- the reference
# training toolkit (`sagemaker-training`), the reference inference toolkit with Multi Model Server
# (`sagemaker-inference`, `multi-model-server`, a Java runtime), plain shell scripts -- so they
# need things no optml image has: PyPI packages (one with a C extension) and Debian packages.
# Nothing here reaches a registry from inside a container:
#   * wheels: `pip wheel` on the host (Debian bookworm's CPython 3.11, the stand-in's), cached
#     under $OPTML_WHEELHOUSE_CACHE/conformance-<name>-<hash of requirements.txt>;
#   * Debian packages: `apt-get --download-only` on the host, resolved against the stand-in's own
#     dpkg status (so exactly what the stand-in lacks), cached under
#     $OPTML_DEB_CACHE/<variant>-<hash>, installed with dpkg in a container that is committed as
#     a stand-in variant (optml/python-standin-<variant>:bookworm);
#   * images: `docker build --network none`, classic builder; wheels are installed into a venv in
#     a first stage, so no wheel lands in the final image.
# Cached: every image carries a label with the hash of everything that decides its content (its
# directory, its wheel set, its base image's id); an image whose label matches is reused as it is.
# From scratch (no wheel, no package, no image) it costs about 2.5 minutes; warm, a second.
# --force rebuilds.
#
# Usage: scripts/build-conformance-images.sh [--force] [NAME...]   (default: every image)
# Prints one "NAME=TAG" line per image on stdout; progress goes to stderr.
# Needs: optml/python-standin:bookworm (scripts/build-base-standin.sh runs when it is missing),
#        optml/sklearn:latest for three-line (scripts/build-images.sh).
# Environment: OPTML_WHEELHOUSE_CACHE (default ~/.cache/optml/wheelhouse),
#              OPTML_DEB_CACHE (default ~/.cache/optml/debs), PYTHON (host python3).
set -euo pipefail
shopt -s inherit_errexit   # a failure inside $(...) stops the script too
cd "$(dirname "$0")/.."
REPO="$PWD"
IMAGES_DIR="$REPO/tests/docker/conformance/images"
STANDIN="${OPTML_STANDIN_IMAGE:-optml/python-standin:bookworm}"
WHEEL_CACHE="${OPTML_WHEELHOUSE_CACHE:-$HOME/.cache/optml/wheelhouse}"
DEB_CACHE="${OPTML_DEB_CACHE:-$HOME/.cache/optml/debs}"
HOST_PYTHON="${PYTHON:-python3}"
KEY_LABEL="org.optml.conformance.key"
ALL=(training-toolkit inference-toolkit plain-shell nonroot three-line)
FORCE=0
NAMES=()
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    -*) echo "build-conformance-images: unknown option: $arg" >&2; exit 2 ;;
    *) NAMES+=("$arg") ;;
  esac
done
[ ${#NAMES[@]} -eq 0 ] && NAMES=("${ALL[@]}")
WORK="$(mktemp -d /tmp/optml-conformance.XXXXXX)"   # build contexts; helper containers' ids
trap 'while read -r c; do docker rm -f "$c" >/dev/null 2>&1; done < <(cat "$WORK"/*.cid 2>/dev/null); rm -rf "$WORK"' EXIT

log() { printf 'build-conformance-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
hash_of() { sha256sum | cut -c1-16; }
image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null; }
image_key() { docker image inspect --format "{{index .Config.Labels \"$KEY_LABEL\"}}" "$1" 2>/dev/null; }
fresh() {  # tag key -> true when the image exists with exactly this key
  [ "$FORCE" = 0 ] && [ "$(image_key "$1" || true)" = "$2" ]
}

# --- wheels -------------------------------------------------------------------------------------
# `pip wheel` on the host builds sdists (sagemaker-training has a C extension) for the host's
# interpreter; that is only right for the image when the host runs CPython 3.11 on glibc >= 2.36
# (bookworm), which the checks below make sure of.
wheel_set() {  # name requirements-file -> prints the cached wheel directory
  local name="$1" reqs="$2" key dir tmp
  "$HOST_PYTHON" - <<'PY' || die "$HOST_PYTHON is not CPython 3.11 on x86_64 glibc >= 2.36 (the stand-in's); set PYTHON"
import platform, sys
libc, version = platform.libc_ver()
ok = sys.version_info[:2] == (3, 11) and platform.machine() == "x86_64" and libc == "glibc"
sys.exit(0 if ok and tuple(map(int, version.split("."))) >= (2, 36) else 1)
PY
  key="$({ echo cp311; cat "$reqs"; } | hash_of)"
  dir="$WHEEL_CACHE/conformance-$name-$key"
  if [ ! -f "$dir/.complete" ]; then
    mkdir -p "$WHEEL_CACHE"
    tmp="$(mktemp -d "$WHEEL_CACHE/.partial-conformance-$name.XXXXXX")"
    log "$name: pip wheel -r $(realpath --relative-to="$REPO" "$reqs") (on the host)"
    if ! "$HOST_PYTHON" -m pip wheel --quiet --wheel-dir "$tmp" -r "$reqs" \
          2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); then
      rm -rf "$tmp"; die "$name: pip wheel failed"
    fi
    cp "$reqs" "$tmp/requirements.txt"
    touch "$tmp/.complete"
    rm -rf "$dir"; mv "$tmp" "$dir"   # atomic: a set is complete or absent
    log "$name: $(find "$dir" -name '*.whl' | wc -l) wheels, $(du -sh "$dir" | cut -f1)"
  fi
  echo "$dir"
}

# --- stand-in variants with extra Debian packages ----------------------------------------------
ensure_standin() {
  image_id "$STANDIN" >/dev/null || "$REPO/scripts/build-base-standin.sh"
}

standin_variant() {  # variant package... -> prints the tag of the stand-in plus those packages
  local variant="$1"; shift
  local tag="optml/python-standin-$variant:bookworm" key debs status cid
  key="$({ image_id "$STANDIN"; printf '%s\n' "$@"; } | hash_of)"
  if fresh "$tag" "$key"; then echo "$tag"; return; fi
  debs="$DEB_CACHE/$variant-$key"
  if [ ! -f "$debs/.complete" ]; then
    # the host's apt resolves the packages: only right when the host is the stand-in's release
    grep -qx 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null \
      || die "$variant: the host must run Debian bookworm (the stand-in's release) for apt-get to fetch its packages"
    log "$variant: downloading $* with what the stand-in lacks (apt-get on the host)"
    mkdir -p "$DEB_CACHE"
    rm -rf "$debs"; mkdir -p "$debs/partial"
    status="$debs/stand-in.status"
    cid="$(docker create --label org.optml.test=docker-tier "$STANDIN" true)"
    echo "$cid" > "$WORK/$variant-status.cid"
    docker cp "$cid:/var/lib/dpkg/status" "$status" >/dev/null
    docker rm -f "$cid" >/dev/null   # only its package list was wanted
    apt_get() {
      apt-get -qq -o Dir::State::status="$status" -o Dir::Cache::archives="$debs" \
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
    }
    if ! apt_get --download-only --no-install-recommends -y install "$@" >/dev/null; then
      # lists may be missing or stale on a fresh machine
      [ "$(id -u)" = 0 ] || die "$variant: apt-get --download-only failed (run apt-get update)"
      apt-get update -qq
      apt_get --download-only --no-install-recommends -y install "$@" >/dev/null \
        || die "$variant: apt-get could not download $*"
    fi
    rm -rf "$debs/partial" "$debs/lock" "$status"
    touch "$debs/.complete"
  fi
  log "$variant: installing $(find "$debs" -name '*.deb' | wc -l) packages into $tag"
  # (the stand-in drops /usr/share/man; openjdk's postinst links a man page there)
  cid="$(docker create --label org.optml.test=docker-tier --network none -v "$debs:/debs:ro" "$STANDIN" \
         sh -c 'mkdir -p /usr/share/man/man1 && DEBIAN_FRONTEND=noninteractive dpkg -i /debs/*.deb >/dev/null && rm -rf /usr/share/doc/* /usr/share/man/* /var/log/*.log')"
  echo "$cid" > "$WORK/$variant.cid"
  docker start -a "$cid" >&2 || die "$variant: dpkg -i failed"
  docker commit --change "LABEL $KEY_LABEL=$key" "$cid" "$tag" >/dev/null
  echo "$tag"
}

# --- the images ---------------------------------------------------------------------------------
base_of() {  # name -> the image its Dockerfile builds FROM (passed as --build-arg BASE)
  case "$1" in
    inference-toolkit) standin_variant jre default-jre-headless ;;
    plain-shell) standin_variant socat socat ;;
    nonroot) build_one plain-shell ;;
    three-line)
      image_id optml/sklearn:latest >/dev/null \
        || "$REPO/scripts/build-images.sh" --base-image "$STANDIN" sklearn >&2
      echo optml/sklearn:latest ;;
    *) echo "$STANDIN" ;;
  esac
}

build_one() {  # name -> prints its tag, building it unless an image with the same key exists
  local name="$1" dir="$IMAGES_DIR/$1" tag="optml-conformance/$1:latest" base wheels="" key ctx
  [ -f "$dir/Dockerfile" ] || die "no such conformance image: $name ($dir/Dockerfile is missing)"
  base="$(base_of "$name")"
  [ -f "$dir/requirements.in" ] && wheels="$(wheel_set "$name" "$dir/requirements.in")"
  key="$({ image_id "$base"; basename "$wheels";
           (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum); } | hash_of)"
  if fresh "$tag" "$key"; then echo "$tag"; return; fi
  log "$name: building $tag FROM $base"
  ctx="$WORK/$name"
  cp -a "$dir/." "$ctx/"
  mkdir -p "$ctx/wheelhouse"
  [ -n "$wheels" ] && { cp -al "$wheels/." "$ctx/wheelhouse/" 2>/dev/null || cp -a "$wheels/." "$ctx/wheelhouse/"; }
  if ! DOCKER_BUILDKIT=0 docker build --network none --build-arg "BASE=$base" \
        --label "$KEY_LABEL=$key" -t "$tag" "$ctx" >"$ctx.log" 2>&1; then
    tail -n 40 "$ctx.log" >&2; die "$name: docker build failed"
  fi
  echo "$tag"
}

ensure_standin
for name in "${NAMES[@]}"; do
  tag="$(build_one "$name")"
  echo "$name=$tag"
done
