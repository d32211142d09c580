#!/usr/bin/env bash
# terrace's main job on a fresh machine: bring up a real local PostgreSQL and MariaDB,
# then plan and apply an example project against them, then show that a second plan
# is empty. Usage: scripts/demo.sh [examples/shared-postgres | examples/ephemeral-clones]
set -euo pipefail
cd "$(dirname "$0")/.."
example=${1:-examples/shared-postgres}
bash scripts/services.sh
# shellcheck disable=SC1091
source target/services.env
cargo build --release --locked --quiet
terrace=target/release/terrace
state=target/demo-$(basename "$example").state.json

echo "== terrace plan ($example)"
"$terrace" -C "$example" --state "$state" plan
echo "== terrace apply --auto-approve"
"$terrace" -C "$example" --state "$state" apply --auto-approve
echo "== terrace plan (again: expect no changes)"
"$terrace" -C "$example" --state "$state" plan --detailed-exitcode
