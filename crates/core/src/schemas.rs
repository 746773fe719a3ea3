//! JSON Schema (draft 2020-12) documents of every payload, served at
//! `/schemas/{object}`.
//!
//! Requests are validated by serde plus the checks of [`crate::validate`];
//! these documents state the same rules for clients (the tests below pin
//! the shared constants and enums). Fields the server sets are `readOnly`,
//! so one schema describes both what is sent and what is returned.

use crate::model::{ItemState, TaskAction, TaskState, VirtState, Visibility};
use crate::validate::{MAX_LAUNCH, MAX_NAME_LEN, MAX_TAG_LEN, MAX_TAGS, MAX_USER_DATA};
use serde_json::{Value, json};

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every object with a schema, in listing order.
pub const OBJECTS: &[&str] = &[
    "placement", "server_type", "server_task", "server_task_item", "server", "server_launch", "tag", "property",
];

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

fn tag() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": MAX_TAG_LEN, "pattern": "^[^/,]+$" })
}

fn tags() -> Value {
    json!({ "type": "array", "items": tag(), "maxItems": MAX_TAGS, "uniqueItems": true })
}

fn property() -> Value {
    json!({
        "type": "object",
        "propertyNames": { "minLength": 1, "maxLength": 50 },
        "additionalProperties": { "type": "string" }
    })
}

fn hostname() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$" })
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
        "description": "A flavor: the resources a server gets. POST sends name and spec (other fields optional); id and _links are set by the API. shares is shown to the owner and admins only.",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "spec"],
        "properties": {
            "id": ro(uuid()),
            "name": { "type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN, "not": { "format": "uuid" }, "pattern": "^[^/]+$" },
            "description": { "type": "string", "maxLength": 1024, "default": "" },
            "visibility": { "enum": Visibility::names(), "default": "PRIVATE" },
            "shares": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "users": { "type": "array", "items": uuid(), "uniqueItems": true },
                    "projects": { "type": "array", "items": uuid(), "uniqueItems": true }
                }
            },
            "spec": {
                "type": "object", "additionalProperties": false,
                "required": ["memory_mb", "cpu_units"],
                "properties": {
                    "memory_mb": { "type": "integer", "minimum": 0 },
                    "root_disk_gb": { "type": "integer", "minimum": 0, "default": 10 },
                    "cpu_units": { "type": "integer", "minimum": 1 },
                    "rxtx_factor": { "type": "number", "minimum": 0.1 },
                    "swap_mb": { "type": "integer", "minimum": 0 }
                }
            },
            "tags": tags(),
            "_links": links()
        }
    }))
}

fn launch_fields(with_hostname: bool) -> Value {
    let mut props = json!({
        "type_id": uuid(),
        "template_id": uuid(),
        "keypair_id": uuid(),
        "placement_id": uuid(),
        "user_data": { "type": "string", "contentEncoding": "base64", "maxLength": MAX_USER_DATA },
        "hostname_pattern": { "type": "string", "description": "%(rand_num)Nd becomes N random digits (no N: 6)." },
        "affinity": { "$ref": "#/$defs/affinity" }
    });
    if with_hostname {
        props["hostname"] = hostname();
    }
    json!({ "type": "object", "additionalProperties": false, "properties": props })
}

fn server_launch() -> Value {
    let target = json!({
        "type": "object", "additionalProperties": false,
        "properties": { "server_ids": { "type": "array", "items": uuid() }, "server_tags": { "type": "array", "items": tag() } }
    });
    doc("server_launch", "Server launch request", json!({
        "description": "Body of POST /projects/{project}/servers. Each server needs type_id and a hostname or hostname_pattern, from itself or from defaults. The whole request is validated before any server is created.",
        "type": "object",
        "additionalProperties": false,
        "required": ["servers"],
        "properties": {
            "defaults": launch_fields(false),
            "servers": { "type": "array", "minItems": 1, "maxItems": MAX_LAUNCH, "items": launch_fields(true) }
        },
        "$defs": {
            "affinity": {
                "type": "object", "additionalProperties": false,
                "properties": { "near": target, "not_near": target }
            }
        }
    }))
}

