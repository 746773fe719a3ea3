#!/usr/bin/env bash
# Benchmark of the host (not a test): prints figures measured in one run on
# this machine, next to a native baseline, and the targets they are held to.
#
#   GET /servers/{id} through the host (wasm component, auth, KV read, JSON)
#   vs. a native hyper handler doing the same key-value read (vnext baseline),
#   a component doing only that key-value read through the host (the test
#   probe, tests/fixtures/probe-p3), and the runtime's floor, a component
#   that does nothing (tests/fixtures/hello, as in scripts/bench-floor.sh);
#   wrk -t2 -c16 (throughput, p50/p99; all run side by side and are measured
#   in turns, ROUNDS times, ratios taken within each round) and -c1
#   (single-connection p50);
#   start-up to first response with a warm compile cache; host peak RSS;
#   and the host's memory started on an EMPTY compile cache (it compiles the
#   components, in a child process) and on a warm one, each idle right after
#   start and after wrk -c16: VmRSS, VmHWM (peak) and the AnonHugePages part
#   (transparent huge pages), with the compiling child's own peak.
#
# Usage: scripts/bench.sh [DURATION_SECONDS]   (default 10)
#        ROUNDS=5 ROUND_DUR=5 scripts/bench.sh   (side-by-side rounds, default 5 x 4 s)
#        SKIP_BUILD=1 scripts/bench.sh             (no build: measure the binaries as they are)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
# Rounds of the side-by-side throughput comparison, and seconds of each run.
ROUNDS=${ROUNDS:-5}
ROUND_DUR=${ROUND_DUR:-4}
# Seconds between the first response and the "idle" memory reading.
SETTLE=1
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
command -v wrk >/dev/null || { log "wrk is missing: run scripts/setup.sh"; exit 1; }

if [ "${SKIP_BUILD:-0}" = 1 ]; then
  log "SKIP_BUILD=1: measuring what is built (e.g. an older component copied in, for an A/B)"
else
  log "building host and components"
  cargo build --release -p vnext-host -q
  bash scripts/build-components.sh >/dev/null
fi

STATE=$(mktemp -d)
# The host started on an empty cache (COLD) stays up beside the one started
# on the cache it filled (PORT), so their throughputs are compared in turns.
PORT=3970; BPORT=3971; PPORT=3972; CPORT=3973; HPORT=3975
HOSTPID=""; COLDPID=""; BASEPID=""; PROBEPID=""; HELLOPID=""
cleanup() {
  for p in "$HOSTPID" "$COLDPID" "$BASEPID" "$PROBEPID" "$HELLOPID"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  rm -rf "$STATE"
}
trap cleanup EXIT

