//! The adapter's observations of servers between tasks (Nova's power-state
//! sync and reclaim), posted to the events route as the adapter posts them
//! (`{"observations": [...]}` with the events secret), on the real host
//! with the fake driver: what each changes on the server, what is ignored,
//! and what is refused. (tests/api/libvirt.rs sees the adapter send them
//! for real QEMU guests.)

use crate::harness::{Host, Resp, request, send, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const USER: &str = "8b2e7b4f-1111-4000-8000-000000000001";
const PROJECT: &str = "8b2e7b4f-2222-4000-8000-000000000002";
const ADMIN: &str = "8b2e7b4f-3333-4000-8000-000000000003";
const SECRET: &str = "observations-test-secret";

fn member() -> String {
    format!("{USER}:{PROJECT}")
}

fn admin() -> String {
    format!("{ADMIN}:{PROJECT}:admin")
}

fn observe(host: &Host, body: &Value) -> Resp {
    let headers = [("Content-Type", "application/json"), ("x-vnext-events-secret", SECRET)];
    request("POST", &host.url("/internal/events"), &headers, Some(&body.to_string()))
}

fn one(server: &str, power: &str, at: &str) -> Value {
    json!({"observations": [{"server_id": server, "power_state": power, "at": at}]})
}

fn server(host: &Host, id: &str) -> Value {
    let r = send("GET", &host.url(&format!("/servers/{id}")), Some(&admin()), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// An ACTIVE server of the fake driver, and the host.
fn active_server() -> (Host, String) {
    let host = Host::vnext_builder().arg("--events-secret").arg(SECRET).start();
    let body = json!({"name": "m1.observed", "visibility": "PUBLIC", "spec": {"memory_mb": 512, "cpu_units": 1}});
    let r = send("POST", &host.url("/server_types"), Some(&admin()), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    let type_id = r.json()["id"].as_str().unwrap().to_string();
    let launch = json!({"defaults": {"type_id": type_id}, "servers": [{"hostname": "observed-1"}]});
    let r = send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&launch));
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()[0]["id"].as_str().unwrap().to_string();
    wait_for("ACTIVE", Duration::from_secs(30), || (server(&host, &id)["virt_state"] == "ACTIVE").then_some(()));
    (host, id)
}

/// Later than anything the host wrote so far.
fn now() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 1000;
    let (secs, millis) = ((ms / 1000) as i64, ms % 1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = vnext_core::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

#[test]
fn a_guest_seen_powered_off_makes_its_server_stopped_and_stale_news_changes_nothing() {
    let (host, id) = active_server();
    let r = observe(&host, &one(&id, "SHUTDOWN", &now()));
    assert_eq!(r.status, 204, "{}", r.body);
    let s = server(&host, &id);
    assert_eq!((s["virt_state"].as_str(), s["power_state"].as_str()), (Some("STOPPED"), Some("SHUTDOWN")), "{s}");
    // Older than the server's last change: ignored.
    let r = observe(&host, &one(&id, "RUNNING", "2020-01-01T00:00:00Z"));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(server(&host, &id)["virt_state"], "STOPPED");
    // Started behind the API's back: ACTIVE again; a crash: STOPPED, CRASHED.
    observe(&host, &one(&id, "RUNNING", &now()));
    assert_eq!(server(&host, &id)["virt_state"], "ACTIVE");
    std::thread::sleep(Duration::from_millis(5));
    observe(&host, &one(&id, "CRASHED", &now()));
    let s = server(&host, &id);
    assert_eq!((s["virt_state"].as_str(), s["power_state"].as_str()), (Some("STOPPED"), Some("CRASHED")), "{s}");
    // A server this API does not know is skipped, not refused.
    let r = observe(&host, &one("8b2e7b4f-9999-4000-8000-000000000009", "SHUTDOWN", &now()));
    assert_eq!(r.status, 204, "{}", r.body);
}

#[test]
fn bad_observations_are_refused_in_the_error_shape_and_change_nothing() {
    let (host, id) = active_server();
    let before = server(&host, &id);
    for (body, field) in [
        (one(&id, "SHUTDOWN", "yesterday"), "at"),
        (one("not-a-uuid", "SHUTDOWN", &now()), "server_id"),
        (json!({"observations": [{"server_id": id, "power_state": "OFF", "at": now()}]}), ""),
        (json!({"observations": [{"server_id": id, "power_state": "SHUTDOWN", "at": now(), "extra": 1}]}), ""),
    ] {
        let r = observe(&host, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.json()["error"]["message"].is_string(), "{}", r.body);
        if !field.is_empty() {
            assert_eq!(r.json()["error"]["field"], field, "{}", r.body);
        }
    }
    let r = request("POST", &host.url("/internal/events"), &[("Content-Type", "application/json")], Some(&one(&id, "SHUTDOWN", &now()).to_string()));
    assert_eq!(r.status, 401, "no secret: {}", r.body);
    assert_eq!(server(&host, &id)["virt_state"], before["virt_state"]);
}

#[test]
fn a_reclaimed_server_stays_terminated_and_restore_is_409() {
    let (host, id) = active_server();
    let r = send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&member()), Some(&json!({"action": "TERMINATE"})));
    assert_eq!(r.status, 202, "{}", r.body);
    wait_for("TERMINATED", Duration::from_secs(30), || (server(&host, &id)["virt_state"] == "TERMINATED").then_some(()));
    assert_eq!(server(&host, &id)["_elevated"]["reclaimed_at"], Value::Null);
    let at = now();
    let r = observe(&host, &json!({"observations": [{"server_id": id, "power_state": "SHUTDOWN", "reclaimed": true, "at": at}]}));
    assert_eq!(r.status, 204, "{}", r.body);
    let s = server(&host, &id);
    assert_eq!(s["virt_state"], "TERMINATED");
    assert!(s["_elevated"]["reclaimed_at"].as_str().is_some_and(|t| t.starts_with(&at[..19])), "{s}");
    let member_view = send("GET", &host.url(&format!("/servers/{id}")), Some(&member()), None).json();
    assert_eq!(member_view["_elevated"], json!({}), "members do not see it");
    let r = send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&member()), Some(&json!({"action": "RESTORE"})));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("reclaimed"), "{}", r.body);
}
