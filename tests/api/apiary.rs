//! Keeps `apiary.apib` (the API Blueprint of the API) true to the code.
//!
//! A small line-based reader of the blueprint (`## name [path]` resources,
//! `### name [METHOD]` or `[METHOD path]` actions, `+ Parameters` example
//! values, `+ Request` / `+ Response NNN (media)` and their `+ Body` blocks)
//! feeds these checks:
//! - every body example is valid JSON, and every error example has the one
//!   error shape with the code and title of its status;
//! - the documented (method, path) pairs are exactly the public routes of
//!   `vnext_core::routes::ROUTES` (a template of `ALIASES`, such as
//!   `/server_types/{server_type_name}`, may document its route's methods
//!   again); authenticated routes document a 401 and the others do not;
//!   success bodies have one of the route's media types;
//! - each resource's `Allow:` sentence names exactly the methods ROUTES
//!   gives its template (prose that a new method would otherwise leave stale);
//! - the "Task transitions" table is `vnext_core::transitions::table_json()`;
//! - the examples of the routes that need no created ids (`/`, `/schemas`,
//!   `/schemas/{object}`) have the same top-level keys (of the first item,
//!   for an array) as the live host's answers, asked for in each documented
//!   media type.

use crate::harness::{Host, repo_root, request};
use serde_json::Value;
use std::collections::BTreeSet;
use vnext_core::error::title_for;
use vnext_core::routes::{ALIASES, API_VERSION, API_VERSION_HEADER, REQUEST_ID_HEADER, ROUTES};
use vnext_core::transitions::table_json;

#[derive(Debug)]
struct Message {
    line: usize,
    /// `None` for a request.
    status: Option<u16>,
    media: Option<String>,
    body: Option<String>,
}

#[derive(Debug)]
struct Action {
    line: usize,
    method: String,
    /// Template without its query part (`{?...}`).
    path: String,
    /// Example values of the resource's and the action's parameters.
    params: Vec<(String, String)>,
    messages: Vec<Message>,
}

