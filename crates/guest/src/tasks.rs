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
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::events::{OperationState, StepState, TaskEvent};
use vnext_core::hypervisor::Action;
use vnext_core::model::{ServerRecord, TaskRecord};
use vnext_core::{keys, progress, time, transitions};

/// Submits `action` for `task`; on failure records the task as ABORTED.
pub async fn submit_or_abort(kv: &Kv, task: &TaskRecord, action: Action) -> ApiResult<()> {
    match hv::submit(transitions::operation(task, action)).await {
        Ok(()) => Ok(()),
        Err(e) => abort(kv, task, format!("the operation could not be submitted: {}", e.message)),
    }
}

/// Records `task` as ABORTED at its first step with `error`, without asking
/// the hypervisor (it failed to take the task, or the task cannot start:
/// no compute node qualifies for a launch).
pub fn abort(kv: &Kv, task: &TaskRecord, error: String) -> ApiResult<()> {
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
        error: Some(error.clone()),
        server: None,
        at: time::now(),
    };
    let gone = |what: &str, id: &str| ApiError::internal(format!("{what} {id} vanished while its task was aborted"));
    kv.update_json(&keys::server(&task.server_id), |s: Option<ServerRecord>| {
        let mut s = s.ok_or_else(|| gone("server", &task.server_id))?;
        progress::apply_to_server(&mut s, task, &ev)?;
        Ok(s)
    })?;
    kv.update_json(&keys::task(&task.id), |t: Option<TaskRecord>| {
        let mut t = t.ok_or_else(|| gone("task", &task.id))?;
        progress::apply_to_task(&mut t, &ev)?;
        Ok(t)
    })?;
    eprintln!("task {} aborted before it reached the hypervisor: {error}", task.id);
    Ok(())
}
