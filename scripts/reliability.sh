#!/usr/bin/env bash
# Reliability report (not a test, and not part of scripts/test.sh: about
# 5-10 minutes). The short versions of both parts are tests in CI
# (tests/api/scale_out.rs, tests/api/spin_guest_limits.rs).
#
#   1. ROUNDS rounds (default 10) on three `vnext up --hypervisor dependency`
#      hosts sharing one Redis and one `vnext adapter` (steps of 0.2 s,
#      tests/fixtures/inventory-crash.toml): a launch of SERVERS servers
#      (default 1000) through one host, and at a random moment (seeded, so a
#      run can be replayed) kill -9 of that host, of the adapter, or of both,
#      started again at once. Then every server's tasks are read until none
#      runs, and a row says: what was killed when, the launch's answer, tasks
#      terminal, servers lost (of an accepted launch) and duplicated
#      (hostnames used twice), and 5xx answers seen by a reader polling all
#      hosts meanwhile.
#   2. A misbehaving guest under load: wrk -t2 -c16 on a good route of the
#      probe application, alone, then beside requests that loop past the
#      deadline, that allocate without bound, that trap, and all three at
#      once (one client thread each): a row each with the good requests'
#      p99, rate and non-2xx count, and the bad requests' statuses.
#
# Usage: scripts/reliability.sh [ROUNDS] [SERVERS]
#        SEED=7 scripts/reliability.sh       (another sequence of kills)
#        PART=kills|guest scripts/reliability.sh   (one part only)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-10}
SERVERS=${2:-1000}
SEED=${SEED:-20261203}
PART=${PART:-all}
case "$PART" in all|kills|guest) ;; *) echo "PART must be all, kills or guest (got $PART)" >&2; exit 2;; esac
log() { printf '\033[1m[reliability]\033[0m %s\n' "$*" >&2; }
command -v wrk >/dev/null || { log "wrk is missing: run scripts/setup.sh"; exit 1; }
command -v redis-server >/dev/null || { log "redis-server is missing: run scripts/setup.sh"; exit 1; }

log "building host and components"
cargo build --release -p vnext-host -q
bash scripts/build-components.sh >/dev/null

WORK=$(mktemp -d)
PIDS=""
cleanup() {
  for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------- 1. kills during launches
if [ "$PART" != guest ]; then
REDIS_PORT=3990
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly yes --dir "$WORK" >/dev/null &
PIDS="$PIDS $!"
printf '[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:%s/0"\n' $REDIS_PORT > "$WORK/rc.toml"
mkdir -p "$WORK/cache"
log "$ROUNDS rounds of a $SERVERS-server launch with kills (seed $SEED)"
python3 - "$WORK" "$ROUNDS" "$SERVERS" "$SEED" <<'PY'
import json, os, random, subprocess, sys, threading, time, urllib.error, urllib.request
work, rounds, servers, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
HOST_PORTS = [3991, 3992, 3993]
ADAPTER_PORT = 3994
SECRET = f"reliability-{os.getpid()}"
env = dict(os.environ, VNEXT_EVENTS_SECRET=SECRET, SPIN_VARIABLE_ADAPTER_URL=f"http://127.0.0.1:{ADAPTER_PORT}")
procs = {}

def wait_serving(url, proc, what):
    for _ in range(1200):
        if proc.poll() is not None:
            sys.exit(f"{what} exited ({proc.returncode}); see {work}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{what} did not serve")

def start_host(i):
    d = f"{work}/host{i}"
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(f"{d}/cache"):
        os.symlink(f"{work}/cache", f"{d}/cache")
    p = subprocess.Popen(["target/release/vnext", "up", "--listen", f"127.0.0.1:{HOST_PORTS[i]}", "--state-dir", d,
                          "--runtime-config-file", f"{work}/rc.toml", "--hypervisor", "dependency"],
                         env=env, stdout=open(f"{d}/log", "a"), stderr=subprocess.STDOUT)
    procs[f"host{i}"] = p
    wait_serving(f"http://127.0.0.1:{HOST_PORTS[i]}/", p, f"host {i}")

def start_adapter():
    urls = ",".join(f"http://127.0.0.1:{p}" for p in HOST_PORTS)
    p = subprocess.Popen(["target/release/vnext", "adapter", "--listen", f"127.0.0.1:{ADAPTER_PORT}",
                          "--inventory", "tests/fixtures/inventory-crash.toml", "--events-url", urls,
                          "--state-dir", f"{work}/adapter"],
                         env=env, stdout=open(f"{work}/adapter.log", "a"), stderr=subprocess.STDOUT)
    procs["adapter"] = p
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{ADAPTER_PORT}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.05)
    sys.exit("the adapter did not serve")

