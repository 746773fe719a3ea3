//! Starting a task's operation on the hypervisor, shared by the launch
//! (CREATE) and `POST /servers/{id}/tasks`.
//!
//! The task and server records are written before the hypervisor is
//! asked, so progress events always find them. If the hypervisor refuses
//! or cannot be reached, the failure is recorded like any other (task
//! ABORTED, server per the transition table) rather than answered: the
//! caller already owns a task to look at.

use crate::hv;
use crate::kv::Kv;
use vnext_core::error::ApiResult;
use vnext_core::events::{OperationState, StepState, TaskEvent};
use vnext_core::hypervisor::Action;
use vnext_core::model::{ServerRecord, TaskRecord};
use vnext_core::{keys, progress, time, transitions};

/// Submits `action` for `task`; on failure records the task as ABORTED.
pub async fn submit_or_abort(kv: &Kv, task: &TaskRecord, action: Action) -> ApiResult<()> {
    let Err(e) = hv::submit(transitions::operation(task, action)).await else {
        return Ok(());
    };
    // Recorded as if the hypervisor had aborted the first step, through the
    // same code path as real events. The highest seq makes every later real
    // event a replay: the API has already reported this task as aborted.
    let ev = TaskEvent {
        task_id: task.id.clone(),
        server_id: task.server_id.clone(),
        seq: u32::MAX,
        step_index: 0,
        step_state: StepState::Aborted,
        operation_state: OperationState::Aborted,
        error: Some(format!("the operation could not be submitted: {}", e.message)),
        server: None,
        at: time::now(),
    };
    kv.update_json(&keys::server(&task.server_id), |s: Option<ServerRecord>| {
        let mut s = s.ok_or_else(|| e.clone())?;
        progress::apply_to_server(&mut s, task, &ev)?;
        Ok(s)
    })?;
    kv.update_json(&keys::task(&task.id), |t: Option<TaskRecord>| {
        let mut t = t.ok_or_else(|| e.clone())?;
        progress::apply_to_task(&mut t, &ev)?;
        Ok(t)
    })?;
    eprintln!("task {} aborted at submission: {}", task.id, e.message);
    Ok(())
}
