#!/usr/bin/env bash
# Build the real-database test image terrace/mariadb:1 locally (no registry is reachable
# here): a Debian bookworm minbase rootfs with MariaDB, imported with `docker import`.
#
# Cached by tag: does nothing when `docker image inspect` finds it. The rootfs lives in a
# temporary directory and is deleted afterwards; it is never part of the repository.
# Needs a running engine (scripts/docker-engine.sh). Debian 12, run as root.
#
# A container from the image runs /usr/local/bin/terrace-mariadb-entrypoint: on first
# start (empty /var/lib/mysql) it initialises the datadir and, if MARIADB_ADMIN_USER is
# set, creates that account for '%' with MARIADB_ADMIN_PASSWORD and ALL PRIVILEGES WITH
# GRANT OPTION; then it runs mariadbd --user=mysql --bind-address=0.0.0.0.
set -euo pipefail

IMAGE=terrace/mariadb:1
start=$(date +%s.%N)
log() { printf '[images] %s\n' "$*" >&2; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }

if ! docker info >/dev/null 2>&1; then
  log "no Docker engine answers; run scripts/docker-engine.sh first"
  exit 1
fi
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE present (cached) — $(elapsed "$start")"
  exit 0
fi

# The Debian mirror this machine's apt already uses (the only network it may reach).
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}
log "mirror: $mirror"

if ! command -v debootstrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

dir=$(mktemp -d /var/tmp/terrace-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT

t=$(date +%s.%N)
debootstrap --variant=minbase --include=mariadb-server,mariadb-client bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || {
  log "debootstrap failed; last lines:"; tail -n 30 "$dir.log" >&2; rm -f "$dir.log"; exit 1; }
rm -f "$dir.log"
log "debootstrap took $(elapsed "$t")"

# The package's postinst may have initialised a datadir in the chroot; an image must ship
# an empty one so that each container initialises its own (and creates its admin).
rm -rf "$dir"/var/lib/mysql/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*

cat >"$dir/usr/local/bin/terrace-mariadb-entrypoint" <<'ENTRY'
#!/bin/sh
# Starts MariaDB; on first start initialises the datadir and creates the admin account.
# The password travels only through the client's stdin: never in argv, a file or output.
set -eu
datadir=/var/lib/mysql
sock=/run/mysqld/mysqld.sock
mkdir -p /run/mysqld "$datadir"
chown mysql:mysql /run/mysqld "$datadir"

if [ ! -d "$datadir/mysql" ]; then
  echo "terrace-mariadb-entrypoint: initialising $datadir"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
  if [ -n "${MARIADB_ADMIN_USER:-}" ]; then
    if [ -z "${MARIADB_ADMIN_PASSWORD:-}" ]; then
      echo "terrace-mariadb-entrypoint: MARIADB_ADMIN_PASSWORD is required with MARIADB_ADMIN_USER" >&2
      exit 1
    fi
    # A private server (no TCP) just for setup; root logs in over the unix socket.
    mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$sock" &
    pid=$!
    i=0
    until mariadb-admin --socket="$sock" ping >/dev/null 2>&1; do
      i=$((i + 1))
      if [ "$i" -gt 120 ]; then echo "terrace-mariadb-entrypoint: setup server did not start" >&2; exit 1; fi
      sleep 0.5
    done
    # SQL string literals: double backslashes (escapes are on) and single quotes.
    lit() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g"; }
    u=$(lit "$MARIADB_ADMIN_USER")
    p=$(lit "$MARIADB_ADMIN_PASSWORD")
    printf "CREATE USER '%s'@'%%' IDENTIFIED BY '%s';\nGRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION;\nFLUSH PRIVILEGES;\n" \
      "$u" "$p" "$u" | mariadb --socket="$sock" -uroot
    unset p
    mariadb-admin --socket="$sock" shutdown
    wait "$pid" || true
    echo "terrace-mariadb-entrypoint: admin account created"
  fi
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --socket="$sock"
ENTRY
chmod 0755 "$dir/usr/local/bin/terrace-mariadb-entrypoint"

t=$(date +%s.%N)
tar -C "$dir" -c . | docker import --change 'CMD ["/usr/local/bin/terrace-mariadb-entrypoint"]' - "$IMAGE" >/dev/null
log "imported $IMAGE in $(elapsed "$t") (total $(elapsed "$start"))"
