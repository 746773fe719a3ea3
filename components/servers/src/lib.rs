//! Servers: launch (`POST /projects/{project}/servers`), `GET` and `HEAD
//! /servers/{id}`, `GET /projects/{project}/servers/{hostname}`; the other
//! single-server routes live in modules: [`patch`] (rename, transfer),
//! [`tags`], [`console`] (console log, console URIs, diagnostics).
//!
//! A launch validates the whole body first, resolves the server types, the
//! placement and the template (against the deployment's catalogue, when it
//! keeps one), asks the hypervisor for its inventory and schedules,
//! and only then claims the hostnames (compare-and-swap; released again if
//! any claim fails, so a 400 leaves nothing behind). Each server is stored
//! BUILDING with no power state yet (Nova's NOSTATE, shown as SHUTDOWN),
//! gets a CREATE task, and its spawn is submitted; what happens next
//! arrives as events. The answer is a bare array of `{id, hostname,
//! launched_at, _links}` in request order, as in the proposal.

mod affinity;
mod console;
mod list;
mod patch;
mod tags;

use std::collections::BTreeMap;
use vnext_core::auth::Identity;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::hypervisor::{ComputeNode, Placement};
use vnext_core::ids::{new_id, parse_id, parse_uuid, random_digit};
use vnext_core::keys::{self, HostnameClaim};
use vnext_core::model::{
    Networking, ServerRecord, ServerTypeRecord, TaskAction, TaskArgs, TaskRecord, VirtState, launch_result_view,
    power_state_str, server_view,
};
use vnext_core::routes::{self, Component};
use vnext_core::transitions::{self, ActionInputs};
use vnext_core::validate::{self, LaunchPlan};
use vnext_core::{scheduler, time};
use vnext_guest::index::{self, Index};
use vnext_guest::kv::Kv;
use vnext_guest::web::{Ctx, Reply};
use vnext_guest::claims::{self, Claim};
use vnext_guest::{hv, records, tasks};

/// Attempts at drawing a free hostname from a pattern before giving up.
const PATTERN_ATTEMPTS: usize = 5;

vnext_guest::http_component!(Component::Servers, route);

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match (ctx.route.rel, ctx.method.as_str()) {
        ("project_servers", "POST") => launch(&ctx).await,
        ("project_servers", "GET") => list::project_servers(&ctx),
        ("servers", "GET") => list::all_servers(&ctx),
        ("project_server", "GET") => by_hostname(&ctx),
        ("server", "GET") => show(&ctx).map(|(s, who)| Reply::json(200, &server_view(&s, &who))),
        ("server", "HEAD") => show(&ctx).map(|(s, _)| state_headers(&s)),
        ("server", "PATCH") => patch::patch(&ctx),
        ("server_tags" | "server_tag", _) => tags::route(&ctx),
        ("server_console_log", "GET") => console::console_log(&ctx).await,
        ("server_console", "GET") => console::console(&ctx).await,
        ("server_diagnostics", "GET") => console::diagnostics(&ctx).await,
        (rel, method) => Err(ApiError::internal(format!("{method} {rel} has no handler in servers"))),
    }
}

/// The server if the caller may see it (404 otherwise, never 403).
fn show(ctx: &Ctx) -> ApiResult<(ServerRecord, Identity)> {
    let who = ctx.who()?.clone();
    let server = records::visible_server(&Kv::open()?, &who, ctx.param("server_id"))?;
    Ok((server, who))
}

/// `GET /projects/{project}/servers/{hostname}` (hostnames ignore case).
fn by_hostname(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let (raw_project, hostname) = (ctx.param("project_id"), ctx.param("server_hostname"));
    let not_found = || ApiError::not_found(format!("no server {hostname:?} in project {raw_project} visible to you"));
    let project = parse_uuid(raw_project).ok_or_else(not_found)?;
    if !who.can_act_in(&project) {
        return Err(not_found());
    }
    let kv = Kv::open()?;
    let claim: HostnameClaim = kv.get_json(&keys::hostname(&project, hostname))?.ok_or_else(not_found)?;
    // A claim whose server is not written yet (launch in progress) is absent.
    let server: ServerRecord = kv.get_json(&keys::server(&claim.server_id))?.ok_or_else(not_found)?;
    Ok(Reply::json(200, &server_view(&server, who)))
}

/// `HEAD /servers/{id}`: both states as headers, always (the power state
/// as the views show it).
fn state_headers(s: &ServerRecord) -> Reply {
    Reply::empty(200)
        .header(routes::VIRT_STATE_HEADER, s.virt_state.as_str())
        .header(routes::POWER_STATE_HEADER, power_state_str(s.shown_power_state()))
}

