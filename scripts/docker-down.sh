#!/usr/bin/env bash
# Stop the Docker engine that scripts/docker-up.sh started, and nothing else.
#
# Why a pid file and not `pkill dockerd`: an engine that was already running (a developer's own,
# or one the machine provides) must survive. If the pid file is missing, stale, or names a
# process that is not dockerd, we only remove the file.
set -euo pipefail

STATE_DIR="${OPTML_DOCKER_STATE_DIR:-/run/optml-docker}"
PID_FILE="$STATE_DIR/dockerd.pid"
GRACE_SECONDS="${OPTML_DOCKERD_STOP_GRACE:-30}"

log() { printf 'docker-down: %s\n' "$*" >&2; }

if [ ! -f "$PID_FILE" ]; then
  log "no engine was started by docker-up.sh; nothing to stop"
  exit 0
fi
pid="$(cat "$PID_FILE")"
if ! kill -0 "$pid" 2>/dev/null || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "dockerd" ]; then
  log "pid $pid is not a running dockerd; removing the stale pid file"
  rm -f "$PID_FILE"
  exit 0
fi

log "stopping dockerd (pid $pid)"
kill -TERM "$pid"
deadline=$((SECONDS + GRACE_SECONDS))
while kill -0 "$pid" 2>/dev/null; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "dockerd ignored SIGTERM for ${GRACE_SECONDS}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
rm -f "$PID_FILE"
log "stopped"
