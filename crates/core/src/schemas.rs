//! JSON Schema (draft 2020-12) documents of every payload, served at
//! `/schemas/{object}`, and the validator that checks request bodies
//! against those very documents.
//!
//! Organisation:
//! - small builders (`id_in`, `tag`, `hostname`, ...) state each field rule
//!   once; the documents below are assembled from them;
//! - response objects (`server_type`, `server`, `server_task`, ...) describe
//!   what the API returns: server-set fields are `readOnly`, ids are
//!   `format: uuid` (always lowercase hyphenated on output);
//! - request objects ([`REQUEST_OBJECTS`]: `server_type_create`,
//!   `server_type_patch`, `server_type_shares`, `tag_list`, `server_launch`,
//!   `server_task_create`, `server_patch`) describe request bodies exactly:
//!   `additionalProperties: false`, ranges, patterns, enums; ids are a
//!   pattern accepting both spellings of [`crate::ids`]. They are separate
//!   documents because a request must not carry the server-set fields a
//!   response has, which `readOnly` alone does not forbid;
//! - [`check`] validates a parsed body against a request object, compiled
//!   once per instance (guest instances are reused across requests), and
//!   turns the first violation into a 400 naming the field by its dotted
//!   path (`spec.memory_mb`, `servers[1].type_id`). Messages come from the
//!   failing keyword plus the `description` of the failing subschema, so
//!   descriptions here are written to be read after "expected".
//!
//! What a schema cannot express (rules across `defaults` and `servers[]`,
//! tag sets counted after duplicates collapse, hostname patterns expanded,
//! the state a task may start from) stays in [`crate::validate`].

use crate::hypervisor::ConsoleType;
use crate::model::{ItemState, TaskAction, TaskState, VirtState, Visibility};
use crate::error::{ApiError, ApiResult};
use crate::validate::{MAX_DESCRIPTION_LEN, MAX_LAUNCH, MAX_NAME_LEN, MAX_TAG_LEN, MAX_TAGS, MAX_USER_DATA};
use serde_json::{Value, json};
use std::sync::OnceLock;

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every object with a schema, in listing order: the proposal's seven
/// first, in its order, then ours.
pub const OBJECTS: &[&str] = &[
    "placement", "server_type", "server_task", "server_task_item", "server", "tag", "property",
    "server_launch", "server_launch_result", "server_patch", "server_console", "diagnostics", "query", "error",
    "server_type_create", "server_type_patch", "server_type_shares", "tag_list", "server_task_create",
];

/// One line on each object, for `GET /schemas`.
fn summary(object: &str) -> &'static str {
    match object {
        "placement" => "A placement is a container of compute resources where servers may be placed; placements may contain other placements.",
        "server_type" => "A server type describes the capacity of a class of servers (a flavor).",
        "server_task" => "A server task is an action that is or was carried out on a server, with its state.",
        "server_task_item" => "A server task item is one step of a server task.",
        "server" => "A server is a virtual machine, owned by one project and launched from a server template.",
        "tag" => "A tag is a string that categorizes a resource.",
        "property" => "Properties are string key/value pairs that describe a resource.",
        "server_launch" => "The request that launches one or more servers.",
        "server_launch_result" => "One entry of the answer to a launch: the new server's id and links.",
        "server_patch" => "The request that renames a server or moves it to another project.",
        "server_console" => "Where to connect to a server's interactive console, once.",
        "diagnostics" => "Resource counters of a server, as its hypervisor reports them.",
        "query" => "The query parameters of the API's routes (JSON-Home href-vars point here).",
        "error" => "The body of every error response.",
        "server_type_create" => "The request that creates a server type.",
        "server_type_patch" => "The request that changes a server type.",
        "server_type_shares" => "The users and projects a server type is shared with.",
        "tag_list" => "The request that replaces a resource's tags.",
        "server_task_create" => "The request that starts a server task.",
        _ => "",
    }
}

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}

fn ro(mut v: Value) -> Value {
    v["readOnly"] = json!(true);
    v
}

fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn nullable(mut v: Value) -> Value {
    let t = v["type"].clone();
    v["type"] = json!([t, "null"]);
    v
}

fn links() -> Value {
    ro(json!({
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": { "href": { "type": "string" } },
            "required": ["href"]
        }
    }))
}

/// C0 and C1 control characters (Rust's `char::is_control`), as an ECMA-262
/// character-class range.
const CONTROL: &str = "\\u0000-\\u001F\\u007F-\\u009F";

/// A UUID as requests may spell it (see [`crate::ids`]): hyphenated or 32
/// hex digits, any case. Responses use [`uuid`].
const UUID_IN: &str = "^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32})$";

fn id_in() -> Value {
    json!({ "type": "string", "pattern": UUID_IN, "description": "a UUID: 36-character hyphenated or 32 hex digits, any case" })
}

fn tag() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": MAX_TAG_LEN, "pattern": format!("^[^/,{CONTROL}]+$"),
        "description": format!("a tag: 1 to {MAX_TAG_LEN} characters without '/', ',' or control characters")
    })
}

/// A resource's tags as returned: a set of at most [`MAX_TAGS`].
fn tags() -> Value {
    json!({ "type": "array", "items": tag(), "maxItems": MAX_TAGS, "uniqueItems": true })
}

/// Tags as sent: duplicates collapse (a tag collection is a set), so the
/// limit of [`MAX_TAGS`] is on distinct tags and checked after collapsing,
/// in [`crate::validate::tags`]; a schema cannot count distinct items.
fn tags_in() -> Value {
    json!({
        "type": "array", "items": tag(),
        "description": format!("a set of tags: duplicates collapse, at most {MAX_TAGS} distinct")
    })
}

fn property() -> Value {
    json!({
        "type": "object",
        "propertyNames": { "minLength": 1, "maxLength": 50 },
        "additionalProperties": { "type": "string" }
    })
}

fn hostname() -> Value {
    json!({
        "type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
        "description": "an RFC 1123 host label: 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen"
    })
}

/// A server type name: not a UUID, because ids and names share the
/// `/server_types/{id or name}` route.
fn type_name() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN,
        "pattern": format!("^[^\\s/{CONTROL}]([^/{CONTROL}]*[^\\s/{CONTROL}])?$"),
        "not": { "pattern": UUID_IN },
        "description": format!("a name of 1 to {MAX_NAME_LEN} characters without '/' or control characters, no leading or trailing spaces, and not a UUID (ids and names share /server_types/{{id or name}})")
    })
}

