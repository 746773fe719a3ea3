//! The single-server routes beyond GET/HEAD, through HTTP on the real host
//! with the fake driver: PATCH (rename, transfer), tags, console log,
//! consoles and diagnostics, with their refusals.

use crate::harness::{Host, Resp, send, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const USER_A: &str = "7a1d6a3e-1111-4000-8000-000000000001";
const PROJECT_A: &str = "7a1d6a3e-2222-4000-8000-000000000002";
const USER_B: &str = "7a1d6a3e-5555-4000-8000-000000000005";
const PROJECT_B: &str = "7a1d6a3e-6666-4000-8000-000000000006";
const ADMIN: &str = "7a1d6a3e-3333-4000-8000-000000000003";
const TEMPLATE: &str = "7a1d6a3e-4444-4000-8000-000000000004";
/// Placement `rack-c` of tests/fixtures/inventory.toml: its only enabled
/// node, cn-c1, serves novnc and spice consoles (not rdp or xvpvnc).
const RACK_C: &str = "7d3b3a10-0000-4000-8000-000000000006";
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);

fn member_a() -> String {
    format!("{USER_A}:{PROJECT_A}")
}

fn member_b() -> String {
    format!("{USER_B}:{PROJECT_B}")
}

fn admin() -> String {
    format!("{ADMIN}:{PROJECT_A}:admin")
}

