//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json`.
//!
//! It is generated, never written by hand: paths, methods, path variables,
//! query parameters and which routes need a token come from the route
//! table ([`crate::routes::ROUTES`]); request and response bodies are the
//! JSON Schemas of [`crate::schemas`] (the very documents requests are
//! validated with), embedded under `components/schemas`. What the route
//! table does not say, each operation's success status, bodies and the
//! errors it can answer, is [`OPERATIONS`], one row per route and method;
//! a test checks the rows cover the public routes exactly, and the API
//! tests check the statuses against apiary.apib.
//!
//! Internal routes (the adapter's events) are left out, as in JSON-Home.

use crate::routes::{self, ROUTES, Route};
use crate::schemas;
use serde_json::{Map, Value, json};

/// What an answer carries.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// No body (204, HEAD).
    Empty,
    /// One object of this schema.
    Object(&'static str),
    /// A JSON array of this schema's objects.
    Array(&'static str),
    /// A page: `{<key>: [objects], _links: {self, next?}}`.
    Page { key: &'static str, object: &'static str },
    /// The serial console log.
    Text,
    /// A document with its own schema elsewhere (JSON-Home, a JSON Schema,
    /// this document, the schema index, a project).
    Inline(fn() -> Value),
}

/// One operation: a method of a route.
pub struct Operation {
    /// The route's `rel` in [`ROUTES`].
    pub rel: &'static str,
    pub method: &'static str,
    pub summary: &'static str,
    /// The success status.
    pub status: u16,
    /// The request object validating the body, if the operation takes one.
    pub request: Option<&'static str>,
    pub response: Body,
    /// Error statuses the operation answers, besides the 503 every
    /// operation that reaches the store or the hypervisor may answer.
    pub errors: &'static [u16],
}

const fn op(rel: &'static str, method: &'static str, summary: &'static str, status: u16, response: Body, errors: &'static [u16]) -> Operation {
    Operation { rel, method, summary, status, request: None, response, errors }
}

/// Errors of a read by id, and of a write of a body with one.
const READ: &[u16] = &[401, 404];
const TYPE_WRITE: &[u16] = &[400, 401, 403, 404, 413];
const TYPE_DELETE: &[u16] = &[401, 403, 404];
const SHARE: &[u16] = &[400, 401, 403, 404];
const SERVER_TAG_WRITE: &[u16] = &[400, 401, 404, 409];
const LIST: &[u16] = &[400, 401];

pub static OPERATIONS: &[Operation] = &[
    op("home", "GET", "The JSON-Home document of every public route", 200, Body::Inline(home_schema), &[]),
    op("schemas", "GET", "The index of the JSON Schemas", 200, Body::Inline(schema_index_schema), &[]),
    op("schema", "GET", "One JSON Schema (draft 2020-12)", 200, Body::Inline(any_object), &[404]),
    op("openapi", "GET", "This OpenAPI document", 200, Body::Inline(openapi_schema), &[]),
    op("server_types", "GET", "List the server types visible to you", 200, Body::Page { key: "server_types", object: "server_type" }, LIST),
    Operation { request: Some("server_type_create"), ..op("server_types", "POST", "Create a server type (admin)", 201, Body::Object("server_type"), &[400, 401, 403, 413]) },
    op("server_type", "GET", "Get a server type by id or name", 200, Body::Object("server_type"), READ),
    Operation { request: Some("server_type_patch"), ..op("server_type", "PATCH", "Change a server type (admin)", 204, Body::Empty, TYPE_WRITE) },
    op("server_type", "DELETE", "Delete a server type (admin)", 204, Body::Empty, TYPE_DELETE),
    op("server_type_tags", "GET", "A server type's tags", 200, Body::Array("tag"), READ),
    Operation { request: Some("tag_list"), ..op("server_type_tags", "PUT", "Replace a server type's tags (admin)", 204, Body::Empty, TYPE_WRITE) },
    op("server_type_tags", "DELETE", "Remove every tag of a server type (admin)", 204, Body::Empty, TYPE_DELETE),
    op("server_type_tag", "PUT", "Add a tag to a server type (admin)", 204, Body::Empty, SHARE),
    op("server_type_tag", "DELETE", "Remove a tag from a server type (admin)", 204, Body::Empty, TYPE_DELETE),
    op("server_type_shares", "GET", "Who a server type is shared with (admin)", 200, Body::Object("server_type_shares"), TYPE_DELETE),
    Operation { request: Some("server_type_shares"), ..op("server_type_shares", "PUT", "Replace a server type's shares (admin)", 204, Body::Empty, TYPE_WRITE) },
    op("server_type_shares", "DELETE", "Share a server type with nobody (admin)", 204, Body::Empty, TYPE_DELETE),
    op("server_type_user_share", "PUT", "Share a server type with a user (admin)", 204, Body::Empty, SHARE),
    op("server_type_user_share", "DELETE", "Stop sharing a server type with a user (admin)", 204, Body::Empty, SHARE),
    op("server_type_project_share", "PUT", "Share a server type with a project (admin)", 204, Body::Empty, SHARE),
    op("server_type_project_share", "DELETE", "Stop sharing a server type with a project (admin)", 204, Body::Empty, SHARE),
    op("project_servers", "GET", "List a project's servers", 200, Body::Page { key: "servers", object: "server" }, &[400, 401, 404]),
    Operation {
        request: Some("server_launch"),
        ..op("project_servers", "POST", "Launch one or more servers", 202, Body::Array("server_launch_result"), &[400, 401, 403, 404, 413])
    },
    op("project_server", "GET", "Get a project's server by hostname", 200, Body::Object("server"), READ),
    op("servers", "GET", "List servers across your projects (admins: any)", 200, Body::Page { key: "servers", object: "server" }, LIST),
    op("server", "GET", "Get a server", 200, Body::Object("server"), READ),
    op("server", "HEAD", "A server's states, in headers", 200, Body::Empty, READ),
    Operation { request: Some("server_patch"), ..op("server", "PATCH", "Rename a server or move it to another project", 204, Body::Empty, &[400, 401, 403, 404, 409, 413]) },
    op("server_tags", "GET", "A server's tags", 200, Body::Array("tag"), READ),
    Operation { request: Some("tag_list"), ..op("server_tags", "PUT", "Replace a server's tags", 204, Body::Empty, &[400, 401, 404, 409, 413]) },
    op("server_tags", "DELETE", "Remove every tag of a server", 204, Body::Empty, &[401, 404, 409]),
    op("server_tag", "PUT", "Add a tag to a server", 204, Body::Empty, SERVER_TAG_WRITE),
    op("server_tag", "DELETE", "Remove a tag from a server", 204, Body::Empty, &[401, 404, 409]),
    op("server_console_log", "GET", "The last lines of a server's serial console", 200, Body::Text, &[400, 401, 404, 409]),
    op("server_console", "GET", "A one-time URI for an interactive console", 200, Body::Object("server_console"), &[400, 401, 404, 409]),
    op("server_diagnostics", "GET", "A server's resource counters", 200, Body::Object("diagnostics"), &[401, 404, 409]),
    op("server_tasks", "GET", "A server's tasks, newest first", 200, Body::Page { key: "tasks", object: "server_task" }, &[400, 401, 404]),
    Operation {
        request: Some("server_task_create"),
        ..op("server_tasks", "POST", "Start a task (a lifecycle action) on a server", 202, Body::Object("server_task"), &[400, 401, 404, 409, 413])
    },
    op("server_task", "GET", "Get a task", 200, Body::Object("server_task"), READ),
    op("server_task_items", "GET", "A task's items, in step order", 200, Body::Page { key: "items", object: "server_task_item" }, &[400, 401, 404]),
    op("server_task_item", "GET", "Get a task item", 200, Body::Object("server_task_item"), READ),
    op("placements", "GET", "List the placements", 200, Body::Page { key: "placements", object: "placement" }, LIST),
    op("placement", "GET", "Get a placement", 200, Body::Object("placement"), READ),
    op("project", "GET", "A project you are a member of, with its links", 200, Body::Inline(project_schema), READ),
];

/// OpenAPI links: from an answer to the operations its ids lead to, so a
/// client (and Schemathesis's stateful phase) can follow a created
/// resource. (from rel, from method, target operationId, its parameter,
/// where the value is in the answer.)
const LINKS: &[(&str, &str, &str, &str, &str)] = &[
    ("server_types", "POST", "get_server_type", "server_type_id", "$response.body#/id"),
    ("server_types", "POST", "patch_server_type", "server_type_id", "$response.body#/id"),
    ("server_types", "POST", "put_server_type_tags", "server_type_id", "$response.body#/id"),
    ("server_types", "POST", "get_server_type_shares", "server_type_id", "$response.body#/id"),
    ("server_types", "POST", "delete_server_type", "server_type_id", "$response.body#/id"),
    ("project_servers", "POST", "get_server", "server_id", "$response.body#/0/id"),
    ("project_servers", "POST", "head_server", "server_id", "$response.body#/0/id"),
    ("project_servers", "POST", "patch_server", "server_id", "$response.body#/0/id"),
    ("project_servers", "POST", "put_server_tags", "server_id", "$response.body#/0/id"),
    ("project_servers", "POST", "post_server_tasks", "server_id", "$response.body#/0/id"),
    ("project_servers", "POST", "get_server_console_log", "server_id", "$response.body#/0/id"),
    ("project_servers", "POST", "get_server_diagnostics", "server_id", "$response.body#/0/id"),
    ("server_tasks", "POST", "get_server_task", "server_task_id", "$response.body#/id"),
    ("server_tasks", "POST", "get_server_task_items", "server_task_id", "$response.body#/id"),
    ("placements", "GET", "get_placement", "placement_id", "$response.body#/placements/0/id"),
];

/// Query parameters that may be repeated (any of their values matches).
const REPEATABLE: &[&str] = &["tag", "project", "launched_by", "virt_state", "power_state", "state"];

/// Operations that answer from the code alone, never 503.
const STATELESS: &[&str] = &["home", "schemas", "schema", "openapi"];

/// Where the embedded schemas live in the document.
const COMPONENTS: &str = "#/components/schemas/";

fn schema_ref(object: &str) -> Value {
    json!({ "$ref": format!("{COMPONENTS}{object}") })
}

fn any_object() -> Value {
    json!({ "type": "object" })
}

fn home_schema() -> Value {
    json!({
        "type": "object",
        "required": ["api_version", "resources"],
        "properties": {
            "api_version": { "type": "string" },
            "resources": { "type": "object", "additionalProperties": { "type": "object" } }
        }
    })
}

fn schema_index_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type", "description", "_links"],
            "properties": { "type": { "enum": schemas::OBJECTS }, "description": { "type": "string" }, "_links": { "type": "object" } }
        }
    })
}

