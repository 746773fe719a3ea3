//! Server types over HTTP: CRUD, lookup by name, visibility, tags and shares
//! between two projects and an admin.
//!
//! The callers: members of project A (two users: a type belongs to its
//! creator's project, so both own A's types), a member of project B, a
//! second member of B, the B user acting in a third project C, a member of
//! C, and an admin. Every refusal is checked in the one error body shape
//! (`{"error": {"code", "title", "message", "field"?}}`).

use crate::harness::{Host, Resp, send};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const USER_A: &str = "5e7e0000-1111-4000-8000-00000000000a";
const USER_A2: &str = "5e7e0000-1111-4000-8000-0000000000a2";
const PROJECT_A: &str = "5e7e0000-2222-4000-8000-00000000000a";
const USER_B: &str = "5e7e0000-1111-4000-8000-00000000000b";
const USER_B2: &str = "5e7e0000-1111-4000-8000-0000000000b2";
const PROJECT_B: &str = "5e7e0000-2222-4000-8000-00000000000b";
const USER_C: &str = "5e7e0000-1111-4000-8000-00000000000c";
const PROJECT_C: &str = "5e7e0000-2222-4000-8000-00000000000c";
const ADMIN: &str = "5e7e0000-3333-4000-8000-000000000003";
const TEMPLATE: &str = "5e7e0000-4444-4000-8000-000000000004";

// ------------------------------------------------------------------ callers

fn token(user: &str, project: &str) -> String {
    format!("{user}:{project}")
}
fn a() -> String {
    token(USER_A, PROJECT_A)
}
/// Another member of project A: an owner of A's types too.
fn a2() -> String {
    token(USER_A2, PROJECT_A)
}
fn b() -> String {
    token(USER_B, PROJECT_B)
}
/// Another member of project B (sees project shares, not user shares of USER_B).
fn b2() -> String {
    token(USER_B2, PROJECT_B)
}
/// USER_B acting in project C (sees user shares of USER_B, not project shares of B).
fn b_in_c() -> String {
    token(USER_B, PROJECT_C)
}
/// A member of project C, with which nothing is shared.
fn c() -> String {
    token(USER_C, PROJECT_C)
}
fn admin() -> String {
    format!("{ADMIN}:{PROJECT_C}:admin")
}

// ------------------------------------------------------------------ requests

fn type_path(key: &str) -> String {
    format!("/server_types/{key}")
}

fn call(host: &Host, method: &str, token: &str, path: &str, body: Option<&Value>) -> Resp {
    send(method, &host.url(path), Some(token), body)
}

fn get(host: &Host, token: &str, path: &str) -> Resp {
    call(host, "GET", token, path, None)
}

fn create(host: &Host, token: &str, body: &Value) -> Resp {
    call(host, "POST", token, "/server_types", Some(body))
}