start_host() { # port state_dir -> sets HOSTPID
  mkdir -p "$2"
  ./target/release/vnext up --listen 127.0.0.1:$1 --state-dir "$2" \
    --inventory tests/fixtures/inventory.toml >"$2/host.log" 2>&1 &
  HOSTPID=$!
}
wait_http() { # url -> prints milliseconds waited
  local t0; t0=$(date +%s%N)
  until curl -fs -o /dev/null "$1"; do
    kill -0 "$HOSTPID" 2>/dev/null || { cat "$STATE"/*/host.log >&2; log "host died"; exit 1; }
    sleep 0.01
  done
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

ADMIN="6f1d6a3e-3333-4000-8000-000000000003:6f1d6a3e-2222-4000-8000-000000000002:admin"
USER="6f1d6a3e-1111-4000-8000-000000000001:6f1d6a3e-2222-4000-8000-000000000002"
make_server() { # port name (of the type and the host) -> prints the id of a new ACTIVE server
  local PORT=$1; shift
  local type sid
  type=$(curl -fs -X POST "http://127.0.0.1:$PORT/server_types" -H "X-Auth-Token: $ADMIN" \
    -d "{\"name\":\"$1\",\"visibility\":\"PUBLIC\",\"spec\":{\"memory_mb\":512,\"cpu_units\":1}}" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
  sid=$(curl -fs -X POST "http://127.0.0.1:$PORT/projects/6f1d6a3e-2222-4000-8000-000000000002/servers" -H "X-Auth-Token: $USER" \
    -d "{\"defaults\":{\"type_id\":\"$type\",\"template_id\":\"6f1d6a3e-4444-4000-8000-000000000004\"},\"servers\":[{\"hostname\":\"$1\"}]}" \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)[0]["id"])')
  [ -n "$sid" ] || { log "cannot create server $1"; exit 1; }
  until curl -fs "http://127.0.0.1:$PORT/servers/$sid" -H "X-Auth-Token: $USER" | grep -q '"ACTIVE"'; do sleep 0.05; done
  echo "$sid"
}
cat > "$STATE/auth.lua" <<LUA
wrk.headers["X-Auth-Token"] = "$USER"
LUA
run_wrk() { # conns url -> "rps p50_ms p99_ms"
  wrk -t"$([ "$1" = 1 ] && echo 1 || echo 2)" -c"$1" -d"${DUR}s" --latency -s "$STATE/auth.lua" "$2" | python3 -c '
import re, sys
out = sys.stdin.read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", out, re.M))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
if errs: sys.exit("wrk saw %s non-2xx responses" % errs.group(1))
print(rps, ms(p["50"]), ms(p["99"]))'
}

mem_row() { # label pid -> appends "label VmRSS VmHWM AnonHugePages" (KiB) of that host to $STATE/mem.txt
  echo "$1 $(awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {print r, h}' /proc/$2/status)" \
    "$(awk '/^AnonHugePages:/ {print $2}' /proc/$2/smaps_rollup)" >>"$STATE/mem.txt"
}

# Both starts do the same: memory idle, a new server, wrk -c16, memory.
log "first start (empty compile cache: compiles components into it)"
start_host $CPORT "$STATE/cold"
COLDPID=$HOSTPID
cold_ms=$(wait_http "http://127.0.0.1:$CPORT/")
sleep "$SETTLE"; mem_row cold_idle $COLDPID
CSID=$(make_server $CPORT bench-cold)
COLD="http://127.0.0.1:$CPORT/servers/$CSID"
log "host started cold: wrk -c16 ${DUR}s on GET /servers/{id}"
run_wrk 16 "$COLD" >/dev/null
mem_row cold_load $COLDPID
compiler_mb=$(sed -n 's/^compiler peak RSS \([0-9.]*\) MB$/\1/p' "$STATE/cold/host.log" | tail -n1)

log "second start (warm compile cache: the one the first start filled)"
mkdir -p "$STATE/warm"; ln -s "$STATE/cold/cache" "$STATE/warm/cache"
start_host $PORT "$STATE/warm"
warm_ms=$(wait_http "http://127.0.0.1:$PORT/")
sleep "$SETTLE"; mem_row warm_idle $HOSTPID
SID=$(make_server $PORT bench-warm)
URL="http://127.0.0.1:$PORT/servers/$SID"
log "host: wrk -c16 ${DUR}s on GET /servers/{id}"
run_wrk 16 "$URL" >/dev/null
mem_row warm_load $HOSTPID

./target/release/vnext baseline --listen 127.0.0.1:$BPORT --db "$STATE/warm/sqlite_key_value.db" >/dev/null 2>&1 &
BASEPID=$!
until curl -fs -o /dev/null "http://127.0.0.1:$BPORT/servers/$SID"; do sleep 0.01; done

# The same stored bytes read by a component that does nothing else (no
# routing, auth or JSON), served by the same host.
mkdir -p "$STATE/probe"
./target/release/vnext up -f tests/fixtures/probe.toml --listen 127.0.0.1:$PPORT --state-dir "$STATE/probe" \
  >"$STATE/probe.log" 2>&1 &
PROBEPID=$!
until curl -fs -o /dev/null "http://127.0.0.1:$PPORT/p3/count"; do
  kill -0 "$PROBEPID" 2>/dev/null || { cat "$STATE/probe.log" >&2; log "probe app died"; exit 1; }
  sleep 0.01
done
python3 - "$STATE/warm/sqlite_key_value.db" "server/$SID" "$STATE/record.json" <<'PY'
import sqlite3, sys
db, key, out = sys.argv[1:]
row = sqlite3.connect(db).execute(
    "SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?", (key,)).fetchone()
open(out, "wb").write(row[0])
PY
curl -fs -X PUT --data-binary @"$STATE/record.json" "http://127.0.0.1:$PPORT/p3/kv3/record" >/dev/null
FLOOR="http://127.0.0.1:$PPORT/p3/kv3/record"
# The runtime's floor: a component that does nothing (scripts/bench-floor.sh).
./target/release/vnext up -f tests/fixtures/hello.toml --listen 127.0.0.1:$HPORT --state-dir "$STATE/hello" \
  >"$STATE/hello.log" 2>&1 &
HELLOPID=$!
HELLO="http://127.0.0.1:$HPORT/"
until curl -fs -o /dev/null "$HELLO"; do
  kill -0 "$HELLOPID" 2>/dev/null || { cat "$STATE/hello.log" >&2; log "hello app died"; exit 1; }
  sleep 0.01
done
NATIVE="http://127.0.0.1:$BPORT/servers/$SID"

# The three run side by side and are measured in turns, ROUNDS times, and
# compared by their medians: this machine's speed drifts by tens of
# percent over a minute (a VM with neighbours), so one run of each, a
# minute apart, compared the drift as much as the code. Ratios are taken
# within each round (runs seconds apart) and their median is the figure.
: > "$STATE/rounds.txt"
for r in $(seq "$ROUNDS"); do
  log "round $r of $ROUNDS: wrk -c16 ${ROUND_DUR}s on each host, the read-only and do-nothing components, native"
  echo "host $(DUR=$ROUND_DUR run_wrk 16 "$URL")" >> "$STATE/rounds.txt"
  echo "cold $(DUR=$ROUND_DUR run_wrk 16 "$COLD")" >> "$STATE/rounds.txt"
  echo "floor $(DUR=$ROUND_DUR run_wrk 16 "$FLOOR")" >> "$STATE/rounds.txt"
  echo "hello $(DUR=$ROUND_DUR run_wrk 16 "$HELLO")" >> "$STATE/rounds.txt"
  echo "native $(DUR=$ROUND_DUR run_wrk 16 "$NATIVE")" >> "$STATE/rounds.txt"
done
read -r h_rps h_p50 h_p99 m_rps m_p50 m_p99 b_rps b_p50 b_p99 n_rps n_p50 n_p99 c_rps floor_ratios hello_ratios cold_ratios < <(python3 - "$STATE/rounds.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *v = line.split()
    rows.setdefault(name, []).append([float(x) for x in v])
med = lambda name, i: statistics.median(r[i] for r in rows[name])
def ratios(a, b):
    rs = [x[0] / y[0] for x, y in zip(rows[a], rows[b])]
    return f"{statistics.median(rs):.3f}:" + ",".join(f"{r:.2f}" for r in rs)
print(*(f"{med(n, i):.3f}" for n in ("host", "floor", "native", "hello") for i in range(3)),
      f"{med('cold', 0):.3f}", ratios("host", "floor"), ratios("host", "hello"), ratios("cold", "host"))
PY
)
log "host: wrk -c1 ${DUR}s"
read -r h1_rps h1_p50 h1_p99 < <(run_wrk 1 "$URL")
rss_mb=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$HOSTPID/status)
log "native baseline and floor: wrk -c1 ${DUR}s"
read -r b1_rps b1_p50 b1_p99 < <(run_wrk 1 "$NATIVE")
read -r m1_rps m1_p50 m1_p99 < <(run_wrk 1 "$FLOOR")
kill "$BASEPID"; wait "$BASEPID" 2>/dev/null || true; BASEPID=""

python3 - "$h_rps" "$h_p50" "$h_p99" "$h1_p50" "$b_rps" "$b_p50" "$b_p99" "$b1_p50" "$rss_mb" "$warm_ms" "$cold_ms" \
  "$m_rps" "$m_p50" "$m_p99" "$m1_p50" "$c_rps" "${compiler_mb:-0}" "$n_rps" "$n_p50" "$n_p99" "$floor_ratios" "$hello_ratios" "$cold_ratios" "$STATE/mem.txt" <<'PY'
import sys
(h_rps, h_p50, h_p99, h1_p50, b_rps, b_p50, b_p99, b1_p50, rss, warm, cold,
 m_rps, m_p50, m_p99, m1_p50, c_rps, compiler, n_rps, n_p50, n_p99) = map(float, sys.argv[1:-4])
(floor_ratio, floor_ratios), (hello_ratio, hello_ratios), (cold_ratio, cold_ratios) = (
    a.split(":") for a in sys.argv[-4:-1])
floor_ratio, hello_ratio, cold_ratio = float(floor_ratio), float(hello_ratio), float(cold_ratio)
mem = {label: [int(v) / 1024 for v in rest] for label, *rest in (l.split() for l in open(sys.argv[-1]))}
ratio = h_rps / b_rps
def mark(ok): return "ok  " if ok else "MISS"
print(f"{'GET /servers/{id}':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'c1 p50 ms':>10}   (-c16: medians of the rounds)")
print(f"{'host (wasm component)':28} {h_rps:9.0f} {h_p50:8.2f} {h_p99:8.2f} {h1_p50:10.3f}")
print(f"{'native baseline (hyper)':28} {b_rps:9.0f} {b_p50:8.2f} {b_p99:8.2f} {b1_p50:10.3f}")
print(f"{'component doing only the read':28} {m_rps:9.0f} {m_p50:8.2f} {m_p99:8.2f} {m1_p50:10.3f}")
print(f"{'floor: do-nothing component':28} {n_rps:9.0f} {n_p50:8.2f} {n_p99:8.2f} {'':>10}")
print()
print(f"{'host memory, MB':28} {'VmRSS':>9} {'VmHWM':>8} {'THP':>8}   (THP: the AnonHugePages part of VmRSS)")
for label, name in [("cold_idle", "empty cache, idle"), ("cold_load", "empty cache, after wrk -c16"),
                    ("warm_idle", "warm cache, idle"), ("warm_load", "warm cache, after wrk -c16")]:
    cur, peak, thp = mem[label]
    print(f"{name:28} {cur:9.1f} {peak:8.1f} {thp:8.1f}")
if compiler:
    print(f"{'compiling child, peak':28} {compiler:9.1f}   (its own process, gone before the host serves)")
print()
print(f"{mark(h_rps >= 7000)} throughput {h_rps:.0f} req/s (target >= 7000)")
print(f"{mark(h_p99 <= 5)} p99 {h_p99:.2f} ms (target <= 5)")
print(f"{mark(h1_p50 <= 0.3)} single-connection p50 {h1_p50:.3f} ms (target <= 0.3)")
print(f"{mark(ratio >= 0.4)} host/native throughput {ratio:.0%} (target >= 40%; "
      f"a component doing only the read reaches {m_rps / b_rps:.0%} of native)")
print(f"{mark(warm <= 1000)} start-up to first response, warm cache {warm:.0f} ms (target <= 1000; cold {cold:.0f} ms)")
print(f"{mark(rss <= 150)} host peak RSS under load {rss:.1f} MB (target <= 150)")
print(f"{mark(mem['cold_idle'][0] <= 100)} RSS started on an empty compile cache, idle {mem['cold_idle'][0]:.1f} MB (target <= 100)")
print(f"{mark(mem['cold_load'][1] <= 120)} peak RSS started on an empty compile cache, under load "
      f"{mem['cold_load'][1]:.1f} MB (target <= 120)")
print(f"{mark(hello_ratio >= 0.6)} host/floor throughput {hello_ratio:.0%} of the do-nothing component's "
      f"(target >= 60%; median of the rounds: {hello_ratios}); {floor_ratio:.0%} of the component doing only the read ({floor_ratios})")
print(f"{mark(cold_ratio >= 0.95)} throughput of the host started on an empty cache {c_rps:.0f} req/s, "
      f"{cold_ratio:.0%} of the warm-started host's (target >= 95%; median of the rounds: {cold_ratios})")
PY