fn openapi_schema() -> Value {
    json!({ "type": "object", "required": ["openapi", "info", "paths"], "properties": { "openapi": { "const": OPENAPI_VERSION } } })
}

fn project_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "_links"],
        "properties": { "id": { "type": "string", "format": "uuid" }, "_links": { "type": "object" } }
    })
}

pub const OPENAPI_VERSION: &str = "3.1.0";

/// The operation of `rel` and `method`, if the table has one.
pub fn operation(rel: &str, method: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.rel == rel && o.method == method)
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES.iter().filter(|r| r.public) {
        let mut item = Map::new();
        let params = path_parameters(route.template);
        if !params.is_empty() {
            item.insert("parameters".into(), Value::Array(params));
        }
        for method in route.methods {
            let op = operation(route.rel, method).unwrap_or_else(|| panic!("no OPERATIONS row for {method} {}", route.template));
            item.insert(method.to_ascii_lowercase(), operation_object(route, op));
        }
        paths.insert(route.template.to_string(), Value::Object(item));
    }
    let mut components = Map::new();
    for object in schemas::OBJECTS {
        let doc = schemas::get(object).expect("every listed object has a schema");
        components.insert(object.to_string(), embedded(object, doc));
    }
    json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "OpenStack Compute API vNext",
            "version": routes::API_VERSION,
            "description": "Generated from the route table and the JSON Schemas that validate requests. \
                Every error body is the `error` schema. Authenticated operations need `X-Auth-Token`."
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": { "token": { "type": "apiKey", "in": "header", "name": routes::AUTH_TOKEN_HEADER } }
        },
        "security": [{ "token": [] }]
    })
}

