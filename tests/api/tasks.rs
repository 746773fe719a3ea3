//! Server tasks over HTTP: every action from each state on the fake driver
//! (valid ones complete and change the server as Nova would, invalid ones
//! get 409), argument rules, items and both task lists.
//!
//! Expectations come from [`TABLE`], a copy of the data of
//! crates/core/src/transitions.rs (and of the spec's item lists), never from
//! the responses under test: a task must end COMPLETED with the server in
//! the row's virt_state / power_state ("None" = as before the task) and its
//! items must be the row's, in order, all COMPLETED.

use crate::harness::{Host, HostBuilder, Resp, repo_root, send, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const USER: &str = "5a5c7a10-1111-4000-8000-000000000001";
/// A second member of PROJECT (to check who may UNLOCK).
const OTHER_USER: &str = "5a5c7a10-1111-4000-8000-0000000000f2";
const PROJECT: &str = "5a5c7a10-2222-4000-8000-000000000002";
const ADMIN: &str = "5a5c7a10-3333-4000-8000-000000000003";
const OUTSIDER: &str = "5a5c7a10-5555-4000-8000-000000000005";
const OUTSIDER_PROJECT: &str = "5a5c7a10-6666-4000-8000-000000000006";
const TEMPLATE: &str = "5a5c7a10-4444-4000-8000-000000000004";
const OTHER_TEMPLATE: &str = "5a5c7a10-4444-4000-8000-0000000000b2";
const VOLUME_1: &str = "5a5c7a10-7777-4000-8000-000000000001";
const VOLUME_2: &str = "5a5c7a10-7777-4000-8000-000000000002";
const NETWORK: &str = "5a5c7a10-8888-4000-8000-000000000001";
/// Placement `rack-c` of tests/fixtures/inventory.toml: its only enabled node is cn-c1.
const RACK_C: &str = "7d3b3a10-0000-4000-8000-000000000006";
/// Placement `region-one` of tests/fixtures/inventory.toml: the root, every node.
const REGION: &str = "7d3b3a10-0000-4000-8000-000000000001";
/// Placement `edge`: node cn-e1 only, in a live-migration group of its own.
const EDGE: &str = "7d3b3a10-0000-4000-8000-000000000007";

/// Generous: two shared cores, many hosts at once; the fake steps take 20 ms.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One row of the transition table (crates/core/src/transitions.rs).
struct Row {
    action: &'static str,
    from: &'static [&'static str],
    /// virt_state after COMPLETED; None: the one it started from.
    virt: Option<&'static str>,
    /// power_state after COMPLETED; None: as before.
    power: Option<&'static str>,
    items: &'static [&'static str],
}

const ANY_BUT_TERMINATED: &[&str] = &[
    "ACTIVE", "BUILDING", "PAUSED", "SUSPENDED", "STOPPED", "RESCUED", "RESIZED", "SHELVED", "SHELVED_OFFLOADED", "ERROR",
];
const ANY: &[&str] = &[
    "ACTIVE", "BUILDING", "PAUSED", "SUSPENDED", "STOPPED", "RESCUED", "RESIZED", "TERMINATED", "SHELVED",
    "SHELVED_OFFLOADED", "ERROR",
];
const SNAPSHOTTABLE: &[&str] = &["ACTIVE", "STOPPED", "PAUSED", "SUSPENDED"];
const VOLUME_ATTACHABLE: &[&str] = &["ACTIVE", "PAUSED", "STOPPED", "RESIZED", "SHELVED", "SHELVED_OFFLOADED"];
const INTERFACE_ATTACHABLE: &[&str] = &["ACTIVE", "PAUSED", "STOPPED"];

const fn row(
    action: &'static str,
    from: &'static [&'static str],
    after: Option<(&'static str, &'static str)>,
    items: &'static [&'static str],
) -> Row {
    let (virt, power) = match after {
        Some((v, p)) => (Some(v), Some(p)),
        None => (None, None),
    };
    Row { action, from, virt, power, items }
}

/// Every action a client may start (CREATE only comes from a launch).
const TABLE: &[Row] = &[
    row("SNAPSHOT", SNAPSHOTTABLE, None, &["SNAPSHOTTING", "UPLOADING"]),
    row("BACKUP", SNAPSHOTTABLE, None, &["SNAPSHOTTING", "UPLOADING"]),
    row("UPDATE_PASSWORD", &["ACTIVE"], None, &["UPDATING_PASSWORD"]),
    row("RESIZE", &["ACTIVE", "STOPPED"], None, &["PREPARING", "MIGRATING", "FINALIZING"]),
    row("REBOOT", &["ACTIVE"], Some(("ACTIVE", "RUNNING")), &["REBOOTING"]),
    row("HARD_REBOOT", &["ACTIVE", "STOPPED", "PAUSED", "SUSPENDED", "ERROR"], Some(("ACTIVE", "RUNNING")), &["REBOOTING"]),
    row("PAUSE", &["ACTIVE"], Some(("PAUSED", "PAUSED")), &["PAUSING"]),
    row("UNPAUSE", &["PAUSED"], Some(("ACTIVE", "RUNNING")), &["UNPAUSING"]),
    row("SUSPEND", &["ACTIVE"], Some(("SUSPENDED", "SUSPENDED")), &["SUSPENDING"]),
    row("RESUME", &["SUSPENDED"], Some(("ACTIVE", "RUNNING")), &["RESUMING"]),
    row("POWER_OFF", &["ACTIVE", "ERROR"], Some(("STOPPED", "SHUTDOWN")), &["POWERING_OFF"]),
    row("POWER_ON", &["STOPPED"], Some(("ACTIVE", "RUNNING")), &["POWERING_ON"]),
    row("RESCUE", &["ACTIVE", "STOPPED", "ERROR"], Some(("RESCUED", "RUNNING")), &["RESCUING"]),
    row("UNRESCUE", &["RESCUED"], Some(("ACTIVE", "RUNNING")), &["UNRESCUING"]),
    row("REBUILD", &["ACTIVE", "STOPPED", "ERROR"], Some(("ACTIVE", "RUNNING")), &["REBUILDING", "REBUILDING_BLOCK_DEVICES", "SPAWNING"]),
    row("MOVE", &["ACTIVE", "STOPPED", "PAUSED"], None, &["PREPARING", "MIGRATING", "FINALIZING"]),
    row("TERMINATE", ANY_BUT_TERMINATED, Some(("TERMINATED", "SHUTDOWN")), &["TERMINATING"]),
    row("RESTORE", &["TERMINATED"], Some(("ACTIVE", "RUNNING")), &["RESTORING"]),
    row("SHELVE", SNAPSHOTTABLE, Some(("SHELVED", "SHUTDOWN")), &["SHELVING", "PREPARING_UPLOAD", "UPLOADING"]),
    row("SHELVE_OFFLOAD", &["SHELVED"], Some(("SHELVED_OFFLOADED", "SHUTDOWN")), &["SHELVING_OFFLOADING"]),
    row("UNSHELVE", &["SHELVED", "SHELVED_OFFLOADED"], Some(("ACTIVE", "RUNNING")), &["UNSHELVING"]),
    row("ATTACH_BLOCK_DEVICE", VOLUME_ATTACHABLE, None, &["ATTACHING_BLOCK_DEVICE"]),
    row("DETACH_BLOCK_DEVICE", VOLUME_ATTACHABLE, None, &["DETACHING_BLOCK_DEVICE"]),
    row("ATTACH_NETWORK_INTERFACE", INTERFACE_ATTACHABLE, None, &["ATTACHING_NETWORK_INTERFACE"]),
    row("DETACH_NETWORK_INTERFACE", INTERFACE_ATTACHABLE, None, &["DETACHING_NETWORK_INTERFACE"]),
    row("LOCK", ANY, None, &[]),
    row("UNLOCK", ANY, None, &[]),
];

