//! `PATCH /servers/{id}`: rename (`hostname`) and transfer (`project_id`).
//!
//! Hostnames are unique per project through claim records
//! (`keys::hostname`), so both changes are "claim the new name, move the
//! record, release the old name":
//!
//! 1. claim `hostname` in the target project with compare-and-swap (400 if
//!    another server holds it; nothing has changed yet);
//! 2. update the server record with compare-and-swap, re-checking the lock
//!    and that nobody renamed or moved it meanwhile (on failure the new
//!    claim is released again, so a refused PATCH leaves nothing behind);
//! 3. release the old claim, and on a transfer move the id from the old
//!    project's list index to the new one. It is removed from the old one
//!    first: project lists show what their index holds, so a failure in
//!    between may leave it out of a list but never shows it to the project
//!    it left.
//!
//! A transferred server keeps its task history: task visibility follows
//! the server's current project (`records::visible_task`). In the new
//! project's list it sorts by the time of the transfer (indexes keep
//! insertion order).

use vnext_core::auth::Identity;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::keys;
use vnext_core::model::ServerRecord;
use vnext_core::{time, validate};
use vnext_guest::index::Index;
use vnext_guest::kv::Kv;
use vnext_guest::claims::{self, Claim};
use vnext_guest::records;
use vnext_guest::web::{Ctx, Reply};

/// What the lock check calls this change in its 409.
const LOCKED_WHAT: &str = "rename or transfer it";

pub fn patch(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let p = validate::server_patch(&ctx.body)?;
    let kv = Kv::open()?;
    let server = records::visible_server(&kv, who, ctx.param("server_id"))?;
    server.check_unlocked(who, LOCKED_WHAT)?;
    let project = p.project_id.clone().unwrap_or_else(|| server.project_id.clone());
    check_transfer(who, &server, &project)?;
    let hostname = p.hostname.clone().unwrap_or_else(|| server.hostname.clone());

    let old_claim = keys::hostname(&server.project_id, &server.hostname);
    let new_claim = keys::hostname(&project, &hostname);
    // Same key: a change of case only, or nothing at all; the claim stays.
    let moves_claim = new_claim != old_claim;
    let claimed = moves_claim && claim(&kv, &project, &hostname, &server.id)?;

    let now = time::now();
    let updated = kv.update_json(&keys::server(&server.id), |s: Option<ServerRecord>| {
        let mut s = s.ok_or_else(|| ApiError::not_found(format!("server {} is gone", server.id)))?;
        s.check_unlocked(who, LOCKED_WHAT)?;
        if s.project_id != server.project_id || s.hostname != server.hostname {
            return Err(ApiError::conflict("the server was renamed or transferred by someone else meanwhile; GET it and retry"));
        }
        s.hostname = hostname.clone();
        s.project_id = project.clone();
        s.updated_at = now.clone();
        Ok(s)
    });
    if let Err(e) = updated {
        if claimed {
            claims::release(&kv, &project, &hostname, &server.id)?;
        }
        return Err(e);
    }
    if moves_claim {
        claims::release(&kv, &server.project_id, &server.hostname, &server.id)?;
    }
    if project != server.project_id {
        Index::new(&kv, keys::project_servers_index(&server.project_id)).remove(&server.id)?;
        Index::new(&kv, keys::project_servers_index(&project)).append(&server.id)?;
    }
    Ok(Reply::empty(204))
}

/// A transfer needs membership in both projects (or admin). Development
/// tokens are scoped to one project, so for them it is admin-only.
fn check_transfer(who: &Identity, server: &ServerRecord, target: &str) -> ApiResult<()> {
    if target == server.project_id || (who.can_act_in(&server.project_id) && who.can_act_in(target)) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "moving a server to project {target} needs membership in both projects or an admin; your token is scoped to project {} only",
        who.project_id
    ))
    .field("project_id"))
}

/// Claims `hostname` in `project` for `server_id`. `Ok(true)` when this
/// call took the claim, `Ok(false)` when the server already held it; 400
/// when another server uses the name.
fn claim(kv: &Kv, project: &str, hostname: &str, server_id: &str) -> ApiResult<bool> {
    match claims::claim(kv, project, hostname, server_id)? {
        Claim::Created => Ok(true),
        Claim::AlreadyOurs => Ok(false),
        Claim::Taken => Err(ApiError::bad_request(format!(
            "hostname {hostname:?} is already used in project {project}; choose another"
        ))
        .field("hostname")),
    }
}
