//! The route table: every public path of the API, once.
//!
//! From it the root component renders JSON-Home ([`json_home`]), and every
//! component dispatches ([`match_path`]): a path that matches no row is 404,
//! a row whose methods do not include the request's is 405 with `Allow`.
//! Spin routes a request to a component by prefix (spin.toml); the row's
//! [`Component`] says which component must serve it, so a request that
//! reaches the wrong component is a 404 rather than a silent mis-route.
//!
//! Templates use RFC 6570 `{var}` for one path segment. Only implemented
//! methods are listed: JSON-Home promises nothing the API does not do.

use serde_json::{Map, Value, json};

/// Semantic version of the API (JSON-Home `api_version` and the header).
pub const API_VERSION: &str = "0.1.0";
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";
pub const API_VERSION_HEADER: &str = "x-openstack-compute-api-version";
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";
pub const VIRT_STATE_HEADER: &str = "x-openstack-compute-server-virt-state";
pub const POWER_STATE_HEADER: &str = "x-openstack-compute-server-power-state";
pub const JSON: &str = "application/json";
pub const JSON_HOME: &str = "application/json-home";
pub const SCHEMA_JSON: &str = "application/schema+json";
/// The serial console log (`GET /servers/{id}/console_log`).
pub const TEXT: &str = "text/plain; charset=utf-8";

/// Which WASI HTTP component serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Root,
    ServerTypes,
    Servers,
    ServerTasks,
    Events,
    Placements,
    Projects,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// JSON-Home relation, rendered as `rel/<rel>`.
    pub rel: &'static str,
    pub template: &'static str,
    pub methods: &'static [&'static str],
    pub component: Component,
    /// Media type of the response bodies (the default when `Accept` does
    /// not choose one of `other_formats`).
    pub format: &'static str,
    /// Other media types the route answers in, when `Accept` asks for them.
    pub other_formats: &'static [&'static str],
    /// Needs `X-Auth-Token`.
    pub auth: bool,
    /// Listed in JSON-Home (internal routes are not).
    pub public: bool,
    /// Query parameters the route takes, in the order JSON-Home lists them
    /// (RFC 6570 `{?a,b}` after the path, as the proposal's templates).
    pub query: &'static [&'static str],
}

const fn route(rel: &'static str, template: &'static str, methods: &'static [&'static str], component: Component) -> Route {
    Route { rel, template, methods, component, format: JSON, other_formats: &[], auth: true, public: true, query: &[] }
}

/// Query parameters of the two server lists (`/servers` adds `project`).
const SERVER_LIST_QUERY: &[&str] =
    &["limit", "marker", "since", "changes_since", "virt_state", "power_state", "launched_by", "tag"];
/// Query parameters of a server's tasks and of a task's items.
const TASK_LIST_QUERY: &[&str] = &["limit", "marker", "since", "changes_since", "state"];

