//! Loading records the caller may see. Anything that exists but is not the
//! caller's is reported exactly like something missing (404), as the API
//! never reveals other projects' resources.

use crate::kv::Kv;
use vnext_core::auth::Identity;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::ids::parse_uuid;
use vnext_core::keys;
use vnext_core::model::{ServerRecord, TaskRecord};

/// The server named by the path segment `raw`, if `who` may see it.
pub fn visible_server(kv: &Kv, who: &Identity, raw: &str) -> ApiResult<ServerRecord> {
    let not_found = || ApiError::not_found(format!("no server {raw} visible to you"));
    let id = parse_uuid(raw).ok_or_else(not_found)?;
    let server: ServerRecord = kv.get_json(&keys::server(&id))?.ok_or_else(not_found)?;
    if !who.can_act_in(&server.project_id) {
        return Err(not_found());
    }
    Ok(server)
}

/// The task named by the path segment `raw`, if `who` may see it.
///
/// A task is visible to whoever may see its server *now*: a server
/// transferred to another project (`PATCH /servers/{id}` with
/// `project_id`) takes its task history along, and the old project loses
/// it. So the server's current project decides, not the task's
/// `project_id` (the project at the time the task started); admins skip
/// that extra read.
pub fn visible_task(kv: &Kv, who: &Identity, raw: &str) -> ApiResult<TaskRecord> {
    let not_found = || ApiError::not_found(format!("no server task {raw} visible to you"));
    let id = parse_uuid(raw).ok_or_else(not_found)?;
    let task: TaskRecord = kv.get_json(&keys::task(&id))?.ok_or_else(not_found)?;
    if who.admin {
        return Ok(task);
    }
    let server: Option<ServerRecord> = kv.get_json(&keys::server(&task.server_id))?;
    if !server.is_some_and(|s| who.can_act_in(&s.project_id)) {
        return Err(not_found());
    }
    Ok(task)
}
