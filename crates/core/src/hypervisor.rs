//! Wire types of the hypervisor capability, mirroring `wit/vnext-compute/hypervisor.wit`.
//!
//! The WIT records are what components see; these serde types are the same
//! records in plain Rust, used on every other path: by the native adapter
//! (`vnext-hypervisor`), by the host's in-process binding, and as the JSON
//! body of the adapter's HTTP API that the `hypervisor-client` component
//! forwards to under real Spin. Field names are the WIT names in snake_case.

use serde::{Deserialize, Serialize};

/// A console protocol (WIT `console-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleType {
    Novnc,
    Xvpvnc,
    Rdp,
    Spice,
}

impl ConsoleType {
    pub const ALL: [ConsoleType; 4] = [Self::Novnc, Self::Xvpvnc, Self::Rdp, Self::Spice];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Novnc => "novnc",
            Self::Xvpvnc => "xvpvnc",
            Self::Rdp => "rdp",
            Self::Spice => "spice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub memory_mb: u64,
    pub cpu_units: u32,
    pub disk_gb: u64,
}

impl Resources {
    /// Whether `need` still fits next to `self` (usage) within `capacity`.
    pub fn fits(&self, need: &Resources, capacity: &Resources) -> bool {
        self.memory_mb + need.memory_mb <= capacity.memory_mb
            && self.cpu_units + need.cpu_units <= capacity.cpu_units
            && self.disk_gb + need.disk_gb <= capacity.disk_gb
    }
}

/// A template of the catalogue (WIT `template`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub min_memory_mb: u64,
    pub min_disk_gb: u64,
    pub rescue_template_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub parent_ids: Vec<String>,
    #[serde(default)]
    pub properties: Vec<(String, String)>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeNode {
    pub id: String,
    pub hostname: String,
    pub placement_ids: Vec<String>,
    pub capacity: Resources,
    pub usage: Resources,
    pub console_types: Vec<ConsoleType>,
    pub enabled: bool,
    /// Nodes of one group can move running servers between them live
    /// (shared disks, daemons that reach each other); `None`: cold only.
    #[serde(default)]
    pub live_migration_group: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    pub memory_mb: u64,
    pub root_disk_gb: u64,
    pub cpu_units: u32,
    pub swap_mb: u64,
}

impl ServerSpec {
    /// What this spec claims on a compute node.
    pub fn resources(&self) -> Resources {
        Resources {
            memory_mb: self.memory_mb,
            cpu_units: self.cpu_units,
            disk_gb: self.root_disk_gb,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnArgs {
    pub hostname: String,
    pub spec: ServerSpec,
    pub template_id: Option<String>,
    pub keypair_id: Option<String>,
    pub user_data: Option<String>,
    pub candidate_node_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveArgs {
    pub candidate_node_ids: Vec<String>,
    pub live: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDeviceArgs {
    pub volume_id: String,
    pub device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInterfaceArgs {
    pub network_id: Option<String>,
    pub mac: Option<String>,
}

/// A lifecycle action (WIT `action`). JSON form: `{"kind": "pause"}` or
/// `{"kind": "spawn", "args": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "args", rename_all = "snake_case")]
pub enum Action {
    Spawn(SpawnArgs),
    Reboot,
    HardReboot,
    Pause,
    Unpause,
    Suspend,
    Resume,
    PowerOff,
    PowerOn,
    Rescue(Option<String>),
    Unrescue,
    Rebuild(String),
    Resize(ServerSpec),
    Move(MoveArgs),
    Snapshot(String),
    Backup(String),
    UpdatePassword(String),
    Shelve,
    ShelveOffload,
    Unshelve,
    AttachBlockDevice(BlockDeviceArgs),
    DetachBlockDevice(BlockDeviceArgs),
    AttachNetworkInterface(NetworkInterfaceArgs),
    DetachNetworkInterface(NetworkInterfaceArgs),
    Terminate,
    Restore,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub task_id: String,
    pub server_id: String,
    pub action: Action,
    /// Item actions of the task, in order; one driver step each.
    pub steps: Vec<String>,
}

/// Power state as the hypervisor reports it (WIT `power-state`); the API
/// spells the same values in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PowerState {
    Running,
    Paused,
    Shutdown,
    Crashed,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeState {
    pub server_id: String,
    pub power_state: PowerState,
    pub compute_node_id: Option<String>,
    pub compute_node_hostname: Option<String>,
    pub uptime_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskCounters {
    pub device: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_requests: u64,
    pub write_requests: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnostics {
    pub cpu_time_ns: u64,
    pub memory_used_mb: u64,
    pub memory_total_mb: u64,
    pub uptime_seconds: u64,
    pub disks: Vec<DiskCounters>,
    pub interfaces: Vec<InterfaceCounters>,
}

/// Why a hypervisor call failed (WIT `hypervisor-error`). JSON form:
/// `{"kind": "unknown_server", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum HypervisorError {
    UnknownServer(String),
    UnknownNode(String),
    Unsupported(String),
    Invalid(String),
    Unavailable(String),
}

impl std::fmt::Display for HypervisorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownServer(m) => write!(f, "unknown server: {m}"),
            Self::UnknownNode(m) => write!(f, "unknown compute node: {m}"),
            Self::Unsupported(m) => write!(f, "unsupported: {m}"),
            Self::Invalid(m) => write!(f, "invalid request: {m}"),
            Self::Unavailable(m) => write!(f, "hypervisor unavailable: {m}"),
        }
    }
}

impl std::error::Error for HypervisorError {}

/// Paths of the adapter's HTTP API (served by `vnext adapter`, called by the
/// `hypervisor-client` component). Every call is a POST of a JSON body to
/// `<adapter_url><path>`; the answer is 200 with the `Ok` JSON or 4xx/5xx
/// with a [`HypervisorError`] JSON.
pub mod adapter_api {
    pub const LIST_PLACEMENTS: &str = "/v1/list-placements";
    pub const LIST_TEMPLATES: &str = "/v1/list-templates";
    pub const LIST_COMPUTE_NODES: &str = "/v1/list-compute-nodes";
    pub const SUBMIT: &str = "/v1/submit";
    /// Body: a JSON array of operations; answer: one [`SubmitOutcome`] each, in order.
    pub const SUBMIT_MANY: &str = "/v1/submit-many";
    pub const SERVER_STATE: &str = "/v1/server-state";
    pub const CONSOLE_LOG: &str = "/v1/console-log";
    pub const CONSOLE_URI: &str = "/v1/console-uri";
    pub const DIAGNOSTICS: &str = "/v1/diagnostics";

    /// What `submit-many` answers for each operation: no `error` when it
    /// was accepted (or was already known).
    #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
    pub struct SubmitOutcome {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<super::HypervisorError>,
    }

    impl From<Result<(), super::HypervisorError>> for SubmitOutcome {
        fn from(r: Result<(), super::HypervisorError>) -> Self {
            SubmitOutcome { error: r.err() }
        }
    }

    impl From<SubmitOutcome> for Result<(), super::HypervisorError> {
        fn from(o: SubmitOutcome) -> Self {
            o.error.map_or(Ok(()), Err)
        }
    }

    /// Body of calls that name one server.
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub struct ServerRef {
        pub server_id: String,
    }

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub struct ConsoleLogRequest {
        pub server_id: String,
        pub lines: u32,
    }

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub struct ConsoleUriRequest {
        pub server_id: String,
        pub kind: super::ConsoleType,
    }
}
