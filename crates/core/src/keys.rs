//! THE key-value layout: every key the components read or write is built
//! here, one function per record kind, so the layout is written down once.
//!
//! All values are JSON. Ids are canonical UUIDs (see [`crate::ids`]), so a
//! key never has two spellings. Names and hostnames contain no `/`
//! (validation refuses it), so no key is ambiguous.
//!
//! | key | value |
//! |---|---|
//! | `server_type/{id}` | [`crate::model::ServerTypeRecord`] |
//! | `server_type_name/{name}` | [`NameClaim`] `{"id": ...}`: the name's owner |
//! | `server/{id}` | [`crate::model::ServerRecord`] |
//! | `project/{p}/hostname/{h}` | [`HostnameClaim`] `{"server_id": ...}` |
//! | `task/{id}` | [`crate::model::TaskRecord`], items embedded |
//! | `server/{id}/tasks` | [`IdList`]: the server's task ids, oldest first |
//!
//! Uniqueness (type names, hostnames) is a *claim* record created with
//! compare-and-swap on an absent key: whoever creates it owns the name, and
//! a second claimer sees it exists (400 duplicate). The owning record is
//! written after its claims, so a claim may briefly point to nothing; a
//! reader treats a dangling claim as absent, and a claim is released by
//! deleting it after its record is gone.
//!
//! Lists (later issue): collections are paged index records,
//! `index/{collection}/page/{n}` holding up to [`INDEX_PAGE_SIZE`] ids in
//! creation order plus `index/{collection}/head` with the last page number.
//! Appending is a CAS on the last page (or a new page plus a CAS on the
//! head), so listing reads O(page) records and never scans keys. Collection
//! names: `server_types`, `servers`, `project/{p}/servers`.
//! The per-server task list above is small and unpaged for the slice.

use serde::{Deserialize, Serialize};

/// Ids per index page (see module docs).
pub const INDEX_PAGE_SIZE: usize = 256;

pub fn server_type(id: &str) -> String {
    format!("server_type/{id}")
}

pub fn server_type_name(name: &str) -> String {
    format!("server_type_name/{name}")
}

pub fn server(id: &str) -> String {
    format!("server/{id}")
}

pub fn hostname(project_id: &str, hostname: &str) -> String {
    // Hostnames are case-insensitive (RFC 1123): claim the lowercase form.
    format!("project/{project_id}/hostname/{}", hostname.to_ascii_lowercase())
}

pub fn task(id: &str) -> String {
    format!("task/{id}")
}

pub fn server_tasks(server_id: &str) -> String {
    format!("server/{server_id}/tasks")
}

pub fn index_head(collection: &str) -> String {
    format!("index/{collection}/head")
}

pub fn index_page(collection: &str, page: u64) -> String {
    format!("index/{collection}/page/{page}")
}

/// Value of `server_type_name/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameClaim {
    pub id: String,
}

/// Value of `project/{p}/hostname/{h}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostnameClaim {
    pub server_id: String,
}

/// A list of ids (the per-server task list; later, index pages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdList {
    pub ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        assert_eq!(server_type("a"), "server_type/a");
        assert_eq!(server_type_name("m1.small"), "server_type_name/m1.small");
        assert_eq!(server("s"), "server/s");
        assert_eq!(task("t"), "task/t");
        assert_eq!(server_tasks("s"), "server/s/tasks");
        assert_eq!(index_page("project/p/servers", 3), "index/project/p/servers/page/3");
    }

    #[test]
    fn hostname_claims_ignore_case() {
        assert_eq!(hostname("p", "Web-1"), hostname("p", "web-1"));
        assert_eq!(hostname("p", "web-1"), "project/p/hostname/web-1");
    }

    #[test]
    fn a_server_record_and_its_task_list_differ_by_segment_count() {
        // Both start with `server/`; ids are UUIDs (no `/`), so only the
        // task list has a second segment.
        let id = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011";
        assert_eq!(server(id).matches('/').count(), 1);
        assert_eq!(server_tasks(id).matches('/').count(), 2);
    }
}
