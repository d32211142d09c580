#!/usr/bin/env bash
# Runs the scaling benchmark against real local services (release build): PostgreSQL,
# the Docker engine and the sshd test hosts.
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
# The Docker provider's observe alone: engine requests, connections and wall time per N.
exec cargo run --locked --release -p terrace-provider-docker --example observe_scale -- 100 300
