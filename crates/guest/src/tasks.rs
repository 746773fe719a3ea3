//! Starting a task's operation on the hypervisor, shared by the launch
//! (CREATE) and `POST /servers/{id}/tasks`.
//!
//! The task and server records are written before the hypervisor is
//! asked, so progress events always find them. If the hypervisor refuses
//! or cannot be reached, the failure is recorded like any other (task
//! ABORTED, server per the transition table) rather than answered: the
//! caller already owns a task to look at.
//!
//! A crash between writing a task and handing its operation over would
//! leave the task RUNNING forever (the adapter never heard of it), so each
//! task stores its operation ([`with_operation`]) and [`reconcile`], run
//! when a RUNNING task is read, submits again a task that has had no event
//! for [`RESUBMIT_AFTER`]: the adapter takes a task id once, so submitting
//! an operation it already has changes nothing. A task whose operation
//! could not be stored (it holds a password) is aborted after
//! [`ABANDON_AFTER`] without any event instead: one task runs per server at a
//! time, so an operation the adapter holds reports its first step at once.

use crate::hv;
use crate::kv::Kv;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::events::{OperationState, StepState, TaskEvent};
use std::time::Duration;
use vnext_core::hypervisor::{Action, Operation};
use vnext_core::model::TaskState;
use vnext_core::model::{ServerRecord, TaskRecord};
use vnext_core::{keys, progress, time, transitions};

/// A RUNNING task without any event for this long is submitted again.
pub const RESUBMIT_AFTER: Duration = Duration::from_secs(10);
/// ... or, when its operation was not stored, aborted after this long.
pub const ABANDON_AFTER: Duration = Duration::from_secs(300);

/// The operation of `task` for `action`, stored in the task record (unless
/// it holds a secret) before the record is written.
pub fn with_operation(task: &mut TaskRecord, action: Action) -> Operation {
    let op = transitions::operation(task, action);
    task.operation = transitions::storable(&op).then(|| op.clone());
    op
}

/// Submits `op` for `task`; on failure records the task as ABORTED.
pub async fn submit_or_abort(kv: &Kv, task: &TaskRecord, op: Operation) -> ApiResult<()> {
    match hv::submit(op).await {
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

fn older_than(timestamp: &str, age: Duration) -> bool {
    let now = std::time::SystemTime::now();
    time::parse(timestamp).and_then(|t| now.duration_since(t).ok()).is_some_and(|d| d >= age)
}

/// Heals `task` if its submission may have been cut off (see the module
/// docs). Cheap when there is nothing to do: no store access at all.
pub async fn reconcile(kv: &Kv, task: &TaskRecord) -> ApiResult<()> {
    if task.state != TaskState::Running || task.last_seq != 0 || !older_than(&task.created_at, RESUBMIT_AFTER) {
        return Ok(());
    }
    match &task.operation {
        // A hypervisor that cannot be reached now is asked again on the next read.
        Some(op) => {
            if let Err(e) = hv::submit(op.clone()).await {
                eprintln!("task {}: submitting again failed: {}", task.id, e.message);
            }
            Ok(())
        }
        None if older_than(&task.created_at, ABANDON_AFTER) => abort(
            kv,
            task,
            "the task was interrupted before it reached the hypervisor; start it again".to_string(),
        ),
        None => Ok(()),
    }
}
