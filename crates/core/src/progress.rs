//! Applying a progress event ([`TaskEvent`]) to the stored task and server.
//!
//! The events component reads the task, skips the event if its `seq` was
//! already applied (`seq <= last_seq`), then updates the server record and
//! last the task record (each with compare-and-swap). Server updates only
//! *set* state, so if the component dies between the two writes, the
//! redelivered event applies the server part again harmlessly and then
//! records the `seq` on the task.
//!
//! What an event changes:
//! - the item at `step_index`: its state, `started_at` on the first
//!   transition, `ended_at` when it ends;
//! - the task: `updated_at`, `last_seq`, and on a terminal operation state
//!   its `state` and `error`; items still WAITING when a task fails are
//!   marked with the task's state, so no item stays open forever;
//! - the server: the runtime the hypervisor reports (power state, compute
//!   node and its placement, interfaces, block devices) and, when the
//!   operation ends, the
//!   virt_state from [`crate::transitions`]; the running-task marker is
//!   cleared.

use crate::error::{ApiError, ApiResult};
use crate::events::{OperationState, ServerObservation, StepState, TaskEvent};
use crate::hypervisor::PowerState;
use crate::model::{ItemState, Networking, ServerRecord, TaskAction, TaskRecord, TaskState, VirtState};
use crate::time;
use crate::transitions;

/// The event's time in canonical form, or 400.
pub fn event_time(ev: &TaskEvent) -> ApiResult<String> {
    time::normalize(&ev.at)
        .ok_or_else(|| ApiError::bad_request(format!("at {:?} is not an RFC 3339 date-time", ev.at)).field("at"))
}

/// Whether the event was already applied to `task`.
pub fn is_replay(task: &TaskRecord, ev: &TaskEvent) -> bool {
    ev.seq <= task.last_seq
}

/// Checks the event belongs to `task` and names one of its items.
pub fn check(task: &TaskRecord, ev: &TaskEvent) -> ApiResult<()> {
    if ev.server_id != task.server_id {
        return Err(ApiError::bad_request(format!(
            "task {} belongs to server {}, not {}",
            task.id, task.server_id, ev.server_id
        ))
        .field("server_id"));
    }
    if ev.seq == 0 {
        return Err(ApiError::bad_request("seq starts at 1").field("seq"));
    }
    if ev.step_index as usize >= task.items.len() {
        return Err(ApiError::bad_request(format!(
            "step_index {} is out of range: task {} has {} items",
            ev.step_index,
            task.id,
            task.items.len()
        ))
        .field("step_index"));
    }
    event_time(ev).map(|_| ())
}

fn item_state(s: StepState) -> ItemState {
    match s {
        StepState::Running => ItemState::Running,
        StepState::Completed => ItemState::Completed,
        StepState::Aborted => ItemState::Aborted,
        StepState::TimedOut => ItemState::TimedOut,
    }
}

fn task_state(s: OperationState) -> TaskState {
    match s {
        OperationState::Running => TaskState::Running,
        OperationState::Completed => TaskState::Completed,
        OperationState::Aborted => TaskState::Aborted,
        OperationState::TimedOut => TaskState::TimedOut,
    }
}

/// Applies `ev` to the task. Returns false (and changes nothing) for a replay.
pub fn apply_to_task(task: &mut TaskRecord, ev: &TaskEvent) -> ApiResult<bool> {
    check(task, ev)?;
    if is_replay(task, ev) {
        return Ok(false);
    }
    let at = event_time(ev)?;
    let item = &mut task.items[ev.step_index as usize];
    item.state = item_state(ev.step_state);
    item.started_at.get_or_insert_with(|| at.clone());
    if ev.step_state != StepState::Running {
        item.ended_at = Some(at.clone());
    }
    if ev.operation_state.is_terminal() {
        task.state = task_state(ev.operation_state);
        if ev.operation_state != OperationState::Completed {
            task.error = Some(ev.error.clone().unwrap_or_else(|| "the hypervisor gave no reason".to_string()));
            let closed = if task.state == TaskState::TimedOut { ItemState::TimedOut } else { ItemState::Aborted };
            for open in task.items.iter_mut().filter(|i| i.state == ItemState::Waiting) {
                open.state = closed;
                open.ended_at = Some(at.clone());
            }
        }
    }
    task.updated_at = at;
    task.last_seq = ev.seq;
    Ok(true)
}