fn table_row(action: &str) -> &'static Row {
    TABLE.iter().find(|r| r.action == action).unwrap_or_else(|| panic!("no row for {action}"))
}

// ------------------------------------------------------------------ helpers

fn member() -> String {
    format!("{USER}:{PROJECT}")
}

fn other_member() -> String {
    format!("{OTHER_USER}:{PROJECT}")
}

fn outsider() -> String {
    format!("{OUTSIDER}:{OUTSIDER_PROJECT}")
}

fn admin() -> String {
    format!("{ADMIN}:{OUTSIDER_PROJECT}:admin")
}

fn create_type(host: &Host, name: &str, memory_mb: u64) -> String {
    let body = json!({"name": name, "visibility": "PUBLIC", "spec": {"memory_mb": memory_mb, "cpu_units": 1}});
    let r = send("POST", &host.url("/server_types"), Some(&admin()), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

/// Launches servers named `hostnames` of type `type_id`; their ids in order.
fn launch(host: &Host, type_id: &str, hostnames: &[&str]) -> Vec<String> {
    let servers: Vec<Value> = hostnames.iter().map(|h| json!({"hostname": h})).collect();
    let body = json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": servers});
    let r = send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&body));
    assert_eq!(r.status, 202, "{}", r.body);
    r.json().as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

/// Launches one server and waits until it is ACTIVE.
fn launch_active(host: &Host, type_id: &str, hostname: &str) -> String {
    let id = launch(host, type_id, &[hostname]).remove(0);
    wait_virt(host, &id, "ACTIVE");
    id
}

fn get_json(host: &Host, path: &str, token: &str) -> Value {
    let r = send("GET", &host.url(path), Some(token), None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

/// The admin view of a server (it includes `_elevated`).
fn server(host: &Host, id: &str) -> Value {
    get_json(host, &format!("/servers/{id}"), &admin())
}

fn wait_virt(host: &Host, id: &str, state: &str) -> Value {
    wait_for(&format!("server {id} {state}"), TIMEOUT, || {
        let s = server(host, id);
        (s["virt_state"] == state).then_some(s)
    })
}

fn post_task(host: &Host, token: &str, id: &str, body: &Value) -> Resp {
    send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(token), Some(body))
}

fn get_task(host: &Host, task_id: &str) -> Value {
    get_json(host, &format!("/server_tasks/{task_id}"), &member())
}

/// Polls the task until it is no longer RUNNING.
fn wait_task(host: &Host, task_id: &str) -> Value {
    wait_for(&format!("task {task_id} to end"), TIMEOUT, || {
        let t = get_task(host, task_id);
        (t["state"] != "RUNNING").then_some(t)
    })
}

fn task_items(host: &Host, task_id: &str) -> Vec<Value> {
    get_json(host, &format!("/server_tasks/{task_id}/items?limit=1000"), &member())["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Every task of a server, newest first.
fn server_tasks(host: &Host, id: &str) -> Vec<Value> {
    get_json(host, &format!("/servers/{id}/tasks?limit=1000"), &member())["tasks"].as_array().unwrap().clone()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

/// Asserts a 4xx in the one error shape, naming `field` when given.
fn assert_refused(r: &Resp, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.json()["error"];
    assert_eq!(e["code"], status, "{}", r.body);
    assert!(e["title"].as_str().is_some_and(|t| !t.is_empty()), "{}", r.body);
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
    if let Some(f) = field {
        assert_eq!(e["field"], f, "{}", r.body);
    }
}

/// A body with valid arguments for `action` (ids need not be the server's).
fn sample_body(action: &str, type_id: &str) -> Value {
    let mut b = json!({"action": action});
    let args = match action {
        "RESIZE" => json!({"type_id": type_id}),
        "REBUILD" => json!({"template_id": OTHER_TEMPLATE}),
        "UPDATE_PASSWORD" => json!({"password": "s3cret"}),
        "SNAPSHOT" | "BACKUP" => json!({"name": "img"}),
        "ATTACH_BLOCK_DEVICE" | "DETACH_BLOCK_DEVICE" => json!({"volume_id": VOLUME_1}),
        "ATTACH_NETWORK_INTERFACE" | "DETACH_NETWORK_INTERFACE" => json!({"network_id": NETWORK}),
        _ => json!({}),
    };
    b.as_object_mut().unwrap().extend(args.as_object().unwrap().clone());
    b
}

/// Starts `body`'s task on server `id` as the member, waits for it and
/// checks it against its row of [`TABLE`]: 202 with the task, COMPLETED,
/// the server in the row's states, the row's items all COMPLETED.
/// Returns the ended task and the server after it.
fn run(host: &Host, id: &str, body: Value) -> (Value, Value) {
    run_as(host, &member(), id, body)
}

fn run_as(host: &Host, token: &str, id: &str, body: Value) -> (Value, Value) {
    let action = body["action"].as_str().unwrap().to_string();
    let row = table_row(&action);
    let before = server(host, id);
    let from = before["virt_state"].as_str().unwrap().to_string();
    assert!(row.from.contains(&from.as_str()), "test bug: the table does not allow {action} from {from}");

    let r = post_task(host, token, id, &body);
    assert_eq!(r.status, 202, "{action} from {from}: {}", r.body);
    let started = r.json();
    let task_id = started["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), Some(format!("/server_tasks/{task_id}").as_str()), "{action}");
    assert_eq!(started["action"], action.as_str());
    assert_eq!(started["server_id"], id);
    assert_eq!(started["created_by"], token.split(':').next().unwrap());
    assert_eq!(started["state"], if row.items.is_empty() { "COMPLETED" } else { "RUNNING" }, "{action}: {started}");
    assert_eq!(started["_links"]["self"]["href"], format!("/server_tasks/{task_id}"));
    assert_eq!(started["_links"]["rel/server_task_items"]["href"], format!("/server_tasks/{task_id}/items"));
    assert_eq!(started["_links"]["describedby"]["href"], "/schemas/server_task");
    for (k, v) in body.as_object().unwrap() {
        if k == "password" {
            assert!(started.get("password").is_none(), "the password is never shown: {started}");
        } else {
            assert_eq!(&started[k], v, "{action}: argument {k} is echoed: {started}");
        }
    }

    let ended = wait_task(host, &task_id);
    assert_eq!(ended["state"], "COMPLETED", "{action} from {from}: {ended}");
    assert!(ended["error"].is_null(), "{ended}");
    assert!(ended["updated_at"].as_str().unwrap() >= ended["created_at"].as_str().unwrap(), "{ended}");

    let after = server(host, id);
    let virt: &str = match row.virt {
        Some(v) => v,
        None => &from,
    };
    let power = row.power.map(|p| json!(p)).unwrap_or_else(|| before["power_state"].clone());
    assert_eq!(after["virt_state"], virt, "{action} from {from}: {after}");
    assert_eq!(after["power_state"], power, "{action} from {from}: {after}");

    let items = task_items(host, &task_id);
    let actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(actions, row.items, "{action}: items in order");
    for i in &items {
        assert_eq!(i["state"], "COMPLETED", "{action}: {i}");
        assert_eq!(i["task_id"], task_id.as_str());
        let (s, e) = (i["started_at"].as_str(), i["ended_at"].as_str());
        assert!(s.is_some() && e.is_some() && s <= e, "{action}: {i}");
    }
    (ended, after)
}

fn node_of(s: &Value) -> String {
    s["_elevated"]["compute_node_hostname"].as_str().unwrap_or_default().to_string()
}

// ---------------------------------------------- every action, valid states

#[test]
fn power_pause_suspend_rescue_and_image_actions_complete_as_the_table_says() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.power", 512);
    let id = launch_active(&host, &ty, "chain-power");
    let chain = [
        json!({"action": "PAUSE"}),
        json!({"action": "SNAPSHOT", "name": "paused-snap"}),
        json!({"action": "UNPAUSE"}),
        json!({"action": "SUSPEND"}),
        json!({"action": "BACKUP", "name": "suspended-backup"}),
        json!({"action": "RESUME"}),
        json!({"action": "REBOOT"}),
        json!({"action": "HARD_REBOOT"}),
        json!({"action": "UPDATE_PASSWORD", "password": "correct horse"}),
        json!({"action": "SNAPSHOT", "name": "active-snap"}),
        json!({"action": "BACKUP", "name": "active-backup"}),
        json!({"action": "PAUSE"}),
        json!({"action": "HARD_REBOOT"}),
        json!({"action": "SUSPEND"}),
        json!({"action": "HARD_REBOOT"}),
        json!({"action": "POWER_OFF"}),
        json!({"action": "SNAPSHOT", "name": "stopped-snap"}),
        json!({"action": "POWER_ON"}),
        json!({"action": "POWER_OFF"}),
        json!({"action": "HARD_REBOOT"}),
        json!({"action": "RESCUE"}),
        json!({"action": "UNRESCUE"}),
        json!({"action": "POWER_OFF"}),
        json!({"action": "RESCUE", "template_id": OTHER_TEMPLATE}),
        json!({"action": "UNRESCUE"}),
    ];
    for body in chain {
        run(&host, &id, body);
    }
    // Each task is in the history, newest first, after the CREATE.
    let history = server_tasks(&host, &id);
    assert_eq!(history.len(), 26, "{history:?}");
    assert_eq!(history[0]["action"], "UNRESCUE");
    assert_eq!(history[25]["action"], "CREATE");
}

#[test]
fn resize_rebuild_and_move_complete_in_the_state_they_started_from() {
    let host = Host::vnext();
    let small = create_type(&host, "m1.small", 512);
    let medium = create_type(&host, "m1.medium", 1024);
    let id = launch_active(&host, &small, "chain-move");

    run(&host, &id, json!({"action": "RESIZE", "type_id": medium}));
    run(&host, &id, json!({"action": "REBUILD", "template_id": OTHER_TEMPLATE}));

    // MOVE to a placement: a node of it, and the server's placement from
    // then on; without one: any other node of the server's placement.
    let before = server(&host, &id);
    let node = node_of(&before);
    assert!(!node.is_empty() && node != "cn-c1", "launched outside rack-c: {node}");
    // Launched without a placement: it shows the placement of its node.
    assert!(before["placement_id"].is_string() && before["placement_id"] != RACK_C, "{before}");
    let (_, moved) = run(&host, &id, json!({"action": "MOVE", "placement_id": RACK_C, "live": true}));
    assert_eq!(node_of(&moved), "cn-c1", "rack-c's only enabled node");
    assert_eq!(moved["placement_id"], RACK_C, "a completed MOVE to a placement makes it the server's: {moved}");
    // No other node in rack-c: 409, nothing started; nor without a
    // placement_id, since rack-c is now the server's placement.
    assert_refused(&post_task(&host, &member(), &id, &json!({"action": "MOVE", "placement_id": RACK_C})), 409, None);
    assert_refused(&post_task(&host, &member(), &id, &json!({"action": "MOVE"})), 409, None);
    // Out to the whole region; then without one: any other node of it.
    let (_, moved) = run(&host, &id, json!({"action": "MOVE", "placement_id": REGION}));
    assert_ne!(node_of(&moved), "cn-c1", "MOVE changes the compute node");
    assert_eq!(moved["placement_id"], REGION, "{moved}");
    let before = node_of(&moved);
    let (_, moved) = run(&host, &id, json!({"action": "MOVE"}));
    assert_ne!(node_of(&moved), before, "MOVE changes the compute node");
    assert_eq!(moved["placement_id"], REGION, "a MOVE without one keeps the placement: {moved}");

    // From PAUSED (live) and STOPPED: the state is kept.
    run(&host, &id, json!({"action": "PAUSE"}));
    let before = node_of(&server(&host, &id));
    let (_, moved) = run(&host, &id, json!({"action": "MOVE", "live": true}));
    assert_ne!(node_of(&moved), before);
    run(&host, &id, json!({"action": "UNPAUSE"}));
    run(&host, &id, json!({"action": "POWER_OFF"}));
    // (RESIZE from STOPPED: see resize_of_a_stopped_server_leaves_it_powered_off.)
    run(&host, &id, json!({"action": "MOVE", "live": false}));
    run(&host, &id, json!({"action": "REBUILD", "template_id": TEMPLATE}));
}

#[test]
fn a_live_move_nowhere_to_go_live_is_refused_before_a_task_exists() {
    let host = Host::vnext();
    let small = create_type(&host, "m1.small", 512);
    // cn-e1, edge's only node, is alone in its live-migration group.
    let body = json!({"defaults": {"type_id": small, "template_id": TEMPLATE, "placement_id": EDGE}, "servers": [{"hostname": "edge-1"}]});
    let r = send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&body));
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()[0]["id"].as_str().unwrap().to_string();
    wait_virt(&host, &id, "ACTIVE");
    assert_eq!(node_of(&server(&host, &id)), "cn-e1");

    let live = json!({"action": "MOVE", "placement_id": REGION, "live": true});
    let r = post_task(&host, &member(), &id, &live);
    assert_refused(&r, 409, None);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("\"live\": false"), "names the cold MOVE: {}", r.body);
    assert_eq!(server_tasks(&host, &id).len(), 1, "no task was written, only the CREATE");
    assert_eq!(server(&host, &id)["virt_state"], "ACTIVE");

    // Cold, it goes; from a node of the default group it then moves live.
    let (_, moved) = run(&host, &id, json!({"action": "MOVE", "placement_id": REGION}));
    assert_ne!(node_of(&moved), "cn-e1");
    let (_, moved) = run(&host, &id, json!({"action": "MOVE", "placement_id": RACK_C, "live": true}));
    assert_eq!(node_of(&moved), "cn-c1");

    // A stopped guest has nothing to migrate live.
    run(&host, &id, json!({"action": "POWER_OFF"}));
    let r = post_task(&host, &member(), &id, &json!({"action": "MOVE", "placement_id": REGION, "live": true}));
    assert_refused(&r, 409, None);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("STOPPED"), "{}", r.body);
    assert_eq!(server_tasks(&host, &id).len(), 4, "CREATE, two MOVEs and POWER_OFF only");
}

#[test]
fn shelve_offload_unshelve_and_terminate_restore_complete_as_the_table_says() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.shelve", 512);
    let id = launch_active(&host, &ty, "chain-shelve");
    let chain = [
        json!({"action": "SHELVE"}),
        json!({"action": "UNSHELVE"}),
        json!({"action": "POWER_OFF"}),
        json!({"action": "SHELVE"}),
        json!({"action": "ATTACH_BLOCK_DEVICE", "volume_id": VOLUME_1}),
        json!({"action": "SHELVE_OFFLOAD"}),
        json!({"action": "DETACH_BLOCK_DEVICE", "volume_id": VOLUME_1}),
        json!({"action": "UNSHELVE"}),
        json!({"action": "PAUSE"}),
        json!({"action": "SHELVE"}),
        json!({"action": "TERMINATE"}),
        json!({"action": "RESTORE"}),
        json!({"action": "SUSPEND"}),
        json!({"action": "SHELVE"}),
        json!({"action": "SHELVE_OFFLOAD"}),
        json!({"action": "UNSHELVE"}),
        json!({"action": "TERMINATE"}),
        json!({"action": "LOCK"}),
        json!({"action": "UNLOCK"}),
        json!({"action": "RESTORE"}),
    ];
    for body in chain {
        run(&host, &id, body);
    }
    // A terminated server stays readable; a restored one is fully usable.
    run(&host, &id, json!({"action": "REBOOT"}));
}

