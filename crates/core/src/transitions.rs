//! The task-action transition table, one row per [`TaskAction`].
//!
//! Each row says, following Nova's semantics: from which virt_state(s) the
//! action may start (anything else is 409), the virt_state while it runs,
//! the virt_state and power_state after it COMPLETED, the virt_state after
//! it ABORTED or TIMED_OUT, the item actions (the steps the hypervisor runs,
//! exactly as the API lists them), and the arguments it takes. The same
//! table is served (as JSON, [`table_json`]) inside the server_task schema.
//!
//! `None` in a virt_state column means "the state the server had when the
//! task started" (stored in the task as `from_virt_state`). Decisions where
//! vNext differs from Nova:
//! - vNext has no confirm/revert step, so RESIZE and MOVE finish in the
//!   state they started from; `RESIZED` is never produced.
//! - LOCK/UNLOCK have no items: they never reach the hypervisor and
//!   complete when created.
//! - Failed CREATE, RESIZE, MOVE and TERMINATE leave the server in ERROR
//!   (Nova does the same), except a RESIZE or MOVE that fails in its first
//!   item, PREPARING, before the server was touched (no room, a refused
//!   live MOVE: Nova's NoValidHost); every other failure restores the
//!   prior state.

use crate::error::{ApiError, ApiResult};
use crate::hypervisor::{
    Action, BlockDeviceArgs, MoveArgs, NetworkInterfaceArgs, Operation, PowerState, ServerSpec, SpawnArgs,
};
use crate::model::{ServerRecord, TaskAction, TaskArgs, TaskRecord, VirtState};
use serde_json::{Value, json};

use PowerState as P;
use TaskAction as A;
use VirtState as V;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub action: TaskAction,
    /// virt_states the action may start from; empty: only through launch.
    pub from: &'static [VirtState],
    pub while_running: Option<VirtState>,
    pub on_complete: Option<VirtState>,
    /// Expected power state after completion (the hypervisor's report wins).
    pub power_on_complete: Option<PowerState>,
    pub on_abort: Option<VirtState>,
    /// Item actions, in order: one hypervisor step each.
    pub items: &'static [&'static str],
    pub required_args: &'static [&'static str],
    pub optional_args: &'static [&'static str],
}

// Nova's allowed-state sets, named once.
const ANY_BUT_TERMINATED: &[VirtState] = &[
    V::Active, V::Building, V::Paused, V::Suspended, V::Stopped, V::Rescued, V::Resized,
    V::Shelved, V::ShelvedOffloaded, V::Error,
];
const ANY: &[VirtState] = &[
    V::Active, V::Building, V::Paused, V::Suspended, V::Stopped, V::Rescued, V::Resized,
    V::Terminated, V::Shelved, V::ShelvedOffloaded, V::Error,
];
const SNAPSHOTTABLE: &[VirtState] = &[V::Active, V::Stopped, V::Paused, V::Suspended];
const HARD_REBOOTABLE: &[VirtState] = &[V::Active, V::Stopped, V::Paused, V::Suspended, V::Error];
const REBUILDABLE: &[VirtState] = &[V::Active, V::Stopped, V::Error];
const VOLUME_ATTACHABLE: &[VirtState] =
    &[V::Active, V::Paused, V::Stopped, V::Resized, V::Shelved, V::ShelvedOffloaded];
const INTERFACE_ATTACHABLE: &[VirtState] = &[V::Active, V::Paused, V::Stopped];

const fn row(action: TaskAction, from: &'static [VirtState], items: &'static [&'static str]) -> Transition {
    Transition {
        action,
        from,
        while_running: None,
        on_complete: None,
        power_on_complete: None,
        on_abort: None,
        items,
        required_args: &[],
        optional_args: &[],
    }
}

const fn ends(mut t: Transition, virt: VirtState, power: PowerState) -> Transition {
    t.on_complete = Some(virt);
    t.power_on_complete = Some(power);
    t
}

const fn fails_to_error(mut t: Transition) -> Transition {
    t.on_abort = Some(V::Error);
    t
}

const fn args(mut t: Transition, required: &'static [&'static str], optional: &'static [&'static str]) -> Transition {
    t.required_args = required;
    t.optional_args = optional;
    t
}

