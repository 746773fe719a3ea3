#!/usr/bin/env bash
# Installs everything vNext Compute needs on a fresh Debian 12 machine:
# the wasm32-wasip2 Rust target, Redis (for the Redis key-value backend tests),
# and wrk (for the benchmark). Safe to run again: every step is idempotent.
set -euo pipefail
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

log "rust target wasm32-wasip2"
rustup target add wasm32-wasip2 >/dev/null

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v wrk >/dev/null || need+=(wrk)
command -v sqlite3 >/dev/null || need+=(sqlite3)
if [ ${#need[@]} -gt 0 ]; then
  log "apt packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
log "done"
