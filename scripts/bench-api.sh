#!/usr/bin/env bash
# API-scale benchmark (not a test): prints figures measured in one run.
#
#   1. Launch of 1,000 servers in one request on the fake driver (no step
#      delay): time to the 202, and to all 1,000 ACTIVE.
#   2. List page time (GET /projects/{p}/servers?limit=20 from the middle of
#      the collection, and GET /servers?limit=20 as admin) with 1k, 10k and
#      100k servers stored: it must stay flat (indexes, not scans). Servers
#      beyond the launched ones are copies written into the stopped host's
#      key-value file by the seed_servers example, in the components' format.
#   3. Host peak RSS with 100k servers stored, after the list runs.
#   4. The two ways of serving the hypervisor side by side (in-process, and
#      dependency mode: hypervisor-client composed in, calls over HTTP to a
#      `vnext adapter` process, as under real Spin): p50/p95 of a one-server
#      launch, a REBOOT task (202), and two hypervisor reads (GET /placements,
#      GET /servers/{id}/diagnostics), and the dependency path's extra cost.
#
# Usage: scripts/bench-api.sh [REQUESTS_PER_POINT]   (default 200)
#        SIZES="1000 10000" scripts/bench-api.sh      (fewer store sizes)
#        PARTS=modes scripts/bench-api.sh             (only part 4; PARTS=scale: 1-3)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
log() { printf '\033[1m[bench-api]\033[0m %s\n' "$*" >&2; }

log "building host, components and the seeding tool"
cargo build --release -p vnext-host -q --example seed_servers
bash scripts/build-components.sh >/dev/null

PARTS=${PARTS:-scale modes}
STATE=$(mktemp -d)
PORT=3972
HOSTPID=""
MODEPIDS=""
cleanup() {
  for p in $HOSTPID $MODEPIDS; do kill "$p" 2>/dev/null; done
  rm -rf "$STATE"
}
trap cleanup EXIT
B="http://127.0.0.1:$PORT"
PROJECT=6f1d6a3e-2222-4000-8000-000000000002
USER="6f1d6a3e-1111-4000-8000-000000000001:$PROJECT"
ADMIN="6f1d6a3e-3333-4000-8000-000000000003:$PROJECT:admin"

start_host() {
  ./target/release/vnext up --listen 127.0.0.1:$PORT --state-dir "$STATE" \
    --inventory tests/fixtures/inventory-bench.toml >>"$STATE/host.log" 2>&1 &
  HOSTPID=$!
  until curl -fs -o /dev/null "$B/"; do
    kill -0 "$HOSTPID" 2>/dev/null || { tail -20 "$STATE/host.log" >&2; log "host died"; exit 1; }
    sleep 0.02
  done
}
stop_host() { kill -TERM "$HOSTPID"; wait "$HOSTPID" || true; HOSTPID=""; }