/// The table, in [`TaskAction::ALL`] order.
pub static TABLE: &[Transition] = &[
    {
        let mut t = fails_to_error(ends(row(A::Create, &[], &["SCHEDULING", "BLOCK_DEVICE_MAPPING", "NETWORKING", "SPAWNING"]), V::Active, P::Running));
        t.while_running = Some(V::Building);
        t
    },
    args(row(A::Snapshot, SNAPSHOTTABLE, &["SNAPSHOTTING", "UPLOADING"]), &["name"], &[]),
    args(row(A::Backup, SNAPSHOTTABLE, &["SNAPSHOTTING", "UPLOADING"]), &["name"], &[]),
    args(row(A::UpdatePassword, &[V::Active], &["UPDATING_PASSWORD"]), &["password"], &[]),
    fails_to_error(args(row(A::Resize, &[V::Active, V::Stopped], &["PREPARING", "MIGRATING", "FINALIZING"]), &["type_id"], &[])),
    ends(row(A::Reboot, &[V::Active], &["REBOOTING"]), V::Active, P::Running),
    ends(row(A::HardReboot, HARD_REBOOTABLE, &["REBOOTING"]), V::Active, P::Running),
    ends(row(A::Pause, &[V::Active], &["PAUSING"]), V::Paused, P::Paused),
    ends(row(A::Unpause, &[V::Paused], &["UNPAUSING"]), V::Active, P::Running),
    ends(row(A::Suspend, &[V::Active], &["SUSPENDING"]), V::Suspended, P::Suspended),
    ends(row(A::Resume, &[V::Suspended], &["RESUMING"]), V::Active, P::Running),
    ends(row(A::PowerOff, &[V::Active, V::Error], &["POWERING_OFF"]), V::Stopped, P::Shutdown),
    ends(row(A::PowerOn, &[V::Stopped], &["POWERING_ON"]), V::Active, P::Running),
    args(ends(row(A::Rescue, &[V::Active, V::Stopped, V::Error], &["RESCUING"]), V::Rescued, P::Running), &[], &["template_id"]),
    ends(row(A::Unrescue, &[V::Rescued], &["UNRESCUING"]), V::Active, P::Running),
    args(ends(row(A::Rebuild, REBUILDABLE, &["REBUILDING", "REBUILDING_BLOCK_DEVICES", "SPAWNING"]), V::Active, P::Running), &["template_id"], &[]),
    fails_to_error(args(row(A::Move, &[V::Active, V::Stopped, V::Paused], &["PREPARING", "MIGRATING", "FINALIZING"]), &[], &["placement_id", "live"])),
    fails_to_error(ends(row(A::Terminate, ANY_BUT_TERMINATED, &["TERMINATING"]), V::Terminated, P::Shutdown)),
    ends(row(A::Restore, &[V::Terminated], &["RESTORING"]), V::Active, P::Running),
    ends(row(A::Shelve, SNAPSHOTTABLE, &["SHELVING", "PREPARING_UPLOAD", "UPLOADING"]), V::Shelved, P::Shutdown),
    ends(row(A::ShelveOffload, &[V::Shelved], &["SHELVING_OFFLOADING"]), V::ShelvedOffloaded, P::Shutdown),
    ends(row(A::Unshelve, &[V::Shelved, V::ShelvedOffloaded], &["UNSHELVING"]), V::Active, P::Running),
    args(row(A::AttachBlockDevice, VOLUME_ATTACHABLE, &["ATTACHING_BLOCK_DEVICE"]), &["volume_id"], &["device"]),
    args(row(A::DetachBlockDevice, VOLUME_ATTACHABLE, &["DETACHING_BLOCK_DEVICE"]), &["volume_id"], &["device"]),
    args(row(A::AttachNetworkInterface, INTERFACE_ATTACHABLE, &["ATTACHING_NETWORK_INTERFACE"]), &[], &["network_id", "mac"]),
    args(row(A::DetachNetworkInterface, INTERFACE_ATTACHABLE, &["DETACHING_NETWORK_INTERFACE"]), &[], &["network_id", "mac"]),
    row(A::Lock, ANY, &[]),
    row(A::Unlock, ANY, &[]),
];