/// Creates a type and returns its body as the creator sees it.
fn create_ok(host: &Host, token: &str, body: &Value) -> Value {
    let r = create(host, token, body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn small(name: &str) -> Value {
    json!({"name": name, "spec": {"memory_mb": 512, "cpu_units": 1}})
}

/// A PRIVATE type of the caller's project; its id.
fn private_type(host: &Host, token: &str, name: &str) -> String {
    create_ok(host, token, &small(name))["id"].as_str().unwrap().to_string()
}

/// A PUBLIC type created by the admin; its id.
fn public_type(host: &Host, name: &str) -> String {
    let mut body = small(name);
    body["visibility"] = json!("PUBLIC");
    create_ok(host, &admin(), &body)["id"].as_str().unwrap().to_string()
}

/// Asserts a success without a body.
fn assert_204(r: &Resp, what: &str) {
    assert_eq!(r.status, 204, "{what}: {}", r.body);
    assert!(r.body.is_empty(), "{what}: 204 with a body: {}", r.body);
}

/// Asserts an error in the one JSON shape: `code` is the status, `title`
/// its reason phrase, a non-empty `message`, and `field` exactly as given
/// (absent when `None`).
fn assert_error(r: &Resp, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", r.headers);
    assert!(r.header("x-openstack-request-id").is_some_and(|id| !id.is_empty()), "{:?}", r.headers);
    let body = r.json();
    let top: Vec<&String> = body.as_object().unwrap_or_else(|| panic!("{body}")).keys().collect();
    assert_eq!(top, ["error"], "{body}");
    let e = &body["error"];
    let title = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => panic!("unexpected status {status}"),
    };
    assert_eq!(e["code"], status, "{body}");
    assert_eq!(e["title"], title, "{body}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    match field {
        Some(f) => {
            assert_eq!(e["field"], f, "{body}");
            assert_eq!(keys, ["code", "field", "message", "title"], "{body}");
        }
        None => assert_eq!(keys, ["code", "message", "title"], "{body}"),
    }
}

/// Every item of a collection, following `_links.next`; checks page sizes.
fn walk(host: &Host, token: &str, first: &str, limit: usize) -> Vec<Value> {
    let mut path = first.to_string();
    let mut all = Vec::new();
    loop {
        let r = get(host, token, &path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let body = r.json();
        let items = body["server_types"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
        assert!(items.len() <= limit, "{} items on a page of {limit}", items.len());
        let next = body["_links"]["next"]["href"].as_str().map(str::to_string);
        if next.is_some() {
            assert_eq!(items.len(), limit, "only the last page may be short: {body}");
        }
        all.extend(items);
        match next {
            Some(href) => path = href,
            None => return all,
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

/// The ids of every type `token` may see, in list order.
fn visible(host: &Host, token: &str) -> Vec<String> {
    ids(&walk(host, token, "/server_types?limit=1000", 1000))
}

fn tags_of(host: &Host, token: &str, id: &str) -> Vec<String> {
    let r = get(host, token, &format!("{}/tags", type_path(id)));
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let tags = body.as_array().unwrap_or_else(|| panic!("a bare array of tags: {body}"));
    tags.iter().map(|t| t.as_str().unwrap_or_else(|| panic!("only strings: {body}")).to_string()).collect()
}

fn shares_of(host: &Host, token: &str, id: &str) -> Value {
    let r = get(host, token, &format!("{}/shares", type_path(id)));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn share_project(host: &Host, method: &str, token: &str, id: &str, project: &str) -> Resp {
    call(host, method, token, &format!("{}/shares/projects/{project}", type_path(id)), None)
}

fn share_user(host: &Host, method: &str, token: &str, id: &str, user: &str) -> Resp {
    call(host, method, token, &format!("{}/shares/users/{user}", type_path(id)), None)
}

fn launch(host: &Host, token: &str, project: &str, body: &Value) -> Resp {
    call(host, "POST", token, &format!("/projects/{project}/servers"), Some(body))
}

/// One server named `hostname` of type `type_id`.
fn launch_one(host: &Host, token: &str, project: &str, type_id: &str, hostname: &str) -> Resp {
    launch(host, token, project, &json!({"defaults": {"type_id": type_id, "template_id": TEMPLATE}, "servers": [{"hostname": hostname}]}))
}

fn hostnames_in(host: &Host, project: &str) -> Vec<String> {
    // Every server launched, whatever its state.
    let r = get(host, &admin(), &format!("/projects/{project}/servers?limit=1000&virt_state=ANY"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["servers"].as_array().unwrap().iter().map(|s| s["hostname"].as_str().unwrap().to_string()).collect()
}

fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_digit() || ('a'..='f').contains(&c) })
}

// --------------------------------------------------------------- create/read

#[test]
fn create_returns_201_with_location_defaults_and_the_owner_view() {
    let host = Host::vnext();
    let r = create(&host, &a(), &small("m1.small"));
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", r.headers);
    let t = r.json();
    let id = t["id"].as_str().unwrap();
    assert!(is_canonical_uuid(id), "{id}");
    assert_eq!(r.header("location"), Some(type_path(id).as_str()));
    // Defaults: empty description, PRIVATE, root disk 10 GB, no tags, no shares.
    assert_eq!(t["name"], "m1.small");
    assert_eq!(t["description"], "");
    assert_eq!(t["visibility"], "PRIVATE");
    assert_eq!(t["spec"], json!({"memory_mb": 512, "root_disk_gb": 10, "cpu_units": 1}));
    assert_eq!(t["tags"], json!([]));
    assert_eq!(t["shares"], json!({"users": [], "projects": []}), "the owner sees shares");
    let base = type_path(id);
    assert_eq!(
        t["_links"],
        json!({
            "self": {"href": base},
            "tags": {"href": format!("{base}/tags")},
            "shares": {"href": format!("{base}/shares")},
            "describedby": {"href": "/schemas/server_type"},
        })
    );
    // The Location serves the same document.
    let got = get(&host, &a(), r.header("location").unwrap());
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json(), t);

    // Every optional field: tags collapse into a sorted set, share ids are
    // written canonically whatever spelling was sent.
    let full = create_ok(
        &host,
        &a(),
        &json!({
            "name": "m1.full",
            "description": "four cores, fast disk",
            "spec": {"memory_mb": 4096, "root_disk_gb": 40, "cpu_units": 4, "rxtx_factor": 1.5, "swap_mb": 256},
            "tags": ["ssd", "gpu", "ssd"],
            "shares": {"users": [USER_B.to_uppercase()], "projects": [PROJECT_C.replace('-', "")]},
        }),
    );
    assert_eq!(full["description"], "four cores, fast disk");
    assert_eq!(full["spec"], json!({"memory_mb": 4096, "root_disk_gb": 40, "cpu_units": 4, "rxtx_factor": 1.5, "swap_mb": 256}));
    assert_eq!(full["tags"], json!(["gpu", "ssd"]));
    assert_eq!(full["shares"], json!({"users": [USER_B], "projects": [PROJECT_C]}));
    assert_ne!(full["id"], t["id"]);
}

#[test]
fn admin_may_create_public_types_and_members_may_not() {
    let host = Host::vnext();
    let mut body = small("m1.public");
    body["visibility"] = json!("PUBLIC");
    let r = create(&host, &a(), &body);
    assert_error(&r, 403, Some("visibility"));
    assert!(visible(&host, &admin()).is_empty(), "a refused create writes nothing");
    // The name was not claimed by the refused request.
    let t = create_ok(&host, &admin(), &body);
    assert_eq!(t["visibility"], "PUBLIC");
    assert_eq!(t["shares"], json!({"users": [], "projects": []}), "admins see shares");
}

#[test]
fn get_finds_a_type_by_any_id_spelling_or_by_name() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.small");
    let spaced = private_type(&host, &a(), "big box");
    let want = get(&host, &a(), &type_path(&id)).json();
    for key in [id.to_uppercase(), id.replace('-', ""), "m1.small".to_string(), "m1%2Esmall".to_string()] {
        let r = get(&host, &a(), &type_path(&key));
        assert_eq!(r.status, 200, "{key}: {}", r.body);
        assert_eq!(r.json(), want, "{key}");
    }
    // A name is percent-decoded like any path segment.
    let r = get(&host, &a(), "/server_types/big%20box");
    assert_eq!((r.status, r.json()["id"].as_str()), (200, Some(spaced.as_str())), "{}", r.body);
    // Unknown ids and names are 404.
    assert_error(&get(&host, &a(), &type_path("m9.huge")), 404, None);
    assert_error(&get(&host, &a(), &type_path("5e7e0000-9999-4000-8000-000000000099")), 404, None);
}

#[test]
fn the_longest_names_are_unique_and_found_like_short_ones() {
    let host = Host::vnext();
    // 255 characters of two bytes: a key of its own would pass the
    // key-value store's 256-byte limit.
    let long = "é".repeat(255);
    let id = private_type(&host, &a(), &long);
    let encoded: String = long.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = get(&host, &a(), &type_path(&encoded));
    assert_eq!((r.status, r.json()["id"].as_str()), (200, Some(id.as_str())), "{}", r.body);
    assert_error(&create(&host, &a(), &small(&long)), 400, Some("name"));
    // One character less is another name.
    private_type(&host, &a(), &"é".repeat(254));
    // Renamed away, the long name is free again.
    assert_204(&call(&host, "PATCH", &a(), &type_path(&id), Some(&json!({"name": "short"}))), "rename");
    private_type(&host, &a(), &long);
}

// ------------------------------------------------------------- patch/delete

#[test]
fn patch_replaces_the_fields_sent_and_returns_204() {
    let host = Host::vnext();
    let id = create_ok(
        &host,
        &a(),
        &json!({"name": "m1.old", "description": "old", "tags": ["keep"],
                "spec": {"memory_mb": 512, "root_disk_gb": 40, "cpu_units": 1, "rxtx_factor": 2.0}}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = |token: &str, body: Value| call(&host, "PATCH", token, &type_path(&id), Some(&body));

    assert_204(&patch(&a(), json!({"description": "new"})), "description");
    let t = get(&host, &a(), &type_path(&id)).json();
    assert_eq!((t["description"].as_str(), t["name"].as_str()), (Some("new"), Some("m1.old")));
    // A new spec replaces the whole spec: omitted fields take their defaults.
    assert_204(&patch(&a(), json!({"spec": {"memory_mb": 1024, "cpu_units": 2}})), "spec");
    let t = get(&host, &a(), &type_path(&id)).json();
    assert_eq!(t["spec"], json!({"memory_mb": 1024, "root_disk_gb": 10, "cpu_units": 2}));
    assert_eq!(t["tags"], json!(["keep"]), "tags are untouched by PATCH");
    // Another member of the owner project may change it too, by name.
    assert_204(&call(&host, "PATCH", &a2(), &type_path("m1.old"), Some(&json!({"description": "by a2"}))), "a2");
    assert_eq!(get(&host, &a(), &type_path(&id)).json()["description"], "by a2");
    // Sending the type's own name is a no-op, not a clash with itself.
    assert_204(&patch(&a(), json!({"name": "m1.old"})), "same name");
}

#[test]
fn patch_rename_moves_the_name_and_refuses_a_taken_one() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.before");
    let other = private_type(&host, &b(), "m1.other");

    assert_204(&call(&host, "PATCH", &a(), &type_path(&id), Some(&json!({"name": "m1.after"}))), "rename");
    assert_eq!(get(&host, &a(), &type_path("m1.after")).json()["id"], id.as_str());
    assert_error(&get(&host, &a(), &type_path("m1.before")), 404, None);
    // The old name is free again.
    let reuse = private_type(&host, &c(), "m1.before");
    assert_ne!(reuse, id);

    // A name held by another type (even one the caller cannot see) is 400
    // and changes nothing.
    let r = call(&host, "PATCH", &a(), &type_path(&id), Some(&json!({"name": "m1.other", "description": "x"})));
    assert_error(&r, 400, Some("name"));
    let t = get(&host, &a(), &type_path(&id)).json();
    assert_eq!((t["name"].as_str(), t["description"].as_str()), (Some("m1.after"), Some("")));
    assert_eq!(get(&host, &b(), &type_path("m1.other")).json()["id"], other.as_str());
}

#[test]
fn patch_refuses_tags_shares_unknown_fields_and_public_for_members() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.patchy");
    let before = get(&host, &a(), &type_path(&id)).json();
    let patch = |token: &str, body: Value| call(&host, "PATCH", token, &type_path(&id), Some(&body));

    assert_error(&patch(&a(), json!({"tags": ["x"]})), 400, Some("tags"));
    assert_error(&patch(&a(), json!({"shares": {"projects": [PROJECT_B]}})), 400, Some("shares"));
    assert_error(&patch(&a(), json!({"flavor_id": 1})), 400, Some("flavor_id"));
    assert_error(&patch(&a(), json!({"spec": {"memory_mb": 1, "cpu_units": 0}})), 400, Some("spec.cpu_units"));
    assert_error(&patch(&a(), json!({"spec": {"memory_mb": 1}})), 400, Some("spec.cpu_units"));
    assert_error(&patch(&a(), json!({"name": "5e7e0000-9999-4000-8000-000000000099"})), 400, Some("name"));
    assert_error(&patch(&a(), json!({"visibility": "SECRET"})), 400, Some("visibility"));
    assert_error(&patch(&a(), json!({"visibility": "PUBLIC"})), 403, Some("visibility"));
    assert_eq!(get(&host, &a(), &type_path(&id)).json(), before, "refused patches change nothing");
    assert!(!visible(&host, &b()).contains(&id));

    // An admin may make it PUBLIC: then everyone sees it.
    assert_204(&patch(&admin(), json!({"visibility": "PUBLIC"})), "admin makes it public");
    assert_eq!(get(&host, &b(), &type_path(&id)).json()["visibility"], "PUBLIC");
    assert!(visible(&host, &c()).contains(&id));
}

#[test]
fn delete_removes_the_type_and_frees_its_name() {
    let host = Host::vnext();
    let keep = private_type(&host, &a(), "m1.keep");
    let id = private_type(&host, &a(), "m1.tmp");
    let r = call(&host, "DELETE", &a(), &type_path(&id), None);
    assert_204(&r, "delete");
    assert_error(&get(&host, &a(), &type_path(&id)), 404, None);
    assert_error(&get(&host, &a(), &type_path("m1.tmp")), 404, None);
    assert_error(&get(&host, &a(), &format!("{}/tags", type_path(&id))), 404, None);
    assert_error(&call(&host, "DELETE", &a(), &type_path(&id), None), 404, None);
    assert_eq!(visible(&host, &a()), [keep.clone()]);
    assert_eq!(visible(&host, &admin()), [keep]);
    // The name can be used again, for a new type.
    let again = private_type(&host, &b(), "m1.tmp");
    assert_ne!(again, id);
    // Delete by name works as well.
    assert_204(&call(&host, "DELETE", &b(), &type_path("m1.tmp"), None), "delete by name");
    assert_error(&get(&host, &b(), &type_path(&again)), 404, None);
}

// -------------------------------------------------------------------- lists

#[test]
fn list_pages_in_creation_order_with_next_links() {
    let host = Host::vnext();
    let created: Vec<String> = (0..21).map(|i| private_type(&host, &a(), &format!("t{i:02}"))).collect();
    let _hidden = private_type(&host, &b(), "b-only");

    // Default page: 20 items, then a next link carrying the marker.
    let r = get(&host, &a(), "/server_types");
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(ids(body["server_types"].as_array().unwrap()), created[..20]);
    assert_eq!(body["_links"]["self"]["href"], "/server_types");
    assert_eq!(body["_links"]["next"]["href"], format!("/server_types?marker={}", created[19]));
    let last = get(&host, &a(), body["_links"]["next"]["href"].as_str().unwrap()).json();
    assert_eq!(ids(last["server_types"].as_array().unwrap()), created[20..]);
    assert!(last["_links"].get("next").is_none(), "no next on the last page: {last}");

    // Items are the full type view.
    assert_eq!(body["server_types"][0], get(&host, &a(), &type_path(&created[0])).json());

    // Small pages walk the same order; next keeps the limit.
    let r = get(&host, &a(), "/server_types?limit=8");
    let next = r.json()["_links"]["next"]["href"].as_str().unwrap().to_string();
    assert_eq!(next, format!("/server_types?limit=8&marker={}", created[7]));
    assert_eq!(ids(&walk(&host, &a(), "/server_types?limit=8", 8)), created);
    assert_eq!(ids(&walk(&host, &a(), &format!("/server_types?limit=5&marker={}", created[15]), 5)), created[16..]);
    // The marker of the last item: an empty page without next.
    let r = get(&host, &a(), &format!("/server_types?marker={}", created[20]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["server_types"], json!([]));
    assert!(r.json()["_links"].get("next").is_none());
}

#[test]
fn list_filters_by_tag_with_any_of_semantics() {
    let host = Host::vnext();
    let mk = |name: &str, tags: Value| {
        let mut body = small(name);
        body["tags"] = tags;
        create_ok(&host, &a(), &body)["id"].as_str().unwrap().to_string()
    };
    let gpu = mk("gpu", json!(["gpu"]));
    let ssd = mk("ssd", json!(["ssd"]));
    let both = mk("both", json!(["gpu", "ssd"]));
    let _none = mk("none", json!([]));
    let spaced = mk("spaced", json!(["fast disk"]));
    assert_eq!(ids(&walk(&host, &a(), "/server_types?tag=gpu", 20)), [gpu.clone(), both.clone()]);
    assert_eq!(ids(&walk(&host, &a(), "/server_types?tag=gpu&tag=ssd", 20)), [gpu.clone(), ssd.clone(), both.clone()]);
    assert_eq!(ids(&walk(&host, &a(), "/server_types?tag=fast%20disk", 20)), [spaced]);
    assert_eq!(ids(&walk(&host, &a(), "/server_types?tag=nope", 20)), Vec::<String>::new());
    // Paging over a filter: next keeps the filter.
    let r = get(&host, &a(), "/server_types?tag=gpu&tag=ssd&limit=2");
    assert_eq!(r.json()["_links"]["next"]["href"], format!("/server_types?tag=gpu&tag=ssd&limit=2&marker={ssd}"));
    assert_eq!(ids(&walk(&host, &a(), "/server_types?tag=gpu&tag=ssd&limit=2", 2)), [gpu, ssd, both]);
    // A tag filter does not widen visibility.
    assert!(ids(&walk(&host, &b(), "/server_types?tag=gpu", 20)).is_empty());
}

#[test]
fn list_refuses_bad_limits_markers_and_parameters() {
    let host = Host::vnext();
    let _t = private_type(&host, &a(), "only");
    for limit in ["0", "1001", "-1", "ten", ""] {
        assert_error(&get(&host, &a(), &format!("/server_types?limit={limit}")), 400, Some("limit"));
    }
    assert_eq!(get(&host, &a(), "/server_types?limit=1000").status, 200);
    assert_error(&get(&host, &a(), "/server_types?marker=5e7e0000-9999-4000-8000-000000000099"), 400, Some("marker"));
    assert_error(&get(&host, &a(), "/server_types?marker=nope"), 400, Some("marker"));
    assert_error(&get(&host, &a(), "/server_types?tags=gpu"), 400, Some("tags"));
    assert_error(&get(&host, &a(), "/server_types?visibility=PUBLIC"), 400, Some("visibility"));
    assert_error(&get(&host, &a(), "/server_types?tag=a,b"), 400, Some("tag"));
    assert_error(&get(&host, &a(), "/server_types?tag="), 400, Some("tag"));
}

#[test]
fn list_refuses_a_marker_naming_an_invisible_type() {
    let host = Host::vnext();
    let _mine = private_type(&host, &a(), "mine");
    let hidden = private_type(&host, &b(), "hidden");
    let _after = private_type(&host, &a(), "after");
    // Not an item of A's collection: the same 400 as an unknown id
    // (today: 200 with the page of A's types created after it).
    let r = get(&host, &a(), &format!("/server_types?marker={hidden}"));
    assert_error(&r, 400, Some("marker"));
}

// --------------------------------------------------------------- visibility

#[test]
fn private_type_is_seen_by_its_project_and_admins_and_is_404_for_others() {
    let host = Host::vnext();
    let public = public_type(&host, "m1.public");
    let private = private_type(&host, &a(), "m1.private");
    let path = type_path(&private);

    // The owner project (any of its members) and admins see it, with shares.
    for who in [a(), a2(), admin()] {
        let r = get(&host, &who, &path);
        assert_eq!(r.status, 200, "{who}: {}", r.body);
        assert_eq!(r.json()["shares"], json!({"users": [], "projects": []}), "{who}");
        assert_eq!(get(&host, &who, &type_path("m1.private")).status, 200, "{who} by name");
        assert_eq!(visible(&host, &who), [public.clone(), private.clone()], "{who}");
    }
    // Others: 404 by id and by name, exactly like a missing type; not listed.
    let missing = "5e7e0000-9999-4000-8000-000000000099";
    for who in [b(), c()] {
        let hidden = get(&host, &who, &path);
        assert_error(&hidden, 404, None);
        let absent = get(&host, &who, &type_path(missing));
        assert_eq!(hidden.body.replace(&private, "ID"), absent.body.replace(missing, "ID"), "a hidden type looks missing");
        assert_error(&get(&host, &who, &type_path("m1.private")), 404, None);
        assert_error(&get(&host, &who, &format!("{path}/tags")), 404, None);
        assert_eq!(visible(&host, &who), [public.clone()], "{who}");
    }
    // PUBLIC types are seen by everyone; non-owners see shares empty.
    let r = get(&host, &b(), &type_path(&public));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["shares"], json!({"users": [], "projects": []}), "{}", r.body);
    assert_eq!(tags_of(&host, &c(), &public), Vec::<String>::new());
}

#[test]
fn project_share_shows_a_private_type_to_that_project_until_removed() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.shared");
    // Any UUID spelling; stored canonically.
    assert_204(&share_project(&host, "PUT", &a(), &id, &PROJECT_B.replace('-', "")), "share");
    assert_eq!(shares_of(&host, &a(), &id), json!({"users": [], "projects": [PROJECT_B]}));
    assert_204(&share_project(&host, "PUT", &a(), &id, PROJECT_B), "share again is idempotent");
    assert_eq!(shares_of(&host, &a(), &id), json!({"users": [], "projects": [PROJECT_B]}));

    // Every member of B sees it (with shares empty), by id, by name and listed;
    // USER_B acting in another project does not.
    for who in [b(), b2()] {
        let r = get(&host, &who, &type_path(&id));
        assert_eq!(r.status, 200, "{who}: {}", r.body);
        assert_eq!(r.json()["shares"], json!({"users": [], "projects": []}), "the share is not shown: {}", r.body);
        assert_eq!(get(&host, &who, &type_path("m1.shared")).status, 200);
        assert_eq!(visible(&host, &who), [id.clone()]);
    }
    assert_error(&get(&host, &b_in_c(), &type_path(&id)), 404, None);
    assert!(visible(&host, &c()).is_empty());

    // Unshared: hidden again; a second removal is 404.
    assert_204(&share_project(&host, "DELETE", &a(), &id, PROJECT_B), "unshare");
    assert_error(&get(&host, &b(), &type_path(&id)), 404, None);
    assert!(visible(&host, &b()).is_empty());
    assert_error(&share_project(&host, "DELETE", &a(), &id, PROJECT_B), 404, None);
    assert_eq!(shares_of(&host, &a(), &id), json!({"users": [], "projects": []}));
}

#[test]
fn user_share_follows_the_user_into_any_project_but_not_their_colleagues() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.for-b");
    assert_204(&share_user(&host, "PUT", &a(), &id, USER_B), "share with user");
    assert_eq!(shares_of(&host, &a(), &id), json!({"users": [USER_B], "projects": []}));
    for who in [b(), b_in_c()] {
        assert_eq!(get(&host, &who, &type_path(&id)).status, 200, "{who}");
        assert_eq!(visible(&host, &who), [id.clone()], "{who}");
    }
    assert_error(&get(&host, &b2(), &type_path(&id)), 404, None);
    assert!(visible(&host, &b2()).is_empty());

    assert_204(&share_user(&host, "DELETE", &a(), &id, USER_B), "unshare user");
    assert_error(&get(&host, &b(), &type_path(&id)), 404, None);
    assert_error(&get(&host, &b_in_c(), &type_path(&id)), 404, None);
    assert_error(&share_user(&host, "DELETE", &a(), &id, USER_B), 404, None);
}

#[test]
fn shares_document_is_replaced_read_and_cleared_by_the_owner() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.doc");
    let shares = format!("{}/shares", type_path(&id));
    let put = |body: Value| call(&host, "PUT", &a(), &shares, Some(&body));

    assert_204(&put(json!({"users": [USER_C, USER_C], "projects": [PROJECT_B.to_uppercase()]})), "replace");
    assert_eq!(shares_of(&host, &a(), &id), json!({"users": [USER_C], "projects": [PROJECT_B]}));
    assert_eq!(get(&host, &a(), &type_path(&id)).json()["shares"], json!({"users": [USER_C], "projects": [PROJECT_B]}));
    assert_eq!(get(&host, &b2(), &type_path(&id)).status, 200);
    assert_eq!(get(&host, &c(), &type_path(&id)).status, 200);
    // A missing list becomes empty: the document is replaced, not merged.
    assert_204(&put(json!({"projects": [PROJECT_C]})), "replace again");
    assert_eq!(shares_of(&host, &a(), &id), json!({"users": [], "projects": [PROJECT_C]}));
    assert_error(&get(&host, &b(), &type_path(&id)), 404, None);
    // The admin reads them too.
    assert_eq!(shares_of(&host, &admin(), &id), json!({"users": [], "projects": [PROJECT_C]}));

    // Bad bodies and ids: 400 naming the field, nothing changed.
    assert_error(&put(json!({"groups": []})), 400, Some("groups"));
    assert_error(&put(json!({"users": ["bob"]})), 400, Some("users[0]"));
    assert_error(&put(json!({"projects": PROJECT_B})), 400, Some("projects"));
    assert_error(&call(&host, "PUT", &a(), &shares, None), 400, None);
    assert_error(&share_user(&host, "PUT", &a(), &id, "bob"), 400, Some("user_id"));
    assert_error(&share_project(&host, "DELETE", &a(), &id, "bob"), 400, Some("project_id"));
    assert_eq!(shares_of(&host, &a(), &id), json!({"users": [], "projects": [PROJECT_C]}));

    // DELETE clears both lists.
    assert_204(&call(&host, "DELETE", &a(), &shares, None), "clear");
    assert_eq!(shares_of(&host, &a(), &id), json!({"users": [], "projects": []}));
    assert_error(&get(&host, &c(), &type_path(&id)), 404, None);
}

// ---------------------------------------------------------------- ownership

/// Every request that changes a type (or reads its shares), as `token`.
fn owner_only_requests(host: &Host, token: &str, id: &str) -> Vec<(String, Resp)> {
    let base = type_path(id);
    let reqs: Vec<(&str, String, Option<Value>)> = vec![
        ("PATCH", base.clone(), Some(json!({"description": "mine now"}))),
        ("DELETE", format!("{base}/tags/orig"), None),
        ("PUT", format!("{base}/tags"), Some(json!(["taken"]))),
        ("PUT", format!("{base}/tags/more"), None),
        ("DELETE", format!("{base}/tags"), None),
        ("GET", format!("{base}/shares"), None),
        ("DELETE", format!("{base}/shares/projects/{PROJECT_B}"), None),
        ("DELETE", format!("{base}/shares/users/{USER_B2}"), None),
        ("PUT", format!("{base}/shares/projects/{PROJECT_C}"), None),
        ("PUT", format!("{base}/shares/users/{USER_C}"), None),
        ("PUT", format!("{base}/shares"), Some(json!({"projects": [PROJECT_C]}))),
        ("DELETE", format!("{base}/shares"), None),
        ("DELETE", base.clone(), None),
    ];
    reqs.into_iter()
        .map(|(m, p, body)| (format!("{m} {p}"), call(host, m, token, &p, body.as_ref())))
        .collect()
}

#[test]
fn only_the_owner_or_an_admin_may_change_a_type_its_tags_or_shares() {
    let host = Host::vnext();
    let mut body = small("m1.owned");
    body["tags"] = json!(["orig"]);
    body["shares"] = json!({"projects": [PROJECT_B], "users": [USER_B2]});
    let id = create_ok(&host, &a(), &body)["id"].as_str().unwrap().to_string();
    let before = get(&host, &a(), &type_path(&id)).json();

    // B sees it through the share: it may read the type and its tags, but
    // every change (and reading the shares) is 403.
    assert_eq!(get(&host, &b(), &type_path(&id)).status, 200);
    assert_eq!(tags_of(&host, &b(), &id), ["orig"]);
    for (what, r) in owner_only_requests(&host, &b(), &id) {
        assert_eq!(r.status, 403, "{what} by a member who sees it: {}", r.body);
        assert_error(&r, 403, None);
    }
    // C cannot see it: every one of them is 404.
    for (what, r) in owner_only_requests(&host, &c(), &id) {
        assert_eq!(r.status, 404, "{what} by a member who cannot see it: {}", r.body);
        assert_error(&r, 404, None);
    }
    assert_eq!(get(&host, &a(), &type_path(&id)).json(), before, "refused requests change nothing");

    // An admin may do all of them (the last one deletes the type).
    for (what, r) in owner_only_requests(&host, &admin(), &id) {
        assert!(r.status == 200 || r.status == 204, "{what} by an admin: {} {}", r.status, r.body);
    }
    assert_error(&get(&host, &a(), &type_path(&id)), 404, None);
}

#[test]
fn every_member_of_the_owner_project_may_change_the_type() {
    let host = Host::vnext();
    let mut body = small("m1.team");
    body["tags"] = json!(["orig"]);
    body["shares"] = json!({"projects": [PROJECT_B], "users": [USER_B2]});
    let id = create_ok(&host, &a(), &body)["id"].as_str().unwrap().to_string();
    for (what, r) in owner_only_requests(&host, &a2(), &id) {
        assert!(r.status == 200 || r.status == 204, "{what} by another member of the owner project: {} {}", r.status, r.body);
    }
    assert_error(&get(&host, &a(), &type_path(&id)), 404, None);
}

#[test]
fn members_may_not_change_an_admins_public_type() {
    let host = Host::vnext();
    let id = public_type(&host, "m1.large");
    assert_error(&call(&host, "PATCH", &a(), &type_path(&id), Some(&json!({"description": "x"}))), 403, None);
    assert_error(&call(&host, "DELETE", &a(), &type_path("m1.large"), None), 403, None);
    assert_error(&call(&host, "PUT", &b(), &format!("{}/tags/mine", type_path(&id)), None), 403, None);
    assert_error(&get(&host, &b(), &format!("{}/shares", type_path(&id))), 403, None);
    assert_eq!(get(&host, &a(), &type_path(&id)).json()["description"], "");
    assert_eq!(tags_of(&host, &a(), &id), Vec::<String>::new());
}

// --------------------------------------------------------------------- tags

#[test]
fn tags_are_a_set_replaced_added_and_removed() {
    let host = Host::vnext();
    let mut body = small("m1.tagged");
    body["tags"] = json!(["b", "a"]);
    let id = create_ok(&host, &a(), &body)["id"].as_str().unwrap().to_string();
    let tags = format!("{}/tags", type_path(&id));
    let tag = |t: &str| format!("{tags}/{t}");
    assert_eq!(tags_of(&host, &a(), &id), ["a", "b"]);

    // PUT replaces: duplicates collapse, order is not kept.
    assert_204(&call(&host, "PUT", &a(), &tags, Some(&json!(["zeta", "gpu", "zeta"]))), "replace");
    assert_eq!(tags_of(&host, &a(), &id), ["gpu", "zeta"]);
    assert_eq!(get(&host, &a(), &type_path(&id)).json()["tags"], json!(["gpu", "zeta"]));
    // Add one (idempotent), by id or by name, percent-decoded.
    assert_204(&call(&host, "PUT", &a(), &tag("ssd"), None), "add");
    assert_204(&call(&host, "PUT", &a(), &tag("ssd"), None), "add again");
    assert_204(&call(&host, "PUT", &a(), "/server_types/m1.tagged/tags/fast%20disk", None), "add by name");
    assert_eq!(tags_of(&host, &a(), &id), ["fast disk", "gpu", "ssd", "zeta"]);
    // Remove one; removing it again is 404.
    assert_204(&call(&host, "DELETE", &a(), &tag("zeta"), None), "remove");
    assert_error(&call(&host, "DELETE", &a(), &tag("zeta"), None), 404, None);
    assert_eq!(tags_of(&host, &a(), &id), ["fast disk", "gpu", "ssd"]);
    // The tag filter follows the changes.
    assert_eq!(ids(&walk(&host, &a(), "/server_types?tag=ssd", 20)), [id.clone()]);
    // DELETE clears.
    assert_204(&call(&host, "DELETE", &a(), &tags, None), "clear");
    assert_eq!(tags_of(&host, &a(), &id), Vec::<String>::new());
    assert!(ids(&walk(&host, &a(), "/server_types?tag=ssd", 20)).is_empty());
}

#[test]
fn tags_document_form_is_accepted_like_the_array() {
    // GET .../tags returns the bare array; the schema (tag_list) and the
    // code accept the {"tags": [...]} document as well as that array.
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.doc-tags");
    let tags = format!("{}/tags", type_path(&id));
    assert_204(&call(&host, "PUT", &a(), &tags, Some(&json!({"tags": ["y", "x"]}))), "document form");
    assert_eq!(tags_of(&host, &a(), &id), ["x", "y"]);
    let doc = get(&host, &a(), &tags).json();
    assert_eq!(doc, json!(["x", "y"]));
    assert_204(&call(&host, "PUT", &a(), &tags, Some(&doc)), "round trip");
    assert_eq!(tags_of(&host, &a(), &id), ["x", "y"]);
    assert_204(&call(&host, "PUT", &a(), &tags, Some(&json!({"tags": doc}))), "round trip in the document form");
    assert_eq!(tags_of(&host, &a(), &id), ["x", "y"]);
    assert_error(&call(&host, "PUT", &a(), &tags, Some(&json!({"tags": ["x"], "more": 1}))), 400, Some("more"));
}

#[test]
fn invalid_tags_and_more_than_fifty_are_refused() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.limits");
    let tags = format!("{}/tags", type_path(&id));
    let put = |body: Value| call(&host, "PUT", &a(), &tags, Some(&body));

    assert_error(&put(json!(["ok", "a,b"])), 400, Some("tags[1]"));
    assert_error(&put(json!(["ok", "a/b"])), 400, Some("tags[1]"));
    assert_error(&put(json!([""])), 400, Some("tags[0]"));
    assert_error(&put(json!(["x".repeat(51)])), 400, Some("tags[0]"));
    assert_error(&put(json!(["ok", 7])), 400, Some("tags[1]"));
    assert_error(&put(json!("ok")), 400, Some("tags"));
    assert_error(&call(&host, "PUT", &a(), &format!("{tags}/a,b"), None), 400, Some("tag"));
    assert_error(&call(&host, "PUT", &a(), &format!("{tags}/{}", "y".repeat(51)), None), 400, Some("tag"));
    let fifty_one: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    assert_error(&put(json!(fifty_one)), 400, Some("tags"));
    assert_eq!(tags_of(&host, &a(), &id), Vec::<String>::new(), "refused PUTs change nothing");

    // Fifty distinct tags (duplicates do not count) fit; a 51st does not,
    // but adding one it already has is fine.
    let mut fifty: Vec<String> = (0..50).map(|i| format!("t{i:02}")).collect();
    fifty.push("t00".into());
    assert_204(&put(json!(fifty)), "fifty distinct");
    assert_eq!(tags_of(&host, &a(), &id).len(), 50);
    assert_error(&call(&host, "PUT", &a(), &format!("{tags}/t50"), None), 400, Some("tag"));
    assert_204(&call(&host, "PUT", &a(), &format!("{tags}/t49"), None), "existing tag at the limit");
    assert_eq!(tags_of(&host, &a(), &id).len(), 50);
}

