//! Request bodies and the field rules the API enforces.
//!
//! Bodies are parsed with serde into structs that `deny_unknown_fields`;
//! every serde failure becomes a 400 naming the JSON path of the field
//! (`spec.memory_mb`, `servers[1].type_id`). The checks serde cannot express
//! (ranges, formats, cross-field rules) follow in `check` functions that
//! return the normalized request. The JSON Schemas of [`crate::schemas`]
//! state the same rules; a test there keeps them in step.

use crate::error::{ApiError, ApiResult};
use crate::ids::parse_id;
use crate::model::{Affinity, Shares, TaskAction, TaskArgs, TypeSpec, Visibility};
use crate::transitions;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;

/// Most servers one launch request may create.
pub const MAX_LAUNCH: usize = 100;
/// Draws of a `hostname_pattern` for one server before a name no earlier
/// server of the same request has is given up on.
pub const PATTERN_DRAWS: usize = 20;
/// Largest accepted user data, base64 text (Nova's limit).
pub const MAX_USER_DATA: usize = 65_535;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 50;
pub const MAX_NAME_LEN: usize = 255;

/// Parses a JSON body into `T`, or a 400 naming the field that failed.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("a JSON request body is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request(format!("the request body is not valid JSON: {inner}"));
        }
        let msg = inner.to_string();
        // The path of an unknown field already ends with it; a missing field
        // is named only in the message, so append it to point at the field.
        let named = backticked(&msg).filter(|_| msg.starts_with("unknown field") || msg.starts_with("missing field"));
        let field = match (path.as_str(), named) {
            (p, Some(name)) if p == name || p.ends_with(&format!(".{name}")) => p.to_string(),
            (".", Some(name)) => name.to_string(),
            (p, Some(name)) => format!("{p}.{name}"),
            (p, None) => p.to_string(),
        };
        let hint = if msg.starts_with("unknown field") { " (remove it)" } else { "" };
        let err = ApiError::bad_request(format!("invalid request body at {field}: {msg}{hint}"));
        if field == "." { err } else { err.field(field) }
    })?;
    de.end().map_err(|e| ApiError::bad_request(format!("trailing data after the JSON body: {e}")))?;
    Ok(value)
}

fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// RFC 1123 host label: 1-63 letters, digits and hyphens, neither first nor
/// last a hyphen.
pub fn hostname(field: &str, s: &str) -> ApiResult<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} {s:?} is not a valid hostname: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen"
        ))
        .field(field))
    }
}

/// One tag: 1 to 50 characters, no `/` or `,` (they would break paths and filters).
pub fn tag(field: &str, t: &str) -> ApiResult<()> {
    let len = t.chars().count();
    if len == 0 || len > MAX_TAG_LEN || t.contains(['/', ',']) || t.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "tag {t:?} is invalid: tags are 1 to {MAX_TAG_LEN} characters without '/', ',' or control characters"
        ))
        .field(field));
    }
    Ok(())
}

/// A tag collection: a set (duplicates collapse) of at most 50 valid tags.
pub fn tags(field: &str, list: Vec<String>) -> ApiResult<BTreeSet<String>> {
    for (i, t) in list.iter().enumerate() {
        tag(&format!("{field}[{i}]"), t)?;
    }
    let set: BTreeSet<String> = list.into_iter().collect();
    if set.len() > MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "{} distinct tags given; a resource has at most {MAX_TAGS}",
            set.len()
        ))
        .field(field));
    }
    Ok(set)
}