#[test]
fn block_devices_and_network_interfaces_attach_and_detach() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.attach", 512);
    let id = launch_active(&host, &ty, "chain-attach");
    let devices = |s: &Value| -> Vec<(String, String)> {
        s["block_devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["device"].as_str().unwrap().to_string(), d["type"].as_str().unwrap().to_string()))
            .collect()
    };
    let macs = |s: &Value| -> Vec<String> {
        s["networking"]["interfaces"].as_array().unwrap().iter().map(|i| i["mac"].as_str().unwrap().to_string()).collect()
    };
    let base = server(&host, &id);
    let (base_devices, base_macs) = (devices(&base), macs(&base));
    assert!(!base_devices.is_empty() && !base_macs.is_empty(), "{base}");
    let persistent = (String::from("/dev/vdc"), String::from("PERSISTENT"));

    let (_, s) = run(&host, &id, json!({"action": "ATTACH_BLOCK_DEVICE", "volume_id": VOLUME_1, "device": "/dev/vdc"}));
    assert!(devices(&s).contains(&persistent), "{s}");
    let (_, s) = run(&host, &id, json!({"action": "ATTACH_BLOCK_DEVICE", "volume_id": VOLUME_2}));
    assert_eq!(devices(&s).len(), base_devices.len() + 2, "{s}");
    let (_, s) = run(&host, &id, json!({"action": "DETACH_BLOCK_DEVICE", "volume_id": VOLUME_1}));
    assert!(!devices(&s).contains(&persistent), "{s}");
    run(&host, &id, json!({"action": "PAUSE"}));
    let (_, s) = run(&host, &id, json!({"action": "DETACH_BLOCK_DEVICE", "volume_id": VOLUME_2}));
    assert_eq!(devices(&s), base_devices, "{s}");

    let (_, s) = run(&host, &id, json!({"action": "ATTACH_NETWORK_INTERFACE", "network_id": NETWORK}));
    assert_eq!(macs(&s).len(), base_macs.len() + 1, "{s}");
    run(&host, &id, json!({"action": "UNPAUSE"}));
    run(&host, &id, json!({"action": "POWER_OFF"}));
    let mac = "52:54:00:12:34:56";
    let (_, s) = run(&host, &id, json!({"action": "ATTACH_NETWORK_INTERFACE", "mac": mac}));
    assert!(macs(&s).iter().any(|m| m == mac), "{s}");
    let (_, s) = run(&host, &id, json!({"action": "DETACH_NETWORK_INTERFACE", "mac": mac}));
    assert!(!macs(&s).iter().any(|m| m == mac), "{s}");
    let (_, s) = run(&host, &id, json!({"action": "DETACH_NETWORK_INTERFACE", "network_id": NETWORK}));
    assert_eq!(macs(&s), base_macs, "{s}");
    run(&host, &id, json!({"action": "POWER_ON"}));
    let (_, s) = run(&host, &id, json!({"action": "ATTACH_NETWORK_INTERFACE", "network_id": NETWORK}));
    assert_eq!(macs(&s).len(), base_macs.len() + 1, "from ACTIVE too: {s}");
}

