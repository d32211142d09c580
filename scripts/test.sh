#!/usr/bin/env bash
# Runs terrace's whole test suite against real local services: brings up MariaDB and
# PostgreSQL (scripts/services.sh), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
# shellcheck disable=SC1091
source target/services.env
exec cargo test --workspace --locked "$@"
