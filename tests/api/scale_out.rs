//! Several hosts on one store: three `vnext up` processes sharing one Redis
//! and one `vnext adapter` (which posts events to each host in turn), as a
//! deployment behind a load balancer runs them. What one host accepts, the
//! others see at once; compare-and-swap on the shared records keeps
//! concurrent writers through different hosts from both winning.

use crate::harness::{Host, HostBuilder, SharedAdapter, SharedAdapterAddress, repo_root, send, wait_for};
use std::collections::HashMap;
use crate::redis_server::RedisServer;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const PROJECT: &str = "5ca1e000-2222-4000-8000-000000000002";
const TEMPLATE: &str = "5ca1e000-4444-4000-8000-000000000004";

fn member() -> String {
    format!("5ca1e000-1111-4000-8000-000000000001:{PROJECT}")
}

fn admin() -> String {
    format!("5ca1e000-3333-4000-8000-000000000003:{PROJECT}:admin")
}

/// Three hosts, one Redis, one adapter. Dropped in reverse order.
struct Cluster {
    adapter: SharedAdapter,
    hosts: Vec<Host>,
    at: SharedAdapterAddress,
    runtime_config: std::path::PathBuf,
    _redis: RedisServer,
    _dir: tempfile::TempDir,
}

fn start_host(runtime_config: &std::path::Path, at: &SharedAdapterAddress) -> Host {
    HostBuilder::new(repo_root().join("spin.toml"))
        .arg("--runtime-config-file")
        .arg(runtime_config.to_str().unwrap())
        .shared_adapter(at)
        .start()
}

impl Cluster {
    fn start(inventory: &str) -> Cluster {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join("runtime-config.toml");
        std::fs::write(&rc, format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n", redis.url())).unwrap();
        let at = SharedAdapterAddress::pick();
        let hosts: Vec<Host> = (0..3).map(|_| start_host(&rc, &at)).collect();
        let adapter = SharedAdapter::start(
            &at,
            &repo_root().join("tests/fixtures").join(inventory),
            &hosts.iter().collect::<Vec<_>>(),
            dir.path(),
        );
        Cluster { adapter, hosts, at, runtime_config: rc, _redis: redis, _dir: dir }
    }

    /// `kill -9` host `i` and start a new host process in its place (same
    /// store, same adapter; the adapter's events go to the others meanwhile).
    fn kill_and_replace_host(&mut self, i: usize) {
        let fresh = start_host(&self.runtime_config, &self.at);
        // Dropping a Host sends SIGKILL.
        drop(std::mem::replace(&mut self.hosts[i], fresh));
    }

    /// The host for the `i`th request (round-robin, as a load balancer).
    fn host(&self, i: usize) -> &Host {
        &self.hosts[i % self.hosts.len()]
    }

    fn create_type(&self, name: &str) -> String {
        let body = json!({"name": name, "visibility": "PUBLIC", "spec": {"memory_mb": 256, "cpu_units": 1}});
        let r = send("POST", &self.host(0).url("/server_types"), Some(&admin()), Some(&body));
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_string()
    }
}

fn launch_body(type_id: &str, hostname: &str) -> Value {
    json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": [{"hostname": hostname}]})
}

fn wait_active(host: &Host, id: &str) {
    wait_for(&format!("server {id} to become ACTIVE"), Duration::from_secs(30), || {
        let s = send("GET", &host.url(&format!("/servers/{id}")), Some(&member()), None).json();
        (s["virt_state"] == "ACTIVE").then_some(())
    });
}

#[test]
fn launches_through_any_host_are_seen_by_every_host_at_once() {
    let cluster = Cluster::start("inventory.toml");
    let ty = cluster.create_type("scale.see");
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = send(
            "POST",
            &cluster.host(i).url(&format!("/projects/{PROJECT}/servers")),
            Some(&member()),
            Some(&launch_body(&ty, &format!("seen-{i}"))),
        );
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.json()[0]["id"].as_str().unwrap().to_string();
        // Readable through every host right after the 202, not eventually.
        for h in &cluster.hosts {
            let got = send("GET", &h.url(&format!("/servers/{id}")), Some(&member()), None);
            assert_eq!(got.status, 200, "{} did not see {id}: {}", h.base, got.body);
        }
        ids.push(id);
    }
    // The adapter's events, spread over the hosts, make each one ACTIVE,
    // and every host lists all six.
    for (i, id) in ids.iter().enumerate() {
        wait_active(cluster.host(i + 1), id);
    }
    for h in &cluster.hosts {
        let list = send("GET", &h.url(&format!("/projects/{PROJECT}/servers?virt_state=ANY&limit=50")), Some(&member()), None);
        let listed: HashSet<String> =
            list.json()["servers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(listed, ids.iter().cloned().collect::<HashSet<_>>(), "{}", h.base);
    }
    assert!(cluster.adapter.log().contains("(in turn)"), "the adapter names the hosts it posts to");
}

/// Runs `n` requests at once, the `i`th through host `i % 3`; their statuses.
fn at_once(cluster: &Cluster, n: usize, request: impl Fn(&Host, usize) -> u16 + Sync) -> Vec<u16> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, request, host) = (&barrier, &request, cluster.host(i));
                s.spawn(move || {
                    barrier.wait();
                    request(host, i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn fifty_concurrent_launches_of_one_hostname_over_three_hosts_accept_exactly_one() {
    let cluster = Cluster::start("inventory.toml");
    let ty = cluster.create_type("scale.race");
    let statuses = at_once(&cluster, 50, |host, _| {
        send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&launch_body(&ty, "only-one")))
            .status
    });
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| [202, 400, 409].contains(s)), "the losers are refused, never a 5xx: {statuses:?}");
    let found = send("GET", &cluster.host(1).url(&format!("/projects/{PROJECT}/servers/only-one")), Some(&member()), None);
    assert_eq!(found.status, 200, "{}", found.body);
    let list = send("GET", &cluster.host(2).url(&format!("/projects/{PROJECT}/servers?virt_state=ANY")), Some(&member()), None);
    assert_eq!(list.json()["servers"].as_array().unwrap().len(), 1, "exactly one server exists: {}", list.body);
}

