#!/usr/bin/env bash
# Runs the scaling benchmarks against real local services (release build): PostgreSQL,
# MariaDB, the Docker engine and the sshd test hosts.
#
# BENCH_MAX_N=1000 scripts/bench.sh stops the tenant sweep (10, 100, 1,000, 10,000
# tenants on MariaDB) at 1,000; the 10,000 step alone takes about 15 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/docker-engine.sh
bash scripts/ssh-hosts.sh
# shellcheck disable=SC1091
source target/services.env
# shellcheck disable=SC1091
source target/ssh/env
# Evaluation alone (no services): locals and for_each at growing sizes.
cargo bench --locked -p terrace-config --bench eval
cargo bench --locked --bench scaling
# Files on an SSH host: a no-change plan with 1, 20 and 200 files against the same
# project with none (the host probe's cost per file).
cargo bench --locked --bench scaling -- ssh-files
# The tenant sweep: first apply, no-change plan, drift plan, destroy per N; a Markdown
# table with wall, terrace CPU, peak RSS and ratios.
BENCH_MAX_N="${BENCH_MAX_N:-10000}" cargo bench --locked --bench scaling -- tenants
# The same with containers (database, user, grant, volume, container per tenant), to 1,000.
BENCH_MAX_N="${BENCH_MAX_N:-10000}" cargo bench --locked --bench scaling -- docker-tenants
# The Docker provider's observe alone: engine requests, connections and wall time per N.
exec cargo run --locked --release -p terrace-provider-docker --example observe_scale -- 100 300
