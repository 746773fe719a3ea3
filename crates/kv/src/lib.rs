//! Key-value capability of the vNext host: one trait, one backend per module.
//!
//! - [`Store`] is what a component's store handle talks to, whatever WIT
//!   interface the component used (`spin:key-value@3.0.0`,
//!   `fermyon:spin/key-value@2.0.0` or `wasi:keyvalue`): the bindings in the
//!   host crate translate each interface onto this one trait, so the three
//!   interfaces see the same data.
//! - [`sqlite`] is the embedded default, Spin's layout: one table
//!   `spin_key_value(store, key, value)` in `.spin/sqlite_key_value.db`.
//! - [`redis`] is the shared backend for many stateless hosts.
//! - [`StoreConfig`] is the typed runtime configuration
//!   (`[key_value_store.<label>]` in Spin's runtime config file) and
//!   [`Stores`] maps labels to opened backends.

pub mod redis;
pub mod sqlite;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

/// Largest key accepted, as hosted Spin platforms document.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value accepted, as hosted Spin platforms document.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Why a key-value operation failed. Mirrors the error variants the WIT
/// interfaces share, plus the backend's own failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No store with this label is configured.
    NoSuchStore(String),
    /// The component did not declare this label in `key_value_stores`.
    AccessDenied(String),
    /// The key or value breaks a documented limit.
    TooLarge(String),
    /// The backend cannot be reached or written right now (Redis down or
    /// silent, a full disk, a read-only file): retrying later may succeed.
    /// The message names the backend and the reason, never a path or an
    /// address, because it reaches API clients.
    Unavailable(String),
    /// The backend failed otherwise (corrupt data, a bug).
    Backend(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoSuchStore(l) => write!(f, "no key-value store labelled {l:?} is configured"),
            Error::AccessDenied(l) => write!(
                f,
                "key-value store {l:?} is not listed in the component's key_value_stores"
            ),
            Error::TooLarge(m) => write!(f, "{m}"),
            Error::Unavailable(m) => write!(f, "the key-value store is unavailable: {m}"),
            Error::Backend(m) => write!(f, "key-value backend error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One opened key-value store. Object-safe so bindings hold `Arc<dyn Store>`.
pub trait Store: Send + Sync {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>>;
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<()>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// Every key, in no particular order.
    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>>>;
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>>>;
    fn set_many<'a>(&'a self, entries: &'a [(String, Vec<u8>)]) -> BoxFuture<'a, Result<()>>;
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<()>>;
    /// Adds `delta` to the integer stored at `key` (a missing key counts as 0)
    /// and returns the new value. Counters are stored as decimal ASCII text,
    /// the form Redis `INCRBY` uses, so both backends hold the same bytes.
    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64>>;
    /// Writes `new` only if the current value equals `expected` (`None`: the
    /// key must be absent). Returns whether the write happened. Atomic with
    /// respect to every other writer of the backend, in this process or not.
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: &'a [u8],
    ) -> BoxFuture<'a, Result<bool>>;
}

/// Checks the documented size limits before any backend sees the data.
pub fn check_limits(key: &str, value: Option<&[u8]>) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::TooLarge(format!(
            "key of {} bytes is longer than the {MAX_KEY_BYTES}-byte limit",
            key.len()
        )));
    }
    if let Some(v) = value
        && v.len() > MAX_VALUE_BYTES
    {
        return Err(Error::TooLarge(format!(
            "value of {} bytes is larger than the {MAX_VALUE_BYTES}-byte limit",
            v.len()
        )));
    }
    Ok(())
}

/// Typed runtime configuration of one store label
/// (`[key_value_store.<label>]` in the runtime config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// Spin's own SQLite backend; `path` relative to the runtime config file,
    /// default `<state dir>/sqlite_key_value.db`.
    Spin { path: Option<PathBuf> },
    /// A Redis server, `url` like `redis://127.0.0.1:6379/0`.
    Redis { url: String },
}

/// The stores of one application, by label. Labels share a backend when
/// they are configured with the same SQLite path or Redis URL.
#[derive(Clone, Default)]
pub struct Stores {
    by_label: HashMap<String, Arc<dyn Store>>,
}

impl Stores {
    /// Opens every configured label. `default_sqlite` is where the `default`
    /// label lives when the runtime config does not mention it (Spin's
    /// behaviour: `.spin/sqlite_key_value.db` next to the manifest).
    pub async fn open(
        configs: &HashMap<String, StoreConfig>,
        default_sqlite: PathBuf,
    ) -> anyhow::Result<Stores> {
        let mut stores = Stores::default();
        let mut sqlite_files: HashMap<PathBuf, Arc<sqlite::SqliteBackend>> = HashMap::new();
        let mut all = configs.clone();
        all.entry("default".into())
            .or_insert(StoreConfig::Spin { path: Some(default_sqlite.clone()) });
        for (label, cfg) in &all {
            let store: Arc<dyn Store> = match cfg {
                StoreConfig::Spin { path } => {
                    let path = path.clone().unwrap_or_else(|| default_sqlite.clone());
                    let backend = match sqlite_files.get(&path) {
                        Some(b) => b.clone(),
                        None => {
                            let b = Arc::new(sqlite::SqliteBackend::open(&path)?);
                            sqlite_files.insert(path.clone(), b.clone());
                            b
                        }
                    };
                    Arc::new(backend.store(label))
                }
                StoreConfig::Redis { url } => Arc::new(redis::RedisStore::connect(url).await?),
            };
            stores.by_label.insert(label.clone(), store);
        }
        Ok(stores)
    }

    /// The store for `label`, if one is configured.
    pub fn get(&self, label: &str) -> Option<Arc<dyn Store>> {
        self.by_label.get(label).cloned()
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.by_label.keys().map(String::as_str)
    }
}

/// Decodes a stored counter (decimal ASCII); anything else is not a counter.
pub fn decode_counter(bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::Backend("value is not a decimal integer counter".into()))
}
