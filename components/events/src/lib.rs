//! Progress events: `POST /internal/events` from the hypervisor adapter.
//!
//! The caller proves itself with the shared secret (header
//! `x-vnext-events-secret`, Spin variable `events_secret`; 401 otherwise).
//! The body is a batch: a JSON array of `vnext_core::events::TaskEvent`s
//! of one task in `seq` order (a single event object is accepted too).
//! Application is idempotent (see `vnext_core::progress`): events whose
//! `seq` the task already recorded are acknowledged and ignored; the rest
//! are applied in order to the server, then to the task, with ONE
//! compare-and-swap on each record per batch, which is what makes a burst
//! of progress cheap. An event for an unknown task is 400 (the adapter must
//! not retry it forever). Answers 204 on success.
//!
//! The same route takes the adapter's observations of servers outside any
//! task (`{"observations": [...]}`, `vnext_core::events::ObservationBatch`:
//! a guest that powered itself off or crashed, a reclaimed server), each
//! applied to its server with one compare-and-swap (see
//! `vnext_core::progress::apply_observation`). An observation of a server
//! this API does not know is skipped, not refused: the adapter may hold
//! servers of another deployment's store.

use vnext_core::error::{ApiError, ApiResult};
use vnext_core::events::{EVENTS_SECRET_HEADER, ObservationBatch, TaskEvent};
use vnext_core::ids::parse_id;
use vnext_core::model::{ServerRecord, TaskRecord};
use vnext_core::routes::Component;
use vnext_core::{keys, progress, validate};
use vnext_guest::kv::Kv;
use vnext_guest::web::{Ctx, Reply};

vnext_guest::http_component!(Component::Events, route);

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match (ctx.route.rel, ctx.method.as_str()) {
        ("internal_events", "POST") => {
            authenticate(&ctx).await?;
            if is_observation_batch(&ctx.body) { observe(&ctx.body) } else { apply(&ctx.body) }
        }
        (rel, method) => Err(ApiError::internal(format!("{method} {rel} has no handler in events"))),
    }
}

async fn authenticate(ctx: &Ctx) -> ApiResult<()> {
    let expected = spin_sdk::variables::get("events_secret").await.map_err(|e| {
        ApiError::internal(format!("the events_secret variable is not available ({e}); set SPIN_VARIABLE_EVENTS_SECRET"))
    })?;
    let given = ctx.header(EVENTS_SECRET_HEADER).unwrap_or("");
    // Constant time (see `same_secret`); an empty secret opens nothing.
    if expected.is_empty() || !vnext_core::auth::same_secret(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::unauthorized(format!("missing or wrong {EVENTS_SECRET_HEADER} header")));
    }
    Ok(())
}

/// Most events accepted in one batch (the adapter sends at most 64).
const MAX_BATCH: usize = 256;

/// The batch in the body, with canonical ids, checked to be one task's.
fn parse(body: &[u8]) -> ApiResult<Vec<TaskEvent>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let mut events: Vec<TaskEvent> =
        if first == Some(&b'[') { validate::parse_body(body)? } else { vec![validate::parse_body(body)?] };
    if events.is_empty() || events.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!("send 1 to {MAX_BATCH} events of one task")));
    }
    for ev in &mut events {
        // Canonical ids, so the comparisons below do not depend on spelling.
        ev.task_id = parse_id("task_id", &ev.task_id)?;
        ev.server_id = parse_id("server_id", &ev.server_id)?;
    }
    if events.iter().any(|e| e.task_id != events[0].task_id) {
        return Err(ApiError::bad_request("a batch holds events of one task only").field("task_id"));
    }
    events.sort_by_key(|e| e.seq);
    Ok(events)
}

fn apply(body: &[u8]) -> ApiResult<Reply> {
    let events = parse(body)?;
    let task_id = events[0].task_id.clone();
    let kv = Kv::open()?;
    let unknown = || ApiError::bad_request(format!("no task {task_id}; events are only for submitted tasks")).field("task_id");
    let task: TaskRecord = kv.get_json(&keys::task(&task_id))?.ok_or_else(unknown)?;
    for ev in &events {
        progress::check(&task, ev)?;
    }
    if events.iter().all(|ev| progress::is_replay(&task, ev)) {
        return Ok(Reply::empty(204));
    }
    kv.update_json(&keys::server(&task.server_id), |s: Option<ServerRecord>| {
        let mut s = s.ok_or_else(|| ApiError::bad_request(format!("no server {} for task {task_id}", task.server_id)).field("server_id"))?;
        // Each event sees the task as the events before it left it.
        let mut t = task.clone();
        for ev in events.iter().filter(|ev| !progress::is_replay(&task, ev)) {
            progress::apply_to_server(&mut s, &t, ev)?;
            progress::apply_to_task(&mut t, ev)?;
        }
        Ok(s)
    })?;
    kv.update_json(&keys::task(&task_id), |t: Option<TaskRecord>| {
        let mut t = t.ok_or_else(unknown)?;
        // A concurrent delivery may have applied some meanwhile: those are no-ops.
        for ev in &events {
            progress::apply_to_task(&mut t, ev)?;
        }
        Ok(t)
    })?;
    Ok(Reply::empty(204))
}

/// Task events come as an array (or one event object); observations as an
/// object with an `observations` member.
fn is_observation_batch(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && body.windows(b"\"observations\"".len()).any(|w| w == b"\"observations\"")
}

fn observe(body: &[u8]) -> ApiResult<Reply> {
    let batch: ObservationBatch = validate::parse_body(body)?;
    if batch.observations.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!("send at most {MAX_BATCH} observations at once")).field("observations"));
    }
    let kv = Kv::open()?;
    for obs in &batch.observations {
        let server_id = parse_id("server_id", &obs.server_id)?;
        // Most sweeps change nothing: write only what an observation changes.
        let Some(mut current) = kv.get_json::<ServerRecord>(&keys::server(&server_id))? else { continue };
        if progress::apply_observation(&mut current, obs)? == progress::Observed::Ignored {
            continue;
        }
        kv.update_json(&keys::server(&server_id), |s: Option<ServerRecord>| {
            let mut s = s.ok_or_else(|| ApiError::bad_request(format!("no server {server_id}")).field("server_id"))?;
            progress::apply_observation(&mut s, obs)?;
            Ok(s)
        })?;
    }
    Ok(Reply::empty(204))
}
