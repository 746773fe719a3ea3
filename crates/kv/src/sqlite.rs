//! SQLite backend: Spin's embedded default.
//!
//! One file may hold many labels: rows are keyed by `(store, key)` in the
//! table `spin_key_value`, the layout Spin uses, so a `.spin/sqlite_key_value.db`
//! written by real Spin opens here and the other way round. A plain rowid table
//! with WAL and `synchronous=NORMAL` (measured ~100x faster point reads than
//! `WITHOUT ROWID` once a large value exists).
//!
//! rusqlite is blocking. Each call is one short statement on an idle
//! connection taken from a small pool, so it runs inline on the async task:
//! handing it to a blocking thread would cost more than the query itself.

use crate::{BoxFuture, Error, Result, Store, check_limits, decode_counter};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Connections kept open for reuse; more are opened under load and dropped after.
const POOL_SIZE: usize = 8;
/// How long a writer waits for SQLite's write lock before failing.
const BUSY_TIMEOUT_MS: u64 = 5_000;

pub struct SqliteBackend {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

/// Maps a SQLite failure. A full disk, a file that cannot be written or
/// opened, an I/O error or a lock held too long is [`Error::Unavailable`]
/// (retry later, once the operator fixed it), in words of our own: SQLite's
/// messages may name the file. Anything else is [`Error::Backend`].
fn backend_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        let why = match f.code {
            C::DiskFull => Some("the disk holding the SQLite file is full"),
            C::ReadOnly => Some("the SQLite file is read-only"),
            C::PermissionDenied | C::AuthorizationForStatementDenied => {
                Some("the SQLite file may not be written")
            }
            C::CannotOpen => Some("the SQLite file cannot be opened"),
            C::SystemIoFailure => Some("I/O error on the SQLite file (is the disk full or the file read-only?)"),
            C::DatabaseBusy | C::DatabaseLocked => Some("the SQLite file stayed locked by another writer"),
            _ => None,
        };
        if let Some(why) = why {
            report_unavailable(why, &e);
            return Error::Unavailable(format!("sqlite: {why}"));
        }
    }
    Error::Backend(format!("sqlite: {e}"))
}

/// Logs SQLite trouble with SQLite's own words (which may name the file:
/// fine in the operator's log), at most once per [`REPORT_EVERY`].
fn report_unavailable(why: &str, e: &rusqlite::Error) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + REPORT_EVERY.as_secs()
        && LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        let more = SUPPRESSED.swap(0, Ordering::Relaxed);
        eprintln!("warning: key-value store (SQLite) unavailable: {why} ({e}); {more} similar failures not logged");
    } else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Shortest interval between two log lines about SQLite failures.
const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl SqliteBackend {
    /// Opens (creating if needed) the database file and its parent directory.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("cannot create key-value directory {}: {e}", dir.display())
            })?;
        }
        let backend = SqliteBackend { path: path.to_path_buf(), pool: Mutex::new(Vec::new()) };
        let conn = backend.connect().map_err(|e| {
            anyhow::anyhow!("cannot open key-value database {}: {e}", path.display())
        })?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            );",
        )?;
        backend.pool.lock().unwrap().push(conn);
        Ok(backend)
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(conn)
    }

    /// A handle on one label of this file.
    pub fn store(self: &Arc<Self>, label: &str) -> SqliteStore {
        SqliteStore { backend: self.clone(), label: label.to_string() }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let pooled = self.pool.lock().unwrap().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().map_err(backend_err)?,
        };
        let out = f(&mut conn).map_err(backend_err);
        let mut pool = self.pool.lock().unwrap();
        if pool.len() < POOL_SIZE {
            pool.push(conn);
        }
        out
    }
}

/// One label of a SQLite file.
pub struct SqliteStore {
    backend: Arc<SqliteBackend>,
    label: String,
}

impl SqliteStore {
    fn run<T>(&self, f: impl FnOnce(&mut Connection, &str) -> rusqlite::Result<T>) -> Result<T> {
        self.backend.with_conn(|c| f(c, &self.label))
    }
}

impl Store for SqliteStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            self.run(|c, s| {
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .query_row(params![s, key], |r| r.get(0))
                    .optional()
            })
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_limits(key, Some(value))?;
            self.run(|c, s| {
                c.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![s, key, value])
                .map(drop)
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.run(|c, s| {
                c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .execute(params![s, key])
                    .map(drop)
            })
        })
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            self.run(|c, s| {
                c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .exists(params![s, key])
            })
        })
    }

    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            self.run(|c, s| {
                let mut stmt =
                    c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
                let keys = stmt.query_map(params![s], |r| r.get(0))?;
                keys.collect()
            })
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>>> {
        Box::pin(async move {
            self.run(|c, s| {
                let mut stmt = c.prepare_cached(
                    "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                )?;
                keys.iter()
                    .map(|k| stmt.query_row(params![s, k], |r| r.get(0)).optional())
                    .collect()
            })
        })
    }

    fn set_many<'a>(&'a self, entries: &'a [(String, Vec<u8>)]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for (k, v) in entries {
                check_limits(k, Some(v))?;
            }
            self.run(|c, s| {
                let tx = c.transaction()?;
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    )?;
                    for (k, v) in entries {
                        stmt.execute(params![s, k, v])?;
                    }
                }
                tx.commit()
            })
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.run(|c, s| {
                let tx = c.transaction()?;
                {
                    let mut stmt = tx.prepare_cached(
                        "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    )?;
                    for k in keys {
                        stmt.execute(params![s, k])?;
                    }
                }
                tx.commit()
            })
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            check_limits(key, None)?;
            // IMMEDIATE takes the write lock before reading, so two processes
            // sharing the file cannot both read the old value. The inner
            // result carries a counter error out of the SQLite closure.
            let outcome = self.run(|c, s| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let old: Option<Vec<u8>> = tx
                    .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .query_row(params![s, key], |r| r.get(0))
                    .optional()?;
                let next = match old.as_deref().map(decode_counter).unwrap_or(Ok(0)) {
                    Err(e) => return Ok(Err(e)),
                    Ok(n) => match n.checked_add(delta) {
                        Some(n) => n,
                        None => {
                            return Ok(Err(Error::Backend(format!(
                                "cannot increment {key:?}: counter would overflow"
                            ))));
                        }
                    },
                };
                tx.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![s, key, next.to_string().into_bytes()])?;
                tx.commit()?;
                Ok(Ok(next))
            })?;
            outcome
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: &'a [u8],
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            check_limits(key, Some(new))?;
            // One statement each: SQLite runs a statement atomically, so the
            // comparison and the write cannot be split by another writer.
            self.run(|c, s| {
                let changed = match expected {
                    Some(old) => c
                        .prepare_cached(
                            "UPDATE spin_key_value SET value = ?4
                             WHERE store = ?1 AND key = ?2 AND value = ?3",
                        )?
                        .execute(params![s, key, old, new])?,
                    None => c
                        .prepare_cached(
                            "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                             ON CONFLICT (store, key) DO NOTHING",
                        )?
                        .execute(params![s, key, new])?,
                };
                Ok(changed == 1)
            })
        })
    }
}