/// Everything a launch needs to know before it writes anything.
struct Resolved {
    types: BTreeMap<String, ServerTypeRecord>,
    placements: Vec<Placement>,
    nodes: Vec<ComputeNode>,
}

async fn resolve(kv: &Kv, who: &Identity, plans: &[LaunchPlan]) -> ApiResult<Resolved> {
    let mut types = BTreeMap::new();
    for (i, p) in plans.iter().enumerate() {
        if types.contains_key(&p.type_id) {
            continue;
        }
        let t: Option<ServerTypeRecord> = kv.get_json(&keys::server_type(&p.type_id))?;
        let t = t.filter(|t| t.visible_to(who)).ok_or_else(|| {
            ApiError::bad_request(format!("no server type {} visible to you", p.type_id)).field(format!("servers[{i}].type_id"))
        })?;
        types.insert(p.type_id.clone(), t);
    }
    let placements = hv::list_placements().await?;
    for (i, p) in plans.iter().enumerate() {
        scheduler::check_placement(&placements, p.placement_id.as_deref(), &format!("servers[{i}].placement_id"))?;
    }
    let templates = hv::list_templates().await?;
    for (i, p) in plans.iter().enumerate() {
        validate::template(&templates, p.template_id.as_deref(), &types[&p.type_id].spec, &format!("servers[{i}].template_id"))?;
    }
    let nodes = hv::list_compute_nodes().await?;
    Ok(Resolved { types, placements, nodes })
}