/// Launches a server whose spawn fails (`fail-` hostnames, see
/// tests/fixtures/inventory.toml) and waits until it is in ERROR.
fn launch_error(host: &Host, type_id: &str, hostname: &str) -> String {
    assert!(hostname.starts_with("fail-"));
    let id = launch(host, type_id, &[hostname]).remove(0);
    wait_virt(host, &id, "ERROR");
    id
}

#[test]
fn servers_in_error_accept_only_the_actions_the_table_allows_from_error() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.error", 512);
    let id = launch_error(&host, &ty, "fail-sweep");
    assert_only_table_actions_start(&host, &id, &ty);
    // The failed spawn was rolled back: the server is on no compute node.
    let s = server(&host, &id);
    assert_eq!(s["_elevated"].get("compute_node_hostname"), Some(&Value::Null), "{s}");
    // Never reported by a hypervisor: its power state shows as SHUTDOWN.
    assert_eq!(s["power_state"], "SHUTDOWN", "{s}");

    // The recovery actions the table allows from ERROR need a server some
    // hypervisor holds; this one never spawned, so they are refused with
    // 409 at once (rather than accepted and then aborted), leave no task,
    // and say that TERMINATE is the way out.
    let tasks_before = ids(&server_tasks(&host, &id));
    for action in ["HARD_REBOOT", "POWER_OFF", "RESCUE", "REBUILD"] {
        assert!(table_row(action).from.contains(&"ERROR"));
        let r = post_task(&host, &member(), &id, &sample_body(action, &ty));
        assert_refused(&r, 409, None);
        assert!(r.body.contains("TERMINATE") && r.body.contains(action), "{action}: {}", r.body);
    }
    assert_eq!(ids(&server_tasks(&host, &id)), tasks_before, "refused tasks leave no trace");
    assert_eq!(server(&host, &id)["virt_state"], "ERROR");

    // LOCK and UNLOCK stay possible; TERMINATE of a server that never spawned completes.
    run(&host, &id, json!({"action": "LOCK"}));
    run(&host, &id, json!({"action": "UNLOCK"}));
    run(&host, &id, json!({"action": "TERMINATE"}));
    assert_eq!(server(&host, &id)["virt_state"], "TERMINATED");
}

