//! The collection routes over their key-value indexes: server types,
//! both server lists, a server's task history. Paging across pages,
//! filters, visibility between two projects and an admin, bad
//! `limit`/`marker`/filters as 400, and appends racing on one index.

use crate::harness::{Host, send, wait_for};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const USER_A: &str = "7a1d6a3e-1111-4000-8000-00000000000a";
const PROJECT_A: &str = "7a1d6a3e-2222-4000-8000-00000000000a";
const USER_B: &str = "7a1d6a3e-1111-4000-8000-00000000000b";
const PROJECT_B: &str = "7a1d6a3e-2222-4000-8000-00000000000b";
const ADMIN: &str = "7a1d6a3e-3333-4000-8000-000000000003";
const TEMPLATE: &str = "7a1d6a3e-4444-4000-8000-000000000004";

fn a() -> String {
    format!("{USER_A}:{PROJECT_A}")
}
fn b() -> String {
    format!("{USER_B}:{PROJECT_B}")
}
fn admin() -> String {
    format!("{ADMIN}:{PROJECT_A}:admin")
}

fn new_type(host: &Host, token: &str, body: Value) -> String {
    let r = send("POST", &host.url("/server_types"), Some(token), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

fn public_type(host: &Host, name: &str) -> String {
    new_type(host, &admin(), json!({"name": name, "visibility": "PUBLIC", "spec": {"memory_mb": 64, "cpu_units": 1}}))
}

/// Launches `n` servers in `project` with hostnames `{prefix}-{i}`; their ids in order.
fn launch(host: &Host, token: &str, project: &str, type_id: &str, prefix: &str, n: usize) -> Vec<String> {
    let servers: Vec<Value> = (0..n).map(|i| json!({"hostname": format!("{prefix}-{i}")})).collect();
    let body = json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": servers});
    let r = send("POST", &host.url(&format!("/projects/{project}/servers")), Some(token), Some(&body));
    assert_eq!(r.status, 202, "{}", r.body);
    r.json().as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

/// Every item of a collection, following `_links.next`; checks each page's size.
fn walk(host: &Host, token: &str, first: &str, key: &str, limit: usize) -> Vec<Value> {
    let mut url = host.url(first);
    let mut all = Vec::new();
    loop {
        let r = send("GET", &url, Some(token), None);
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        let body = r.json();
        let items = body[key].as_array().unwrap_or_else(|| panic!("{key} in {body}")).clone();
        assert!(items.len() <= limit, "{} items on a page of {limit}", items.len());
        let next = body["_links"]["next"]["href"].as_str().map(str::to_string);
        if next.is_some() {
            assert_eq!(items.len(), limit, "only the last page may be short");
        }
        all.extend(items);
        match next {
            Some(href) => url = host.url(&href),
            None => return all,
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

fn status(host: &Host, token: &str, path: &str) -> (u16, Value) {
    let r = send("GET", &host.url(path), Some(token), None);
    (r.status, if r.body.is_empty() { Value::Null } else { r.json() })
}

#[test]
fn server_lists_page_in_launch_order_and_stay_within_the_project() {
    let host = Host::vnext();
    let t = public_type(&host, "list-small");
    let mine = launch(&host, &a(), PROJECT_A, &t, "a", 7);
    let theirs = launch(&host, &b(), PROJECT_B, &t, "b", 3);

    // The servers may still be BUILDING: list them in any state.
    for limit in [1, 3, 7, 20] {
        let got = walk(&host, &a(), &format!("/projects/{PROJECT_A}/servers?limit={limit}&virt_state=ANY"), "servers", limit);
        assert_eq!(ids(&got), mine, "limit {limit}");
    }
    // `/servers` for a member: its own project only.
    assert_eq!(ids(&walk(&host, &a(), "/servers?limit=2&virt_state=ANY", "servers", 2)), mine);
    assert_eq!(ids(&walk(&host, &b(), "/servers?virt_state=ANY", "servers", 20)), theirs);
    // Admin: everything in creation order, or one project.
    let all = ids(&walk(&host, &admin(), "/servers?limit=4&virt_state=ANY", "servers", 4));
    assert_eq!(all, [mine.clone(), theirs.clone()].concat());
    let only_b = ids(&walk(&host, &admin(), &format!("/servers?project={PROJECT_B}&limit=2&virt_state=ANY"), "servers", 2));
    assert_eq!(only_b, theirs);
    let both =
        ids(&walk(&host, &admin(), &format!("/servers?project={PROJECT_B}&project={PROJECT_A}&virt_state=ANY"), "servers", 20));
    assert_eq!(both.len(), 10);

    // Summary items: no networking or block devices.
    let first = &walk(&host, &a(), &format!("/projects/{PROJECT_A}/servers?limit=1&virt_state=ANY"), "servers", 1)[0];
    assert!(first.get("networking").is_none() && first.get("block_devices").is_none(), "{first}");
    assert_eq!(first["hostname"], "a-0");
    assert_eq!(first["_links"]["self"]["href"], format!("/servers/{}", mine[0]));
}

#[test]
fn server_list_filters_and_their_400s() {
    let host = Host::vnext();
    let t = public_type(&host, "filter-small");
    let mine = launch(&host, &a(), PROJECT_A, &t, "f", 3);
    wait_for("all ACTIVE", Duration::from_secs(30), || {
        let (_, body) = status(&host, &a(), "/servers?virt_state=ACTIVE");
        (body["servers"].as_array().map(Vec::len) == Some(3)).then_some(())
    });
    let first_launch = send("GET", &host.url(&format!("/servers/{}", mine[0])), Some(&a()), None).json()["launched_at"].clone();
    let before_pause = send("GET", &host.url(&format!("/servers/{}", mine[1])), Some(&a()), None).json()["launched_at"].clone();
    let r = send("POST", &host.url(&format!("/servers/{}/tasks", mine[1])), Some(&a()), Some(&json!({"action": "PAUSE"})));
    assert_eq!(r.status, 202, "{}", r.body);
    // After every launch, before the pause changed mine[1].
    let pause_created = r.json()["created_at"].as_str().unwrap().to_string();
    wait_for("paused", Duration::from_secs(30), || {
        let (_, body) = status(&host, &a(), "/servers?virt_state=PAUSED");
        (ids(body["servers"].as_array().unwrap()) == [mine[1].clone()]).then_some(())
    });
    let r = send("PUT", &host.url(&format!("/servers/{}/tags/web", mine[2])), Some(&a()), None);
    assert_eq!(r.status, 204, "{}", r.body);

    let list = |q: &str| ids(status(&host, &a(), &format!("/projects/{PROJECT_A}/servers?{q}")).1["servers"].as_array().unwrap());
    // Without a state filter: the servers that are up (ACTIVE and RUNNING).
    assert_eq!(list("limit=20"), [mine[0].clone(), mine[2].clone()]);
    assert_eq!(list("virt_state=ANY"), mine, "ANY drops the default");
    assert_eq!(list("power_state=ANY"), mine);
    assert_eq!(list("power_state=PAUSED"), [mine[1].clone()]);
    assert_eq!(list("power_state=RUNNING"), [mine[0].clone(), mine[2].clone()]);
    assert_eq!(list("virt_state=PAUSED&virt_state=ACTIVE").len(), 3, "OR within one filter");
    assert_eq!(list("virt_state=PAUSED&power_state=RUNNING"), Vec::<String>::new(), "AND across filters");
    assert_eq!(list(&format!("launched_by={USER_A}&virt_state=ANY")).len(), 3);
    assert_eq!(list("tag=web&tag=db"), [mine[2].clone()]);
    // `changes_since` is "changed since": every server changed at or after its launch, none in the future.
    assert_eq!(list(&format!("changes_since={}&virt_state=ANY", before_pause.as_str().unwrap())).len(), 3);
    assert_eq!(list("changes_since=2999-01-01T00:00:00Z&virt_state=ANY"), Vec::<String>::new());
    assert!(list(&format!("changes_since={pause_created}&virt_state=ANY")).contains(&mine[1]), "paused after");
    // `since` is "launched since": all at or after the first launch, none after the pause began.
    assert_eq!(list(&format!("since={}&virt_state=ANY", first_launch.as_str().unwrap())), mine);
    assert_eq!(list(&format!("since={pause_created}&virt_state=ANY")), Vec::<String>::new());
    assert_eq!(list("since=2999-01-01T00:00:00Z&virt_state=ANY"), Vec::<String>::new());

    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("marker=0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011", "marker"),
        ("virt_state=RUNNING", "virt_state"),
        ("power_state=ACTIVE", "power_state"),
        ("virt_state=ANY&virt_state=RUNNING", "virt_state"),
        ("since=yesterday", "since"),
        ("changes_since=yesterday", "changes_since"),
        ("launched_by=not-a-uuid", "launched_by"),
        ("colour=blue", "colour"),
        (&format!("launched_by={USER_B}"), "launched_by"),
    ] {
        let (code, body) = status(&host, &a(), &format!("/projects/{PROJECT_A}/servers?{q}"));
        assert_eq!((code, body["error"]["field"].as_str()), (400, Some(field)), "{q}: {body}");
    }
    // The 400 for an unknown state lists the accepted values, ANY among them.
    let (_, body) = status(&host, &a(), &format!("/projects/{PROJECT_A}/servers?virt_state=RUNNING"));
    assert!(body["error"]["message"].as_str().unwrap().contains("ANY"), "{body}");
    // A member naming another project on /servers: 400, not an empty list.
    let (code, body) = status(&host, &a(), &format!("/servers?project={PROJECT_B}"));
    assert_eq!((code, body["error"]["field"].as_str()), (400, Some("project")), "{body}");
    // Another project's list: 404 for a member, 200 for an admin.
    assert_eq!(status(&host, &b(), &format!("/projects/{PROJECT_A}/servers")).0, 404);
    assert_eq!(status(&host, &admin(), &format!("/projects/{PROJECT_B}/servers")).0, 200);
    // A marker of one collection is not a marker of another.
    let (code, _) = status(&host, &admin(), &format!("/projects/{PROJECT_B}/servers?marker={}", mine[0]));
    assert_eq!(code, 400);
    // No token: 401.
    assert_eq!(send("GET", &host.url("/servers"), None, None).status, 401);
}

#[test]
fn server_type_list_shows_what_the_caller_may_see() {
    let host = Host::vnext();
    let public = public_type(&host, "pub-1");
    let own_a = new_type(&host, &a(), json!({"name": "a-private", "spec": {"memory_mb": 64, "cpu_units": 1}, "tags": ["gpu"]}));
    let own_b = new_type(&host, &b(), json!({"name": "b-private", "spec": {"memory_mb": 64, "cpu_units": 1}}));
    let shared_b = new_type(&host, &b(), json!({"name": "b-shared", "spec": {"memory_mb": 64, "cpu_units": 1}, "tags": ["gpu"]}));
    let r = send("PUT", &host.url(&format!("/server_types/{shared_b}/shares/projects/{PROJECT_A}")), Some(&b()), None);
    assert_eq!(r.status, 204, "{}", r.body);

    let seen_by_a = ids(&walk(&host, &a(), "/server_types?limit=1", "server_types", 1));
    assert_eq!(seen_by_a, [public.clone(), own_a.clone(), shared_b.clone()]);
    let seen_by_b = ids(&walk(&host, &b(), "/server_types?limit=2", "server_types", 2));
    assert_eq!(seen_by_b, [public.clone(), own_b.clone(), shared_b.clone()]);
    assert_eq!(ids(&walk(&host, &admin(), "/server_types", "server_types", 20)).len(), 4);
    assert_eq!(ids(&walk(&host, &a(), "/server_types?tag=gpu", "server_types", 20)), [own_a.clone(), shared_b.clone()]);

    // A deleted type leaves the list; its id is no longer a marker.
    assert_eq!(send("DELETE", &host.url(&format!("/server_types/{own_a}")), Some(&a()), None).status, 204);
    assert_eq!(ids(&walk(&host, &a(), "/server_types", "server_types", 20)), [public, shared_b]);
    let (code, body) = status(&host, &a(), &format!("/server_types?marker={own_a}"));
    assert_eq!((code, body["error"]["field"].as_str()), (400, Some("marker")));
    let (code, body) = status(&host, &a(), "/server_types?tag=");
    assert_eq!((code, body["error"]["field"].as_str()), (400, Some("tag")));
}

#[test]
fn task_history_is_newest_first_and_pages() {
    let host = Host::vnext();
    let t = public_type(&host, "hist-small");
    let id = launch(&host, &a(), PROJECT_A, &t, "h", 1).remove(0);
    let mut started = Vec::new();
    for action in ["LOCK", "UNLOCK", "LOCK", "UNLOCK"] {
        let r = send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&a()), Some(&json!({"action": action})));
        assert_eq!(r.status, 202, "{action}: {}", r.body);
        started.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let history = walk(&host, &a(), &format!("/servers/{id}/tasks?limit=2"), "tasks", 2);
    let actions: Vec<&str> = history.iter().map(|t| t["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["UNLOCK", "LOCK", "UNLOCK", "LOCK", "CREATE"]);
    started.reverse();
    assert_eq!(ids(&history)[..4], started[..]);
    let (_, body) = status(&host, &a(), &format!("/servers/{id}/tasks?state=COMPLETED&limit=1000"));
    assert!(body["tasks"].as_array().unwrap().len() >= 4);
    assert_eq!(status(&host, &b(), &format!("/servers/{id}/tasks")).0, 404);
}

#[test]
fn concurrent_launches_all_land_in_the_lists() {
    let host = Host::vnext();
    let t = public_type(&host, "race-small");
    let launched: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (host, t) = (&host, &t);
                s.spawn(move || launch(host, &a(), PROJECT_A, t, &format!("race{i}"), 3))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let expected: BTreeSet<String> = launched.into_iter().flatten().collect();
    // Just launched: BUILDING or ACTIVE, so any state.
    let listed = ids(&walk(&host, &a(), &format!("/projects/{PROJECT_A}/servers?limit=5&virt_state=ANY"), "servers", 5));
    assert_eq!(listed.len(), expected.len(), "no id lost or doubled");
    assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(ids(&walk(&host, &admin(), "/servers?limit=1000&virt_state=ANY", "servers", 1000)).len(), 24);
}
