//! The 2014 proposal's wire shapes, route by route: what a client written
//! against `../shared/seed/proposal-apiary.apib` relies on. Each test
//! walks one resource group on a fresh host and asserts, from the
//! proposal's examples, the status, the top-level JSON type, the collection
//! key, the fields the proposal shows with their JSON types, the headers,
//! and the JSON-Home relation and variable names. Values may differ (ids,
//! times); additions are allowed (the proposal's clients ignore them); a
//! missing field, a renamed key or a changed type fails here.
//!
//! Every answer is also validated against the schemas it names by the
//! harness (`harness::check_against_schemas`); `served_schemas_are_the_ones_the_tests_validate_with`
//! ties those schemas to what the host serves.

use crate::harness::{Host, Resp, request, send, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const USER: &str = "9e0f1a2b-1111-4000-8000-000000000001";
const PROJECT: &str = "9e0f1a2b-2222-4000-8000-000000000002";
const ADMIN: &str = "9e0f1a2b-3333-4000-8000-000000000003";
const TEMPLATE: &str = "fe48b370-a352-11e3-a5e2-0800200c9a66";
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(30);

fn member() -> String {
    format!("{USER}:{PROJECT}")
}

fn admin() -> String {
    format!("{ADMIN}:{PROJECT}:admin")
}

/// The JSON type of a value, as the proposal's examples show it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Num,
    Obj,
    Arr,
    /// `null` or a string (the proposal's example shows `null` for an open item).
    StrOrNull,
}

fn kind_ok(v: &Value, k: Kind) -> bool {
    match k {
        Kind::Str => v.is_string(),
        Kind::Num => v.is_number(),
        Kind::Obj => v.is_object(),
        Kind::Arr => v.is_array(),
        Kind::StrOrNull => v.is_string() || v.is_null(),
    }
}

/// Asserts that `v` has each `(JSON pointer, kind)` the proposal shows.
fn has(what: &str, v: &Value, fields: &[(&str, Kind)]) {
    for (pointer, kind) in fields {
        let got = v.pointer(pointer).unwrap_or_else(|| panic!("{what}: no {pointer} in {v}"));
        assert!(kind_ok(got, *kind), "{what}: {pointer} should be {kind:?}, is {got}");
    }
}

fn expect(r: Resp, status: u16, what: &str) -> Resp {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    r
}

/// The links every resource of the proposal carries.
const SELF_AND_SCHEMA: [(&str, Kind); 2] = [("/_links/self/href", Kind::Str), ("/_links/describedby/href", Kind::Str)];

fn public_type(host: &Host, name: &str) -> Value {
    let body = json!({
        "description": "A good enough server type", "name": name, "visibility": "PUBLIC", "tags": [],
        "spec": {"memory_mb": 1024, "root_disk_gb": 8, "cpu_units": 2, "rxtx_factor": 1.0, "swap_mb": 2048}
    });
    expect(send("POST", &host.url("/server_types"), Some(&admin()), Some(&body)), 201, "POST /server_types").json()
}

fn launch(host: &Host, body: &Value) -> Vec<Value> {
    let r = expect(send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(body)), 202, "launch");
    r.json().as_array().unwrap_or_else(|| panic!("the launch answer is a bare array: {}", r.body)).clone()
}

fn get(host: &Host, path: &str) -> Value {
    expect(send("GET", &host.url(path), Some(&member()), None), 200, path).json()
}

fn wait_virt_state(host: &Host, id: &str, state: &str) {
    wait_for(&format!("server {id} {state}"), ACTIVE_TIMEOUT, || {
        (get(host, &format!("/servers/{id}"))["virt_state"] == state).then_some(())
    });
}