#[test]
fn twenty_concurrent_tasks_on_one_server_over_three_hosts_accept_exactly_one() {
    // Slow steps (a reboot takes 1.5 s): every request arrives while the
    // first accepted task still runs.
    let cluster = Cluster::start("inventory-slow.toml");
    let ty = cluster.create_type("scale.tasks");
    let r = send("POST", &cluster.host(0).url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&launch_body(&ty, "busy")));
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()[0]["id"].as_str().unwrap().to_string();
    wait_active(cluster.host(1), &id);
    let statuses = at_once(&cluster, 20, |host, _| {
        send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&member()), Some(&json!({"action": "REBOOT"}))).status
    });
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
    let tasks = send("GET", &cluster.host(2).url(&format!("/servers/{id}/tasks")), Some(&member()), None);
    let reboots = tasks.json()["tasks"].as_array().unwrap().iter().filter(|t| t["action"] == "REBOOT").count();
    assert_eq!(reboots, 1, "one REBOOT task exists: {}", tasks.body);
}

#[test]
fn list_paging_stays_consistent_while_other_hosts_write() {
    let cluster = Cluster::start("inventory.toml");
    let ty = cluster.create_type("scale.pages");
    let mut before = HashSet::new();
    for i in 0..12 {
        let r = send(
            "POST",
            &cluster.host(i).url(&format!("/projects/{PROJECT}/servers")),
            Some(&member()),
            Some(&launch_body(&ty, &format!("page-{i:02}"))),
        );
        assert_eq!(r.status, 202, "{}", r.body);
        before.insert(r.json()[0]["id"].as_str().unwrap().to_string());
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Writers through hosts 1 and 2: new servers and tag changes.
        let writer = s.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 40 {
                let r = send(
                    "POST",
                    &cluster.host(1 + n % 2).url(&format!("/projects/{PROJECT}/servers")),
                    Some(&member()),
                    Some(&launch_body(&ty, &format!("late-{n:02}"))),
                );
                assert_eq!(r.status, 202, "{}", r.body);
                n += 1;
            }
            n
        });
        // Walks of host 0's pages, two servers a page, while they write.
        for _ in 0..5 {
            let mut seen = Vec::new();
            let mut next = Some(format!("/projects/{PROJECT}/servers?virt_state=ANY&limit=2"));
            while let Some(path) = next {
                let page = send("GET", &cluster.host(0).url(&path), Some(&member()), None);
                assert_eq!(page.status, 200, "{}", page.body);
                let body = page.json();
                seen.extend(body["servers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()));
                next = body["_links"]["next"]["href"].as_str().map(str::to_string);
            }
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "a server listed twice in one walk: {seen:?}");
            for id in &before {
                assert!(unique.contains(id), "server {id}, there before the walk, is missing from it");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(writer.join().unwrap() > 0, "the writers wrote during the walks");
    });
}

