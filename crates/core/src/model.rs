//! The API's resources: stored records and their JSON views.
//!
//! A *record* is what the key-value store holds (see [`crate::keys`]); it may
//! carry internal fields the API never shows (owner ids, the compute node,
//! the last applied event `seq`). A *view* is the JSON a client receives,
//! rendered by a function of this module from a record and the caller's
//! [`Identity`]: adding an internal field never leaks it by accident.
//!
//! Enums serialize as the API spells them (`SCREAMING_SNAKE_CASE`) and each
//! has `as_str`/`parse` for headers and query filters.

use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::events::{BlockDeviceInfo, InterfaceInfo};
use crate::hypervisor::{ConsoleType, Diagnostics, Placement, PowerState, ServerSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Declares an API enum with its wire names, `ALL`, `as_str` and `parse`.
macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The variant spelled exactly `s` (upper case, as on the wire).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }

            /// Every wire name, for schemas and error messages.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }
    };
}

api_enum!(
    /// Who may see a server type besides its owner and admins.
    Visibility { Public = "PUBLIC", Private = "PRIVATE" }
);

// Written out because the enum comes from `api_enum!`, which cannot mark
// a `#[default]` variant.
#[allow(clippy::derivable_impls)]
impl Default for Visibility {
    fn default() -> Self {
        Visibility::Private
    }
}

api_enum!(
    /// The server's lifecycle state as the API sees it (Nova's vm_state).
    VirtState {
        Active = "ACTIVE", Building = "BUILDING", Paused = "PAUSED", Suspended = "SUSPENDED",
        Stopped = "STOPPED", Rescued = "RESCUED", Resized = "RESIZED", Terminated = "TERMINATED",
        Shelved = "SHELVED", ShelvedOffloaded = "SHELVED_OFFLOADED", Error = "ERROR",
    }
);

api_enum!(
    /// State of a server task.
    TaskState { Running = "RUNNING", Completed = "COMPLETED", Aborted = "ABORTED", TimedOut = "TIMED_OUT" }
);

api_enum!(
    /// State of one item (step) of a task.
    ItemState {
        Waiting = "WAITING", Running = "RUNNING", Completed = "COMPLETED", Aborted = "ABORTED",
        TimedOut = "TIMED_OUT",
    }
);

api_enum!(
    /// Every action a server task can carry (see [`crate::transitions`]).
    TaskAction {
        Create = "CREATE", Snapshot = "SNAPSHOT", Backup = "BACKUP",
        UpdatePassword = "UPDATE_PASSWORD", Resize = "RESIZE", Reboot = "REBOOT",
        HardReboot = "HARD_REBOOT", Pause = "PAUSE", Unpause = "UNPAUSE", Suspend = "SUSPEND",
        Resume = "RESUME", PowerOff = "POWER_OFF", PowerOn = "POWER_ON", Rescue = "RESCUE",
        Unrescue = "UNRESCUE", Rebuild = "REBUILD", Move = "MOVE", Terminate = "TERMINATE",
        Restore = "RESTORE", Shelve = "SHELVE", ShelveOffload = "SHELVE_OFFLOAD",
        Unshelve = "UNSHELVE", AttachBlockDevice = "ATTACH_BLOCK_DEVICE",
        DetachBlockDevice = "DETACH_BLOCK_DEVICE",
        AttachNetworkInterface = "ATTACH_NETWORK_INTERFACE",
        DetachNetworkInterface = "DETACH_NETWORK_INTERFACE", Lock = "LOCK", Unlock = "UNLOCK",
    }
);

/// The API spelling of a hypervisor power state (same values, upper case).
pub fn power_state_str(p: PowerState) -> &'static str {
    match p {
        PowerState::Running => "RUNNING",
        PowerState::Paused => "PAUSED",
        PowerState::Shutdown => "SHUTDOWN",
        PowerState::Crashed => "CRASHED",
        PowerState::Suspended => "SUSPENDED",
    }
}

pub fn parse_power_state(s: &str) -> Option<PowerState> {
    [PowerState::Running, PowerState::Paused, PowerState::Shutdown, PowerState::Crashed, PowerState::Suspended]
        .into_iter()
        .find(|p| power_state_str(*p) == s)
}