/// `(relation, path template without the query, variables, methods)` of the
/// proposal's JSON-Home document, its typos (`/project/`, `/server/`)
/// fixed as the contract digest says.
const HOME: &[(&str, &str, &[&str], &[&str])] = &[
    ("rel/schemas", "/schemas", &[], &["GET"]),
    ("rel/schema", "/schemas/{object}", &["object"], &["GET"]),
    ("rel/placements", "/placements", &["limit", "marker", "tag", "parent_placement"], &["GET"]),
    ("rel/project", "/projects/{project_id}", &["project_id"], &["GET"]),
    ("rel/server_type", "/server_types/{server_type_id}", &["server_type_id"], &["GET", "PATCH"]),
    ("rel/server_type_by_name", "/server_types/{server_type_name}", &["server_type_name"], &["GET"]),
    ("rel/server_types", "/server_types", &["limit", "marker", "tag"], &["GET", "POST"]),
    ("rel/server_task", "/server_tasks/{server_task_id}", &["server_task_id"], &["GET"]),
    ("rel/server_tasks", "/servers/{server_id}/tasks", &["server_id", "limit", "marker", "since", "state"], &["GET", "POST"]),
    ("rel/server", "/servers/{server_id}", &["server_id"], &["GET", "HEAD", "PATCH"]),
    ("rel/servers", "/servers", &["limit", "marker", "since", "project", "virt_state", "power_state", "launched_by"], &["GET"]),
    ("rel/server_console_log", "/servers/{server_id}/console_log", &["server_id", "lines"], &["GET"]),
    ("rel/project_server", "/projects/{project_id}/servers/{server_hostname}", &["project_id", "server_hostname"], &["GET"]),
    (
        "rel/project_servers",
        "/projects/{project_id}/servers",
        &["project_id", "limit", "marker", "since", "virt_state", "power_state", "launched_by"],
        &["GET", "POST"],
    ),
];