/// Applies `ev` to the server of `task` (`task` as it was before the event;
/// only its action and starting virt_state are used).
pub fn apply_to_server(server: &mut ServerRecord, task: &TaskRecord, ev: &TaskEvent) -> ApiResult<()> {
    let at = event_time(ev)?;
    let row = transitions::get(task.action);
    if let Some(rt) = &ev.server {
        server.power_state = Some(rt.power_state);
        if rt.compute_node_id.is_some() {
            server.compute_node_id = rt.compute_node_id.clone();
        }
        if rt.compute_node_hostname.is_some() {
            server.compute_node_hostname = rt.compute_node_hostname.clone();
        }
        if rt.placement_id.is_some() {
            server.node_placement_id = rt.placement_id.clone();
        }
        if !rt.interfaces.is_empty() {
            server.networking = Networking::from_interfaces(rt.interfaces.clone());
        }
        if !rt.block_devices.is_empty() {
            server.block_devices = rt.block_devices.clone();
        }
    }
    if ev.operation_state.is_terminal() {
        let completed = ev.operation_state == OperationState::Completed;
        server.virt_state = row.virt_after(completed, task.from_virt_state);
        // A RESIZE or MOVE that fails in its first item (PREPARING: no
        // room, a live MOVE the hypervisor refuses) has not touched the
        // server yet: it stays as it was, as after Nova's NoValidHost.
        if !completed && ev.step_index == 0 && matches!(task.action, TaskAction::Resize | TaskAction::Move) {
            server.virt_state = task.from_virt_state;
        }
        // The adapter rolls a failed spawn back (its claim released, the
        // driver forgetting it), whatever node an earlier step reported.
        if !completed && task.action == TaskAction::Create {
            server.compute_node_id = None;
            server.compute_node_hostname = None;
        }
        if completed
            && ev.server.is_none()
            && let Some(p) = row.power_on_complete
        {
            server.power_state = Some(p);
        }
        // A completed RESIZE gives the server its new type and that type's
        // spec (copied when the task started; the type may change since).
        if completed
            && task.action == TaskAction::Resize
            && let (Some(spec), Some(type_id)) = (&task.resize_to, &task.args.type_id)
        {
            server.spec = spec.clone();
            server.type_id = type_id.clone();
        }
        // A MOVE to another placement makes that the server's placement
        // (and the scope of its next MOVE).
        if completed
            && task.action == TaskAction::Move
            && let Some(placement) = &task.args.placement_id
        {
            server.placement_id = Some(placement.clone());
        }
        if server.current_task_id.as_deref() == Some(task.id.as_str()) {
            server.current_task_id = None;
        }
    } else if let Some(v) = row.while_running {
        server.virt_state = v;
    }
    server.updated_at = at;
    Ok(())
}

/// What an observation changed on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Applied: the server record changed.
    Changed,
    /// Nothing to do: a task owns the server's state now, the observation
    /// is older than the server's last change, or it says what the record
    /// already says.
    Ignored,
}