/// A JSON link object, `{"href": ...}`.
pub fn link(href: impl Into<String>) -> Value {
    json!({ "href": href.into() })
}

fn schema_link(object: &str) -> Value {
    link(format!("/schemas/{object}"))
}

// ---------------------------------------------------------------- server types

/// Users and projects a PRIVATE server type is shared with. Sets: order is
/// not kept and duplicates collapse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shares {
    #[serde(default)]
    pub users: BTreeSet<String>,
    #[serde(default)]
    pub projects: BTreeSet<String>,
}

/// The resources of a server type (and, copied at launch, of a server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeSpec {
    pub memory_mb: u64,
    #[serde(default = "default_root_disk_gb")]
    pub root_disk_gb: u64,
    pub cpu_units: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rxtx_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_mb: Option<u64>,
}

pub fn default_root_disk_gb() -> u64 {
    10
}

impl TypeSpec {
    /// What the hypervisor is asked to create (swap defaults to none).
    pub fn server_spec(&self) -> ServerSpec {
        ServerSpec {
            memory_mb: self.memory_mb,
            root_disk_gb: self.root_disk_gb,
            cpu_units: self.cpu_units,
            swap_mb: self.swap_mb.unwrap_or(0),
        }
    }
}

/// Stored at [`crate::keys::server_type`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerTypeRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub visibility: Visibility,
    pub shares: Shares,
    pub spec: TypeSpec,
    pub tags: BTreeSet<String>,
    pub created_at: String,
    // Internal: never rendered.
    pub owner_project_id: String,
    pub owner_user_id: String,
}

impl ServerTypeRecord {
    /// Owner (its creator's project) or admin: may change and see everything.
    pub fn owned_by(&self, who: &Identity) -> bool {
        who.admin || who.project_id == self.owner_project_id
    }

    /// Visibility rule: PUBLIC, own, or shared with the user (checked first)
    /// or with the caller's project.
    pub fn visible_to(&self, who: &Identity) -> bool {
        self.owned_by(who)
            || self.visibility == Visibility::Public
            || self.shares.users.contains(&who.user_id)
            || self.shares.projects.contains(&who.project_id)
    }
}

/// The server type as a client sees it. `shares` names other users and
/// projects, so only the owner and admins see its lists; everyone else gets
/// the field with both lists empty (the proposal always has the field).
pub fn server_type_view(t: &ServerTypeRecord, who: &Identity) -> Value {
    let base = format!("/server_types/{}", t.id);
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "visibility": t.visibility,
        "spec": t.spec,
        "tags": t.tags,
        "shares": if t.owned_by(who) { json!(t.shares) } else { json!(Shares::default()) },
        "_links": {
            "self": link(&base),
            "tags": link(format!("{base}/tags")),
            "shares": link(format!("{base}/shares")),
            "describedby": schema_link("server_type"),
        },
    })
}

// --------------------------------------------------------------------- servers

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub ip4: Vec<String>,
    pub ip6: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Networking {
    pub access: Access,
    pub interfaces: Vec<InterfaceInfo>,
}

impl Networking {
    /// Networking after the hypervisor reported `interfaces`: the access
    /// addresses are every address of every interface, in interface order.
    pub fn from_interfaces(interfaces: Vec<InterfaceInfo>) -> Self {
        let ip4 = interfaces.iter().filter_map(|i| i.ip4.clone()).collect();
        let ip6 = interfaces.iter().filter_map(|i| i.ip6.clone()).collect();
        Networking { access: Access { ip4, ip6 }, interfaces }
    }
}

/// Scheduling hints of a launch (replaces v2 scheduler hints). Stored with
/// the server so a later MOVE can honour them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affinity {
    #[serde(default)]
    pub near: AffinityTarget,
    #[serde(default)]
    pub not_near: AffinityTarget,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffinityTarget {
    #[serde(default)]
    pub server_ids: Vec<String>,
    #[serde(default)]
    pub server_tags: Vec<String>,
}