fn operation_object(route: &Route, op: &Operation) -> Value {
    let mut o = json!({
        "operationId": format!("{}_{}", op.method.to_ascii_lowercase(), op.rel),
        "summary": op.summary,
        "tags": [tag_of(route)],
    });
    if !route.auth {
        o["security"] = json!([]);
    }
    // A route's query parameters are those of its GET (a list's paging and
    // filters, the console log's `lines`); other methods take none.
    let query: Vec<Value> = if op.method == "GET" { route.query.iter().map(|q| query_parameter(route.rel, q)).collect() } else { Vec::new() };
    if !query.is_empty() {
        o["parameters"] = Value::Array(query);
    }
    if let Some(request) = op.request {
        o["requestBody"] = json!({ "required": true, "content": { routes::JSON: { "schema": schema_ref(request) } } });
    }
    let mut responses = Map::new();
    responses.insert(op.status.to_string(), success(route, op));
    let general: &[u16] = if STATELESS.contains(&op.rel) { &[] } else { &[503] };
    for status in op.errors.iter().chain(general) {
        responses.insert(status.to_string(), error_response(*status));
    }
    o["responses"] = Value::Object(responses);
    o
}

/// Operations grouped as the resource groups (components) of the API.
fn tag_of(route: &Route) -> &'static str {
    use routes::Component as C;
    match route.component {
        C::Root => "root",
        C::ServerTypes => "server_types",
        C::Servers => "servers",
        C::ServerTasks => "server_tasks",
        C::Placements => "placements",
        C::Projects => "projects",
        C::Events => "internal",
    }
}

