//! Launching at scale and under stress, through HTTP on the real host with
//! the fake driver: one request of fifty servers from a hostname pattern,
//! twenty requests racing for one hostname, a host killed (and one stopped)
//! while tasks run and restarted on the same state, and affinity placing
//! servers on the expected compute nodes.

use crate::harness::{Host, HostBuilder, Resp, repo_root, send, wait_for};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const USER: &str = "9a7c5e10-1111-4000-8000-000000000001";
const PROJECT: &str = "9a7c5e10-2222-4000-8000-000000000002";
const OTHER_USER: &str = "9a7c5e10-5555-4000-8000-000000000005";
const OTHER_PROJECT: &str = "9a7c5e10-6666-4000-8000-000000000006";
const ADMIN: &str = "9a7c5e10-3333-4000-8000-000000000003";
const TEMPLATE: &str = "9a7c5e10-4444-4000-8000-000000000004";
/// Placement `az-2` of tests/fixtures/inventory.toml (cn-c1 and edge's cn-e1).
const AZ2: &str = "7d3b3a10-0000-4000-8000-000000000003";
/// Placement `edge` of tests/fixtures/inventory.toml (node cn-e1 only).
const EDGE: &str = "7d3b3a10-0000-4000-8000-000000000007";

/// Long enough for many servers on two shared cores, short enough to fail.
const SETTLE: Duration = Duration::from_secs(120);

fn member() -> String {
    format!("{USER}:{PROJECT}")
}

fn admin() -> String {
    format!("{ADMIN}:{PROJECT}:admin")
}

