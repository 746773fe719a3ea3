//! Choosing compute nodes for a server: a pure function of the inventory
//! and of where the server's affinity targets run.
//!
//! Candidates are the enabled nodes that belong to the requested placement
//! or any placement below it, that satisfy the affinity, and whose free
//! capacity fits the spec; best first (most free memory, then lowest id so
//! the order is deterministic). The adapter claims capacity on the first
//! candidate that still has room when SCHEDULING runs, so racing launches
//! cannot over-commit a node.
//!
//! Placements form a DAG (a placement may have several parents): "below"
//! means reachable through `parent_ids` links in reverse.
//!
//! # Affinity
//!
//! `affinity` replaces Nova's `same_host` / `different_host` scheduler
//! hints and, like them, is a **hard** filter:
//!
//! - `near`: only nodes hosting at least one `near` target qualify. When
//!   `near` names servers by id and none of them runs on a node (not placed
//!   yet, terminated or offloaded), nothing qualifies, as with Nova's
//!   `same_host`. When it names only tags and no server carrying one runs
//!   on a node (the first server of a group), it constrains nothing: the
//!   server is placed freely, as the first member of a Nova affinity group,
//!   and the next ones join it (the proposal's own launch example).
//! - `not_near`: nodes hosting any `not_near` target are left out.
//!
//! A target is a server named in `server_ids`, or a server of the launching
//! project carrying any of `server_tags`; the server being scheduled is
//! never its own target. A target "runs on" its `compute_node_id` unless it
//! is TERMINATED or SHELVED_OFFLOADED (the record keeps the last node, but
//! the server no longer occupies it). [`affinity_nodes`] turns the target
//! records into node sets; the components read the records (ids from
//! [`affinity_target_ids`], tags from the project's server index).
//!
//! Hard, not soft, because a soft hint that is silently ignored is
//! indistinguishable from a bug to the caller, and Nova's hints are hard.
//! When nothing qualifies, the launch still answers 202 and the server's
//! CREATE task is ABORTED with the reason from [`schedule`] (the server goes
//! to ERROR, like Nova's NoValidHost): the spec says a server's failure to
//! launch shows in its state and tasks, and whether a node qualifies
//! depends on capacity and on where other servers run, which changes
//! independently of the request. What the request itself gets wrong (a
//! target id that is unknown or not visible to the caller) is a 400 at
//! launch, before anything is written.
//!
//! Servers launched in the same request are not targets of each other:
//! their ids are only known from the response and they carry no tags yet,
//! so no sibling can match. To spread a group, launch its members with
//! `not_near` naming the ones already placed (or a tag they carry).
//!
//! Error messages never name compute nodes: task errors are read by every
//! project member, and nodes are for operators.

use crate::error::{ApiError, ApiResult};
use crate::hypervisor::{ComputeNode, Placement, ServerSpec};
use crate::model::{Affinity, ServerRecord, VirtState};
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

/// Where a server's affinity targets run (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AffinityNodes {
    /// `Some` when `near` names any target: the nodes hosting one (possibly
    /// none, which leaves no candidate). `None`: no `near` constraint.
    pub near: Option<BTreeSet<String>>,
    /// Nodes hosting a `not_near` target.
    pub not_near: BTreeSet<String>,
}

/// The distinct server ids `affinity` names, both sides, in first-seen order:
/// the records a caller reads before [`affinity_nodes`].
pub fn affinity_target_ids(affinity: &Affinity) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let all = affinity.near.server_ids.iter().chain(&affinity.not_near.server_ids);
    all.filter(|id| seen.insert(id.as_str())).cloned().collect()
}

/// The node `server` occupies for affinity, if any.
fn occupied_node(server: &ServerRecord) -> Option<&str> {
    match server.virt_state {
        VirtState::Terminated | VirtState::ShelvedOffloaded => None,
        _ => server.compute_node_id.as_deref(),
    }
}

/// Resolves `affinity` against candidate target records: a record is a
/// target of a side if the side names its id, or if it belongs to `project`
/// and carries one of the side's tags. `self_id` (the server being
/// scheduled) is never a target. Duplicates in `servers` are harmless.
pub fn affinity_nodes(affinity: &Affinity, servers: &[ServerRecord], project: &str, self_id: Option<&str>) -> AffinityNodes {
    let nodes_of = |side: &crate::model::AffinityTarget| -> BTreeSet<String> {
        servers
            .iter()
            .filter(|s| Some(s.id.as_str()) != self_id)
            .filter(|s| {
                side.server_ids.contains(&s.id)
                    || (s.project_id == project && side.server_tags.iter().any(|t| s.tags.contains(t)))
            })
            .filter_map(occupied_node)
            .map(str::to_owned)
            .collect()
    };
    let near = nodes_of(&affinity.near);
    // Ids always constrain; tags only once a tagged server runs somewhere.
    let near_applies = !affinity.near.server_ids.is_empty() || !near.is_empty();
    AffinityNodes { near: near_applies.then_some(near), not_near: nodes_of(&affinity.not_near) }
}

