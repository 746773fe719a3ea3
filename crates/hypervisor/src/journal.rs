//! The adapter's journal: a SQLite file that makes accepted operations and
//! their events survive a restart.
//!
//! What it records, and when:
//! - an operation row when [`crate::Adapter::submit`] accepts a task (before
//!   it answers), so an accepted task is never forgotten;
//! - after every step transition, in one transaction: the operation's
//!   progress, the event it produced, the adapter's claims for the server and
//!   the driver's record of the server. A crash therefore leaves either the
//!   state before the transition or after it, never half of each;
//! - the removal of an event once the sink acknowledged it.
//!
//! On open, unfinished operations resume at the step they were in (a step
//! that had started runs again, without a second RUNNING event) and the
//! events still in the table are delivered again. Delivery is therefore at
//! least once; the API ignores a `seq` it has already applied.
//!
//! Rows are JSON documents so the schema does not follow every field.

use crate::error::Error;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An open journal file.
pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// What one step transition changes, written atomically.
pub(crate) struct Checkpoint<'a> {
    pub task_id: &'a str,
    /// The operation's progress (JSON).
    pub progress: String,
    pub done: bool,
    /// The event produced: (seq, JSON).
    pub event: Option<(u32, String)>,
    /// The adapter's record of the server (JSON); `None` deletes it.
    pub server: Option<(&'a str, Option<String>)>,
    /// The driver's record of the server (JSON); `None` deletes it.
    pub driver: Option<(&'a str, Option<String>)>,
}

/// Everything needed to rebuild an adapter.
#[derive(Default)]
pub(crate) struct Loaded {
    /// Every task id ever accepted (submits stay idempotent across restarts).
    pub task_ids: Vec<String>,
    /// Progress JSON of unfinished operations, in the order they were accepted.
    pub unfinished: Vec<String>,
    /// Undelivered events (JSON), per task in `seq` order.
    pub events: Vec<String>,
    pub servers: Vec<(String, String)>,
    pub driver: Vec<(String, String)>,
}

fn db(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |source| Error::Journal { context, source }
}

impl Journal {
    /// Opens (creating if needed) the journal file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Journal, Error> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::StateDir { path: dir.to_owned(), source })?;
        }
        let conn = Connection::open(&path).map_err(db("opening the database"))?;
        // WAL keeps readers and the single writer apart. NORMAL sync, as
        // the key-value store: a commit survives a crash of this process
        // (the case the journal exists for) but not of the machine. FULL
        // would promise more than the API records it pairs with, and costs
        // an fsync per step: a launch of 1,000 servers took 23 s with it.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS operations (
                 task_id  TEXT PRIMARY KEY,
                 server_id TEXT NOT NULL,
                 progress TEXT NOT NULL,
                 done     INTEGER NOT NULL DEFAULT 0
             );
             CREATE TABLE IF NOT EXISTS events (
                 task_id TEXT NOT NULL,
                 seq     INTEGER NOT NULL,
                 event   TEXT NOT NULL,
                 PRIMARY KEY (task_id, seq)
             );
             CREATE TABLE IF NOT EXISTS servers (
                 server_id TEXT PRIMARY KEY,
                 record    TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS driver_servers (
                 server_id TEXT PRIMARY KEY,
                 state     TEXT NOT NULL
             );",
        )
        .map_err(db("creating the tables"))?;
        Ok(Journal { path, conn: Mutex::new(conn) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records newly accepted operations (`(task_id, server_id, progress)`
    /// each) in one transaction: one commit for a launch of many servers.
    /// `false` at each position whose task id was already known (that
    /// submit is then a no-op).
    pub(crate) fn accept_many(&self, ops: &[(&str, &str, String)]) -> Result<Vec<bool>, Error> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(db("starting to record accepted operations"))?;
        let mut fresh = Vec::with_capacity(ops.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO operations (task_id, server_id, progress, done) VALUES (?1, ?2, ?3, 0)",
                )
                .map_err(db("recording accepted operations"))?;
            for (task_id, server_id, progress) in ops {
                fresh.push(stmt.execute(params![task_id, server_id, progress]).map_err(db("recording an accepted operation"))? == 1);
            }
        }
        tx.commit().map_err(db("committing accepted operations"))?;
        Ok(fresh)
    }

    pub(crate) fn checkpoint(&self, c: &Checkpoint<'_>) -> Result<(), Error> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(db("starting a checkpoint"))?;
        tx.execute(
            "UPDATE operations SET progress = ?2, done = ?3 WHERE task_id = ?1",
            params![c.task_id, c.progress, c.done],
        )
        .map_err(db("saving operation progress"))?;
        if let Some((seq, event)) = &c.event {
            tx.execute(
                "INSERT OR REPLACE INTO events (task_id, seq, event) VALUES (?1, ?2, ?3)",
                params![c.task_id, seq, event],
            )
            .map_err(db("saving an event"))?;
        }
        for (table, col, row) in [("servers", "record", &c.server), ("driver_servers", "state", &c.driver)] {
            match row {
                None => {}
                Some((id, None)) => {
                    tx.execute(&format!("DELETE FROM {table} WHERE server_id = ?1"), params![id])
                        .map_err(db("deleting a server record"))?;
                }
                Some((id, Some(json))) => {
                    tx.execute(
                        &format!("INSERT OR REPLACE INTO {table} (server_id, {col}) VALUES (?1, ?2)"),
                        params![id, json],
                    )
                    .map_err(db("saving a server record"))?;
                }
            }
        }
        tx.commit().map_err(db("committing a checkpoint"))
    }

    /// Saves or deletes server records outside an operation (reclaim).
    pub(crate) fn save_server(&self, server_id: &str, record: Option<&str>, driver: Option<&str>) -> Result<(), Error> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(db("starting a server update"))?;
        for (table, col, row) in [("servers", "record", record), ("driver_servers", "state", driver)] {
            match row {
                None => tx.execute(&format!("DELETE FROM {table} WHERE server_id = ?1"), params![server_id]),
                Some(json) => tx.execute(
                    &format!("INSERT OR REPLACE INTO {table} (server_id, {col}) VALUES (?1, ?2)"),
                    params![server_id, json],
                ),
            }
            .map_err(db("saving a server record"))?;
        }
        tx.commit().map_err(db("committing a server update"))
    }

    /// The sink acknowledged this event: never send it again.
    pub(crate) fn delivered(&self, task_id: &str, seq: u32) -> Result<(), Error> {
        let conn = self.conn.lock().unwrap();
        conn.execute("DELETE FROM events WHERE task_id = ?1 AND seq = ?2", params![task_id, seq])
            .map_err(db("forgetting a delivered event"))?;
        Ok(())
    }

    /// Whether this task is recorded (for tests and diagnostics).
    pub fn knows_task(&self, task_id: &str) -> Result<bool, Error> {
        let conn = self.conn.lock().unwrap();
        conn.query_row("SELECT 1 FROM operations WHERE task_id = ?1", params![task_id], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(db("looking up a task"))
    }

    /// How many events wait for delivery.
    pub fn pending_events(&self) -> Result<u64, Error> {
        let conn = self.conn.lock().unwrap();
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(db("counting events"))
    }

    pub(crate) fn load(&self) -> Result<Loaded, Error> {
        let conn = self.conn.lock().unwrap();
        let mut out = Loaded::default();
        let strings = |sql: &str, context: &'static str| -> Result<Vec<(String, String)>, Error> {
            let mut stmt = conn.prepare(sql).map_err(db(context))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(db(context))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db(context))
        };
        out.task_ids = strings("SELECT task_id, server_id FROM operations ORDER BY rowid", "loading operations")?
            .into_iter()
            .map(|(task_id, _)| task_id)
            .collect();
        out.unfinished = strings(
            "SELECT task_id, progress FROM operations WHERE done = 0 ORDER BY rowid",
            "loading unfinished operations",
        )?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
        out.events = strings("SELECT task_id, event FROM events ORDER BY task_id, seq", "loading events")?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        out.servers = strings("SELECT server_id, record FROM servers", "loading server records")?;
        out.driver = strings("SELECT server_id, state FROM driver_servers", "loading driver records")?;
        Ok(out)
    }
}