/// Stored at [`crate::keys::server`].
///
/// `power_state` is `None` until the hypervisor first reports the server
/// (Nova's NOSTATE while BUILDING); the API shows it as `SHUTDOWN` then
/// ([`ServerRecord::shown_power_state`]), a value of the proposal's enum.
/// `placement_id` is the placement asked for (at launch or by a MOVE), the
/// scope of later MOVEs; `node_placement_id` the placement of the node the
/// server was scheduled to, shown when none was asked for
/// ([`ServerRecord::shown_placement_id`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub id: String,
    pub hostname: String,
    pub project_id: String,
    pub launched_by: String,
    pub launched_at: String,
    pub launch_keypair_id: Option<String>,
    pub template_id: Option<String>,
    pub type_id: String,
    pub placement_id: Option<String>,
    pub power_state: Option<PowerState>,
    pub virt_state: VirtState,
    pub spec: TypeSpec,
    pub block_devices: Vec<BlockDeviceInfo>,
    pub networking: Networking,
    pub properties: BTreeMap<String, String>,
    pub tags: BTreeSet<String>,
    pub locked: bool,
    pub updated_at: String,
    // Internal below: rendered only in `_elevated` (admins) or never.
    pub locked_by: Option<String>,
    pub compute_node_id: Option<String>,
    pub compute_node_hostname: Option<String>,
    pub elevated_properties: BTreeMap<String, String>,
    /// The task that is RUNNING on this server, if any: a second task is 409.
    pub current_task_id: Option<String>,
    pub user_data: Option<String>,
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_placement_id: Option<String>,
    /// When the adapter reclaimed the terminated server (its disk and
    /// domain deleted): it stays readable as TERMINATED, RESTORE is 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaimed_at: Option<String>,
}

impl ServerRecord {
    /// The power state the API shows (headers, views, list filters).
    pub fn shown_power_state(&self) -> PowerState {
        self.power_state.unwrap_or(PowerState::Shutdown)
    }

    /// The placement the API shows: the one asked for, else where the
    /// scheduler put the server; `None` only for a server launched without
    /// a placement that no node could take.
    pub fn shown_placement_id(&self) -> Option<&str> {
        self.placement_id.as_deref().or(self.node_placement_id.as_deref())
    }

    /// A locked server takes changes (PATCH, tags) from admins only: 409
    /// for everyone else, naming `what` was refused.
    pub fn check_unlocked(&self, who: &Identity, what: &str) -> ApiResult<()> {
        if self.locked && !who.admin {
            return Err(ApiError::conflict(format!(
                "the server is locked, so only an admin may {what}; UNLOCK it first (POST /servers/{}/tasks)",
                self.id
            )));
        }
        Ok(())
    }

    /// A server in ERROR that is on no compute node (its CREATE failed, so
    /// no hypervisor holds it) can only be terminated: any other action of
    /// the hypervisor would be accepted and then abort. 409 for those
    /// (LOCK and UNLOCK never reach the hypervisor and stay allowed).
    pub fn check_task_needs_node(&self, action: TaskAction) -> ApiResult<()> {
        use TaskAction as A;
        if let Some(at) = self.reclaimed_at.as_deref().filter(|_| action == A::Restore) {
            return Err(ApiError::conflict(format!(
                "RESTORE is not possible: server {} was reclaimed at {at} (its disk is deleted); launch a new server",
                self.id
            )));
        }
        if self.virt_state != VirtState::Error
            || self.compute_node_id.is_some()
            || matches!(action, A::Terminate | A::Lock | A::Unlock)
        {
            return Ok(());
        }
        Err(ApiError::conflict(format!(
            "{} is not possible: server {} is in ERROR on no compute node (its launch failed), so no \
             hypervisor holds it; TERMINATE it and launch it again",
            action.as_str(),
            self.id
        )))
    }

    /// Console and diagnostics need a server that lives on a compute node:
    /// 409 while it has none yet (BUILDING before scheduling, a failed
    /// launch), once it is offloaded (SHELVED_OFFLOADED), and once it is
    /// TERMINATED; `what` names the refused read.
    pub fn check_on_node(&self, what: &str) -> ApiResult<()> {
        let why = match self.virt_state {
            VirtState::Terminated => Some("it is TERMINATED (RESTORE it first)"),
            VirtState::ShelvedOffloaded => Some("it is SHELVED_OFFLOADED (UNSHELVE it first)"),
            _ if self.compute_node_id.is_none() => Some("it is not on a compute node yet; wait until its CREATE task has placed it"),
            _ => None,
        };
        match why {
            Some(why) => Err(ApiError::conflict(format!("server {} has no {what}: {why}", self.id))),
            None => Ok(()),
        }
    }
}