fn type_spec() -> Value {
    json!({
        "type": "object", "additionalProperties": false,
        "required": ["memory_mb", "cpu_units"],
        "properties": {
            "memory_mb": { "type": "integer", "minimum": 0, "maximum": u64::MAX },
            "root_disk_gb": { "type": "integer", "minimum": 0, "maximum": u64::MAX, "default": crate::model::default_root_disk_gb() },
            "cpu_units": { "type": "integer", "minimum": 1, "maximum": u32::MAX },
            "rxtx_factor": { "type": "number", "minimum": 0.1 },
            "swap_mb": { "type": "integer", "minimum": 0, "maximum": u64::MAX }
        }
    })
}

fn type_description() -> Value {
    json!({ "type": "string", "maxLength": MAX_DESCRIPTION_LEN, "default": "" })
}

fn doc(object: &str, title: &str, body: Value) -> Value {
    let mut v = json!({ "$schema": DRAFT, "$id": format!("/schemas/{object}"), "title": title });
    for (k, val) in body.as_object().expect("schema bodies are objects") {
        v[k] = val.clone();
    }
    v
}

fn server_type() -> Value {
    doc("server_type", "Server type", json!({
        "description": "A flavor: the resources a server gets, as the API returns it. Created with server_type_create (POST /server_types), changed with server_type_patch (PATCH), tags and shares through their own routes. shares lists users and projects to the owner and admins only; everyone else sees both lists empty.",
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "name", "description", "visibility", "shares", "spec", "tags", "_links"],
        "properties": {
            "id": ro(uuid()),
            "name": type_name(),
            "description": type_description(),
            "visibility": { "enum": Visibility::names(), "default": "PRIVATE" },
            "shares": {
                "type": "object", "additionalProperties": false, "required": ["users", "projects"],
                "properties": {
                    "users": { "type": "array", "items": uuid(), "uniqueItems": true },
                    "projects": { "type": "array", "items": uuid(), "uniqueItems": true }
                }
            },
            "spec": type_spec(),
            "tags": tags(),
            "_links": links()
        }
    }))
}

/// Request bodies of the server type routes.
fn shares_in() -> Value {
    json!({
        "type": "object", "additionalProperties": false,
        "properties": {
            "users": { "type": "array", "items": id_in(), "description": "user ids; duplicates collapse" },
            "projects": { "type": "array", "items": id_in(), "description": "project ids; duplicates collapse" }
        }
    })
}

fn server_type_create() -> Value {
    doc("server_type_create", "Server type creation request", json!({
        "description": "Body of POST /server_types. A non-admin may not create a PUBLIC type (403).",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "spec"],
        "properties": {
            "name": type_name(),
            "description": type_description(),
            "visibility": { "enum": Visibility::names(), "default": "PRIVATE" },
            "spec": type_spec(),
            "tags": tags_in(),
            "shares": shares_in()
        }
    }))
}

fn server_type_patch() -> Value {
    doc("server_type_patch", "Server type patch request", json!({
        "description": "Body of PATCH /server_types/{id}: any of name, description, visibility, spec (replaced whole). A non-admin may not make a type PUBLIC (403).",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "name": type_name(),
            "description": type_description(),
            "visibility": { "enum": Visibility::names() },
            "spec": type_spec(),
            // Named, so that the 400 says where they are changed instead of
            // calling them unknown.
            "shares": { "not": {}, "description": "shares are changed with PUT /server_types/{id}/shares, not patched" },
            "tags": { "not": {}, "description": "tags are changed with PUT /server_types/{id}/tags, not patched" }
        }
    }))
}

fn server_type_shares() -> Value {
    let mut body = shares_in();
    body["description"] = json!("Body of PUT /server_types/{id}/shares (replaces the shares) and of its GET: the users and projects a PRIVATE type is shared with, as sets.");
    doc("server_type_shares", "Server type shares", body)
}

fn tag_list() -> Value {
    doc("tag_list", "Tag list", json!({
        "description": "Body of PUT /server_types/{id}/tags and PUT /servers/{id}/tags (replaces the tags): the document GET returns, {\"tags\": [...]}, or the bare array.",
        "type": ["object", "array"],
        "if": { "type": "object" },
        "then": { "additionalProperties": false, "required": ["tags"], "properties": { "tags": tags_in() } },
        "else": tags_in()
    }))
}

/// `%(rand_num)Nd` with N from 1 to 63, or no N (6 digits).
const HOSTNAME_PATTERN: &str = "^([A-Za-z0-9-]|%\\(rand_num\\)([1-9]|[1-5][0-9]|6[0-3])?d)+$";
/// Padded base64 (RFC 4648 section 4).
const BASE64: &str = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";

fn launch_fields(with_hostname: bool) -> Value {
    let mut props = json!({
        "type_id": id_in(),
        "template_id": id_in(),
        "keypair_id": id_in(),
        "placement_id": id_in(),
        "user_data": {
            "type": "string", "contentEncoding": "base64", "maxLength": MAX_USER_DATA, "pattern": BASE64,
            "description": format!("padded base64 text of at most {MAX_USER_DATA} characters")
        },
        "hostname_pattern": {
            "type": "string", "pattern": HOSTNAME_PATTERN,
            "description": "a hostname in which %(rand_num)Nd stands for N random digits (N from 1 to 63, no N: 6), e.g. web-%(rand_num)4d; the result must be a valid hostname"
        },
        "affinity": { "$ref": "#/$defs/affinity" }
    });
    let description = if with_hostname {
        props["hostname"] = hostname();
        "one server: its own fields override those of defaults"
    } else {
        "fields for every server that does not set them, except hostname: each server needs its own, or use hostname_pattern"
    };
    json!({ "type": "object", "additionalProperties": false, "properties": props, "description": description })
}

fn server_launch() -> Value {
    let target = json!({
        "type": "object", "additionalProperties": false,
        "properties": { "server_ids": { "type": "array", "items": id_in() }, "server_tags": { "type": "array", "items": tag() } }
    });
    doc("server_launch", "Server launch request", json!({
        "description": "Body of POST /projects/{project}/servers. Each server needs type_id and a hostname or hostname_pattern, from itself or from defaults; hostnames are unique in the request and the project. The whole request is validated before any server is created.",
        "type": "object",
        "additionalProperties": false,
        "required": ["servers"],
        "properties": {
            "defaults": launch_fields(false),
            "servers": {
                "type": "array", "minItems": 1, "maxItems": MAX_LAUNCH, "items": launch_fields(true),
                "description": format!("1 to {MAX_LAUNCH} servers")
            }
        },
        "$defs": {
            "affinity": {
                "type": "object", "additionalProperties": false,
                "properties": { "near": target, "not_near": target },
                "description": "servers to place near or away from, by id or by tag"
            }
        }
    }))
}

