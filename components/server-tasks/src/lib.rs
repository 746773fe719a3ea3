//! Server tasks: `POST /servers/{id}/tasks`, `GET /servers/{id}/tasks`
//! (under `tasks`), `GET /server_tasks/{id}`, `GET /server_tasks/{id}/items`
//! (under `items`) and `GET /server_tasks/{id}/items/{item}`.
//!
//! Starting a task claims the server with compare-and-swap: the claim
//! re-checks, on the freshest record, that no task is RUNNING, that the
//! transition is allowed from the current virt_state, and the lock; then
//! the task is written and its operation submitted. LOCK and UNLOCK change
//! the server in that same claim and are COMPLETED at once.

use vnext_core::auth::Identity;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::ids::new_id;
use vnext_core::keys;
use vnext_core::model::{
    ItemState, ServerRecord, ServerTypeRecord, TaskAction, TaskRecord, TaskState, VirtState, task_item_view, task_view,
};
use vnext_core::paging;
use vnext_core::routes::Component;
use vnext_core::transitions::{self, ActionInputs};
use vnext_core::validate::{self, NewTask};
use vnext_core::scheduler::{self, LiveMoveRefusal};
use vnext_core::time;
use vnext_guest::index::{Index, Order};
use vnext_guest::kv::Kv;
use vnext_guest::web::{Ctx, Reply};
use vnext_guest::{affinity, hv, records, tasks};

vnext_guest::http_component!(Component::ServerTasks, route);

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match (ctx.route.rel, ctx.method.as_str()) {
        ("server_tasks", "POST") => start(&ctx).await,
        ("server_tasks", "GET") => list(&ctx).await,
        ("server_task", "GET") => {
            let task = visible_task(&ctx)?;
            tasks::reconcile(&Kv::open()?, &task).await?;
            Ok(Reply::json(200, &task_view(&task)))
        }
        ("server_task_items", "GET") => items(&ctx),
        ("server_task_item", "GET") => {
            let task = visible_task(&ctx)?;
            let id = ctx.param("server_task_item_id");
            let item = task.items.iter().find(|i| vnext_core::ids::parse_uuid(id).as_deref() == Some(i.id.as_str()));
            let item = item.ok_or_else(|| ApiError::not_found(format!("task {} has no item {id}", task.id)))?;
            Ok(Reply::json(200, &task_item_view(&task, item)))
        }
        (rel, method) => Err(ApiError::internal(format!("{method} {rel} has no handler in server-tasks"))),
    }
}

fn visible_server(kv: &Kv, ctx: &Ctx) -> ApiResult<ServerRecord> {
    records::visible_server(kv, ctx.who()?, ctx.param("server_id"))
}

fn visible_task(ctx: &Ctx) -> ApiResult<TaskRecord> {
    records::visible_task(&Kv::open()?, ctx.who()?, ctx.param("server_task_id"))
}

/// The filters of both lists (besides `limit` and `marker`).
const LIST_FILTERS: &[&str] = &["since", "changes_since", "state"];

/// `GET /server_tasks/{id}/items?limit&marker&since&changes_since&state`, in step order.
fn items(ctx: &Ctx) -> ApiResult<Reply> {
    let q = paging::page_query(&ctx.query, LIST_FILTERS)?;
    let times = paging::time_filters(&ctx.query)?;
    let states = paging::enum_filter(&ctx.query, "state", ItemState::parse, &ItemState::names())?;
    let task = visible_task(ctx)?;
    // `since`: started at or after; `changes_since`: its latest timestamp.
    let latest = |i: &vnext_core::model::TaskItem| {
        i.ended_at.clone().or_else(|| i.started_at.clone()).unwrap_or_else(|| i.created_at.clone())
    };
    let chosen: Vec<_> = task
        .items
        .iter()
        .filter(|i| states.is_empty() || states.contains(&i.state))
        .filter(|i| times.keep(i.started_at.as_deref(), &latest(i)))
        .collect();
    let (page, next) = paging::page(chosen, |i| i.id.as_str(), &q)?;
    let views = page.into_iter().map(|i| task_item_view(&task, i)).collect();
    let base = format!("/server_tasks/{}/items", task.id);
    Ok(Reply::json(200, &paging::collection("items", views, &base, &ctx.query, next)))
}