// ------------------------------------------------- invalid transitions: 409

/// Every action the table does not allow from the server's current state is
/// 409 in the error shape, and creates no task nor changes the server.
fn assert_only_table_actions_start(host: &Host, id: &str, type_id: &str) {
    let before = server(host, id);
    let state = before["virt_state"].as_str().unwrap().to_string();
    let tasks_before = ids(&server_tasks(host, id));
    let refused: Vec<&Row> = TABLE.iter().filter(|r| !r.from.contains(&state.as_str())).collect();
    assert!(!refused.is_empty());
    for r in refused {
        let resp = post_task(host, &member(), id, &sample_body(r.action, type_id));
        assert_eq!(resp.status, 409, "{} from {state}: {}", r.action, resp.body);
        assert_refused(&resp, 409, None);
        assert_eq!(resp.json()["error"]["title"], "Conflict");
    }
    let after = server(host, id);
    assert_eq!((&after["virt_state"], &after["power_state"]), (&before["virt_state"], &before["power_state"]));
    assert_eq!(ids(&server_tasks(host, id)), tasks_before, "refused tasks leave no trace");
}

#[test]
fn actions_invalid_in_the_current_state_get_409() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.invalid", 512);
    let other = create_type(&host, "m1.invalid2", 1024);
    let id = launch_active(&host, &ty, "invalid-1");
    // From ACTIVE: UNPAUSE, RESUME, POWER_ON, RESTORE, UNSHELVE, UNRESCUE, SHELVE_OFFLOAD...
    assert_only_table_actions_start(&host, &id, &other);
    for body in [
        json!({"action": "PAUSE"}),
        json!({"action": "UNPAUSE"}),
        json!({"action": "SUSPEND"}),
        json!({"action": "RESUME"}),
        json!({"action": "POWER_OFF"}),
        json!({"action": "RESCUE"}),
        json!({"action": "UNRESCUE"}),
        json!({"action": "SHELVE"}),
        json!({"action": "SHELVE_OFFLOAD"}),
        json!({"action": "UNSHELVE"}),
        json!({"action": "TERMINATE"}),
    ] {
        let action = body["action"].as_str().unwrap().to_string();
        run(&host, &id, body);
        assert_only_table_actions_start(&host, &id, &other);
        if action == "TERMINATE" {
            // On TERMINATED only RESTORE (and LOCK/UNLOCK) may start.
            let r = post_task(&host, &member(), &id, &json!({"action": "REBOOT"}));
            assert!(r.json()["error"]["message"].as_str().unwrap().contains("TERMINATED"), "{}", r.body);
        }
    }
}

#[test]
fn a_second_task_while_one_is_running_gets_409() {
    // The slow inventory: steps take 0.3 s, a reboot 1.5 s.
    let state = tempfile::tempdir().unwrap();
    let host = HostBuilder::new(repo_root().join("spin.toml"))
        .arg("--inventory")
        .arg(repo_root().join("tests/fixtures/inventory-slow.toml").to_str().unwrap())
        .state_dir(state.path())
        .start();
    let ty = create_type(&host, "m1.busy", 512);
    let id = launch(&host, &ty, &["busy"]).remove(0);

    // While CREATE runs the server is BUILDING: only TERMINATE and LOCK/UNLOCK
    // are in the table, and TERMINATE still waits for the running task.
    let building = server(&host, &id);
    assert_eq!(building["virt_state"], "BUILDING", "{building}");
    assert_eq!(building["power_state"], "SHUTDOWN", "not running yet: {building}");
    // `since` asks when an item started: items still WAITING never match.
    let create = server_tasks(&host, &id)[0]["id"].as_str().unwrap().to_string();
    let started = get_json(&host, &format!("/server_tasks/{create}/items?since=2000-01-01T00:00:00Z"), &member());
    for i in started["items"].as_array().unwrap() {
        assert!(i["started_at"].is_string() && i["state"] != "WAITING", "{started}");
    }
    assert_refused(&post_task(&host, &member(), &id, &json!({"action": "TERMINATE"})), 409, None);
    wait_virt(&host, &id, "ACTIVE");

    let r = post_task(&host, &member(), &id, &json!({"action": "REBOOT"}));
    assert_eq!(r.status, 202, "{}", r.body);
    let reboot = r.json()["id"].as_str().unwrap().to_string();
    for body in [json!({"action": "REBOOT"}), json!({"action": "PAUSE"}), json!({"action": "SNAPSHOT", "name": "x"})] {
        let r = post_task(&host, &member(), &id, &body);
        assert_refused(&r, 409, None);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(&reboot), "names the running task: {}", r.body);
    }
    // The admin is refused too: it is the server's state, not a permission.
    assert_refused(&post_task(&host, &admin(), &id, &json!({"action": "PAUSE"})), 409, None);
    // Still running, and listed as such.
    let running = get_task(&host, &reboot);
    assert_eq!(running["state"], "RUNNING", "the window closed too early: {running}");
    let listed = get_json(&host, &format!("/servers/{id}/tasks?state=RUNNING"), &member());
    assert_eq!(ids(listed["tasks"].as_array().unwrap()), [reboot.clone()]);
    let items = task_items(&host, &reboot);
    assert_eq!(items.len(), 1);
    assert!(items[0]["ended_at"].is_null(), "{:?}", items);
    // LOCK and UNLOCK never reach the hypervisor: a running task does not block them.
    for action in ["LOCK", "UNLOCK"] {
        let r = post_task(&host, &member(), &id, &json!({"action": action}));
        assert_eq!(r.status, 202, "{action} while a task runs: {}", r.body);
        assert_eq!(r.json()["state"], "COMPLETED");
    }

    assert_eq!(wait_task(&host, &reboot)["state"], "COMPLETED");
    let r = post_task(&host, &member(), &id, &json!({"action": "PAUSE"}));
    assert_eq!(r.status, 202, "accepted once the reboot ended: {}", r.body);
}