pub static ROUTES: &[Route] = &[
    Route { format: JSON_HOME, auth: false, ..route("home", "/", &["GET"], Component::Root) },
    Route { auth: false, ..route("schemas", "/schemas", &["GET"], Component::Root) },
    // JSON by default, as the proposal; JSON Schema's own type on request.
    Route { other_formats: &[SCHEMA_JSON], auth: false, ..route("schema", "/schemas/{object}", &["GET"], Component::Root) },
    // OpenAPI 3.1, generated from this table and the schemas (crate::openapi).
    Route { auth: false, ..route("openapi", "/openapi.json", &["GET"], Component::Root) },
    Route { query: &["limit", "marker", "tag"], ..route("server_types", "/server_types", &["GET", "POST"], Component::ServerTypes) },
    // Also `rel/server_type_by_name` (see ALIASES): one segment, id or name.
    route("server_type", "/server_types/{server_type_id}", &["GET", "PATCH", "DELETE"], Component::ServerTypes),
    route("server_type_tags", "/server_types/{server_type_id}/tags", &["GET", "PUT", "DELETE"], Component::ServerTypes),
    route("server_type_tag", "/server_types/{server_type_id}/tags/{tag}", &["PUT", "DELETE"], Component::ServerTypes),
    route("server_type_shares", "/server_types/{server_type_id}/shares", &["GET", "PUT", "DELETE"], Component::ServerTypes),
    route("server_type_user_share", "/server_types/{server_type_id}/shares/users/{user_id}", &["PUT", "DELETE"], Component::ServerTypes),
    route("server_type_project_share", "/server_types/{server_type_id}/shares/projects/{project_id}", &["PUT", "DELETE"], Component::ServerTypes),
    Route { query: SERVER_LIST_QUERY, ..route("project_servers", "/projects/{project_id}/servers", &["GET", "POST"], Component::Servers) },
    route("project_server", "/projects/{project_id}/servers/{server_hostname}", &["GET"], Component::Servers),
    Route {
        query: &["limit", "marker", "since", "changes_since", "project", "virt_state", "power_state", "launched_by", "tag"],
        ..route("servers", "/servers", &["GET"], Component::Servers)
    },
    route("server", "/servers/{server_id}", &["GET", "HEAD", "PATCH"], Component::Servers),
    route("server_tags", "/servers/{server_id}/tags", &["GET", "PUT", "DELETE"], Component::Servers),
    route("server_tag", "/servers/{server_id}/tags/{tag}", &["PUT", "DELETE"], Component::Servers),
    Route {
        format: TEXT,
        query: &["lines"],
        ..route("server_console_log", "/servers/{server_id}/console_log", &["GET"], Component::Servers)
    },
    route("server_console", "/servers/{server_id}/consoles/{console_type}", &["GET"], Component::Servers),
    route("server_diagnostics", "/servers/{server_id}/diagnostics", &["GET"], Component::Servers),
    Route { query: TASK_LIST_QUERY, ..route("server_tasks", "/servers/{server_id}/tasks", &["GET", "POST"], Component::ServerTasks) },
    route("server_task", "/server_tasks/{server_task_id}", &["GET"], Component::ServerTasks),
    Route { query: TASK_LIST_QUERY, ..route("server_task_items", "/server_tasks/{server_task_id}/items", &["GET"], Component::ServerTasks) },
    // Not in the proposal: each item's `_links.self`.
    route("server_task_item", "/server_tasks/{server_task_id}/items/{server_task_item_id}", &["GET"], Component::ServerTasks),
    Route {
        query: &["limit", "marker", "tag", "parent_placement"],
        ..route("placements", "/placements", &["GET"], Component::Placements)
    },
    route("placement", "/placements/{placement_id}", &["GET"], Component::Placements),
    route("project", "/projects/{project_id}", &["GET"], Component::Projects),
    // Progress events from the hypervisor adapter; authenticated by a shared
    // secret, not a token (see crate::events).
    Route { auth: false, public: false, ..route("internal_events", "/internal/events", &["POST"], Component::Events) },
];

/// A second JSON-Home relation for a route, with its own name for the one
/// path variable: the proposal lists `/server_types/{server_type_name}`
/// beside `/server_types/{server_type_id}`, and both are one route (a
/// segment that parses as a UUID is an id, otherwise a name).
pub struct Alias {
    pub rel: &'static str,
    /// The `rel` of the route in [`ROUTES`].
    pub of: &'static str,
    pub template: &'static str,
    pub methods: &'static [&'static str],
}

pub static ALIASES: &[Alias] =
    &[Alias { rel: "server_type_by_name", of: "server_type", template: "/server_types/{server_type_name}", methods: &["GET"] }];

/// The proposal's spelling of the JSON Schema media type (RFC-less, a typo
/// of `application/schema+json`), understood in `Accept`.
const SCHEMA_JSON_PROPOSAL: &str = "application/json+schema";

/// The media type to answer with: of `offered` (best first when the client
/// has no preference), the one `Accept` gives the highest quality, ties
/// going to the earlier. No `Accept`, or one that accepts none of them:
/// the first, since the API speaks JSON only and a 406 would help nobody.
pub fn negotiate(accept: Option<&str>, offered: &[&'static str]) -> &'static str {
    let Some(accept) = accept else { return offered[0] };
    let quality = |offer: &str| -> f32 {
        let (kind, _) = offer.split_once('/').unwrap_or((offer, ""));
        let mut best: Option<(u8, f32)> = None; // (specificity, q)
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let mut media = parts.next().unwrap_or("").to_ascii_lowercase();
            if media == SCHEMA_JSON_PROPOSAL {
                media = SCHEMA_JSON.to_string();
            }
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|v| v.parse::<f32>().ok())
                .unwrap_or(1.0);
            let specificity = if media == offer {
                2
            } else if media == format!("{kind}/*") {
                1
            } else if media == "*/*" {
                0
            } else {
                continue;
            };
            // The most specific range that matches decides (RFC 9110 12.5.1).
            if best.is_none_or(|(s, _)| specificity > s) {
                best = Some((specificity, q));
            }
        }
        best.map_or(0.0, |(_, q)| q)
    };
    let mut chosen = offered[0];
    let mut chosen_q = 0.0;
    for offer in offered {
        let q = quality(offer);
        if q > chosen_q {
            (chosen, chosen_q) = (offer, q);
        }
    }
    chosen
}