/// Claims every hostname, drawing again from a pattern when a generated
/// name is taken. All or nothing: on failure the claims made are released.
fn claim_hostnames(kv: &Kv, project: &str, plans: &mut [LaunchPlan], ids: &[String]) -> ApiResult<()> {
    let mut claimed: Vec<(String, &String)> = Vec::new();
    let release = |claimed: &[(String, &String)]| {
        for (hostname, id) in claimed {
            // Best effort: a leftover claim is taken over once stale (vnext_guest::claims).
            let _ = claims::release(kv, project, hostname, id);
        }
    };
    for (i, (plan, id)) in plans.iter_mut().zip(ids).enumerate() {
        let mut attempt = 0;
        loop {
            match claims::claim(kv, project, &plan.hostname, id) {
                Ok(Claim::Created | Claim::AlreadyOurs) => {
                    claimed.push((plan.hostname.clone(), id));
                    break;
                }
                Ok(Claim::Taken) if plan.hostname_pattern.is_some() && attempt + 1 < PATTERN_ATTEMPTS => {
                    attempt += 1;
                    let pattern = plan.hostname_pattern.clone().unwrap_or_default();
                    let field = format!("servers[{i}].hostname_pattern");
                    plan.hostname = validate::hostname_pattern(&field, &pattern, &mut random_digit)?;
                }
                Ok(Claim::Taken) => {
                    release(&claimed);
                    return Err(ApiError::bad_request(format!(
                        "hostname {:?} is already used in project {project}; choose another",
                        plan.hostname
                    ))
                    .field(format!("servers[{i}].hostname")));
                }
                Err(e) => {
                    release(&claimed);
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

async fn launch(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let raw = ctx.param("project_id");
    let project = parse_id("project_id", raw).map_err(|_| ApiError::not_found(format!("no project {raw}")))?;
    if !who.can_act_in(&project) {
        return Err(ApiError::forbidden(format!(
            "your token is scoped to project {}; launch servers in your own project",
            who.project_id
        )));
    }
    let mut plans = validate::launch(&ctx.body, &mut random_digit)?;
    let kv = Kv::open()?;
    let mut resolved = resolve(&kv, who, &plans).await?;
    let affinity = affinity::resolve(&kv, who, &project, &ctx.body, &plans)?;
    let ids: Vec<String> = plans.iter().map(|_| new_id()).collect();
    claim_hostnames(&kv, &project, &mut plans, &ids)?;

    // Listed in launch order, with one page write per index for the batch.
    Index::new(&kv, keys::SERVERS_INDEX).append_many(&ids)?;
    Index::new(&kv, keys::project_servers_index(&project)).append_many(&ids)?;

    let now = time::now();
    let create = transitions::get(TaskAction::Create);
    let mut started = Vec::with_capacity(plans.len());
    for ((plan, id), affinity) in plans.into_iter().zip(ids).zip(affinity) {
        let spec = resolved.types[&plan.type_id].spec.clone();
        // No qualifying node: the CREATE task is aborted with the reason
        // (see vnext_core::scheduler), never submitted with no candidates.
        let scheduled = scheduler::schedule(
            &resolved.nodes,
            &resolved.placements,
            &spec.server_spec(),
            plan.placement_id.as_deref(),
            affinity.as_ref(),
        );
        let candidates = scheduled.clone().unwrap_or_default();
        if let Some(first) = candidates.first() {
            scheduler::reserve(&mut resolved.nodes, first, &spec.server_spec());
        }
        // Shown as the server's placement until SCHEDULING reports the node
        // the adapter took (the first candidate, unless another launch
        // filled it meanwhile).
        let predicted_placement = candidates
            .first()
            .and_then(|id| resolved.nodes.iter().find(|n| &n.id == id))
            .and_then(|n| n.placement_ids.first().cloned());
        let task_id = new_id();
        let server = ServerRecord {
            id: id.clone(),
            hostname: plan.hostname,
            project_id: project.clone(),
            launched_by: who.user_id.clone(),
            launched_at: now.clone(),
            launch_keypair_id: plan.keypair_id,
            template_id: plan.template_id,
            type_id: plan.type_id,
            placement_id: plan.placement_id,
            power_state: None,
            virt_state: create.while_running.unwrap_or(VirtState::Building),
            spec,
            block_devices: Vec::new(),
            networking: Networking::default(),
            properties: BTreeMap::new(),
            tags: Default::default(),
            locked: false,
            updated_at: now.clone(),
            locked_by: None,
            compute_node_id: None,
            compute_node_hostname: None,
            elevated_properties: BTreeMap::new(),
            current_task_id: Some(task_id.clone()),
            user_data: plan.user_data,
            affinity: plan.affinity,
            node_placement_id: predicted_placement,
            reclaimed_at: None,
        };
        let mut task = TaskRecord::new(task_id.clone(), &server, TaskAction::Create, TaskArgs::default(), &who.user_id,
            create.items, &now, &mut new_id);
        let inputs = ActionInputs { server: &server, candidates, password: None, resize_spec: None };
        let action = transitions::hypervisor_action(TaskAction::Create, &task.args, inputs)?
            .ok_or_else(|| ApiError::internal("CREATE has no hypervisor action; report this"))?;
        // Stored with the task so a crash before the submission below can
        // be healed (vnext_guest::tasks::reconcile); not for a server no
        // node can take, which must never be submitted.
        let op = tasks::with_operation(&mut task, action);
        if scheduled.is_err() {
            task.operation = None;
        }
        started.push((server, task, op, scheduled.err()));
    }

    // One write per kind of record for the whole batch. Index entries
    // before records: an id whose record is not written yet is skipped by
    // lists, while a record missing from its index would be lost to them.
    let mut pages = Vec::with_capacity(started.len());
    let mut positions = Vec::with_capacity(started.len());
    for (server, task, _, _) in &started {
        let history = index::new_collection(&keys::server_tasks_index(&server.id), std::slice::from_ref(&task.id))?;
        pages.push(history.page);
        positions.extend(history.positions);
    }
    kv.put_many(&pages)?;
    kv.put_many(&positions)?;
    let records: Vec<(String, &ServerRecord)> = started.iter().map(|(s, ..)| (keys::server(&s.id), s)).collect();
    kv.put_many(&records)?;
    let records: Vec<(String, &TaskRecord)> = started.iter().map(|(_, t, ..)| (keys::task(&t.id), t)).collect();
    kv.put_many(&records)?;

    // Submitted once every record exists, so no event can arrive early;
    // in one call, so the adapter records them all before any starts.
    let (schedulable, unschedulable): (Vec<_>, Vec<_>) = started.iter().partition(|(.., reason)| reason.is_none());
    for (_, task, _, reason) in unschedulable {
        let reason = reason.as_deref().unwrap_or_default();
        tasks::abort(&kv, task, format!("no compute node qualifies: {reason}"))?;
    }
    let ops = schedulable.iter().map(|(_, _, op, _)| op.clone()).collect();
    for ((_, task, _, _), result) in schedulable.iter().zip(hv::submit_many(ops).await) {
        if let Err(e) = result {
            tasks::abort(&kv, task, format!("the operation could not be submitted: {}", e.message))?;
        }
    }
    let views: Vec<_> = started.iter().map(|(server, ..)| launch_result_view(server)).collect();
    // A bare array, as the proposal answers a launch.
    Ok(Reply::json(202, &views))
}
