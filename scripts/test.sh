#!/usr/bin/env bash
# Runs terrace's whole test suite against real local services: brings up MariaDB and
# PostgreSQL (scripts/services.sh) and throwaway sshd hosts (scripts/ssh-hosts.sh), then
# runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/ssh-hosts.sh
# shellcheck disable=SC1091
source target/services.env
# shellcheck disable=SC1091
source target/ssh/env
exec cargo test --workspace --locked "$@"
