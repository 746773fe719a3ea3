//! Request bodies and the field rules the API enforces.
//!
//! Every body goes through three steps ([`parse_request`]):
//! 1. it is parsed as JSON (malformed or empty: 400 without a field);
//! 2. it is checked against its request schema, the very document served
//!    at `/schemas/{object}` ([`crate::schemas::check`]): types, required
//!    and unknown fields, ranges, lengths, patterns (ids, hostnames, tags,
//!    base64, MAC addresses), enums, and which task arguments go with which
//!    action. The first violation is a 400 naming the field by its path
//!    (`spec.memory_mb`, `servers[1].type_id`);
//! 3. serde reads it into the typed structs below, which still
//!    `deny_unknown_fields` as a second line (a mismatch between a struct
//!    and its schema is then still a 400 naming the field, never a 500).
//!
//! What a schema cannot express stays here, after those steps:
//! - launch: `defaults` merged into each server, then type_id present and a
//!   hostname or hostname_pattern present; patterns expanded to hostnames
//!   that must be valid; hostnames unique within the request;
//! - tag collections are sets: duplicates collapse, and the limit of
//!   [`MAX_TAGS`] counts distinct tags;
//! - ids are rewritten to the canonical spelling (a transformation, the
//!   schema already accepted both spellings);
//! - whether a task may start from the server's state is the
//!   components' job ([`crate::transitions`], 409).

use crate::error::{ApiError, ApiResult};
use crate::hypervisor::ConsoleType;
use crate::ids::parse_id;
use crate::model::{Affinity, Shares, TaskAction, TaskArgs, TypeSpec, Visibility};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;

/// Most servers one launch request may create.
pub const MAX_LAUNCH: usize = 1000;
/// Draws of a `hostname_pattern` for one server before a name no earlier
/// server of the same request has is given up on.
pub const PATTERN_DRAWS: usize = 20;
/// Largest accepted user data, base64 text (Nova's limit).
pub const MAX_USER_DATA: usize = 65_535;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 50;
pub const MAX_NAME_LEN: usize = 255;
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// Parses a request body checked against the request schema `object` (one
/// of [`crate::schemas::REQUEST_OBJECTS`]) into `T`: the steps of the module
/// docs. `root` names the body in error paths when it is an array (`tags`).
pub fn parse_request<T: DeserializeOwned>(object: &str, root: &str, body: &[u8]) -> ApiResult<T> {
    let value = parse_json(body)?;
    crate::schemas::check(object, &value, root)?;
    typed(value)
}

/// The body as JSON, or a 400 (without a field) if it is empty or malformed.
pub fn parse_json(body: &[u8]) -> ApiResult<serde_json::Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("a JSON request body is required"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// Parses a JSON body into `T` with serde alone, or a 400 naming the field
/// that failed. For bodies without a served schema (internal events).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    typed(parse_json(body)?)
}

/// Reads checked JSON into `T`; a failure is a 400 naming the JSON path.
fn typed<T: DeserializeOwned>(mut value: serde_json::Value) -> ApiResult<T> {
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
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
    })
}

/// JSON Schema counts `2.0` as an integer, so a body the schema accepted
/// may carry one where serde wants a `u32`: such numbers become integers.
fn integral_floats_as_integers(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Exactly representable: |f| < 2^53.
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                *v = if f < 0.0 { serde_json::json!(f as i64) } else { serde_json::json!(f as u64) };
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
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

/// One tag as a path segment or query value: 1 to 50 characters, no `/`
/// or `,` (they would break paths and filters). Tags in bodies are checked
/// by the schemas; this is the same rule in plain Rust so that components
/// without request bodies (placements) do not link the validator. A test in
/// [`crate::schemas`] holds it to the served `tag` schema.
pub fn tag(field: &str, t: &str) -> ApiResult<()> {
    let len = t.chars().count();
    if len == 0 || len > MAX_TAG_LEN || t.contains(['/', ',']) || t.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{field} {t:?} is not valid: expected a tag: 1 to {MAX_TAG_LEN} characters without '/', ',' or control characters"
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
    let req: ServerTypeCreate = parse_request("server_type_create", "", body)?;
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

/// Body of `PATCH /server_types/{id}`: any of these. `shares` and `tags`
/// have their own routes; the schema refuses them by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTypePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub spec: Option<TypeSpec>,
}

pub fn server_type_patch(body: &[u8]) -> ApiResult<ServerTypePatch> {
    parse_request("server_type_patch", "", body)
}

/// Body of `PUT /server_types/{id}/shares`, ids canonical.
pub fn shares(body: &[u8]) -> ApiResult<Shares> {
    let s: Shares = parse_request("server_type_shares", "", body)?;
    Ok(Shares { users: canonical_ids("users", s.users)?, projects: canonical_ids("projects", s.projects)? })
}

/// Body of `PUT .../tags`: either the document `GET .../tags` returns,
/// `{"tags": [...]}`, or the bare array; kept as a set.
pub fn tag_list(body: &[u8]) -> ApiResult<BTreeSet<String>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TagsDoc {
        tags: Vec<String>,
    }
    // The schema has told the two forms apart (if object, then the
    // document, else the array); serde reads the one given.
    let value = parse_json(body)?;
    crate::schemas::check("tag_list", &value, "tags")?;
    let list = if value.is_object() { typed::<TagsDoc>(value)?.tags } else { typed::<Vec<String>>(value)? };
    tags("tags", list)
}

