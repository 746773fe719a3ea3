#!/usr/bin/env python3
"""Real-VM benchmark: time from a launch request to ACTIVE for 1, 5 and 10
QEMU guests through the API (libvirt driver), beside the time the same
domains take with `qemu-img create` + `virsh define` + `virsh start` directly,
in the same run; the API's overhead per server; the host's RSS and CPU per
running guest; KVM or TCG as the host decided.

    scripts/bench-libvirt.py [SIZES]     e.g. scripts/bench-libvirt.py 1,5,10

Needs scripts/setup-libvirt.sh done and target/release/vnext built with the
components (scripts/run-libvirt.sh does both). Uses deploy/libvirt-inventory.toml
and a fresh state directory; removes every domain it made.
"""
import json, os, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "1,5,10").split(",")]
ADMIN = "11111111-1111-4111-8111-111111111111:22222222-2222-4222-8222-222222222222:admin"
PROJECT = "22222222-2222-4222-8222-222222222222"
TINY = "3f6d2c10-2222-4000-8000-000000000001"
TEMPLATE_DIR = os.path.join(ROOT, "target/templates/tiny")
PORT = 3917
API = f"http://127.0.0.1:{PORT}"
POLL = 0.05


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method, headers={"X-Auth-Token": ADMIN})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


def virsh(*args, check=True):
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], check=check, capture_output=True, text=True).stdout


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait(what, predicate, limit=300):
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > limit:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(POLL)


def api_launch(n, type_id, round_no):
    body = {"defaults": {"type_id": type_id, "template_id": TINY},
            "servers": [{"hostname": f"b{round_no}-{i}"} for i in range(n)]}
    started = time.monotonic()
    ids = [s["id"] for s in call("POST", f"/projects/{PROJECT}/servers", body)]

    def all_active():
        states = [call("GET", f"/servers/{i}")["virt_state"] for i in ids]
        if "ERROR" in states:
            tasks = call("GET", f"/servers/{ids[states.index('ERROR')]}/tasks")["tasks"]
            sys.exit(f"a server went to ERROR: {tasks[-1].get('error')} (room on the inventory's nodes?)")
        return all(s == "ACTIVE" for s in states)
    wait(f"{n} servers ACTIVE", all_active)
    return time.monotonic() - started, ids


def api_cleanup(ids):
    for i in ids:
        call("POST", f"/servers/{i}/tasks", {"action": "TERMINATE"})
    wait("terminated", lambda: all(call("GET", f"/servers/{i}")["virt_state"] == "TERMINATED" for i in ids))


def virsh_launch(n, kind, work):
    """The same domains, by hand: an empty root disk, define, start."""
    names = []
    started = time.monotonic()
    for i in range(n):
        name = f"vnext-bench-virsh-{i}"
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", f"{d}/root.qcow2", "1G"], check=True)
        xml = f"""<domain type='{kind}'><name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>{TEMPLATE_DIR}/vmlinuz</kernel><initrd>{TEMPLATE_DIR}/initramfs.gz</initrd>
<cmdline>console=ttyS0 quiet vnext.hostname={name}</cmdline></os><features><acpi/></features>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{d}/root.qcow2'/><target dev='vda' bus='virtio'/></disk>
<serial type='file'><source path='{d}/console.log' append='on'/><target port='0'/></serial>
<graphics type='vnc' autoport='yes' listen='127.0.0.1'/></devices></domain>"""
        with open(f"{d}/dom.xml", "w") as f:
            f.write(xml)
        virsh("define", f"{d}/dom.xml")
        virsh("start", name)
        names.append(name)
    wait(f"{n} domains running", lambda: all(virsh("domstate", x).strip() == "running" for x in names))
    elapsed = time.monotonic() - started
    for x in names:
        virsh("destroy", x, check=False)
        virsh("undefine", x, check=False)
    return elapsed


def main():
    if not os.path.exists(os.path.join(ROOT, "target/release/vnext")):
        sys.exit("target/release/vnext is missing: run scripts/run-libvirt.sh once (it builds everything)")
    state = tempfile.mkdtemp(prefix="vnext-bench-libvirt-")
    os.chmod(state, 0o711)  # QEMU runs as libvirt's user and must reach the disks
    log = open(os.path.join(state, "host.log"), "w")
    env = dict(os.environ, SPIN_VARIABLE_EVENTS_SECRET="bench")
    host = subprocess.Popen([os.path.join(ROOT, "target/release/vnext"), "up", "-f", os.path.join(ROOT, "spin.toml"),
                             "--listen", f"127.0.0.1:{PORT}", "--state-dir", state,
                             "--inventory", os.path.join(ROOT, "deploy/libvirt-inventory.toml")],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    made = []
    try:
        wait("the host", lambda: subprocess.run(["curl", "-sf", "-o", "/dev/null", API + "/"]).returncode == 0, 180)
        type_id = call("POST", "/server_types", {"name": "bench.tiny", "visibility": "PUBLIC",
                                                  "spec": {"memory_mb": 128, "cpu_units": 1, "root_disk_gb": 1}})["id"]
        # The KVM probe decides qemu-a's accel; the rows use what it chose.
        wait("the accel decision", lambda: "runs guests with" in open(os.path.join(state, "host.log")).read(), 60)
        accel_line = next(l for l in open(os.path.join(state, "host.log")) if "runs guests with" in l).strip()
        kind = "kvm" if "with KVM" in accel_line else "qemu"
        idle_rss = rss_kb(host.pid)
        print(f"accel: {accel_line.split(': ', 1)[1]}")
        print(f"{'servers':>7} | {'API to ACTIVE s':>15} | {'virsh s':>8} | {'overhead/server ms':>18} | {'API/virsh':>9}")
        print(f"{'-' * 7}-+-{'-' * 15}-+-{'-' * 8}-+-{'-' * 18}-+-{'-' * 9}")
        with tempfile.TemporaryDirectory(prefix="vnext-bench-virsh-") as work:
            os.chmod(work, 0o711)
            for round_no, n in enumerate(SIZES):
                api_s, ids = api_launch(n, type_id, round_no)
                made += ids
                if n == max(SIZES):
                    # RSS and CPU of the host (API and adapter in one process) with n guests running.
                    busy_rss = rss_kb(host.pid)
                    t0, c0 = time.monotonic(), cpu_ticks(host.pid)
                    time.sleep(10)
                    cpu = (cpu_ticks(host.pid) - c0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0)
                    guests = n
                api_cleanup(ids)
                virsh_s = virsh_launch(n, kind, work)
                print(f"{n:>7} | {api_s:>15.2f} | {virsh_s:>8.2f} | {(api_s - virsh_s) / n * 1000:>18.0f} | {api_s / virsh_s:>9.2f}")
        print(f"host RSS: {idle_rss / 1024:.0f} MB idle, {busy_rss / 1024:.0f} MB with {guests} guests "
              f"({(busy_rss - idle_rss) / 1024 / guests:.1f} MB per guest); host CPU with {guests} guests idle: "
              f"{cpu * 100:.1f}% of a core ({cpu * 100 / guests:.2f}% per guest)")
    finally:
        host.terminate()
        host.wait(timeout=15)
        for i in made:
            virsh("destroy", f"vnext-{i}", check=False)
            virsh("undefine", f"vnext-{i}", "--managed-save", check=False)


if __name__ == "__main__":
    main()