/// `GET /servers/{id}/tasks?limit&marker&since&changes_since&state`, newest first.
async fn list(ctx: &Ctx) -> ApiResult<Reply> {
    let q = paging::page_query(&ctx.query, LIST_FILTERS)?;
    let times = paging::time_filters(&ctx.query)?;
    let states = paging::enum_filter(&ctx.query, "state", TaskState::parse, &TaskState::names())?;
    let kv = Kv::open()?;
    let server = visible_server(&kv, ctx)?;
    // `since`: created (started) at or after; `changes_since`: updated.
    let keep = |t: &TaskRecord| {
        (states.is_empty() || states.contains(&t.state)) && times.keep(Some(&t.created_at), &t.updated_at)
    };
    let index = Index::new(&kv, keys::server_tasks_index(&server.id));
    // Every task of this index is the (visible) server's.
    let (page, next) = index.list(Order::NewestFirst, &q, |id| keys::task(id), |_| true, keep, |t: &TaskRecord| t.id.as_str())?;
    for task in &page {
        tasks::reconcile(&kv, task).await?;
    }
    let views = page.iter().map(task_view).collect();
    let base = format!("/servers/{}/tasks", server.id);
    Ok(Reply::json(200, &paging::collection("tasks", views, &base, &ctx.query, next)))
}

/// Checks, on the freshest server record, that `who` may start `new` now.
fn check_startable(server: &ServerRecord, who: &Identity, action: TaskAction) -> ApiResult<()> {
    transitions::get(action).check_start(server.virt_state)?;
    server.check_task_needs_node(action)?;
    // LOCK/UNLOCK never reach the hypervisor, so a running task does not block them.
    let hypervisor_task = !matches!(action, TaskAction::Lock | TaskAction::Unlock);
    if let Some(running) = server.current_task_id.as_ref().filter(|_| hypervisor_task) {
        return Err(ApiError::conflict(format!(
            "task {running} is still RUNNING on this server; wait for it (GET /server_tasks/{running})"
        )));
    }
    let unlocking_own_lock = action == TaskAction::Unlock && server.locked_by.as_deref() == Some(who.user_id.as_str());
    if server.locked && !who.admin && !unlocking_own_lock {
        return Err(ApiError::conflict("the server is locked; only the user who locked it or an admin may UNLOCK it"));
    }
    match action {
        TaskAction::Lock if server.locked => Err(ApiError::conflict("the server is already locked")),
        TaskAction::Unlock if !server.locked => Err(ApiError::conflict("the server is not locked")),
        _ => Ok(()),
    }
}

/// Inputs the hypervisor needs that come from other records.
async fn gather_inputs(kv: &Kv, who: &Identity, server: &ServerRecord, new: &NewTask) -> ApiResult<(Vec<String>, Option<vnext_core::model::TypeSpec>)> {
    match new.action {
        TaskAction::Resize => {
            let type_id = new.args.type_id.as_deref().unwrap_or_default();
            if type_id == server.type_id {
                return Err(ApiError::bad_request("RESIZE needs a type_id different from the server's current type").field("type_id"));
            }
            let t: Option<ServerTypeRecord> = kv.get_json(&keys::server_type(type_id))?;
            let t = t.filter(|t| t.visible_to(who)).ok_or_else(|| {
                ApiError::bad_request(format!("no server type {type_id} visible to you")).field("type_id")
            })?;
            Ok((Vec::new(), Some(t.spec)))
        }
        TaskAction::Move => {
            let placements = hv::list_placements().await?;
            scheduler::check_placement(&placements, new.args.placement_id.as_deref(), "placement_id")?;
            let nodes = hv::list_compute_nodes().await?;
            let placement = new.args.placement_id.as_deref().or(server.placement_id.as_deref());
            // The affinity given at launch still holds: near / not_near the
            // targets where they run now (the server itself is no target).
            let affinity = match &server.affinity {
                Some(a) => {
                    let targets = affinity::stored_targets(kv, a, &server.project_id)?;
                    Some(scheduler::affinity_nodes(a, &targets, &server.project_id, Some(&server.id)))
                }
                None => None,
            };
            let spec = server.spec.server_spec();
            let mut candidates = scheduler::candidates(&nodes, &placements, &spec, placement, affinity.as_ref());
            candidates.retain(|n| Some(n) != server.compute_node_id.as_ref());
            if new.args.live == Some(true) {
                check_live_move(&nodes, server, &mut candidates)?;
            }
            // The adapter reads an empty list as "any node": never send one,
            // or a MOVE could leave its placement or break its affinity.
            if candidates.is_empty() {
                let rule = if affinity.is_some() { " and satisfies the server's affinity" } else { "" };
                return Err(ApiError::conflict(format!(
                    "no other compute node in the placement has room for this server now{rule}; \
                     MOVE it later or to another placement_id"
                )));
            }
            Ok((candidates, None))
        }
        // The template to boot must be one the deployment has.
        TaskAction::Rebuild | TaskAction::Rescue if new.args.template_id.is_some() => {
            let templates = hv::list_templates().await?;
            validate::template(&templates, new.args.template_id.as_deref(), &server.spec, "template_id")?;
            Ok((Vec::new(), None))
        }
        _ => Ok((Vec::new(), None)),
    }
}

