//! Placements (read from the test inventory, tests/fixtures/inventory.toml),
//! projects, and the JSON 404 of paths no component serves.
//!
//! The inventory's placements, in file order: region-one (root), az-1 and
//! az-2 (children of region-one), rack-a and rack-b (az-1), rack-c (az-2),
//! and edge (parents az-1 then az-2, written there as 32 hex digits).

use crate::harness::{Host, Resp, request, send};
use serde_json::json;

const USER: &str = "0a1b2c3d-1111-4000-8000-000000000001";
const PROJECT: &str = "0a1b2c3d-2222-4000-8000-000000000002";
const OTHER_PROJECT: &str = "0a1b2c3d-3333-4000-8000-000000000003";
const ADMIN: &str = "0a1b2c3d-4444-4000-8000-000000000004";

const REGION: &str = "7d3b3a10-0000-4000-8000-000000000001";
const AZ1: &str = "7d3b3a10-0000-4000-8000-000000000002";
const AZ2: &str = "7d3b3a10-0000-4000-8000-000000000003";
const RACK_A: &str = "7d3b3a10-0000-4000-8000-000000000004";
const RACK_B: &str = "7d3b3a10-0000-4000-8000-000000000005";
const RACK_C: &str = "7d3b3a10-0000-4000-8000-000000000006";
const EDGE: &str = "7d3b3a10-0000-4000-8000-000000000007";
const ALL: [&str; 7] = [REGION, AZ1, AZ2, RACK_A, RACK_B, RACK_C, EDGE];
/// An id no placement has.
const UNKNOWN: &str = "7d3b3a10-0000-4000-8000-0000000000ff";

fn member() -> String {
    format!("{USER}:{PROJECT}")
}

fn admin() -> String {
    format!("{ADMIN}:{OTHER_PROJECT}:admin")
}

fn get(host: &Host, path: &str) -> Resp {
    send("GET", &host.url(path), Some(&member()), None)
}

fn assert_error(r: &Resp, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.json()["error"];
    assert_eq!(e["code"], status, "{}", r.body);
    assert!(e["title"].is_string() && e["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
    if let Some(f) = field {
        assert_eq!(e["field"], f, "{}", r.body);
    }
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("application/json")), "{:?}", r.headers);
    assert!(r.header("x-openstack-request-id").is_some_and(|v| v.starts_with("req-")), "{:?}", r.headers);
}