fn create_type(host: &Host, name: &str) -> String {
    let body = json!({"name": name, "visibility": "PUBLIC", "spec": {"memory_mb": 512, "cpu_units": 1}});
    let r = send("POST", &host.url("/server_types"), Some(&admin()), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

fn launch_body(host: &Host, token: &str, project: &str, body: &Value) -> Resp {
    send("POST", &host.url(&format!("/projects/{project}/servers")), Some(token), Some(body))
}

/// Launches one server named `hostname`, with extra fields for its entry.
fn launch_one(host: &Host, type_id: &str, hostname: &str, extra: Value) -> String {
    let mut entry = json!({"hostname": hostname});
    entry.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let body = json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": [entry]});
    let r = launch_body(host, &member(), PROJECT, &body);
    assert_eq!(r.status, 202, "{}", r.body);
    r.json()[0]["id"].as_str().unwrap().to_string()
}

fn get(host: &Host, path: &str, token: &str) -> Value {
    let r = send("GET", &host.url(path), Some(token), None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

fn server_tasks(host: &Host, id: &str) -> Vec<Value> {
    get(host, &format!("/servers/{id}/tasks?limit=100"), &member())["tasks"].as_array().unwrap().clone()
}

/// Waits until every task of every server in `ids` has ended; returns them.
fn settled_tasks(host: &Host, ids: &[String]) -> BTreeMap<String, Vec<Value>> {
    wait_for("every task to end", SETTLE, || {
        let all: BTreeMap<String, Vec<Value>> = ids.iter().map(|id| (id.clone(), server_tasks(host, id))).collect();
        let running = all.values().flatten().any(|t| t["state"] == "RUNNING");
        if running {
            std::thread::sleep(Duration::from_millis(200));
        }
        (!running).then_some(all)
    })
}

/// Waits until the server is ACTIVE and returns its admin view.
fn active(host: &Host, id: &str) -> Value {
    wait_for("server ACTIVE", SETTLE, || {
        let s = get(host, &format!("/servers/{id}"), &admin());
        assert_ne!(s["virt_state"], "ERROR", "{s}");
        (s["virt_state"] == "ACTIVE").then_some(s)
    })
}

fn node_of(host: &Host, id: &str) -> String {
    active(host, id)["_elevated"]["compute_node_hostname"].as_str().expect("admins see the node").to_string()
}

fn field(r: &Resp) -> String {
    r.json()["error"]["field"].as_str().unwrap_or_default().to_string()
}

#[test]
fn fifty_servers_from_one_pattern_launch_in_order_and_all_become_active() {
    let host = Host::vnext();
    let type_id = create_type(&host, "m1.fifty");
    let entries: Vec<Value> = (0..50).map(|_| json!({})).collect();
    let body = json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE, "hostname_pattern": "web-%(rand_num)4d"},
                      "servers": entries});
    let r = launch_body(&host, &member(), PROJECT, &body);
    assert_eq!(r.status, 202, "{}", r.body);
    let launched = r.json().as_array().unwrap().clone();
    assert_eq!(launched.len(), 50);

    let hostnames: BTreeSet<&str> = launched.iter().map(|s| s["hostname"].as_str().unwrap()).collect();
    assert_eq!(hostnames.len(), 50, "hostnames are distinct: {hostnames:?}");
    for h in &hostnames {
        let digits = h.strip_prefix("web-").unwrap_or_else(|| panic!("{h} lacks the prefix"));
        assert!(digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()), "{h} does not match web-NNNN");
    }
    // Request order: the i-th entry is the server the i-th hostname names.
    for s in &launched {
        let by_name = get(&host, &format!("/projects/{PROJECT}/servers/{}", s["hostname"].as_str().unwrap()), &member());
        assert_eq!(by_name["id"], s["id"]);
    }
    let launched_at: Vec<&str> = launched.iter().map(|s| s["launched_at"].as_str().unwrap()).collect();
    assert!(launched_at.windows(2).all(|w| w[0] <= w[1]), "{launched_at:?}");

    let ids: Vec<String> = launched.iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    let mut pending: BTreeSet<String> = ids.iter().cloned().collect();
    wait_for("50 servers ACTIVE", SETTLE, || {
        pending.retain(|id| {
            let s = get(&host, &format!("/servers/{id}"), &member());
            assert_ne!(s["virt_state"], "ERROR", "{s}");
            s["virt_state"] != "ACTIVE"
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
        pending.is_empty().then_some(())
    });
    for (id, tasks) in settled_tasks(&host, &ids) {
        let create: Vec<&Value> = tasks.iter().filter(|t| t["action"] == "CREATE").collect();
        assert_eq!(create.len(), 1, "{id}: {tasks:?}");
        assert_eq!(create[0]["state"], "COMPLETED", "{id}: {}", create[0]);
    }
}

#[test]
fn twenty_racing_launches_of_one_hostname_yield_one_server() {
    const RACERS: usize = 20;
    let host = Arc::new(Host::vnext());
    let type_id = create_type(&host, "m1.race");
    let start = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (host, start, type_id) = (host.clone(), start.clone(), type_id.clone());
            std::thread::spawn(move || {
                let body = json!({"defaults": {"type_id": type_id}, "servers": [{"hostname": "contested"}]});
                start.wait();
                launch_body(&host, &member(), PROJECT, &body)
            })
        })
        .collect();
    let answers: Vec<Resp> = racers.into_iter().map(|t| t.join().unwrap()).collect();

    let won: Vec<&Resp> = answers.iter().filter(|r| r.status == 202).collect();
    let lost: Vec<&Resp> = answers.iter().filter(|r| r.status == 400).collect();
    assert_eq!((won.len(), lost.len()), (1, RACERS - 1), "{:?}", answers.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    for r in &lost {
        assert_eq!(field(r), "servers[0].hostname", "{}", r.body);
        assert!(r.body.contains("contested"), "the error names the hostname: {}", r.body);
    }
    let winner = won[0].json()[0]["id"].as_str().unwrap().to_string();
    let by_name = get(&host, &format!("/projects/{PROJECT}/servers/contested"), &member());
    assert_eq!(by_name["id"], winner.as_str());
    // The losers left no server behind under that name (in any state: the
    // winner may still be BUILDING).
    let list = get(&host, &format!("/projects/{PROJECT}/servers?limit=1000&virt_state=ANY"), &member());
    let named: Vec<&Value> = list["servers"].as_array().unwrap().iter().filter(|s| s["hostname"] == "contested").collect();
    assert_eq!(named.len(), 1, "{list}");
    active(&host, &winner);
}

/// Starts a host on `state` with the slow inventory.
fn slow_host(state: &std::path::Path) -> Host {
    HostBuilder::new(repo_root().join("spin.toml"))
        .arg("--inventory")
        .arg(repo_root().join("tests/fixtures/inventory-slow.toml").to_str().unwrap())
        .state_dir(state)
        .start()
}

/// The task a server can take next, given its state: a 409 for it would
/// mean the server is stuck with a task that already ended.
fn next_action(virt_state: &str) -> &'static str {
    match virt_state {
        "ACTIVE" => "REBOOT",
        "STOPPED" => "POWER_ON",
        _ => "HARD_REBOOT",
    }
}

