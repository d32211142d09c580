#!/usr/bin/env bash
# Make a Docker engine available at /var/run/docker.sock and build the tiny test image
# terrace/busybox:1 (no registry is reachable here, so images are built locally).
#
# Idempotent and fast when everything is already in place: installs docker.io only if no
# engine binary exists, starts dockerd only if the socket does not answer, builds the
# image only if `docker image inspect` does not find it. Debian 12, run as root.
set -euo pipefail

IMAGE=terrace/busybox:1
LOG=/var/log/terrace-dockerd.log
start=$(date +%s.%N)

log() { printf '[docker-engine] %s\n' "$*" >&2; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  apt-get install -y -qq "$@" >/dev/null
}

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  apt_install docker.io
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: $LOG)"
  # setsid: dockerd must outlive this script and not get its terminal's signals.
  setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
  ready=0
  for _ in $(seq 1 120); do # bounded: 60 s
    if docker info >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.5
  done
  if [ "$ready" = 0 ]; then
    log "dockerd did not become ready within 60 s; last lines of $LOG:"
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
fi
log "engine ready after $(elapsed "$start")"

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  t=$(date +%s.%N)
  # The static build: the image has no libc for a dynamically linked busybox to load.
  dpkg -s busybox-static >/dev/null 2>&1 || apt_install busybox-static
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  mkdir -p "$dir/bin"
  cp /bin/busybox "$dir/bin/busybox"
  for applet in sh sleep httpd nc wget cat echo env ls mkdir; do
    ln -s busybox "$dir/bin/$applet"
  done
  tar -C "$dir" -c . | docker import - "$IMAGE" >/dev/null
  log "built $IMAGE in $(elapsed "$t")"
fi
log "done in $(elapsed "$start")"
