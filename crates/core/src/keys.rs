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
//! | `server_type_name/{name}` | [`NameClaim`] `{"id": ...}`: the name's owner (`sha256:<hex>` of a long name) |
//! | `server/{id}` | [`crate::model::ServerRecord`] |
//! | `project/{p}/hostname/{h}` | [`HostnameClaim`] `{"server_id": ..., "claimed_at": ...}` |
//! | `task/{id}` | [`crate::model::TaskRecord`], items embedded |
//! | `index/{collection}/...` | the collection indexes of [`crate::index`] |
//! | `auth/keystone/{sha256 of token}` | [`crate::auth::keystone::CheckedToken`]: a cached token check |
//! | `auth/keystone-expiring/{YYYY-MM-DDTHH}` | the hashes of the cached tokens expiring in that hour |
//! | `auth/keystone-expiring` | the names of those buckets (so expired ones are deleted without a scan) |
//! | `auth/keystone-refused/{slot}` | [`crate::auth::keystone::RefusedToken`]: the last token Keystone refused in that slot |
//!
//! Uniqueness (type names, hostnames) is a *claim* record created with
//! compare-and-swap on an absent key: whoever creates it owns the name, and
//! a second claimer sees it exists (400 duplicate). The owning record is
//! written after its claims, so a claim may briefly point to nothing; a
//! reader treats a dangling claim as absent, and a claim is released by
//! deleting it after its record is gone.
//!
//! Lists never scan keys: every collection has an index (pages of ids,
//! see [`crate::index`]) kept by the writers with compare-and-swap.
//! Collections: [`SERVER_TYPES_INDEX`], [`SERVERS_INDEX`] (every server),
//! [`project_servers_index`] (a project's servers) and
//! [`server_tasks_index`] (a server's task history).

use serde::{Deserialize, Serialize};

/// Collection of every server type.
pub const SERVER_TYPES_INDEX: &str = "server_types";
/// Collection of every server (admin lists across projects).
pub const SERVERS_INDEX: &str = "servers";

pub fn server_type(id: &str) -> String {
    format!("server_type/{id}")
}

/// Spin's key-value keys are at most 256 bytes (crates/kv enforces the same).
pub const MAX_KEY_BYTES: usize = 256;

/// A name's claim. Names may be 255 characters, up to 1020 bytes of UTF-8,
/// so one whose key would pass [`MAX_KEY_BYTES`] is keyed by the SHA-256 of
/// the name instead (`server_type_name/sha256:<hex>`); shorter names keep
/// the readable key they always had.
pub fn server_type_name(name: &str) -> String {
    let key = format!("server_type_name/{name}");
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(name.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("server_type_name/sha256:{hex}")
}

/// A Keystone token check, cached; keyed by the SHA-256 (hex) of the token
/// so stored keys never reveal a usable token.
pub fn keystone_token(token_sha256_hex: &str) -> String {
    format!("auth/keystone/{token_sha256_hex}")
}

/// The cached Keystone tokens that expire in one hour (`YYYY-MM-DDTHH`).
pub fn keystone_tokens_expiring(hour: &str) -> String {
    format!("{KEYSTONE_EXPIRY_BUCKETS}/{hour}")
}

/// The negative cache of tokens Keystone refused: one record per slot
/// ([`crate::auth::keystone::refused_slot`]), so it never holds more than
/// [`crate::auth::keystone::REFUSED_SLOTS`] records, however many garbage
/// tokens are sent.
pub fn keystone_refused(slot: &str) -> String {
    format!("auth/keystone-refused/{slot}")
}

/// The hours that have a [`keystone_tokens_expiring`] bucket.
pub const KEYSTONE_EXPIRY_BUCKETS: &str = "auth/keystone-expiring";

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

/// Collection of one project's servers.
pub fn project_servers_index(project_id: &str) -> String {
    format!("project/{project_id}/servers")
}

/// Collection of one server's tasks (its history).
pub fn server_tasks_index(server_id: &str) -> String {
    format!("server/{server_id}/tasks")
}

pub fn index_head(collection: &str) -> String {
    format!("index/{collection}/head")
}

pub fn index_page(collection: &str, page: u64) -> String {
    format!("index/{collection}/page/{page}")
}

/// Which page of `collection` holds `id`.
pub fn index_at(collection: &str, id: &str) -> String {
    format!("index/{collection}/at/{id}")
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
    /// When the claim was made (RFC 3339); absent in claims written before
    /// claims had a time. Lets a claim whose server never got written be
    /// taken over later (`vnext_guest::claims`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<String>,
}

/// A list of ids (an index page).
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
        let long = "é".repeat(crate::validate::MAX_NAME_LEN);
        let key = server_type_name(&long);
        assert!(key.len() <= MAX_KEY_BYTES && key.starts_with("server_type_name/sha256:"), "{key}");
        assert_ne!(key, server_type_name(&"é".repeat(crate::validate::MAX_NAME_LEN - 1)), "distinct names, distinct keys");
        assert_eq!(server("s"), "server/s");
        assert_eq!(task("t"), "task/t");
        assert_eq!(index_page(&project_servers_index("p"), 3), "index/project/p/servers/page/3");
        assert_eq!(index_at(&server_tasks_index("s"), "t"), "index/server/s/tasks/at/t");
        assert_eq!(index_head(SERVERS_INDEX), "index/servers/head");
    }

    #[test]
    fn hostname_claims_ignore_case() {
        assert_eq!(hostname("p", "Web-1"), hostname("p", "web-1"));
        assert_eq!(hostname("p", "web-1"), "project/p/hostname/web-1");
    }
}
