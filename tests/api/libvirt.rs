//! Real virtual machines: the API on the libvirt driver, QEMU guests booted
//! from the tiny template (scripts/setup-libvirt.sh installs QEMU and the
//! daemons and builds it), two libvirt nodes on the system daemon with two
//! networks (tests/fixtures/libvirt-inventory.toml).
//! Each action is checked through the API and through libvirt itself
//! (`virsh`), and each guest's console shows its own banner.
//!
//! The servers boot in parallel; the whole test takes about a minute under
//! TCG on two cores.

use crate::harness::{Host, HostBuilder, repo_root, send, wait_for};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const USER: &str = "5e6f7a8b-1111-4000-8000-000000000001";
const PROJECT: &str = "5e6f7a8b-2222-4000-8000-000000000002";
const ADMIN: &str = "5e6f7a8b-3333-4000-8000-000000000003";
const TINY: &str = "3f6d2c10-2222-4000-8000-000000000001";
/// Booting under TCG on two busy cores.
const BOOT: Duration = Duration::from_secs(120);

fn member() -> String {
    format!("{USER}:{PROJECT}")
}

fn admin() -> String {
    format!("{ADMIN}:{PROJECT}:admin")
}

/// Placement `lab`: nodes qemu-a and qemu-b, where the test launches.
const LAB: &str = "3f6d2c10-0000-4000-8000-000000000001";
/// Placement `lab-live`: qemu-a and qemu-c, one live-migration group.
const LAB_LIVE: &str = "3f6d2c10-0000-4000-8000-000000000002";
/// qemu-c's daemon (scripts/start-second-libvirtd.sh).
const NODE2: &str = "qemu+unix:///system?socket=/var/lib/vnext-node2/run/libvirt-sock";

/// `virsh` on the system daemon (qemu-a and qemu-b).
fn virsh(args: &[&str]) -> (bool, String) {
    virsh_at("qemu:///system", args)
}

/// `virsh` on the daemon at `uri`.
fn virsh_at(uri: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("virsh").arg("-c").arg(uri).args(args).output().expect("virsh (scripts/setup-libvirt.sh)");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_string())
}

/// `virsh <command> vnext-<server>`.
fn on_domain(server: &str, command: &str) -> String {
    virsh(&[command, &format!("vnext-{server}")]).1
}

/// The domain's state as libvirt says it (`None`: no such domain).
fn domstate(server: &str) -> Option<String> {
    let (ok, out) = virsh(&["domstate", &format!("vnext-{server}")]);
    ok.then_some(out)
}

/// Removes the test's domains however the test ends, so a failure leaves
/// no guest running.
struct Domains(Vec<String>);

impl Drop for Domains {
    fn drop(&mut self) {
        for id in &self.0 {
            let name = format!("vnext-{id}");
            for uri in ["qemu:///system", NODE2] {
                let _ = virsh_at(uri, &["destroy", &name]);
                let _ = virsh_at(uri, &["undefine", &name, "--managed-save"]);
            }
        }
    }
}

/// The system daemon's pid (scripts/setup-libvirt.sh starts it with `-d`).
fn libvirtd_pid() -> String {
    std::fs::read_to_string("/run/libvirtd.pid").expect("libvirtd's pid file").trim().to_string()
}

fn signal(pid: &str, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid).status();
}

/// Starts the system daemon again (as scripts/setup-libvirt.sh does) and
/// waits until it answers.
fn restart_libvirtd() {
    if !virsh(&["version"]).0 {
        let _ = Command::new("libvirtd").arg("-d").status();
    }
    wait_for("libvirtd to answer again", Duration::from_secs(30), || virsh(&["version"]).0.then_some(()));
}

/// Leaves the system daemon running however the test ends.
struct DaemonBack(String);

impl Drop for DaemonBack {
    fn drop(&mut self) {
        signal(&self.0, "CONT");
        restart_libvirtd();
    }
}

fn start_host() -> (Host, tempfile::TempDir) {
    let (ok, out) = virsh(&["version"]);
    assert!(ok, "libvirtd does not answer on qemu:///system: run scripts/setup-libvirt.sh\n{out}");
    assert!(repo_root().join("target/templates/tiny/vmlinuz").exists(), "no tiny template: run scripts/build-tiny-template.sh");
    // QEMU runs as libvirt's own user: the state directory (server disks
    // and consoles live in it) must be traversable by others.
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    (host_on(state.path()), state)
}