// ------------------------------------------------------------------- errors

#[test]
fn create_refuses_bad_bodies_naming_the_field_and_creates_nothing() {
    let host = Host::vnext();
    let spec = json!({"memory_mb": 512, "cpu_units": 1});
    let cases: Vec<(Value, &str)> = vec![
        // Unknown fields, at any depth.
        (json!({"name": "x", "spec": spec, "flavor": "m1"}), "flavor"),
        (json!({"name": "x", "spec": {"memory_mb": 512, "cpu_units": 1, "gpus": 1}}), "spec.gpus"),
        (json!({"name": "x", "spec": spec, "shares": {"groups": []}}), "shares.groups"),
        // Missing required fields.
        (json!({"spec": spec}), "name"),
        (json!({"name": "x"}), "spec"),
        (json!({"name": "x", "spec": {"cpu_units": 1}}), "spec.memory_mb"),
        (json!({"name": "x", "spec": {"memory_mb": 512}}), "spec.cpu_units"),
        // Types and ranges.
        (json!({"name": 7, "spec": spec}), "name"),
        (json!({"name": "x", "spec": {"memory_mb": "512", "cpu_units": 1}}), "spec.memory_mb"),
        (json!({"name": "x", "spec": {"memory_mb": -1, "cpu_units": 1}}), "spec.memory_mb"),
        (json!({"name": "x", "spec": {"memory_mb": 512, "cpu_units": 0}}), "spec.cpu_units"),
        (json!({"name": "x", "spec": {"memory_mb": 512, "cpu_units": 1, "root_disk_gb": -10}}), "spec.root_disk_gb"),
        (json!({"name": "x", "spec": {"memory_mb": 512, "cpu_units": 1, "rxtx_factor": 0.05}}), "spec.rxtx_factor"),
        (json!({"name": "x", "spec": {"memory_mb": 512, "cpu_units": 1, "swap_mb": 1.5}}), "spec.swap_mb"),
        // Name rules: non-empty, not a UUID, no '/', no surrounding spaces, <= 255.
        (json!({"name": "", "spec": spec}), "name"),
        (json!({"name": "5e7e0000-9999-4000-8000-000000000099", "spec": spec}), "name"),
        (json!({"name": "a/b", "spec": spec}), "name"),
        (json!({"name": " padded", "spec": spec}), "name"),
        (json!({"name": "n".repeat(256), "spec": spec}), "name"),
        (json!({"name": "x", "description": "d".repeat(1025), "spec": spec}), "description"),
        (json!({"name": "x", "visibility": "INTERNAL", "spec": spec}), "visibility"),
        (json!({"name": "x", "spec": spec, "tags": ["ok", "a,b"]}), "tags[1]"),
        (json!({"name": "x", "spec": spec, "shares": {"users": ["bob"]}}), "shares.users[0]"),
        (json!({"name": "x", "spec": spec, "shares": {"projects": [PROJECT_B, "p2"]}}), "shares.projects[1]"),
    ];
    for (body, field) in &cases {
        let r = create(&host, &a(), body);
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        assert_error(&r, 400, Some(field));
    }
    // Not an object / not JSON / no body: 400 without a field.
    assert_error(&create(&host, &a(), &json!([1])), 400, None);
    for raw in ["{\"name\": ", ""] {
        let r = crate::harness::request(
            "POST",
            &host.url("/server_types"),
            &[("X-Auth-Token", &a()), ("Content-Type", "application/json")],
            Some(raw),
        );
        assert_error(&r, 400, None);
    }
    assert!(visible(&host, &admin()).is_empty(), "no refused request created a type");
    // "x" was never claimed by a refused request.
    assert_eq!(create(&host, &a(), &small("x")).status, 201);
}