/// Launches servers and starts tasks on a host with slow steps, ends the
/// host with `end` while they run, restarts it on the same state and checks
/// that nothing is lost.
fn restart_mid_tasks(end: impl FnOnce(Host)) {
    let state = tempfile::tempdir().unwrap();
    let host = slow_host(state.path());
    let type_id = create_type(&host, "m1.slow");
    let steady: Vec<String> = ["steady-1", "steady-2"].iter().map(|h| launch_one(&host, &type_id, h, json!({}))).collect();
    for id in &steady {
        active(&host, id);
    }
    for (id, action) in steady.iter().zip(["REBOOT", "POWER_OFF"]) {
        let r = send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&member()), Some(&json!({"action": action})));
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let body = json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE},
                      "servers": [{"hostname": "fresh-1"}, {"hostname": "fresh-2"}, {"hostname": "fresh-3"}]});
    let r = launch_body(&host, &member(), PROJECT, &body);
    assert_eq!(r.status, 202, "{}", r.body);
    let fresh: Vec<String> = r.json().as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    // Mid-flight: the CREATEs are one or two steps in, the REBOOT in its step.
    std::thread::sleep(Duration::from_millis(450));
    let ids: Vec<String> = steady.iter().chain(&fresh).cloned().collect();
    assert!(ids.iter().any(|id| server_tasks(&host, id).iter().any(|t| t["state"] == "RUNNING")), "nothing was in flight");
    end(host);

    let host = slow_host(state.path());
    for (id, tasks) in settled_tasks(&host, &ids) {
        for t in &tasks {
            match t["state"].as_str().unwrap() {
                "COMPLETED" => {}
                "ABORTED" | "TIMED_OUT" => assert!(t["error"].as_str().is_some_and(|e| !e.is_empty()), "{id}: {t}"),
                other => panic!("{id}: task in state {other}: {t}"),
            }
        }
        let s = get(&host, &format!("/servers/{id}"), &member());
        let virt = s["virt_state"].as_str().unwrap().to_string();
        // A server whose tasks all ended must take a new one.
        let action = next_action(&virt);
        let r = send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&member()), Some(&json!({"action": action})));
        assert_eq!(r.status, 202, "{id} ({virt}) refused {action} after the restart: {}", r.body);
    }
    // And those new tasks run to an end on the restarted host.
    for (id, tasks) in settled_tasks(&host, &ids) {
        assert!(tasks.iter().all(|t| t["state"] != "RUNNING"), "{id}: {tasks:?}");
    }
    // The launches and tasks started before the kill completed after it.
    for id in &fresh {
        let create = server_tasks(&host, id).into_iter().find(|t| t["action"] == "CREATE").unwrap();
        assert_eq!(create["state"], "COMPLETED", "{create}");
    }
}

#[test]
fn host_killed_mid_tasks_resumes_them_all_to_an_end() {
    // Dropping a Host sends SIGKILL: no chance to flush or finish anything.
    restart_mid_tasks(drop);
}

#[test]
fn host_stopped_mid_tasks_resumes_them_all_to_an_end() {
    restart_mid_tasks(|host| {
        host.stop();
    });
}