#[test]
fn json_home_has_the_proposal_relations_variables_and_query_templates() {
    let host = Host::vnext();
    let r = expect(send("GET", &host.url("/"), None, None), 200, "GET /");
    assert_eq!(r.header("content-type"), Some("application/json-home"));
    let home = r.json();
    for (rel, path, vars, methods) in HOME {
        let res = &home["resources"][rel];
        assert!(res.is_object(), "{rel} is missing from JSON-Home");
        let href = res.get("href-template").or_else(|| res.get("href")).and_then(Value::as_str).unwrap_or_default();
        let (path_part, query_part) = href.split_once("{?").unwrap_or((href, ""));
        assert_eq!(path_part, *path, "{rel}");
        let query: Vec<&str> = query_part.trim_end_matches('}').split(',').filter(|q| !q.is_empty()).collect();
        for var in *vars {
            assert!(res["href-vars"].get(var).is_some() || href == *path && !path.contains('{'), "{rel}: no href-var {var}");
            if !path.contains(&format!("{{{var}}}")) {
                assert!(query.contains(var), "{rel}: {var} is not in the query template {href}");
            }
        }
        let allow: Vec<&str> = res["hints"]["allow"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        for m in *methods {
            assert!(allow.contains(m), "{rel}: {m} is not allowed ({allow:?})");
        }
        assert!(res["hints"]["formats"].get("application/json").is_some() || *rel == "rel/server_console_log", "{rel}");
    }
    // The proposal lists the schema both as JSON and as JSON Schema.
    assert!(home["resources"]["rel/schema"]["hints"]["formats"].get("application/schema+json").is_some());
}

#[test]
fn schemas_index_and_documents_follow_the_proposal() {
    let host = Host::vnext();
    let r = expect(send("GET", &host.url("/schemas"), None, None), 200, "GET /schemas");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let index = r.json();
    let entries = index.as_array().unwrap_or_else(|| panic!("GET /schemas is a bare array: {index}"));
    for entry in entries {
        has("a schema entry", entry, &[("/type", Kind::Str), ("/description", Kind::Str), ("/_links/rel~1schema/href", Kind::Str)]);
    }
    let types: Vec<&str> = entries.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for object in ["placement", "server_type", "server_task", "server_task_item", "server", "tag", "property"] {
        assert!(types.contains(&object), "the proposal's schema {object} is not listed");
        let href = &entries[types.iter().position(|t| *t == object).unwrap()]["_links"]["rel/schema"]["href"];
        assert_eq!(href, &json!(format!("/schemas/{object}")));
    }
    // The proposal's type by default and for `Accept: application/json`;
    // JSON Schema's own type when asked for.
    for (accept, want) in [
        (None, "application/json"),
        (Some("application/json"), "application/json"),
        (Some("application/schema+json"), "application/schema+json"),
        (Some("application/json+schema"), "application/schema+json"),
        (Some("application/json;q=0.5, application/schema+json;q=0.9"), "application/schema+json"),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let r = request("GET", &host.url("/schemas/server"), &headers, None);
        assert_eq!((r.status, r.header("content-type")), (200, Some(want)), "Accept {accept:?}");
        assert_eq!(r.json()["type"], "object");
    }
}

#[test]
fn served_schemas_are_the_ones_the_tests_validate_with() {
    let host = Host::vnext();
    for object in vnext_core::schemas::OBJECTS {
        let served = expect(send("GET", &host.url(&format!("/schemas/{object}")), None, None), 200, object).json();
        assert_eq!(Some(served), vnext_core::schemas::get(object), "/schemas/{object}");
    }
    // The response schemas are strict enough to mean something.
    for object in ["server", "server_type", "server_task", "server_task_item", "placement", "server_console", "diagnostics"] {
        assert!(vnext_core::schemas::validate(object, &json!({})).is_err(), "an empty object passes /schemas/{object}");
    }
}

#[test]
fn server_types_answer_in_the_proposal_shapes() {
    let host = Host::vnext();
    const TYPE: [(&str, Kind); 13] = [
        ("/description", Kind::Str), ("/id", Kind::Str), ("/name", Kind::Str), ("/shares/users", Kind::Arr),
        ("/shares/projects", Kind::Arr), ("/spec/memory_mb", Kind::Num), ("/spec/root_disk_gb", Kind::Num),
        ("/spec/cpu_units", Kind::Num), ("/tags", Kind::Arr), ("/visibility", Kind::Str),
        ("/_links/self/href", Kind::Str), ("/_links/tags/href", Kind::Str), ("/_links/describedby/href", Kind::Str),
    ];
    let created = public_type(&host, "good.enough");
    has("POST /server_types", &created, &TYPE);
    assert_eq!((&created["spec"]["rxtx_factor"], &created["spec"]["swap_mb"]), (&json!(1.0), &json!(2048)));
    let id = created["id"].as_str().unwrap();
    public_type(&host, "c1.xlarge");

    // A member who does not own the type sees `shares` too (empty lists).
    has("GET /server_types/{id}", &get(&host, &format!("/server_types/{id}")), &TYPE);
    has("GET /server_types/{name}", &get(&host, "/server_types/good.enough"), &TYPE);
    let page = get(&host, "/server_types?limit=1");
    assert_eq!(page["server_types"].as_array().map(Vec::len), Some(1), "{page}");
    has("a listed type", &page["server_types"][0], &TYPE);
    has("a page", &page, &[("/_links/self/href", Kind::Str), ("/_links/next/href", Kind::Str)]);

    let tags = format!("/server_types/{id}/tags");
    expect(send("PUT", &host.url(&tags), Some(&admin()), Some(&json!(["general-purpose", "generic"]))), 204, "PUT tags");
    assert_eq!(get(&host, &tags), json!(["general-purpose", "generic"]), "GET tags is a bare array");
    expect(send("PUT", &host.url(&format!("{tags}/hpc")), Some(&admin()), None), 204, "PUT one tag");
    expect(send("DELETE", &host.url(&format!("{tags}/hpc")), Some(&admin()), None), 204, "DELETE one tag");
    expect(send("DELETE", &host.url(&tags), Some(&admin()), None), 204, "DELETE tags");
    assert_eq!(get(&host, &tags), json!([]));

    let shares = format!("/server_types/{id}/shares");
    let body = json!({"users": ["60536efb-2e6e-4efc-9d39-fe8113292e52"], "projects": []});
    expect(send("PUT", &host.url(&shares), Some(&admin()), Some(&body)), 204, "PUT shares");
    let got = expect(send("GET", &host.url(&shares), Some(&admin()), None), 200, "GET shares").json();
    has("GET shares", &got, &[("/users", Kind::Arr), ("/projects", Kind::Arr)]);
    assert_eq!(got["users"], body["users"]);
    let user_share = format!("{shares}/users/781247cf-7bec-4e84-86ea-3cbcee48ae6d");
    let project_share = format!("{shares}/projects/fd2ab3c0-d822-437f-b956-9e60e7d0fb69");
    for path in [&user_share, &project_share] {
        expect(send("PUT", &host.url(path), Some(&admin()), None), 204, path);
        expect(send("DELETE", &host.url(path), Some(&admin()), None), 204, path);
    }
    expect(send("DELETE", &host.url(&shares), Some(&admin()), None), 204, "DELETE shares");

    let patch = json!({"description": "A good enough server type", "name": "good.enough",
        "spec": {"memory_mb": 1024, "root_disk_gb": 8, "cpu_units": 2, "rxtx_factor": 1.0, "swap_mb": 2048}, "visibility": "PUBLIC"});
    expect(send("PATCH", &host.url(&format!("/server_types/{id}")), Some(&admin()), Some(&patch)), 204, "PATCH");
    expect(send("DELETE", &host.url(&format!("/server_types/{id}")), Some(&admin()), None), 204, "DELETE");
}

/// The fields the proposal's server list items show.
const SERVER_SUMMARY: [(&str, Kind); 16] = [
    ("/hostname", Kind::Str), ("/id", Kind::Str), ("/launched_at", Kind::Str), ("/launched_by", Kind::Str),
    ("/power_state", Kind::Str), ("/project_id", Kind::Str), ("/placement_id", Kind::Str),
    ("/spec/memory_mb", Kind::Num), ("/spec/root_disk_gb", Kind::Num), ("/spec/cpu_units", Kind::Num),
    ("/template_id", Kind::Str), ("/virt_state", Kind::Str), ("/_elevated", Kind::Obj),
    ("/_links/self/href", Kind::Str), ("/_links/describedby/href", Kind::Str), ("/_links/rel~1server_tasks/href", Kind::Str),
];

/// What `GET /servers/{id}` adds to a list item.
const SERVER_FULL: [(&str, Kind); 8] = [
    ("/block_devices", Kind::Arr), ("/launch_keypair_id", Kind::StrOrNull), ("/networking/access/ip4", Kind::Arr),
    ("/networking/access/ip6", Kind::Arr), ("/networking/interfaces", Kind::Arr), ("/properties", Kind::Obj),
    ("/tags", Kind::Arr), ("/virt_state", Kind::Str),
];

const POWER_STATES: [&str; 5] = ["RUNNING", "PAUSED", "SHUTDOWN", "CRASHED", "SUSPENDED"];

/// Both state headers, always, with values of the proposal's enums.
fn head_states(host: &Host, id: &str) -> (String, String) {
    let r = expect(send("HEAD", &host.url(&format!("/servers/{id}")), Some(&member()), None), 200, "HEAD");
    let virt = r.header("x-openstack-compute-server-virt-state").expect("virt state header").to_string();
    let power = r.header("x-openstack-compute-server-power-state").unwrap_or_else(|| panic!("no power state header ({virt})")).to_string();
    assert!(POWER_STATES.contains(&power.as_str()), "{power}");
    (virt, power)
}

#[test]
fn servers_answer_in_the_proposal_shapes() {
    let host = Host::vnext();
    let type_id = public_type(&host, "m1.micro")["id"].as_str().unwrap().to_string();
    // A server to keep away from, as in the proposal's launch example.
    let other = launch(&host, &json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": [{"hostname": "other-1"}]}));
    let other_id = other[0]["id"].as_str().unwrap().to_string();
    wait_virt_state(&host, &other_id, "ACTIVE");

    // The proposal's own launch body (typos fixed): `near` a tag no server
    // carries yet places freely; the answer is a bare array in request order.
    let body = json!({
        "defaults": {
            "affinity": {
                "near": {"server_ids": [], "server_tags": ["general"]},
                "not_near": {"server_ids": [other_id], "server_tags": []}
            },
            "hostname_pattern": "app-server-%(rand_num)5d",
            "keypair_id": "cffd003d-ca59-4be6-856e-054a98ac3567",
            "template_id": TEMPLATE,
            "type_id": type_id,
            "user_data": "IyEvYmluL3NoCmVjaG8gPT09PT09PT09IEhFTExPID09PT09"
        },
        "servers": [
            {"hostname": "app-server-1", "keypair_id": "5b3866b9-77d7-4afc-a095-e400919ade97"},
            {"hostname": "app-server-2"}
        ]
    });
    let launched = launch(&host, &body);
    assert_eq!(launched.len(), 2);
    for entry in &launched {
        has("a launch entry", entry, &[("/id", Kind::Str), ("/launched_at", Kind::Str), ("/_links/rel~1server_tasks/href", Kind::Str)]);
        has("a launch entry", entry, &SELF_AND_SCHEMA);
    }
    assert_eq!(launched[0]["hostname"], "app-server-1", "request order");
    let id = launched[0]["id"].as_str().unwrap().to_string();

    // Straight after the launch (BUILDING or already further), both states
    // and the placement are there, with the proposal's types.
    let early = get(&host, &format!("/servers/{id}"));
    has("GET /servers/{id} at once", &early, &SERVER_SUMMARY);
    head_states(&host, &id);
    wait_virt_state(&host, &id, "ACTIVE");
    assert_eq!(head_states(&host, &id), ("ACTIVE".to_string(), "RUNNING".to_string()));
    let server = get(&host, &format!("/servers/{id}"));
    has("GET /servers/{id}", &server, &SERVER_SUMMARY);
    has("GET /servers/{id}", &server, &SERVER_FULL);
    assert_eq!(server["hostname"], "app-server-1");
    assert_eq!(server["launch_keypair_id"], "5b3866b9-77d7-4afc-a095-e400919ade97");
    let by_name = get(&host, &format!("/projects/{PROJECT}/servers/app-server-1"));
    has("GET /projects/{p}/servers/{hostname}", &by_name, &SERVER_SUMMARY);
    assert_eq!(by_name["id"], server["id"]);

    // A launch that fails still shows a power state from the enum.
    let failed = launch(&host, &json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": [{"hostname": "fail-1"}]}));
    let failed_id = failed[0]["id"].as_str().unwrap().to_string();
    wait_virt_state(&host, &failed_id, "ERROR");
    assert_eq!(head_states(&host, &failed_id), ("ERROR".to_string(), "SHUTDOWN".to_string()));
    assert!(get(&host, &format!("/servers/{failed_id}"))["placement_id"].is_string());

    // Lists: `servers`, summary items, ACTIVE and RUNNING by default.
    let app2 = launched[1]["id"].as_str().unwrap();
    wait_virt_state(&host, app2, "ACTIVE");
    for path in [format!("/projects/{PROJECT}/servers"), "/servers".to_string()] {
        let list = get(&host, &path);
        let items = list["servers"].as_array().unwrap_or_else(|| panic!("{path}: no `servers`: {list}"));
        for item in items {
            has(&path, item, &SERVER_SUMMARY);
            assert_eq!((&item["virt_state"], &item["power_state"]), (&json!("ACTIVE"), &json!("RUNNING")), "{path}: default filters");
        }
        let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&id.as_str()) && !ids.contains(&failed_id.as_str()), "{path}: {ids:?}");
        has(&path, &list, &[("/_links/self/href", Kind::Str)]);
        let all = get(&host, &format!("{path}?virt_state=ANY&limit=1"));
        assert_eq!(all["servers"].as_array().map(Vec::len), Some(1));
        assert!(all["_links"]["next"]["href"].as_str().unwrap().contains("virt_state=ANY"), "{all}");
        let errors = get(&host, &format!("{path}?virt_state=ERROR"));
        assert_eq!(errors["servers"][0]["id"], json!(failed_id), "a named state filter replaces both defaults");
    }
    // `since` is about the launch: servers launched at or after the time.
    let at = server["launched_at"].as_str().unwrap();
    let since = get(&host, &format!("/servers?virt_state=ANY&since={at}"));
    let ids: Vec<&str> = since["servers"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&id.as_str()) && !ids.contains(&other_id.as_str()), "{ids:?}");

    // Tags are bare arrays; PUT takes the proposal's array.
    let tags = format!("/servers/{id}/tags");
    expect(send("PUT", &host.url(&tags), Some(&member()), Some(&json!(["general-purpose", "generic"]))), 204, "PUT tags");
    assert_eq!(get(&host, &tags), json!(["general-purpose", "generic"]));
    expect(send("PUT", &host.url(&format!("{tags}/linux")), Some(&member()), None), 204, "PUT tag");
    expect(send("DELETE", &host.url(&format!("{tags}/linux")), Some(&member()), None), 204, "DELETE tag");
    expect(send("DELETE", &host.url(&tags), Some(&member()), None), 204, "DELETE tags");

    // The next server of the group lands near the tagged one.
    expect(send("PUT", &host.url(&format!("{tags}/general")), Some(&member()), None), 204, "tag general");
    let near = json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE, "affinity": {"near": {"server_tags": ["general"]}}}, "servers": [{"hostname": "app-server-3"}]});
    let third = launch(&host, &near)[0]["id"].as_str().unwrap().to_string();
    wait_virt_state(&host, &third, "ACTIVE");
    let node = |s: &str| {
        let r = expect(send("GET", &host.url(&format!("/servers/{s}")), Some(&admin()), None), 200, "admin GET");
        r.json()["_elevated"]["compute_node_hostname"].clone()
    };
    assert_eq!(node(&third), node(&id), "near the server carrying the tag");

    // PATCH, console log, consoles.
    let patch = json!({"project_id": PROJECT, "hostname": "new-example-server-2"});
    expect(send("PATCH", &host.url(&format!("/servers/{id}")), Some(&member()), Some(&patch)), 204, "PATCH");
    let log = expect(send("GET", &host.url(&format!("/servers/{id}/console_log?lines=2")), Some(&member()), None), 200, "console log");
    assert!(log.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{:?}", log.header("content-type"));
    let console = get(&host, &format!("/servers/{id}/consoles/novnc"));
    has("a console", &console, &[("/uri", Kind::Str), ("/_links/self/href", Kind::Str)]);
}