/// A host on the libvirt inventory with its state in `state`.
fn host_on(state: &std::path::Path) -> Host {
    HostBuilder::new(repo_root().join("spin.toml"))
        .arg("--inventory")
        .arg(repo_root().join("tests/fixtures/libvirt-inventory.toml").to_str().unwrap())
        .state_dir(state)
        .start()
}

fn get(host: &Host, path: &str) -> Value {
    let r = send("GET", &host.url(path), Some(&admin()), None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

/// The compute node the server is on (admins see it).
fn node_of(host: &Host, id: &str) -> String {
    get(host, &format!("/servers/{id}"))["_elevated"]["compute_node_hostname"].as_str().unwrap().to_string()
}

fn task(host: &Host, server: &str, body: Value) -> Value {
    let r = send("POST", &host.url(&format!("/servers/{server}/tasks")), Some(&member()), Some(&body));
    assert_eq!(r.status, 202, "{body}: {}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    wait_for(&format!("task {body} to end"), BOOT, || {
        let t = get(host, &format!("/server_tasks/{id}"));
        (t["state"] != "RUNNING").then_some(t)
    })
}

fn completed(host: &Host, server: &str, body: Value) -> Value {
    let t = task(host, server, body.clone());
    assert_eq!(t["state"], "COMPLETED", "{body}: {t}");
    get(host, &format!("/servers/{server}"))
}

/// Opens the console URI's websocket as noVNC does and returns the first
/// binary frame (a VNC server's RFB greeting), or the HTTP status line when
/// the proxy refuses the upgrade.
fn websocket_first_frame(uri: &str) -> Result<Vec<u8>, String> {
    websocket_exchange(uri, None)
}

/// [`websocket_first_frame`], sending `hello` first (as a masked binary
/// frame, as a browser would) for protocols where the client speaks first.
fn websocket_exchange(uri: &str, hello: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    let token = vnext_hypervisor::console_proxy::token_of_uri(uri).unwrap_or_else(|| panic!("no token in {uri}"));
    let authority = uri.strip_prefix("http://").and_then(|r| r.split('/').next()).unwrap_or_else(|| panic!("{uri}"));
    let mut tcp = std::net::TcpStream::connect(authority).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        tcp,
        "GET /websockify?token={token} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    if !head.starts_with("HTTP/1.1 101") {
        return Err(head.lines().next().unwrap_or_default().to_string());
    }
    if let Some(hello) = hello {
        assert!(hello.len() < 126);
        // Final binary frame, masked with a zero key (payload unchanged).
        let mut frame = vec![0x82, 0x80 | hello.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(hello);
        tcp.write_all(&frame).unwrap();
    }
    let mut frame = [0u8; 2];
    tcp.read_exact(&mut frame).unwrap();
    assert_eq!(frame[0], 0x82, "a final binary frame");
    let len = match frame[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            tcp.read_exact(&mut n).unwrap();
            u16::from_be_bytes(n) as usize
        }
        127 => panic!("an unexpectedly large frame"),
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).unwrap();
    Ok(payload)
}

