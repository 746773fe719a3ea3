//! Reading the servers an affinity rule targets, for
//! `vnext_core::scheduler::affinity_nodes` (which states the rules).
//!
//! A launch checks every named id against what the caller may see and
//! reports the field (components/servers/src/affinity.rs); a MOVE re-applies
//! the rule stored on the server ([`stored_targets`]), where a target that
//! is gone simply no longer constrains anything.
//!
//! Tags are matched within the server's project by reading that project's
//! servers through its index (`keys::project_servers_index`): one read per
//! server of the project; a per-tag index would make it one per match, if
//! projects grow large.

use crate::index::{Index, Order};
use crate::kv::Kv;
use std::collections::{BTreeMap, BTreeSet};
use vnext_core::error::ApiResult;
use vnext_core::keys;
use vnext_core::model::{Affinity, ServerRecord};
use vnext_core::paging::{MAX_LIMIT, PageQuery};
use vnext_core::scheduler;

/// The project's servers carrying any of `tags`, page by page of its index.
pub fn tagged(kv: &Kv, project: &str, tags: &BTreeSet<&String>) -> ApiResult<Vec<ServerRecord>> {
    let index = Index::new(kv, keys::project_servers_index(project));
    let mut all = Vec::new();
    let mut q = PageQuery { limit: MAX_LIMIT, marker: None };
    loop {
        let (page, next) = index.list(
            Order::OldestFirst,
            &q,
            |id| keys::server(id),
            // Markers come from this walk itself.
            |_| true,
            |s: &ServerRecord| s.tags.iter().any(|t| tags.contains(t)),
            |s| &s.id,
        )?;
        all.extend(page);
        match next {
            Some(marker) => q.marker = Some(marker),
            None => return Ok(all),
        }
    }
}

/// The tags either side of `affinity` names.
pub fn tags_of(affinity: &Affinity) -> BTreeSet<&String> {
    affinity.near.server_tags.iter().chain(&affinity.not_near.server_tags).collect()
}

/// Every existing server `affinity` (stored on a server of `project`)
/// targets: the named ids that still exist, and the project's servers
/// carrying a named tag.
pub fn stored_targets(kv: &Kv, affinity: &Affinity, project: &str) -> ApiResult<Vec<ServerRecord>> {
    let ids = scheduler::affinity_target_ids(affinity);
    let key_list: Vec<String> = ids.iter().map(|id| keys::server(id)).collect();
    let mut targets: BTreeMap<String, ServerRecord> = BTreeMap::new();
    for record in kv.get_many::<ServerRecord>(&key_list)?.into_iter().flatten() {
        targets.insert(record.id.clone(), record);
    }
    let tags = tags_of(affinity);
    if !tags.is_empty() {
        for s in tagged(kv, project, &tags)? {
            targets.entry(s.id.clone()).or_insert(s);
        }
    }
    Ok(targets.into_values().collect())
}