#[test]
fn affinity_by_ids_and_tags_lands_on_the_expected_nodes() {
    // Without affinity a server goes to the node with the most free memory
    // (ties: lowest id), which here is always cn-a1 or cn-c1. Each affinity
    // below asks for a node that rule would not pick, so an ignored
    // affinity fails the test.
    let host = Host::vnext();
    let type_id = create_type(&host, "m1.affinity");
    let small = launch_one(&host, &type_id, "small", json!({"placement_id": EDGE}));
    assert_eq!(node_of(&host, &small), "cn-e1");
    let near = launch_one(&host, &type_id, "near-small", json!({"affinity": {"near": {"server_ids": [small]}}}));
    assert_eq!(node_of(&host, &near), "cn-e1");
    // Launched without a placement: it shows its node's (edge is cn-e1's).
    assert_eq!(active(&host, &near)["placement_id"], EDGE);

    // One server on each big node: both have 512 MB used, so cn-a1 is next.
    let big_a = launch_one(&host, &type_id, "big-a", json!({}));
    assert_eq!(node_of(&host, &big_a), "cn-a1");
    let big_c = launch_one(&host, &type_id, "big-c", json!({"placement_id": AZ2}));
    assert_eq!(node_of(&host, &big_c), "cn-c1");
    assert_eq!(active(&host, &big_c)["placement_id"], AZ2, "the placement asked for, not the node's");
    let apart = launch_one(&host, &type_id, "apart", json!({"affinity": {"not_near": {"server_ids": [big_a]}}}));
    assert_eq!(node_of(&host, &apart), "cn-c1");

    // Tags: "db" marks the server on cn-c1 (which now has less free memory).
    let r = send("PUT", &host.url(&format!("/servers/{apart}/tags/db")), Some(&member()), None);
    assert!(r.status == 204 || r.status == 200, "{}", r.body);
    let with_db = launch_one(&host, &type_id, "with-db", json!({"affinity": {"near": {"server_tags": ["db"]}}}));
    assert_eq!(node_of(&host, &with_db), "cn-c1");
    let away = launch_one(&host, &type_id, "away", json!({"affinity": {"not_near": {"server_tags": ["db"], "server_ids": [big_a]}}}));
    let away_node = node_of(&host, &away);
    assert!(["cn-a2", "cn-b1"].contains(&away_node.as_str()), "{away_node}");

    // Inherited from defaults, for several servers of one request.
    let body = json!({"defaults": {"type_id": type_id, "affinity": {"near": {"server_tags": ["db"]}}},
                      "servers": [{"hostname": "pair-1"}, {"hostname": "pair-2"}]});
    let r = launch_body(&host, &member(), PROJECT, &body);
    assert_eq!(r.status, 202, "{}", r.body);
    for s in r.json().as_array().unwrap() {
        assert_eq!(node_of(&host, s["id"].as_str().unwrap()), "cn-c1");
    }
}

#[test]
fn affinity_targets_must_be_visible_servers() {
    let host = Host::vnext();
    let type_id = create_type(&host, "m1.targets");
    let theirs_body = json!({"defaults": {"type_id": type_id}, "servers": [{"hostname": "theirs"}]});
    let r = launch_body(&host, &format!("{OTHER_USER}:{OTHER_PROJECT}"), OTHER_PROJECT, &theirs_body);
    assert_eq!(r.status, 202, "{}", r.body);
    let theirs = r.json()[0]["id"].as_str().unwrap().to_string();
    let unknown = "9a7c5e10-9999-4000-8000-000000000009";

    let own = json!({"defaults": {"type_id": type_id},
                     "servers": [{"hostname": "ok"}, {"hostname": "bad", "affinity": {"near": {"server_ids": [unknown]}}}]});
    let r = launch_body(&host, &member(), PROJECT, &own);
    assert_eq!((r.status, field(&r)), (400, "servers[1].affinity.near.server_ids[0]".into()), "{}", r.body);
    assert!(r.body.contains(unknown), "{}", r.body);

    // Another project's server reads exactly like a missing one.
    let inherited = json!({"defaults": {"type_id": type_id, "affinity": {"not_near": {"server_ids": [theirs]}}},
                           "servers": [{"hostname": "ok"}]});
    let r = launch_body(&host, &member(), PROJECT, &inherited);
    assert_eq!((r.status, field(&r)), (400, "defaults.affinity.not_near.server_ids[0]".into()), "{}", r.body);

    // All or nothing: the refused requests claimed no hostname.
    let r = launch_body(&host, &member(), PROJECT, &json!({"defaults": {"type_id": type_id}, "servers": [{"hostname": "ok"}]}));
    assert_eq!(r.status, 202, "{}", r.body);
}

