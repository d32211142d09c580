#!/usr/bin/env bash
# Install (if missing) and start the real local services terrace's tests and examples use:
# MariaDB on 127.0.0.1:3306, PostgreSQL on 127.0.0.1:5432 and Redis 7 on 127.0.0.1:6379,
# each with a password-authenticated admin account for TCP logins (Redis: an ACL user, the
# `default` user disabled). Idempotent: safe to run again.
#
# Writes the connection settings to target/services.env (mode 0600) for the tests and the
# demo to source. Debian 12, run as root (as on CI and the dev machines).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
env_file="$here/target/services.env"
mkdir -p "$here/target"

# Dev-only credentials for throwaway local servers; never used anywhere else.
MYSQL_ADMIN_USER=terrace_admin
MYSQL_ADMIN_PASSWORD=${TERRACE_DEV_MYSQL_PASSWORD:-terrace-dev-mysql}
PG_ADMIN_USER=terrace_admin
PG_ADMIN_PASSWORD=${TERRACE_DEV_PG_PASSWORD:-terrace-dev-pg}
REDIS_ADMIN_USER=terrace_admin
REDIS_ADMIN_PASSWORD=${TERRACE_DEV_REDIS_PASSWORD:-terrace-dev-redis}
REDIS_DIR=/var/lib/terrace-redis

log() { printf '[services] %s\n' "$*" >&2; }

need_install=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_install+=(mariadb-server mariadb-client)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_install+=(postgresql)
# ACL users need Redis >= 6; Debian 12 ships 7.0.
command -v redis-server >/dev/null 2>&1 || need_install+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_install+=(redis-tools)
if [ ${#need_install[@]} -gt 0 ]; then
  log "installing ${need_install[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

wait_for() { # wait_for NAME CMD... : retry CMD for up to 60 s
  local name=$1; shift
  for _ in $(seq 1 120); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$name did not become ready"; return 1
}

# --- MariaDB -------------------------------------------------------------------------
# Its log is read by a test (a connection closed without a goodbye is logged there).
mariadb_log=/tmp/terrace-mariadb.log
if ! mariadb-admin --protocol=socket ping >/dev/null 2>&1; then
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  (setsid mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 \
     >"$mariadb_log" 2>&1 &)
  wait_for MariaDB mariadb-admin --protocol=socket ping
fi
# A server killed without a shutdown (dev machines and CI runners are stopped that way)
# can come back with its Aria privilege tables inconsistent — CHECK TABLE says "Found 6
# keys of 5" — and then loses or misplaces grants written later (a CI run saw a GRANT
# succeed and its row missing). Repair them before anything reads or writes accounts.
mariadb-check --protocol=socket --auto-repair --silent --databases mysql >/dev/null 2>&1 \
  || log "mariadb-check could not check the privilege tables"
mariadb --protocol=socket -e 'FLUSH PRIVILEGES'
mariadb --protocol=socket <<SQL
CREATE USER IF NOT EXISTS '$MYSQL_ADMIN_USER'@'%' IDENTIFIED BY '$MYSQL_ADMIN_PASSWORD';
ALTER USER '$MYSQL_ADMIN_USER'@'%' IDENTIFIED BY '$MYSQL_ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_ADMIN_USER'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS '$MYSQL_ADMIN_USER'@'localhost' IDENTIFIED BY '$MYSQL_ADMIN_PASSWORD';
ALTER USER '$MYSQL_ADMIN_USER'@'localhost' IDENTIFIED BY '$MYSQL_ADMIN_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_ADMIN_USER'@'localhost' WITH GRANT OPTION;
SQL

# --- PostgreSQL ----------------------------------------------------------------------
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  log "starting PostgreSQL"
  [ -d /etc/postgresql/15/main ] || pg_createcluster 15 main >/dev/null
  pg_ctlcluster --skip-systemctl-redirect 15 main start || true
  wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
fi
su postgres -c "psql -q -v ON_ERROR_STOP=1" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ADMIN_USER') THEN
    CREATE ROLE $PG_ADMIN_USER LOGIN SUPERUSER;
  END IF;
END \$\$;
ALTER ROLE $PG_ADMIN_USER WITH LOGIN SUPERUSER PASSWORD '$PG_ADMIN_PASSWORD';
SQL

# --- Redis ---------------------------------------------------------------------------
# Its own config file (0600: it holds the admin password, which must not be in argv) and
# data directory, not Debian's packaged instance. The admin user is declared in the file;
# `default` is off, so nothing logs in without a password.
redis_ping() { REDISCLI_AUTH="$REDIS_ADMIN_PASSWORD" redis-cli --no-auth-warning -h 127.0.0.1 -p 6379 \
  --user "$REDIS_ADMIN_USER" ping 2>/dev/null | grep -qx PONG; }
if ! redis_ping; then
  log "starting Redis"
  mkdir -p "$REDIS_DIR"
  chown redis:redis "$REDIS_DIR" 2>/dev/null || true
  (umask 077; cat >"$REDIS_DIR/redis.conf" <<CONF
bind 127.0.0.1
port 6379
dir $REDIS_DIR
daemonize no
save ""
appendonly no
user default off
user $REDIS_ADMIN_USER on >$REDIS_ADMIN_PASSWORD ~* &* +@all
CONF
  )
  chown redis:redis "$REDIS_DIR/redis.conf" 2>/dev/null || true
  if id redis >/dev/null 2>&1; then run_as=(setpriv --reuid=redis --regid=redis --init-groups); else run_as=(); fi
  (setsid "${run_as[@]}" redis-server "$REDIS_DIR/redis.conf" >/tmp/terrace-redis.log 2>&1 &)
  wait_for Redis redis_ping
fi

umask 077
cat >"$env_file" <<ENV
export TERRACE_TEST_MYSQL_URL='mysql://$MYSQL_ADMIN_USER:$MYSQL_ADMIN_PASSWORD@127.0.0.1:3306'
export TERRACE_TEST_MYSQL_LOG='$mariadb_log'
export TERRACE_TEST_PG_URL='postgres://$PG_ADMIN_USER:$PG_ADMIN_PASSWORD@127.0.0.1:5432/postgres'
export TERRACE_VAR_mysql_admin_password='$MYSQL_ADMIN_PASSWORD'
export TERRACE_VAR_pg_admin_password='$PG_ADMIN_PASSWORD'
export TERRACE_TEST_REDIS_URL='redis://$REDIS_ADMIN_USER:$REDIS_ADMIN_PASSWORD@127.0.0.1:6379'
export TERRACE_VAR_redis_admin_password='$REDIS_ADMIN_PASSWORD'
ENV
log "MariaDB on 127.0.0.1:3306, PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379 (settings in target/services.env)"