/// The full server as a client sees it; `_elevated` is filled for admins only.
pub fn server_view<'a>(s: &'a ServerRecord, who: &Identity) -> ServerView<'a> {
    ServerView { server: s, admin: who.admin, full: true }
}

/// A server as list routes show it: the full view without the bulky
/// `networking` and `block_devices` (GET the server for those).
pub fn server_summary_view<'a>(s: &'a ServerRecord, who: &Identity) -> ServerView<'a> {
    ServerView { server: s, admin: who.admin, full: false }
}

/// The JSON of a server, serialized straight from the record: `GET
/// /servers/{id}` is the hottest route, and building a `Value` first cost
/// a copy of every field (measured with scripts/bench.sh). Keys are in
/// alphabetical order, as a `Value` object would have them.
pub struct ServerView<'a> {
    server: &'a ServerRecord,
    admin: bool,
    /// With `block_devices` and `networking` (single server, not lists).
    full: bool,
}

#[derive(Serialize)]
struct Href<'a> {
    href: &'a str,
}

impl Serialize for ServerView<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let s = self.server;
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("_elevated", &Elevated { server: s, admin: self.admin })?;
        m.serialize_entry("_links", &ServerLinks { id: &s.id })?;
        if self.full {
            m.serialize_entry("block_devices", &s.block_devices)?;
        }
        m.serialize_entry("hostname", &s.hostname)?;
        m.serialize_entry("id", &s.id)?;
        m.serialize_entry("launch_keypair_id", &s.launch_keypair_id)?;
        m.serialize_entry("launched_at", &s.launched_at)?;
        m.serialize_entry("launched_by", &s.launched_by)?;
        m.serialize_entry("locked", &s.locked)?;
        if self.full {
            m.serialize_entry("networking", &s.networking)?;
        }
        m.serialize_entry("placement_id", &s.shown_placement_id())?;
        m.serialize_entry("power_state", &s.shown_power_state())?;
        m.serialize_entry("project_id", &s.project_id)?;
        m.serialize_entry("properties", &s.properties)?;
        m.serialize_entry("spec", &s.spec)?;
        m.serialize_entry("tags", &s.tags)?;
        m.serialize_entry("template_id", &s.template_id)?;
        m.serialize_entry("type_id", &s.type_id)?;
        m.serialize_entry("virt_state", &s.virt_state)?;
        m.end()
    }
}

/// `_elevated`: what only admins see; an empty object for everyone else.
struct Elevated<'a> {
    server: &'a ServerRecord,
    admin: bool,
}

impl Serialize for Elevated<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(None)?;
        if self.admin {
            m.serialize_entry("compute_node_hostname", &self.server.compute_node_hostname)?;
            m.serialize_entry("properties", &self.server.elevated_properties)?;
            m.serialize_entry("reclaimed_at", &self.server.reclaimed_at)?;
        }
        m.end()
    }
}

struct ServerLinks<'a> {
    id: &'a str,
}

impl Serialize for ServerLinks<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(3))?;
        m.serialize_entry("describedby", &Href { href: "/schemas/server" })?;
        m.serialize_entry("rel/server_tasks", &Href { href: &format!("/servers/{}/tasks", self.id) })?;
        m.serialize_entry("self", &Href { href: &format!("/servers/{}", self.id) })?;
        m.end()
    }
}

fn server_links(id: &str) -> Value {
    serde_json::to_value(ServerLinks { id }).expect("links serialize")
}

/// One entry of the launch response.
pub fn launch_result_view(s: &ServerRecord) -> Value {
    json!({
        "id": s.id,
        "hostname": s.hostname,
        "launched_at": s.launched_at,
        "_links": server_links(&s.id),
    })
}

