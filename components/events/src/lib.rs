//! Progress events: `POST /internal/events` from the hypervisor adapter.
//!
//! The caller proves itself with the shared secret (header
//! `x-vnext-events-secret`, Spin variable `events_secret`; 401 otherwise).
//! The body is a `vnext_core::events::TaskEvent`. Application is
//! idempotent (see `vnext_core::progress`): an event whose `seq` the task
//! already recorded is acknowledged and ignored; otherwise the server is
//! updated, then the task, each with compare-and-swap. An event for an
//! unknown task is 400 (the adapter must not retry it forever). Answers
//! 204 on success.

use spin_sdk::http::Request;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::events::{EVENTS_SECRET_HEADER, TaskEvent};
use vnext_core::ids::parse_id;
use vnext_core::model::{ServerRecord, TaskRecord};
use vnext_core::routes::Component;
use vnext_core::{keys, progress, validate};
use vnext_guest::kv::Kv;
use vnext_guest::web::{self, Ctx, Reply};

#[spin_sdk::http_service]
async fn handle(req: Request) -> web::Response {
    web::serve(req, Component::Events, route).await
}

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match (ctx.route.rel, ctx.method.as_str()) {
        ("internal_events", "POST") => {
            authenticate(&ctx).await?;
            apply(&ctx.body)
        }
        (rel, method) => Err(ApiError::internal(format!("{method} {rel} has no handler in events"))),
    }
}

/// Constant-time comparison, so the secret cannot be guessed byte by byte
/// from response times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(ctx: &Ctx) -> ApiResult<()> {
    let expected = spin_sdk::variables::get("events_secret").await.map_err(|e| {
        ApiError::internal(format!("the events_secret variable is not available ({e}); set SPIN_VARIABLE_EVENTS_SECRET"))
    })?;
    let given = ctx.header(EVENTS_SECRET_HEADER).unwrap_or("");
    if expected.is_empty() || !same_secret(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::unauthorized(format!("missing or wrong {EVENTS_SECRET_HEADER} header")));
    }
    Ok(())
}

fn apply(body: &[u8]) -> ApiResult<Reply> {
    let mut ev: TaskEvent = validate::parse_body(body)?;
    // Canonical ids, so the comparisons below do not depend on spelling.
    let task_id = parse_id("task_id", &ev.task_id)?;
    ev.server_id = parse_id("server_id", &ev.server_id)?;
    ev.task_id = task_id.clone();
    let kv = Kv::open()?;
    let unknown = || ApiError::bad_request(format!("no task {task_id}; events are only for submitted tasks")).field("task_id");
    let task: TaskRecord = kv.get_json(&keys::task(&task_id))?.ok_or_else(unknown)?;
    progress::check(&task, &ev)?;
    if progress::is_replay(&task, &ev) {
        return Ok(Reply::empty(204));
    }
    kv.update_json(&keys::server(&task.server_id), |s: Option<ServerRecord>| {
        let mut s = s.ok_or_else(|| ApiError::bad_request(format!("no server {} for task {task_id}", task.server_id)).field("server_id"))?;
        progress::apply_to_server(&mut s, &task, &ev)?;
        Ok(s)
    })?;
    kv.update_json(&keys::task(&task_id), |t: Option<TaskRecord>| {
        let mut t = t.ok_or_else(unknown)?;
        // A concurrent delivery may have applied it meanwhile: then this is a no-op write.
        progress::apply_to_task(&mut t, &ev)?;
        Ok(t)
    })?;
    Ok(Reply::empty(204))
}