#[test]
fn affinity_no_node_satisfies_aborts_the_create_task() {
    let host = Host::vnext();
    let type_id = create_type(&host, "m1.nowhere");
    let first = launch_one(&host, &type_id, "anchor", json!({}));
    let anchor_node = node_of(&host, &first);
    assert_eq!(anchor_node, "cn-a1", "the anchor is outside az-2");
    // Near a server of az-1, but only in az-2: no node qualifies.
    let id = launch_one(&host, &type_id, "stranded", json!({"placement_id": AZ2, "affinity": {"near": {"server_ids": [first]}}}));
    let create = wait_for("CREATE to end", SETTLE, || {
        let t = server_tasks(&host, &id).into_iter().find(|t| t["action"] == "CREATE")?;
        (t["state"] != "RUNNING").then_some(t)
    });
    assert_eq!(create["state"], "ABORTED", "{create}");
    let error = create["error"].as_str().unwrap();
    assert!(error.contains("affinity.near"), "{error}");
    assert!(!error.contains("cn-"), "task errors never name compute nodes: {error}");
    assert_eq!(get(&host, &format!("/servers/{id}"), &member())["virt_state"], "ERROR");

    // Near a server that runs on no node (its CREATE aborted): same outcome.
    let id = launch_one(&host, &type_id, "near-stranded", json!({"affinity": {"near": {"server_ids": [id]}}}));
    let create = wait_for("CREATE to end", SETTLE, || {
        let t = server_tasks(&host, &id).into_iter().find(|t| t["action"] == "CREATE")?;
        (t["state"] != "RUNNING").then_some(t)
    });
    assert_eq!(create["state"], "ABORTED", "{create}");

    // Near only by tags no placed server carries (the first server of a
    // group): no constraint, the server is placed freely.
    let first_of_group = launch_one(&host, &type_id, "group-first", json!({"affinity": {"near": {"server_tags": ["group-x"]}}}));
    active(&host, &first_of_group);
}

#[test]
fn move_keeps_the_affinity_given_at_launch() {
    let host = Host::vnext();
    let type_id = create_type(&host, "m1.move");
    let anchor = launch_one(&host, &type_id, "anchor", json!({}));
    let anchor_node = node_of(&host, &anchor);
    let move_task = |id: &str| {
        send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&member()), Some(&json!({"action": "MOVE"})))
    };

    // Near its anchor, the only node allowed is the one it is on: 409.
    let buddy = launch_one(&host, &type_id, "buddy", json!({"affinity": {"near": {"server_ids": [anchor]}}}));
    assert_eq!(node_of(&host, &buddy), anchor_node);
    let r = move_task(&buddy);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("affinity"), "{}", r.body);

    // Away from it: each MOVE picks another node, never the anchor's, even
    // though the anchor's node has the most free memory (the pick without
    // affinity) once the server leaves the other big node.
    let apart = launch_one(&host, &type_id, "apart", json!({"affinity": {"not_near": {"server_ids": [anchor]}}}));
    let mut visited = vec![node_of(&host, &apart)];
    for _ in 0..2 {
        let r = move_task(&apart);
        assert_eq!(r.status, 202, "{}", r.body);
        let tasks = settled_tasks(&host, std::slice::from_ref(&apart));
        assert_eq!(tasks[&apart][0]["state"], "COMPLETED", "{:?}", tasks[&apart][0]);
        let now = node_of(&host, &apart);
        assert_ne!(now, anchor_node, "MOVE put a not_near server beside its target");
        assert_ne!(Some(&now), visited.last(), "MOVE must change the node");
        visited.push(now);
    }
}