/// Applies an observation of the adapter (Nova's power-state sync) to the
/// server. The virt_state follows the guest where Nova's sync would: an
/// ACTIVE (or RESIZED / RESCUED) server whose guest went down or crashed is
/// STOPPED, a STOPPED one whose guest runs again is ACTIVE, a guest paused
/// or resumed behind the API's back moves between ACTIVE and PAUSED. A
/// reclaimed TERMINATED server records when it was reclaimed.
pub fn apply_observation(server: &mut ServerRecord, obs: &ServerObservation) -> ApiResult<Observed> {
    let bad = || ApiError::bad_request(format!("at {:?} is not an RFC 3339 date-time", obs.at)).field("at");
    let at = time::normalize(&obs.at).ok_or_else(bad)?;
    let seen = time::parse(&at).ok_or_else(bad)?;
    // Compared as times: the strings' fraction digits differ in width.
    let stale = time::parse(&server.updated_at).is_some_and(|changed| seen < changed);
    if server.current_task_id.is_some() || stale {
        return Ok(Observed::Ignored);
    }
    use PowerState as P;
    use VirtState as V;
    let mut changed = false;
    if obs.reclaimed {
        if server.virt_state == V::Terminated && server.reclaimed_at.is_none() {
            server.reclaimed_at = Some(at.clone());
            server.compute_node_id = None;
            server.compute_node_hostname = None;
            changed = true;
        }
    } else if server.virt_state != V::Terminated && server.virt_state != V::ShelvedOffloaded {
        let virt = match (server.virt_state, obs.power_state) {
            (V::Active | V::Resized | V::Rescued | V::Paused, P::Shutdown | P::Crashed) => V::Stopped,
            (V::Stopped, P::Running) => V::Active,
            (V::Active, P::Paused) => V::Paused,
            (V::Paused, P::Running) => V::Active,
            (v, _) => v,
        };
        if server.power_state != Some(obs.power_state) || virt != server.virt_state {
            server.power_state = Some(obs.power_state);
            server.virt_state = virt;
            changed = true;
        }
    }
    if !changed {
        return Ok(Observed::Ignored);
    }
    server.updated_at = at;
    Ok(Observed::Changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{InterfaceInfo, ServerRuntime};
    use crate::hypervisor::PowerState;
    use crate::model::{TaskAction, TaskArgs, VirtState};

    fn server() -> ServerRecord {
        crate::model::tests::sample_server()
    }

    fn task(s: &ServerRecord) -> TaskRecord {
        let mut n = 0;
        let mut ids = || {
            n += 1;
            format!("item{n}")
        };
        let mut t = TaskRecord::new("t1".into(), s, TaskAction::Create, TaskArgs::default(), "u1",
            transitions::get(TaskAction::Create).items, "2026-01-01T00:00:00Z", &mut ids);
        t.server_id = s.id.clone();
        t
    }

    fn ev(seq: u32, step: u32, step_state: StepState, op: OperationState) -> TaskEvent {
        TaskEvent {
            task_id: "t1".into(),
            server_id: "s1".into(),
            seq,
            step_index: step,
            step_state,
            operation_state: op,
            error: None,
            server: None,
            at: format!("2026-01-01T00:00:0{seq}Z"),
        }
    }

    #[test]
    fn a_step_starting_and_ending_sets_its_times() {
        let s = server();
        let mut t = task(&s);
        assert!(apply_to_task(&mut t, &ev(1, 0, StepState::Running, OperationState::Running)).unwrap());
        assert_eq!(t.items[0].state, ItemState::Running);
        assert_eq!(t.items[0].started_at.as_deref(), Some("2026-01-01T00:00:01.000000Z"));
        assert!(t.items[0].ended_at.is_none());
        apply_to_task(&mut t, &ev(2, 0, StepState::Completed, OperationState::Running)).unwrap();
        assert_eq!(t.items[0].ended_at.as_deref(), Some("2026-01-01T00:00:02.000000Z"));
        assert_eq!((t.last_seq, t.state), (2, TaskState::Running));
    }

    #[test]
    fn replayed_events_change_nothing() {
        let s = server();
        let mut t = task(&s);
        apply_to_task(&mut t, &ev(1, 0, StepState::Running, OperationState::Running)).unwrap();
        let before = t.clone();
        assert!(!apply_to_task(&mut t, &ev(1, 0, StepState::Completed, OperationState::Running)).unwrap());
        assert_eq!(t, before);
    }

    #[test]
    fn a_failed_create_leaves_the_server_on_no_node() {
        let mut s = server();
        s.compute_node_id = Some("n2".into());
        s.compute_node_hostname = Some("node-2".into());
        let t = task(&s);
        apply_to_server(&mut s, &t, &ev(8, 3, StepState::Aborted, OperationState::Aborted)).unwrap();
        assert_eq!(s.virt_state, VirtState::Error);
        assert_eq!((&s.compute_node_id, &s.compute_node_hostname), (&None, &None));
        let refused = s.check_task_needs_node(TaskAction::HardReboot).unwrap_err();
        assert_eq!(refused.status, 409);
        assert!(s.check_task_needs_node(TaskAction::Terminate).is_ok());
        assert!(s.check_task_needs_node(TaskAction::Lock).is_ok());
    }

    #[test]
    fn completed_create_makes_the_server_active_and_running() {
        let mut s = server();
        s.current_task_id = Some("t1".into());
        let t = task(&s);
        let mut e = ev(8, 3, StepState::Completed, OperationState::Completed);
        e.server = Some(ServerRuntime {
            power_state: PowerState::Running,
            compute_node_id: Some("n2".into()),
            compute_node_hostname: Some("node-2".into()),
            placement_id: Some("pl-2".into()),
            interfaces: vec![InterfaceInfo { name: "eth0".into(), ip4: Some("10.0.0.5".into()), ip6: None, mac: "52:54:00:00:00:01".into() }],
            block_devices: vec![],
        });
        apply_to_server(&mut s, &t, &e).unwrap();
        assert_eq!(s.node_placement_id.as_deref(), Some("pl-2"));
        assert_eq!(s.placement_id, None, "the placement asked for stays as it was");
        assert_eq!(s.virt_state, VirtState::Active);
        assert_eq!(s.power_state, Some(PowerState::Running));
        assert_eq!(s.compute_node_hostname.as_deref(), Some("node-2"));
        assert_eq!(s.networking.access.ip4, ["10.0.0.5"]);
        assert_eq!(s.current_task_id, None);
    }

    #[test]
    fn a_completed_move_to_a_placement_makes_it_the_servers() {
        let mut s = server();
        s.virt_state = VirtState::Active;
        s.placement_id = Some("pl-old".into());
        let mut n = 0;
        let mut ids = || {
            n += 1;
            format!("item{n}")
        };
        let args = TaskArgs { placement_id: Some("pl-new".into()), ..Default::default() };
        let t = TaskRecord::new("t1".into(), &s, TaskAction::Move, args, "u1", transitions::get(TaskAction::Move).items, "2026-01-01T00:00:00Z", &mut ids);
        let mut aborted = s.clone();
        apply_to_server(&mut aborted, &t, &ev(2, 0, StepState::Aborted, OperationState::Aborted)).unwrap();
        assert_eq!(aborted.placement_id.as_deref(), Some("pl-old"));
        apply_to_server(&mut s, &t, &ev(3, 2, StepState::Completed, OperationState::Completed)).unwrap();
        assert_eq!(s.placement_id.as_deref(), Some("pl-new"));
    }

    #[test]
    fn aborted_create_leaves_the_server_in_error_and_closes_waiting_items() {
        let mut s = server();
        let mut t = task(&s);
        let mut e = ev(2, 0, StepState::Aborted, OperationState::Aborted);
        e.error = Some("no compute node has room".into());
        let before = t.clone();
        apply_to_task(&mut t, &e).unwrap();
        assert_eq!(t.state, TaskState::Aborted);
        assert_eq!(t.error.as_deref(), Some("no compute node has room"));
        assert!(t.items.iter().all(|i| i.state == ItemState::Aborted && i.ended_at.is_some()));
        apply_to_server(&mut s, &before, &e).unwrap();
        assert_eq!(s.virt_state, VirtState::Error);
    }

    #[test]
    fn a_completed_resize_gives_the_server_its_new_type_and_spec_and_an_aborted_one_does_not() {
        let mut s = server();
        s.virt_state = VirtState::Active;
        let new_spec = crate::model::TypeSpec { memory_mb: 4096, root_disk_gb: 40, cpu_units: 4, rxtx_factor: None, swap_mb: None };
        let mut ids = (0..).map(|i| format!("item{i}"));
        let args = TaskArgs { type_id: Some("t-big".into()), ..TaskArgs::default() };
        let mut t = TaskRecord::new("t2".into(), &s, TaskAction::Resize, args, "u1",
            transitions::get(TaskAction::Resize).items, "2026-01-01T00:00:00Z", &mut || ids.next().unwrap());
        t.from_virt_state = VirtState::Active;
        t.resize_to = Some(new_spec.clone());
        let last = t.items.len() as u32 - 1;
        let mut aborted = s.clone();
        apply_to_server(&mut aborted, &t, &ev(2, 0, StepState::Aborted, OperationState::Aborted)).unwrap();
        assert_eq!((aborted.type_id.as_str(), &aborted.spec), (s.type_id.as_str(), &s.spec));
        apply_to_server(&mut s, &t, &ev(9, last, StepState::Completed, OperationState::Completed)).unwrap();
        assert_eq!((s.type_id.as_str(), s.spec), ("t-big", new_spec));
    }

    #[test]
    fn events_that_do_not_fit_the_task_are_400() {
        let s = server();
        let mut t = task(&s);
        let mut e = ev(1, 9, StepState::Running, OperationState::Running);
        assert_eq!(apply_to_task(&mut t, &e).unwrap_err().field.as_deref(), Some("step_index"));
        e.step_index = 0;
        e.server_id = "other".into();
        assert_eq!(apply_to_task(&mut t, &e).unwrap_err().field.as_deref(), Some("server_id"));
        e.server_id = "s1".into();
        e.at = "yesterday".into();
        assert_eq!(apply_to_task(&mut t, &e).unwrap_err().field.as_deref(), Some("at"));
    }

    fn seen(power: PowerState, at: &str) -> ServerObservation {
        ServerObservation { server_id: "s".into(), power_state: power, reclaimed: false, at: at.into() }
    }

    #[test]
    fn a_guest_that_powered_itself_off_makes_an_active_server_stopped() {
        let mut s = server();
        s.virt_state = VirtState::Active;
        s.power_state = Some(PowerState::Running);
        s.current_task_id = None;
        s.updated_at = "2026-01-01T00:00:00Z".into();
        assert_eq!(apply_observation(&mut s, &seen(PowerState::Shutdown, "2026-01-01T00:00:05Z")).unwrap(), Observed::Changed);
        assert_eq!((s.virt_state, s.power_state), (VirtState::Stopped, Some(PowerState::Shutdown)));
        assert_eq!(s.updated_at, "2026-01-01T00:00:05.000000Z", "normalized");
        // The same observation again changes nothing.
        assert_eq!(apply_observation(&mut s, &seen(PowerState::Shutdown, "2026-01-01T00:00:07Z")).unwrap(), Observed::Ignored);
        // Started behind the API's back: ACTIVE again.
        apply_observation(&mut s, &seen(PowerState::Running, "2026-01-01T00:00:09Z")).unwrap();
        assert_eq!((s.virt_state, s.power_state), (VirtState::Active, Some(PowerState::Running)));
        apply_observation(&mut s, &seen(PowerState::Crashed, "2026-01-01T00:00:10Z")).unwrap();
        assert_eq!((s.virt_state, s.power_state), (VirtState::Stopped, Some(PowerState::Crashed)));
    }

    #[test]
    fn observations_yield_to_a_running_task_and_to_newer_changes() {
        let mut s = server();
        s.virt_state = VirtState::Active;
        s.power_state = Some(PowerState::Running);
        s.updated_at = "2026-01-01T00:00:10Z".into();
        s.current_task_id = Some("t9".into());
        let before = s.clone();
        assert_eq!(apply_observation(&mut s, &seen(PowerState::Shutdown, "2026-01-01T00:00:20Z")).unwrap(), Observed::Ignored);
        s.current_task_id = None;
        assert_eq!(apply_observation(&mut s, &seen(PowerState::Shutdown, "2026-01-01T00:00:05Z")).unwrap(), Observed::Ignored);
        assert_eq!(s.virt_state, before.virt_state);
        assert!(apply_observation(&mut s, &seen(PowerState::Shutdown, "yesterday")).is_err());
    }

    #[test]
    fn a_reclaimed_terminated_server_stays_terminated_and_cannot_be_restored() {
        let mut s = server();
        s.virt_state = VirtState::Terminated;
        s.current_task_id = None;
        s.updated_at = "2026-01-01T00:00:00Z".into();
        s.compute_node_id = Some("n1".into());
        let mut obs = seen(PowerState::Shutdown, "2026-01-02T00:00:00Z");
        obs.reclaimed = true;
        assert_eq!(apply_observation(&mut s, &obs).unwrap(), Observed::Changed);
        assert_eq!(s.virt_state, VirtState::Terminated);
        assert_eq!(s.reclaimed_at.as_deref(), Some("2026-01-02T00:00:00.000000Z"));
        assert!(s.compute_node_id.is_none());
        let err = s.check_task_needs_node(TaskAction::Restore).unwrap_err();
        assert_eq!(err.status, 409);
        // A power observation of a terminated server changes nothing.
        assert_eq!(apply_observation(&mut s, &seen(PowerState::Running, "2026-01-03T00:00:00Z")).unwrap(), Observed::Ignored);
    }

    #[test]
    fn a_move_refused_in_preparing_leaves_the_server_as_it_was_and_a_later_failure_in_error() {
        let mut s = server();
        s.virt_state = VirtState::Active;
        let mut n = 0;
        let mut ids = || {
            n += 1;
            format!("item{n}")
        };
        let t = TaskRecord::new("t1".into(), &s, TaskAction::Move, TaskArgs::default(), "u1", transitions::get(TaskAction::Move).items, "2026-01-01T00:00:00Z", &mut ids);
        let mut refused = s.clone();
        apply_to_server(&mut refused, &t, &ev(2, 0, StepState::Aborted, OperationState::Aborted)).unwrap();
        assert_eq!(refused.virt_state, VirtState::Active);
        let mut broken = s.clone();
        apply_to_server(&mut broken, &t, &ev(4, 1, StepState::Aborted, OperationState::Aborted)).unwrap();
        assert_eq!(broken.virt_state, VirtState::Error);
    }
}
