#!/usr/bin/env bash
# A MariaDB that listens on 127.0.0.1:3306 *inside* the network namespace of the `fw`
# test host (scripts/ssh-hosts.sh makes it): from the machine's own namespace it can only
# be reached through that host's SSH connection, which is what the tests of SQL over an
# SSH tunnel need. Idempotent. Writes target/ns-services.env (mode 0600).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ns=terrace-fw
datadir=/var/lib/terrace-ns-mariadb
rundir=/run/terrace-ns-mariadb
sock=$rundir/mysqld.sock
password=${TERRACE_DEV_NS_MYSQL_PASSWORD:-terrace-dev-ns-mysql}
log() { printf '[ns-services] %s\n' "$*" >&2; }

ip netns list | grep -qw "$ns" || { log "namespace $ns is missing: run scripts/ssh-hosts.sh first"; exit 1; }
ip -n "$ns" link set lo up

mkdir -p "$rundir" && chown mysql:mysql "$rundir"
if [ ! -d "$datadir/mysql" ]; then
  mkdir -p "$datadir" && chown mysql:mysql "$datadir"
  mariadb-install-db --no-defaults --user=mysql --datadir="$datadir" >/dev/null
fi
if ! mariadb-admin --no-defaults --socket="$sock" ping >/dev/null 2>&1; then
  log "starting MariaDB inside namespace $ns on 127.0.0.1:3306"
  (ip netns exec "$ns" setsid mariadbd --no-defaults --user=mysql --datadir="$datadir" \
     --socket="$sock" --pid-file="$rundir/mysqld.pid" --port=3306 --bind-address=127.0.0.1 \
     --log-error="$rundir/error.log" >/dev/null 2>&1 &)
  for _ in $(seq 1 120); do
    mariadb-admin --no-defaults --socket="$sock" ping >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
mariadb --no-defaults --socket="$sock" <<SQL
CREATE USER IF NOT EXISTS 'terrace_admin'@'127.0.0.1' IDENTIFIED BY '$password';
ALTER USER 'terrace_admin'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'terrace_admin'@'127.0.0.1' WITH GRANT OPTION;
SQL
umask 077
cat >"$here/target/ns-services.env" <<ENV
export TERRACE_TEST_NS_MYSQL_SOCKET='$sock'
export TERRACE_VAR_ns_mysql_admin_password='$password'
ENV
log "MariaDB in $ns on 127.0.0.1:3306 (settings in target/ns-services.env)"