/// `PUT .../tags/{tag}`: adds `t` to a resource's tags (idempotent),
/// refusing an invalid tag or a 51st.
pub fn add_tag(set: &mut BTreeSet<String>, t: &str) -> ApiResult<()> {
    tag("tag", t)?;
    if !set.contains(t) && set.len() >= MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "the resource already has {MAX_TAGS} tags, the most it may have; delete one first"
        ))
        .field("tag"));
    }
    set.insert(t.to_string());
    Ok(())
}

/// `DELETE .../tags/{tag}`: removes `t`; 404 if the resource lacks it.
pub fn remove_tag(set: &mut BTreeSet<String>, t: &str) -> ApiResult<()> {
    if set.remove(t) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("there is no tag {t:?} on this resource; GET its tags to see them")))
    }
}

// ----------------------------------------------------------------- servers

/// Body of `PATCH /servers/{id}`: a new hostname, a new project (transfer),
/// or both. Everything else about a server changes through tasks or its
/// own routes (tags).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPatchBody {
    pub hostname: Option<String>,
    pub project_id: Option<String>,
}

/// A checked server patch: hostname valid, project id canonical.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerPatch {
    pub hostname: Option<String>,
    pub project_id: Option<String>,
}

pub fn server_patch(body: &[u8]) -> ApiResult<ServerPatch> {
    let p: ServerPatchBody = parse_request("server_patch", "", body)?;
    if p.hostname.is_none() && p.project_id.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: send hostname (rename) and/or project_id (transfer)",
        ));
    }
    if let Some(h) = &p.hostname {
        hostname("hostname", h)?;
    }
    Ok(ServerPatch { hostname: p.hostname, project_id: p.project_id.map(|id| parse_id("project_id", &id)).transpose()? })
}

/// Default and largest `lines` of `GET /servers/{id}/console_log`.
pub const MAX_CONSOLE_LINES: u32 = 65_536;

/// The query of `GET /servers/{id}/console_log`: `lines` (1 to
/// [`MAX_CONSOLE_LINES`], default the maximum), nothing else.
pub fn console_log_query(query: &[(String, String)]) -> ApiResult<u32> {
    let mut lines = None;
    for (k, v) in query {
        if k != "lines" {
            return Err(ApiError::bad_request(format!("unknown query parameter {k:?}; console_log takes only lines")).field(k.as_str()));
        }
        if lines.is_some() {
            return Err(ApiError::bad_request("give lines once").field("lines"));
        }
        let n = v.parse::<u32>().ok().filter(|n| (1..=MAX_CONSOLE_LINES).contains(n)).ok_or_else(|| {
            ApiError::bad_request(format!("lines must be an integer from 1 to {MAX_CONSOLE_LINES}, got {v:?}")).field("lines")
        })?;
        lines = Some(n);
    }
    Ok(lines.unwrap_or(MAX_CONSOLE_LINES))
}

/// The `{console_type}` of `GET /servers/{id}/consoles/{console_type}`.
pub fn console_type(raw: &str) -> ApiResult<ConsoleType> {
    ConsoleType::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = ConsoleType::ALL.iter().map(|c| c.as_str()).collect();
        ApiError::bad_request(format!("unknown console type {raw:?}; use one of {}", names.join(", "))).field("console_type")
    })
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