/// The fields a server shows in lists too: every field but `networking`
/// and `block_devices`, which only `GET` of one server carries.
const SERVER_REQUIRED: &[&str] = &[
    "_elevated", "_links", "hostname", "id", "launch_keypair_id", "launched_at", "launched_by", "locked",
    "placement_id", "power_state", "project_id", "properties", "spec", "tags", "template_id", "type_id", "virt_state",
];

fn server() -> Value {
    let interface = json!({
        "type": "object", "additionalProperties": false, "required": ["name", "ip4", "ip6", "mac"],
        "properties": { "name": { "type": "string" }, "ip4": nullable(json!({"type": "string"})), "ip6": nullable(json!({"type": "string"})), "mac": { "type": "string" } }
    });
    let addresses = json!({ "type": "array", "items": { "type": "string" } });
    doc("server", "Server", json!({
        "description": "A server. Created by launching (server_launch); hostname and project_id change with server_patch (PATCH), everything else through tasks. Lists show every field but networking and block_devices.",
        "type": "object",
        "additionalProperties": false,
        "required": SERVER_REQUIRED,
        "properties": {
            "id": ro(uuid()),
            "hostname": hostname(),
            "project_id": uuid(),
            "launched_by": ro(uuid()),
            "launched_at": ro(time()),
            "launch_keypair_id": ro(nullable(uuid())),
            "template_id": ro(nullable(uuid())),
            "type_id": ro(uuid()),
            "placement_id": ro(json!({
                "type": ["string", "null"], "format": "uuid",
                "description": "The placement asked for at launch (or by the last MOVE), else the placement of the compute node the server was scheduled to; null only for a server launched without one that no node could take."
            })),
            "power_state": ro(json!({
                "enum": ["RUNNING", "PAUSED", "SHUTDOWN", "CRASHED", "SUSPENDED"],
                "description": "SHUTDOWN until the hypervisor first reports the server running (while BUILDING, and after a failed launch)."
            })),
            "virt_state": ro(json!({ "enum": VirtState::names() })),
            "spec": ro(json!({ "$ref": "/schemas/server_type#/properties/spec" })),
            "block_devices": ro(json!({ "type": "array", "items": {
                "type": "object", "additionalProperties": false, "required": ["device", "type"],
                "properties": { "device": { "type": "string" }, "type": { "enum": ["EPHEMERAL", "PERSISTENT"] } }
            } })),
            "networking": ro(json!({
                "type": "object", "additionalProperties": false, "required": ["access", "interfaces"],
                "properties": {
                    "access": {
                        "type": "object", "additionalProperties": false, "required": ["ip4", "ip6"],
                        "properties": { "ip4": addresses, "ip6": addresses }
                    },
                    "interfaces": { "type": "array", "items": interface }
                }
            })),
            "properties": property(),
            "tags": tags(),
            "locked": ro(json!({ "type": "boolean" })),
            "_elevated": ro(json!({
                "type": "object", "additionalProperties": false,
                "properties": {
                    "compute_node_hostname": nullable(json!({ "type": "string" })),
                    "properties": property(),
                    "reclaimed_at": nullable(json!({ "type": "string", "format": "date-time" }))
                },
                "description": "Admins only: compute_node_hostname, elevated properties, and reclaimed_at (when a TERMINATED server's disk was deleted for good; null otherwise); {} for others."
            })),
            "_links": links()
        }
    }))
}

/// An entry of the launch answer (a bare array, in request order). As in
/// the proposal, its `describedby` is `/schemas/server`: the schema of the
/// server its `self` link names, which a GET of that link returns.
fn server_launch_result() -> Value {
    doc("server_launch_result", "Launched server", json!({
        "description": "One entry of the answer to POST /projects/{project}/servers: the server's id, hostname and launch time; GET _links.self for the server (whose schema _links.describedby names).",
        "type": "object",
        "readOnly": true,
        "additionalProperties": false,
        "required": ["id", "hostname", "launched_at", "_links"],
        "properties": { "id": uuid(), "hostname": hostname(), "launched_at": time(), "_links": links() }
    }))
}

fn server_patch() -> Value {
    doc("server_patch", "Server patch", json!({
        "description": "Body of PATCH /servers/{id}: rename (hostname, unique in the project) and/or transfer (project_id; admins, or members of both projects). At least one field.",
        "type": "object",
        "additionalProperties": false,
        "minProperties": 1,
        "properties": { "hostname": hostname(), "project_id": id_in() }
    }))
}

fn server_console() -> Value {
    doc("server_console", "Server console", json!({
        "description": "GET /servers/{id}/consoles/{type}: a URI carrying a one-time token for an interactive console.",
        "type": "object",
        "readOnly": true,
        "additionalProperties": false,
        "required": ["type", "uri", "_links"],
        "properties": {
            "type": { "enum": ConsoleType::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>() },
            "uri": { "type": "string", "format": "uri" },
            "_links": links()
        }
    }))
}

fn diagnostics() -> Value {
    let counter = json!({ "type": "integer", "minimum": 0 });
    doc("diagnostics", "Server diagnostics", json!({
        "description": "GET /servers/{id}/diagnostics: resource counters of a server on a compute node, as its hypervisor reports them now.",
        "type": "object",
        "readOnly": true,
        "additionalProperties": false,
        "required": ["server_id", "cpu_time_ns", "memory_used_mb", "memory_total_mb", "uptime_seconds", "disks", "interfaces", "_links"],
        "properties": {
            "server_id": uuid(),
            "cpu_time_ns": counter,
            "memory_used_mb": counter,
            "memory_total_mb": counter,
            "uptime_seconds": counter,
            "disks": { "type": "array", "items": {
                "type": "object", "additionalProperties": false,
                "required": ["device", "read_bytes", "write_bytes", "read_requests", "write_requests"],
                "properties": {
                    "device": { "type": "string" }, "read_bytes": counter, "write_bytes": counter,
                    "read_requests": counter, "write_requests": counter
                }
            } },
            "interfaces": { "type": "array", "items": {
                "type": "object", "additionalProperties": false,
                "required": ["name", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets"],
                "properties": {
                    "name": { "type": "string" }, "rx_bytes": counter, "tx_bytes": counter,
                    "rx_packets": counter, "tx_packets": counter
                }
            } },
            "_links": links()
        }
    }))
}

/// Every task argument, ids in the spelling `id` gives (requests accept
/// both UUID forms, responses return the canonical one).
fn task_args(id: fn() -> Value) -> Value {
    json!({
        "type_id": id(),
        "template_id": id(),
        "name": {
            "type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN, "pattern": "\\S",
            "description": format!("a name of 1 to {MAX_NAME_LEN} characters, not only spaces")
        },
        "placement_id": id(),
        "live": { "type": "boolean" },
        "volume_id": id(),
        "device": { "type": "string", "pattern": "^/dev/", "description": "a device path under /dev/, e.g. /dev/vdb" },
        "network_id": id(),
        "mac": {
            "type": "string", "pattern": "^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$",
            "description": "a MAC address like 52:54:00:12:34:56"
        }
    })
}

fn server_task() -> Value {
    let mut props = task_args(uuid);
    let server_set = json!({
        "id": ro(uuid()),
        "server_id": ro(uuid()),
        "action": { "enum": TaskAction::names() },
        "state": ro(json!({ "enum": TaskState::names() })),
        "created_at": ro(time()),
        "created_by": ro(uuid()),
        "updated_at": ro(time()),
        "error": ro(nullable(json!({ "type": "string" }))),
        "_links": links()
    });
    for (k, v) in server_set.as_object().expect("an object") {
        props[k] = v.clone();
    }
    doc("server_task", "Server task", json!({
        "description": "An asynchronous action on a server, as the API returns it: the action, the arguments it was given, its state. Started with server_task_create (POST /servers/{id}/tasks); x-transitions lists, per action, the virt_states it may start from (otherwise 409), its items and arguments.",
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "server_id", "action", "state", "created_at", "created_by", "updated_at", "error", "_links"],
        "properties": props,
        "x-transitions": crate::transitions::table_json()
    }))
}