/// Path variables of a matched route, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(&'static str, String)>);

impl Params {
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

fn percent_decode(segment: &str) -> Option<String> {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Spellings the 2014 proposal used for some paths, and the canonical
/// prefix each stands for (the spec's "Typos in the proposal").
const PROPOSAL_SPELLINGS: [(&str, &str); 4] = [
    ("/servers_tasks/", "/server_tasks/"),
    ("/servers_types", "/server_types"),
    ("/project/", "/projects/"),
    ("/server/", "/servers/"),
];

/// The canonical path for a path spelled as in the proposal
/// (`/servers_tasks/{id}/items` -> `/server_tasks/{id}/items`), if that is a
/// route; clients written from the proposal are redirected there (308).
pub fn canonical_path(path: &str) -> Option<String> {
    PROPOSAL_SPELLINGS.iter().find_map(|(typo, canonical)| {
        let rest = path.strip_prefix(typo)?;
        // `/servers_types` must end there or go on with a segment.
        if !typo.ends_with('/') && !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let fixed = format!("{canonical}{rest}");
        match_path(&fixed).is_some().then_some(fixed)
    })
}

/// The row whose template matches `path` (no query), with its variables.
/// A variable matches one non-empty segment; an undecodable segment matches
/// nothing.
pub fn match_path(path: &str) -> Option<(&'static Route, Params)> {
    let rest = path.strip_prefix('/')?;
    // Every request of every component goes through here: compare by
    // segments without collecting them, decode only the variables of the
    // row that matches (a Vec per row was ~2% of GET /servers/{id}).
    let depth = rest.bytes().filter(|&b| b == b'/').count();
    let row = ROUTES.iter().find(|r| {
        let template = &r.template[1..];
        template.bytes().filter(|&b| b == b'/').count() == depth
            && template.split('/').zip(rest.split('/')).all(|(part, seg)| match template_var(part) {
                Some(_) => !seg.is_empty(),
                None => part == seg,
            })
    })?;
    let mut params = Params::default();
    for (part, seg) in row.template[1..].split('/').zip(rest.split('/')) {
        if let Some(var) = template_var(part) {
            // A variable that does not decode (a bad escape, not UTF-8)
            // matches no other row either: literal segments never hold '%'.
            match percent_decode(seg) {
                Some(v) if !v.is_empty() => params.0.push((var, v)),
                _ => return None,
            }
        }
    }
    Some((row, params))
}

/// `{name}` in a route template: the variable's name.
fn template_var(part: &'static str) -> Option<&'static str> {
    part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
}

/// What a template variable holds, as a URI (JSON-Home `href-vars`).
/// What a path variable holds, as a URI (JSON-Home `href-vars`): the
/// schema property it takes its values from.
fn path_var_uri(var: &str) -> &'static str {
    match var {
        "object" => "/schemas#/items/properties/type",
        "server_type_id" => "/schemas/server_type#/properties/id",
        "server_type_name" => "/schemas/server_type#/properties/name",
        "project_id" => "/schemas/server#/properties/project_id",
        "server_id" => "/schemas/server#/properties/id",
        "server_task_id" => "/schemas/server_task#/properties/id",
        "server_task_item_id" => "/schemas/server_task_item#/properties/id",
        "server_hostname" => "/schemas/server#/properties/hostname",
        "placement_id" => "/schemas/placement#/properties/id",
        "user_id" => "/schemas/server_type#/properties/shares/properties/users/items",
        "tag" => "/schemas/tag",
        "console_type" => "/schemas/server_console#/properties/type",
        _ => "/schemas",
    }
}

/// Every query parameter is described once, in the `query` schema.
fn query_var_uri(var: &str) -> String {
    format!("/schemas/query#/properties/{var}")
}

/// The names of a template's path variables, in order.
fn path_vars(template: &str) -> impl Iterator<Item = &str> {
    template.split('/').filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
}

/// One JSON-Home resource: `href` for a plain path, else `href-template`
/// (path variables, then `{?query}` as RFC 6570) with `href-vars`.
fn home_resource(template: &str, query: &[&str], methods: &[&str], formats: &[&str]) -> Value {
    let mut res = if path_vars(template).next().is_none() && query.is_empty() {
        json!({ "href": template })
    } else {
        let href = if query.is_empty() { template.to_string() } else { format!("{template}{{?{}}}", query.join(",")) };
        let path = path_vars(template).map(|v| (v.to_string(), json!(path_var_uri(v))));
        let href_vars: Map<String, Value> = path.chain(query.iter().map(|v| (v.to_string(), json!(query_var_uri(v))))).collect();
        json!({ "href-template": href, "href-vars": href_vars })
    };
    let formats: Map<String, Value> = formats.iter().map(|f| (f.to_string(), json!({}))).collect();
    let mut hints = json!({ "allow": methods, "formats": formats });
    if methods.contains(&"POST") {
        hints["acceptPost"] = json!([JSON]);
    }
    res["hints"] = hints;
    res
}

/// The JSON-Home document (`GET /`).
pub fn json_home() -> Value {
    let mut resources = Map::new();
    for r in ROUTES.iter().filter(|r| r.public) {
        let formats: Vec<&str> = std::iter::once(r.format).chain(r.other_formats.iter().copied()).collect();
        resources.insert(format!("rel/{}", r.rel), home_resource(r.template, r.query, r.methods, &formats));
    }
    for a in ALIASES {
        let format = ROUTES.iter().find(|r| r.rel == a.of).map_or(JSON, |r| r.format);
        resources.insert(format!("rel/{}", a.rel), home_resource(a.template, &[], a.methods, &[format]));
    }
    json!({ "api_version": API_VERSION, "resources": resources })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposal_spellings_map_to_canonical_routes_only() {
        let id = "6f1d6a3e-1111-4000-8000-000000000001";
        assert_eq!(canonical_path(&format!("/servers_tasks/{id}/items")), Some(format!("/server_tasks/{id}/items")));
        assert_eq!(canonical_path("/servers_types"), Some("/server_types".to_string()));
        assert_eq!(canonical_path(&format!("/servers_types/{id}/tags")), Some(format!("/server_types/{id}/tags")));
        assert_eq!(canonical_path(&format!("/project/{id}/servers")), Some(format!("/projects/{id}/servers")));
        assert_eq!(canonical_path(&format!("/server/{id}/tags")), Some(format!("/servers/{id}/tags")));
        assert_eq!(canonical_path("/servers_typesX"), None);
        assert_eq!(canonical_path("/server/"), None, "only to a route that exists");
        assert_eq!(canonical_path("/server_tasks/x"), None, "canonical paths are not rewritten");
    }

    #[test]
    fn matches_literals_and_variables() {
        let (r, p) = match_path("/servers/abc").unwrap();
        assert_eq!(r.rel, "server");
        assert_eq!(p.get("server_id"), "abc");
        let (r, p) = match_path("/servers/abc/tasks").unwrap();
        assert_eq!((r.rel, p.get("server_id")), ("server_tasks", "abc"));
        assert_eq!(match_path("/").unwrap().0.rel, "home");
        assert_eq!(match_path("/server_types/m1%2Esmall").unwrap().1.get("server_type_id"), "m1.small");
    }

    #[test]
    fn projects_row_does_not_swallow_project_servers() {
        let (r, p) = match_path("/projects/p1").unwrap();
        assert_eq!((r.rel, r.component, p.get("project_id")), ("project", Component::Projects, "p1"));
        assert_eq!(match_path("/projects/p1/servers").unwrap().0.component, Component::Servers);
        assert_eq!(match_path("/placements/x").unwrap().0.rel, "placement");
        assert!(match_path("/projects").is_none());
    }

    #[test]
    fn unknown_paths_and_empty_or_bad_segments_do_not_match() {
        for p in ["/nope", "/server", "/servers/", "/servers/a/b/c", "/servers/%zz", "/servers/%ff", "//"] {
            assert!(match_path(p).is_none(), "{p}");
        }
    }

    #[test]
    fn json_home_lists_public_routes_with_hints() {
        let home = json_home();
        assert_eq!(home["api_version"], API_VERSION);
        let server = &home["resources"]["rel/server"];
        assert_eq!(server["href-template"], "/servers/{server_id}");
        assert_eq!(server["href-vars"]["server_id"], "/schemas/server#/properties/id");
        assert_eq!(server["hints"]["allow"], json!(["GET", "HEAD", "PATCH"]));
        let log = &home["resources"]["rel/server_console_log"];
        assert!(log["hints"]["formats"].get(TEXT).is_some(), "{log}");
        assert_eq!(home["resources"]["rel/server_console"]["href-vars"]["console_type"], "/schemas/server_console#/properties/type");
        assert!(server["hints"]["formats"].get(JSON).is_some());
        assert_eq!(home["resources"]["rel/schemas"]["href"], "/schemas");
        assert_eq!(home["resources"]["rel/project_servers"]["hints"]["acceptPost"], json!([JSON]));
        assert!(home["resources"].get("rel/internal_events").is_none());
    }

    #[test]
    fn json_home_uses_the_proposal_names_and_query_templates() {
        let home = json_home();
        let res = &home["resources"];
        assert_eq!(res["rel/server_type"]["href-template"], "/server_types/{server_type_id}");
        assert_eq!(res["rel/server_type_by_name"]["href-template"], "/server_types/{server_type_name}");
        assert_eq!(res["rel/server_type_by_name"]["hints"]["allow"], json!(["GET"]));
        assert_eq!(res["rel/server_task"]["href-template"], "/server_tasks/{server_task_id}");
        assert_eq!(res["rel/project_server"]["href-template"], "/projects/{project_id}/servers/{server_hostname}");
        assert_eq!(res["rel/placements"]["href-template"], "/placements{?limit,marker,tag,parent_placement}");
        assert_eq!(res["rel/server_console_log"]["href-template"], "/servers/{server_id}/console_log{?lines}");
        assert_eq!(res["rel/server_console_log"]["href-vars"]["lines"], "/schemas/query#/properties/lines");
        let tasks = &res["rel/server_tasks"];
        assert_eq!(tasks["href-template"], "/servers/{server_id}/tasks{?limit,marker,since,changes_since,state}");
        for var in ["server_id", "limit", "marker", "since", "state"] {
            assert!(tasks["href-vars"].get(var).is_some(), "{var}");
        }
        assert!(res["rel/schema"]["hints"]["formats"].get(JSON).is_some());
        assert!(res["rel/schema"]["hints"]["formats"].get(SCHEMA_JSON).is_some());
    }

    #[test]
    fn negotiation_follows_accept_and_defaults_to_the_first_offer() {
        let offered = [JSON, SCHEMA_JSON];
        assert_eq!(negotiate(None, &offered), JSON);
        assert_eq!(negotiate(Some("*/*"), &offered), JSON);
        assert_eq!(negotiate(Some("application/json"), &offered), JSON);
        assert_eq!(negotiate(Some("application/schema+json"), &offered), SCHEMA_JSON);
        assert_eq!(negotiate(Some("application/json+schema"), &offered), SCHEMA_JSON, "the proposal's spelling");
        assert_eq!(negotiate(Some("application/json;q=0.5, application/schema+json"), &offered), SCHEMA_JSON);
        assert_eq!(negotiate(Some("application/schema+json;q=0.1, */*"), &offered), JSON);
        assert_eq!(negotiate(Some("application/*, application/schema+json;q=0"), &offered), JSON);
        assert_eq!(negotiate(Some("text/html"), &offered), JSON, "nothing acceptable: JSON all the same");
    }

    #[test]
    fn aliases_name_existing_routes_with_the_same_shape() {
        for a in ALIASES {
            let r = ROUTES.iter().find(|r| r.rel == a.of).expect("alias of a route");
            assert_eq!(a.template.split('/').count(), r.template.split('/').count(), "{}", a.rel);
            assert!(a.methods.iter().all(|m| r.methods.contains(m)), "{}", a.rel);
            assert!(ROUTES.iter().all(|r| r.rel != a.rel), "{} is also a route", a.rel);
        }
    }

    #[test]
    fn every_template_is_unique_and_every_rel_too() {
        let mut t: Vec<_> = ROUTES.iter().map(|r| r.template).collect();
        let mut rels: Vec<_> = ROUTES.iter().map(|r| r.rel).collect();
        t.sort();
        t.dedup();
        rels.sort();
        rels.dedup();
        assert_eq!(t.len(), ROUTES.len());
        assert_eq!(rels.len(), ROUTES.len());
    }
}