/// `GET /servers/{id}/diagnostics`: the hypervisor's counters, in the
/// API's names (no driver detail), with the server's links.
pub fn diagnostics_view(server_id: &str, d: &Diagnostics) -> Value {
    json!({
        "server_id": server_id,
        "cpu_time_ns": d.cpu_time_ns,
        "memory_used_mb": d.memory_used_mb,
        "memory_total_mb": d.memory_total_mb,
        "uptime_seconds": d.uptime_seconds,
        "disks": d.disks,
        "interfaces": d.interfaces,
        "_links": {
            "self": link(format!("/servers/{server_id}/diagnostics")),
            "describedby": schema_link("diagnostics"),
            "rel/server": link(format!("/servers/{server_id}")),
        },
    })
}

/// `GET /servers/{id}/consoles/{type}`: where to connect, once.
pub fn console_view(server_id: &str, kind: ConsoleType, uri: &str) -> Value {
    json!({
        "type": kind.as_str(),
        "uri": uri,
        "_links": {
            // Reading it again gives a new token (the old one stays valid until used or expired).
            "self": link(format!("/servers/{server_id}/consoles/{}", kind.as_str())),
            "describedby": schema_link("server_console"),
            "rel/server": link(format!("/servers/{server_id}")),
        },
    })
}

// ----------------------------------------------------------------------- tasks

/// Arguments of a task action, sent beside `action` (see
/// [`crate::transitions::Transition::args`]). A password is never stored:
/// it goes to the hypervisor and is forgotten.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// One step of a task; stored inside its [`TaskRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskItem {
    pub id: String,
    /// Item action name, e.g. `SCHEDULING` (see [`crate::transitions`]).
    pub action: String,
    pub state: ItemState,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

/// Stored at [`crate::keys::task`], items embedded so that one CAS applies
/// an event to both the item and the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub server_id: String,
    pub action: TaskAction,
    pub state: TaskState,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub error: Option<String>,
    pub args: TaskArgs,
    pub items: Vec<TaskItem>,
    // Internal.
    /// The server's project, so task routes can check membership without
    /// reading the server first.
    pub project_id: String,
    /// The `seq` of the last event applied; events at or below it are replays.
    pub last_seq: u32,
    /// The server's virt_state when the task started (restored when an
    /// action that keeps the state on failure aborts).
    pub from_virt_state: VirtState,
    /// The hypervisor operation, written with the task so a submission cut
    /// off by a crash (task stored, operation never handed over) can be
    /// made again; the adapter ignores a task id it already accepted.
    /// `None` when it would hold a secret (UPDATE_PASSWORD) or the task
    /// never reaches the hypervisor. See `vnext_guest::tasks::reconcile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<crate::hypervisor::Operation>,
    /// RESIZE: the new type's spec, copied when the task started, which the
    /// server takes (with `args.type_id`) when the task completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_to: Option<TypeSpec>,
}

impl TaskRecord {
    /// A new RUNNING task with one WAITING item per step name.
    #[allow(clippy::too_many_arguments)] // every argument is a distinct field source
    pub fn new(
        id: String,
        server: &ServerRecord,
        action: TaskAction,
        args: TaskArgs,
        created_by: &str,
        steps: &[&str],
        now: &str,
        new_id: &mut dyn FnMut() -> String,
    ) -> Self {
        let items = steps
            .iter()
            .map(|step| TaskItem {
                id: new_id(),
                action: step.to_string(),
                state: ItemState::Waiting,
                created_at: now.to_string(),
                started_at: None,
                ended_at: None,
            })
            .collect();
        TaskRecord {
            id,
            server_id: server.id.clone(),
            action,
            state: TaskState::Running,
            created_at: now.to_string(),
            created_by: created_by.to_string(),
            updated_at: now.to_string(),
            error: None,
            args,
            items,
            project_id: server.project_id.clone(),
            last_seq: 0,
            from_virt_state: server.virt_state,
            operation: None,
            resize_to: None,
        }
    }
}

/// The task as a client sees it: arguments beside `action`.
pub fn task_view(t: &TaskRecord) -> Value {
    let mut v = Map::new();
    v.insert("id".into(), json!(t.id));
    v.insert("server_id".into(), json!(t.server_id));
    v.insert("action".into(), json!(t.action));
    if let Value::Object(args) = json!(t.args) {
        v.extend(args);
    }
    v.insert("state".into(), json!(t.state));
    v.insert("created_at".into(), json!(t.created_at));
    v.insert("created_by".into(), json!(t.created_by));
    v.insert("updated_at".into(), json!(t.updated_at));
    v.insert("error".into(), json!(t.error));
    v.insert(
        "_links".into(),
        json!({
            "self": link(format!("/server_tasks/{}", t.id)),
            "describedby": schema_link("server_task"),
            "rel/server_task_items": link(format!("/server_tasks/{}/items", t.id)),
            "rel/server": link(format!("/servers/{}", t.server_id)),
        }),
    );
    Value::Object(v)
}

