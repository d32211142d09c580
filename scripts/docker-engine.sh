#!/usr/bin/env bash
# Make a Docker engine available at /var/run/docker.sock and build the tiny test image
# terrace/busybox:1 (no registry is reachable here, so images are built locally).
#
# Idempotent and fast when everything is already in place: installs docker.io only if no
# engine binary exists, starts dockerd only if the socket does not answer, builds the
# image only if `docker image inspect` does not find it; restarts a dockerd that runs but
# does not answer. Debian 12, run as root.
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

# Every probe is bounded: a hung engine accepts the connection and never answers.
answers() { timeout 10 docker info >/dev/null 2>&1; }

if ! answers && pid=$(cat /var/run/docker.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  # Running but not answering (seen after ~1,000 containers: "runc did not terminate"):
  # a second dockerd would fail on the same pid file and socket, so stop this one.
  log "dockerd (pid $pid) does not answer within 10 s: restarting it"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  # Killed, it leaves its pid file, which the next dockerd refuses to start over.
  rm -f /var/run/docker.pid
fi

if ! answers; then
  log "starting dockerd (log: $LOG)"
  # setsid: dockerd must outlive this script and not get its terminal's signals.
  setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
  ready=0
  deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if answers; then ready=1; break; fi
    sleep 0.5
  done
  if [ "$ready" = 0 ]; then
    log "dockerd did not become ready within 60 s; last lines of $LOG:"
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
fi
log "engine ready after $(elapsed "$start")"

if ! timeout 30 docker image inspect "$IMAGE" >/dev/null 2>&1; then
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