fn success(route: &Route, op: &Operation) -> Value {
    let description = crate::error::title_for(op.status);
    let mut r = json!({ "description": description });
    let formats: Vec<&str> = std::iter::once(route.format).chain(route.other_formats.iter().copied()).collect();
    let schema = match op.response {
        Body::Empty => None,
        Body::Object(o) => Some(schema_ref(o)),
        Body::Array(o) => Some(json!({ "type": "array", "items": schema_ref(o) })),
        Body::Page { key, object } => Some(json!({
            "type": "object",
            "additionalProperties": false,
            "required": [key, "_links"],
            "properties": {
                key: { "type": "array", "items": schema_ref(object) },
                "_links": {
                    "type": "object",
                    "required": ["self"],
                    "properties": { "self": { "type": "object" }, "next": { "type": "object" } }
                }
            }
        })),
        Body::Text => Some(json!({ "type": "string" })),
        Body::Inline(f) => Some(f()),
    };
    if let Some(schema) = schema {
        let content: Map<String, Value> = formats.iter().map(|f| (f.to_string(), json!({ "schema": schema }))).collect();
        r["content"] = Value::Object(content);
    }
    let links: Map<String, Value> = LINKS
        .iter()
        .filter(|(rel, method, ..)| *rel == op.rel && *method == op.method)
        .map(|(_, _, target, param, expr)| (target.to_string(), json!({ "operationId": target, "parameters": { *param: expr } })))
        .collect();
    if !links.is_empty() {
        r["links"] = Value::Object(links);
    }
    let mut headers = Map::new();
    if op.status == 201 || (op.status == 202 && op.rel == "server_tasks") {
        headers.insert("Location".into(), json!({ "description": "The new resource's URI", "schema": { "type": "string" } }));
    }
    if op.method == "HEAD" {
        for h in [routes::VIRT_STATE_HEADER, routes::POWER_STATE_HEADER] {
            headers.insert(h.into(), json!({ "required": true, "schema": { "type": "string" } }));
        }
    }
    if !headers.is_empty() {
        r["headers"] = Value::Object(headers);
    }
    r
}

fn error_response(status: u16) -> Value {
    let mut r = json!({
        "description": crate::error::title_for(status),
        "content": { routes::JSON: { "schema": schema_ref("error") } }
    });
    if status == 503 {
        r["description"] = json!("The key-value store or the hypervisor cannot be reached now; retry after `Retry-After` seconds");
    }
    r
}

/// `{name}` segments of a template, each a required path parameter.
fn path_parameters(template: &str) -> Vec<Value> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": path_schema(name) }))
        .collect()
}

fn path_schema(name: &str) -> Value {
    match name {
        "object" => json!({ "enum": schemas::OBJECTS }),
        "console_type" => json!({
            "enum": crate::hypervisor::ConsoleType::ALL.map(|c| c.as_str()),
            "description": "one the server's compute node serves (others: 400)"
        }),
        "tag" => schema_ref("tag"),
        // An id, or for server types also a name.
        "server_type_id" => json!({ "type": "string", "minLength": 1, "description": "a server type's id or name" }),
        "server_hostname" => json!({ "type": "string", "minLength": 1 }),
        _ => json!({ "type": "string", "format": "uuid" }),
    }
}