/// Checks a server's template against the deployment's catalogue: with a
/// catalogue, `template_id` must name one of its templates, whose minimum
/// memory and root disk the server's `spec` must give (400 on `field`, as
/// Nova refuses a flavor smaller than its image's minimums); without one
/// (the fake driver's deployments), any template id, or none, is accepted.
pub fn template(templates: &[crate::hypervisor::Template], template_id: Option<&str>, spec: &TypeSpec, field: &str) -> ApiResult<()> {
    if templates.is_empty() {
        return Ok(());
    }
    let Some(id) = template_id else {
        return Err(ApiError::bad_request("this deployment boots servers from templates: give template_id").field(field));
    };
    let t = templates
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::bad_request(format!("no template {id} in this deployment")).field(field))?;
    if spec.memory_mb < t.min_memory_mb || spec.root_disk_gb < t.min_disk_gb {
        return Err(ApiError::bad_request(format!(
            "template {} needs at least {} MB of memory and {} GB of root disk; the server type gives {} MB and {} GB",
            t.name, t.min_memory_mb, t.min_disk_gb, spec.memory_mb, spec.root_disk_gb
        ))
        .field(field));
    }
    Ok(())
}

/// Validates a whole launch body (all or nothing) and resolves each entry.
/// Hostnames are unique within the request here; uniqueness in the project
/// is the hostname claim's job.
pub fn launch(body: &[u8], digit: &mut dyn FnMut() -> u8) -> ApiResult<Vec<LaunchPlan>> {
    // The schema refuses hostname in defaults, more than MAX_LAUNCH
    // servers, bad ids, user_data, tags and pattern syntax.
    let req: LaunchRequest = parse_request("server_launch", "", body)?;
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

pub fn task(body: &[u8]) -> ApiResult<NewTask> {
    // The schema holds the per-action argument rules (from the transition
    // table): only startable actions, their required arguments, no others.
    let req: TaskRequest = parse_request("server_task_create", "", body)?;
    let action = TaskAction::parse(&req.action).ok_or_else(|| {
        ApiError::bad_request(format!("unknown action {:?}; use one of {}", req.action, TaskAction::names().join(", "))).field("action")
    })?;
    let id = |f: &str, v: Option<String>| v.map(|v| parse_id(f, &v)).transpose();
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
    fn integral_numbers_written_as_floats_are_integers() {
        let t = server_type_create(br#"{"name": "f", "spec": {"memory_mb": 512.0, "cpu_units": 2.0, "rxtx_factor": 1.0}}"#).unwrap();
        assert_eq!((t.spec.memory_mb, t.spec.cpu_units, t.spec.rxtx_factor), (512, 2, Some(1.0)));
        let e = server_type_create(br#"{"name": "f", "spec": {"memory_mb": 512, "cpu_units": 2.5}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.cpu_units"), "{e:?}");
    }

    #[test]
    fn templates_are_checked_against_a_catalogue_only_when_there_is_one() {
        use crate::hypervisor::Template;
        let spec = |memory_mb, root_disk_gb| TypeSpec { memory_mb, root_disk_gb, cpu_units: 1, rxtx_factor: None, swap_mb: None };
        assert!(template(&[], Some("anything"), &spec(1, 0), "f").is_ok(), "no catalogue: any id");
        assert!(template(&[], None, &spec(1, 0), "f").is_ok());
        let catalogue = [Template { id: T.into(), name: "tiny".into(), min_memory_mb: 64, min_disk_gb: 1, rescue_template_id: None }];
        assert!(template(&catalogue, Some(T), &spec(64, 1), "f").is_ok());
        for (id, spec, says) in [
            (None, spec(64, 1), "give template_id"),
            (Some("0f1e2d3c-0000-6978-8a9b-acbdcedf0011"), spec(64, 1), "no template"),
            (Some(T), spec(32, 1), "needs at least 64 MB"),
            (Some(T), spec(64, 0), "1 GB of root disk"),
        ] {
            let e = template(&catalogue, id, &spec, "servers[0].template_id").unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (400, Some("servers[0].template_id")));
            assert!(e.message.contains(says), "{}", e.message);
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
    fn tag_list_bodies_are_arrays_or_the_tags_document() {
        assert_eq!(tag_list(br#"["b","a","b"]"#).unwrap().len(), 2);
        assert_eq!(tag_list(br#" {"tags":["b","a","b"]}"#).unwrap().len(), 2);
        assert!(tag_list(br#"{"tags":[]}"#).unwrap().is_empty());
        assert_eq!(tag_list(br#"{"tags":[],"x":1}"#).unwrap_err().field.as_deref(), Some("x"));
        assert_eq!(tag_list(br#"{}"#).unwrap_err().field.as_deref(), Some("tags"));
        assert_eq!(tag_list(br#"["a/b"]"#).unwrap_err().field.as_deref(), Some("tags[0]"));
        assert_eq!(tag_list(br#"{"tags":["ok","a,b"]}"#).unwrap_err().field.as_deref(), Some("tags[1]"));
        assert_eq!(tag_list(br#""a""#).unwrap_err().status, 400);
    }

    #[test]
    fn single_tags_are_added_up_to_the_limit_and_removed_once() {
        let mut set: BTreeSet<String> = (0..MAX_TAGS).map(|i| i.to_string()).collect();
        assert!(add_tag(&mut set, "0").is_ok(), "re-adding an existing tag is idempotent");
        assert_eq!(add_tag(&mut set, "new").unwrap_err().field.as_deref(), Some("tag"));
        assert_eq!(add_tag(&mut BTreeSet::new(), "a/b").unwrap_err().status, 400);
        assert!(remove_tag(&mut set, "0").is_ok());
        assert_eq!(remove_tag(&mut set, "0").unwrap_err().status, 404);
        assert!(add_tag(&mut set, "new").is_ok());
    }

    #[test]
    fn console_log_lines_are_bounded_and_alone() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(console_log_query(&q(&[])).unwrap(), MAX_CONSOLE_LINES);
        assert_eq!(console_log_query(&q(&[("lines", "1")])).unwrap(), 1);
        assert_eq!(console_log_query(&q(&[("lines", "65536")])).unwrap(), 65_536);
        for bad in ["0", "65537", "-1", "x", "", "1.5"] {
            assert_eq!(console_log_query(&q(&[("lines", bad)])).unwrap_err().field.as_deref(), Some("lines"), "{bad}");
        }
        assert_eq!(console_log_query(&q(&[("lines", "1"), ("lines", "2")])).unwrap_err().field.as_deref(), Some("lines"));
        assert_eq!(console_log_query(&q(&[("tail", "1")])).unwrap_err().field.as_deref(), Some("tail"));
    }

    #[test]
    fn console_types_are_the_four_protocols() {
        assert_eq!(console_type("spice").unwrap(), ConsoleType::Spice);
        let e = console_type("vnc").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("console_type"));
        assert!(e.message.contains("novnc, xvpvnc, rdp, spice"), "{}", e.message);
    }

    #[test]
    fn server_patch_needs_a_valid_change() {
        let p = server_patch(format!(r#"{{"hostname":"db-2","project_id":"{}"}}"#, T.replace('-', "")).as_bytes()).unwrap();
        assert_eq!(p, ServerPatch { hostname: Some("db-2".into()), project_id: Some(T.into()) });
        assert_eq!(server_patch(b"{}").unwrap_err().status, 400);
        assert_eq!(server_patch(b"").unwrap_err().status, 400);
        assert_eq!(server_patch(br#"{"hostname":"a_b"}"#).unwrap_err().field.as_deref(), Some("hostname"));
        assert_eq!(server_patch(br#"{"project_id":"p"}"#).unwrap_err().field.as_deref(), Some("project_id"));
        assert_eq!(server_patch(br#"{"hostname":"a","locked":true}"#).unwrap_err().field.as_deref(), Some("locked"));
        assert_eq!(server_patch(br#"{"hostname":5}"#).unwrap_err().field.as_deref(), Some("hostname"));
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
        // Checked where it is written, before defaults are merged.
        assert_eq!(launch(body.as_bytes(), &mut digits()).unwrap_err().field.as_deref(), Some("defaults.user_data"));
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

/// Per body kind: invalid bodies and the field their 400 names, valid
/// bodies that pass. The schema step answers most rows; the rows marked
/// "semantic" are answered by the checks that stay in this module.
#[cfg(test)]
mod body_tables {
    use super::*;

    const T: &str = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011";
    const T32: &str = "0F1E2D3C4B5A69788A9BACBDCEDF0011";

    fn no_digits() -> u8 {
        7
    }

    /// Runs `check` on each body: `Some(field)` must fail naming that field
    /// (`""`: no field), `None` must pass.
    fn table(kind: &str, check: &dyn Fn(&[u8]) -> ApiResult<()>, rows: &[(String, Option<&str>)]) {
        for (body, want) in rows {
            let got = check(body.as_bytes());
            match (want, got) {
                (None, Ok(())) => {}
                (None, Err(e)) => panic!("{kind}: {} should pass, got {}: {}", short(body), e.status, short(&e.message)),
                (Some(f), Ok(())) => panic!("{kind}: {} should fail at {f:?}", short(body)),
                (Some(f), Err(e)) => {
                    assert_eq!(e.status, 400, "{kind}: {}: {}", short(body), short(&e.message));
                    assert_eq!(e.field.as_deref().unwrap_or(""), *f, "{kind}: {}: {}", short(body), short(&e.message));
                    assert!(!e.message.is_empty());
                }
            }
        }
    }

    /// Long bodies (user_data at its limit) cut for failure messages.
    fn short(s: &str) -> String {
        if s.len() > 300 { format!("{}...", &s[..s.floor_char_boundary(300)]) } else { s.to_string() }
    }

    fn rows(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<&'static str>)> {
        list.iter()
            .map(|(b, f)| (b.replace("$T32", T32).replace("$T", T), f.map(|f| &*f.to_string().leak())))
            .collect()
    }

    #[test]
    fn server_type_create_bodies() {
        let spec = r#""spec":{"memory_mb":1,"cpu_units":1}"#;
        let with = |extra: &str| format!(r#"{{"name":"m1",{spec}{extra}}}"#);
        let mut r = rows(&[
            (r#"{"name":"m1","spec":{"memory_mb":0,"cpu_units":1}}"#, None),
            (r#"{"name":"m1.small","description":"d","visibility":"PUBLIC","spec":{"memory_mb":512,"root_disk_gb":0,"cpu_units":2,"rxtx_factor":0.1,"swap_mb":0},"tags":["a","a"],"shares":{"users":["$T32"],"projects":["$T"]}}"#, None),
            (r#"{"spec":{"memory_mb":1,"cpu_units":1}}"#, Some("name")),
            (r#"{"name":"m1"}"#, Some("spec")),
            (r#"{"name":"m1","spec":{"memory_mb":1}}"#, Some("spec.cpu_units")),
            (r#"{"name":"m1","spec":{"memory_mb":-1,"cpu_units":1}}"#, Some("spec.memory_mb")),
            (r#"{"name":"m1","spec":{"memory_mb":"1","cpu_units":1}}"#, Some("spec.memory_mb")),
            (r#"{"name":"m1","spec":{"memory_mb":1.5,"cpu_units":1}}"#, Some("spec.memory_mb")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":0}}"#, Some("spec.cpu_units")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":4294967296}}"#, Some("spec.cpu_units")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1,"rxtx_factor":0.05}}"#, Some("spec.rxtx_factor")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1,"swap_mb":-1}}"#, Some("spec.swap_mb")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1,"root_disk_db":1}}"#, Some("spec.root_disk_db")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1},"id":"$T"}"#, Some("id")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1},"_links":{}}"#, Some("_links")),
            (r#"{"name":"","spec":{"memory_mb":1,"cpu_units":1}}"#, Some("name")),
            (r#"{"name":"a/b","spec":{"memory_mb":1,"cpu_units":1}}"#, Some("name")),
            (r#"{"name":" a","spec":{"memory_mb":1,"cpu_units":1}}"#, Some("name")),
            (r#"{"name":"a ","spec":{"memory_mb":1,"cpu_units":1}}"#, Some("name")),
            (r#"{"name":"a\tb","spec":{"memory_mb":1,"cpu_units":1}}"#, Some("name")),
            (r#"{"name":"$T","spec":{"memory_mb":1,"cpu_units":1}}"#, Some("name")),
            (r#"{"name":"$T32","spec":{"memory_mb":1,"cpu_units":1}}"#, Some("name")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1},"visibility":"public"}"#, Some("visibility")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1},"tags":["a","b/c"]}"#, Some("tags[1]")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1},"tags":"a"}"#, Some("tags")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1},"shares":{"users":["x"]}}"#, Some("shares.users[0]")),
            (r#"{"name":"m1","spec":{"memory_mb":1,"cpu_units":1},"shares":{"groups":[]}}"#, Some("shares.groups")),
            ("[]", Some("")),
            ("null", Some("")),
        ]);
        r.push((with(r#","name2":1"#), Some("name2")));
        r.push((with(&format!(r#","description":"{}""#, "d".repeat(MAX_DESCRIPTION_LEN))), None));
        r.push((with(&format!(r#","description":"{}""#, "d".repeat(MAX_DESCRIPTION_LEN + 1))), Some("description")));
        r.push((format!(r#"{{"name":"{}",{spec}}}"#, "é".repeat(MAX_NAME_LEN)), None));
        r.push((format!(r#"{{"name":"{}",{spec}}}"#, "é".repeat(MAX_NAME_LEN + 1)), Some("name")));
        let tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!("\"t{i}\"")).collect();
        // semantic: 51 distinct tags (a schema cannot count distinct items)
        r.push((with(&format!(r#","tags":[{}]"#, tags.join(","))), Some("tags")));
        let dup: Vec<String> = (0..=MAX_TAGS).map(|i| format!("\"t{}\"", i.min(MAX_TAGS - 1))).collect();
        r.push((with(&format!(r#","tags":[{}]"#, dup.join(","))), None));
        table("server_type_create", &|b| server_type_create(b).map(|_| ()), &r);
    }

    #[test]
    fn server_type_patch_bodies() {
        table("server_type_patch", &|b| server_type_patch(b).map(|_| ()), &rows(&[
            ("{}", None),
            (r#"{"name":"m2","description":"","visibility":"PRIVATE","spec":{"memory_mb":1,"cpu_units":1}}"#, None),
            (r#"{"tags":["a"]}"#, Some("tags")),
            (r#"{"shares":{}}"#, Some("shares")),
            (r#"{"id":"$T"}"#, Some("id")),
            (r#"{"name":"$T"}"#, Some("name")),
            (r#"{"visibility":null}"#, Some("visibility")),
            (r#"{"spec":{"memory_mb":1,"cpu_units":0}}"#, Some("spec.cpu_units")),
            (r#"{"spec":{"cpu_units":1}}"#, Some("spec.memory_mb")),
        ]));
    }

    #[test]
    fn share_bodies() {
        table("server_type_shares", &|b| shares(b).map(|_| ()), &rows(&[
            ("{}", None),
            (r#"{"users":["$T","$T32"],"projects":[]}"#, None),
            (r#"{"users":["$T"],"projects":["$T-"]}"#, Some("projects[0]")),
            (r#"{"users":["{$T}"]}"#, Some("users[0]")),
            (r#"{"users":"$T"}"#, Some("users")),
            (r#"{"users":[],"groups":[]}"#, Some("groups")),
            (r#"["$T"]"#, Some("")),
        ]));
    }

    #[test]
    fn tag_list_bodies() {
        let long = "x".repeat(MAX_TAG_LEN + 1);
        let mut r = rows(&[
            ("[]", None),
            (r#"["a","a","é ü"]"#, None),
            (r#"{"tags":["a"]}"#, None),
            (r#"["a",""]"#, Some("tags[1]")),
            (r#"["a,b"]"#, Some("tags[0]")),
            (r#"["a\u0007"]"#, Some("tags[0]")),
            (r#"[1]"#, Some("tags[0]")),
            (r#"{"tags":["ok","a/b"]}"#, Some("tags[1]")),
            (r#"{"tags":[],"more":[]}"#, Some("more")),
            (r#"{}"#, Some("tags")),
            (r#""a""#, Some("tags")),
        ]);
        r.push((format!(r#"["{long}"]"#), Some("tags[0]")));
        table("tag_list", &|b| tag_list(b).map(|_| ()), &r);
    }

    #[test]
    fn launch_bodies() {
        let d = |extra: &str| format!(r#"{{"defaults":{{"type_id":"$T"{extra}}},"servers":[{{"hostname":"a"}}]}}"#).replace("$T", T);
        let mut r = rows(&[
            (r#"{"servers":[{"hostname":"a","type_id":"$T32"}]}"#, None),
            (r#"{"defaults":{"type_id":"$T","hostname_pattern":"w-%(rand_num)d","user_data":"aGk=","affinity":{"near":{"server_tags":["db"]},"not_near":{"server_ids":["$T"]}}},"servers":[{},{"hostname":"x","keypair_id":"$T","template_id":"$T","placement_id":"$T"}]}"#, None),
            (r#"{"servers":[]}"#, Some("servers")),
            (r#"{}"#, Some("servers")),
            (r#"{"servers":{}}"#, Some("servers")),
            (r#"{"defaults":{"hostname":"a"},"servers":[{"hostname":"a","type_id":"$T"}]}"#, Some("defaults.hostname")),
            (r#"{"servers":[{"hostname":"a","type_id":"$T"},{"hostname":"b","type_id":"t1"}]}"#, Some("servers[1].type_id")),
            (r#"{"servers":[{"hostname":"a","type_id":"$T","flavor":"x"}]}"#, Some("servers[0].flavor")),
            (r#"{"servers":[{"hostname":"-a","type_id":"$T"}]}"#, Some("servers[0].hostname")),
            (r#"{"servers":[{"hostname":"a_b","type_id":"$T"}]}"#, Some("servers[0].hostname")),
            (r#"{"servers":[{"hostname":"a","type_id":"$T","user_data":"abc"}]}"#, Some("servers[0].user_data")),
            (r#"{"servers":[{"hostname":"a","type_id":"$T","affinity":{"near":{"server_ids":["x"]}}}]}"#, Some("servers[0].affinity.near.server_ids[0]")),
            (r#"{"servers":[{"hostname":"a","type_id":"$T","affinity":{"near":{"server_tags":["a/b"]}}}]}"#, Some("servers[0].affinity.near.server_tags[0]")),
            (r#"{"servers":[{"hostname":"a","type_id":"$T","affinity":{"close":{}}}]}"#, Some("servers[0].affinity.close")),
            (r#"{"servers":[{"type_id":"$T","hostname_pattern":"a-%(rand_num)0d"}]}"#, Some("servers[0].hostname_pattern")),
            (r#"{"servers":[{"type_id":"$T","hostname_pattern":"a-%(rand_name)d"}]}"#, Some("servers[0].hostname_pattern")),
            (r#"{"servers":[{"type_id":"$T","hostname_pattern":"a-%(rand_num)64d"}]}"#, Some("servers[0].hostname_pattern")),
            (r#"{"servers":[{"type_id":"$T","hostname_pattern":"a_%(rand_num)2d"}]}"#, Some("servers[0].hostname_pattern")),
            // semantic: merged with defaults, expanded, unique in the request
            (r#"{"servers":[{"hostname":"a"}]}"#, Some("servers[0].type_id")),
            (r#"{"servers":[{"type_id":"$T"}]}"#, Some("servers[0].hostname")),
            (r#"{"servers":[{"type_id":"$T","hostname":"a"},{"type_id":"$T","hostname":"A"}]}"#, Some("servers[1].hostname")),
            (r#"{"servers":[{"type_id":"$T","hostname_pattern":"%(rand_num)60d-%(rand_num)4d"}]}"#, Some("servers[0].hostname_pattern")),
        ]);
        // The longest padded base64 within the limit, and the next length.
        let longest = MAX_USER_DATA - MAX_USER_DATA % 4;
        r.push((d(&format!(r#","user_data":"{}""#, "A".repeat(longest))), None));
        r.push((d(&format!(r#","user_data":"{}""#, "A".repeat(longest + 4))), Some("defaults.user_data")));
        r.push((d(r#","user_data":"QQ=""#), Some("defaults.user_data")));
        let many: Vec<String> = (0..=MAX_LAUNCH).map(|i| format!(r#"{{"hostname":"h{i}"}}"#)).collect();
        r.push((format!(r#"{{"defaults":{{"type_id":"{T}"}},"servers":[{}]}}"#, many.join(",")), Some("servers")));
        table("server_launch", &|b| launch(b, &mut no_digits).map(|_| ()), &r);
    }

    #[test]
    fn task_bodies() {
        let mut r = rows(&[
            (r#"{"action":"PAUSE"}"#, None),
            (r#"{"action":"RESIZE","type_id":"$T32"}"#, None),
            (r#"{"action":"MOVE"}"#, None),
            (r#"{"action":"MOVE","placement_id":"$T","live":true}"#, None),
            (r#"{"action":"ATTACH_BLOCK_DEVICE","volume_id":"$T","device":"/dev/vdb"}"#, None),
            (r#"{"action":"DETACH_NETWORK_INTERFACE","network_id":"$T","mac":"52:54:00:ab:cd:ef"}"#, None),
            (r#"{"action":"SNAPSHOT","name":"before upgrade"}"#, None),
            (r#"{"action":"UPDATE_PASSWORD","password":"x"}"#, None),
            (r#"{}"#, Some("action")),
            (r#"{"action":"NAP"}"#, Some("action")),
            (r#"{"action":"pause"}"#, Some("action")),
            (r#"{"action":"CREATE"}"#, Some("action")),
            (r#"{"action":"PAUSE","name":"x"}"#, Some("name")),
            (r#"{"action":"PAUSE","colour":"x"}"#, Some("colour")),
            (r#"{"action":"RESIZE"}"#, Some("type_id")),
            (r#"{"action":"RESIZE","type_id":"small"}"#, Some("type_id")),
            (r#"{"action":"RESIZE","type_id":"$T","live":true}"#, Some("live")),
            (r#"{"action":"MOVE","live":"yes"}"#, Some("live")),
            (r#"{"action":"ATTACH_NETWORK_INTERFACE"}"#, Some("network_id")),
            (r#"{"action":"ATTACH_NETWORK_INTERFACE","mac":"52-54-00-ab-cd-ef"}"#, Some("mac")),
            (r#"{"action":"ATTACH_BLOCK_DEVICE","volume_id":"$T","device":"vdb"}"#, Some("device")),
            (r#"{"action":"ATTACH_BLOCK_DEVICE","device":"/dev/vdb"}"#, Some("volume_id")),
            (r#"{"action":"SNAPSHOT","name":"   "}"#, Some("name")),
            (r#"{"action":"SNAPSHOT"}"#, Some("name")),
            (r#"{"action":"UPDATE_PASSWORD","password":""}"#, Some("password")),
            (r#"{"action":"REBUILD","template_id":null}"#, Some("template_id")),
        ]);
        r.push((format!(r#"{{"action":"BACKUP","name":"{}"}}"#, "n".repeat(MAX_NAME_LEN + 1)), Some("name")));
        table("server_task_create", &|b| task(b).map(|_| ()), &r);
    }

    #[test]
    fn server_patch_bodies() {
        table("server_patch", &|b| server_patch(b).map(|_| ()), &rows(&[
            (r#"{"hostname":"web-2"}"#, None),
            (r#"{"project_id":"$T32"}"#, None),
            (r#"{}"#, Some("")),
            (r#"{"hostname":"web_2"}"#, Some("hostname")),
            (r#"{"project_id":"p1"}"#, Some("project_id")),
            (r#"{"id":"$T"}"#, Some("id")),
        ]));
    }

    #[test]
    fn path_tags_are_checked() {
        assert!(tag("tag", "prod").is_ok());
        for bad in ["", "a/b", "a,b", "a\n", &"x".repeat(MAX_TAG_LEN + 1)] {
            let e = tag("tag", bad).unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (400, Some("tag")), "{bad:?}");
        }
    }

    #[test]
    fn messages_say_what_the_schema_requires() {
        let msg = |r: ApiResult<()>| r.unwrap_err().message;
        let m = msg(server_type_create(br#"{"name":"m1","spec":{"memory_mb":-1,"cpu_units":1}}"#).map(|_| ()));
        assert_eq!(m, "spec.memory_mb must be at least 0");
        let m = msg(task(br#"{"action":"PAUSE","name":"x"}"#).map(|_| ()));
        assert!(m.starts_with("name is not accepted here; remove it (allowed: action; PAUSE takes no arguments)"), "{m}");
        let m = msg(task(br#"{"action":"RESIZE"}"#).map(|_| ()));
        assert_eq!(m, "type_id is required (RESIZE needs type_id)");
        let m = msg(server_type_patch(br#"{"tags":[]}"#).map(|_| ()));
        assert!(m.contains("PUT /server_types/{id}/tags"), "{m}");
        let m = msg(launch(br#"{"servers":[{"type_id":"x"}]}"#, &mut no_digits).map(|_| ()));
        assert!(m.starts_with(r#"servers[0].type_id "x" is not valid: expected a UUID"#), "{m}");
        let m = msg(launch(br#"{"servers":[{"hostname":"a","typo":1}]}"#, &mut no_digits).map(|_| ()));
        assert!(m.contains("remove it") && m.contains("type_id"), "{m}");
    }
}