/// Expands `%(rand_num)Nd` (N random digits; no N means 6) in a hostname
/// pattern, taking digits 0-9 from `digit`. The result must be a hostname.
pub fn hostname_pattern(field: &str, pattern: &str, digit: &mut dyn FnMut() -> u8) -> ApiResult<String> {
    const TOKEN: &str = "%(rand_num)";
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "{field} {pattern:?} is invalid: {why}; write %(rand_num)Nd for N random digits, e.g. \"web-%(rand_num)4d\""
        ))
        .field(field)
    };
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(at) = rest.find(TOKEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + TOKEN.len()..];
        let digits_len = after.bytes().take_while(u8::is_ascii_digit).count();
        if after.as_bytes().get(digits_len) != Some(&b'd') {
            return Err(bad("%(rand_num) must be followed by an optional width and 'd'"));
        }
        let n = if digits_len == 0 {
            6
        } else {
            after[..digits_len].parse::<usize>().ok().filter(|n| (1..=63).contains(n)).ok_or_else(|| bad("the width must be 1 to 63"))?
        };
        for _ in 0..n {
            out.push(char::from(b'0' + digit() % 10));
        }
        rest = &after[digits_len + 1..];
    }
    if rest.contains('%') {
        return Err(bad("'%' is only allowed in %(rand_num)Nd"));
    }
    out.push_str(rest);
    hostname(field, &out)?;
    Ok(out)
}

/// A server type's name: 1 to 255 characters, no `/`, and not a UUID
/// (`GET /server_types/{id or name}` tells them apart by that).
pub fn type_name(field: &str, name: &str) -> ApiResult<()> {
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN || name.contains('/') || name.trim() != name || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "name {name:?} is invalid: use 1 to {MAX_NAME_LEN} characters, no '/', no control characters, no leading or trailing spaces"
        ))
        .field(field));
    }
    if crate::ids::parse_uuid(name).is_some() {
        return Err(ApiError::bad_request("a server type name may not be a UUID: ids and names share the /server_types/{id or name} route").field(field));
    }
    Ok(())
}

/// The resource rules serde cannot express.
pub fn type_spec(field: &str, spec: &TypeSpec) -> ApiResult<()> {
    if spec.cpu_units < 1 {
        return Err(ApiError::bad_request("cpu_units must be at least 1").field(format!("{field}.cpu_units")));
    }
    if let Some(r) = spec.rxtx_factor
        && !(r.is_finite() && r >= 0.1)
    {
        return Err(ApiError::bad_request("rxtx_factor must be a number >= 0.1").field(format!("{field}.rxtx_factor")));
    }
    Ok(())
}

fn canonical_ids(field: &str, ids: BTreeSet<String>) -> ApiResult<BTreeSet<String>> {
    ids.iter().enumerate().map(|(i, id)| parse_id(&format!("{field}[{i}]"), id)).collect()
}

// ------------------------------------------------------------ server types

/// Body of `POST /server_types`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTypeCreate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub visibility: Visibility,
    pub spec: TypeSpec,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub shares: Shares,
}

/// A checked `POST /server_types` body, tags as a set and ids canonical.
#[derive(Debug, Clone)]
pub struct NewServerType {
    pub name: String,
    pub description: String,
    pub visibility: Visibility,
    pub spec: TypeSpec,
    pub tags: BTreeSet<String>,
    pub shares: Shares,
}

pub fn server_type_create(body: &[u8]) -> ApiResult<NewServerType> {
    let req: ServerTypeCreate = parse_body(body)?;
    type_name("name", &req.name)?;
    if req.description.chars().count() > 1024 {
        return Err(ApiError::bad_request("description is limited to 1024 characters").field("description"));
    }
    type_spec("spec", &req.spec)?;
    Ok(NewServerType {
        tags: tags("tags", req.tags)?,
        shares: Shares {
            users: canonical_ids("shares.users", req.shares.users)?,
            projects: canonical_ids("shares.projects", req.shares.projects)?,
        },
        name: req.name,
        description: req.description,
        visibility: req.visibility,
        spec: req.spec,
    })
}

/// Body of `PATCH /server_types/{id}`: any of these; `shares` and `tags`
/// have their own routes and are refused here by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTypePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub spec: Option<TypeSpec>,
    // Present only to give a precise 400 instead of "unknown field".
    pub shares: Option<serde_json::Value>,
    pub tags: Option<serde_json::Value>,
}

pub fn server_type_patch(body: &[u8]) -> ApiResult<ServerTypePatch> {
    let p: ServerTypePatch = parse_body(body)?;
    if p.shares.is_some() {
        return Err(ApiError::bad_request("shares cannot be patched; use PUT /server_types/{id}/shares").field("shares"));
    }
    if p.tags.is_some() {
        return Err(ApiError::bad_request("tags cannot be patched; use PUT /server_types/{id}/tags").field("tags"));
    }
    if let Some(n) = &p.name {
        type_name("name", n)?;
    }
    if p.description.as_ref().is_some_and(|d| d.chars().count() > 1024) {
        return Err(ApiError::bad_request("description is limited to 1024 characters").field("description"));
    }
    if let Some(spec) = &p.spec {
        type_spec("spec", spec)?;
    }
    Ok(p)
}

