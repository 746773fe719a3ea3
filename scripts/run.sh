#!/usr/bin/env bash
# Sets up a fresh machine and runs the API locally on the embedded defaults:
# SQLite key-value file under .spin/, the in-process hypervisor adapter with
# the fake driver and the sample inventory, on http://127.0.0.1:3000.
# Extra arguments go to `vnext up` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-components.sh
printf '\033[1m[run]\033[0m building the host\n'
cargo build --release -p vnext-host
exec ./target/release/vnext up -f spin.toml --inventory deploy/sample-inventory.toml "$@"
