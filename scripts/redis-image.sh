#!/usr/bin/env bash
# Build terrace/redis:1 locally (no registry is reachable here): this machine's own
# redis-server (Redis 7, from scripts/services.sh) with the libraries it links, and a
# static busybox for the entrypoint. Cached by tag. Needs a running engine
# (scripts/docker-engine.sh) and redis-server installed (scripts/services.sh).
#
# A container from the image writes /data/redis.conf on start: `default` user off, and
# the admin ACL user REDIS_ADMIN_USER with REDIS_ADMIN_PASSWORD (from the environment,
# never in a process argument); then it runs redis-server on port 6379.
set -euo pipefail

IMAGE=terrace/redis:1
log() { printf '[redis-image] %s\n' "$*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE present (cached)"
  exit 0
fi
command -v redis-server >/dev/null || { log "redis-server missing: run scripts/services.sh"; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/usr/bin" "$dir/data" "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
for applet in sh cat echo mkdir sleep; do ln -s busybox "$dir/bin/$applet"; done
cp "$(command -v redis-server)" "$dir/usr/bin/redis-server"
# The dynamic libraries redis-server needs, at the paths the loader looks in.
ldd "$(command -v redis-server)" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }' | while read -r lib; do
  [ -f "$lib" ] || continue
  mkdir -p "$dir$(dirname "$lib")"
  cp -L "$lib" "$dir$lib"
done
cat >"$dir/bin/terrace-redis-entrypoint" <<'SH'
#!/bin/sh
set -e
umask 077
{
  echo "port 6379"
  echo "bind 0.0.0.0"
  echo "protected-mode no"
  echo "dir /data"
  echo "save \"\""
  echo "user default off"
  if [ -n "$REDIS_ADMIN_USER" ]; then
    echo "user $REDIS_ADMIN_USER on >$REDIS_ADMIN_PASSWORD ~* &* +@all"
  fi
} >/data/redis.conf
exec /usr/bin/redis-server /data/redis.conf
SH
chmod 755 "$dir/bin/terrace-redis-entrypoint"
tar -C "$dir" -c . | docker import \
  --change 'ENTRYPOINT ["/bin/terrace-redis-entrypoint"]' - "$IMAGE" >/dev/null
log "built $IMAGE"
