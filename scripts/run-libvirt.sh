#!/usr/bin/env bash
# Sets a machine up and runs the API with real virtual machines: QEMU guests
# through libvirt (scripts/setup-libvirt.sh installs and starts it, and
# builds the tiny guest template), two compute nodes of
# deploy/libvirt-inventory.toml, on http://127.0.0.1:3000. Server disks and
# console logs go under .spin/libvirt. Extra arguments go to `vnext up`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-libvirt.sh
bash scripts/build-components.sh
printf '\033[1m[run]\033[0m building the host\n'
cargo build --release -p vnext-host
exec ./target/release/vnext up -f spin.toml --inventory deploy/libvirt-inventory.toml "$@"