fn server() -> Value {
    let interface = json!({
        "type": "object",
        "properties": { "name": { "type": "string" }, "ip4": nullable(json!({"type": "string"})), "ip6": nullable(json!({"type": "string"})), "mac": { "type": "string" } }
    });
    doc("server", "Server", json!({
        "description": "A server. Created by launching (see server_launch); read-only except hostname and project_id (PATCH).",
        "type": "object",
        "properties": {
            "id": ro(uuid()),
            "hostname": hostname(),
            "project_id": uuid(),
            "launched_by": ro(uuid()),
            "launched_at": ro(time()),
            "launch_keypair_id": ro(nullable(uuid())),
            "template_id": ro(nullable(uuid())),
            "type_id": ro(uuid()),
            "placement_id": ro(nullable(uuid())),
            "power_state": ro(json!({ "enum": ["RUNNING", "PAUSED", "SHUTDOWN", "CRASHED", "SUSPENDED", null], "description": "null until the hypervisor first reports the server (while BUILDING)." })),
            "virt_state": ro(json!({ "enum": VirtState::names() })),
            "spec": ro(json!({ "$ref": "/schemas/server_type#/properties/spec" })),
            "block_devices": ro(json!({ "type": "array", "items": { "type": "object", "properties": { "device": { "type": "string" }, "type": { "enum": ["EPHEMERAL", "PERSISTENT"] } } } })),
            "networking": ro(json!({
                "type": "object",
                "properties": {
                    "access": { "type": "object", "properties": { "ip4": { "type": "array", "items": { "type": "string" } }, "ip6": { "type": "array", "items": { "type": "string" } } } },
                    "interfaces": { "type": "array", "items": interface }
                }
            })),
            "properties": property(),
            "tags": tags(),
            "locked": ro(json!({ "type": "boolean" })),
            "_elevated": ro(json!({ "type": "object", "description": "Admins only: compute_node_hostname and elevated properties; {} for others." })),
            "_links": links()
        }
    }))
}

fn server_task() -> Value {
    doc("server_task", "Server task", json!({
        "description": "An asynchronous action on a server. POST /servers/{id}/tasks sends action and its arguments; x-transitions lists, per action, the virt_states it may start from (otherwise 409), its items and arguments.",
        "type": "object",
        "additionalProperties": false,
        "required": ["action"],
        "properties": {
            "id": ro(uuid()),
            "server_id": ro(uuid()),
            "action": { "enum": TaskAction::names() },
            "state": ro(json!({ "enum": TaskState::names() })),
            "created_at": ro(time()),
            "created_by": ro(uuid()),
            "updated_at": ro(time()),
            "error": ro(nullable(json!({ "type": "string" }))),
            "type_id": uuid(),
            "template_id": uuid(),
            "name": { "type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN },
            "placement_id": uuid(),
            "live": { "type": "boolean" },
            "volume_id": uuid(),
            "device": { "type": "string", "pattern": "^/dev/" },
            "network_id": uuid(),
            "mac": { "type": "string", "pattern": "^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$" },
            "password": { "type": "string", "minLength": 1, "writeOnly": true },
            "_links": links()
        },
        "x-transitions": crate::transitions::table_json()
    }))
}

fn server_task_item() -> Value {
    doc("server_task_item", "Server task item", json!({
        "description": "One step of a task (read-only).",
        "type": "object",
        "readOnly": true,
        "properties": {
            "id": uuid(),
            "task_id": uuid(),
            "action": { "type": "string" },
            "state": { "enum": ItemState::names() },
            "created_at": time(),
            "started_at": nullable(time()),
            "ended_at": nullable(time()),
            "_links": links()
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
        "server_launch" => server_launch(),
        "server" => server(),
        "server_task" => server_task(),
        "server_task_item" => server_task_item(),
        "placement" => placement(),
        "tag" => doc("tag", "Tag", tag()),
        "property" => doc("property", "Properties", property()),
        _ => return None,
    })
}

/// `GET /schemas`: the list, each with its link.
pub fn index() -> Value {
    let items: Vec<Value> = OBJECTS
        .iter()
        .map(|o| json!({ "name": o, "_links": { "self": { "href": format!("/schemas/{o}") } } }))
        .collect();
    json!({ "schemas": items, "_links": { "self": { "href": "/schemas" } } })
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
        assert_eq!(index()["schemas"].as_array().unwrap().len(), OBJECTS.len());
    }

    #[test]
    fn server_type_schema_matches_the_request_struct() {
        let s = server_type();
        assert_eq!(s["required"], json!(["name", "spec"]));
        assert_eq!(s["properties"]["spec"]["required"], json!(["memory_mb", "cpu_units"]));
        assert_eq!(s["properties"]["spec"]["properties"]["root_disk_gb"]["default"], crate::model::default_root_disk_gb());
        // Every writable property is a field of the request struct.
        let body = br#"{"name":"n","description":"","visibility":"PUBLIC","shares":{"users":[],"projects":[]},
                        "spec":{"memory_mb":1,"root_disk_gb":1,"cpu_units":1,"rxtx_factor":1.0,"swap_mb":1},"tags":[]}"#;
        assert!(crate::validate::server_type_create(body).is_ok());
        let writable: Vec<&String> = s["properties"].as_object().unwrap().iter()
            .filter(|(_, v)| v.get("readOnly").is_none()).map(|(k, _)| k).collect();
        assert_eq!(writable.len(), 6);
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
