#!/usr/bin/env bash
# Build the optml images offline: base (Dockerfile.base) and the framework images
# (containers/<name>/Dockerfile), tagged optml/<name>:<version> and optml/<name>:latest.
#
# Usage: scripts/build-images.sh [--base-image IMAGE] [--no-cache] [NAME...]
#   NAME        base and/or framework names (default: base and every containers/<name>)
#   --base-image the CPython image Dockerfile.base builds FROM. Default: python:3.11-slim when
#               it is already present locally, else optml/python-standin:bookworm, which is
#               built first when missing (scripts/build-base-standin.sh). Nothing is pulled.
#   --no-cache  rebuild every layer (the wheelhouse cache is still used)
#
# Every build runs with `--network none`: wheels come from the host wheelhouse
# (scripts/build-wheelhouse.sh, cached outside the repo) through BuildKit bind mounts, and the
# optml wheel is built from this checkout. Layers are cached by the engine, and the optml wheel
# is built reproducibly (SOURCE_DATE_EPOCH), so an unchanged tree rebuilds nothing.
# Prints each image's size and the total build time; on a terminal, a live line shows which
# image of how many is building, for how long, and its current step (scripts/lib/
# build_progress.py, with rich from optml[local]). Needs a reachable engine
# (scripts/docker-up.sh) and a BuildKit-capable client (buildx, or a pre-23 docker CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
STARTED=$SECONDS

BASE_IMAGE=""
NO_CACHE=()
NAMES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base-image) BASE_IMAGE="$2"; shift 2 ;;
    --base-image=*) BASE_IMAGE="${1#*=}"; shift ;;
    --no-cache) NO_CACHE=(--no-cache); shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "build-images: unknown option: $1" >&2; exit 2 ;;
    *) NAMES+=("$1"); shift ;;
  esac
