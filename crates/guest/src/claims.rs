//! Hostname claims: `project/{p}/hostname/{h}` holds the id of the server
//! that uses a hostname in a project, created with compare-and-swap so two
//! launches or renames cannot both take one name.
//!
//! A launch claims its hostnames before it writes the servers; a crash in
//! between (or a failure that could not release them) would leave a claim
//! whose server never existed, blocking that name for good. So a claim
//! whose server record does not exist and that is older than
//! [`STALE_CLAIM_AFTER`] (far longer than any request may run) is taken
//! over, again with compare-and-swap. A younger one may belong to a launch
//! still in progress and is respected.

use crate::kv::Kv;
use std::time::Duration;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::keys::{self, HostnameClaim};
use vnext_core::model::ServerRecord;
use vnext_core::time;

/// Age after which a claim without its server is abandoned.
pub const STALE_CLAIM_AFTER: Duration = Duration::from_secs(300);

/// What [`claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The claim is now this server's (new, or taken over from a stale one).
    Created,
    /// This server held it already.
    AlreadyOurs,
    /// Another server uses the name.
    Taken,
}

fn stale(claim: &HostnameClaim) -> bool {
    // Claims written before claims had a time are older than this code.
    let Some(at) = claim.claimed_at.as_deref().and_then(time::parse) else { return true };
    std::time::SystemTime::now().duration_since(at).is_ok_and(|age| age >= STALE_CLAIM_AFTER)
}

/// Claims `hostname` in `project` for `server_id`.
pub fn claim(kv: &Kv, project: &str, hostname: &str, server_id: &str) -> ApiResult<Claim> {
    let key = keys::hostname(project, hostname);
    let mine = HostnameClaim { server_id: server_id.to_string(), claimed_at: Some(time::now()) };
    if kv.create_json(&key, &mine)? {
        return Ok(Claim::Created);
    }
    let Some(held) = kv.get_json::<HostnameClaim>(&key)? else {
        // Released meanwhile: try once more, as if new.
        return Ok(if kv.create_json(&key, &mine)? { Claim::Created } else { Claim::Taken });
    };
    if held.server_id == server_id {
        return Ok(Claim::AlreadyOurs);
    }
    if !stale(&held) || kv.get_json::<ServerRecord>(&keys::server(&held.server_id))?.is_some() {
        return Ok(Claim::Taken);
    }
    let mut lost = false;
    let taken_over = kv.update_json(&key, |current: Option<HostnameClaim>| match current {
        Some(c) if c != held => {
            lost = true;
            Err(ApiError::conflict("the hostname claim changed"))
        }
        _ => Ok(mine.clone()),
    });
    match taken_over {
        Ok(_) => {
            eprintln!("hostname {hostname:?} in project {project}: took over a stale claim of {}", held.server_id);
            Ok(Claim::Created)
        }
        Err(_) if lost => Ok(Claim::Taken),
        Err(e) => Err(e),
    }
}

/// Deletes the claim on `hostname` if it is still `server_id`'s.
pub fn release(kv: &Kv, project: &str, hostname: &str, server_id: &str) -> ApiResult<()> {
    let key = keys::hostname(project, hostname);
    if kv.get_json::<HostnameClaim>(&key)?.is_some_and(|c| c.server_id == server_id) {
        kv.delete(&key)?;
    }
    Ok(())
}