fn query_parameter(rel: &str, name: &str) -> Value {
    let property = match (rel, name) {
        // The served `query` schema describes `state` for both lists at
        // once; each list takes the states of its own objects.
        ("server_tasks", "state") => json!({ "enum": crate::model::TaskState::names() }),
        ("server_task_items", "state") => json!({ "enum": crate::model::ItemState::names() }),
        (_, "tag") => schema_ref("tag"),
        _ => schemas::get("query").and_then(|q| q["properties"].get(name).cloned()).unwrap_or_else(|| json!({ "type": "string" })),
    };
    if REPEATABLE.contains(&name) {
        json!({ "name": name, "in": "query", "style": "form", "explode": true, "schema": { "type": "array", "items": property } })
    } else {
        json!({ "name": name, "in": "query", "schema": property })
    }
}

/// A served schema document as a component: its own `$id` and `$schema`
/// dropped (the document is the base), references rewritten to point into
/// `components/schemas` (`/schemas/x#/a` and a document's own `#/a`).
fn embedded(object: &str, mut doc: Value) -> Value {
    if let Some(map) = doc.as_object_mut() {
        map.remove("$id");
        map.remove("$schema");
    }
    rewrite_refs(object, &mut doc);
    doc
}

fn rewrite_refs(object: &str, v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                *r = if let Some(local) = r.strip_prefix("#/") {
                    format!("{COMPONENTS}{object}/{local}")
                } else if let Some(other) = r.strip_prefix("/schemas/") {
                    let (name, pointer) = other.split_once('#').unwrap_or((other, ""));
                    format!("{COMPONENTS}{name}{pointer}")
                } else {
                    r.clone()
                };
            }
            map.values_mut().for_each(|x| rewrite_refs(object, x));
        }
        Value::Array(items) => items.iter_mut().for_each(|x| rewrite_refs(object, x)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_public_route_and_method_has_exactly_one_operation() {
        for r in ROUTES.iter().filter(|r| r.public) {
            for m in r.methods {
                assert_eq!(OPERATIONS.iter().filter(|o| o.rel == r.rel && o.method == *m).count(), 1, "{m} {}", r.template);
            }
        }
        for o in OPERATIONS {
            let route = ROUTES.iter().find(|r| r.rel == o.rel && r.public).unwrap_or_else(|| panic!("{} is no public route", o.rel));
            assert!(route.methods.contains(&o.method), "{} {}: the route has no such method", o.method, route.template);
            if route.auth {
                assert!(o.errors.contains(&401), "{} {} needs a token, so it answers 401", o.method, route.template);
            }
            if let Some(req) = o.request {
                assert!(schemas::REQUEST_OBJECTS.contains(&req), "{req} is not a request object");
                assert!(o.errors.contains(&400) && o.errors.contains(&413), "{} {} takes a body", o.method, route.template);
            }
        }
    }

    #[test]
    fn every_reference_points_into_the_document() {
        let doc = document();
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not local"));
                        assert!(doc.pointer(pointer).is_some(), "{r} points nowhere");
                    }
                    m.values().for_each(|x| walk(x, doc));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
        assert!(doc.pointer("/components/schemas/server/$id").is_none(), "ids are dropped");
    }

    #[test]
    fn links_name_operations_and_parameters_of_the_document() {
        let doc = document();
        let ops: Vec<(String, Value)> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().iter().filter(|(k, _)| *k != "parameters").map(|(_, o)| (o["operationId"].as_str().unwrap().to_string(), item.clone())))
            .collect();
        for (_, _, target, param, _) in LINKS {
            let (_, item) = ops.iter().find(|(id, _)| id == target).unwrap_or_else(|| panic!("no operation {target}"));
            assert!(item["parameters"].as_array().unwrap().iter().any(|p| p["name"] == *param), "{target} has no parameter {param}");
        }
    }

    #[test]
    fn the_events_route_stays_out_and_open_routes_need_no_token() {
        let doc = document();
        assert!(doc["paths"].get("/internal/events").is_none());
        assert_eq!(doc["paths"]["/"]["get"]["security"], json!([]));
        assert!(doc["paths"]["/servers"]["get"].get("security").is_none(), "the document-wide token applies");
        assert!(doc["paths"]["/servers/{server_id}/tasks"]["post"]["responses"].get("503").is_some());
        assert!(doc["paths"]["/schemas"]["get"]["responses"].get("503").is_none());
        assert!(doc["paths"]["/server_types"]["get"]["parameters"].is_array());
        assert!(doc["paths"]["/server_types"]["post"].get("parameters").is_none(), "a POST takes no list filters");
    }
}
