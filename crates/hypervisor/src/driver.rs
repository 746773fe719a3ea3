//! The [`Driver`] trait: what a hypervisor backend implements.
//!
//! The adapter owns everything that is the same for every backend
//! (operation queues, scheduling claims, events, the journal) and calls the
//! driver once per step of an operation. A real backend (libvirt, QEMU QMP)
//! does slow I/O that can fail or hang, so every call is async and fallible,
//! and a step reports the server as it is after the step so progress is
//! visible step by step.
//!
//! The trait is object-safe (the adapter holds an `Arc<dyn Driver>`): async
//! methods return boxed futures instead of using `async fn`.

use crate::inventory::{NodeConfig, TemplateConfig};
use std::future::Future;
use std::pin::Pin;
use vnext_core::events::ServerRuntime;
use vnext_core::hypervisor::{
    Action, ConsoleType, Diagnostics, HypervisorError, Operation, RuntimeState,
};

/// A boxed, sendable future, the return type of the trait's async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One step of an operation, as the adapter asks a driver to run it.
#[derive(Debug, Clone, Copy)]
pub struct StepRequest<'a> {
    pub op: &'a Operation,
    /// Index into `op.steps`.
    pub step_index: usize,
    /// `op.steps[step_index]`, e.g. `SPAWNING`.
    pub step: &'a str,
    /// The node the server is on at the end of this operation: the node the
    /// adapter claimed for a spawn, move, restore or unshelve, the server's
    /// current node otherwise, `None` when it has none (e.g. offloaded).
    pub node: Option<&'a NodeConfig>,
}

impl StepRequest<'_> {
    /// Whether this is the operation's last step, where the action's
    /// effect becomes final.
    pub fn is_last(&self) -> bool {
        self.step_index + 1 == self.op.steps.len()
    }
}

/// Why a step did not complete; it ends the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// The step failed (task state ABORTED).
    Aborted(String),
    /// The step did not finish in time (task state TIMED_OUT).
    TimedOut(String),
}

impl StepError {
    pub fn message(&self) -> &str {
        match self {
            StepError::Aborted(m) | StepError::TimedOut(m) => m,
        }
    }
}

/// A hypervisor backend.
pub trait Driver: Send + Sync {
    /// Runs one step. Returns the server as it is after the step when the
    /// step changed it (`None`: nothing the API shows changed). Steps must
    /// tolerate being run again after an adapter restart interrupted them.
    fn run_step<'a>(
        &'a self,
        step: StepRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<ServerRuntime>, StepError>>;

    /// The server's state right now.
    fn server_state<'a>(
        &'a self,
        server_id: &'a str,
    ) -> BoxFuture<'a, Result<RuntimeState, HypervisorError>>;

    /// The last `lines` lines of the server's serial console.
    fn console_log<'a>(
        &'a self,
        server_id: &'a str,
        lines: u32,
    ) -> BoxFuture<'a, Result<String, HypervisorError>>;

    /// A URI with a one-time token for an interactive console;
    /// [`HypervisorError::Unsupported`] when the server's node cannot serve
    /// `kind`.
    fn console_uri<'a>(
        &'a self,
        server_id: &'a str,
        kind: ConsoleType,
    ) -> BoxFuture<'a, Result<String, HypervisorError>>;

    /// Resource counters of the server.
    fn diagnostics<'a>(
        &'a self,
        server_id: &'a str,
    ) -> BoxFuture<'a, Result<Diagnostics, HypervisorError>>;

    /// Drops everything about the server (a failed spawn, or a terminated
    /// server being reclaimed). Forgetting an unknown server is not an error.
    fn forget<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, ()>;

    /// Called once after an adapter (re)start, with the servers the
    /// journal holds: the driver matches them against the guests its
    /// hypervisors run and logs what does not match (a guest no server
    /// owns is left alone). The default has nothing to match.
    fn recover<'a>(&'a self, known: &'a [String]) -> BoxFuture<'a, ()> {
        let _ = known;
        Box::pin(async {})
    }

    /// Templates the driver added to the catalogue (SNAPSHOT and BACKUP
    /// make them), listed after the inventory's.
    fn templates(&self) -> Vec<TemplateConfig> {
        Vec::new()
    }

    /// The driver's own record of a server, for the adapter's journal.
    /// Drivers whose state lives in the hypervisor (libvirt) keep the
    /// default: nothing to save.
    fn export_server(&self, _server_id: &str) -> Option<serde_json::Value> {
        None
    }

    /// Restores a record saved by [`Driver::export_server`] after a restart.
    fn import_server(&self, _server_id: &str, _state: serde_json::Value) -> Result<(), String> {
        Ok(())
    }
}

/// Every action kind, as spelled in the adapter's JSON and the inventory.
pub const ACTION_KINDS: [&str; 26] = [
    "spawn",
    "reboot",
    "hard_reboot",
    "pause",
    "unpause",
    "suspend",
    "resume",
    "power_off",
    "power_on",
    "rescue",
    "unrescue",
    "rebuild",
    "resize",
    "move",
    "snapshot",
    "backup",
    "update_password",
    "shelve",
    "shelve_offload",
    "unshelve",
    "attach_block_device",
    "detach_block_device",
    "attach_network_interface",
    "detach_network_interface",
    "terminate",
    "restore",
];

/// The kind of an action, as in [`ACTION_KINDS`].
pub fn action_kind(action: &Action) -> &'static str {
    match action {
        Action::Spawn(_) => "spawn",
        Action::Reboot => "reboot",
        Action::HardReboot => "hard_reboot",
        Action::Pause => "pause",
        Action::Unpause => "unpause",
        Action::Suspend => "suspend",
        Action::Resume => "resume",
        Action::PowerOff => "power_off",
        Action::PowerOn => "power_on",
        Action::Rescue(_) => "rescue",
        Action::Unrescue => "unrescue",
        Action::Rebuild(_) => "rebuild",
        Action::Resize(_) => "resize",
        Action::Move(_) => "move",
        Action::Snapshot(_) => "snapshot",
        Action::Backup(_) => "backup",
        Action::UpdatePassword(_) => "update_password",
        Action::Shelve => "shelve",
        Action::ShelveOffload => "shelve_offload",
        Action::Unshelve => "unshelve",
        Action::AttachBlockDevice(_) => "attach_block_device",
        Action::DetachBlockDevice(_) => "detach_block_device",
        Action::AttachNetworkInterface(_) => "attach_network_interface",
        Action::DetachNetworkInterface(_) => "detach_network_interface",
        Action::Terminate => "terminate",
        Action::Restore => "restore",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_kinds_match_the_json_tag_of_every_action() {
        // The inventory names actions by their JSON tag; keep the list and
        // the serde spelling from drifting apart.
        for kind in ACTION_KINDS {
            let json = match kind {
                "spawn" | "rescue" | "rebuild" | "resize" | "move" | "snapshot" | "backup"
                | "update_password" | "attach_block_device" | "detach_block_device"
                | "attach_network_interface" | "detach_network_interface" => continue,
                k => format!(r#"{{"kind":"{k}"}}"#),
            };
            let action: Action = serde_json::from_str(&json).unwrap();
            assert_eq!(action_kind(&action), kind);
        }
        assert_eq!(action_kind(&Action::Rebuild("t".into())), "rebuild");
    }
}