done
FRAMEWORKS=()
for dir in containers/*/; do
  [ -f "$dir/Dockerfile" ] && FRAMEWORKS+=("$(basename "$dir")")
done
if [ ${#NAMES[@]} -eq 0 ]; then NAMES=(base "${FRAMEWORKS[@]}"); fi
for name in "${NAMES[@]}"; do
  if [ "$name" != base ] && [ ! -f "containers/$name/Dockerfile" ]; then
    echo "build-images: unknown image '$name' (known: base ${FRAMEWORKS[*]})" >&2; exit 2
  fi
done

log() { printf 'build-images: %s\n' "$*" >&2; }

VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')"
STANDIN="${OPTML_STANDIN_IMAGE:-optml/python-standin:bookworm}"

# --- a client that speaks BuildKit ------------------------------------------------------------
# RUN --mount needs BuildKit. Newer CLIs delegate it to the buildx plugin; pre-23 CLIs (Debian's
# docker.io) have it built in behind DOCKER_BUILDKIT=1.
BUILD=()
if docker buildx version >/dev/null 2>&1; then
  BUILD=(docker buildx build --load)
else
  for client in docker /usr/bin/docker; do
    major="$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)"
    if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
      BUILD=(env DOCKER_BUILDKIT=1 "$client" build); break
    fi
  done
fi
if [ ${#BUILD[@]} -eq 0 ]; then
  log "no BuildKit-capable docker client: install the buildx plugin (docker-buildx) or docker.io"
  exit 1
fi

# --- base image to build FROM -----------------------------------------------------------------
if [ -z "$BASE_IMAGE" ]; then
  if docker image inspect python:3.11-slim >/dev/null 2>&1; then
    BASE_IMAGE=python:3.11-slim
  else
    BASE_IMAGE="$STANDIN"
  fi
fi
if [ "$BASE_IMAGE" = "$STANDIN" ]; then
  scripts/build-base-standin.sh
elif ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE is not present locally and builds never pull; build or load it first"
  exit 1
fi
log "building ${NAMES[*]} at version $VERSION on $BASE_IMAGE"

# --- wheelhouse and the optml wheel -----------------------------------------------------------
WORK="$(mktemp -d /tmp/optml-images.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
SETS=(base)
for name in "${NAMES[@]}"; do [ "$name" != base ] && SETS+=("$name"); done
declare -A WHEELHOUSE
while IFS='=' read -r set dir; do WHEELHOUSE[$set]="$dir"; done \
  < <(scripts/build-wheelhouse.sh "${SETS[@]}")

# Built from a copy of the working tree (not the repo itself: no build/ or egg-info left behind),
# with fixed zip timestamps so an unchanged tree gives a byte-identical wheel and cached layers.
mkdir -p "$WORK/src" "$WORK/dist"
tar -C "$REPO" -c --exclude-vcs --exclude=./.venv --exclude=./tests --exclude=./bench \
    --exclude='*.egg-info' --exclude=./build --exclude=./dist --exclude='__pycache__' \
    --exclude=./.cache --exclude=./containers --exclude=./examples --exclude=./docs . \
  | tar -C "$WORK/src" -x
SOURCE_DATE_EPOCH=315532800 python3 -m pip wheel --quiet --no-deps --no-cache-dir \
  --wheel-dir "$WORK/dist" "$WORK/src" 2>&1 | grep -v 'is ignored: it is neither' >&2 || true
if ! ls "$WORK"/dist/optml-*.whl >/dev/null 2>&1; then
  log "building the optml wheel failed"; exit 1
fi

# --- the builds -------------------------------------------------------------------------------
link_tree() {  # hard links where possible (same filesystem), copies otherwise
  cp -al "$1" "$2" 2>/dev/null || { rm -rf "$2"; cp -a "$1" "$2"; }
}

# On a terminal, each build runs under a live status line; it needs rich (optml[local]), so it is
# used when the project's venv (or python3) has it. Elsewhere: the plain lines only.
PROGRESS=()
if [ -t 1 ]; then
  for py in "${OPTML_VENV:-$REPO/.venv}/bin/python" python3; do
    if "$py" -c 'import rich' >/dev/null 2>&1; then
      PROGRESS=("$py" "$REPO/scripts/lib/build_progress.py"); break
    fi
  done
fi
BUILD_TOTAL=1
for name in "${NAMES[@]}"; do [ "$name" != base ] && BUILD_TOTAL=$((BUILD_TOTAL + 1)); done
BUILD_INDEX=0

build() {  # name dockerfile context [build-arg...]
  local name="$1" dockerfile="$2" context="$3"; shift 3
  local args=()
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  local t0=$SECONDS
  BUILD_INDEX=$((BUILD_INDEX + 1))
  local command=("${BUILD[@]}" "${NO_CACHE[@]}" --network none --progress plain -f "$dockerfile"
                 --build-arg "OPTML_VERSION=$VERSION" "${args[@]}"
                 -t "optml/$name:$VERSION" -t "optml/$name:latest" "$context")
  local status=0
  if [ ${#PROGRESS[@]} -gt 0 ]; then
    "${PROGRESS[@]}" "$BUILD_INDEX" "$BUILD_TOTAL" "optml/$name:$VERSION" "$WORK/build-$name.log" \
      -- "${command[@]}" || status=$?
  else
    log "building optml/$name:$VERSION"
    "${command[@]}" > "$WORK/build-$name.log" 2>&1 || status=$?
  fi
  if [ "$status" -ne 0 ]
  then
    tail -n 40 "$WORK/build-$name.log" >&2
    log "building optml/$name failed"; exit 1
  fi
  log "built optml/$name:$VERSION in $((SECONDS - t0))s"
}

ctx="$WORK/ctx-base"; mkdir -p "$ctx"
link_tree "${WHEELHOUSE[base]}" "$ctx/wheelhouse"
cp -a "$WORK/dist" "$ctx/dist"
build base "$REPO/Dockerfile.base" "$ctx" "BASE_IMAGE=$BASE_IMAGE"

for name in "${NAMES[@]}"; do
  [ "$name" = base ] && continue
  ctx="$WORK/ctx-$name"; mkdir -p "$ctx"
  link_tree "${WHEELHOUSE[$name]}" "$ctx/wheelhouse"
  cp "containers/$name/optml_${name}_handlers.py" "$ctx/"
  build "$name" "$REPO/containers/$name/Dockerfile" "$ctx" "BASE_IMAGE=optml/base:$VERSION"
done

# --- report -----------------------------------------------------------------------------------
printf '%-28s %10s\n' IMAGE SIZE
BUILT=(base)
for name in "${NAMES[@]}"; do [ "$name" != base ] && BUILT+=("$name"); done
for name in "${BUILT[@]}"; do
  size="$(docker image inspect --format '{{.Size}}' "optml/$name:$VERSION")"
  printf '%-28s %7d MB\n' "optml/$name:$VERSION" $((size / 1000000))
done
printf 'total build time: %ds\n' $((SECONDS - STARTED))