// ------------------------------------------------------------------ crashes

/// Every task of every server in `ids` through `host`, once none is left
/// RUNNING or WAITING (a stalled one is resubmitted when read: see
/// vnext_guest::tasks::reconcile).
fn settled(host: &Host, ids: &[String]) -> HashMap<String, Vec<Value>> {
    wait_for("every task to end", Duration::from_secs(120), || {
        let mut all = HashMap::new();
        for id in ids {
            let r = send("GET", &host.url(&format!("/servers/{id}/tasks?limit=100")), Some(&member()), None);
            if r.status != 200 {
                return None;
            }
            let tasks = r.json()["tasks"].as_array().unwrap().clone();
            if tasks.iter().any(|t| t["state"] == "RUNNING" || t["state"] == "WAITING") {
                return None;
            }
            all.insert(id.clone(), tasks);
        }
        Some(all)
    })
}

/// Every server of the project, by id; each listed once.
fn all_servers(host: &Host) -> HashMap<String, Value> {
    let r = send("GET", &host.url(&format!("/projects/{PROJECT}/servers?virt_state=ANY&limit=1000")), Some(&member()), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.json()["servers"].as_array().unwrap().clone();
    let by_id: HashMap<String, Value> = list.iter().map(|s| (s["id"].as_str().unwrap().to_string(), s.clone())).collect();
    assert_eq!(by_id.len(), list.len(), "a server listed twice");
    by_id
}

/// Checks what a crash must not break: each server once, its hostname
/// claimed by it alone, its items each applied once, and the driver
/// knowing it (diagnostics come from the adapter's driver).
fn assert_whole(host: &Host, servers: &HashMap<String, Value>, tasks: &HashMap<String, Vec<Value>>) {
    let mut hostnames = HashSet::new();
    // Items per completed task, by action: the same for every server.
    let mut item_counts: HashMap<String, HashSet<usize>> = HashMap::new();
    for (id, s) in servers {
        let hostname = s["hostname"].as_str().unwrap();
        assert!(hostnames.insert(hostname.to_string()), "hostname {hostname} used twice");
        let claimed = send("GET", &host.url(&format!("/projects/{PROJECT}/servers/{hostname}")), Some(&member()), None);
        assert_eq!(claimed.status, 200, "{hostname}: {}", claimed.body);
        assert_eq!(claimed.json()["id"], id.as_str(), "{hostname} resolves to another server");
        for t in &tasks[id] {
            let task_id = t["id"].as_str().unwrap();
            let items = send("GET", &host.url(&format!("/server_tasks/{task_id}/items?limit=100")), Some(&member()), None);
            let items = items.json()["items"].as_array().unwrap().clone();
            let steps: HashSet<String> = items.iter().map(|i| i["id"].to_string()).collect();
            assert_eq!(steps.len(), items.len(), "an item of {task_id} twice: {items:?}");
            if t["state"] == "COMPLETED" {
                item_counts.entry(t["action"].to_string()).or_default().insert(items.len());
            }
        }
        if s["virt_state"] == "ACTIVE" {
            let diag = send("GET", &host.url(&format!("/servers/{id}/diagnostics")), Some(&member()), None);
            assert_eq!(diag.status, 200, "the driver does not know {id}: {}", diag.body);
        }
    }
    for (action, counts) in item_counts {
        assert_eq!(counts.len(), 1, "{action} tasks with different numbers of items: {counts:?}");
    }
}

#[test]
fn a_host_then_the_adapter_killed_mid_tasks_lose_and_duplicate_nothing() {
    let mut cluster = Cluster::start("inventory-crash.toml");
    let ty = cluster.create_type("crash.hundred");
    let servers: Vec<Value> = (0..100).map(|i| json!({"hostname": format!("crash-{i:03}")})).collect();
    let body = json!({"defaults": {"type_id": ty, "template_id": TEMPLATE}, "servers": servers});
    let r = send("POST", &cluster.host(0).url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&body));
    assert_eq!(r.status, 202, "{}", r.body);
    let ids: Vec<String> = r.json().as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();

    // 100 CREATE tasks in flight: kill -9 the host that accepted them, then
    // the adapter running them; start both again.
    let running = send("GET", &cluster.host(1).url(&format!("/servers/{}/tasks", ids[99])), Some(&member()), None);
    assert_ne!(running.json()["tasks"][0]["state"], "COMPLETED", "the tasks ended before the kills: {}", running.body);
    cluster.kill_and_replace_host(0);
    cluster.adapter.kill();
    cluster.adapter.restart();
    assert_eq!(cluster.adapter.log().matches("Adapter serving").count(), 2, "the adapter started again");

    let tasks = settled(cluster.host(2), &ids);
    let all = all_servers(cluster.host(0));
    assert_eq!(all.keys().cloned().collect::<HashSet<_>>(), ids.iter().cloned().collect::<HashSet<_>>());
    for (id, t) in &tasks {
        assert_eq!(t.len(), 1, "{id}: one CREATE task: {t:?}");
        assert_eq!(t[0]["state"], "COMPLETED", "{id}: {}", t[0]);
        assert_eq!(all[id]["virt_state"], "ACTIVE", "{id}: {}", all[id]);
    }
    assert_whole(cluster.host(1), &all, &tasks);
}

