#!/usr/bin/env bash
# Runs the scaling benchmark against the real local PostgreSQL (release build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
# shellcheck disable=SC1091
source target/services.env
exec cargo bench --locked --bench scaling