/// Writes a hostname claim straight into a stopped host's key-value file,
/// as a launch that crashed between claiming and writing its server leaves it.
fn plant_claim(state: &std::path::Path, hostname: &str, claimed_at: &str) {
    let backend = std::sync::Arc::new(vnext_kv::sqlite::SqliteBackend::open(&state.join("sqlite_key_value.db")).unwrap());
    let store = backend.store("default");
    let ghost = "0badc1a1-0000-4000-8000-000000000000";
    let claim = json!({"server_id": ghost, "claimed_at": claimed_at}).to_string();
    let key = vnext_core::keys::hostname(PROJECT, hostname);
    futures::executor::block_on(vnext_kv::Store::set(&store, &key, claim.as_bytes())).unwrap();
}

#[test]
fn a_stale_hostname_claim_without_its_server_is_taken_over() {
    let state = tempfile::tempdir().unwrap();
    let builder = || Host::vnext_builder().state_dir(state.path());
    let host = builder().start();
    let type_id = create_type(&host, "m1.claims");
    host.stop();
    let old = vnext_core::time::format(std::time::SystemTime::now() - Duration::from_secs(3600));
    plant_claim(state.path(), "ghost-old", &old);
    plant_claim(state.path(), "ghost-new", &vnext_core::time::now());
    let host = builder().start();

    // An old claim whose server never existed no longer blocks the name.
    let id = launch_one(&host, &type_id, "ghost-old", json!({}));
    let found = get(&host, &format!("/projects/{PROJECT}/servers/ghost-old"), &member());
    assert_eq!(found["id"], id.as_str());
    // A young one may be a launch in progress: it is respected.
    let body = json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": [{"hostname": "ghost-new"}]});
    let r = launch_body(&host, &member(), PROJECT, &body);
    assert_eq!((r.status, field(&r)), (400, "servers[0].hostname".to_string()), "{}", r.body);
    // Renames go through the same claims.
    let r = send("PATCH", &host.url(&format!("/servers/{id}")), Some(&member()), Some(&json!({"hostname": "ghost-new"})));
    assert_eq!(r.status, 400, "{}", r.body);
}

/// The launch writes its records before it submits; a kill in between is
/// healed when the tasks are read (vnext_guest::tasks::reconcile submits
/// the stored operation again after 10 s without an event).
#[test]
fn host_killed_during_a_launch_request_leaves_no_task_running_forever() {
    const SERVERS: usize = 50;
    let state = tempfile::tempdir().unwrap();
    let host = Host::vnext_builder().state_dir(state.path()).start();
    let type_id = create_type(&host, "m1.cut");
    let entries: Vec<Value> = (0..SERVERS).map(|_| json!({})).collect();
    let body = json!({"defaults": {"type_id": type_id, "hostname_pattern": "cut-%(rand_num)6d"}, "servers": entries});
    let url = host.url(&format!("/projects/{PROJECT}/servers"));
    let token = member();
    // The request is cut off by the kill: its answer never comes.
    let client = std::thread::spawn(move || {
        let _ = ureq::post(&url).set("X-Auth-Token", &token).send_json(body);
    });
    // Kill as soon as the first record is visible: the launch is then
    // writing the others, and has submitted none of them yet (they are
    // BUILDING, which the list shows only when asked for any state).
    let list = format!("/projects/{PROJECT}/servers?limit=1&virt_state=ANY");
    wait_for("the first server record", SETTLE, || {
        let page = get(&host, &list, &member());
        (!page["servers"].as_array().unwrap().is_empty()).then_some(())
    });
    drop(host);
    client.join().unwrap();

    let host = Host::vnext_builder().state_dir(state.path()).start();
    let all = get(&host, &format!("/projects/{PROJECT}/servers?limit=1000&virt_state=ANY"), &member());
    let ids: Vec<String> = all["servers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert!(!ids.is_empty() && ids.len() <= SERVERS, "{all}");
    for (id, tasks) in settled_tasks(&host, &ids) {
        for t in &tasks {
            assert!(t["state"] == "COMPLETED" || t["error"].as_str().is_some_and(|e| !e.is_empty()), "{id}: {t}");
        }
    }
}
