#!/usr/bin/env bash
# terrace's main job on a fresh machine: bring up real local services, then plan and
# apply an example project against them, then show that a second plan is empty.
#
#   scripts/demo.sh [examples/shared-postgres | examples/ephemeral-clones | examples/wordpress-farm]
set -euo pipefail
cd "$(dirname "$0")/.."
example=${1:-examples/shared-postgres}
state=target/demo-$(basename "$example").state.json
cat <<EOF
== What this demo does to this machine
- installs (apt-get, if missing) and starts MariaDB, PostgreSQL and Redis on 127.0.0.1,
  each with a 'terrace_admin' account whose password is a DEVELOPMENT default
  (see target/services.env; set TERRACE_DEV_*_PASSWORD before the first run to change it);
- for examples with containers: a local Docker engine and locally built images;
- for examples with an observability host: sshd test hosts and a second Docker engine
  in the network namespace terrace-h2 (scripts/ssh-hosts.sh, scripts/second-host.sh);
- applies $example, with its state in $state.
Undo the apply with:
  source target/services.env && target/release/terrace -C $example --state $state destroy
  (examples/ephemeral-clones: add --var-file target/demo-observability.tfvars)
EOF
bash scripts/services.sh
# shellcheck disable=SC1091
source target/services.env
if grep -q 'container {' "$example"/*.hcl; then
  # Containers: a local Docker engine and the images the example names.
  bash scripts/docker-engine.sh
  bash scripts/images.sh
  bash scripts/redis-image.sh
  export TERRACE_VAR_db_admin_password=${TERRACE_VAR_db_admin_password:-terrace-demo-farm}
fi
extra=()
if grep -q '^host "observability"' "$example"/*.hcl; then
  # A second machine for the observability host: scripts/second-host.sh's h2, over SSH.
  bash scripts/ssh-hosts.sh
  bash scripts/second-host.sh
  # shellcheck disable=SC1091
  source target/ssh/env
  # shellcheck disable=SC1091
  source target/second-host.env
  vars=$PWD/target/demo-observability.tfvars
  cat >"$vars" <<VARS
observability = { address = "${TERRACE_TEST_SSH_H2%:*}", port = ${TERRACE_TEST_SSH_H2##*:}, user = "$TERRACE_TEST_SSH_USER", docker_socket = "$TERRACE_TEST_H2_DOCKER_SOCKET" }
ssh_key       = "$TERRACE_TEST_SSH_KEY"
known_hosts   = "$TERRACE_TEST_SSH_KNOWN_HOSTS"
VARS
  extra=(--var-file "$vars")
fi
cargo build --release --locked --quiet
terrace=target/release/terrace

echo "== terrace plan ($example)"
"$terrace" -C "$example" --state "$state" plan "${extra[@]}"
echo "== terrace apply --auto-approve"
"$terrace" -C "$example" --state "$state" apply --auto-approve "${extra[@]}"
echo "== terrace plan (again: expect no changes)"
"$terrace" -C "$example" --state "$state" plan --detailed-exitcode "${extra[@]}"