pub fn task_item_view(t: &TaskRecord, item: &TaskItem) -> Value {
    json!({
        "id": item.id,
        "task_id": t.id,
        "action": item.action,
        "state": item.state,
        "created_at": item.created_at,
        "started_at": item.started_at,
        "ended_at": item.ended_at,
        "_links": {
            "self": link(format!("/server_tasks/{}/items/{}", t.id, item.id)),
            "describedby": schema_link("server_task_item"),
            "rel/server_task": link(format!("/server_tasks/{}", t.id)),
        },
    })
}

// ------------------------------------------------------ placements, projects

/// A placement as a client sees it. Placements are not stored records: the
/// deployment inventory (behind the hypervisor capability) is their only
/// source, so the view renders the hypervisor's [`Placement`] directly.
///
/// Decision on several parents (the inventory allows a DAG, the contract
/// has one `parent_placement_id`): `parent_placement_id` is the *first*
/// parent in inventory order (`null` for a root), and `parent_placement_ids`
/// lists every parent in that order, so clients that only know the
/// contract's single field still see a true parent and others see them all.
/// Properties become an object and tags a sorted set, as for every resource.
pub fn placement_view(p: &Placement) -> Value {
    let properties: BTreeMap<&str, &str> = p.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let tags: BTreeSet<&str> = p.tags.iter().map(String::as_str).collect();
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "parent_placement_id": p.parent_ids.first(),
        "parent_placement_ids": p.parent_ids,
        "properties": properties,
        "tags": tags,
        "_links": {
            "self": link(format!("/placements/{}", p.id)),
            "children": link(format!("/placements?parent_placement={}", p.id)),
            "describedby": schema_link("placement"),
        },
    })
}

