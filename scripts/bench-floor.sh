#!/usr/bin/env bash
# Benchmark of the runtime floor (not a test): the same do-nothing WASI 0.3
# component (tests/fixtures/hello) served by our host and by wasmtime's own
# `wasmtime serve` (same wasmtime version, 48), wrk -t2 -c16 and -c1 on the
# same cores. It shows how much of a request's cost is the runtime's and not
# the application's: scripts/bench.sh compares the full API with a native
# handler; this compares our host with the reference server.
#
# `wasmtime` is not installed by scripts/setup.sh (a ~15 min build on two
# cores): `cargo install wasmtime-cli --version 48.0.8 --locked`, or point
# WASMTIME at a binary. Without it, only our host is measured.
#
# Usage: scripts/bench-floor.sh [DURATION_SECONDS]   (default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-8}
WASMTIME=${WASMTIME:-$(command -v wasmtime || true)}
log() { printf '\033[1m[bench-floor]\033[0m %s\n' "$*" >&2; }
command -v wrk >/dev/null || { log "wrk is missing: run scripts/setup.sh"; exit 1; }

log "building host and components"
cargo build --release -p vnext-host -q
bash scripts/build-components.sh >/dev/null
WASM=target/wasm32-wasip2/release/vnext_hello.wasm

STATE=$(mktemp -d); PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$STATE"; }
trap cleanup EXIT

measure() { # name url -> one table row
  until curl -fs -o /dev/null "$2"; do
    kill -0 "$PID" 2>/dev/null || { cat "$STATE/server.log" >&2; log "$1 died"; exit 1; }
    sleep 0.02
  done
  wrk -t2 -c16 -d1s "$2" >/dev/null # warm-up
  local many one
  many=$(wrk -t2 -c16 -d"${DUR}s" --latency "$2")
  one=$(wrk -t1 -c1 -d"${DUR}s" --latency "$2")
  python3 - "$1" "$many" "$one" <<'PY'
import re, sys
name, many, one = sys.argv[1:]
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
def pct(out, p): return ms(dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))[p])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", many).group(1))
print(f"{name:34} {rps:9.0f} {pct(many, '50'):8.2f} {pct(many, '99'):8.2f} {pct(one, '50'):10.3f}")
PY
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

printf '%-34s %9s %8s %8s %10s\n' "hello component" "req/s" "p50 ms" "p99 ms" "c1 p50 ms"
log "vnext up"
./target/release/vnext up -f tests/fixtures/hello.toml --listen 127.0.0.1:3973 --state-dir "$STATE/vnext" \
  >"$STATE/server.log" 2>&1 &
PID=$!
measure "vnext up (reuse 128)" http://127.0.0.1:3973/
if [ -n "$WASMTIME" ]; then
  for mode in "sequential:--max-instance-reuse-count 128 --max-instance-concurrent-reuse-count 1" "defaults:"; do
    log "wasmtime serve ($("$WASMTIME" --version), ${mode%%:*})"
    # shellcheck disable=SC2086
    "$WASMTIME" serve -Scli -Sp3 -Wcomponent-model-async ${mode#*:} --addr 127.0.0.1:3974 "$WASM" \
      >"$STATE/server.log" 2>&1 &
    PID=$!
    measure "wasmtime serve (${mode%%:*})" http://127.0.0.1:3974/
  done
else
  log "wasmtime not found: cargo install wasmtime-cli --version 48.0.8 --locked (or set WASMTIME)"
fi