/// Body of `PUT /server_types/{id}/shares`, ids canonical.
pub fn shares(body: &[u8]) -> ApiResult<Shares> {
    let s: Shares = parse_body(body)?;
    Ok(Shares { users: canonical_ids("users", s.users)?, projects: canonical_ids("projects", s.projects)? })
}

/// Body of `PUT .../tags`: a JSON array of tags, kept as a set.
pub fn tag_list(body: &[u8]) -> ApiResult<BTreeSet<String>> {
    let list: Vec<String> = parse_body(body)?;
    tags("tags", list)
}

// ------------------------------------------------------------------ launch

/// Fields of `defaults` and of each `servers[]` entry of a launch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchFields {
    pub hostname: Option<String>,
    pub type_id: Option<String>,
    pub template_id: Option<String>,
    pub keypair_id: Option<String>,
    pub placement_id: Option<String>,
    pub user_data: Option<String>,
    pub hostname_pattern: Option<String>,
    pub affinity: Option<Affinity>,
}

/// Body of `POST /projects/{project}/servers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    #[serde(default)]
    pub defaults: LaunchFields,
    pub servers: Vec<LaunchFields>,
}

/// One server to launch, fully resolved: defaults applied, ids canonical,
/// hostname generated, everything checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    pub hostname: String,
    /// The pattern the hostname was generated from, if any: a generated
    /// name that is taken in the project may be drawn again.
    pub hostname_pattern: Option<String>,
    pub type_id: String,
    pub template_id: Option<String>,
    pub keypair_id: Option<String>,
    pub placement_id: Option<String>,
    pub user_data: Option<String>,
    pub affinity: Option<Affinity>,
}

fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let body = s.trim_end_matches('=');
    b.len() - body.len() <= 2 && body.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// Validates a whole launch body (all or nothing) and resolves each entry.
