#!/usr/bin/env bash
# Install the peers of the serving benchmark (bench/bench_serving.py), idempotently:
#   - wrk (load generator) and nginx (classic BYO front) from Debian;
#   - a Java runtime for Multi Model Server (any existing `java` on PATH is kept);
#   - a separate virtual environment, OUTSIDE the repository, holding the reference inference
#     toolkit on Multi Model Server. It is separate so the reference's pins never touch optml's
#     .venv, and outside the repo so nothing of it is ever committed.
# Re-running is cheap: every step checks first and does nothing when already satisfied.
#
# Environment:
#   OPTML_BENCH_CACHE   where the MMS venv lives (default: ~/.cache/optml-bench)
#   PYTHON              interpreter used to create that venv (default: python3)
set -euo pipefail

cache_dir="${OPTML_BENCH_CACHE:-$HOME/.cache/optml-bench}"
mms_venv="$cache_dir/mms-venv"
python_bin="${PYTHON:-python3}"

log() { printf 'bench-serving-setup: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    # Install only the Debian packages whose command is missing. Other tools may hold the dpkg
    # lock for a while (unattended installs): wait for it instead of failing.
    local missing=()
    while [ "$#" -gt 0 ]; do
        local cmd="$1" pkg="$2"
        shift 2
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
        apt_updated=1
    fi
    log "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

apt_install wrk wrk nginx nginx java default-jre-headless

# Debian's nginx package enables and starts a system service on port 80; the benchmark runs its
# own foreground instance with a private prefix and never needs that one.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    log "note: a system nginx service is running; the benchmark does not use it"
fi

if [ ! -x "$mms_venv/bin/multi-model-server" ] || [ ! -f "$mms_venv/.optml-bench-ready" ]; then
    log "creating $mms_venv"
    mkdir -p "$cache_dir"
    "$python_bin" -m venv "$mms_venv"
    "$mms_venv/bin/python" -m pip install -q --upgrade pip
    # sagemaker-inference is the reference handler toolkit; multi-model-server is the Java
    # front it starts. retrying is imported by sagemaker-inference's model server module.
    "$mms_venv/bin/python" -m pip install -q sagemaker-inference multi-model-server retrying
    touch "$mms_venv/.optml-bench-ready"
fi

log "ready: wrk=$(command -v wrk) nginx=$(command -v nginx) java=$(command -v java)"
log "ready: MMS venv at $mms_venv"