/// `POST /servers/{id}/tasks`: which arguments go with which action is
/// stated per action (`allOf` of `if action = X then ...`), generated from
/// the transition table. CREATE is left out: only launching creates it.
fn server_task_create() -> Value {
    let startable: Vec<&crate::transitions::Transition> =
        crate::transitions::TABLE.iter().filter(|t| !t.from.is_empty()).collect();
    let mut props = task_args(id_in);
    props["action"] = json!({
        "enum": startable.iter().map(|t| t.action.as_str()).collect::<Vec<_>>(),
        "description": "a task action; CREATE tasks come only from launching servers"
    });
    props["password"] = json!({ "type": "string", "minLength": 1, "writeOnly": true, "description": "the new password; handed to the hypervisor, never stored" });
    let per_action: Vec<Value> = startable
        .iter()
        .map(|t| {
            let action = t.action.as_str();
            let one_of = crate::transitions::one_of_args(t.action);
            let mut accepted = serde_json::Map::new();
            accepted.insert("action".into(), json!(true));
            for a in t.required_args.iter().chain(t.optional_args) {
                accepted.insert(a.to_string(), json!(true));
            }
            let takes = match (t.required_args, t.optional_args, one_of) {
                ([], [], _) => format!("{action} takes no arguments"),
                (_, _, [_, ..]) => format!("{action} needs {}", one_of.join(" or ")),
                (req, [], _) => format!("{action} needs {}", req.join(" and ")),
                ([], opt, _) => format!("{action} accepts {}", opt.join(" and ")),
                (req, opt, _) => format!("{action} needs {} and accepts {}", req.join(" and "), opt.join(" and ")),
            };
            let mut then = json!({
                "description": takes,
                "properties": accepted,
                "additionalProperties": false,
                "required": t.required_args
            });
            if !one_of.is_empty() {
                then["anyOf"] = one_of.iter().map(|a| json!({ "required": [a] })).collect();
            }
            json!({ "if": { "properties": { "action": { "const": action } } }, "then": then })
        })
        .collect();
    doc("server_task_create", "Server task request", json!({
        "description": "Body of POST /servers/{id}/tasks: action plus the arguments that action takes (see x-transitions of server_task). Whether the server's virt_state allows the action is checked when the task starts (409).",
        "type": "object",
        "additionalProperties": false,
        "required": ["action"],
        "properties": props,
        "allOf": per_action
    }))
}

/// Every item action of the transition table, in first-use order.
pub fn item_actions() -> Vec<&'static str> {
    let mut seen = Vec::new();
    for step in crate::transitions::TABLE.iter().flat_map(|t| t.items) {
        if !seen.contains(step) {
            seen.push(*step);
        }
    }
    seen
}

fn server_task_item() -> Value {
    doc("server_task_item", "Server task item", json!({
        "description": "One step of a task (read-only). started_at is null while the item is WAITING and ended_at until it ends.",
        "type": "object",
        "readOnly": true,
        "additionalProperties": false,
        "required": ["id", "task_id", "action", "state", "created_at", "started_at", "ended_at", "_links"],
        "properties": {
            "id": uuid(),
            "task_id": uuid(),
            "action": { "enum": item_actions(), "description": "the step; which steps a task has depends on its action (x-transitions of server_task)" },
            "state": { "enum": ItemState::names() },
            "created_at": time(),
            "started_at": nullable(time()),
            "ended_at": nullable(time()),
            "_links": links()
        }
    }))
}

/// Every query parameter of the API, described once (JSON-Home's
/// `href-vars` point at these properties). A route refuses the ones it
/// does not list in its `href-template` (400).
fn query() -> Value {
    let any = |names: Vec<&'static str>| {
        let mut all = names;
        all.push(crate::paging::ANY_STATE);
        json!({ "enum": all })
    };
    let task_states: Vec<&str> = ItemState::names();
    doc("query", "Query parameters", json!({
        "description": "The query parameters of the API's routes. A parameter marked repeatable may be given several times and then matches any of its values; different parameters must all match.",
        "type": "object",
        "properties": {
            "limit": { "type": "integer", "minimum": 1, "maximum": crate::paging::MAX_LIMIT, "default": crate::paging::DEFAULT_LIMIT, "description": "page size" },
            "marker": { "type": "string", "format": "uuid", "description": "the id of the last item of the previous page" },
            "since": { "type": "string", "format": "date-time", "description": "servers launched, tasks created, items started at or after this time" },
            "changes_since": { "type": "string", "format": "date-time", "description": "items changed (any field, any state change) at or after this time" },
            "tag": { "type": "string", "description": "repeatable: items carrying this tag" },
            "parent_placement": { "type": "string", "format": "uuid", "description": "placements directly below this one" },
            "project": { "type": "string", "format": "uuid", "description": "repeatable: servers of this project (others than your own: admins only)" },
            "launched_by": { "type": "string", "format": "uuid", "description": "repeatable: servers launched by this user (others than you: admins only)" },
            "virt_state": any(VirtState::names()),
            "power_state": any(vec!["RUNNING", "PAUSED", "SHUTDOWN", "CRASHED", "SUSPENDED"]),
            "state": { "enum": task_states, "description": "repeatable: tasks or items in this state" },
            "lines": { "type": "integer", "minimum": 1, "maximum": crate::validate::MAX_CONSOLE_LINES, "default": crate::validate::MAX_CONSOLE_LINES, "description": "how many of the last console lines" }
        }
    }))
}