/// Candidate node ids for `spec`, best first, or why there is none (a
/// message for the task's error). `placement`: restrict to its subtree (the
/// caller checks the placement exists). Filters apply in this order, and
/// the first one that empties the list names the reason: enabled, placement,
/// `affinity.near`, `affinity.not_near`, free capacity.
pub fn schedule(
    nodes: &[ComputeNode],
    placements: &[Placement],
    spec: &ServerSpec,
    placement: Option<&str>,
    affinity: Option<&AffinityNodes>,
) -> Result<Vec<String>, String> {
    let allowed = placement.map(|p| subtree(placements, p));
    let within = match placement {
        Some(p) => format!(" in placement {p}"),
        None => String::new(),
    };
    let mut fit: Vec<&ComputeNode> = nodes
        .iter()
        .filter(|n| n.enabled)
        .filter(|n| match &allowed {
            Some(set) => n.placement_ids.iter().any(|p| set.contains(p)),
            None => true,
        })
        .collect();
    if fit.is_empty() {
        return Err(format!("no enabled compute node{within}"));
    }
    if let Some(a) = affinity {
        if let Some(near) = &a.near {
            fit.retain(|n| near.contains(&n.id));
            if fit.is_empty() {
                return Err(format!(
                    "affinity.near: none of the target servers runs on an enabled compute node{within}; \
                     wait until a target is placed, or name other targets"
                ));
            }
        }
        fit.retain(|n| !a.not_near.contains(&n.id));
        if fit.is_empty() {
            return Err(format!(
                "affinity.not_near: every enabled compute node{within} that satisfies the affinity hosts a target server"
            ));
        }
    }
    let need = spec.resources();
    fit.retain(|n| n.usage.fits(&need, &n.capacity));
    if fit.is_empty() {
        let constrained = affinity.is_some_and(|a| a.near.is_some() || !a.not_near.is_empty());
        let which = if constrained { " that satisfies the affinity" } else { "" };
        return Err(format!(
            "no compute node{within}{which} has room for {} MB memory, {} CPU units, {} GB disk",
            need.memory_mb, need.cpu_units, need.disk_gb
        ));
    }
    let free_memory = |n: &ComputeNode| n.capacity.memory_mb.saturating_sub(n.usage.memory_mb);
    fit.sort_by(|a, b| free_memory(b).cmp(&free_memory(a)).then_with(|| a.id.cmp(&b.id)));
    Ok(fit.into_iter().map(|n| n.id.clone()).collect())
}

/// Counts `spec` on node `node_id` in this snapshot of the nodes: a launch
/// of several servers schedules them one after another, each seeing the
/// ones before it on the node the adapter will claim (the first candidate),
/// as Nova's filter scheduler updates its host states within a request.
/// Without it, servers launched together would all go to the same "best"
/// node.
pub fn reserve(nodes: &mut [ComputeNode], node_id: &str, spec: &ServerSpec) {
    if let Some(n) = nodes.iter_mut().find(|n| n.id == node_id) {
        let need = spec.resources();
        n.usage.memory_mb += need.memory_mb;
        n.usage.cpu_units += need.cpu_units;
        n.usage.disk_gb += need.disk_gb;
    }
}

/// [`schedule`] without the reason: empty when nothing qualifies.
pub fn candidates(
    nodes: &[ComputeNode],
    placements: &[Placement],
    spec: &ServerSpec,
    placement: Option<&str>,
    affinity: Option<&AffinityNodes>,
) -> Vec<String> {
    schedule(nodes, placements, spec, placement, affinity).unwrap_or_default()
}

/// Why a live MOVE cannot start, before any task is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMoveRefusal {
    /// The server's node belongs to no live-migration group.
    SourceCannot,
    /// No candidate shares the source's group.
    NoTarget,
}