/// The row of `action`.
pub fn get(action: TaskAction) -> &'static Transition {
    TABLE.iter().find(|t| t.action == action).expect("every TaskAction has a row (tested)")
}

impl Transition {
    /// 409 unless the action may start from `virt`.
    pub fn check_start(&self, virt: VirtState) -> ApiResult<()> {
        if self.from.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} tasks are created only by launching servers (POST /projects/{{project}}/servers)",
                self.action.as_str()
            ))
            .field("action"));
        }
        if self.from.contains(&virt) {
            return Ok(());
        }
        let allowed: Vec<&str> = self.from.iter().map(|v| v.as_str()).collect();
        Err(ApiError::conflict(format!(
            "{} is not possible while the server is {}; it needs virt_state {}",
            self.action.as_str(),
            virt.as_str(),
            allowed.join(" or ")
        )))
    }

    /// virt_state after the task ended, given the one it started from.
    pub fn virt_after(&self, completed: bool, started_from: VirtState) -> VirtState {
        let target = if completed { self.on_complete } else { self.on_abort };
        target.unwrap_or(started_from)
    }

    /// Every argument the action accepts.
    pub fn accepts(&self, arg: &str) -> bool {
        self.required_args.contains(&arg) || self.optional_args.contains(&arg)
    }
}

/// Argument a MOVE or an interface action needs at least one of, beyond the
/// plain required list: ATTACH/DETACH_NETWORK_INTERFACE take `network_id`
/// or `mac`.
pub fn one_of_args(action: TaskAction) -> &'static [&'static str] {
    match action {
        A::AttachNetworkInterface | A::DetachNetworkInterface => &["network_id", "mac"],
        _ => &[],
    }
}

/// The table as JSON, for the server_task schema and the documentation.
pub fn table_json() -> Value {
    let state = |v: Option<VirtState>| v.map(|v| json!(v.as_str())).unwrap_or(json!("UNCHANGED"));
    let rows: Vec<Value> = TABLE
        .iter()
        .map(|t| {
            json!({
                "action": t.action.as_str(),
                "from_virt_states": t.from.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
                "virt_state_while_running": state(t.while_running),
                "virt_state_on_completed": state(t.on_complete),
                "power_state_on_completed": t.power_on_complete.map(crate::model::power_state_str),
                "virt_state_on_aborted": state(t.on_abort),
                "items": t.items,
                "required_arguments": t.required_args,
                "optional_arguments": t.optional_args,
                "one_of_arguments": one_of_args(t.action),
            })
        })
        .collect();
    Value::Array(rows)
}

/// What the hypervisor needs besides the task itself.
pub struct ActionInputs<'a> {
    pub server: &'a ServerRecord,
    /// Candidate nodes, best first (CREATE, MOVE).
    pub candidates: Vec<String>,
    /// UPDATE_PASSWORD's password (never stored).
    pub password: Option<String>,
    /// RESIZE's new spec, from the target server type.
    pub resize_spec: Option<ServerSpec>,
}

