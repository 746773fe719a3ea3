//! A launch's affinity: reading the records of the servers each entry's
//! `affinity` targets, so `vnext_core::scheduler` (which states the rules:
//! hard filters, siblings are not targets) can turn them into node sets.
//!
//! Per request, before anything is written:
//! - each distinct target id is read once; one that does not exist or that
//!   the caller may not see is a 400 naming the field where it was given,
//!   `servers[i].affinity.near.server_ids[j]` when the entry sets its own
//!   affinity, `defaults.affinity.near.server_ids[j]` when it inherits it;
//! - if any entry names tags, the launching project's servers are read once
//!   (`vnext_guest::affinity::tagged`), keeping those that carry one.

use std::collections::{BTreeMap, BTreeSet};
use vnext_core::auth::Identity;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::keys;
use vnext_core::model::{Affinity, ServerRecord};
use vnext_core::scheduler::{self, AffinityNodes};
use vnext_core::validate::LaunchPlan;
use vnext_guest::affinity::{tagged, tags_of};
use vnext_guest::kv::Kv;

/// Where each plan's affinity targets run, in plan order (`None`: the entry
/// has no affinity). `body` is the (already validated) request body, read
/// only to tell an entry's own affinity from one inherited from `defaults`.
pub fn resolve(kv: &Kv, who: &Identity, project: &str, body: &[u8], plans: &[LaunchPlan]) -> ApiResult<Vec<Option<AffinityNodes>>> {
    if plans.iter().all(|p| p.affinity.is_none()) {
        return Ok(vec![None; plans.len()]);
    }
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let prefix = |i: usize| {
        // `"affinity": null` in an entry inherits the defaults, as validation does.
        let own = request["servers"][i].get("affinity").is_some_and(|v| !v.is_null());
        if own { format!("servers[{i}].affinity") } else { "defaults.affinity".to_string() }
    };
    let mut targets = by_id(kv, who, plans, prefix)?;
    let tags: BTreeSet<&String> = plans.iter().filter_map(|p| p.affinity.as_ref()).flat_map(tags_of).collect();
    if !tags.is_empty() {
        for s in tagged(kv, project, &tags)? {
            targets.entry(s.id.clone()).or_insert(s);
        }
    }
    let records: Vec<ServerRecord> = targets.into_values().collect();
    Ok(plans.iter().map(|p| p.affinity.as_ref().map(|a| scheduler::affinity_nodes(a, &records, project, None))).collect())
}

/// The records of every server id named by any plan, checked visible.
fn by_id(kv: &Kv, who: &Identity, plans: &[LaunchPlan], prefix: impl Fn(usize) -> String) -> ApiResult<BTreeMap<String, ServerRecord>> {
    // The first place each id was given, for the error.
    let mut named: BTreeMap<&str, String> = BTreeMap::new();
    for (i, p) in plans.iter().enumerate() {
        let Some(a) = &p.affinity else { continue };
        for (side, target) in sides(a) {
            for (j, id) in target.server_ids.iter().enumerate() {
                named.entry(id.as_str()).or_insert_with(|| format!("{}.{side}.server_ids[{j}]", prefix(i)));
            }
        }
    }
    let ids: Vec<&str> = named.keys().copied().collect();
    let key_list: Vec<String> = ids.iter().map(|id| keys::server(id)).collect();
    let mut found = BTreeMap::new();
    for (id, record) in ids.iter().zip(kv.get_many::<ServerRecord>(&key_list)?) {
        match record {
            Some(s) if who.can_act_in(&s.project_id) => {
                found.insert(id.to_string(), s);
            }
            // Another project's server is reported exactly like a missing one.
            _ => {
                return Err(ApiError::bad_request(format!(
                    "no server {id} visible to you; affinity can only name servers you can see"
                ))
                .field(named[id].clone()));
            }
        }
    }
    Ok(found)
}

fn sides(a: &Affinity) -> [(&'static str, &vnext_core::model::AffinityTarget); 2] {
    [("near", &a.near), ("not_near", &a.not_near)]
}