/// Hostnames are unique within the request here; uniqueness in the project
/// is the hostname claim's job.
pub fn launch(body: &[u8], digit: &mut dyn FnMut() -> u8) -> ApiResult<Vec<LaunchPlan>> {
    let req: LaunchRequest = parse_body(body)?;
    if req.defaults.hostname.is_some() {
        return Err(ApiError::bad_request("defaults may not set hostname: every server needs its own; use hostname_pattern").field("defaults.hostname"));
    }
    if req.servers.is_empty() || req.servers.len() > MAX_LAUNCH {
        return Err(ApiError::bad_request(format!("servers must list 1 to {MAX_LAUNCH} servers")).field("servers"));
    }
    let d = &req.defaults;
    let mut seen = BTreeSet::new();
    let mut plans = Vec::with_capacity(req.servers.len());
    for (i, s) in req.servers.iter().enumerate() {
        let at = |f: &str| format!("servers[{i}].{f}");
        let pick = |own: &Option<String>, def: &Option<String>| own.clone().or_else(|| def.clone());
        let id = |f: &str, v: Option<String>| -> ApiResult<Option<String>> {
            v.map(|v| parse_id(&at(f), &v)).transpose()
        };
        let type_id = id("type_id", pick(&s.type_id, &d.type_id))?
            .ok_or_else(|| ApiError::bad_request("type_id is required (in the server or in defaults)").field(at("type_id")))?;
        let user_data = pick(&s.user_data, &d.user_data);
        if let Some(u) = &user_data
            && (u.len() > MAX_USER_DATA || !is_base64(u))
        {
            return Err(ApiError::bad_request(format!("user_data must be base64 text of at most {MAX_USER_DATA} characters")).field(at("user_data")));
        }
        let pattern = pick(&s.hostname_pattern, &d.hostname_pattern).filter(|_| s.hostname.is_none());
        let hostname_value = match (&s.hostname, &pattern) {
            (Some(h), _) => {
                hostname(&at("hostname"), h)?;
                h.clone()
            }
            (None, Some(p)) => {
                // A drawn name that a sibling already has is drawn again
                // (50 names from 4 digits collide about one time in nine).
                let mut drawn = hostname_pattern(&at("hostname_pattern"), p, digit)?;
                for _ in 1..PATTERN_DRAWS {
                    if !seen.contains(&drawn.to_ascii_lowercase()) {
                        break;
                    }
                    drawn = hostname_pattern(&at("hostname_pattern"), p, digit)?;
                }
                if seen.contains(&drawn.to_ascii_lowercase()) {
                    return Err(ApiError::bad_request(format!(
                        "hostname_pattern {p:?} gave hostname {drawn:?} to an earlier server of this request {PATTERN_DRAWS} times; \
                         add or widen %(rand_num)Nd"
                    ))
                    .field(at("hostname_pattern")));
                }
                drawn
            }
            (None, None) => {
                return Err(ApiError::bad_request("each server needs a hostname, or a hostname_pattern (in it or in defaults)").field(at("hostname")));
            }
        };
        if !seen.insert(hostname_value.to_ascii_lowercase()) {
            return Err(ApiError::bad_request(format!("hostname {hostname_value:?} appears twice in this request; hostnames are unique within a project")).field(at("hostname")));
        }
        let affinity = s.affinity.clone().or_else(|| d.affinity.clone());
        if let Some(a) = &affinity {
            for (side, target) in [("near", &a.near), ("not_near", &a.not_near)] {
                for (j, sid) in target.server_ids.iter().enumerate() {
                    parse_id(&at(&format!("affinity.{side}.server_ids[{j}]")), sid)?;
                }
                for (j, t) in target.server_tags.iter().enumerate() {
                    tag(&at(&format!("affinity.{side}.server_tags[{j}]")), t)?;
                }
            }
        }
        plans.push(LaunchPlan {
            hostname: hostname_value,
            hostname_pattern: pattern,
            type_id,
            template_id: id("template_id", pick(&s.template_id, &d.template_id))?,
            keypair_id: id("keypair_id", pick(&s.keypair_id, &d.keypair_id))?,
            placement_id: id("placement_id", pick(&s.placement_id, &d.placement_id))?,
            user_data,
            affinity,
        });
    }
    Ok(plans)
}

// ------------------------------------------------------------------- tasks

/// Body of `POST /servers/{id}/tasks`: `action` plus its arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    pub action: String,
    pub type_id: Option<String>,
    pub template_id: Option<String>,
    pub name: Option<String>,
    pub placement_id: Option<String>,
    pub live: Option<bool>,
    pub volume_id: Option<String>,
    pub device: Option<String>,
    pub network_id: Option<String>,
    pub mac: Option<String>,
    pub password: Option<String>,
}

/// A checked task request. The password is kept apart: it is handed to the
/// hypervisor and never stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub action: TaskAction,
    pub args: TaskArgs,
    pub password: Option<String>,
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