fn error() -> Value {
    doc("error", "Error", json!({
        "description": "Every 4xx and 5xx answer of the API: code (the HTTP status), title (its reason phrase), message (what went wrong and what to do) and, when one field of the request is to blame, field (its dotted path or the query parameter).",
        "type": "object",
        "additionalProperties": false,
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object", "additionalProperties": false, "required": ["code", "title", "message"],
                "properties": {
                    "code": { "type": "integer", "minimum": 400, "maximum": 599 },
                    "title": { "type": "string" },
                    "message": { "type": "string", "minLength": 1 },
                    "field": { "type": "string" }
                }
            }
        }
    }))
}

fn placement() -> Value {
    doc("placement", "Placement", json!({
        "description": "A container of compute resources (read-only; defined by the deployer in the inventory). Placing a server in a placement means it runs there or in any descendant. Hierarchies may overlap: a placement may have several parents. parent_placement_id is the first of them in inventory order (null for a root) and parent_placement_ids lists them all. GET /placements?parent_placement={id} lists the direct children.",
        "type": "object",
        "readOnly": true,
        "additionalProperties": false,
        "required": ["id", "name", "description", "parent_placement_id", "parent_placement_ids", "properties", "tags", "_links"],
        "properties": {
            "id": uuid(),
            "name": { "type": "string", "minLength": 1 },
            "description": { "type": "string" },
            "parent_placement_id": nullable(uuid()),
            "parent_placement_ids": { "type": "array", "items": uuid(), "uniqueItems": true },
            "properties": property(),
            "tags": tags(),
            "_links": links()
        }
    }))
}

/// The schema of `object`, if there is one.
pub fn get(object: &str) -> Option<Value> {
    Some(match object {
        "server_type" => server_type(),
        "server_type_create" => server_type_create(),
        "server_type_patch" => server_type_patch(),
        "server_type_shares" => server_type_shares(),
        "tag_list" => tag_list(),
        "server_task_create" => server_task_create(),
        "server_launch" => server_launch(),
        "server_launch_result" => server_launch_result(),
        "server" => server(),
        "server_task" => server_task(),
        "server_task_item" => server_task_item(),
        "placement" => placement(),
        "tag" => doc("tag", "Tag", tag()),
        "property" => doc("property", "Properties", property()),
        "server_patch" => server_patch(),
        "server_console" => server_console(),
        "diagnostics" => diagnostics(),
        "query" => query(),
        "error" => error(),
        _ => return None,
    })
}

/// `GET /schemas`: as the proposal, a bare array of `{type, description,
/// _links: {"rel/schema"}}`, one per object.
pub fn index() -> Value {
    OBJECTS
        .iter()
        .map(|o| json!({ "type": o, "description": summary(o), "_links": { "rel/schema": { "href": format!("/schemas/{o}") } } }))
        .collect()
}

// ------------------------------------------------------- request validation

/// The request objects: each validates one kind of request body with
/// [`check`]. All are also listed in [`OBJECTS`] and served.
pub const REQUEST_OBJECTS: &[&str] = &[
    "server_type_create", "server_type_patch", "server_type_shares", "tag_list", "server_launch",
    "server_task_create", "server_patch",
];

/// Base the served relative `$id`s (`/schemas/x`) are resolved against when
/// compiling; never fetched (`.invalid` is a reserved TLD).
const BASE: &str = "https://vnext.invalid";

/// A request object's document and its compiled form.
struct Compiled {
    doc: Value,
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

// One slot per request object: compiled on first use, then kept for the
// life of the instance (the host reuses instances across requests).
static COMPILED: [OnceLock<Compiled>; REQUEST_OBJECTS.len()] = [const { OnceLock::new() }; REQUEST_OBJECTS.len()];

fn compile(object: &str) -> Result<Compiled, String> {
    let doc = get(object).ok_or_else(|| format!("no schema named {object}"))?;
    let url = format!("{BASE}/schemas/{object}");
    let mut compiler = boon::Compiler::new();
    // Formats stay annotations (the 2020-12 default): every rule that
    // matters is a pattern, so any client validator enforces it too.
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler.add_resource(&url, doc.clone()).map_err(|e| format!("{e:#}"))?;
    let mut schemas = boon::Schemas::new();
    let index = compiler.compile(&url, &mut schemas).map_err(|e| format!("{e:#}"))?;
    Ok(Compiled { doc, schemas, index })
}

fn compiled(object: &str) -> &'static Compiled {
    let slot = REQUEST_OBJECTS
        .iter()
        .position(|o| *o == object)
        .unwrap_or_else(|| panic!("{object} is not a request object (REQUEST_OBJECTS)"));
    COMPILED[slot].get_or_init(|| compile(object).unwrap_or_else(|e| panic!("schema {object} does not compile: {e}")))
}

/// Checks a parsed request body against the request object `object`
/// (one of [`REQUEST_OBJECTS`]). The first violation becomes a 400 whose
/// `field` is the dotted path of the offending value; `root` names the
/// body itself when it is an array or a single value (`tags` gives
/// `tags[1]`), and is empty otherwise.
pub fn check(object: &str, body: &Value, root: &str) -> ApiResult<()> {
    let c = compiled(object);
    match c.schemas.validate(body, c.index) {
        Ok(()) => Ok(()),
        Err(e) => Err(violation(&c.doc, body, &e, root)),
    }
}

/// The chain from the top error down its first causes to a leaf: boon
/// reports every violation as a tree; the first leaf is the first rule
/// broken in the schema's keyword order.
fn first_chain<'a, 's, 'v>(top: &'a boon::ValidationError<'s, 'v>) -> Vec<&'a boon::ValidationError<'s, 'v>> {
    let mut chain = vec![top];
    while let Some(next) = chain.last().and_then(|e| e.causes.first()) {
        // A bad property name is reported at the name, its cause says why.
        if matches!(chain.last().map(|e| &e.kind), Some(boon::ErrorKind::PropertyName { .. })) {
            break;
        }
        chain.push(next);
    }
    chain
}

/// The JSON pointer part of a compiled schema location in our document.
fn fragment(schema_url: &str) -> Option<&str> {
    schema_url.split_once('#').map(|(_, f)| f)
}

fn dotted(root: &str, tokens: &[boon::InstanceToken]) -> String {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            boon::InstanceToken::Prop(p) if i == 0 => out.push_str(p),
            boon::InstanceToken::Prop(p) => {
                out.push('.');
                out.push_str(p);
            }
            boon::InstanceToken::Item(n) => {
                if i == 0 {
                    out.push_str(root);
                }
                out.push_str(&format!("[{n}]"));
            }
        }
    }
    if tokens.is_empty() { root.to_string() } else { out }
}