def kill(name):
    procs[name].kill()
    procs[name].wait()

def call(port, method, path, token, body=None, timeout=120):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r) if r.status != 204 else None
    except urllib.error.HTTPError as e:
        return e.code, None

log = lambda m: print(f"\033[1m[reliability]\033[0m {m}", file=sys.stderr, flush=True)
log("starting 3 hosts (the first compiles the components) and the adapter")
for i in range(3):
    start_host(i)
start_adapter()

rows = []
for rnd in range(1, rounds + 1):
    project = f"00000000-0000-4000-8000-{rnd:012d}"
    user = f"00000000-1111-4000-8000-000000000001:{project}"
    admin = f"00000000-3333-4000-8000-000000000003:{project}:admin"
    h = (rnd - 1) % 3
    st, ty = call(HOST_PORTS[h], "POST", "/server_types", admin,
                  {"name": f"rel-{rnd}", "visibility": "PUBLIC", "spec": {"memory_mb": 64, "cpu_units": 1}})
    assert st == 201, st
    victim = rng.choice(["host", "adapter", "both"])
    at = rng.uniform(0.0, 3.0)
    # A reader polling every host: 5xx answers (a killed host's refused
    # connections are not answers and are not counted).
    fivexx, stop = [0], threading.Event()
    def reader():
        k = 0
        while not stop.is_set():
            try:
                st, _ = call(HOST_PORTS[k % 3], "GET", f"/projects/{project}/servers?limit=20&virt_state=ANY", user, timeout=10)
                if st >= 500:
                    fivexx[0] += 1
            except Exception:
                pass  # a killed host's refused connection is no answer
            k += 1
            time.sleep(0.02)
    rt = threading.Thread(target=reader, daemon=True); rt.start()
    answer = ["cut"]
    def launch():
        body = {"defaults": {"type_id": ty["id"], "template_id": "00000000-4444-4000-8000-000000000004"},
                "servers": [{"hostname": f"r{rnd}-{i:04d}"} for i in range(servers)]}
        try:
            st, _ = call(HOST_PORTS[h], "POST", f"/projects/{project}/servers", user, body)
            answer[0] = str(st)
        except Exception:
            answer[0] = "cut"
    t0 = time.monotonic()
    lt = threading.Thread(target=launch); lt.start()
    time.sleep(at)
    if victim in ("host", "both"):
        kill(f"host{h}")
    if victim in ("adapter", "both"):
        kill("adapter")
    lt.join()
    if victim in ("adapter", "both"):
        start_adapter()
    if victim in ("host", "both"):
        start_host(h)
    # Read every server's tasks until none runs (reading resubmits a stalled one).
    other = HOST_PORTS[(h + 1) % 3]
    deadline = time.monotonic() + 600
    while True:
        listed, path = [], f"/projects/{project}/servers?limit=1000&virt_state=ANY"
        while path:
            st, page = call(other, "GET", path, user)
            if st != 200:
                break
            listed += page["servers"]
            path = page["_links"].get("next", {}).get("href")
        running, terminal, total = 0, 0, 0
        for s in listed:
            st, tl = call(other, "GET", f"/servers/{s['id']}/tasks?limit=100", user)
            for t in (tl or {}).get("tasks", []):
                total += 1
                if t["state"] in ("RUNNING", "WAITING"):
                    running += 1
                else:
                    terminal += 1
        if running == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    stop.set(); rt.join(timeout=15)
    names = [s["hostname"] for s in listed]
    lost = servers - len(listed) if answer[0] == "202" else "-"
    dup = len(names) - len(set(names))
    rows.append((rnd, f"{victim} at {at:.1f}s", answer[0], f"{terminal}/{total}", len(listed), lost, dup, fivexx[0],
                 time.monotonic() - t0))
    log(f"round {rnd}: {rows[-1]}")