#[derive(Debug, Default)]
struct Blueprint {
    actions: Vec<Action>,
    /// `(line, resource template, methods)` of each resource's `Allow:` sentence.
    allows: Vec<(usize, String, Vec<String>)>,
    /// Table rows (`| ... |`) of the "Task transitions" group, header excluded.
    transition_rows: Vec<String>,
    errors: Vec<String>,
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// The text inside the last `[...]` of a heading.
fn bracket(l: &str) -> Option<&str> {
    let l = l.trim_end();
    let inner = l.strip_suffix(']')?;
    Some(&inner[inner.rfind('[')? + 1..])
}

fn strip_query(path: &str) -> String {
    path.split("{?").next().unwrap_or(path).to_string()
}

/// The methods of a prose sentence ``Allow: `GET`, `PUT`.``: the backquoted
/// words after `Allow: ` up to the end of the sentence.
fn allow_methods(l: &str) -> Option<Vec<String>> {
    let rest = &l[l.find("Allow: `")? + "Allow: ".len()..];
    let sentence = rest.split(". ").next().unwrap_or(rest);
    Some(sentence.split('`').skip(1).step_by(2).map(str::to_string).collect())
}

/// `+ name: `value` (type) - ...` -> (name, value).
fn param_example(l: &str) -> Option<(String, String)> {
    let rest = l.trim().strip_prefix("+ ")?;
    let (name, after) = rest.split_once(':')?;
    let value = after.trim_start().strip_prefix('`')?.split('`').next()?;
    Some((name.trim().to_string(), value.to_string()))
}

fn parse(text: &str) -> Blueprint {
    let lines: Vec<&str> = text.lines().collect();
    let mut bp = Blueprint::default();
    let mut group = String::new();
    let mut resource: Option<(String, Vec<(String, String)>)> = None;
    let mut in_params = false;
    // An action heading was seen since the last resource heading.
    let mut action_open = false;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let n = i + 1;
        if let Some(g) = l.strip_prefix("# ") {
            group = g.trim().to_string();
            resource = None;
            in_params = false;
            action_open = false;
        } else if l.starts_with("## ") {
            in_params = false;
            action_open = false;
            resource = match bracket(l) {
                Some(p) if p.starts_with('/') => Some((strip_query(p), Vec::new())),
                _ => None,
            };
        } else if l.starts_with("### ") {
            in_params = false;
            if let Some(b) = bracket(l) {
                action_open = true;
                let (method, own_path) = match b.split_once(' ') {
                    Some((m, p)) => (m, Some(strip_query(p.trim()))),
                    None => (b, None),
                };
                if !method.is_empty() && method.bytes().all(|c| c.is_ascii_uppercase()) {
                    match own_path.or_else(|| resource.as_ref().map(|r| r.0.clone())) {
                        Some(path) => bp.actions.push(Action {
                            line: n,
                            method: method.to_string(),
                            path,
                            params: resource.as_ref().map(|r| r.1.clone()).unwrap_or_default(),
                            messages: Vec::new(),
                        }),
                        None => bp.errors.push(format!("line {n}: action outside a resource: {l}")),
                    }
                }
            }
        } else if l.starts_with("+ Parameters") {
            in_params = true;
        } else if in_params && indent(l) == 4 && l.trim_start().starts_with("+ ") {
            if let Some(p) = param_example(l) {
                // After an action heading, parameters belong to that action.
                match (action_open, bp.actions.last_mut(), resource.as_mut()) {
                    (true, Some(a), _) => {
                        a.params.retain(|(k, _)| *k != p.0);
                        a.params.push(p);
                    }
                    (false, _, Some(r)) => r.1.push(p),
                    _ => bp.errors.push(format!("line {n}: parameter outside a resource: {l}")),
                }
            }
        } else if l.starts_with("+ Request") || l.starts_with("+ Response") {
            in_params = false;
            let media = l.rfind('(').map(|at| l[at + 1..].trim_end().trim_end_matches(')').to_string());
            let status = if let Some(rest) = l.strip_prefix("+ Response ") {
                match rest.split_whitespace().next().and_then(|s| s.parse::<u16>().ok()) {
                    Some(s) => Some(s),
                    None => {
                        bp.errors.push(format!("line {n}: bad status: {l}"));
                        None
                    }
                }
            } else {
                None
            };
            match bp.actions.last_mut() {
                Some(a) => a.messages.push(Message { line: n, status, media, body: None }),
                None => bp.errors.push(format!("line {n}: message outside an action: {l}")),
            }
        } else if l.trim_start().starts_with("+ Body") {
            let body_indent = indent(l) + 8;
            let mut body = Vec::new();
            let mut j = i + 1;
            while j < lines.len() && (lines[j].trim().is_empty() || indent(lines[j]) >= body_indent) {
                body.push(lines[j].get(body_indent..).unwrap_or(""));
                j += 1;
            }
            match bp.actions.last_mut().and_then(|a| a.messages.last_mut()) {
                Some(m) => m.body = Some(body.join("\n").trim().to_string()),
                None => bp.errors.push(format!("line {n}: body outside a request or response")),
            }
            i = j;
            continue;
        } else if let (false, Some((path, _)), Some(methods)) = (action_open, resource.as_ref(), allow_methods(l)) {
            bp.allows.push((n, path.clone(), methods));
        } else if group == "Group Task transitions" && l.starts_with("| ") && !l.starts_with("| Action ") {
            bp.transition_rows.push(l.trim().to_string());
        } else if indent(l) == 0 && !l.trim().is_empty() {
            in_params = false;
        }
        i += 1;
    }
    bp
}

fn blueprint() -> Blueprint {
    let text = std::fs::read_to_string(repo_root().join("apiary.apib")).expect("apiary.apib at the repository root");
    assert!(text.starts_with("FORMAT: 1A\n"), "apiary.apib must start with FORMAT: 1A");
    let bp = parse(&text);
    assert!(bp.errors.is_empty(), "apiary.apib:\n{}", bp.errors.join("\n"));
    bp
}

/// The route an action documents: a row of ROUTES, or the row an alias
/// template names (`/server_types/{server_type_name}` is `rel/server_type`).
fn route_of(a: &Action) -> &'static vnext_core::routes::Route {
    let method = a.method.as_str();
    ROUTES
        .iter()
        .find(|r| r.template == a.path && r.methods.contains(&method))
        .or_else(|| {
            let alias = ALIASES.iter().find(|al| al.template == a.path && al.methods.contains(&method))?;
            ROUTES.iter().find(|r| r.rel == alias.of)
        })
        .unwrap_or_else(|| panic!("line {}: {} {} is not in ROUTES", a.line, a.method, a.path))
}

/// The media types a route answers in: its default, then the others.
fn formats_of(r: &vnext_core::routes::Route) -> Vec<&'static str> {
    std::iter::once(r.format).chain(r.other_formats.iter().copied()).collect()
}