/// The JSON pointer of an instance location (to read the refused value).
fn pointer(tokens: &[boon::InstanceToken]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            boon::InstanceToken::Prop(p) => format!("/{}", p.replace('~', "~0").replace('/', "~1")),
            boon::InstanceToken::Item(n) => format!("/{n}"),
        })
        .collect()
}

fn join_dotted(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// A JSON type with its article, for "must be an integer".
fn a_type(t: boon::Type) -> String {
    match t {
        boon::Type::Null => "null".to_string(),
        boon::Type::Integer | boon::Type::Array | boon::Type::Object => format!("an {t}"),
        other => format!("a {other}"),
    }
}

fn violation(doc: &Value, body: &Value, top: &boon::ValidationError, root: &str) -> ApiError {
    use boon::ErrorKind as K;
    let chain = first_chain(top);
    let leaf = *chain.last().expect("a chain has its top");
    let path = dotted(root, &leaf.instance_location.tokens);
    // Errors about an object's members name the member; `root` only names
    // a body that is not an object.
    let object_path = if leaf.instance_location.tokens.is_empty() { "" } else { path.as_str() };
    let at = |url: &str| fragment(url).and_then(|f| doc.pointer(f));
    // The explanation: the description of the deepest subschema on the
    // chain that applies to the leaf's value, not counting the document's
    // own (which describes the whole body).
    let description = chain
        .iter()
        .rev()
        .filter(|e| dotted("", &e.instance_location.tokens) == dotted("", &leaf.instance_location.tokens))
        .filter(|e| fragment(e.schema_url).is_some_and(|f| !f.is_empty()))
        .find_map(|e| at(e.schema_url)?.get("description")?.as_str());
    let allowed = || -> String {
        let props = at(leaf.schema_url).and_then(|s| s.get("properties")).and_then(Value::as_object);
        let names: Vec<&str> = props
            .into_iter()
            .flatten()
            .filter(|(_, s)| s.get("not").is_none() && **s != json!(false))
            .map(|(k, _)| k.as_str())
            .collect();
        if names.is_empty() { "no fields".to_string() } else { names.join(", ") }
    };
    let (field, requirement) = match &leaf.kind {
        K::Required { want } => match description {
            Some(d) => return bad(join_dotted(object_path, want[0]), format!("is required ({d})")),
            None => (join_dotted(object_path, want[0]), "is required".to_string()),
        },
        K::AdditionalProperties { got } => {
            let why = description.map(|d| format!("; {d}")).unwrap_or_default();
            return bad(join_dotted(object_path, &got[0]), format!("is not accepted here; remove it (allowed: {}{why})", allowed()));
        }
        K::PropertyName { prop } => {
            let why = leaf.causes.first().map(|c| c.kind.to_string()).unwrap_or_default();
            (join_dotted(object_path, prop), format!("is not an allowed name: {why}"))
        }
        K::Type { got, want } => {
            let want: Vec<String> = want.iter().map(a_type).collect();
            (path, format!("must be {}, not {}", want.join(" or "), a_type(*got)))
        }
        K::Enum { want } => {
            let want: Vec<String> = want.iter().map(quoted).collect();
            (path, format!("must be one of {}", want.join(", ")))
        }
        K::Const { want } => (path, format!("must be {}", quoted(want))),
        K::Minimum { want, .. } => (path, format!("must be at least {want}")),
        K::Maximum { want, .. } => (path, format!("must be at most {want}")),
        K::ExclusiveMinimum { want, .. } => (path, format!("must be more than {want}")),
        K::ExclusiveMaximum { want, .. } => (path, format!("must be less than {want}")),
        K::MinLength { want, .. } => (path, format!("must be at least {want} characters long")),
        K::MaxLength { want, .. } => (path, format!("must be at most {want} characters long")),
        K::MinItems { want, .. } => (path, format!("must list at least {want} item{}", if *want == 1 { "" } else { "s" })),
        K::MaxItems { want, .. } => (path, format!("must list at most {want} item{}", if *want == 1 { "" } else { "s" })),
        K::MinProperties { want, .. } => (path, format!("must set at least {want} of: {}", allowed())),
        K::UniqueItems { got: [i, j] } => (path, format!("lists the same value at [{i}] and [{j}]")),
        K::Pattern { got, want } if description.is_none() => (path, format!("{got:?} does not match the pattern {want}")),
        K::Pattern { got, .. } => (path, format!("{got:?} is not valid")),
        K::Not | K::FalseSchema => {
            // A refused string is quoted (a name that is a UUID); a refused
            // field is explained by its description.
            let value = body.pointer(&pointer(&leaf.instance_location.tokens)).and_then(Value::as_str);
            let subject = value.map(|v| format!(" {v:?}")).unwrap_or_default();
            match (description, value) {
                (Some(d), Some(_)) => return bad(path, format!("{subject} is not allowed: expected {d}").trim_start().to_string()),
                (Some(d), None) => return bad(path, format!("is not allowed: {d}")),
                (None, _) => (path, format!("{subject} is not allowed").trim_start().to_string()),
            }
        }
        other => (path, other.to_string()),
    };
    match description {
        Some(d) => bad(field, format!("{requirement}: expected {d}")),
        None => bad(field, requirement),
    }
}

/// A 400 about `field` (empty: the whole body) saying `what` about it.
fn bad(field: String, what: String) -> ApiError {
    if field.is_empty() {
        ApiError::bad_request(format!("the request body {what}"))
    } else {
        ApiError::bad_request(format!("{field} {what}")).field(field)
    }
}

// ----------------------------------------------------- response validation

/// Every served document, compiled together so that references between
/// them (`/schemas/server_type#/properties/spec`) resolve; built on first
/// use. For checking what the API answers (tests, clients' contract
/// checks), not on any request path.
struct AllCompiled {
    schemas: boon::Schemas,
    index: Vec<(&'static str, boon::SchemaIndex)>,
}

static ALL: OnceLock<Result<AllCompiled, String>> = OnceLock::new();

fn compile_all() -> Result<AllCompiled, String> {
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    for o in OBJECTS {
        let doc = get(o).ok_or_else(|| format!("no schema named {o}"))?;
        compiler.add_resource(&format!("{BASE}/schemas/{o}"), doc).map_err(|e| format!("{o}: {e:#}"))?;
    }
    let mut schemas = boon::Schemas::new();
    let mut index = Vec::new();
    for o in OBJECTS {
        let i = compiler.compile(&format!("{BASE}/schemas/{o}"), &mut schemas).map_err(|e| format!("{o}: {e:#}"))?;
        index.push((*o, i));
    }
    Ok(AllCompiled { schemas, index })
}

/// Checks `value` against the served schema of `object` (any of
/// [`OBJECTS`]); the error names the failing location and rule.
pub fn validate(object: &str, value: &Value) -> Result<(), String> {
    let all = ALL.get_or_init(compile_all).as_ref().map_err(Clone::clone)?;
    let (_, index) = all.index.iter().find(|(o, _)| *o == object).ok_or_else(|| format!("no schema named {object}"))?;
    all.schemas.validate(value, *index).map_err(|e| format!("does not match /schemas/{object}: {e:#}"))
}

/// The objects `body` (a JSON answer) claims to be, each with the JSON
/// pointer where it is: any object whose `_links.describedby.href` is
/// `/schemas/<object>`, at any depth. What a client can check an answer
/// against without knowing the route.
pub fn described_objects(body: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                if let Some(object) = v.pointer("/_links/describedby/href").and_then(Value::as_str).and_then(|h| h.strip_prefix("/schemas/")) {
                    out.push((object.to_string(), at.to_string()));
                }
                for (k, child) in m {
                    if k != "_links" {
                        walk(child, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(body, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_object_has_a_draft_2020_12_schema() {
        for o in OBJECTS {
            let s = get(o).unwrap_or_else(|| panic!("no schema for {o}"));
            assert_eq!(s["$schema"], DRAFT);
            assert_eq!(s["$id"], format!("/schemas/{o}"));
        }
        assert!(get("nope").is_none());
        let index = index();
        assert_eq!(index.as_array().unwrap().len(), OBJECTS.len());
        for (entry, o) in index.as_array().unwrap().iter().zip(OBJECTS) {
            assert_eq!(entry["type"], *o);
            assert!(!entry["description"].as_str().unwrap().is_empty(), "{o} has no summary");
            assert_eq!(entry["_links"]["rel/schema"]["href"], format!("/schemas/{o}"));
        }
    }

    #[test]
    fn every_schema_compiles_with_the_others() {
        for o in OBJECTS {
            // Any value: only compiling matters here.
            let _ = validate(o, &json!({}));
        }
        assert!(ALL.get().unwrap().is_ok(), "{:?}", ALL.get().unwrap().as_ref().err());
    }

    #[test]
    fn views_validate_against_their_schemas_and_strangers_fail() {
        use crate::auth::Identity;
        let who = Identity { user_id: "0f1e2d3c-4b5a-4978-8a9b-acbdcedf0011".into(), project_id: "p".into(), admin: false };
        let mut s = crate::model::tests::sample_server();
        s.id = "0f1e2d3c-4b5a-4978-8a9b-acbdcedf0012".into();
        let full = serde_json::to_value(crate::model::server_view(&s, &who)).unwrap();
        validate("server", &full).unwrap();
        let summary = serde_json::to_value(crate::model::server_summary_view(&s, &who)).unwrap();
        validate("server", &summary).unwrap();
        let mut extra = full.clone();
        extra["surprise"] = json!(1);
        assert!(validate("server", &extra).is_err(), "additional fields are refused");
        let mut missing = full.clone();
        missing.as_object_mut().unwrap().remove("power_state");
        assert!(validate("server", &missing).is_err(), "required fields are required");
        assert!(validate("server", &json!({})).is_err(), "an empty object is no server");
        validate("error", &crate::error::ApiError::bad_request("x").field("f").to_json()).unwrap();
        assert!(validate("nope", &json!({})).is_err());
    }

    #[test]
    fn task_items_name_only_the_steps_of_the_transition_table() {
        let s = server_task_item();
        let actions = s["properties"]["action"]["enum"].as_array().unwrap();
        for step in ["SCHEDULING", "SPAWNING", "REBUILDING_BLOCK_DEVICES", "DETACHING_NETWORK_INTERFACE"] {
            assert!(actions.contains(&json!(step)), "{step}");
        }
        assert!(!actions.contains(&json!("REBOOT")), "task actions are not item actions");
        assert!(validate("server_task_item", &json!({})).is_err());
    }

    #[test]
    fn described_objects_are_found_at_any_depth() {
        let body = json!({
            "servers": [{ "id": "a", "_links": { "describedby": { "href": "/schemas/server" } } }],
            "_links": { "self": { "href": "/servers" } }
        });
        assert_eq!(described_objects(&body), vec![("server".to_string(), "/servers/0".to_string())]);
        assert!(described_objects(&json!(["a", "b"])).is_empty());
    }

    #[test]
    fn server_type_request_and_response_share_their_field_rules() {
        let (resp, create, patch) = (server_type(), server_type_create(), server_type_patch());
        assert_eq!(create["required"], json!(["name", "spec"]));
        assert_eq!(resp["properties"]["spec"]["properties"]["root_disk_gb"]["default"], crate::model::default_root_disk_gb());
        for field in ["name", "description", "spec"] {
            assert_eq!(resp["properties"][field], create["properties"][field], "{field}");
            assert_eq!(patch["properties"][field], create["properties"][field], "{field}");
        }
        // The server-set fields are in the response only.
        for field in ["id", "_links"] {
            assert!(create["properties"].get(field).is_none() && patch["properties"].get(field).is_none());
        }
    }

    #[test]
    fn launch_schema_lists_the_same_fields_as_the_request_struct() {
        let s = server_launch();
        let entry: Vec<&String> = s["properties"]["servers"]["items"]["properties"].as_object().unwrap().keys().collect();
        let mut body = String::from(r#"{"servers":[{"#);
        let values: Vec<String> = entry.iter().map(|k| format!(r#""{k}":null"#)).collect();
        body.push_str(&values.join(","));
        body.push_str("}]}");
        // serde accepts exactly these names (null = absent for options).
        let parsed: Result<crate::validate::LaunchRequest, _> = crate::validate::parse_body(body.as_bytes());
        assert!(parsed.is_ok(), "{body}");
        assert!(s["properties"]["defaults"]["properties"].get("hostname").is_none());
    }

    #[test]
    fn server_patch_schema_lists_the_fields_the_request_struct_accepts() {
        let s = server_patch();
        let names: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        assert_eq!(names, ["hostname", "project_id"]);
        let body = br#"{"hostname":"web-2","project_id":"0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"}"#;
        assert!(crate::validate::server_patch(body).is_ok());
    }

    #[test]
    fn diagnostics_schema_names_every_field_of_the_view() {
        use crate::hypervisor::{Diagnostics, DiskCounters, InterfaceCounters};
        let d = Diagnostics {
            cpu_time_ns: 1, memory_used_mb: 1, memory_total_mb: 1, uptime_seconds: 1,
            disks: vec![DiskCounters { device: "vda".into(), read_bytes: 1, write_bytes: 1, read_requests: 1, write_requests: 1 }],
            interfaces: vec![InterfaceCounters { name: "eth0".into(), rx_bytes: 1, tx_bytes: 1, rx_packets: 1, tx_packets: 1 }],
        };
        let view = crate::model::diagnostics_view("s", &d);
        let s = diagnostics();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&view), keys(&s["properties"]));
        assert_eq!(keys(&view["disks"][0]), keys(&s["properties"]["disks"]["items"]["properties"]));
        assert_eq!(keys(&view["interfaces"][0]), keys(&s["properties"]["interfaces"]["items"]["properties"]));
        let console = crate::model::console_view("s", ConsoleType::Rdp, "u");
        assert_eq!(keys(&console), keys(&server_console()["properties"]));
    }

    #[test]
    fn task_schema_serves_the_transition_table_and_enums() {
        let s = server_task();
        assert_eq!(s["x-transitions"].as_array().unwrap().len(), TaskAction::ALL.len());
        assert_eq!(s["properties"]["action"]["enum"].as_array().unwrap().len(), 28);
    }

    #[test]
    fn placement_schema_lists_exactly_the_view_fields() {
        let s = placement();
        let p = crate::hypervisor::Placement {
            id: "7d3b3a10-0000-4000-8000-000000000001".into(),
            name: "region".into(),
            description: String::new(),
            parent_ids: vec![],
            properties: vec![],
            tags: vec![],
        };
        let view = crate::model::placement_view(&p);
        let mut fields: Vec<&String> = view.as_object().unwrap().keys().collect();
        let mut props: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        let mut required: Vec<&str> = s["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        fields.sort();
        props.sort();
        required.sort();
        assert_eq!(fields, props);
        assert_eq!(fields.iter().map(|f| f.as_str()).collect::<Vec<_>>(), required);
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    const METASCHEMA: &str = "https://json-schema.org/draft/2020-12/schema";

    /// Every served document, compiled together (the response schemas refer
    /// to each other, e.g. server.spec to server_type).
    fn compiler_with_all() -> boon::Compiler {
        let mut c = boon::Compiler::new();
        for o in OBJECTS {
            c.add_resource(&format!("{BASE}/schemas/{o}"), get(o).unwrap()).unwrap();
        }
        c
    }

    #[test]
    fn every_served_schema_is_valid_draft_2020_12() {
        let mut c = compiler_with_all();
        let mut schemas = boon::Schemas::new();
        let meta = c.compile(METASCHEMA, &mut schemas).expect("the draft 2020-12 metaschema ships with boon");
        for o in OBJECTS {
            let doc = get(o).unwrap();
            if let Err(e) = schemas.validate(&doc, meta) {
                panic!("{o} is not a valid draft 2020-12 schema: {e:#}");
            }
            // Compiling also checks what the metaschema cannot: regexes,
            // $ref targets.
            if let Err(e) = c.compile(&format!("{BASE}/schemas/{o}"), &mut schemas) {
                panic!("{o} does not compile: {e:#}");
            }
        }
        // The check is not vacuous: a broken schema is refused.
        let broken = json!({ "$schema": DRAFT, "type": "objekt", "minLength": -1 });
        assert!(schemas.validate(&broken, meta).is_err());
    }

    #[test]
    fn request_objects_are_served_and_compile() {
        for o in REQUEST_OBJECTS {
            assert!(OBJECTS.contains(o), "{o} must be listed in OBJECTS (GET /schemas)");
            compile(o).unwrap_or_else(|e| panic!("{o}: {e}"));
        }
    }

    /// Every object a request schema allows is closed (unknown fields are
    /// refused by the schema, not only by serde) and no request schema
    /// carries a server-set (readOnly) field.
    #[test]
    fn request_schemas_close_every_object_and_have_no_read_only_fields() {
        fn walk(object: &str, at: &str, v: &Value) {
            let Some(map) = v.as_object() else { return };
            assert!(map.get("readOnly").is_none(), "{object}{at} is readOnly");
            if map.contains_key("properties") && !at.ends_with("/if") {
                let closed = map.get("additionalProperties") == Some(&json!(false));
                assert!(closed, "{object}{at} has properties but does not refuse others");
            }
            for (k, child) in map {
                match child {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            walk(object, &format!("{at}/{k}/{i}"), item);
                        }
                    }
                    // `properties` and `$defs` hold named subschemas.
                    Value::Object(inner) if k == "properties" || k == "$defs" => {
                        for (name, sub) in inner {
                            walk(object, &format!("{at}/{k}/{name}"), sub);
                        }
                    }
                    other => walk(object, &format!("{at}/{k}"), other),
                }
            }
        }
        for o in REQUEST_OBJECTS {
            walk(o, "", &get(o).unwrap());
        }
    }

    #[test]
    fn task_request_arguments_follow_the_transition_table() {
        let s = server_task_create();
        let actions = s["properties"]["action"]["enum"].as_array().unwrap();
        assert_eq!(actions.len(), TaskAction::ALL.len() - 1, "every action but CREATE");
        assert!(!actions.contains(&json!("CREATE")));
        assert_eq!(s["allOf"].as_array().unwrap().len(), actions.len());
        // Every argument any action takes is a typed property of the body.
        for t in crate::transitions::TABLE {
            for a in t.required_args.iter().chain(t.optional_args) {
                assert!(s["properties"].get(*a).is_some(), "{a}");
            }
        }
    }

    #[test]
    fn first_violation_names_the_deepest_field() {
        let e = check("server_launch", &json!({ "servers": [{ "affinity": { "near": { "server_ids": [5] } } }] }), "").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("servers[0].affinity.near.server_ids[0]"));
        assert!(e.message.contains("must be a string, not a number"), "{}", e.message);
        let e = check("tag_list", &json!(["ok", 7]), "tags").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
        let e = check("server_patch", &json!({}), "").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, None));
        assert!(e.message.contains("hostname, project_id"), "{}", e.message);
    }

    /// Path and query tags are checked in plain Rust (see
    /// [`crate::validate::tag`]); they must agree with the served schema.
    #[test]
    fn the_rust_tag_rule_is_the_tag_schema() {
        let c = compile("tag").unwrap();
        let long = "é".repeat(MAX_TAG_LEN);
        let too_long = "é".repeat(MAX_TAG_LEN + 1);
        for t in ["a", "prod-1", "é ü", &long, &too_long, "", "a/b", "a,b", "a\n", "\u{7}", "\u{85}x", "x\u{9f}", "\u{a0}"] {
            let by_schema = c.schemas.validate(&json!(t), c.index).is_ok();
            let by_rust = crate::validate::tag("tag", t).is_ok();
            assert_eq!(by_schema, by_rust, "{t:?}");
        }
    }
}
