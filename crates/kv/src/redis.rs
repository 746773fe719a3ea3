//! Redis backend: the store many stateless hosts share.
//!
//! Keys are stored as they are (no label prefix), as Spin's Redis backend
//! does, so each label should get its own Redis database or server.
//! Compare-and-swap and increment run as single Redis commands or Lua
//! scripts, which Redis executes atomically, so concurrent writers on any
//! number of hosts cannot interleave inside one of them.

use crate::{BoxFuture, Error, Result, Store, check_limits};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

/// Sets KEYS[1] to ARGV[2] only if its current value equals ARGV[1].
const CAS_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// How long start-up waits for Redis before giving up.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Keys fetched per SCAN round trip by `get_keys`.
const SCAN_COUNT: usize = 1000;

pub struct RedisStore {
    conn: ConnectionManager,
    cas: redis::Script,
}

fn backend_err(e: redis::RedisError) -> Error {
    Error::Backend(format!("redis: {e}"))
}

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/0`); fails at start-up
    /// rather than on the first request when the server is unreachable.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("invalid Redis URL {url:?}: {e}"))?;
        // The connection manager retries forever; one plain connection
        // first makes an unreachable server an immediate, clear error.
        let unreachable = |e: String| anyhow::anyhow!("cannot connect to Redis at {url}: {e}");
        match tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
        }
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, ConnectionManager::new(client))
            .await
            .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(RedisStore { conn, cas: redis::Script::new(CAS_SCRIPT) })
    }

    fn conn(&self) -> ConnectionManager {
        // A cheap handle clone: every clone multiplexes one connection.
        self.conn.clone()
    }
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move { self.conn().get(key).await.map_err(backend_err) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_limits(key, Some(value))?;
            self.conn().set(key, value).await.map_err(backend_err)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.conn().del(key).await.map_err(backend_err) })
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.conn().exists(key).await.map_err(backend_err) })
    }

    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let mut conn = self.conn();
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend_err)?;
                keys.extend(batch);
                if next == 0 {
                    return Ok(keys);
                }
                cursor = next;
            }
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            // MGET with one key returns a bare value; the explicit command keeps a list.
            redis::cmd("MGET").arg(keys).query_async(&mut self.conn()).await.map_err(backend_err)
        })
    }

    fn set_many<'a>(&'a self, entries: &'a [(String, Vec<u8>)]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for (k, v) in entries {
                check_limits(k, Some(v))?;
            }
            if entries.is_empty() {
                return Ok(());
            }
            self.conn().mset(entries).await.map_err(backend_err)
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            self.conn().del(keys).await.map_err(backend_err)
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            check_limits(key, None)?;
            self.conn().incr(key, delta).await.map_err(backend_err)
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
            let mut conn = self.conn();
            match expected {
                None => redis::cmd("SET")
                    .arg(key)
                    .arg(new)
                    .arg("NX")
                    .query_async::<Option<String>>(&mut conn)
                    .await
                    .map(|ok| ok.is_some())
                    .map_err(backend_err),
                Some(old) => self
                    .cas
                    .key(key)
                    .arg(old)
                    .arg(new)
                    .invoke_async::<i64>(&mut conn)
                    .await
                    .map(|n| n == 1)
                    .map_err(backend_err),
            }
        })
    }
}