/// `GET /projects/{id}`: a project is owned by the identity service, so the
/// API shows only its id and where its servers are. No `describedby`: the
/// contract publishes no project schema.
pub fn project_view(project_id: &str) -> Value {
    json!({
        "id": project_id,
        "_links": {
            "self": link(format!("/projects/{project_id}")),
            "rel/project_servers": link(format!("/projects/{project_id}/servers")),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn who(admin: bool) -> Identity {
        Identity { user_id: "u1".into(), project_id: "p1".into(), admin }
    }

    pub(crate) fn sample_server() -> ServerRecord {
        ServerRecord {
            id: "s1".into(),
            hostname: "web-1".into(),
            project_id: "p1".into(),
            launched_by: "u1".into(),
            launched_at: "2026-01-01T00:00:00Z".into(),
            launch_keypair_id: None,
            template_id: Some("t1".into()),
            type_id: "ty1".into(),
            placement_id: None,
            power_state: None,
            virt_state: VirtState::Building,
            spec: TypeSpec { memory_mb: 512, root_disk_gb: 10, cpu_units: 1, rxtx_factor: None, swap_mb: None },
            block_devices: vec![],
            networking: Networking::default(),
            properties: BTreeMap::new(),
            tags: BTreeSet::new(),
            locked: false,
            updated_at: "2026-01-01T00:00:00Z".into(),
            locked_by: None,
            compute_node_id: Some("n1".into()),
            compute_node_hostname: Some("node-1".into()),
            elevated_properties: BTreeMap::new(),
            current_task_id: None,
            user_data: Some("c2VjcmV0".into()),
            affinity: None,
            node_placement_id: None,
            reclaimed_at: None,
        }
    }

    #[test]
    fn enums_use_the_api_spelling() {
        assert_eq!(json!(VirtState::ShelvedOffloaded), json!("SHELVED_OFFLOADED"));
        assert_eq!(TaskAction::parse("HARD_REBOOT"), Some(TaskAction::HardReboot));
        assert_eq!(TaskAction::parse("hard_reboot"), None);
        assert_eq!(TaskAction::ALL.len(), 28);
        assert_eq!(parse_power_state("SHUTDOWN"), Some(PowerState::Shutdown));
        assert_eq!(Visibility::default(), Visibility::Private);
    }

    #[test]
    fn server_view_hides_internal_fields_and_elevates_only_admins() {
        let s = sample_server();
        let user = serde_json::to_value(server_view(&s, &who(false))).unwrap();
        assert_eq!(user["_elevated"], json!({}));
        let text = user.to_string();
        for secret in ["node-1", "n1", "c2VjcmV0", "current_task_id", "locked_by"] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
        assert_eq!(user["power_state"], "SHUTDOWN", "not reported yet: shown as SHUTDOWN");
        assert_eq!(user["placement_id"], Value::Null);
        assert_eq!(user["_links"]["rel/server_tasks"]["href"], "/servers/s1/tasks");
        let admin = serde_json::to_value(server_view(&s, &who(true))).unwrap();
        assert_eq!(admin["_elevated"]["compute_node_hostname"], "node-1");
        assert_eq!(admin["_elevated"]["properties"], json!(s.elevated_properties));
        assert_eq!(admin["_links"]["self"]["href"], "/servers/s1");
        assert_eq!(admin["_links"]["describedby"]["href"], "/schemas/server");
        assert_eq!(admin["spec"], json!(s.spec));
        assert_eq!(admin["virt_state"], json!(s.virt_state));
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        let full = [
            "_elevated", "_links", "block_devices", "hostname", "id", "launch_keypair_id", "launched_at",
            "launched_by", "locked", "networking", "placement_id", "power_state", "project_id", "properties", "spec",
            "tags", "template_id", "type_id", "virt_state",
        ];
        assert_eq!(keys(&admin), full);
        // The text keeps that order too (clients diffing responses see no change).
        let text = serde_json::to_string(&server_view(&s, &who(false))).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), user);
        assert!(text.starts_with(r#"{"_elevated":{},"_links":{"describedby""#), "{text}");
        let summary = serde_json::to_value(server_summary_view(&s, &who(false))).unwrap();
        let short: Vec<&str> = full.iter().copied().filter(|k| !["block_devices", "networking"].contains(k)).collect();
        assert_eq!(keys(&summary), short);
    }

    #[test]
    fn placement_shown_is_the_one_asked_for_else_the_nodes() {
        let mut s = sample_server();
        s.node_placement_id = Some("pl-rack".into());
        assert_eq!(serde_json::to_value(server_view(&s, &who(false))).unwrap()["placement_id"], "pl-rack");
        s.placement_id = Some("pl-zone".into());
        assert_eq!(s.shown_placement_id(), Some("pl-zone"));
        s.power_state = Some(PowerState::Paused);
        assert_eq!(serde_json::to_value(server_view(&s, &who(false))).unwrap()["power_state"], "PAUSED");
    }

    #[test]
    fn locked_servers_take_changes_from_admins_only() {
        let mut s = sample_server();
        assert!(s.check_unlocked(&who(false), "rename it").is_ok());
        s.locked = true;
        let e = s.check_unlocked(&who(false), "rename it").unwrap_err();
        assert_eq!(e.status, 409);
        assert!(e.message.contains("rename it"));
        assert!(s.check_unlocked(&who(true), "rename it").is_ok());
    }

    #[test]
    fn consoles_need_a_server_on_a_compute_node() {
        let mut s = sample_server();
        assert!(s.check_on_node("console").is_ok());
        s.virt_state = VirtState::Terminated;
        assert!(s.check_on_node("console").unwrap_err().message.contains("TERMINATED"));
        s.virt_state = VirtState::ShelvedOffloaded;
        assert_eq!(s.check_on_node("console").unwrap_err().status, 409);
        s.virt_state = VirtState::Building;
        s.compute_node_id = None;
        assert_eq!(s.check_on_node("console").unwrap_err().status, 409);
    }

    #[test]
    fn diagnostics_and_console_views_carry_their_schema_links() {
        use crate::hypervisor::DiskCounters;
        let d = Diagnostics {
            cpu_time_ns: 5,
            memory_used_mb: 1,
            memory_total_mb: 2,
            uptime_seconds: 3,
            disks: vec![DiskCounters { device: "vda".into(), read_bytes: 1, write_bytes: 2, read_requests: 3, write_requests: 4 }],
            interfaces: vec![],
        };
        let v = diagnostics_view("s1", &d);
        assert_eq!(v["disks"][0]["write_requests"], 4);
        assert_eq!(v["_links"]["describedby"]["href"], "/schemas/diagnostics");
        let c = console_view("s1", ConsoleType::Spice, "http://x/?token=t");
        assert_eq!((c["type"].as_str(), c["uri"].as_str()), (Some("spice"), Some("http://x/?token=t")));
    }

    #[test]
    fn server_type_visibility_follows_shares_and_ownership() {
        let mut t = ServerTypeRecord {
            id: "ty".into(),
            name: "small".into(),
            description: String::new(),
            visibility: Visibility::Private,
            shares: Shares::default(),
            spec: TypeSpec { memory_mb: 1, root_disk_gb: 10, cpu_units: 1, rxtx_factor: None, swap_mb: None },
            tags: BTreeSet::new(),
            created_at: "2026-01-01T00:00:00Z".into(),
            owner_project_id: "owner-p".into(),
            owner_user_id: "owner-u".into(),
        };
        let stranger = who(false);
        assert!(!t.visible_to(&stranger));
        assert!(t.visible_to(&who(true)));
        t.shares.users.insert("u1".into());
        assert!(t.visible_to(&stranger));
        t.shares.users.clear();
        t.shares.projects.insert("p1".into());
        assert!(t.visible_to(&stranger));
        // Shares are the owner's business: others see the field, empty.
        assert_eq!(server_type_view(&t, &stranger)["shares"], json!({"users": [], "projects": []}));
        assert_eq!(server_type_view(&t, &who(true))["shares"], json!({"users": [], "projects": ["p1"]}));
        let view = server_type_view(&t, &stranger).to_string();
        assert!(!view.contains("owner-p") && !view.contains("owner-u"));
    }

    #[test]
    fn task_view_puts_arguments_beside_action() {
        let s = sample_server();
        let mut n = 0;
        let mut ids = || {
            n += 1;
            format!("i{n}")
        };
        let args = TaskArgs { type_id: Some("ty2".into()), ..Default::default() };
        let t = TaskRecord::new("t1".into(), &s, TaskAction::Resize, args, "u1", &["PREPARING", "MIGRATING"], "now", &mut ids);
        let v = task_view(&t);
        assert_eq!(v["action"], "RESIZE");
        assert_eq!(v["type_id"], "ty2");
        assert!(v.get("template_id").is_none());
        assert!(v.get("last_seq").is_none() && v.get("project_id").is_none());
        assert_eq!(t.items[1].id, "i2");
        assert_eq!(task_item_view(&t, &t.items[0])["state"], "WAITING");
        assert_eq!(t.from_virt_state, VirtState::Building);
    }

    #[test]
    fn placement_view_shows_the_first_parent_and_all_of_them() {
        let p = Placement {
            id: "pl-edge".into(),
            name: "edge".into(),
            description: String::new(),
            parent_ids: vec!["az-2".into(), "az-1".into()],
            properties: vec![("tier".into(), "gold".into())],
            tags: vec!["z".into(), "a".into()],
        };
        let v = placement_view(&p);
        assert_eq!(v["parent_placement_id"], "az-2");
        assert_eq!(v["parent_placement_ids"], json!(["az-2", "az-1"]));
        assert_eq!(v["properties"], json!({"tier": "gold"}));
        assert_eq!(v["tags"], json!(["a", "z"]));
        assert_eq!(v["_links"]["children"]["href"], "/placements?parent_placement=pl-edge");
        assert_eq!(v["_links"]["describedby"]["href"], "/schemas/placement");
        let root = Placement { parent_ids: vec![], ..p };
        assert!(placement_view(&root)["parent_placement_id"].is_null());
        assert_eq!(placement_view(&root)["parent_placement_ids"], json!([]));
    }

    #[test]
    fn project_view_links_to_its_servers() {
        let v = project_view("p1");
        assert_eq!(v["id"], "p1");
        assert_eq!(v["_links"]["rel/project_servers"]["href"], "/projects/p1/servers");
        assert_eq!(v["_links"]["self"]["href"], "/projects/p1");
    }
}