/// The hypervisor action of a task, or None for actions that never reach
/// the hypervisor (LOCK, UNLOCK). Arguments were checked by
/// [`crate::validate::task`]; a missing one here is a bug (500).
pub fn hypervisor_action(action: TaskAction, args: &TaskArgs, inputs: ActionInputs) -> ApiResult<Option<Action>> {
    let missing = |what: &str| ApiError::internal(format!("{} task without {what}; report this", action.as_str()));
    let s = inputs.server;
    Ok(Some(match action {
        A::Create => Action::Spawn(SpawnArgs {
            hostname: s.hostname.clone(),
            spec: s.spec.server_spec(),
            template_id: s.template_id.clone(),
            keypair_id: s.launch_keypair_id.clone(),
            user_data: s.user_data.clone(),
            candidate_node_ids: inputs.candidates,
        }),
        A::Snapshot => Action::Snapshot(args.name.clone().ok_or_else(|| missing("name"))?),
        A::Backup => Action::Backup(args.name.clone().ok_or_else(|| missing("name"))?),
        A::UpdatePassword => Action::UpdatePassword(inputs.password.ok_or_else(|| missing("password"))?),
        A::Resize => Action::Resize(inputs.resize_spec.ok_or_else(|| missing("the new spec"))?),
        A::Reboot => Action::Reboot,
        A::HardReboot => Action::HardReboot,
        A::Pause => Action::Pause,
        A::Unpause => Action::Unpause,
        A::Suspend => Action::Suspend,
        A::Resume => Action::Resume,
        A::PowerOff => Action::PowerOff,
        A::PowerOn => Action::PowerOn,
        A::Rescue => Action::Rescue(args.template_id.clone()),
        A::Unrescue => Action::Unrescue,
        A::Rebuild => Action::Rebuild(args.template_id.clone().ok_or_else(|| missing("template_id"))?),
        A::Move => Action::Move(MoveArgs { candidate_node_ids: inputs.candidates, live: args.live.unwrap_or(false) }),
        A::Terminate => Action::Terminate,
        A::Restore => Action::Restore,
        A::Shelve => Action::Shelve,
        A::ShelveOffload => Action::ShelveOffload,
        A::Unshelve => Action::Unshelve,
        A::AttachBlockDevice | A::DetachBlockDevice => {
            let b = BlockDeviceArgs {
                volume_id: args.volume_id.clone().ok_or_else(|| missing("volume_id"))?,
                device: args.device.clone(),
            };
            if action == A::AttachBlockDevice { Action::AttachBlockDevice(b) } else { Action::DetachBlockDevice(b) }
        }
        A::AttachNetworkInterface | A::DetachNetworkInterface => {
            let n = NetworkInterfaceArgs { network_id: args.network_id.clone(), mac: args.mac.clone() };
            if action == A::AttachNetworkInterface { Action::AttachNetworkInterface(n) } else { Action::DetachNetworkInterface(n) }
        }
        A::Lock | A::Unlock => return Ok(None),
    }))
}

/// The operation submitted for `task`: one step per item, in order.
/// Whether an operation may be stored with its task (see
/// `TaskRecord::operation`): not when it carries a password.
pub fn storable(op: &Operation) -> bool {
    !matches!(op.action, Action::UpdatePassword(_))
}