#[test]
fn duplicate_names_are_400_across_projects_and_case_sensitive() {
    let host = Host::vnext();
    let first = private_type(&host, &a(), "m1.dup");
    for who in [a(), b(), admin()] {
        assert_error(&create(&host, &who, &small("m1.dup")), 400, Some("name"));
    }
    let names: BTreeSet<String> = walk(&host, &admin(), "/server_types", 20)
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, BTreeSet::from(["m1.dup".to_string()]));
    assert_eq!(visible(&host, &admin()), [first]);
    // Names are compared exactly.
    assert_eq!(create(&host, &b(), &small("M1.DUP")).status, 201);
}

#[test]
fn missing_or_malformed_token_is_401_on_every_server_type_route() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.auth");
    let base = type_path(&id);
    let routes: Vec<(&str, String)> = vec![
        ("GET", "/server_types".into()),
        ("POST", "/server_types".into()),
        ("GET", base.clone()),
        ("GET", type_path("m1.auth")),
        ("PATCH", base.clone()),
        ("DELETE", base.clone()),
        ("GET", format!("{base}/tags")),
        ("PUT", format!("{base}/tags")),
        ("DELETE", format!("{base}/tags")),
        ("PUT", format!("{base}/tags/x")),
        ("DELETE", format!("{base}/tags/x")),
        ("GET", format!("{base}/shares")),
        ("PUT", format!("{base}/shares")),
        ("DELETE", format!("{base}/shares")),
        ("PUT", format!("{base}/shares/users/{USER_B}")),
        ("DELETE", format!("{base}/shares/users/{USER_B}")),
        ("PUT", format!("{base}/shares/projects/{PROJECT_B}")),
        ("DELETE", format!("{base}/shares/projects/{PROJECT_B}")),
    ];
    let bad_tokens = [
        "".to_string(),
        "garbage".to_string(),
        USER_A.to_string(),
        "not-a-uuid:also-not".to_string(),
        format!("{USER_A}:{PROJECT_A}:root"),
        format!("{USER_A}:{PROJECT_A}:admin:x"),
    ];
    for (method, path) in &routes {
        let body = json!({"name": "m1.x", "spec": {"memory_mb": 1, "cpu_units": 1}});
        let r = send(method, &host.url(path), None, Some(&body));
        assert_eq!(r.status, 401, "{method} {path} without a token: {}", r.body);
        assert_error(&r, 401, None);
        for t in &bad_tokens {
            let r = send(method, &host.url(path), Some(t), Some(&body));
            assert_eq!(r.status, 401, "{method} {path} with token {t:?}: {}", r.body);
            assert_error(&r, 401, None);
        }
    }
    // Nothing changed.
    let t = get(&host, &a(), &base).json();
    assert_eq!((t["name"].as_str(), t["tags"].clone()), (Some("m1.auth"), json!([])));
    assert_eq!(visible(&host, &admin()), [id]);
}

