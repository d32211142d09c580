#!/usr/bin/env bash
# PgBouncer in transaction pooling mode in front of the test PostgreSQL (scripts/services.sh
# must have run), for the PostgreSQL state backend's tests (tests/pgbouncer_e2e.rs).
# Idempotent: installs Debian's pgbouncer if missing, (re)writes its files, starts it if it
# is not answering. Adds TERRACE_TEST_PGBOUNCER_URL to target/services.env.
#
# The admin password reaches PgBouncer only through its userlist file (mode 0600, owned by
# the user PgBouncer runs as), never through arguments.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
env_file="$here/target/services.env"
DIR=/var/lib/terrace-pgbouncer
PORT=6432
PG_ADMIN_USER=terrace_admin
PG_ADMIN_PASSWORD=${TERRACE_DEV_PG_PASSWORD:-terrace-dev-pg}
log() { printf '[pgbouncer] %s\n' "$*" >&2; }

command -v pgbouncer >/dev/null 2>&1 ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends pgbouncer >/dev/null
# Debian's packaged instance (systemd) is not used.

install -d -m 0700 -o postgres -g postgres "$DIR"
(umask 077
cat >"$DIR/pgbouncer.ini.new" <<INI
[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $DIR/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 10
server_reset_query =
pidfile = $DIR/pgbouncer.pid
logfile = $DIR/pgbouncer.log
admin_users = $PG_ADMIN_USER
INI
printf '"%s" "%s"\n' "$PG_ADMIN_USER" "$PG_ADMIN_PASSWORD" >"$DIR/userlist.txt.new")
chown postgres:postgres "$DIR/pgbouncer.ini.new" "$DIR/userlist.txt.new"
changed=0
for f in pgbouncer.ini userlist.txt; do
  if cmp -s "$DIR/$f.new" "$DIR/$f"; then rm -f "$DIR/$f.new"; else mv "$DIR/$f.new" "$DIR/$f"; changed=1; fi
done

ready() { PGPASSWORD="$PG_ADMIN_PASSWORD" psql -h 127.0.0.1 -p "$PORT" -U "$PG_ADMIN_USER" \
  -d postgres -Atqc 'select 1' 2>/dev/null | grep -qx 1; }
pid=$(cat "$DIR/pgbouncer.pid" 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  # Running: a changed configuration is reloaded (SIGHUP), not restarted.
  [ "$changed" = 0 ] || { log "reloading"; kill -HUP "$pid"; sleep 1; }
else
  log "starting PgBouncer on 127.0.0.1:$PORT (transaction pooling)"
  setpriv --reuid=postgres --regid=postgres --init-groups pgbouncer -d -q "$DIR/pgbouncer.ini"
fi
for _ in $(seq 60); do ready && break; sleep 1; done
ready || { log "PgBouncer does not answer; see $DIR/pgbouncer.log"; exit 1; }

# The URL for the tests, replacing any previous line.
umask 077
touch "$env_file"
grep -v '^export TERRACE_TEST_PGBOUNCER_URL=' "$env_file" >"$env_file.tmp" || true
echo "export TERRACE_TEST_PGBOUNCER_URL='postgres://$PG_ADMIN_USER:$PG_ADMIN_PASSWORD@127.0.0.1:$PORT/postgres'" >>"$env_file.tmp"
mv "$env_file.tmp" "$env_file"
log "PgBouncer $(pgbouncer --version | head -1 | cut -d' ' -f2) on 127.0.0.1:$PORT, pool_mode=transaction"