#[test]
fn a_timed_out_task_reports_why_and_leaves_the_server_as_it_was() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.stuck", 512);
    // `stuck-` hostnames time out on reboot (tests/fixtures/inventory.toml).
    let id = launch_active(&host, &ty, "stuck-1");
    let before = server(&host, &id);
    let r = post_task(&host, &member(), &id, &json!({"action": "REBOOT"}));
    assert_eq!(r.status, 202, "{}", r.body);
    let task = wait_task(&host, r.json()["id"].as_str().unwrap());
    assert_eq!(task["state"], "TIMED_OUT", "{task}");
    assert!(task["error"].as_str().is_some_and(|e| !e.is_empty()), "{task}");
    let items = task_items(&host, task["id"].as_str().unwrap());
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["state"], "TIMED_OUT", "{items:?}");
    assert!(items[0]["ended_at"].is_string());
    // REBOOT's aborted state is the one it started from, and the server is free.
    let after = server(&host, &id);
    assert_eq!(after["virt_state"], before["virt_state"]);
    run(&host, &id, json!({"action": "PAUSE"}));
}

// ------------------------------------------------------------ arguments: 400

#[test]
fn task_arguments_are_checked_and_refusals_name_the_field() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.args", 512);
    let private = {
        let body = json!({"name": "m1.private", "spec": {"memory_mb": 512, "cpu_units": 1}});
        let r = send("POST", &host.url("/server_types"), Some(&outsider()), Some(&body));
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_string()
    };
    let id = launch_active(&host, &ty, "args-1");
    let missing_id = "5a5c7a10-9999-4000-8000-000000000009";
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "action"),
        (json!({"action": "FLY"}), "action"),
        (json!({"action": "CREATE"}), "action"),
        (json!({"action": 7}), "action"),
        (json!({"action": "RESIZE"}), "type_id"),
        (json!({"action": "RESIZE", "type_id": "not-a-uuid"}), "type_id"),
        (json!({"action": "RESIZE", "type_id": ty}), "type_id"),
        (json!({"action": "RESIZE", "type_id": missing_id}), "type_id"),
        (json!({"action": "RESIZE", "type_id": private}), "type_id"),
        (json!({"action": "REBUILD"}), "template_id"),
        (json!({"action": "SNAPSHOT"}), "name"),
        (json!({"action": "SNAPSHOT", "name": ""}), "name"),
        (json!({"action": "BACKUP", "name": "x".repeat(256)}), "name"),
        (json!({"action": "UPDATE_PASSWORD"}), "password"),
        (json!({"action": "UPDATE_PASSWORD", "password": ""}), "password"),
        (json!({"action": "ATTACH_BLOCK_DEVICE"}), "volume_id"),
        (json!({"action": "ATTACH_BLOCK_DEVICE", "volume_id": VOLUME_1, "device": "vdb"}), "device"),
        (json!({"action": "ATTACH_NETWORK_INTERFACE", "mac": "not-a-mac"}), "mac"),
        (json!({"action": "MOVE", "placement_id": missing_id}), "placement_id"),
        (json!({"action": "MOVE", "live": "yes"}), "live"),
        // Arguments the action does not take.
        (json!({"action": "REBOOT", "name": "x"}), "name"),
        (json!({"action": "PAUSE", "type_id": ty}), "type_id"),
        (json!({"action": "RESIZE", "type_id": ty, "live": true}), "live"),
        (json!({"action": "SNAPSHOT", "name": "x", "password": "p"}), "password"),
        (json!({"action": "LOCK", "volume_id": VOLUME_1}), "volume_id"),
        (json!({"action": "REBOOT", "force": true}), "force"),
    ];
    for (body, field) in &cases {
        let r = post_task(&host, &member(), &id, body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_refused(&r, 400, Some(field));
    }
    // Neither network_id nor mac: 400 naming one of them.
    let r = post_task(&host, &member(), &id, &json!({"action": "DETACH_NETWORK_INTERFACE"}));
    assert_refused(&r, 400, None);
    let field = r.json()["error"]["field"].as_str().unwrap_or_default().to_string();
    assert!(field == "network_id" || field == "mac", "{}", r.body);
    // Not JSON.
    let url = host.url(&format!("/servers/{id}/tasks"));
    let token = member();
    for raw in ["", "{", "[1]"] {
        let r = crate::harness::request("POST", &url, &[("X-Auth-Token", &token), ("Content-Type", "application/json")], Some(raw));
        assert_refused(&r, 400, None);
    }
    // Nothing was started, the server is untouched.
    assert_eq!(server_tasks(&host, &id).len(), 1, "only the CREATE task");
    assert_eq!(server(&host, &id)["virt_state"], "ACTIVE");
    // The same server still takes a well-formed task.
    run(&host, &id, json!({"action": "RESIZE", "type_id": create_type(&host, "m1.args2", 1024)}));
}

// ------------------------------------------------------------------- LOCK

#[test]
fn a_locked_server_refuses_non_admin_tasks_until_the_locker_or_an_admin_unlocks() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.lock", 512);
    let id = launch_active(&host, &ty, "locked-1");

    let (lock, s) = run(&host, &id, json!({"action": "LOCK"}));
    assert!(task_items(&host, lock["id"].as_str().unwrap()).is_empty(), "LOCK has no items");
    assert_eq!(s["locked"], true, "{s}");

    // Members (the locker too) are refused tasks with 409; LOCK again too.
    for token in [member(), other_member()] {
        for body in [json!({"action": "REBOOT"}), json!({"action": "PAUSE"}), json!({"action": "LOCK"})] {
            assert_refused(&post_task(&host, &token, &id, &body), 409, None);
        }
    }
    // Another member may not UNLOCK the locker's lock.
    assert_refused(&post_task(&host, &other_member(), &id, &json!({"action": "UNLOCK"})), 409, None);
    assert_eq!(server(&host, &id)["locked"], true);
    assert_eq!(server_tasks(&host, &id).len(), 2, "CREATE and LOCK only");

    // An admin still acts on it.
    let (_, s) = run_as(&host, &admin(), &id, json!({"action": "REBOOT"}));
    assert_eq!(s["locked"], true, "a task does not unlock");

    // The locker unlocks; then members act again; UNLOCK of an unlocked server is 409.
    let (_, s) = run(&host, &id, json!({"action": "UNLOCK"}));
    assert_eq!(s["locked"], false, "{s}");
    assert_refused(&post_task(&host, &member(), &id, &json!({"action": "UNLOCK"})), 409, None);
    run_as(&host, &other_member(), &id, json!({"action": "PAUSE"}));

    // Locked by one member, unlocked by an admin.
    let (_, s) = run_as(&host, &other_member(), &id, json!({"action": "LOCK"}));
    assert_eq!(s["locked"], true);
    assert_refused(&post_task(&host, &member(), &id, &json!({"action": "UNPAUSE"})), 409, None);
    let (_, s) = run_as(&host, &admin(), &id, json!({"action": "UNLOCK"}));
    assert_eq!(s["locked"], false);
    run(&host, &id, json!({"action": "UNPAUSE"}));
}