pub fn task(body: &[u8]) -> ApiResult<NewTask> {
    let req: TaskRequest = parse_body(body)?;
    let action = TaskAction::parse(&req.action).ok_or_else(|| {
        ApiError::bad_request(format!("unknown action {:?}; use one of {}", req.action, TaskAction::names().join(", "))).field("action")
    })?;
    let row = transitions::get(action);
    let given: [(&str, bool); 10] = [
        ("type_id", req.type_id.is_some()),
        ("template_id", req.template_id.is_some()),
        ("name", req.name.is_some()),
        ("placement_id", req.placement_id.is_some()),
        ("live", req.live.is_some()),
        ("volume_id", req.volume_id.is_some()),
        ("device", req.device.is_some()),
        ("network_id", req.network_id.is_some()),
        ("mac", req.mac.is_some()),
        ("password", req.password.is_some()),
    ];
    for (arg, present) in given {
        if present && !row.accepts(arg) {
            return Err(ApiError::bad_request(format!("{} takes no argument {arg}; remove it", action.as_str())).field(arg));
        }
        if !present && row.required_args.contains(&arg) {
            return Err(ApiError::bad_request(format!("{} needs the argument {arg}", action.as_str())).field(arg));
        }
    }
    let one_of = transitions::one_of_args(action);
    if !one_of.is_empty() && !given.iter().any(|(a, p)| *p && one_of.contains(a)) {
        return Err(ApiError::bad_request(format!("{} needs {}", action.as_str(), one_of.join(" or "))).field(one_of[0]));
    }
    let id = |f: &str, v: Option<String>| v.map(|v| parse_id(f, &v)).transpose();
    if let Some(n) = &req.name
        && (n.trim().is_empty() || n.chars().count() > MAX_NAME_LEN)
    {
        return Err(ApiError::bad_request(format!("name must be 1 to {MAX_NAME_LEN} characters")).field("name"));
    }
    if req.password.as_ref().is_some_and(|p| p.is_empty()) {
        return Err(ApiError::bad_request("password may not be empty").field("password"));
    }
    if req.mac.as_ref().is_some_and(|m| !is_mac(m)) {
        return Err(ApiError::bad_request("mac must look like 52:54:00:12:34:56").field("mac"));
    }
    if req.device.as_ref().is_some_and(|d| !d.starts_with("/dev/")) {
        return Err(ApiError::bad_request("device must be a path under /dev/, e.g. /dev/vdb").field("device"));
    }
    let args = TaskArgs {
        type_id: id("type_id", req.type_id)?,
        template_id: id("template_id", req.template_id)?,
        name: req.name,
        placement_id: id("placement_id", req.placement_id)?,
        live: req.live,
        volume_id: id("volume_id", req.volume_id)?,
        device: req.device,
        network_id: id("network_id", req.network_id)?,
        mac: req.mac.map(|m| m.to_ascii_lowercase()),
    };
    Ok(NewTask { action, args, password: req.password })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011";

    fn digits() -> impl FnMut() -> u8 {
        let mut n = 0u8;
        move || {
            n = n.wrapping_add(1);
            n
        }
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let e = parse_body::<ServerTypeCreate>(br#"{"name":"a","spec":{"memory_mb":1,"cpu_units":1,"gpu":1}}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.field.as_deref(), Some("spec.gpu"));
        let e = parse_body::<ServerTypeCreate>(br#"{"name":"a","spec":{"memory_mb":1,"cpu_units":1},"x":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("x"));
    }

    #[test]
    fn wrong_types_and_missing_fields_name_the_field() {
        let e = server_type_create(br#"{"name":"a","spec":{"memory_mb":-1,"cpu_units":1}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.memory_mb"));
        let e = server_type_create(br#"{"name":"a","spec":{"memory_mb":1}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.cpu_units"));
        let e = server_type_create(br#"{"name":"a","spec":{"memory_mb":1,"cpu_units":0}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.cpu_units"));
        let e = server_type_create(br#"{"name":"a","spec":{"memory_mb":1,"cpu_units":1,"rxtx_factor":0.05}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.rxtx_factor"));
    }

    #[test]
    fn malformed_or_empty_json_is_400_without_field() {
        for body in [&b""[..], b"  ", b"{", b"[1,2]x", b"nul"] {
            let e = parse_body::<ServerTypeCreate>(body).unwrap_err();
            assert_eq!(e.status, 400, "{body:?}");
        }
        assert!(parse_body::<ServerTypeCreate>(b"{").unwrap_err().field.is_none());
    }

    #[test]
    fn server_type_defaults_apply_and_sets_collapse() {
        let t = server_type_create(
            format!(r#"{{"name":"m1","spec":{{"memory_mb":0,"cpu_units":2}},"tags":["a","b","a"],"shares":{{"users":["{}"]}}}}"#, T.to_uppercase()).as_bytes(),
        )
        .unwrap();
        assert_eq!(t.spec.root_disk_gb, 10);
        assert_eq!(t.visibility, Visibility::Private);
        assert_eq!(t.tags.len(), 2);
        assert!(t.shares.users.contains(T));
    }

    #[test]
    fn patch_refuses_shares_and_tags_by_name() {
        assert_eq!(server_type_patch(br#"{"tags":["a"]}"#).unwrap_err().field.as_deref(), Some("tags"));
        assert_eq!(server_type_patch(br#"{"shares":{}}"#).unwrap_err().field.as_deref(), Some("shares"));
        let p = server_type_patch(br#"{"description":"d","visibility":"PUBLIC"}"#).unwrap();
        assert_eq!(p.visibility, Some(Visibility::Public));
        assert!(server_type_patch(br#"{"spec":{"memory_mb":1,"cpu_units":0}}"#).is_err());
    }

    #[test]
    fn share_bodies_are_sets_of_canonical_ids() {
        let s = shares(format!(r#"{{"users":["{}"]}}"#, T.replace('-', "")).as_bytes()).unwrap();
        assert!(s.users.contains(T) && s.projects.is_empty());
        assert_eq!(shares(br#"{"projects":["x"]}"#).unwrap_err().field.as_deref(), Some("projects[0]"));
        assert_eq!(shares(br#"{"groups":[]}"#).unwrap_err().field.as_deref(), Some("groups"));
    }

    #[test]
    fn tag_list_bodies_are_arrays_of_tags() {
        assert_eq!(tag_list(br#"["b","a","b"]"#).unwrap().len(), 2);
        assert!(tag_list(br#"{"tags":[]}"#).is_err());
        assert_eq!(tag_list(br#"["a/b"]"#).unwrap_err().field.as_deref(), Some("tags[0]"));
    }

    #[test]
    fn type_names_may_not_be_uuids_or_contain_slashes() {
        assert_eq!(type_name("name", T).unwrap_err().field.as_deref(), Some("name"));
        assert!(type_name("name", "a/b").is_err());
        assert!(type_name("name", "").is_err());
        assert!(type_name("name", "m1.small").is_ok());
    }

    #[test]
    fn hostnames_follow_rfc_1123_labels() {
        for ok in ["a", "web-1", "1abc", &"x".repeat(63)] {
            assert!(hostname("h", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", &"x".repeat(64), "ünï"] {
            assert!(hostname("h", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_a_bounded_set_of_bounded_strings() {
        assert_eq!(tags("tags", vec!["a".into(), "a".into()]).unwrap().len(), 1);
        assert_eq!(tags("tags", vec!["a/b".into()]).unwrap_err().field.as_deref(), Some("tags[0]"));
        assert!(tags("tags", vec!["a,b".into()]).is_err());
        assert!(tags("tags", vec!["".into()]).is_err());
        assert!(tags("tags", vec!["é".repeat(50)]).is_ok());
        assert!(tags("tags", vec!["é".repeat(51)]).is_err());
        assert!(tags("tags", (0..51).map(|i| i.to_string()).collect()).is_err());
        assert!(tags("tags", (0..50).map(|i| i.to_string()).collect()).is_ok());
    }

    #[test]
    fn hostname_pattern_interpolates_random_digits() {
        let mut d = digits();
        assert_eq!(hostname_pattern("p", "web-%(rand_num)4d", &mut d).unwrap(), "web-1234");
        assert_eq!(hostname_pattern("p", "%(rand_num)d-x", &mut d).unwrap(), "567890-x");
        assert_eq!(hostname_pattern("p", "plain", &mut d).unwrap(), "plain");
        assert!(hostname_pattern("p", "a-%(rand_num)5", &mut d).is_err());
        assert!(hostname_pattern("p", "a-%(rand_name)d", &mut d).is_err());
        assert!(hostname_pattern("p", "a-%(rand_num)0d", &mut d).is_err());
        assert!(hostname_pattern("p", "a_%(rand_num)2d", &mut d).is_err());
        assert!(hostname_pattern("p", "%(rand_num)64d", &mut d).is_err());
    }

    #[test]
    fn launch_applies_defaults_and_validates_everything_first() {
        let body = format!(
            r#"{{"defaults":{{"type_id":"{T}","hostname_pattern":"w-%(rand_num)2d"}},
                "servers":[{{"hostname":"db"}},{{}},{{"type_id":"{}","placement_id":"{T}"}}]}}"#,
            T.replace('-', "")
        );
        let plans = launch(body.as_bytes(), &mut digits()).unwrap();
        assert_eq!(plans.len(), 3);
        assert_eq!(plans[0].hostname, "db");
        assert_eq!(plans[1].hostname, "w-12");
        assert_eq!(plans[0].hostname_pattern, None);
        assert_eq!(plans[1].hostname_pattern.as_deref(), Some("w-%(rand_num)2d"));
        assert_eq!(plans[2].hostname, "w-34");
        assert_eq!(plans[2].type_id, T);
        assert_eq!(plans[2].placement_id.as_deref(), Some(T));
    }

    #[test]
    fn launch_draws_a_pattern_again_when_a_sibling_has_the_name() {
        // The digits 1,1,1,2: the second server first draws "w-1" again.
        let mut seq = [1u8, 1, 1, 2].into_iter().cycle();
        let body = format!(r#"{{"defaults":{{"type_id":"{T}","hostname_pattern":"w-%(rand_num)1d"}},"servers":[{{}},{{}}]}}"#);
        let plans = launch(body.as_bytes(), &mut || seq.next().unwrap()).unwrap();
        assert_eq!((plans[0].hostname.as_str(), plans[1].hostname.as_str()), ("w-1", "w-2"));
        // A pattern with no digits cannot name two servers.
        let body = format!(r#"{{"defaults":{{"type_id":"{T}","hostname_pattern":"web"}},"servers":[{{}},{{}}]}}"#);
        let e = launch(body.as_bytes(), &mut digits()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("servers[1].hostname_pattern"), "{}", e.message);
    }

    #[test]
    fn launch_refusals_name_the_entry() {
        let e = launch(br#"{"servers":[{"hostname":"a"}]}"#, &mut digits()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("servers[0].type_id"));
        let body = format!(r#"{{"defaults":{{"type_id":"{T}"}},"servers":[{{"hostname":"a"}},{{"hostname":"A"}}]}}"#);
        assert_eq!(launch(body.as_bytes(), &mut digits()).unwrap_err().field.as_deref(), Some("servers[1].hostname"));
        let body = format!(r#"{{"defaults":{{"type_id":"{T}"}},"servers":[{{}}]}}"#);
        assert_eq!(launch(body.as_bytes(), &mut digits()).unwrap_err().field.as_deref(), Some("servers[0].hostname"));
        let body = format!(r#"{{"defaults":{{"type_id":"{T}","user_data":"not base64!"}},"servers":[{{"hostname":"a"}}]}}"#);
        assert_eq!(launch(body.as_bytes(), &mut digits()).unwrap_err().field.as_deref(), Some("servers[0].user_data"));
        assert_eq!(launch(br#"{"servers":[]}"#, &mut digits()).unwrap_err().field.as_deref(), Some("servers"));
        let e = launch(br#"{"servers":[{"hostname":"a","flavor":"x"}]}"#, &mut digits()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("servers[0].flavor"));
    }

    #[test]
    fn task_arguments_must_match_the_action() {
        let t = task(br#"{"action":"PAUSE"}"#).unwrap();
        assert_eq!(t.action, TaskAction::Pause);
        assert_eq!(task(br#"{"action":"PAUSE","name":"x"}"#).unwrap_err().field.as_deref(), Some("name"));
        assert_eq!(task(br#"{"action":"RESIZE"}"#).unwrap_err().field.as_deref(), Some("type_id"));
        assert_eq!(task(br#"{"action":"NAP"}"#).unwrap_err().field.as_deref(), Some("action"));
        assert_eq!(task(br#"{"action":"ATTACH_NETWORK_INTERFACE"}"#).unwrap_err().status, 400);
        let t = task(br#"{"action":"ATTACH_NETWORK_INTERFACE","mac":"52:54:00:AB:CD:EF"}"#).unwrap();
        assert_eq!(t.args.mac.as_deref(), Some("52:54:00:ab:cd:ef"));
        let t = task(br#"{"action":"UPDATE_PASSWORD","password":"s3cret"}"#).unwrap();
        assert_eq!(t.password.as_deref(), Some("s3cret"));
        assert_eq!(t.args, TaskArgs::default());
        assert_eq!(task(br#"{"action":"RESIZE","type_id":"small"}"#).unwrap_err().field.as_deref(), Some("type_id"));
    }
}
