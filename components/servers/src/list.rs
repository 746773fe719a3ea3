//! The two server lists: `GET /projects/{project}/servers` and
//! `GET /servers`, with `limit`/`marker`, `since` (launched at or after),
//! `changes_since` (changed at or after), `virt_state`, `power_state`,
//! `launched_by` and `tag` (repeatable, OR within one filter, AND across
//! filters), and for `/servers` `project`.
//!
//! As in the proposal, a list without a state filter shows the servers that
//! are up: `virt_state=ACTIVE` and `power_state=RUNNING`. A request that
//! names either state filter gets exactly the state filters it names (so
//! `?virt_state=STOPPED` finds stopped servers, whose power state is not
//! RUNNING), and `ANY` as a value drops that filter: `?virt_state=ANY` lists
//! servers in every state.
//!
//! Both read a collection index (`vnext_core::index`): a project's list
//! its project index, `/servers` the caller's project index, or, for an
//! admin, the index of every server (or the one project named). Items are
//! the summary view (no networking, no block devices).
//!
//! Non-admins see their own project only: naming another project or
//! another user in a filter is 400 (the spec's rule; a 404 would suggest
//! the filter was fine and the data absent).

use vnext_core::auth::Identity;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::ids::{parse_id, parse_uuid};
use vnext_core::keys;
use vnext_core::hypervisor::PowerState;
use vnext_core::model::{ServerRecord, VirtState, parse_power_state, server_summary_view};
use vnext_core::paging::{self, PageQuery, TimeFilters};
use vnext_core::validate;
use vnext_guest::index::{Index, Order};
use vnext_guest::kv::Kv;
use vnext_guest::web::{Ctx, Reply};

/// The filters every server list takes.
const FILTERS: &[&str] = &["since", "changes_since", "virt_state", "power_state", "launched_by", "tag"];

/// A parsed filter set; an empty list means "any".
struct Filters {
    times: TimeFilters,
    virt: Vec<VirtState>,
    power: Vec<PowerState>,
    launched_by: Vec<String>,
    tags: Vec<String>,
    projects: Vec<String>,
}

impl Filters {
    fn parse(ctx: &Ctx, who: &Identity) -> ApiResult<Self> {
        let q = &ctx.query;
        let values = |name: &'static str| q.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str());
        let ids = |name: &'static str| -> ApiResult<Vec<String>> { values(name).map(|v| parse_id(name, v)).collect() };
        let launched_by = ids("launched_by")?;
        if !who.admin {
            if let Some(other) = launched_by.iter().find(|u| **u != who.user_id) {
                return Err(ApiError::bad_request(format!(
                    "launched_by {other} is not you; without admin rights you may filter on your own user id only"
                ))
                .field("launched_by"));
            }
        }
        let tags: Vec<String> = values("tag").map(str::to_string).collect();
        for t in &tags {
            validate::tag("tag", t)?;
        }
        let (mut virt, mut power) = (state_filter(q, "virt_state", VirtState::parse, VirtState::names())?,
            state_filter(q, "power_state", parse_power_state, power_state_names())?);
        // The proposal's defaults, only when no state filter is named.
        if virt.is_none() && power.is_none() {
            virt = Some(vec![VirtState::Active]);
            power = Some(vec![PowerState::Running]);
        }
        Ok(Filters {
            times: paging::time_filters(q)?,
            virt: virt.unwrap_or_default(),
            power: power.unwrap_or_default(),
            launched_by,
            tags,
            projects: ids("project")?,
        })
    }

    fn keep(&self, s: &ServerRecord) -> bool {
        self.times.keep(Some(&s.launched_at), &s.updated_at)
            && (self.virt.is_empty() || self.virt.contains(&s.virt_state))
            && (self.power.is_empty() || self.power.contains(&s.shown_power_state()))
            && (self.launched_by.is_empty() || self.launched_by.contains(&s.launched_by))
            && (self.tags.is_empty() || self.tags.iter().any(|t| s.tags.contains(t)))
            && (self.projects.is_empty() || self.projects.contains(&s.project_id))
    }
}