/// The ids of a placement page, and its `next` href if any.
fn page(host: &Host, path: &str) -> (Vec<String>, Option<String>) {
    let r = get(host, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    let body = r.json();
    let ids = body["placements"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    assert!(body["_links"]["self"]["href"].as_str().is_some_and(|h| h.starts_with("/placements")), "{body}");
    (ids, body["_links"]["next"]["href"].as_str().map(str::to_string))
}

fn ids(path: &str, host: &Host) -> Vec<String> {
    let (ids, next) = page(host, path);
    assert_eq!(next, None, "GET {path} has more than one page");
    ids
}

/// Follows `next` from `first` to the end; every page but the last is full.
fn walk(host: &Host, first: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut path = Some(first.to_string());
    while let Some(p) = path {
        let (ids, next) = page(host, &p);
        if next.is_some() {
            assert_eq!(ids.len(), limit, "GET {p}: a page before the last is full");
        }
        assert!(!ids.is_empty(), "GET {p}: next must not lead to an empty page");
        all.extend(ids);
        path = next;
        assert!(all.len() <= ALL.len(), "paging does not end: {all:?}");
    }
    all
}

#[test]
fn placements_list_filter_page_and_show() {
    let host = Host::vnext();

    // Authentication: any valid token, but a token.
    assert_error(&send("GET", &host.url("/placements"), None, None), 401, None);
    assert_error(&send("GET", &host.url(&format!("/placements/{REGION}")), None, None), 401, None);

    // The whole inventory, in inventory order, with the view's fields.
    let r = get(&host, "/placements");
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let list = body["placements"].as_array().unwrap().clone();
    let got: Vec<&str> = list.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(got, ALL);
    assert_eq!(body["_links"]["self"]["href"], "/placements");
    assert!(body["_links"].get("next").is_none(), "{body}");
    let region = &list[0];
    assert_eq!(region["name"], "region-one");
    assert_eq!(region["description"], "The whole test deployment");
    assert!(region["parent_placement_id"].is_null(), "a root has no parent: {region}");
    assert_eq!(region["parent_placement_ids"], json!([]));
    assert_eq!(region["properties"], json!({"tier": "gold"}));
    assert_eq!(region["tags"], json!(["region", "test"]));
    assert_eq!(region["_links"]["self"]["href"], format!("/placements/{REGION}"));
    assert_eq!(region["_links"]["children"]["href"], format!("/placements?parent_placement={REGION}"));
    assert_eq!(region["_links"]["describedby"]["href"], "/schemas/placement");
    // Several parents: the first (inventory order) is the contract's single
    // field, and all of them are listed.
    let edge = &list[6];
    assert_eq!((edge["name"].as_str(), edge["parent_placement_id"].as_str()), (Some("edge"), Some(AZ1)));
    assert_eq!(edge["parent_placement_ids"], json!([AZ1, AZ2]));
    assert_eq!(list[5]["parent_placement_id"], AZ2, "rack-c names its parent by id");
    assert_eq!(list[3]["properties"], json!({"power": "A", "tier": "gold"}));
    assert_eq!(list[3]["description"], "");

    // The schema describes exactly these fields.
    let schema = send("GET", &host.url("/schemas/placement"), None, None).json();
    let mut schema_keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    let mut view_keys: Vec<&String> = region.as_object().unwrap().keys().collect();
    schema_keys.sort();
    view_keys.sort();
    assert_eq!(schema_keys, view_keys);

    // Paging: every page size walks the same list, `next` keeps the filters.
    for limit in [1, 3, 7] {
        assert_eq!(walk(&host, &format!("/placements?limit={limit}"), limit), ALL, "limit={limit}");
    }
    let (first, next) = page(&host, "/placements?limit=1&tag=az");
    assert_eq!(first, [AZ1]);
    assert_eq!(next.as_deref(), Some(format!("/placements?limit=1&tag=az&marker={AZ1}").as_str()));
    assert_eq!(walk(&host, "/placements?limit=1&tag=az", 1), [AZ1, AZ2]);
    // A marker in the 32-hex form is the same marker.
    assert_eq!(ids(&format!("/placements?marker={}", AZ2.replace('-', "")), &host), [RACK_A, RACK_B, RACK_C, EDGE]);

    // Filters: tags OR, direct children only, both together AND.
    assert_eq!(ids("/placements?tag=az&tag=edge", &host), [AZ1, AZ2, EDGE]);
    assert_eq!(ids("/placements?tag=nobody-has-this", &host), Vec::<String>::new());
    assert_eq!(ids(&format!("/placements?parent_placement={AZ1}"), &host), [RACK_A, RACK_B, EDGE]);
    assert_eq!(ids(&format!("/placements?parent_placement={REGION}"), &host), [AZ1, AZ2], "children, not descendants");
    assert_eq!(ids(&format!("/placements?parent_placement={}", AZ2.replace('-', "")), &host), [RACK_C, EDGE]);
    assert_eq!(ids(&format!("/placements?parent_placement={RACK_A}"), &host), Vec::<String>::new());
    assert_eq!(ids(&format!("/placements?parent_placement={AZ2}&tag=edge"), &host), [EDGE]);
    assert_eq!(ids(&format!("/placements?parent_placement={AZ1}&parent_placement={AZ2}"), &host), [RACK_A, RACK_B, RACK_C, EDGE]);
    // The children link of a placement is that filter.
    let children = list[2]["_links"]["children"]["href"].as_str().unwrap();
    assert_eq!(ids(children, &host), [RACK_C, EDGE]);

    // Bad query: 400 naming the parameter.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=many", "limit"),
        (&format!("marker={UNKNOWN}")[..], "marker"),
        ("marker=not-an-id", "marker"),
        (&format!("tag=az&marker={REGION}")[..], "marker"),
        ("tag=a%2Fb", "tag"),
        ("tag=", "tag"),
        (&format!("parent_placement={UNKNOWN}")[..], "parent_placement"),
        ("parent_placement=region-one", "parent_placement"),
        ("zone=az-1", "zone"),
    ] {
        let r = get(&host, &format!("/placements?{query}"));
        assert_error(&r, 400, Some(field));
    }

    // One placement, by either id spelling; 404 for unknown or malformed ids.
    let r = get(&host, &format!("/placements/{EDGE}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), list[6]);
    let r = get(&host, &format!("/placements/{}", EDGE.replace('-', "").to_uppercase()));
    assert_eq!((r.status, r.json()["id"].as_str()), (200, Some(EDGE)), "{}", r.body);
    assert_error(&get(&host, &format!("/placements/{UNKNOWN}")), 404, None);
    assert_error(&get(&host, "/placements/region-one"), 404, None);
    assert_error(&get(&host, &format!("/placements/{REGION}/children")), 404, None);
    // Admins see the same.
    let r = send("GET", &host.url(&format!("/placements/{REGION}")), Some(&admin()), None);
    assert_eq!(r.json(), list[0]);

    // Read-only.
    let r = send("POST", &host.url("/placements"), Some(&admin()), Some(&json!({"name": "x"})));
    assert_error(&r, 405, None);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_error(&send("DELETE", &host.url(&format!("/placements/{REGION}")), Some(&admin()), None), 405, None);
}

#[test]
fn projects_show_own_and_unknown_paths_are_json_404() {
    let host = Host::vnext();

    // JSON-Home lists the new routes.
    let home = send("GET", &host.url("/"), None, None).json();
    let res = &home["resources"];
    assert_eq!(res["rel/placements"]["href-template"], "/placements{?limit,marker,tag,parent_placement}");
    assert_eq!(res["rel/placements"]["href-vars"]["parent_placement"], "/schemas/query#/properties/parent_placement");
    assert_eq!(res["rel/placement"]["href-template"], "/placements/{placement_id}");
    assert_eq!(res["rel/placement"]["href-vars"]["placement_id"], "/schemas/placement#/properties/id");
    assert_eq!(res["rel/project"]["href-template"], "/projects/{project_id}");
    assert_eq!(res["rel/project"]["hints"]["allow"], json!(["GET"]));

    // A member sees its own project, in either id spelling.
    let expected = json!({
        "id": PROJECT,
        "_links": {
            "self": {"href": format!("/projects/{PROJECT}")},
            "rel/project_servers": {"href": format!("/projects/{PROJECT}/servers")},
        }
    });
    for spelling in [PROJECT.to_string(), PROJECT.replace('-', "")] {
        let r = get(&host, &format!("/projects/{spelling}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json(), expected);
    }
    // Another project does not exist for a member; an admin sees any.
    assert_error(&get(&host, &format!("/projects/{OTHER_PROJECT}")), 404, None);
    let r = send("GET", &host.url(&format!("/projects/{PROJECT}")), Some(&admin()), None);
    assert_eq!((r.status, r.json()), (200, expected.clone()), "{}", r.body);
    assert_error(&get(&host, "/projects/my-project"), 404, None);
    assert_error(&send("GET", &host.url(&format!("/projects/{PROJECT}")), None, None), 401, None);
    assert_error(&send("DELETE", &host.url(&format!("/projects/{PROJECT}")), Some(&admin()), None), 405, None);

    // The project route does not take its servers' routes: a launch still
    // reaches the servers component, which validates the body (400 naming
    // the missing field), rather than a 404 or 405 from projects.
    let r = send("POST", &host.url(&format!("/projects/{PROJECT}/servers")), Some(&member()), Some(&json!({})));
    assert_error(&r, 400, None);

    // Paths no component serves: 404 in the one error shape, whatever the
    // method, and the catch-all does not shadow real routes.
    for path in ["/nope", "/nope/deeper/still", "/projects", "/projects/x/other", "/placements/x/y", "/schemas/a/b", "/internal", "/server_tasks"] {
        for method in ["GET", "POST", "DELETE"] {
            let r = request(method, &host.url(path), &[("X-Auth-Token", &member())], None);
            assert_error(&r, 404, None);
            assert!(r.json()["error"]["message"].as_str().unwrap().contains(path), "{method} {path}: {}", r.body);
            assert_eq!(r.header("x-openstack-compute-api-version"), Some(vnext_core::routes::API_VERSION));
        }
    }
    let r = request("HEAD", &host.url("/nope"), &[], None);
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    assert_eq!(send("GET", &host.url("/"), None, None).status, 200);
    assert_eq!(send("GET", &host.url("/schemas/placement"), None, None).status, 200);
    // Without a token, real routes say 401 (their component answered), not 404.
    for path in ["/placements", &format!("/servers/{PROJECT}"), &format!("/server_tasks/{PROJECT}")] {
        assert_error(&send("GET", &host.url(path), None, None), 401, None);
    }
}
