#!/usr/bin/env bash
# Download the wheels every optml image installs, once, into a cache OUTSIDE the repository.
#
# Why: inside a container build pip cannot reach a package index (builds run with
# `--network none`, and TLS to the registry fails in containers here anyway), so images install
# with `pip install --no-index --find-links` from a wheelhouse made on the host. Wheels are
# fetched for the images' interpreter and platform (CPython 3.11, glibc x86_64: Debian bookworm
# and python:3.11-slim alike), binary only, so nothing compiles inside an image.
#
# One wheel set per image, keyed by a hash of its requirements and target:
#   base     optml's core dependencies, read from pyproject.toml [project].dependencies
#   <fw>     containers/<fw>/requirements.txt, resolved together with base's exact versions
#            (pins), so a framework image never changes a package the base image installed
# Layout: $OPTML_WHEELHOUSE_CACHE/<set>-<hash>/{*.whl, requirements.txt, constraints.txt}
# A set is complete when its .complete marker exists; complete sets are reused as they are.
#
# Usage: scripts/build-wheelhouse.sh [--python-version 3.11] [--platform manylinux_2_36_x86_64]
#                                     [SET...]        (default: base and every containers/<fw>)
# Prints one "SET=DIR" line per set on stdout; progress goes to stderr.
# Environment: OPTML_WHEELHOUSE_CACHE (default ~/.cache/optml/wheelhouse),
#              OPTML_TORCH_WHEELS (extra find-links dir holding the CPU torch wheel; /opt/wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

PY_VERSION="3.11"
PLATFORM="manylinux_2_36_x86_64"   # glibc 2.36 = bookworm; pip also accepts older manylinux tags
CACHE="${OPTML_WHEELHOUSE_CACHE:-$HOME/.cache/optml/wheelhouse}"
TORCH_WHEELS="${OPTML_TORCH_WHEELS:-/opt/wheels}"
HOST_PYTHON="${PYTHON:-python3}"
SETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PY_VERSION="$2"; shift 2 ;;
    --platform) PLATFORM="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "build-wheelhouse: unknown option: $1" >&2; exit 2 ;;
    *) SETS+=("$1"); shift ;;
  esac
done
if [ ${#SETS[@]} -eq 0 ]; then
  SETS=(base)
  for dir in containers/*/; do
    [ -f "$dir/requirements.txt" ] && SETS+=("$(basename "$dir")")
  done
fi

log() { printf 'build-wheelhouse: %s\n' "$*" >&2; }

PY_NODOT="${PY_VERSION/./}"
PIP_TARGET=(--only-binary=:all: --python-version "$PY_VERSION" --implementation cp
            --abi "cp$PY_NODOT" --abi abi3 --abi none)
# Older pips take --platform literally, so spell out every manylinux tag the target accepts.
if [[ "$PLATFORM" =~ ^manylinux_2_([0-9]+)_(.+)$ ]]; then
  glibc_minor="${BASH_REMATCH[1]}"; arch="${BASH_REMATCH[2]}"
  for ((minor = glibc_minor; minor >= 5; minor--)); do
    PIP_TARGET+=(--platform "manylinux_2_${minor}_$arch")
  done
  PIP_TARGET+=(--platform "manylinux2014_$arch" --platform "manylinux2010_$arch"
               --platform "manylinux1_$arch")
else
  PIP_TARGET+=(--platform "$PLATFORM")
fi
PIP_TARGET+=(--platform any)
FIND_LINKS=()
[ -d "$TORCH_WHEELS" ] && FIND_LINKS=(--find-links "$TORCH_WHEELS")

# pyproject.toml's core dependencies are the base image's requirements: one source of truth.
base_requirements() {
  "$HOST_PYTHON" - "$REPO/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    deps = tomllib.load(fh)["project"]["dependencies"]
print("# generated from pyproject.toml [project].dependencies")
print("\n".join(deps))
PY
}

# "name==version" for every wheel in DIR, so a framework set resolves against base's exact picks.
pins_of() {
  "$HOST_PYTHON" - "$1" <<'PY'
import pathlib, re, sys
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    name, version = wheel.name.split("-")[:2]
    print(f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}")
PY
}

set_key() {  # hash of everything that decides a set's content
  { printf '%s\n' "$PY_VERSION" "$PLATFORM" "$1"; cat; } | sha256sum | cut -c1-16
}

download_set() {  # name requirements-text constraints-text -> prints dir
  local name="$1" reqs="$2" cons="$3"
  local key dir tmp
  key="$(printf '%s\n--\n%s\n' "$reqs" "$cons" | set_key "$name")"
  dir="$CACHE/$name-$key"
  if [ -f "$dir/.complete" ]; then
    log "$name: cached at $dir"
    echo "$dir"; return
  fi
  mkdir -p "$CACHE"
  tmp="$(mktemp -d "$CACHE/.partial-$name.XXXXXX")"
  printf '%s\n' "$reqs" > "$tmp/requirements.txt"
  printf '%s\n' "$cons" > "$tmp/constraints.txt"
  log "$name: downloading wheels for cp$PY_NODOT/$PLATFORM"
  # (grep drops pip's notes about index locations that do not exist on this machine)
  if ! "$HOST_PYTHON" -m pip download --quiet --no-cache-dir --dest "$tmp" "${PIP_TARGET[@]}" \
        "${FIND_LINKS[@]}" -r "$tmp/requirements.txt" -c "$tmp/constraints.txt" \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); then
    rm -rf "$tmp"
    log "$name: pip download failed; requirements were:"; printf '  %s\n' "$reqs" >&2
    exit 1
  fi
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"   # atomic: a set is either complete or absent
  log "$name: $(find "$dir" -name '*.whl' | wc -l) wheels, $(du -sh "$dir" | cut -f1)"
  echo "$dir"
}

BASE_REQS="$(base_requirements)"
BASE_DIR="$(download_set base "$BASE_REQS" "")"
BASE_PINS="$(pins_of "$BASE_DIR")"
for name in "${SETS[@]}"; do
  if [ "$name" = base ]; then
    echo "base=$BASE_DIR"; continue
  fi
  req_file="containers/$name/requirements.txt"
  if [ ! -f "$req_file" ]; then
    log "no such image: $name ($req_file is missing)"; exit 2
  fi
  # Base's requirements go in too: the set must hold everything pip resolves for the image.
  echo "$name=$(download_set "$name" "$BASE_REQS"$'\n'"$(cat "$req_file")" "$BASE_PINS")"
done
