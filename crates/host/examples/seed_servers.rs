//! Benchmark fixture (used by `scripts/bench-api.sh`, not by the product):
//! fills a stopped host's SQLite key-value file with N more servers, so
//! list pages can be timed at 1k, 10k and 100k servers without launching
//! them all through the fake driver.
//!
//! Each new server is a copy of a real one (`--like`, launched through the
//! API beforehand) with a fresh id and hostname, written in the very
//! format the components use: the record, its hostname claim, and entries
//! in the `servers` and project indexes through `vnext_core::index`, so the
//! lists read exactly what a launch would have left.
//!
//!   cargo run --release -p vnext-host --example seed_servers -- DB LIKE_ID COUNT

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::index::{Index, Records};
use vnext_core::keys::{self, HostnameClaim};
use vnext_core::model::ServerRecord;
use vnext_kv::Store;

/// Records written per batch (one SQLite transaction each).
const BATCH: usize = 1000;

struct Blocking(Arc<dyn Store>);

fn store_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(e.to_string())
}

impl Records for Blocking {
    fn get_json<T: DeserializeOwned>(&self, key: &str) -> ApiResult<Option<T>> {
        let bytes = futures::executor::block_on(self.0.get(key)).map_err(store_err)?;
        Ok(bytes.map(|b| serde_json::from_slice(&b).expect("stored JSON")))
    }
    fn get_many<T: DeserializeOwned>(&self, keys: &[String]) -> ApiResult<Vec<Option<T>>> {
        keys.iter().map(|k| self.get_json(k)).collect()
    }
    fn put_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<()> {
        let bytes = serde_json::to_vec(value).expect("JSON");
        futures::executor::block_on(self.0.set(key, &bytes)).map_err(store_err)
    }
    fn put_many<T: Serialize>(&self, entries: &[(String, T)]) -> ApiResult<()> {
        let encoded: Vec<(String, Vec<u8>)> =
            entries.iter().map(|(k, v)| (k.clone(), serde_json::to_vec(v).expect("JSON"))).collect();
        futures::executor::block_on(self.0.set_many(&encoded)).map_err(store_err)
    }
    fn create_json<T: Serialize>(&self, key: &str, value: &T) -> ApiResult<bool> {
        let bytes = serde_json::to_vec(value).expect("JSON");
        futures::executor::block_on(self.0.compare_and_swap(key, None, &bytes)).map_err(store_err)
    }
    fn update_json<T, F>(&self, key: &str, mut f: F) -> ApiResult<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> ApiResult<T>,
    {
        loop {
            let old = futures::executor::block_on(self.0.get(key)).map_err(store_err)?;
            let next = f(old.as_ref().map(|b| serde_json::from_slice(b).expect("stored JSON")))?;
            let bytes = serde_json::to_vec(&next).expect("JSON");
            if futures::executor::block_on(self.0.compare_and_swap(key, old.as_deref(), &bytes)).map_err(store_err)? {
                return Ok(next);
            }
        }
    }
    fn delete(&self, key: &str) -> ApiResult<()> {
        futures::executor::block_on(self.0.delete(key)).map_err(store_err)
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, like, count] = args.as_slice() else {
        bail!("usage: seed_servers DB LIKE_SERVER_ID COUNT");
    };
    let count: usize = count.parse().context("COUNT must be a number")?;
    let backend = Arc::new(vnext_kv::sqlite::SqliteBackend::open(&PathBuf::from(db))?);
    let store = Blocking(Arc::new(backend.store("default")));
    let template: ServerRecord = store
        .get_json(&keys::server(like))
        .map_err(|e| anyhow::anyhow!(e.message))?
        .with_context(|| format!("no server {like} in {db}"))?;
    let project = template.project_id.clone();
    let started = std::time::Instant::now();
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let ids: Vec<String> = (0..n).map(|_| vnext_core::ids::new_id()).collect();
        let mut entries = Vec::with_capacity(2 * n);
        for id in &ids {
            let mut s = template.clone();
            s.id = id.clone();
            s.hostname = format!("seed-{}", &id[..13]);
            s.current_task_id = None;
            entries.push((keys::hostname(&project, &s.hostname), serde_json::to_vec(&HostnameClaim { server_id: id.clone(), claimed_at: Some(vnext_core::time::now()) })?));
            entries.push((keys::server(id), serde_json::to_vec(&s)?));
        }
        let ix = |name: String| Index::new(&store, name);
        ix(keys::SERVERS_INDEX.to_string()).append_many(&ids).map_err(|e| anyhow::anyhow!(e.message))?;
        ix(keys::project_servers_index(&project)).append_many(&ids).map_err(|e| anyhow::anyhow!(e.message))?;
        futures::executor::block_on(store.0.set_many(&entries))?;
        done += n;
        eprint!("\rseeded {done}/{count} servers");
    }
    eprintln!(" in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