#[test]
fn wrong_method_is_405_with_allow_even_without_a_token() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.methods");
    let base = type_path(&id);
    let cases: Vec<(&str, String, &str)> = vec![
        ("DELETE", "/server_types".into(), "GET, POST"),
        ("PUT", "/server_types".into(), "GET, POST"),
        ("POST", base.clone(), "GET, PATCH, DELETE"),
        ("PUT", base.clone(), "GET, PATCH, DELETE"),
        ("POST", format!("{base}/tags"), "GET, PUT, DELETE"),
        ("GET", format!("{base}/tags/x"), "PUT, DELETE"),
        ("PATCH", format!("{base}/shares"), "GET, PUT, DELETE"),
        ("GET", format!("{base}/shares/users/{USER_B}"), "PUT, DELETE"),
        ("POST", format!("{base}/shares/projects/{PROJECT_B}"), "PUT, DELETE"),
    ];
    for (method, path, allow) in &cases {
        for token in [Some(a()), None] {
            let r = send(method, &host.url(path), token.as_deref(), None);
            assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
            assert_eq!(r.header("allow"), Some(*allow), "{method} {path}");
            assert_error(&r, 405, None);
        }
    }
    // Paths under /server_types that match no route are 404.
    for path in [format!("{base}/nope"), format!("{base}/shares/groups/x"), format!("{base}/tags/x/y")] {
        assert_error(&get(&host, &a(), &path), 404, None);
    }
    assert_eq!(get(&host, &a(), &base).status, 200, "the type is untouched");
}

