#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: unit tests of each crate, the
# key-value backend suite (SQLite and a Redis server it starts itself), the
# integration tests that start the real host and drive it over HTTP, and
# Dredd, which replays every request/response pair of apiary.apib against a
# live host (scripts/dredd.sh), and Schemathesis, which fuzzes a live host
# from its own OpenAPI document (scripts/fuzz.sh). The task and walk-through
# tests then run again in dependency mode (hypervisor-client composed into the
# components, a `vnext adapter` process behind it: how real Spin runs the app).
set -uo pipefail
# pipefail: a failing `cargo test` fails this script even though its output is piped.
cd "$(dirname "$0")/.."
log() { printf '\033[1m[test]\033[0m %s\n' "$*"; }

set -e
bash scripts/setup.sh
# QEMU, the libvirt daemons and the tiny guest template, for the libvirt
# driver's tests on real guests.
bash scripts/setup-libvirt.sh
# A second libvirt daemon, so a live MOVE between two daemons is tested.
bash scripts/start-second-libvirtd.sh >/dev/null
log "building components (wasm32-wasip2)"
bash scripts/build-components.sh
set +e
log "building the host and running all tests (release: wasmtime is too slow in debug)"
# Plain `cargo test` covers the workspace's default members: the native
# crates (core, kv, hypervisor, host); components are wasm-only.
out=$(mktemp)
dredd_out=$(mktemp)
fuzz_out=$(mktemp)
dep_out=$(mktemp)
trap 'rm -f "$out" "$dredd_out" "$fuzz_out" "$dep_out"' EXIT
cargo test --release 2>&1 | tee "$out"
cargo_rc=${PIPESTATUS[0]}
log "dependency mode: task and walk-through tests through hypervisor-client and a vnext adapter process"
VNEXT_TEST_HYPERVISOR=dependency cargo test --release --test api -- tasks:: proposal:: 2>&1 | tee "$dep_out"
dep_rc=${PIPESTATUS[0]}
log "dredd: apiary.apib against a live host"
bash scripts/dredd.sh 2>&1 | tee "$dredd_out"
dredd_rc=${PIPESTATUS[0]}
log "fuzz: Schemathesis from GET /openapi.json against a live host"
bash scripts/fuzz.sh 2>&1 | tee "$fuzz_out"
fuzz_rc=${PIPESTATUS[0]}

# One line per runner, then one closing line over all of them (cargo's own
# last line is that of the last, often empty, doc-test run).
read -r cp cf < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$out")
read -r mp mf < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$dep_out")
read -r dp df < <(awk '/^dredd: [0-9]+ passed, [0-9]+ failed$/ { p = $2; f = $4 } END { print p + 0, f + 0 }' "$dredd_out")
read -r zp zf < <(awk '/^fuzz: [0-9]+ passed, [0-9]+ failed$/ { p = $2; f = $4 } END { print p + 0, f + 0 }' "$fuzz_out")
# A runner that failed without counting a failure (a build error, a host that
# did not start) still counts as one failure.
[ "$cargo_rc" -ne 0 ] && [ "$cf" -eq 0 ] && cf=1
[ "$dep_rc" -ne 0 ] && [ "$mf" -eq 0 ] && mf=1
[ "$dredd_rc" -ne 0 ] && [ "$df" -eq 0 ] && df=1
[ "$fuzz_rc" -ne 0 ] && [ "$zf" -eq 0 ] && zf=1
echo "cargo: $cp passed, $cf failed"
echo "dependency mode: $mp passed, $mf failed"
echo "dredd: $dp passed, $df failed"
echo "fuzz: $zp passed, $zf failed"
echo "tests: $((cp + mp + dp + zp)) passed, $((cf + mf + df + zf)) failed"
[ "$cargo_rc" -eq 0 ] && [ "$dep_rc" -eq 0 ] && [ "$dredd_rc" -eq 0 ] && [ "$fuzz_rc" -eq 0 ]
