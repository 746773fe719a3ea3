//! Choosing compute nodes for a server: a pure function of the inventory.
//!
//! Candidates are the enabled nodes that belong to the requested placement
//! or any placement below it, and whose free capacity fits the spec; best
//! first (most free memory, then lowest id so the order is deterministic).
//! The adapter claims capacity on the first candidate that still has room
//! when SCHEDULING runs, so racing launches cannot over-commit a node.
//!
//! Placements form a DAG (a placement may have several parents): "below"
//! means reachable through `parent_ids` links in reverse.

use crate::error::{ApiError, ApiResult};
use crate::hypervisor::{ComputeNode, Placement, ServerSpec};
use crate::model::Affinity;
use std::collections::{BTreeSet, VecDeque};

/// The ids of `root` and every placement below it. Unknown `root`: empty.
pub fn subtree(placements: &[Placement], root: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    if !placements.iter().any(|p| p.id == root) {
        return found;
    }
    let mut queue = VecDeque::from([root.to_string()]);
    while let Some(id) = queue.pop_front() {
        if !found.insert(id.clone()) {
            continue; // reached twice through two parents, or a cycle
        }
        for child in placements.iter().filter(|p| p.parent_ids.contains(&id)) {
            queue.push_back(child.id.clone());
        }
    }
    found
}

/// 400 naming `field` unless `id` (when given) is a placement of the deployment.
pub fn check_placement(placements: &[Placement], id: Option<&str>, field: &str) -> ApiResult<()> {
    match id {
        Some(id) if !placements.iter().any(|p| p.id == id) => {
            Err(ApiError::bad_request(format!("no placement {id} in this deployment")).field(field))
        }
        _ => Ok(()),
    }
}

/// Candidate node ids for `spec`, best first. `placement`: restrict to its
/// subtree (the caller checks the placement exists). `affinity` is accepted
/// for the API's shape and not applied yet (a later issue).
pub fn candidates(
    nodes: &[ComputeNode],
    placements: &[Placement],
    spec: &ServerSpec,
    placement: Option<&str>,
    _affinity: Option<&Affinity>,
) -> Vec<String> {
    let allowed = placement.map(|p| subtree(placements, p));
    let need = spec.resources();
    let mut fit: Vec<&ComputeNode> = nodes
        .iter()
        .filter(|n| n.enabled)
        .filter(|n| n.usage.fits(&need, &n.capacity))
        .filter(|n| match &allowed {
            Some(set) => n.placement_ids.iter().any(|p| set.contains(p)),
            None => true,
        })
        .collect();
    let free_memory = |n: &ComputeNode| n.capacity.memory_mb.saturating_sub(n.usage.memory_mb);
    fit.sort_by(|a, b| free_memory(b).cmp(&free_memory(a)).then_with(|| a.id.cmp(&b.id)));
    fit.into_iter().map(|n| n.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::Resources;

    fn placement(id: &str, parents: &[&str]) -> Placement {
        Placement {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            parent_ids: parents.iter().map(|p| p.to_string()).collect(),
            properties: vec![],
            tags: vec![],
        }
    }

    fn node(id: &str, placement: &str, free_mb: u64, enabled: bool) -> ComputeNode {
        ComputeNode {
            id: id.into(),
            hostname: format!("host-{id}"),
            placement_ids: vec![placement.into()],
            capacity: Resources { memory_mb: 4096, cpu_units: 4, disk_gb: 100 },
            usage: Resources { memory_mb: 4096 - free_mb, cpu_units: 0, disk_gb: 0 },
            console_types: vec![],
            enabled,
        }
    }

    fn spec(memory_mb: u64) -> ServerSpec {
        ServerSpec { memory_mb, root_disk_gb: 10, cpu_units: 1, swap_mb: 0 }
    }

    fn tree() -> Vec<Placement> {
        // region -> {az1, az2}; rack is below both az1 and az2 (overlap).
        vec![placement("region", &[]), placement("az1", &["region"]), placement("az2", &["region"]),
             placement("rack", &["az1", "az2"]), placement("other", &[])]
    }

    #[test]
    fn subtree_follows_multiple_parents_once() {
        let t = tree();
        assert_eq!(subtree(&t, "az2"), BTreeSet::from(["az2".to_string(), "rack".to_string()]));
        assert_eq!(subtree(&t, "region").len(), 4);
        assert!(subtree(&t, "missing").is_empty());
    }

    #[test]
    fn unknown_placements_are_400_naming_the_field() {
        assert!(check_placement(&tree(), Some("rack"), "placement_id").is_ok());
        assert!(check_placement(&tree(), None, "placement_id").is_ok());
        let e = check_placement(&tree(), Some("moon"), "servers[0].placement_id").unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (400, Some("servers[0].placement_id")));
    }

    #[test]
    fn most_free_memory_first_ties_by_id() {
        let nodes = vec![node("b", "az1", 1000, true), node("a", "az1", 1000, true), node("c", "az1", 3000, true)];
        assert_eq!(candidates(&nodes, &tree(), &spec(512), None, None), ["c", "a", "b"]);
    }

    #[test]
    fn disabled_full_and_outside_nodes_are_left_out() {
        let nodes = vec![
            node("off", "rack", 4000, false),
            node("full", "rack", 100, true),
            node("out", "other", 4000, true),
            node("in", "rack", 1000, true),
        ];
        assert_eq!(candidates(&nodes, &tree(), &spec(512), Some("az1"), None), ["in"]);
        assert!(candidates(&nodes, &tree(), &spec(8192), None, None).is_empty());
    }
}
