//! Progress events: how the adapter tells the API what an operation did.
//!
//! The adapter runs an operation after the API answered 202. For every step
//! transition it delivers one [`TaskEvent`] as a JSON `POST` to the events
//! route ([`EVENTS_ROUTE`]) with the shared secret in [`EVENTS_SECRET_HEADER`].
//! The events component is the only writer of task and server records, so
//! the key-value schema keeps a single owner.
//!
//! Delivery is at-least-once: the adapter retries until it gets a 2xx. `seq`
//! numbers a task's events from 1 without gaps, and the events component
//! ignores an event whose `seq` it has already applied, so applying an event
//! twice changes nothing. Events of one task are delivered in order.

use crate::hypervisor::PowerState;
use serde::{Deserialize, Serialize};

/// Route of the events component (see spin.toml).
pub const EVENTS_ROUTE: &str = "/internal/events";
/// Header carrying the shared secret (Spin variable `events_secret`).
pub const EVENTS_SECRET_HEADER: &str = "x-vnext-events-secret";

/// State of one step (task item) in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepState {
    Running,
    Completed,
    Aborted,
    TimedOut,
}

/// State of the whole operation in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationState {
    Running,
    Completed,
    Aborted,
    TimedOut,
}

impl OperationState {
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Running)
    }
}

/// Where the server runs and how, as far as the hypervisor knows after a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRuntime {
    pub power_state: PowerState,
    pub compute_node_id: Option<String>,
    pub compute_node_hostname: Option<String>,
    /// The placement of that compute node (its first in the inventory),
    /// filled in by the adapter, which knows the inventory; drivers leave it
    /// `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_id: Option<String>,
    /// Interfaces the server has after the step (empty: unchanged / none).
    #[serde(default)]
    pub interfaces: Vec<InterfaceInfo>,
    /// Block devices after the step (empty: unchanged / none).
    #[serde(default)]
    pub block_devices: Vec<BlockDeviceInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceInfo {
    pub name: String,
    pub ip4: Option<String>,
    pub ip6: Option<String>,
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDeviceInfo {
    pub device: String,
    /// `EPHEMERAL` or `PERSISTENT`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// One step transition of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEvent {
    pub task_id: String,
    pub server_id: String,
    /// 1, 2, 3... per task, without gaps.
    pub seq: u32,
    /// Index into the operation's `steps`.
    pub step_index: u32,
    pub step_state: StepState,
    pub operation_state: OperationState,
    /// Why the step failed, when it did.
    pub error: Option<String>,
    /// The server after this step, when the step changed it.
    pub server: Option<ServerRuntime>,
    /// RFC 3339 UTC time of the transition.
    pub at: String,
}

/// What the adapter saw of a server outside any task: Nova's power-state
/// sync (a guest that powered itself off, crashed, or was started behind
/// the API's back) and the reclaim of a terminated server.
///
/// Observations are not numbered: each is a snapshot, and the API applies
/// one only when it is newer than the server's last change (`at` >
/// `updated_at`) and no task is running on the server (the task's own
/// events report what it does). Applying one twice changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerObservation {
    pub server_id: String,
    /// The power state the hypervisor reports now.
    pub power_state: PowerState,
    /// The terminated server's disk and domain are gone for good: RESTORE
    /// is no longer possible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reclaimed: bool,
    /// RFC 3339 UTC time of the observation.
    pub at: String,
}

/// Body of an events-route `POST` carrying observations (task events are
/// sent as a bare array instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationBatch {
    pub observations: Vec<ServerObservation>,
}