// ------------------------------------------------------------------- launch

#[test]
fn launch_with_another_projects_private_type_is_refused_unless_shared() {
    let host = Host::vnext();
    let private = private_type(&host, &a(), "m1.a-only");
    let public = public_type(&host, "m1.everyone");

    // Not visible to B: 400 naming the server's type_id, nothing launched.
    assert_error(&launch_one(&host, &b(), PROJECT_B, &private, "web-0"), 400, Some("servers[0].type_id"));
    let mixed = json!({
        "defaults": {"type_id": public, "template_id": TEMPLATE},
        "servers": [{"hostname": "ok-0"}, {"hostname": "bad-1", "type_id": private}],
    });
    assert_error(&launch(&host, &b(), PROJECT_B, &mixed), 400, Some("servers[1].type_id"));
    assert!(hostnames_in(&host, PROJECT_B).is_empty(), "all or nothing: {:?}", hostnames_in(&host, PROJECT_B));

    // The owner project may launch it.
    assert_eq!(launch_one(&host, &a(), PROJECT_A, &private, "own-0").status, 202);

    // Shared with project B: accepted for any member of B.
    assert_204(&share_project(&host, "PUT", &a(), &private, PROJECT_B), "share with B");
    let r = launch_one(&host, &b2(), PROJECT_B, &private, "web-1");
    assert_eq!(r.status, 202, "{}", r.body);
    let r = launch(&host, &b(), PROJECT_B, &mixed);
    assert_eq!(r.status, 202, "{}", r.body);

    // Unshared: refused again.
    assert_204(&share_project(&host, "DELETE", &a(), &private, PROJECT_B), "unshare");
    assert_error(&launch_one(&host, &b(), PROJECT_B, &private, "web-2"), 400, Some("servers[0].type_id"));

    // Shared with USER_B only: USER_B may launch it, their colleague may not.
    assert_204(&share_user(&host, "PUT", &a(), &private, USER_B), "share with USER_B");
    assert_eq!(launch_one(&host, &b(), PROJECT_B, &private, "web-3").status, 202);
    assert_error(&launch_one(&host, &b2(), PROJECT_B, &private, "web-4"), 400, Some("servers[0].type_id"));

    let mut launched = hostnames_in(&host, PROJECT_B);
    launched.sort();
    assert_eq!(launched, ["bad-1", "ok-0", "web-1", "web-3"]);
    // The servers carry the type's id.
    let r = get(&host, &b(), &format!("/projects/{PROJECT_B}/servers/web-3"));
    assert_eq!(r.json()["type_id"], private.as_str(), "{}", r.body);
}

#[test]
fn launch_with_a_deleted_type_is_refused() {
    let host = Host::vnext();
    let id = private_type(&host, &a(), "m1.gone");
    assert_204(&call(&host, "DELETE", &a(), &type_path(&id), None), "delete");
    assert_error(&launch_one(&host, &a(), PROJECT_A, &id, "web-0"), 400, Some("servers[0].type_id"));
    // Even an admin cannot launch a type that no longer exists.
    assert_error(&launch_one(&host, &admin(), PROJECT_A, &id, "web-0"), 400, Some("servers[0].type_id"));
}
