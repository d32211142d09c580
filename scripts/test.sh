#!/usr/bin/env bash
# Runs terrace's whole test suite against real local services: brings up MariaDB and
# PostgreSQL (scripts/services.sh), PgBouncer in front of it (scripts/pgbouncer.sh),
# throwaway sshd hosts (scripts/ssh-hosts.sh), a Docker
# engine with locally built images (scripts/docker-engine.sh, scripts/images.sh), and
# a MariaDB reachable only over SSH (scripts/ns-services.sh), a second host with its own
# sshd and Docker engine in a network namespace (scripts/second-host.sh), then runs every
# test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/pgbouncer.sh
bash scripts/docker-engine.sh
bash scripts/images.sh
bash scripts/redis-image.sh
bash scripts/ssh-hosts.sh
bash scripts/ns-services.sh
bash scripts/second-host.sh
# shellcheck disable=SC1091
source target/services.env
# shellcheck disable=SC1091
source target/ssh/env
# shellcheck disable=SC1091
source target/ns-services.env
# shellcheck disable=SC1091
source target/second-host.env
exec cargo test --workspace --locked "$@"