#[test]
fn apiary_examples_are_json_and_errors_have_the_one_shape() {
    let bp = blueprint();
    let mut bad = Vec::new();
    let mut bodies = 0;
    for a in &bp.actions {
        for m in &a.messages {
            let Some(body) = &m.body else { continue };
            bodies += 1;
            let v: Value = match serde_json::from_str(body) {
                Ok(v) => v,
                Err(e) => {
                    bad.push(format!("line {}: not JSON ({e})", m.line));
                    continue;
                }
            };
            if !m.media.as_deref().is_some_and(|t| t.contains("json")) {
                bad.push(format!("line {}: a JSON body needs a JSON media type, got {:?}", m.line, m.media));
            }
            let Some(status) = m.status.filter(|s| *s >= 400) else { continue };
            let e = &v["error"];
            let keys: BTreeSet<&str> = e.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
            let shape_ok = v.as_object().is_some_and(|o| o.len() == 1)
                && e["code"] == status
                && e["title"] == title_for(status)
                && e["message"].as_str().is_some_and(|s| !s.is_empty())
                && (e.get("field").is_none() || e["field"].is_string())
                && keys.iter().all(|k| ["code", "title", "message", "field"].contains(k));
            if !shape_ok {
                bad.push(format!("line {}: {status} body is not the error shape: {v}", m.line));
            }
        }
    }
    assert!(bodies > 50, "only {bodies} body examples found: is the parser still right?");
    assert!(bad.is_empty(), "apiary.apib:\n{}", bad.join("\n"));
}