/// A state filter: `None` when not given, an empty list for `ANY` (any
/// state), else the states named; an unknown value, even beside `ANY`, is
/// 400 listing the accepted ones, `ANY` included.
fn state_filter<T>(q: &[(String, String)], name: &str, parse: fn(&str) -> Option<T>, mut names: Vec<&str>) -> ApiResult<Option<Vec<T>>> {
    let values: Vec<&str> = q.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect();
    if values.is_empty() {
        return Ok(None);
    }
    names.push(paging::ANY_STATE);
    let mut states = Vec::new();
    for v in values.iter().filter(|v| **v != paging::ANY_STATE) {
        states.push(parse(v).ok_or_else(|| {
            ApiError::bad_request(format!("unknown {name} {v:?}; use one of {}", names.join(", "))).field(name)
        })?);
    }
    Ok(Some(if values.contains(&paging::ANY_STATE) { Vec::new() } else { states }))
}

fn power_state_names() -> Vec<&'static str> {
    use vnext_core::model::power_state_str;
    [PowerState::Running, PowerState::Paused, PowerState::Shutdown, PowerState::Crashed, PowerState::Suspended]
        .into_iter()
        .map(power_state_str)
        .collect()
}

/// Renders one page of `collection` kept by `filters`.
fn page(ctx: &Ctx, who: &Identity, q: &PageQuery, collection: String, filters: &Filters, base: &str) -> ApiResult<Reply> {
    let kv = Kv::open()?;
    let index = Index::new(&kv, collection);
    let visible = |s: &ServerRecord| who.can_act_in(&s.project_id);
    let (servers, next) =
        index.list(Order::OldestFirst, q, |id| keys::server(id), visible, |s: &ServerRecord| filters.keep(s), |s| s.id.as_str())?;
    let views = servers.iter().map(|s| server_summary_view(s, who)).collect();
    Ok(Reply::json(200, &paging::collection("servers", views, base, &ctx.query, next)))
}

/// `/servers` also takes `project`.
const ALL_FILTERS: &[&str] = &["since", "changes_since", "virt_state", "power_state", "launched_by", "tag", "project"];

/// `GET /projects/{project}/servers`.
pub fn project_servers(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let raw = ctx.param("project_id");
    let not_found = || ApiError::not_found(format!("no project {raw} visible to you"));
    let project = parse_uuid(raw).ok_or_else(not_found)?;
    if !who.can_act_in(&project) {
        return Err(not_found());
    }
    let q = paging::page_query(&ctx.query, FILTERS)?;
    let mut filters = Filters::parse(ctx, who)?;
    // Second line of defence: a project's index only ever shows that
    // project's servers, even if a transfer left a stale entry behind.
    filters.projects = vec![project.clone()];
    page(ctx, who, &q, keys::project_servers_index(&project), &filters, &format!("/projects/{project}/servers"))
}

/// `GET /servers`: the caller's project, or for admins every project (or
/// those named by `project`).
pub fn all_servers(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let q = paging::page_query(&ctx.query, ALL_FILTERS)?;
    let mut filters = Filters::parse(ctx, who)?;
    if !who.admin {
        if let Some(other) = filters.projects.iter().find(|p| **p != who.project_id) {
            return Err(ApiError::bad_request(format!(
                "project {other} is not your project; without admin rights you may list project {} only",
                who.project_id
            ))
            .field("project"));
        }
        filters.projects = vec![who.project_id.clone()];
        return page(ctx, who, &q, keys::project_servers_index(&who.project_id), &filters, "/servers");
    }
    match filters.projects.as_slice() {
        // One project: its own index is the shorter walk.
        [one] => {
            let collection = keys::project_servers_index(one);
            page(ctx, who, &q, collection, &filters, "/servers")
        }
        _ => page(ctx, who, &q, keys::SERVERS_INDEX.to_string(), &filters, "/servers"),
    }
}