#[test]
fn the_adapter_killed_while_a_200_server_launch_is_accepted_leaves_every_server_settled() {
    let mut cluster = Cluster::start("inventory-crash.toml");
    let ty = cluster.create_type("crash.launch");
    let servers: Vec<Value> = (0..200).map(|i| json!({"hostname": format!("cut-{i:03}")})).collect();
    let body = json!({"defaults": {"type_id": ty, "template_id": TEMPLATE}, "servers": servers});
    let url = cluster.host(0).url(&format!("/projects/{PROJECT}/servers"));
    let token = member();
    let client = std::thread::spawn(move || send("POST", &url, Some(&token), Some(&body)));
    // Kill as soon as the first record is visible: the launch is writing
    // the others or handing them to the adapter.
    wait_for("the first server record", Duration::from_secs(30), || {
        let page = send("GET", &cluster.host(1).url(&format!("/projects/{PROJECT}/servers?virt_state=ANY&limit=1")), Some(&member()), None);
        (!page.json()["servers"].as_array().unwrap().is_empty()).then_some(())
    });
    cluster.adapter.kill();
    let answer = client.join().unwrap();
    assert!([202, 503].contains(&answer.status), "a clean answer, 202 or 503: {} {}", answer.status, answer.body);
    cluster.adapter.restart();

    let all = all_servers(cluster.host(2));
    if answer.status == 202 {
        assert_eq!(all.len(), 200, "every accepted server exists");
    }
    let ids: Vec<String> = all.keys().cloned().collect();
    let tasks = settled(cluster.host(1), &ids);
    for (id, t) in &tasks {
        for task in t {
            assert!(
                task["state"] == "COMPLETED" || task["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{id}: a task that did not complete says why: {task}"
            );
        }
    }
    assert_whole(cluster.host(0), &all_servers(cluster.host(0)), &tasks);
}