// ------------------------------------------------------------- the lists

/// Follows `next` links from `path`, returning every page's entries of `key`.
fn all_pages(host: &Host, path: &str, key: &str) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut pages = 0;
    let mut next = Some(path.to_string());
    while let Some(p) = next {
        let page = get_json(host, &p, &member());
        pages += 1;
        assert!(pages < 100, "paging does not end");
        out.extend(page[key].as_array().unwrap().iter().cloned());
        next = page["_links"].get("next").map(|n| n["href"].as_str().unwrap().to_string());
    }
    (out, pages)
}

#[test]
fn a_servers_tasks_list_newest_first_with_paging_and_filters() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.lists", 512);
    // A `stuck-` server: its REBOOTs time out, so the history has two states.
    let id = launch_active(&host, &ty, "stuck-history");
    let create = server_tasks(&host, &id)[0]["id"].as_str().unwrap().to_string();
    let mut created = vec![create];
    for body in [json!({"action": "PAUSE"}), json!({"action": "UNPAUSE"}), json!({"action": "REBOOT"}), json!({"action": "LOCK"}), json!({"action": "UNLOCK"})] {
        let r = post_task(&host, &member(), &id, &body);
        assert_eq!(r.status, 202, "{}", r.body);
        let tid = r.json()["id"].as_str().unwrap().to_string();
        wait_task(&host, &tid);
        created.push(tid);
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let full = server_tasks(&host, &id);
    assert_eq!(ids(&full), newest_first, "the whole history, newest first");
    let all = get_json(&host, &format!("/servers/{id}/tasks"), &member());
    assert!(all["_links"].get("next").is_none(), "one page by default: {all}");
    assert_eq!(all["_links"]["self"]["href"], format!("/servers/{id}/tasks"));

    // Paging: limit=2 gives 3 pages, together the full list.
    let (paged, pages) = all_pages(&host, &format!("/servers/{id}/tasks?limit=2"), "tasks");
    assert_eq!((ids(&paged), pages), (newest_first.clone(), 3));
    let page = get_json(&host, &format!("/servers/{id}/tasks?limit=2&marker={}", newest_first[1]), &member());
    assert_eq!(ids(page["tasks"].as_array().unwrap()), newest_first[2..4]);
    let last = get_json(&host, &format!("/servers/{id}/tasks?limit=2&marker={}", newest_first[3]), &member());
    assert_eq!(ids(last["tasks"].as_array().unwrap()), newest_first[4..]);
    assert!(last["_links"].get("next").is_none(), "{last}");

    // state: one or several (OR).
    let by_state = |q: &str| ids(get_json(&host, &format!("/servers/{id}/tasks?{q}"), &member())["tasks"].as_array().unwrap());
    let timed_out: Vec<String> = vec![created[3].clone()];
    assert_eq!(by_state("state=TIMED_OUT"), timed_out);
    let completed: Vec<String> = newest_first.iter().filter(|t| **t != created[3]).cloned().collect();
    assert_eq!(by_state("state=COMPLETED"), completed);
    assert_eq!(by_state("state=COMPLETED&state=TIMED_OUT"), newest_first);
    assert!(by_state("state=RUNNING").is_empty());
    assert!(by_state("state=ABORTED").is_empty());
    assert_eq!(by_state("state=COMPLETED&limit=1"), completed[..1]);

    // changes_since: tasks updated at or after the time.
    let updated: Vec<(String, String)> =
        full.iter().map(|t| (t["id"].as_str().unwrap().to_string(), t["updated_at"].as_str().unwrap().to_string())).collect();
    let pivot = updated[2].1.clone();
    let expected: Vec<String> = updated.iter().filter(|(_, u)| *u >= pivot).map(|(i, _)| i.clone()).collect();
    assert!(expected.len() >= 3 && expected.len() < updated.len(), "{updated:?}");
    assert_eq!(by_state(&format!("changes_since={pivot}")), expected);
    assert!(by_state("changes_since=2999-01-01T00:00:00Z").is_empty());
    assert_eq!(by_state("changes_since=2000-01-01T00:00:00Z"), newest_first);

    // since: tasks created (started) at or after the time.
    let created_at: Vec<(String, String)> =
        full.iter().map(|t| (t["id"].as_str().unwrap().to_string(), t["created_at"].as_str().unwrap().to_string())).collect();
    let pivot = created_at[2].1.clone();
    let expected: Vec<String> = created_at.iter().filter(|(_, c)| *c >= pivot).map(|(i, _)| i.clone()).collect();
    assert!(expected.len() >= 3 && expected.len() < created_at.len(), "{created_at:?}");
    assert_eq!(by_state(&format!("since={pivot}")), expected);
    assert!(by_state("since=2999-01-01T00:00:00Z").is_empty());
    assert_eq!(by_state("since=2000-01-01T00:00:00Z"), newest_first);

    // Refusals: 400 naming the parameter.
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("marker=5a5c7a10-9999-4000-8000-000000000009", "marker"),
        ("state=DONE", "state"),
        ("since=yesterday", "since"),
        ("changes_since=yesterday", "changes_since"),
    ] {
        let r = send("GET", &host.url(&format!("/servers/{id}/tasks?{q}")), Some(&member()), None);
        assert_refused(&r, 400, Some(field));
    }
    let r = send("GET", &host.url(&format!("/servers/{id}/tasks?colour=red")), Some(&member()), None);
    assert_refused(&r, 400, None);
}

