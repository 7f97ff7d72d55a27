#!/usr/bin/env bash
# Make a Docker engine reachable, idempotently.
#
# Why a script: CI machines and fresh developer machines have no engine running (and may not
# have docker.io installed). If `docker info` already works we do nothing and start nothing, so
# a developer's own engine is never touched. Otherwise we install docker.io when dockerd is
# missing, start dockerd in the background logging to a file, and record ITS pid in a pid file:
# scripts/docker-down.sh stops only an engine this script started.
#
# Environment:
#   OPTML_DOCKER_STATE_DIR  where the pid file lives        (default /run/optml-docker)
#   OPTML_DOCKERD_LOG       dockerd's log file               (default /var/log/optml-dockerd.log)
#   OPTML_DOCKERD_WAIT      seconds to wait for `docker info` (default 90)
set -euo pipefail

STATE_DIR="${OPTML_DOCKER_STATE_DIR:-/run/optml-docker}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="${OPTML_DOCKERD_LOG:-/var/log/optml-dockerd.log}"
WAIT_SECONDS="${OPTML_DOCKERD_WAIT:-90}"

log() { printf 'docker-up: %s\n' "$*" >&2; }

engine_reachable() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_reachable; then
  log "an engine is already reachable; nothing to do"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io (dockerd is missing)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

mkdir -p "$STATE_DIR" "$(dirname "$LOG_FILE")"
if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  log "dockerd we started earlier (pid $(cat "$PID_FILE")) is still starting; waiting for it"
else
  # A stale daemon pid file (left by a killed dockerd) makes a new dockerd refuse to start.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  log "starting dockerd (log: $LOG_FILE)"
  # setsid: the daemon must not share our process group, so a Ctrl-C or a CI step ending
  # does not signal it; docker-down.sh stops it explicitly.
  setsid dockerd >>"$LOG_FILE" 2>&1 < /dev/null &
  echo $! > "$PID_FILE"
fi

deadline=$((SECONDS + WAIT_SECONDS))
until engine_reachable; do
  if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    log "dockerd exited while starting; last log lines:"
    tail -n 30 "$LOG_FILE" >&2 || true
    rm -f "$PID_FILE"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "dockerd did not answer within ${WAIT_SECONDS}s; last log lines:"
    tail -n 30 "$LOG_FILE" >&2 || true
    exit 1
  fi
  sleep 0.5
done
log "engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'), pid $(cat "$PID_FILE"))"