/// Keeps the candidates a server on `source` can move to live: the nodes
/// of the source's live-migration group.
pub fn retain_live_targets(nodes: &[ComputeNode], source: Option<&str>, candidates: &mut Vec<String>) -> Result<(), LiveMoveRefusal> {
    let group_of = |id: &str| nodes.iter().find(|n| n.id == id).and_then(|n| n.live_migration_group.as_deref());
    let group = source.and_then(group_of).ok_or(LiveMoveRefusal::SourceCannot)?;
    candidates.retain(|c| group_of(c) == Some(group));
    if candidates.is_empty() { Err(LiveMoveRefusal::NoTarget) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::Resources;
    use crate::model::AffinityTarget;

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
            live_migration_group: None,
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

    /// A server `id` of project `project` on `node` (None: not placed yet).
    fn target(id: &str, project: &str, node: Option<&str>, tags: &[&str], state: VirtState) -> ServerRecord {
        let mut s = crate::model::tests::sample_server();
        s.id = id.into();
        s.project_id = project.into();
        s.compute_node_id = node.map(str::to_owned);
        s.tags = tags.iter().map(|t| t.to_string()).collect();
        s.virt_state = state;
        s
    }

    fn side(ids: &[&str], tags: &[&str]) -> AffinityTarget {
        AffinityTarget { server_ids: ids.iter().map(|i| i.to_string()).collect(), server_tags: tags.iter().map(|t| t.to_string()).collect() }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn affinity_targets_resolve_to_the_nodes_they_occupy() {
        use VirtState::*;
        let servers = vec![
            target("db1", "p", Some("n1"), &["db"], Active),
            target("db2", "p", Some("n2"), &["db"], Stopped),
            target("web1", "p", Some("n3"), &["web"], Active),
            target("gone", "p", Some("n4"), &["db"], Terminated),
            target("parked", "p", Some("n5"), &["db"], ShelvedOffloaded),
            target("new", "p", None, &["db"], Building),
            target("theirs", "q", Some("n6"), &["db"], Active),
            target("me", "p", Some("n7"), &["web"], Active),
        ];
        // (case, affinity, self id, expected near, expected not_near)
        type Case<'a> = (&'a str, Affinity, Option<&'a str>, Option<&'a [&'a str]>, &'a [&'a str]);
        let table: Vec<Case> = vec![
            ("nothing named: no constraint", Affinity::default(), None, None, &[]),
            ("near by id", Affinity { near: side(&["db1"], &[]), ..Default::default() }, None, Some(&["n1"]), &[]),
            ("near by tag: own project, placed, not terminated or offloaded",
                Affinity { near: side(&[], &["db"]), ..Default::default() }, None, Some(&["n1", "n2"]), &[]),
            ("an id of another project counts (the caller checked visibility)",
                Affinity { near: side(&["theirs"], &[]), ..Default::default() }, None, Some(&["n6"]), &[]),
            ("a tag never reaches another project",
                Affinity { not_near: side(&[], &["db"]), ..Default::default() }, None, None, &["n1", "n2"]),
            ("near ids not placed yet: an empty set, not no constraint",
                Affinity { near: side(&["new", "gone"], &[]), ..Default::default() }, None, Some(&[]), &[]),
            ("near tags no placed server carries: no constraint (the group's first server)",
                Affinity { near: side(&[], &["nosuch"]), ..Default::default() }, None, None, &[]),
            ("near ids and tags matching nothing placed: the ids still constrain",
                Affinity { near: side(&["new"], &["nosuch"]), ..Default::default() }, None, Some(&[]), &[]),
            ("ids and tags of both sides combine",
                Affinity { near: side(&["db1"], &["web"]), not_near: side(&["db2"], &[]) }, None, Some(&["n1", "n3", "n7"]), &["n2"]),
            ("the server being scheduled is not its own target",
                Affinity { not_near: side(&[], &["web"]), ..Default::default() }, Some("me"), None, &["n3"]),
        ];
        for (case, affinity, me, near, not_near) in table {
            let got = affinity_nodes(&affinity, &servers, "p", me);
            assert_eq!(got.near, near.map(set), "{case}");
            assert_eq!(got.not_near, set(not_near), "{case}");
        }
    }

    #[test]
    fn target_ids_are_both_sides_once_in_order() {
        let a = Affinity { near: side(&["a", "b"], &["t"]), not_near: side(&["b", "c"], &[]) };
        assert_eq!(affinity_target_ids(&a), ["a", "b", "c"]);
        assert!(affinity_target_ids(&Affinity::default()).is_empty());
    }

    #[test]
    fn affinity_filters_candidates_hard() {
        let nodes = vec![node("a", "az1", 3000, true), node("b", "az1", 2000, true), node("c", "az2", 1000, true),
                         node("off", "az1", 4000, false), node("full", "az1", 100, true)];
        let aff = |near: Option<&[&str]>, not_near: &[&str]| AffinityNodes { near: near.map(set), not_near: set(not_near) };
        // (case, placement, affinity, Ok(candidates) or Err(start of the reason))
        type Case<'a> = (&'a str, Option<&'a str>, AffinityNodes, Result<&'a [&'a str], &'a str>);
        let table: Vec<Case> = vec![
            ("no constraint keeps the usual order", None, aff(None, &[]), Ok(&["a", "b", "c"])),
            ("near keeps only nodes hosting a target", None, aff(Some(&["b", "c"]), &[]), Ok(&["b", "c"])),
            ("not_near drops nodes hosting a target", None, aff(None, &["a"]), Ok(&["b", "c"])),
            ("near and not_near combine", None, aff(Some(&["a", "b"]), &["a"]), Ok(&["b"])),
            ("near with nothing placed leaves nothing", None, aff(Some(&[]), &[]), Err("affinity.near: none of the target servers")),
            ("near on a disabled node leaves nothing", None, aff(Some(&["off"]), &[]), Err("affinity.near:")),
            ("near outside the placement leaves nothing", Some("az2"), aff(Some(&["a"]), &[]), Err("affinity.near:")),
            ("not_near on every node leaves nothing", Some("az2"), aff(None, &["c"]), Err("affinity.not_near: every enabled compute node in placement az2")),
            ("near on a full node: no room, said so", None, aff(Some(&["full"]), &[]), Err("no compute node that satisfies the affinity has room")),
        ];
        for (case, placement, affinity, want) in table {
            let got = schedule(&nodes, &tree(), &spec(512), placement, Some(&affinity));
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{case}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{case}: {got}"),
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
            assert!(!format!("{:?}", schedule(&nodes, &tree(), &spec(512), placement, Some(&affinity))).contains("host-"), "{case}: names a node");
        }
    }

    #[test]
    fn servers_scheduled_one_after_another_spread_over_equal_nodes() {
        let mut nodes = vec![node("a", "az1", 4096, true), node("b", "az1", 4096, true)];
        let mut chosen = Vec::new();
        for _ in 0..4 {
            let first = schedule(&nodes, &tree(), &spec(512), None, None).unwrap()[0].clone();
            reserve(&mut nodes, &first, &spec(512));
            chosen.push(first);
        }
        assert_eq!(chosen, ["a", "b", "a", "b"]);
        assert_eq!(nodes[0].usage.memory_mb, 1024);
    }

    #[test]
    fn no_candidate_says_why_without_naming_nodes() {
        let nodes = vec![node("off", "az1", 4000, false), node("small", "az1", 100, true)];
        assert_eq!(schedule(&nodes, &tree(), &spec(512), Some("az2"), None).unwrap_err(), "no enabled compute node in placement az2");
        assert_eq!(schedule(&nodes, &tree(), &spec(512), None, None).unwrap_err(),
            "no compute node has room for 512 MB memory, 1 CPU units, 10 GB disk");
        assert!(candidates(&nodes, &tree(), &spec(512), None, None).is_empty());
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

    #[test]
    fn live_targets_stay_in_the_source_group() {
        let grouped = |id: &str, g: Option<&str>| ComputeNode { live_migration_group: g.map(Into::into), ..node(id, "p", 1024, true) };
        let nodes = [grouped("a", Some("x")), grouped("b", Some("x")), grouped("c", Some("y")), grouped("d", None)];
        let mut all: Vec<String> = ["b", "c", "d"].map(String::from).to_vec();
        assert_eq!(retain_live_targets(&nodes, Some("a"), &mut all), Ok(()));
        assert_eq!(all, ["b"]);
        let mut others: Vec<String> = vec!["c".into(), "d".into()];
        assert_eq!(retain_live_targets(&nodes, Some("a"), &mut others), Err(LiveMoveRefusal::NoTarget));
        let mut any: Vec<String> = vec!["a".into()];
        assert_eq!(retain_live_targets(&nodes, Some("d"), &mut any), Err(LiveMoveRefusal::SourceCannot));
        assert_eq!(retain_live_targets(&nodes, None, &mut any), Err(LiveMoveRefusal::SourceCannot));
    }
}