#[test]
fn a_tasks_items_list_in_step_order_with_paging_and_filters() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.items", 512);
    let id = launch_active(&host, &ty, "items-1");
    let create = server_tasks(&host, &id)[0].clone();
    assert_eq!(create["action"], "CREATE");
    let create_id = create["id"].as_str().unwrap();
    let expected = ["SCHEDULING", "BLOCK_DEVICE_MAPPING", "NETWORKING", "SPAWNING"];
    let url = |q: &str| format!("/server_tasks/{create_id}/items{q}");
    let actions = |items: &[Value]| items.iter().map(|i| i["action"].as_str().unwrap().to_string()).collect::<Vec<_>>();

    let all = get_json(&host, &url(""), &member());
    let items = all["items"].as_array().unwrap().clone();
    assert_eq!(actions(&items), expected);
    assert!(all["_links"].get("next").is_none());
    for i in &items {
        assert_eq!(i["state"], "COMPLETED", "{i}");
        assert_eq!(i["task_id"], create_id);
        assert_eq!(i["_links"]["describedby"]["href"], "/schemas/server_task_item");
        assert_eq!(i["_links"]["rel/server_task"]["href"], format!("/server_tasks/{create_id}"));
        // Each item is a resource of its own.
        let item_path = format!("/server_tasks/{create_id}/items/{}", i["id"].as_str().unwrap());
        assert_eq!(i["_links"]["self"]["href"], item_path.as_str(), "{i}");
        assert_eq!(&get_json(&host, &item_path, &member()), i);
    }
    // The task links to its items.
    assert_eq!(get_task(&host, create_id)["_links"]["rel/server_task_items"]["href"], url(""));

    let (paged, pages) = all_pages(&host, &url("?limit=1"), "items");
    assert_eq!((ids(&paged), pages), (ids(&items), 4));
    let page = get_json(&host, &url(&format!("?limit=2&marker={}", items[0]["id"].as_str().unwrap())), &member());
    assert_eq!(ids(page["items"].as_array().unwrap()), ids(&items[1..3]));
    assert!(page["_links"].get("next").is_some(), "{page}");

    let filtered = |q: &str| ids(get_json(&host, &url(q), &member())["items"].as_array().unwrap());
    assert_eq!(filtered("?state=COMPLETED"), ids(&items));
    assert!(filtered("?state=WAITING&state=RUNNING").is_empty());
    // changes_since: the item's latest timestamp counts.
    assert!(filtered("?changes_since=2999-01-01T00:00:00Z").is_empty());
    assert_eq!(filtered("?changes_since=2000-01-01T00:00:00Z"), ids(&items));
    let last_end = items[3]["ended_at"].as_str().unwrap();
    assert!(filtered(&format!("?changes_since={last_end}")).contains(&items[3]["id"].as_str().unwrap().to_string()));
    // since: items started at or after the time.
    assert!(filtered("?since=2999-01-01T00:00:00Z").is_empty());
    assert_eq!(filtered("?since=2000-01-01T00:00:00Z"), ids(&items));
    let last_start = items[3]["started_at"].as_str().unwrap();
    let started_since: Vec<String> =
        items.iter().filter(|i| i["started_at"].as_str().unwrap() >= last_start).map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert!(started_since.contains(&items[3]["id"].as_str().unwrap().to_string()));
    assert_eq!(filtered(&format!("?since={last_start}")), started_since);

    for (q, field) in [
        ("?limit=0", "limit"),
        ("?state=DONE", "state"),
        ("?marker=5a5c7a10-9999-4000-8000-000000000009", "marker"),
        ("?since=x", "since"),
        ("?changes_since=x", "changes_since"),
    ] {
        assert_refused(&send("GET", &host.url(&url(q)), Some(&member()), None), 400, Some(field));
    }
}

// -------------------------------------------------------------- visibility

#[test]
fn another_projects_member_gets_404_for_the_servers_tasks() {
    let host = Host::vnext();
    let ty = create_type(&host, "m1.visible", 512);
    let id = launch_active(&host, &ty, "private-1");
    let task = server_tasks(&host, &id)[0]["id"].as_str().unwrap().to_string();
    let item = task_items(&host, &task)[0]["id"].as_str().unwrap().to_string();

    let paths = [
        format!("/servers/{id}/tasks"),
        format!("/server_tasks/{task}"),
        format!("/server_tasks/{task}/items"),
        format!("/server_tasks/{task}/items/{item}"),
    ];
    for p in &paths {
        assert_refused(&send("GET", &host.url(p), Some(&outsider()), None), 404, None);
        assert_eq!(send("GET", &host.url(p), Some(&admin()), None).status, 200, "admins see every project: {p}");
        assert_eq!(send("GET", &host.url(p), Some(&other_member()), None).status, 200, "any member of the project: {p}");
        assert_refused(&send("GET", &host.url(p), None, None), 401, None);
    }
    assert_refused(&post_task(&host, &outsider(), &id, &json!({"action": "REBOOT"})), 404, None);
    assert_refused(&post_task(&host, &outsider(), &id, &json!({"action": "FLY"})), 404, None);
    assert_eq!(server_tasks(&host, &id).len(), 1, "the outsider started nothing");

    // Unknown or malformed ids are 404 too; the 32-hex spelling is the same task.
    let unknown = "5a5c7a10-9999-4000-8000-000000000009";
    for p in [
        format!("/server_tasks/{unknown}"),
        format!("/server_tasks/{unknown}/items"),
        "/server_tasks/not-a-uuid".into(),
        format!("/servers/{unknown}/tasks"),
        format!("/server_tasks/{task}/items/{unknown}"),
        format!("/server_tasks/{unknown}/items/{item}"),
    ] {
        assert_refused(&send("GET", &host.url(&p), Some(&member()), None), 404, None);
    }
    let compact = task.replace('-', "");
    assert_eq!(get_json(&host, &format!("/server_tasks/{compact}"), &member())["id"], task.as_str());
}

// -------------------------------------------------------------------- bugs

#[test]
fn resize_gives_the_server_the_new_type_and_its_spec() {
    let host = Host::vnext();
    let small = create_type(&host, "m1.rs-small", 512);
    let big = create_type(&host, "m1.rs-big", 2048);
    let id = launch_active(&host, &small, "resized-1");
    let (_, after) = run(&host, &id, json!({"action": "RESIZE", "type_id": big}));
    let big_spec = get_json(&host, &format!("/server_types/{big}"), &member())["spec"].clone();
    assert_eq!(after["type_id"], big.as_str(), "{after}");
    assert_eq!(after["spec"]["memory_mb"], big_spec["memory_mb"], "{after}");
    // And back: the original type is now a different one.
    run(&host, &id, json!({"action": "RESIZE", "type_id": small}));
}


#[test]
fn resize_of_a_stopped_server_leaves_it_powered_off() {
    let host = Host::vnext();
    let small = create_type(&host, "m1.st-small", 512);
    let big = create_type(&host, "m1.st-big", 2048);
    let id = launch_active(&host, &small, "stopped-resize");
    run(&host, &id, json!({"action": "POWER_OFF"}));
    // The table: STOPPED stays STOPPED, power as before (SHUTDOWN).
    run(&host, &id, json!({"action": "RESIZE", "type_id": big}));
}