pub fn operation(task: &TaskRecord, action: Action) -> Operation {
    Operation {
        task_id: task.id.clone(),
        server_id: task.server_id.clone(),
        action,
        steps: task.items.iter().map(|i| i.action.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_exactly_one_row_in_enum_order() {
        let actions: Vec<TaskAction> = TABLE.iter().map(|t| t.action).collect();
        assert_eq!(actions, TaskAction::ALL);
    }

    #[test]
    fn item_actions_are_the_ones_the_spec_lists() {
        assert_eq!(get(A::Create).items, ["SCHEDULING", "BLOCK_DEVICE_MAPPING", "NETWORKING", "SPAWNING"]);
        assert_eq!(get(A::Backup).items, ["SNAPSHOTTING", "UPLOADING"]);
        assert_eq!(get(A::Move).items, get(A::Resize).items);
        assert_eq!(get(A::HardReboot).items, ["REBOOTING"]);
        assert_eq!(get(A::Rebuild).items, ["REBUILDING", "REBUILDING_BLOCK_DEVICES", "SPAWNING"]);
        assert_eq!(get(A::Shelve).items, ["SHELVING", "PREPARING_UPLOAD", "UPLOADING"]);
        assert_eq!(get(A::DetachNetworkInterface).items, ["DETACHING_NETWORK_INTERFACE"]);
        assert!(get(A::Lock).items.is_empty() && get(A::Unlock).items.is_empty());
        for t in TABLE.iter().filter(|t| !matches!(t.action, A::Lock | A::Unlock)) {
            assert!(!t.items.is_empty(), "{:?} has no items", t.action);
        }
    }

    #[test]
    fn nova_examples_hold() {
        assert!(get(A::Pause).check_start(V::Active).is_ok());
        assert_eq!(get(A::Pause).check_start(V::Stopped).unwrap_err().status, 409);
        assert!(get(A::Unpause).check_start(V::Paused).is_ok());
        assert!(get(A::Resume).check_start(V::Suspended).is_ok());
        assert!(get(A::PowerOn).check_start(V::Stopped).is_ok());
        assert!(get(A::Unshelve).check_start(V::ShelvedOffloaded).is_ok());
        assert!(get(A::Restore).check_start(V::Terminated).is_ok());
        assert_eq!(get(A::Terminate).check_start(V::Terminated).unwrap_err().status, 409);
        assert_eq!(get(A::Reboot).check_start(V::Error).unwrap_err().status, 409);
        assert!(get(A::HardReboot).check_start(V::Error).is_ok());
    }

    #[test]
    fn create_is_refused_as_a_task_with_400() {
        let e = get(A::Create).check_start(V::Active).unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("action")));
    }

    #[test]
    fn outcomes_follow_the_table() {
        assert_eq!(get(A::Create).virt_after(true, V::Building), V::Active);
        assert_eq!(get(A::Create).virt_after(false, V::Building), V::Error);
        assert_eq!(get(A::Pause).virt_after(true, V::Active), V::Paused);
        assert_eq!(get(A::Pause).virt_after(false, V::Active), V::Active);
        assert_eq!(get(A::Resize).virt_after(true, V::Stopped), V::Stopped);
        assert_eq!(get(A::Resize).virt_after(false, V::Active), V::Error);
        assert_eq!(get(A::Terminate).virt_after(true, V::Active), V::Terminated);
        assert_eq!(get(A::Create).while_running, Some(V::Building));
    }

    #[test]
    fn arguments_are_declared_per_action() {
        assert_eq!(get(A::Resize).required_args, ["type_id"]);
        assert!(get(A::Move).accepts("live") && !get(A::Move).accepts("type_id"));
        assert!(get(A::Rescue).accepts("template_id"));
        assert!(!get(A::Reboot).accepts("name"));
    }

    #[test]
    fn table_json_lists_every_action() {
        let v = table_json();
        assert_eq!(v.as_array().unwrap().len(), TaskAction::ALL.len());
        assert_eq!(v[0]["virt_state_on_completed"], "ACTIVE");
        assert_eq!(v[1]["virt_state_on_completed"], "UNCHANGED");
    }

    #[test]
    fn create_spawns_with_the_server_and_candidates_and_lock_needs_no_hypervisor() {
        let server = crate::model::tests::sample_server();
        let inputs = |candidates: Vec<String>| ActionInputs { server: &server, candidates, password: None, resize_spec: None };
        let a = hypervisor_action(A::Create, &TaskArgs::default(), inputs(vec!["n1".into()])).unwrap().unwrap();
        match a {
            Action::Spawn(s) => {
                assert_eq!(s.hostname, "web-1");
                assert_eq!(s.candidate_node_ids, ["n1"]);
                assert_eq!(s.spec.memory_mb, 512);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(hypervisor_action(A::Lock, &TaskArgs::default(), inputs(vec![])).unwrap(), None);
        assert_eq!(hypervisor_action(A::Resize, &TaskArgs::default(), inputs(vec![])).unwrap_err().status, 500);
    }

    #[test]
    fn operation_steps_are_the_item_actions() {
        let server = crate::model::tests::sample_server();
        let mut n = 0;
        let mut ids = || { n += 1; n.to_string() };
        let t = TaskRecord::new("t".into(), &server, A::Pause, TaskArgs::default(), "u", get(A::Pause).items, "now", &mut ids);
        let op = operation(&t, Action::Pause);
        assert_eq!(op.steps, ["PAUSING"]);
        assert_eq!((op.task_id.as_str(), op.server_id.as_str()), ("t", "s1"));
    }
}