#[test]
fn apiary_documents_exactly_the_public_routes() {
    let bp = blueprint();
    let mut documented = BTreeSet::new();
    let mut bad = Vec::new();
    for a in &bp.actions {
        if !documented.insert((a.path.clone(), a.method.clone())) {
            bad.push(format!("line {}: {} {} is documented twice", a.line, a.method, a.path));
        }
        let route = route_of(a);
        if !route.public {
            bad.push(format!("line {}: {} is an internal route", a.line, a.path));
        }
        let statuses: Vec<u16> = a.messages.iter().filter_map(|m| m.status).collect();
        if !statuses.iter().any(|s| (200..300).contains(s)) {
            bad.push(format!("line {}: {} {} documents no success response", a.line, a.method, a.path));
        }
        if route.auth != statuses.contains(&401) {
            bad.push(format!(
                "line {}: {} {} {} a 401 but the route {} authentication",
                a.line,
                a.method,
                a.path,
                if route.auth { "lacks" } else { "documents" },
                if route.auth { "needs" } else { "takes no" }
            ));
        }
        let formats = formats_of(route);
        for m in a.messages.iter().filter(|m| m.status.is_some_and(|s| (200..300).contains(&s)) && m.body.is_some()) {
            if !m.media.as_deref().is_some_and(|t| formats.contains(&t)) {
                bad.push(format!("line {}: media type {:?}, the route serves {}", m.line, m.media, formats.join(" or ")));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.public)
        .flat_map(|r| r.methods.iter().map(move |m| (r.template.to_string(), m.to_string())))
        .collect();
    for (path, method) in expected.difference(&documented) {
        bad.push(format!("{method} {path} is in ROUTES but not documented"));
    }
    assert!(bad.is_empty(), "apiary.apib:\n{}", bad.join("\n"));
}

#[test]
fn apiary_allow_sentences_match_the_route_table() {
    let bp = blueprint();
    let mut bad = Vec::new();
    let mut seen = BTreeSet::new();
    for (line, path, methods) in &bp.allows {
        seen.insert(path.clone());
        let route_methods = ROUTES
            .iter()
            .find(|r| r.template == path)
            .map(|r| r.methods)
            .or_else(|| ALIASES.iter().find(|a| a.template == path).map(|a| a.methods));
        match route_methods {
            Some(m) if m.iter().map(|m| m.to_string()).collect::<Vec<_>>() == *methods => {}
            Some(m) => bad.push(format!("line {line}: {path} says Allow: {methods:?}, ROUTES has {m:?}")),
            None => bad.push(format!("line {line}: {path} is not a template of ROUTES")),
        }
    }
    for r in ROUTES.iter().filter(|r| r.public && !seen.contains(r.template)) {
        bad.push(format!("the resource {} has no `Allow:` sentence", r.template));
    }
    assert!(bad.is_empty(), "apiary.apib:\n{}", bad.join("\n"));
}

/// The table row the blueprint shows for one `x-transitions` entry.
fn transition_row(t: &Value) -> String {
    let list = |v: &Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect::<Vec<_>>();
    let from = list(&t["from_virt_states"]);
    let items = list(&t["items"]);
    let (required, optional, one_of) =
        (list(&t["required_arguments"]), list(&t["optional_arguments"]), list(&t["one_of_arguments"]));
    let mut args = Vec::new();
    if !required.is_empty() {
        args.push(format!("required: {}", required.join(", ")));
    }
    if !one_of.is_empty() {
        args.push(format!("one of: {}", one_of.join(", ")));
    } else if !optional.is_empty() {
        args.push(format!("optional: {}", optional.join(", ")));
    }
    format!(
        "| {} | {} | {} | {} / {} | {} | {} | {} |",
        t["action"].as_str().unwrap(),
        if from.is_empty() { "(launch only)".to_string() } else { from.join(", ") },
        t["virt_state_while_running"].as_str().unwrap(),
        t["virt_state_on_completed"].as_str().unwrap(),
        t["power_state_on_completed"].as_str().unwrap_or("-"),
        t["virt_state_on_aborted"].as_str().unwrap(),
        if items.is_empty() { "(none)".to_string() } else { items.join(", ") },
        if args.is_empty() { "-".to_string() } else { args.join("; ") },
    )
}

#[test]
fn apiary_transition_table_is_the_code_table() {
    let bp = blueprint();
    let expected: Vec<String> = table_json().as_array().unwrap().iter().map(transition_row).collect();
    let shown: Vec<String> = bp.transition_rows.iter().filter(|r| !r.starts_with("|---")).cloned().collect();
    assert_eq!(shown, expected, "the Task transitions table of apiary.apib differs from crates/core/src/transitions.rs");
}

#[test]
fn apiary_examples_without_ids_match_the_live_host() {
    let bp = blueprint();
    let host = Host::vnext();
    // The keys of an object, or of an array's first item (`GET /schemas`
    // answers a bare array).
    let keys = |v: &Value| -> BTreeSet<String> {
        let v = v.as_array().and_then(|items| items.first()).unwrap_or(v);
        v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    };
    let mut checked = Vec::new();
    for a in bp.actions.iter().filter(|a| a.method == "GET" && ["/", "/schemas", "/schemas/{object}"].contains(&a.path.as_str())) {
        let mut path = a.path.clone();
        for (name, value) in &a.params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        assert!(!path.contains('{'), "line {}: no example value for a parameter of {}", a.line, a.path);
        // Each documented success, asked for in its media type.
        let successes: Vec<&Message> =
            a.messages.iter().filter(|m| m.status.is_some_and(|s| (200..300).contains(&s)) && m.body.is_some()).collect();
        assert!(!successes.is_empty(), "line {}: GET {} documents no success body", a.line, a.path);
        for documented in successes {
            let media = documented.media.as_deref().unwrap_or("application/json");
            let live = request("GET", &host.url(&path), &[("Accept", media)], None);
            assert_eq!(Some(live.status), documented.status, "GET {path} (Accept: {media}) vs apiary.apib line {}", documented.line);
            let example: Value = serde_json::from_str(documented.body.as_ref().unwrap()).unwrap();
            let answer = live.json();
            assert_eq!(answer.is_array(), example.is_array(), "GET {path}: an array or not, vs apiary.apib line {}", documented.line);
            assert_eq!(keys(&answer), keys(&example), "GET {path}: top-level keys of the live answer vs apiary.apib line {}", documented.line);
            assert_eq!(live.header("content-type"), Some(media), "GET {path}: media type");
            assert_eq!(live.header(API_VERSION_HEADER), Some(API_VERSION), "GET {path}");
            assert!(live.header(REQUEST_ID_HEADER).is_some_and(|v| v.starts_with("req-")), "GET {path}");
        }
        checked.push(path);
    }
    assert_eq!(checked.len(), 3, "expected the three routes without ids, checked {checked:?}");
}

/// The OpenAPI document the host serves documents the same operations
/// with the same statuses as apiary.apib: two descriptions generated by
/// different means (the operation table, live responses) that must agree.
/// `503` is the exception: every stateful operation may answer it, and
/// apiary.apib says so in prose rather than with an example per route.
#[test]
fn openapi_and_apiary_document_the_same_operations_and_statuses() {
    let host = Host::vnext();
    let r = request("GET", &host.url("/openapi.json"), &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let home = request("GET", &host.url("/"), &[], None).json();
    assert_eq!(home["resources"]["rel/openapi"]["href"], "/openapi.json", "listed in JSON-Home");

    let mut from_openapi: BTreeSet<(String, String, u16)> = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap().iter().filter(|(k, _)| *k != "parameters") {
            for status in op["responses"].as_object().unwrap().keys() {
                let status: u16 = status.parse().unwrap();
                if status != 503 {
                    from_openapi.insert((path.clone(), method.to_ascii_uppercase(), status));
                }
            }
        }
    }
    let mut from_apiary: BTreeSet<(String, String, u16)> = BTreeSet::new();
    for a in &blueprint().actions {
        let template = route_of(a).template.to_string();
        for status in a.messages.iter().filter_map(|m| m.status) {
            from_apiary.insert((template.clone(), a.method.clone(), status));
        }
    }
    let only = |a: &BTreeSet<_>, b: &BTreeSet<_>| a.difference(b).map(|x| format!("{x:?}")).collect::<Vec<_>>();
    assert!(
        from_openapi == from_apiary,
        "only in openapi.json: {:?}\nonly in apiary.apib: {:?}",
        only(&from_openapi, &from_apiary),
        only(&from_apiary, &from_openapi)
    );
}
