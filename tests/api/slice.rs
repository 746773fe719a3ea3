//! The vertical slice through the whole stack: JSON-Home, a server type, a
//! launch that the fake driver takes to ACTIVE through its CREATE task
//! items, events delivered in-process, and the one error shape.

use crate::harness::{Host, Resp, send, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const USER: &str = "6f1d6a3e-1111-4000-8000-000000000001";
const PROJECT: &str = "6f1d6a3e-2222-4000-8000-000000000002";
const ADMIN: &str = "6f1d6a3e-3333-4000-8000-000000000003";
const TEMPLATE: &str = "6f1d6a3e-4444-4000-8000-000000000004";
/// Placement `rack-a` of tests/fixtures/inventory.toml, of node cn-a1 (where
/// the first server of a host goes: the most free memory, then the lowest id).
const RACK_A: &str = "7d3b3a10-0000-4000-8000-000000000004";

fn member() -> String {
    format!("{USER}:{PROJECT}")
}

fn admin() -> String {
    format!("{ADMIN}:{PROJECT}:admin")
}

fn create_type(host: &Host, name: &str) -> String {
    let r = send(
        "POST",
        &host.url("/server_types"),
        Some(&admin()),
        Some(&json!({"name": name, "visibility": "PUBLIC", "spec": {"memory_mb": 512, "cpu_units": 1}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

fn launch(host: &Host, type_id: &str, hostname: &str) -> String {
    let r = send(
        "POST",
        &host.url(&format!("/projects/{PROJECT}/servers")),
        Some(&member()),
        Some(&json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": [{"hostname": hostname}]})),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    // A bare array, one entry per server asked for.
    let servers = r.json().as_array().unwrap().clone();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["hostname"], hostname);
    assert!(servers[0]["launched_at"].is_string(), "{}", r.body);
    servers[0]["id"].as_str().unwrap().to_string()
}

fn get_server(host: &Host, id: &str) -> Value {
    let r = send("GET", &host.url(&format!("/servers/{id}")), Some(&member()), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn create_task_of(host: &Host, server_id: &str) -> Value {
    let r = send("GET", &host.url(&format!("/servers/{server_id}/tasks")), Some(&member()), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let tasks = r.json()["tasks"].as_array().unwrap().clone();
    tasks.into_iter().find(|t| t["action"] == "CREATE").expect("a CREATE task")
}

fn assert_error_shape(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.json()["error"];
    assert_eq!(e["code"], status);
    assert!(e["title"].is_string() && e["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
    assert!(r.header("x-openstack-request-id").is_some_and(|v| v.starts_with("req-")));
}

#[test]
fn launch_reaches_active_through_create_task_items() {
    let host = Host::vnext();

    let home = send("GET", &host.url("/"), None, None);
    assert_eq!(home.status, 200);
    assert!(home.header("content-type").unwrap().starts_with("application/json-home"));
    let resources = home.json()["resources"].clone();
    for rel in ["rel/server_types", "rel/server", "rel/server_task_items", "rel/server_task_item"] {
        assert!(resources.get(rel).is_some(), "JSON-Home lacks {rel}: {resources}");
    }

    let type_id = create_type(&host, "m1.slice");
    let t = send("GET", &host.url(&format!("/server_types/{type_id}")), Some(&member()), None);
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.json()["name"], "m1.slice");
    assert_eq!(t.json()["spec"]["root_disk_gb"], 10, "default root disk");

    let id = launch(&host, &type_id, "web-1");
    let server = wait_for("server ACTIVE", Duration::from_secs(30), || {
        let s = get_server(&host, &id);
        (s["virt_state"] == "ACTIVE").then_some(s)
    });
    assert_eq!(server["power_state"], "RUNNING");
    // Launched without a placement: the placement of the node it runs on.
    assert_eq!(server["placement_id"], RACK_A, "{server}");
    assert_eq!(server["hostname"], "web-1");
    assert_eq!(server["project_id"], PROJECT);
    assert_eq!(server["type_id"], type_id.as_str());

    let head = send("HEAD", &host.url(&format!("/servers/{id}")), Some(&member()), None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-openstack-compute-server-virt-state"), Some("ACTIVE"));
    assert_eq!(head.header("x-openstack-compute-server-power-state"), Some("RUNNING"));

    let task = create_task_of(&host, &id);
    assert_eq!(task["state"], "COMPLETED", "{task}");
    let task_id = task["id"].as_str().unwrap();
    let t = send("GET", &host.url(&format!("/server_tasks/{task_id}")), Some(&member()), None);
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.json()["server_id"], id.as_str());

    let items = send("GET", &host.url(&format!("/server_tasks/{task_id}/items")), Some(&member()), None);
    assert_eq!(items.status, 200, "{}", items.body);
    let items = items.json()["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items.iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["SCHEDULING", "BLOCK_DEVICE_MAPPING", "NETWORKING", "SPAWNING"]);
    for item in &items {
        assert_eq!(item["state"], "COMPLETED", "{item}");
        assert!(item["started_at"].is_string() && item["ended_at"].is_string(), "{item}");
    }
}

#[test]
fn injected_spawn_failure_leaves_server_in_error_with_aborted_task() {
    let host = Host::vnext();
    let type_id = create_type(&host, "m1.fail");
    let id = launch(&host, &type_id, "fail-1");
    let task = wait_for("CREATE task to end", Duration::from_secs(30), || {
        let t = create_task_of(&host, &id);
        (t["state"] != "RUNNING").then_some(t)
    });
    assert_eq!(task["state"], "ABORTED", "{task}");
    assert!(task["error"].as_str().is_some_and(|e| !e.is_empty()), "{task}");
    let server = get_server(&host, &id);
    assert_eq!(server["virt_state"], "ERROR");
    // It never ran: its power state shows as SHUTDOWN, in the view and HEAD.
    assert_eq!(server["power_state"], "SHUTDOWN", "{server}");
    let head = send("HEAD", &host.url(&format!("/servers/{id}")), Some(&member()), None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-openstack-compute-server-virt-state"), Some("ERROR"));
    assert_eq!(head.header("x-openstack-compute-server-power-state"), Some("SHUTDOWN"));
}

#[test]
fn bad_requests_get_the_one_error_shape() {
    let host = Host::vnext();
    assert_error_shape(&send("GET", &host.url("/servers/6f1d6a3e-9999-4000-8000-000000000009"), None, None), 401);
    assert_error_shape(&send("GET", &host.url("/servers/6f1d6a3e-9999-4000-8000-000000000009"), Some("nonsense"), None), 401);
    assert_error_shape(
        &send("GET", &host.url("/servers/6f1d6a3e-9999-4000-8000-000000000009"), Some(&member()), None),
        404,
    );
    let r = send(
        "POST",
        &host.url("/server_types"),
        Some(&admin()),
        Some(&json!({"name": "x", "spec": {"memory_mb": 1, "cpu_units": 1}, "colour": "red"})),
    );
    assert_error_shape(&r, 400);
    assert!(r.body.contains("colour"), "the error names the unknown field: {}", r.body);
    let r = send(
        "POST",
        &host.url("/server_types"),
        Some(&member()),
        Some(&json!({"name": "pub", "visibility": "PUBLIC", "spec": {"memory_mb": 1, "cpu_units": 1}})),
    );
    assert_error_shape(&r, 403);
}

#[test]
fn proposal_spellings_of_paths_redirect_to_the_canonical_ones() {
    let host = Host::vnext();
    let type_id = create_type(&host, "m1.typo");
    let id = launch(&host, &type_id, "typo-1");
    let task_id = create_task_of(&host, &id)["id"].as_str().unwrap().to_string();
    let r = send("GET", &host.url(&format!("/servers_tasks/{task_id}/items?limit=2")), Some(&member()), None);
    assert_eq!(r.status, 308, "{}", r.body);
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, format!("/server_tasks/{task_id}/items?limit=2"));
    let followed = send("GET", &host.url(&location), Some(&member()), None);
    assert_eq!(followed.status, 200, "{}", followed.body);
    assert_eq!(followed.json()["items"].as_array().map(Vec::len), Some(2), "{}", followed.body);
    // Any method: 308 tells the client to repeat it, body and all, there.
    let r = send("POST", &host.url(&format!("/project/{PROJECT}/servers")), Some(&member()), Some(&json!({})));
    assert_eq!((r.status, r.header("location")), (308, Some(format!("/projects/{PROJECT}/servers").as_str())));
    let r = send("GET", &host.url(&format!("/server/{id}/tags")), Some(&member()), None);
    assert_eq!((r.status, r.header("location")), (308, Some(format!("/servers/{id}/tags").as_str())));
    // What is no route even when corrected stays the JSON 404.
    assert_error_shape(&send("GET", &host.url("/servers_tasks/"), Some(&member()), None), 404);
    assert_error_shape(&send("GET", &host.url("/servers_typo"), Some(&member()), None), 404);
}

#[test]
fn events_route_refuses_a_wrong_secret() {
    let host = Host::vnext();
    let r = send(
        "POST",
        &host.url("/internal/events"),
        None,
        Some(&json!({"task_id": "x", "server_id": "y", "seq": 1, "step_index": 0, "step_state": "RUNNING",
                     "operation_state": "RUNNING", "error": null, "server": null, "at": "2026-01-01T00:00:00Z"})),
    );
    assert_error_shape(&r, 401);
}