scale_part() {
log "first start (compiles the components into the cache; not measured)"
start_host
stop_host
start_host
TYPE=$(curl -fs -X POST "$B/server_types" -H "X-Auth-Token: $ADMIN" \
  -d '{"name":"bench","visibility":"PUBLIC","spec":{"memory_mb":64,"cpu_units":1,"root_disk_gb":1}}' \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')

log "launching 1000 servers in one request"
python3 - "$B" "$USER" "$PROJECT" "$TYPE" > "$STATE/launch.txt" <<'PY'
import json, sys, time, urllib.request
base, token, project, type_id = sys.argv[1:]
body = {"defaults": {"type_id": type_id, "template_id": "6f1d6a3e-4444-4000-8000-000000000004",
                     "hostname_pattern": "bench-%(rand_num)8d"},
        "servers": [{} for _ in range(1000)]}
req = urllib.request.Request(f"{base}/projects/{project}/servers", data=json.dumps(body).encode(),
                             method="POST", headers={"X-Auth-Token": token, "Content-Type": "application/json"})
t0 = time.monotonic()
with urllib.request.urlopen(req) as r:
    assert r.status == 202, r.status
    ids = [s["id"] for s in json.load(r)]  # a bare array, in request order
t_202 = time.monotonic() - t0
def active():
    q = urllib.request.Request(f"{base}/projects/{project}/servers?virt_state=ACTIVE&limit=1000",
                               headers={"X-Auth-Token": token})
    with urllib.request.urlopen(q) as r:
        return len(json.load(r)["servers"])
n = 0
while n < len(ids):
    time.sleep(0.05)
    n = active()
    if time.monotonic() - t0 > 300:
        sys.exit(f"only {n} of 1000 ACTIVE after 300 s")
print(t_202, time.monotonic() - t0, ids[0])
PY
read -r t202 tactive LIKE < "$STATE/launch.txt"

measure() { # label -> prints "p50_ms p95_ms" of N page reads from the middle
  python3 - "$B" "$USER" "$ADMIN" "$PROJECT" "$N" <<'PY'
import json, sys, time, urllib.request
base, user, admin, project, n = sys.argv[1:]; n = int(n)
def get(path, token):
    t0 = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(base + path, headers={"X-Auth-Token": token})) as r:
        body = json.load(r)
    return time.perf_counter() - t0, body
# A marker from the middle: walk the index once with big pages. Every list
# asks for servers in any state (virt_state=ANY), so no default state filter
# applies: the pages are the index as stored.
path, ids = f"/projects/{project}/servers?limit=1000&virt_state=ANY", []
while path and len(ids) < 50_000:
    _, b = get(path, user); ids += [s["id"] for s in b["servers"]]
    path = b["_links"].get("next", {}).get("href")
marker = ids[len(ids) // 2]
def run(p, token):
    ts = sorted(get(p, token)[0] for _ in range(n))
    return ts[len(ts) // 2] * 1000, ts[int(len(ts) * 0.95)] * 1000
a = run(f"/projects/{project}/servers?limit=20&marker={marker}&virt_state=ANY", user)
b = run("/servers?limit=20&virt_state=ANY", admin)
print(f"{a[0]:.2f} {a[1]:.2f} {b[0]:.2f} {b[1]:.2f}")
PY
}

total=1000
: > "$STATE/lists.txt"
SIZES=${SIZES:-1000 10000 100000}
for target in $SIZES; do
  if [ "$target" -gt "$total" ]; then
    stop_host
    log "seeding $((target - total)) servers (copies of $LIKE)"
    ./target/release/examples/seed_servers "$STATE/sqlite_key_value.db" "$LIKE" $((target - total))
    total=$target
    start_host
  fi
  log "list pages with $total servers ($N requests each)"
  echo "$total $(measure)" >> "$STATE/lists.txt"
done
rss_mb=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$HOSTPID/status)

python3 - "$t202" "$tactive" "$rss_mb" "$total" "$STATE/lists.txt" <<'PY'
import sys
t202, tactive, rss, total = map(float, sys.argv[1:5])
rows = [list(map(float, l.split())) for l in open(sys.argv[5]) if l.strip()]
def mark(ok): return "ok  " if ok else "MISS"
print(f"{'servers stored':>15} {'project page p50':>17} {'p95':>7} {'admin /servers p50':>19} {'p95':>7}  (ms, limit=20)")
for n, p50, p95, a50, a95 in rows:
    print(f"{int(n):>15,} {p50:>17.2f} {p95:>7.2f} {a50:>19.2f} {a95:>7.2f}")
first, last = rows[0], rows[-1]
flat = last[1] <= 2 * first[1] + 0.5
print()
print(f"{mark(t202 < 1)} launch of 1000 servers: 202 after {t202:.2f} s (target < 1 s)")
print(f"{mark(tactive < 5)} all 1000 ACTIVE after {tactive:.2f} s (target < 5 s)")
print(f"{mark(flat)} list page at {int(last[0]):,} vs {int(first[0]):,} servers: {last[1]:.2f} vs {first[1]:.2f} ms p50 (target: flat)")
print(f"{mark(rss <= 150)} host peak RSS with {int(total):,} servers stored {rss:.1f} MB (target <= 150)")
PY
}

# ------------------------------------------------------------ 4. modes
bench_modes() {
  local secret=bench-secret-$$ mp=3973 dp=3974 ap=3975
  mkdir -p "$STATE/inproc" "$STATE/dep" "$STATE/adapter"
  # Both hosts share the compile cache of the first start.
  ln -sfn "$STATE/cache" "$STATE/inproc/cache"
  ln -sfn "$STATE/cache" "$STATE/dep/cache"
  ./target/release/vnext up --listen 127.0.0.1:$mp --state-dir "$STATE/inproc" \
    --inventory tests/fixtures/inventory-bench.toml >"$STATE/inproc.log" 2>&1 &
  MODEPIDS="$MODEPIDS $!"
  VNEXT_EVENTS_SECRET=$secret SPIN_VARIABLE_ADAPTER_URL=http://127.0.0.1:$ap \
    ./target/release/vnext up --listen 127.0.0.1:$dp --state-dir "$STATE/dep" --hypervisor dependency \
    >"$STATE/dep.log" 2>&1 &
  MODEPIDS="$MODEPIDS $!"
  VNEXT_EVENTS_SECRET=$secret ./target/release/vnext adapter --listen 127.0.0.1:$ap \
    --inventory tests/fixtures/inventory-bench.toml --events-url http://127.0.0.1:$dp \
    --state-dir "$STATE/adapter" >"$STATE/adapter.log" 2>&1 &
  MODEPIDS="$MODEPIDS $!"
  for u in http://127.0.0.1:$mp/ http://127.0.0.1:$dp/; do
    local t=0
    until curl -fs -o /dev/null "$u"; do
      sleep 0.1; t=$((t + 1))
      [ $t -lt 1200 ] || { tail -20 "$STATE"/*.log >&2; log "a host did not start"; exit 1; }
    done
  done
  log "hypervisor calls in-process vs through hypervisor-client + vnext adapter ($N requests each)"
  python3 - "$N" "http://127.0.0.1:$mp" "http://127.0.0.1:$dp" "$USER" "$ADMIN" "$PROJECT" <<'PY'
import http.client, json, sys, time
n, inproc, dep, user, admin, project = sys.argv[1:]
n = int(n)
def conn(base):
    return http.client.HTTPConnection(base.removeprefix("http://"))
def call(c, method, path, token, body=None):
    t0 = time.perf_counter()
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers={"X-Auth-Token": token})
    r = c.getresponse(); data = r.read()
    return time.perf_counter() - t0, r.status, data
def pct(ts, q): ts = sorted(ts); return ts[min(len(ts) - 1, int(len(ts) * q))] * 1000
def run(base, tag):
    c = conn(base)
    _, st, b = call(c, "POST", "/server_types", admin,
                    {"name": f"modes-{tag}", "visibility": "PUBLIC", "spec": {"memory_mb": 64, "cpu_units": 1}})
    assert st == 201, (st, b)
    ty = json.loads(b)["id"]
    rows = {}
    launch, ids = [], []
    for i in range(n):
        t, st, b = call(c, "POST", f"/projects/{project}/servers", user,
                        {"defaults": {"type_id": ty, "template_id": "6f1d6a3e-4444-4000-8000-000000000004"},
                         "servers": [{"hostname": f"{tag}-{i}"}]})
        assert st == 202, (st, b)
        launch.append(t); ids.append(json.loads(b)[0]["id"])
    rows["launch (1 server)"] = launch
    def active(i):
        for _ in range(500):
            _, st, b = call(c, "GET", f"/servers/{i}", user)
            if json.loads(b)["virt_state"] == "ACTIVE": return
            time.sleep(0.01)
        raise SystemExit(f"{i} not ACTIVE")
    reboot = []
    for i in ids:
        active(i)
        t, st, b = call(c, "POST", f"/servers/{i}/tasks", user, {"action": "REBOOT"})
        assert st == 202, (st, b)
        reboot.append(t)
    rows["REBOOT task"] = reboot
    rows["GET /placements"] = [call(c, "GET", "/placements", user)[0] for _ in range(n)]
    rows["GET diagnostics"] = [call(c, "GET", f"/servers/{ids[k % len(ids)]}/diagnostics", user)[0] for k in range(n)]
    return rows
a, b = run(inproc, "inproc"), run(dep, "dep")
print(f"{'call':<20} {'in-process p50':>15} {'p95':>7} {'dependency p50':>15} {'p95':>7} {'extra p50':>10}  (ms)")
worst = 0.0
for k in a:
    extra = pct(b[k], .5) - pct(a[k], .5)
    worst = max(worst, extra)
    print(f"{k:<20} {pct(a[k], .5):>15.2f} {pct(a[k], .95):>7.2f} {pct(b[k], .5):>15.2f} {pct(b[k], .95):>7.2f} {extra:>10.2f}")
print()
print(f"{'ok  ' if worst <= 2 else 'MISS'} dependency path costs at most {worst:.2f} ms more at the p50 (target <= 2 ms)")
PY
}

case " $PARTS " in *" scale "*) ;; *) SKIP_SCALE=1 ;; esac
if [ -z "${SKIP_SCALE:-}" ]; then
  scale_part
else
  log "first start (compiles the components into the cache; not measured)"
  start_host
  stop_host
fi
case " $PARTS " in *" modes "*) bench_modes ;; esac