fn console(host: &Host, server: &str) -> String {
    let r = send("GET", &host.url(&format!("/servers/{server}/console_log?lines=200")), Some(&member()), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Waits until the console shows `text` `times` times; a timeout shows
/// the console.
fn wait_console(host: &Host, server: &str, text: &str, times: usize) {
    let started = std::time::Instant::now();
    while console(host, server).matches(text).count() < times {
        assert!(started.elapsed() < BOOT, "no {text:?} (#{times}) on the console of {server} within {BOOT:?}:\n{}", console(host, server));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the console shows the banner `times` times.
fn wait_banner(host: &Host, server: &str, hostname: &str, times: usize) {
    wait_console(host, server, &format!("vnext tiny guest: {hostname} is up"), times);
}

#[test]
fn real_guests_boot_print_their_hostname_and_follow_every_offered_action() {
    let (mut host, _state) = start_host();
    let r = send("POST", &host.url("/server_types"), Some(&admin()), Some(&json!({
        "name": "tiny.1", "visibility": "PUBLIC", "spec": {"memory_mb": 128, "cpu_units": 1, "root_disk_gb": 1}
    })));
    assert_eq!(r.status, 201, "{}", r.body);
    let type_id = r.json()["id"].as_str().unwrap().to_string();
    // The catalogue is checked at launch: 400 before anything is created.
    let small = send("POST", &host.url("/server_types"), Some(&admin()), Some(&json!({
        "name": "too.small", "visibility": "PUBLIC", "spec": {"memory_mb": 32, "cpu_units": 1, "root_disk_gb": 1}
    })));
    let small = small.json()["id"].as_str().unwrap().to_string();
    for (defaults, says) in [
        (json!({"type_id": type_id}), "give template_id"),
        (json!({"type_id": type_id, "template_id": "3f6d2c10-2222-4000-8000-0000000000ff"}), "no template"),
        (json!({"type_id": small, "template_id": TINY}), "needs at least 64 MB"),
    ] {
        let body = json!({"defaults": defaults, "servers": [{"hostname": "refused"}]});
        let r = send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&body));
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["error"]["field"], "servers[0].template_id");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(says), "{}", r.body);
    }
    let listed = get(&host, &format!("/projects/{PROJECT}/servers?virt_state=ANY"));
    assert_eq!(listed["servers"], json!([]), "nothing was created");

    assert!(virsh_at(NODE2, &["version"]).0, "qemu-c's daemon does not answer: run scripts/start-second-libvirtd.sh");
    let launch = json!({
        "defaults": {"type_id": type_id, "template_id": TINY, "placement_id": LAB},
        "servers": [{"hostname": "vm-1", "user_data": "aGVsbG8gZnJvbSB2bS0x"}, {"hostname": "vm-2"}, {"hostname": "vm-3"}]
    });
    let r = send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&launch));
    assert_eq!(r.status, 202, "{}", r.body);
    let ids: Vec<String> = r.json().as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    let mut cleanup = Domains(ids.clone());
    let names = ["vm-1", "vm-2", "vm-3"];
    for id in &ids {
        wait_for("ACTIVE", BOOT, || {
            let s = get(&host, &format!("/servers/{id}"));
            assert_ne!(s["virt_state"], "ERROR", "{s}\n{:?}", get(&host, &format!("/servers/{id}/tasks")));
            (s["virt_state"] == "ACTIVE").then_some(())
        });
        assert_eq!(domstate(id).as_deref(), Some("running"));
    }
    for (id, name) in ids.iter().zip(names) {
        wait_banner(&host, id, name, 1);
    }
    // The config drive carries user_data (base64 of "hello from vm-1").
    wait_console(&host, &ids[0], "user_data: hello from vm-1", 1);
    // Each guest has a NIC on its node's network, which gives it an
    // address by DHCP: libvirt's NAT network on qemu-a, QEMU's user-mode
    // network on qemu-b.
    for id in &ids {
        let s = get(&host, &format!("/servers/{id}"));
        let mac = s["networking"]["interfaces"][0]["mac"].as_str().unwrap_or_else(|| panic!("a NIC: {s}")).to_string();
        assert!(on_domain(id, "domiflist").contains(&mac), "{}", on_domain(id, "domiflist"));
        let subnet = if s["_elevated"]["compute_node_hostname"] == "qemu-a" { "192.168.122." } else { "10.0.2." };
        wait_console(&host, id, &format!("eth0 has {subnet}"), 1);
    }
    // Both nodes take guests (the scheduler prefers the one with more room).
    let nodes: std::collections::BTreeSet<String> =
        ids.iter().map(|id| get(&host, &format!("/servers/{id}"))["_elevated"]["compute_node_hostname"].as_str().unwrap().to_string()).collect();
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), ["qemu-a", "qemu-b"]);
    let (vm1, vm2, vm3) = (&ids[0], &ids[1], &ids[2]);

    // The VNC console through the adapter's websocket proxy, once per token.
    let c = get(&host, &format!("/servers/{vm1}/consoles/novnc"));
    let uri = c["uri"].as_str().unwrap().to_string();
    assert_eq!(websocket_first_frame(&uri).unwrap(), b"RFB 003.008\n", "the guest's VNC display greets");
    let again = websocket_first_frame(&uri).unwrap_err();
    assert!(again.contains(" 4"), "a used token is refused: {again}");
    // SPICE on qemu-a, which lists it: the client speaks first (a link
    // message for the main channel) and the server answers in kind.
    let on_a = ids.iter().find(|id| get(&host, &format!("/servers/{id}"))["_elevated"]["compute_node_hostname"] == "qemu-a").unwrap();
    let uri = get(&host, &format!("/servers/{on_a}/consoles/spice"))["uri"].as_str().unwrap().to_string();
    assert!(uri.contains("/spice_auto.html?token="), "{uri}");
    let mut link = b"REDQ".to_vec();
    for word in [2u32, 2, 18, 0] {
        link.extend_from_slice(&word.to_le_bytes()); // major, minor, size; connection id
    }
    link.extend_from_slice(&[1, 0]); // the main channel, id 0
    for word in [0u32, 0, 18] {
        link.extend_from_slice(&word.to_le_bytes()); // no caps, at offset 18
    }
    let reply = websocket_exchange(&uri, Some(&link)).unwrap();
    assert_eq!(&reply[..4], b"REDQ", "a SPICE link reply: {reply:?}");
    let on_b = ids.iter().find(|id| *id != on_a).unwrap();
    if get(&host, &format!("/servers/{on_b}"))["_elevated"]["compute_node_hostname"] == "qemu-b" {
        let r = send("GET", &host.url(&format!("/servers/{on_b}/consoles/spice")), Some(&member()), None);
        assert_eq!(r.status, 400, "qemu-b does not list spice: {}", r.body);
    }

    // REBOOT: the guest goes down on the ACPI button and boots again.
    let s = completed(&host, vm1, json!({"action": "REBOOT"}));
    assert_eq!((s["virt_state"].as_str(), s["power_state"].as_str()), (Some("ACTIVE"), Some("RUNNING")));
    assert!(console(&host, vm1).contains("power button pressed"), "a clean ACPI shutdown:\n{}", console(&host, vm1));
    wait_banner(&host, vm1, "vm-1", 2);
    assert_eq!(domstate(vm1).as_deref(), Some("running"));

    // POWER_OFF / POWER_ON.
    let s = completed(&host, vm2, json!({"action": "POWER_OFF"}));
    assert_eq!((s["virt_state"].as_str(), s["power_state"].as_str()), (Some("STOPPED"), Some("SHUTDOWN")));
    assert_eq!(domstate(vm2).as_deref(), Some("shut off"));
    let s = completed(&host, vm2, json!({"action": "POWER_ON"}));
    assert_eq!(s["power_state"], "RUNNING");
    assert_eq!(domstate(vm2).as_deref(), Some("running"));
    wait_banner(&host, vm2, "vm-2", 2);

    // PAUSE / UNPAUSE and SUSPEND / RESUME (a managed save).
    let s = completed(&host, vm3, json!({"action": "PAUSE"}));
    assert_eq!(s["power_state"], "PAUSED");
    assert_eq!(domstate(vm3).as_deref(), Some("paused"));
    completed(&host, vm3, json!({"action": "UNPAUSE"}));
    assert_eq!(domstate(vm3).as_deref(), Some("running"));
    let s = completed(&host, vm3, json!({"action": "SUSPEND"}));
    assert_eq!((s["virt_state"].as_str(), s["power_state"].as_str()), (Some("SUSPENDED"), Some("SUSPENDED")));
    assert_eq!(domstate(vm3).as_deref(), Some("shut off"));
    assert!(on_domain(vm3, "dominfo").contains("Managed save:   yes"));
    completed(&host, vm3, json!({"action": "RESUME"}));
    assert_eq!(domstate(vm3).as_deref(), Some("running"));
    assert_eq!(console(&host, vm3).matches("vnext tiny guest: vm-3 is up").count(), 1, "restored, not booted again");


    // RESIZE (cold): the domain gets the new type's size and boots again.
    let r = send("POST", &host.url("/server_types"), Some(&admin()), Some(&json!({
        "name": "tiny.2", "visibility": "PUBLIC", "spec": {"memory_mb": 192, "cpu_units": 2, "root_disk_gb": 2, "swap_mb": 64}
    })));
    let bigger = r.json()["id"].as_str().unwrap().to_string();
    let s = completed(&host, vm1, json!({"action": "RESIZE", "type_id": bigger}));
    assert_eq!((s["type_id"].as_str(), s["spec"]["memory_mb"].as_u64()), (Some(bigger.as_str()), Some(192)));
    let info = on_domain(vm1, "dominfo");
    assert!(info.contains("196608 KiB") && info.lines().any(|l| l.starts_with("CPU(s):") && l.ends_with(" 2")), "{info}");
    assert_eq!(domstate(vm1).as_deref(), Some("running"));
    wait_banner(&host, vm1, "vm-1", 3);
    // The new type has swap: a swap disk the guest uses.
    assert!(on_domain(vm1, "domblklist").contains("swap.qcow2"), "{}", on_domain(vm1, "domblklist"));
    wait_console(&host, vm1, "vnext tiny guest: swap ", 1);
    // REBUILD: a new root disk from the template, booted.
    completed(&host, vm3, json!({"action": "REBUILD", "template_id": TINY}));
    assert_eq!(domstate(vm3).as_deref(), Some("running"));
    wait_banner(&host, vm3, "vm-3", 2);

    // Diagnostics from the domain.
    let d = get(&host, &format!("/servers/{vm1}/diagnostics"));
    assert_eq!(d["memory_total_mb"], 192);
    assert!(d["cpu_time_ns"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["disks"][0]["device"], "vda");

    // TERMINATE removes the domain (the disk stays); RESTORE boots it again.
    let s = completed(&host, vm2, json!({"action": "TERMINATE"}));
    assert_eq!(s["virt_state"], "TERMINATED");
    assert_eq!(domstate(vm2), None, "no domain once terminated");
    let s = completed(&host, vm2, json!({"action": "RESTORE"}));
    assert_eq!(s["virt_state"], "ACTIVE");
    assert_eq!(domstate(vm2).as_deref(), Some("running"));
    wait_banner(&host, vm2, "vm-2", 3);

    // A guest that powers itself off (its init answers the ACPI button,
    // pressed here behind the API's back) shows STOPPED without anyone
    // asking; so does one destroyed behind its back. POWER_ON brings it back.
    for how in ["shutdown", "destroy"] {
        on_domain(vm3, how);
        wait_for(&format!("vm-3 STOPPED after virsh {how}"), BOOT, || {
            let s = get(&host, &format!("/servers/{vm3}"));
            (s["virt_state"] == "STOPPED" && s["power_state"] == "SHUTDOWN").then_some(())
        });
        completed(&host, vm3, json!({"action": "POWER_ON"}));
        assert_eq!(domstate(vm3).as_deref(), Some("running"));
    }

    // SNAPSHOT: the disk becomes a template named by the task's id, which a
    // launch boots.
    let t = task(&host, vm1, json!({"action": "SNAPSHOT", "name": "vm-1-golden"}));
    assert_eq!(t["state"], "COMPLETED", "{t}");
    let golden = t["id"].as_str().unwrap().to_string();
    assert_eq!(domstate(vm1).as_deref(), Some("running"), "the guest runs on after its snapshot");
    // vm-1 was resized to 2 GB of disk: its snapshot needs that much.
    let launch = json!({"defaults": {"type_id": type_id, "template_id": golden, "placement_id": LAB}, "servers": [{"hostname": "vm-4"}]});
    let r = send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&launch));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("2 GB of root disk"), "{}", r.body);
    let launch = json!({"defaults": {"type_id": bigger, "template_id": golden, "placement_id": LAB}, "servers": [{"hostname": "vm-4"}]});
    let r = send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&launch));
    assert_eq!(r.status, 202, "{}", r.body);
    let vm4 = r.json()[0]["id"].as_str().unwrap().to_string();
    cleanup.0.push(vm4.clone());
    wait_for("vm-4 ACTIVE", BOOT, || (get(&host, &format!("/servers/{vm4}"))["virt_state"] == "ACTIVE").then_some(()));
    wait_banner(&host, &vm4, "vm-4", 1);

    // MOVE (cold) to the other node: its NIC moves to that node's network.
    let nic_type = |node: &str| if node == "qemu-a" { " network " } else { " user " };
    let from_node = node_of(&host, vm2);
    assert!(on_domain(vm2, "domiflist").contains(nic_type(&from_node)), "{}", on_domain(vm2, "domiflist"));
    // Both nodes are one daemon, so neither has a live-migration group:
    // refused before a task exists, naming the cold MOVE.
    let r = send("POST", &host.url(&format!("/servers/{vm2}/tasks")), Some(&member()), Some(&json!({"action": "MOVE", "live": true})));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("cold"), "a live MOVE names the cold one: {}", r.body);
    let s = completed(&host, vm2, json!({"action": "MOVE"}));
    assert_eq!(s["virt_state"], "ACTIVE");
    let to_node = node_of(&host, vm2);
    assert_ne!(to_node, from_node);
    assert!(on_domain(vm2, "domiflist").contains(nic_type(&to_node)), "{}", on_domain(vm2, "domiflist"));
    assert_eq!(domstate(vm2).as_deref(), Some("running"));
    wait_banner(&host, vm2, "vm-2", 4);

    // A live MOVE between two daemons: the guest runs on without a reboot
    // (no new banner), on qemu-c's daemon and no longer on the system's.
    let live = ids.iter().find(|id| node_of(&host, id) == "qemu-a").expect("a guest on qemu-a").clone();
    let name = get(&host, &format!("/servers/{live}"))["hostname"].as_str().unwrap().to_string();
    let banner = format!("vnext tiny guest: {name} is up");
    let boots = console(&host, &live).matches(&banner).count();
    let s = completed(&host, &live, json!({"action": "MOVE", "placement_id": LAB_LIVE, "live": true}));
    assert_eq!((s["virt_state"].as_str(), s["power_state"].as_str()), (Some("ACTIVE"), Some("RUNNING")), "{s}");
    assert_eq!(node_of(&host, &live), "qemu-c");
    assert_eq!(domstate(&live), None, "gone from the source daemon");
    assert_eq!(virsh_at(NODE2, &["domstate", &format!("vnext-{live}")]).1, "running");
    // Its VNC display moved too, and the proxy finds it on the new daemon.
    let uri = get(&host, &format!("/servers/{live}/consoles/novnc"))["uri"].as_str().unwrap().to_string();
    assert_eq!(websocket_first_frame(&uri).unwrap(), b"RFB 003.008\n");
    // And back (placement lab-live is the server's now).
    completed(&host, &live, json!({"action": "MOVE", "live": true}));
    assert_eq!(node_of(&host, &live), "qemu-a");
    assert_eq!(domstate(&live).as_deref(), Some("running"));
    assert!(!virsh_at(NODE2, &["domstate", &format!("vnext-{live}")]).0, "undefined on qemu-c");
    assert_eq!(console(&host, &live).matches(&banner).count(), boots, "migrated, not rebooted:\n{}", console(&host, &live));

    // RESCUE boots the rescue template with the server's disk second; UNRESCUE undoes it.
    let s = completed(&host, &vm4, json!({"action": "RESCUE"}));
    assert_eq!(s["virt_state"], "RESCUED");
    assert!(on_domain(&vm4, "domblklist").contains("rescue.qcow2"), "{}", on_domain(&vm4, "domblklist"));
    wait_banner(&host, &vm4, "vm-4", 2);
    let s = completed(&host, &vm4, json!({"action": "UNRESCUE"}));
    assert_eq!(s["virt_state"], "ACTIVE");
    assert!(!on_domain(&vm4, "domblklist").contains("rescue.qcow2"));

    // SHELVE stops it and undefines the domain (the disk kept aside),
    // SHELVE_OFFLOAD frees the node, UNSHELVE boots it again.
    let s = completed(&host, &vm4, json!({"action": "SHELVE"}));
    assert_eq!(s["virt_state"], "SHELVED");
    assert_eq!(domstate(&vm4), None, "shelved: no domain");
    let s = completed(&host, &vm4, json!({"action": "SHELVE_OFFLOAD"}));
    assert_eq!(s["virt_state"], "SHELVED_OFFLOADED");
    assert_eq!(domstate(&vm4), None, "offloaded: no domain");
    let s = completed(&host, &vm4, json!({"action": "UNSHELVE"}));
    assert_eq!(s["virt_state"], "ACTIVE");
    assert_eq!(domstate(&vm4).as_deref(), Some("running"));
    wait_banner(&host, &vm4, "vm-4", 4);

    // A volume hot-plugged as a virtio disk, then unplugged.
    let volume = "5e6f7a8b-4444-4000-8000-000000000004";
    let s = completed(&host, vm1, json!({"action": "ATTACH_BLOCK_DEVICE", "volume_id": volume}));
    assert!(s["block_devices"].to_string().contains("/dev/vdb"), "{s}");
    assert!(on_domain(vm1, "domblklist").contains(&format!("{volume}.qcow2")));
    completed(&host, vm1, json!({"action": "DETACH_BLOCK_DEVICE", "volume_id": volume}));
    assert!(!on_domain(vm1, "domblklist").contains(&format!("{volume}.qcow2")));

    // A NIC hot-plugged, then unplugged by its MAC.
    let mac = "52:54:00:5e:6f:01";
    let s = completed(&host, vm1, json!({"action": "ATTACH_NETWORK_INTERFACE", "mac": mac}));
    assert!(s["networking"]["interfaces"].to_string().contains(mac), "{s}");
    assert!(on_domain(vm1, "domiflist").contains(mac));
    completed(&host, vm1, json!({"action": "DETACH_NETWORK_INTERFACE", "mac": mac}));
    assert!(!on_domain(vm1, "domiflist").contains(mac));

    // UPDATE_PASSWORD needs qemu-guest-agent, which the tiny guest lacks.
    let t = task(&host, vm1, json!({"action": "UPDATE_PASSWORD", "password": "n3w-Secret"}));
    assert_eq!(t["state"], "ABORTED", "{t}");
    assert!(t["error"].as_str().unwrap().contains("qemu-guest-agent"), "{t}");
    assert_eq!(domstate(vm1).as_deref(), Some("running"));

    // The host (and its adapter) restarts: the journaled servers are matched
    // with their domains, a domain no server owns is reported and left
    // alone, and the servers go on taking tasks.
    let stray = uuid::Uuid::new_v4().to_string();
    let stray_xml = _state.path().join("stray.xml");
    std::fs::write(&stray_xml, format!(
        "<domain type='qemu'><name>vnext-{stray}</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    )).unwrap();
    assert!(virsh(&["define", stray_xml.to_str().unwrap()]).0);
    cleanup.0.push(stray.clone());
    host.stop();
    host = host_on(_state.path());
    wait_for("the restarted adapter's matching", Duration::from_secs(30), || host.log().contains("domain(s) matched journaled servers").then_some(()));
    let log = host.log();
    assert!(log.contains("after the start, 4 domain(s) matched journaled servers"), "{log}");
    assert!(log.contains(&format!("domain vnext-{stray} at qemu:///system belongs to no server this adapter knows")), "{log}");
    assert!(domstate(&stray).is_some(), "left alone");
    cleanup.0.retain(|id| *id != stray);
    let _ = virsh(&["undefine", &format!("vnext-{stray}")]);
    completed(&host, vm1, json!({"action": "REBOOT"}));

    // libvirtd hangs, then dies, under a server's task: each task ends with
    // a message naming the node instead of hanging; the guest and its
    // record survive; once the daemon is back, tasks complete again.
    let sys = cleanup.0.iter().find(|id| node_of(&host, id) == "qemu-a").cloned().expect("a server on qemu-a");
    let pid = libvirtd_pid();
    let back = DaemonBack(pid.clone());
    signal(&pid, "STOP");
    let t = task(&host, &sys, json!({"action": "PAUSE"}));
    assert!(t["state"] == "TIMED_OUT" || t["state"] == "ABORTED", "a hung daemon: {t}");
    assert!(t["error"].as_str().unwrap().contains("libvirt on node qemu-a"), "{t}");
    signal(&pid, "KILL");
    let t = task(&host, &sys, json!({"action": "PAUSE"}));
    assert_eq!(t["state"], "ABORTED", "{t}");
    // (Whether the first call after the kill finds the connection broken or
    // cannot connect, the message names the daemon and the node.)
    assert!(t["error"].as_str().unwrap().contains("libvirt at qemu:///system (node qemu-a)"), "{t}");
    drop(back);
    assert_eq!(domstate(&sys).as_deref(), Some("running"), "the guest ran on without its daemon");
    let s = completed(&host, &sys, json!({"action": "PAUSE"}));
    assert_eq!(s["power_state"], "PAUSED");
    completed(&host, &sys, json!({"action": "UNPAUSE"}));

    for id in &cleanup.0 {
        completed(&host, id, json!({"action": "TERMINATE"}));
        assert_eq!(domstate(id), None);
    }
    // Reclaim (20 s after TERMINATE here): the disk goes, the server stays
    // readable as TERMINATED, RESTORE is refused.
    let disk_dir = _state.path().join("libvirt").join(vm2);
    wait_for("vm-2 reclaimed", Duration::from_secs(90), || {
        let s = get(&host, &format!("/servers/{vm2}"));
        (!disk_dir.exists() && s["virt_state"] == "TERMINATED").then_some(())
    });
    wait_for("the API to learn of the reclaim", Duration::from_secs(30), || {
        let r = send("POST", &host.url(&format!("/servers/{vm2}/tasks")), Some(&member()), Some(&json!({"action": "RESTORE"})));
        (r.status == 409).then_some(r)
    });
}