fn create_type(host: &Host) -> String {
    let body = json!({"name": "m1.servers", "visibility": "PUBLIC", "spec": {"memory_mb": 512, "cpu_units": 1}});
    let r = send("POST", &host.url("/server_types"), Some(&admin()), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

/// Launches servers named `hostnames` in `project` (as `token`); their ids in order.
fn launch(host: &Host, token: &str, project: &str, type_id: &str, placement: Option<&str>, hostnames: &[&str]) -> Vec<String> {
    let mut defaults = json!({"type_id": type_id, "template_id": TEMPLATE});
    if let Some(p) = placement {
        defaults["placement_id"] = json!(p);
    }
    let servers: Vec<Value> = hostnames.iter().map(|h| json!({"hostname": h})).collect();
    let r = send(
        "POST",
        &host.url(&format!("/projects/{project}/servers")),
        Some(token),
        Some(&json!({"defaults": defaults, "servers": servers})),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    r.json().as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

fn get_server(host: &Host, token: &str, id: &str) -> Resp {
    send("GET", &host.url(&format!("/servers/{id}")), Some(token), None)
}

fn wait_state(host: &Host, token: &str, id: &str, state: &str) -> Value {
    wait_for(&format!("server {id} {state}"), ACTIVE_TIMEOUT, || {
        let r = get_server(host, token, id);
        assert_eq!(r.status, 200, "{}", r.body);
        let s = r.json();
        (s["virt_state"] == state).then_some(s)
    })
}

fn patch(host: &Host, token: &str, id: &str, body: &Value) -> Resp {
    send("PATCH", &host.url(&format!("/servers/{id}")), Some(token), Some(body))
}

fn start_task(host: &Host, token: &str, id: &str, action: &str) -> Value {
    let r = send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(token), Some(&json!({"action": action})));
    assert_eq!(r.status, 202, "{action}: {}", r.body);
    r.json()
}

/// Asserts a 4xx in the one error shape, naming `field` when given.
fn assert_refused(r: &Resp, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.json()["error"];
    assert_eq!(e["code"], status, "{}", r.body);
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
    if let Some(f) = field {
        assert_eq!(e["field"], f, "{}", r.body);
    }
}

fn by_hostname(host: &Host, token: &str, project: &str, hostname: &str) -> Resp {
    send("GET", &host.url(&format!("/projects/{project}/servers/{hostname}")), Some(token), None)
}

/// The ids of every server of `project`, in any state.
fn listed_ids(host: &Host, token: &str, project: &str) -> Vec<String> {
    let r = send("GET", &host.url(&format!("/projects/{project}/servers?limit=1000&virt_state=ANY")), Some(token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["servers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn patch_renames_with_claims_and_refuses_bad_bodies() {
    let host = Host::vnext();
    let ty = create_type(&host);
    let ids = launch(&host, &member_a(), PROJECT_A, &ty, None, &["web-1", "db-1"]);
    let (web, db) = (&ids[0], &ids[1]);

    // Rename: the new name resolves, the old one is free again.
    assert_eq!(patch(&host, &member_a(), web, &json!({"hostname": "web-2"})).status, 204);
    assert_eq!(get_server(&host, &member_a(), web).json()["hostname"], "web-2");
    assert_eq!(by_hostname(&host, &member_a(), PROJECT_A, "web-2").json()["id"], web.as_str());
    assert_refused(&by_hostname(&host, &member_a(), PROJECT_A, "web-1"), 404, None);
    assert_eq!(patch(&host, &member_a(), db, &json!({"hostname": "web-1"})).status, 204, "web-1 was released");

    // A taken name is 400 and changes nothing.
    assert_refused(&patch(&host, &member_a(), web, &json!({"hostname": "WEB-1"})), 400, Some("hostname"));
    assert_eq!(get_server(&host, &member_a(), web).json()["hostname"], "web-2");
    assert_eq!(by_hostname(&host, &member_a(), PROJECT_A, "web-1").json()["id"], db.as_str());

    // A change of case keeps the server's own claim; the same name is a no-op.
    assert_eq!(patch(&host, &member_a(), web, &json!({"hostname": "Web-2"})).status, 204);
    assert_eq!(patch(&host, &member_a(), web, &json!({"hostname": "Web-2"})).status, 204);
    assert_eq!(get_server(&host, &member_a(), web).json()["hostname"], "Web-2");
    assert_eq!(by_hostname(&host, &member_a(), PROJECT_A, "web-2").json()["id"], web.as_str());

    // Bad bodies: 400 naming the field where there is one.
    let url = host.url(&format!("/servers/{web}"));
    let token = member_a();
    let raw = |body: &str| crate::harness::request("PATCH", &url, &[("X-Auth-Token", &token)], Some(body));
    assert_refused(&raw(""), 400, None);
    assert_refused(&raw("{"), 400, None);
    assert_refused(&raw("{}"), 400, None);
    assert_refused(&patch(&host, &member_a(), web, &json!({"hostname": "no_underscores"})), 400, Some("hostname"));
    assert_refused(&patch(&host, &member_a(), web, &json!({"hostname": "-x"})), 400, Some("hostname"));
    assert_refused(&patch(&host, &member_a(), web, &json!({"hostname": 7})), 400, Some("hostname"));
    assert_refused(&patch(&host, &member_a(), web, &json!({"hostname": "ok", "locked": true})), 400, Some("locked"));
    assert_refused(&patch(&host, &member_a(), web, &json!({"project_id": "not-a-uuid"})), 400, Some("project_id"));
    assert_eq!(get_server(&host, &member_a(), web).json()["hostname"], "Web-2", "refusals change nothing");

    // Another project's server is not found, whatever the body.
    assert_refused(&patch(&host, &member_b(), web, &json!({"hostname": "mine"})), 404, None);
    assert_refused(&send("PATCH", &host.url("/servers/not-a-uuid"), Some(&member_a()), Some(&json!({"hostname": "x"}))), 404, None);

    // Locked: members get 409, admins may still rename.
    start_task(&host, &member_a(), web, "LOCK");
    wait_for("lock", ACTIVE_TIMEOUT, || get_server(&host, &member_a(), web).json()["locked"].as_bool().filter(|l| *l));
    assert_refused(&patch(&host, &member_a(), web, &json!({"hostname": "web-3"})), 409, None);
    assert_eq!(get_server(&host, &member_a(), web).json()["hostname"], "Web-2");
    assert_eq!(patch(&host, &admin(), web, &json!({"hostname": "web-3"})).status, 204);
    assert_eq!(get_server(&host, &member_a(), web).json()["hostname"], "web-3");
}

#[test]
fn transfer_moves_the_server_its_tasks_and_its_name_to_the_other_project() {
    let host = Host::vnext();
    let ty = create_type(&host);
    let ids = launch(&host, &member_a(), PROJECT_A, &ty, None, &["app", "dup"]);
    let (app, dup) = (&ids[0], &ids[1]);
    launch(&host, &member_b(), PROJECT_B, &ty, None, &["dup"]);
    let create_task = wait_for("app's CREATE task", ACTIVE_TIMEOUT, || {
        let r = send("GET", &host.url(&format!("/servers/{app}/tasks")), Some(&member_a()), None);
        r.json()["tasks"].as_array().and_then(|t| t.first().cloned())
    });
    let task_url = host.url(&format!("/server_tasks/{}", create_task["id"].as_str().unwrap()));
    wait_state(&host, &member_a(), app, "ACTIVE");

    // Members hold one project only: a transfer is admin work.
    let r = patch(&host, &member_a(), app, &json!({"project_id": PROJECT_B}));
    assert_refused(&r, 403, Some("project_id"));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("admin"), "{}", r.body);
    // Naming its own project is no transfer.
    assert_eq!(patch(&host, &member_a(), app, &json!({"project_id": PROJECT_A})).status, 204);

    // The hostname must be free in the target project.
    assert_refused(&patch(&host, &admin(), dup, &json!({"project_id": PROJECT_B})), 400, Some("hostname"));
    assert_eq!(get_server(&host, &member_a(), dup).json()["project_id"], PROJECT_A);
    assert_eq!(by_hostname(&host, &member_a(), PROJECT_A, "dup").json()["id"], dup.as_str());

    // Rename and transfer in one PATCH.
    assert_eq!(patch(&host, &admin(), app, &json!({"project_id": PROJECT_B, "hostname": "app-b"})).status, 204);
    assert_refused(&get_server(&host, &member_a(), app), 404, None);
    let moved = get_server(&host, &member_b(), app);
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!((moved.json()["project_id"].as_str(), moved.json()["hostname"].as_str()), (Some(PROJECT_B), Some("app-b")));
    assert_eq!(by_hostname(&host, &member_b(), PROJECT_B, "app-b").json()["id"], app.as_str());
    assert_refused(&by_hostname(&host, &admin(), PROJECT_A, "app"), 404, None);

    // Its tasks went along; the old project lost them.
    assert_eq!(send("GET", &task_url, Some(&member_b()), None).status, 200);
    assert_refused(&send("GET", &task_url, Some(&member_a()), None), 404, None);
    let tasks = send("GET", &host.url(&format!("/servers/{app}/tasks")), Some(&member_b()), None);
    assert_eq!(tasks.status, 200, "{}", tasks.body);
    assert_eq!(tasks.json()["tasks"][0]["id"], create_task["id"]);

    // The project lists follow, and the old name is free in the old project.
    assert!(listed_ids(&host, &member_b(), PROJECT_B).contains(app));
    assert!(!listed_ids(&host, &member_a(), PROJECT_A).contains(app));
    assert_eq!(patch(&host, &member_a(), dup, &json!({"hostname": "app"})).status, 204);

    // The new project's members own it now: they can act on it.
    start_task(&host, &member_b(), app, "REBOOT");
}

#[test]
fn tags_are_a_bounded_set_per_server() {
    let host = Host::vnext();
    let ty = create_type(&host);
    let id = &launch(&host, &member_a(), PROJECT_A, &ty, None, &["tagged"])[0];
    let tags_url = host.url(&format!("/servers/{id}/tags"));
    let tag_url = |t: &str| host.url(&format!("/servers/{id}/tags/{t}"));
    let get_tags = || {
        let r = send("GET", &tags_url, Some(&member_a()), None);
        assert_eq!(r.status, 200, "{}", r.body);
        // A bare array of strings.
        r.json()
    };

    assert_eq!(get_tags(), json!([]));
    assert_eq!(send("PUT", &tags_url, Some(&member_a()), Some(&json!({"tags": ["b", "a", "b"]}))).status, 204);
    assert_eq!(get_tags(), json!(["a", "b"]), "a set: duplicates collapse");
    assert_eq!(send("PUT", &tags_url, Some(&member_a()), Some(&json!(["x"]))).status, 204, "the bare array form too");
    assert_eq!(get_tags(), json!(["x"]), "PUT replaces");
    assert_eq!(send("PUT", &tag_url("y"), Some(&member_a()), None).status, 204);
    assert_eq!(send("PUT", &tag_url("y"), Some(&member_a()), None).status, 204, "idempotent");
    assert_eq!(get_server(&host, &member_a(), id).json()["tags"], json!(["x", "y"]));
    assert_eq!(send("DELETE", &tag_url("x"), Some(&member_a()), None).status, 204);
    assert_refused(&send("DELETE", &tag_url("x"), Some(&member_a()), None), 404, None);
    assert_eq!(get_tags(), json!(["y"]));
    assert_eq!(send("DELETE", &tags_url, Some(&member_a()), None).status, 204);
    assert_eq!(get_tags(), json!([]));

    // Refusals.
    assert_refused(&send("PUT", &tags_url, Some(&member_a()), Some(&json!({"tags": ["ok", "a,b"]}))), 400, Some("tags[1]"));
    assert_refused(&send("PUT", &tags_url, Some(&member_a()), Some(&json!({"tags": [], "extra": 1}))), 400, Some("extra"));
    assert_refused(&send("PUT", &tags_url, Some(&member_a()), Some(&json!({}))), 400, Some("tags"));
    assert_refused(&send("PUT", &tag_url("a,b"), Some(&member_a()), None), 400, Some("tag"));
    assert_refused(&send("PUT", &tag_url(&"t".repeat(51)), Some(&member_a()), None), 400, Some("tag"));
    let fifty_one: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    assert_refused(&send("PUT", &tags_url, Some(&member_a()), Some(&json!({"tags": fifty_one}))), 400, Some("tags"));
    assert_eq!(send("PUT", &tags_url, Some(&member_a()), Some(&json!({"tags": &fifty_one[..50]}))).status, 204);
    assert_refused(&send("PUT", &tag_url("t50"), Some(&member_a()), None), 400, Some("tag"));
    assert_eq!(send("PUT", &tag_url("t49"), Some(&member_a()), None).status, 204, "an existing tag is no 51st");
    assert_eq!(get_tags().as_array().unwrap().len(), 50);
    assert_refused(&send("POST", &tags_url, Some(&member_a()), None), 405, None);

    // Other projects see nothing; a locked server takes tag changes from admins only.
    assert_refused(&send("GET", &tags_url, Some(&member_b()), None), 404, None);
    assert_refused(&send("PUT", &tag_url("z"), Some(&member_b()), None), 404, None);
    wait_state(&host, &member_a(), id, "ACTIVE");
    start_task(&host, &member_a(), id, "LOCK");
    wait_for("lock", ACTIVE_TIMEOUT, || get_server(&host, &member_a(), id).json()["locked"].as_bool().filter(|l| *l));
    assert_refused(&send("PUT", &tag_url("z"), Some(&member_a()), None), 409, None);
    assert_refused(&send("DELETE", &tags_url, Some(&member_a()), None), 409, None);
    assert_eq!(get_tags().as_array().unwrap().len(), 50, "reading is fine");
    assert_eq!(send("DELETE", &tags_url, Some(&admin()), None).status, 204);
    assert_eq!(get_tags(), json!([]));
}

#[test]
fn console_log_consoles_and_diagnostics_come_from_the_hypervisor() {
    let host = Host::vnext();
    let home = send("GET", &host.url("/"), None, None).json();
    assert!(home["resources"]["rel/server_console_log"]["hints"]["formats"].get("text/plain; charset=utf-8").is_some());
    assert_eq!(home["resources"]["rel/server_console_log"]["href-template"], "/servers/{server_id}/console_log{?lines}");
    for rel in ["server_tags", "server_tag", "server_console", "server_diagnostics"] {
        assert!(home["resources"].get(format!("rel/{rel}")).is_some(), "JSON-Home lacks {rel}");
    }
    for object in ["diagnostics", "server_console", "server_patch"] {
        assert_eq!(send("GET", &host.url(&format!("/schemas/{object}")), None, None).status, 200, "{object}");
    }

    let ty = create_type(&host);
    let id = &launch(&host, &member_a(), PROJECT_A, &ty, Some(RACK_C), &["console-1"])[0];
    wait_state(&host, &member_a(), id, "ACTIVE");
    let url = |path: &str| host.url(&format!("/servers/{id}{path}"));

    // Console log: text, the last N lines.
    let log = send("GET", &url("/console_log"), Some(&member_a()), None);
    assert_eq!(log.status, 200, "{}", log.body);
    assert_eq!(log.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(log.body.contains("console-1 login:"), "{}", log.body);
    assert!(log.body.lines().count() > 2, "{}", log.body);
    let last = send("GET", &url("/console_log?lines=1"), Some(&member_a()), None);
    assert_eq!(last.status, 200, "{}", last.body);
    assert_eq!(last.body.lines().count(), 1, "{}", last.body);
    assert_eq!(last.body.lines().next(), log.body.lines().last());
    assert_eq!(send("GET", &url("/console_log?lines=65536"), Some(&member_a()), None).status, 200);
    for bad in ["0", "65537", "-3", "ten"] {
        assert_refused(&send("GET", &url(&format!("/console_log?lines={bad}")), Some(&member_a()), None), 400, Some("lines"));
    }
    assert_refused(&send("GET", &url("/console_log?tail=5"), Some(&member_a()), None), 400, Some("tail"));

    // Consoles: what cn-c1 serves, 400 for what it does not or what does not exist.
    for kind in ["novnc", "spice"] {
        let r = send("GET", &url(&format!("/consoles/{kind}")), Some(&member_a()), None);
        assert_eq!(r.status, 200, "{kind}: {}", r.body);
        assert_eq!(r.json()["type"], kind);
        assert_eq!(r.json()["_links"]["self"]["href"], format!("/servers/{id}/consoles/{kind}"), "{}", r.body);
        assert!(r.json()["uri"].as_str().is_some_and(|u| u.contains("token=")), "{}", r.body);
    }
    let one = send("GET", &url("/consoles/novnc"), Some(&member_a()), None).json()["uri"].clone();
    let two = send("GET", &url("/consoles/novnc"), Some(&member_a()), None).json()["uri"].clone();
    assert_ne!(one, two, "each console URI carries a fresh one-time token");
    for kind in ["rdp", "xvpvnc"] {
        assert_refused(&send("GET", &url(&format!("/consoles/{kind}")), Some(&member_a()), None), 400, None);
    }
    let r = send("GET", &url("/consoles/vnc"), Some(&member_a()), None);
    assert_refused(&r, 400, Some("console_type"));
    assert!(r.body.contains("novnc, xvpvnc, rdp, spice"), "{}", r.body);

    // Diagnostics: the server's counters.
    let d = send("GET", &url("/diagnostics"), Some(&member_a()), None);
    assert_eq!(d.status, 200, "{}", d.body);
    let d = d.json();
    assert_eq!(d["memory_total_mb"], 512);
    for counter in ["cpu_time_ns", "memory_used_mb", "uptime_seconds"] {
        assert!(d[counter].is_u64(), "{counter}: {d}");
    }
    assert_eq!(d["disks"][0]["device"], "/dev/vda", "{d}");
    assert!(d["disks"][0]["read_requests"].is_u64(), "{d}");
    assert_eq!(d["interfaces"][0]["name"], "eth0", "{d}");
    assert!(d["interfaces"][0]["tx_packets"].is_u64(), "{d}");

    // Other projects see nothing.
    for path in ["/console_log", "/consoles/novnc", "/diagnostics"] {
        assert_refused(&send("GET", &url(path), Some(&member_b()), None), 404, None);
    }

    // A TERMINATED server has no console and no counters: 409.
    start_task(&host, &member_a(), id, "TERMINATE");
    wait_state(&host, &member_a(), id, "TERMINATED");
    for path in ["/console_log", "/consoles/novnc", "/diagnostics"] {
        let r = send("GET", &url(path), Some(&member_a()), None);
        assert_refused(&r, 409, None);
        assert!(r.body.contains("TERMINATED"), "{path}: {}", r.body);
    }
}