print(f"{'round':>5}  {'killed':<16} {'launch':>6} {'tasks terminal':>15} {'servers':>8} {'lost':>5} {'dup':>4} {'5xx':>4} {'settled in':>10}")
for r in rows:
    print(f"{r[0]:>5}  {r[1]:<16} {r[2]:>6} {r[3]:>15} {r[4]:>8} {str(r[5]):>5} {r[6]:>4} {r[7]:>4} {r[8]:>9.1f}s")
bad = [r for r in rows if r[5] not in ("-", 0) or r[6] != 0 or r[3].split("/")[0] != r[3].split("/")[1]]
print()
print(f"{'ok  ' if not bad else 'MISS'} {len(rows) - len(bad)} of {len(rows)} rounds: every task terminal, no server lost or duplicated")
for p in procs.values():
    p.kill()
PY
fi

# --------------------------------------------- 2. a misbehaving guest
[ "$PART" = kills ] && exit 0
log "a misbehaving guest beside wrk -t2 -c16 (the probe application)"
PORT=3995
./target/release/vnext up -f tests/fixtures/probe.toml --listen 127.0.0.1:$PORT --state-dir "$WORK/probe" \
  --inventory tests/fixtures/inventory.toml --request-timeout-ms 1000 >"$WORK/probe.log" 2>&1 &
PIDS="$PIDS $!"
until curl -fs -o /dev/null "http://127.0.0.1:$PORT/p3/headers/x"; do sleep 0.1; done
GOOD="http://127.0.0.1:$PORT/p3/headers/x"
run_wrk() { wrk -t2 -c16 -d10s --latency "$GOOD" > "$WORK/wrk-$1.txt"; }
run_wrk alone
: > "$WORK/rows.txt"
# Each set of misbehaving routes runs beside its own wrk run, one client
# thread a route, for as long as wrk runs.
for BAD in /p3/loop /p3/oom /p3/trap "/p3/loop /p3/oom /p3/trap"; do
  name=$(echo "$BAD" | sed 's#/p3/##g; s# #+#g')
  log "beside $name"
  python3 - "http://127.0.0.1:$PORT" $BAD > "$WORK/bad-$name.txt" <<'PY' &
import sys, threading, time, urllib.error, urllib.request
base = sys.argv[1]
seen, stop = {}, time.monotonic() + 10
def hit(path):
    while time.monotonic() < stop:
        try:
            st = urllib.request.urlopen(base + path, timeout=10).status
        except urllib.error.HTTPError as e:
            st = e.code
        except Exception:
            st = "error"
        seen[(path, st)] = seen.get((path, st), 0) + 1
ts = [threading.Thread(target=hit, args=(p,)) for p in sys.argv[2:]]
[t.start() for t in ts]; [t.join() for t in ts]
print(", ".join(f"{p.rsplit('/', 1)[-1]} {st}: {n}" for (p, st), n in sorted(seen.items(), key=str)))
PY
  BADPID=$!
  run_wrk "$name"
  wait $BADPID
  echo "$name" >> "$WORK/rows.txt"
done
python3 - "$WORK" <<'PY'
import re, sys
work = sys.argv[1]
def parse(path):
    t = open(path).read()
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
    v = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return v, rps, int(non2xx.group(1)) if non2xx else 0
print()
print(f"{'good requests':<22} {'p99 ms':>8} {'req/s':>9} {'non-2xx':>8}   bad requests (status: count)")
a = parse(f"{work}/wrk-alone.txt")
print(f"{'alone':<22} {a[0]:>8.2f} {a[1]:>9.0f} {a[2]:>8}")
failed = 0
for name in open(f"{work}/rows.txt").read().split():
    b = parse(f"{work}/wrk-{name}.txt")
    failed += b[2]
    bad = open(f"{work}/bad-{name}.txt").read().strip()
    print(f"{'beside ' + name:<22} {b[0]:>8.2f} {b[1]:>9.0f} {b[2]:>8}   {bad}")
print(f"{'ok  ' if failed == 0 else 'MISS'} the misbehaving guest's requests fail alone (good requests: {failed} non-2xx)")
PY
