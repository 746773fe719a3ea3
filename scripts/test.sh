#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: unit tests of each crate, the
# key-value backend suite (SQLite and a Redis server it starts itself), and
# the integration tests that start the real host and drive it over HTTP.
set -euo pipefail
# pipefail: a failing `cargo test` fails this script even though its output is piped.
cd "$(dirname "$0")/.."
log() { printf '\033[1m[test]\033[0m %s\n' "$*"; }

bash scripts/setup.sh
log "building components (wasm32-wasip2)"
bash scripts/build-components.sh
log "building the host and running all tests (release: wasmtime is too slow in debug)"
# Plain `cargo test` covers the workspace's default members: the native
# crates (core, kv, hypervisor, host); components are wasm-only.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo test --release 2>&1 | tee "$out"
# One closing line over every test binary (cargo's own last line is that of
# the last, often empty, doc-test run).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