#[test]
fn tasks_and_items_answer_in_the_proposal_shapes() {
    let host = Host::vnext();
    let type_id = public_type(&host, "m1.tasks")["id"].as_str().unwrap().to_string();
    let id = launch(&host, &json!({"defaults": {"type_id": type_id}, "servers": [{"hostname": "task-1"}]}))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_virt_state(&host, &id, "ACTIVE");
    const TASK: [(&str, Kind); 9] = [
        ("/action", Kind::Str), ("/created_at", Kind::Str), ("/created_by", Kind::Str), ("/id", Kind::Str),
        ("/server_id", Kind::Str), ("/state", Kind::Str), ("/_links/self/href", Kind::Str),
        ("/_links/describedby/href", Kind::Str), ("/_links/rel~1server_task_items/href", Kind::Str),
    ];
    let r = send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&member()), Some(&json!({"action": "REBOOT"})));
    let task = expect(r, 202, "POST task").json();
    has("POST /servers/{id}/tasks", &task, &TASK);
    assert_eq!((&task["action"], &task["state"]), (&json!("REBOOT"), &json!("RUNNING")));
    let task_id = task["id"].as_str().unwrap().to_string();
    has("GET /server_tasks/{id}", &get(&host, &format!("/server_tasks/{task_id}")), &TASK);
    wait_for("the REBOOT to end", ACTIVE_TIMEOUT, || {
        (get(&host, &format!("/server_tasks/{task_id}"))["state"] == "COMPLETED").then_some(())
    });

    let list = get(&host, &format!("/servers/{id}/tasks?limit=1"));
    let tasks = list["tasks"].as_array().unwrap_or_else(|| panic!("tasks are listed under `tasks`: {list}"));
    has("a listed task", &tasks[0], &TASK);
    assert_eq!(tasks[0]["id"], json!(task_id), "newest first");
    has("the page", &list, &[("/_links/self/href", Kind::Str), ("/_links/next/href", Kind::Str)]);
    // `since` is about the start: the REBOOT, not the CREATE before it.
    let since = get(&host, &format!("/servers/{id}/tasks?since={}", task["created_at"].as_str().unwrap()));
    let actions: Vec<&Value> = since["tasks"].as_array().unwrap().iter().map(|t| &t["action"]).collect();
    assert_eq!(actions, [&json!("REBOOT")]);

    const ITEM: [(&str, Kind); 7] = [
        ("/action", Kind::Str), ("/created_at", Kind::Str), ("/ended_at", Kind::StrOrNull), ("/id", Kind::Str),
        ("/task_id", Kind::Str), ("/started_at", Kind::StrOrNull), ("/state", Kind::Str),
    ];
    let create = &get(&host, &format!("/servers/{id}/tasks?state=COMPLETED"))["tasks"].as_array().unwrap().last().unwrap().clone();
    let items_path = format!("/server_tasks/{}/items", create["id"].as_str().unwrap());
    let page = get(&host, &format!("{items_path}?limit=2"));
    let items = page["items"].as_array().unwrap_or_else(|| panic!("items are listed under `items`: {page}"));
    assert_eq!(items.len(), 2);
    for item in items {
        has("an item", item, &ITEM);
        has("an item", item, &SELF_AND_SCHEMA);
        assert!(item["started_at"].is_string() && item["ended_at"].is_string(), "a completed item has both times: {item}");
        let one = get(&host, item["_links"]["self"]["href"].as_str().unwrap());
        assert_eq!(&one, item, "an item's self link answers the item");
    }
    assert_eq!((&items[0]["action"], &items[1]["action"]), (&json!("SCHEDULING"), &json!("BLOCK_DEVICE_MAPPING")));
    has("the page", &page, &[("/_links/self/href", Kind::Str), ("/_links/next/href", Kind::Str)]);
    // The proposal's spelling of the route is redirected to it.
    let typo = send("GET", &host.url(&format!("/servers_tasks/{}/items?limit=2", create["id"].as_str().unwrap())), Some(&member()), None);
    assert_eq!((typo.status, typo.header("location")), (308, Some(format!("{items_path}?limit=2").as_str())));
}

#[test]
fn placements_and_projects_answer_in_the_proposal_shapes() {
    let host = Host::vnext();
    let page = get(&host, "/placements?limit=2");
    let items = page["placements"].as_array().unwrap_or_else(|| panic!("{page}"));
    assert_eq!(items.len(), 2);
    for p in items {
        has("a placement", p, &[
            ("/description", Kind::Str), ("/id", Kind::Str), ("/name", Kind::Str), ("/properties", Kind::Obj),
            ("/tags", Kind::Arr), ("/_links/self/href", Kind::Str), ("/_links/children/href", Kind::Str),
            ("/_links/describedby/href", Kind::Str),
        ]);
        assert!(p["parent_placement_id"].is_null() || p["parent_placement_id"].is_string());
    }
    has("the page", &page, &[("/_links/self/href", Kind::Str), ("/_links/next/href", Kind::Str)]);
    let project = get(&host, &format!("/projects/{PROJECT}"));
    assert_eq!(project["_links"]["rel/project_servers"]["href"], format!("/projects/{PROJECT}/servers"));
}