/// A live MOVE needs a running guest and a target its node can migrate
/// to; refused here, before a task exists, so the client learns at once
/// that only a cold MOVE can work.
fn check_live_move(nodes: &[vnext_core::hypervisor::ComputeNode], server: &ServerRecord, candidates: &mut Vec<String>) -> ApiResult<()> {
    const COLD: &str = "MOVE it cold (\"live\": false) instead";
    if server.virt_state == VirtState::Stopped {
        return Err(ApiError::conflict(format!("a live MOVE moves a running guest and this server is STOPPED; {COLD}")));
    }
    scheduler::retain_live_targets(nodes, server.compute_node_id.as_deref(), candidates).map_err(|why| {
        ApiError::conflict(match why {
            LiveMoveRefusal::SourceCannot => format!("this server's compute node cannot move servers live; {COLD}"),
            LiveMoveRefusal::NoTarget => format!(
                "no compute node this server could move to live has room for it in the placement now; {COLD}, or later"
            ),
        })
    })
}

async fn start(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let kv = Kv::open()?;
    let server = visible_server(&kv, ctx)?;
    let new = validate::task(&ctx.body)?;
    let row = transitions::get(new.action);
    // A current task cut off before it reached the hypervisor would block
    // the server forever: heal it first (a no-op for a healthy one).
    if let Some(current) = &server.current_task_id
        && let Some(task) = kv.get_json::<TaskRecord>(&keys::task(current))?
    {
        tasks::reconcile(&kv, &task).await?;
    }
    check_startable(&server, who, new.action)?;
    let (candidates, resize_to) = gather_inputs(&kv, who, &server, &new).await?;

    let now = time::now();
    let task_id = new_id();
    let immediate = row.items.is_empty();
    let mut from_state = server.virt_state;
    // Claim the server (or, for LOCK/UNLOCK, change it) on its freshest state.
    let claimed = kv.update_json(&keys::server(&server.id), |s: Option<ServerRecord>| {
        let mut s = s.ok_or_else(|| ApiError::not_found(format!("server {} was removed", server.id)))?;
        check_startable(&s, who, new.action)?;
        from_state = s.virt_state;
        match new.action {
            TaskAction::Lock => {
                s.locked = true;
                s.locked_by = Some(who.user_id.clone());
            }
            TaskAction::Unlock => {
                s.locked = false;
                s.locked_by = None;
            }
            _ => {
                s.current_task_id = Some(task_id.clone());
                if let Some(v) = row.while_running {
                    s.virt_state = v;
                }
            }
        }
        s.updated_at = now.clone();
        Ok(s)
    })?;
    let mut task = TaskRecord::new(task_id.clone(), &server, new.action, new.args.clone(), &who.user_id, row.items, &now, &mut new_id);
    task.from_virt_state = from_state;
    if immediate {
        task.state = TaskState::Completed;
    }
    task.resize_to = resize_to.clone();
    let resize_spec = resize_to.as_ref().map(|s| s.server_spec());
    let inputs = ActionInputs { server: &claimed, candidates, password: new.password.clone(), resize_spec };
    // Stored with the task (unless it holds a password) so a crash before
    // the submission can be healed by tasks::reconcile.
    let op = transitions::hypervisor_action(new.action, &task.args, inputs)?.map(|a| tasks::with_operation(&mut task, a));
    Index::new(&kv, keys::server_tasks_index(&server.id)).append(&task_id)?;
    kv.put_json(&keys::task(&task_id), &task)?;
    if let Some(op) = op {
        tasks::submit_or_abort(&kv, &task, op).await?;
    }
    Ok(Reply::json(202, &task_view(&task)).header("location", format!("/server_tasks/{task_id}")))
}
