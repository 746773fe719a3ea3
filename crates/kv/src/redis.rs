//! Redis backend: the store many stateless hosts share.
//!
//! Keys are stored as they are (no label prefix), as Spin's Redis backend
//! does, so each label should get its own Redis database or server.
//! Compare-and-swap and increment run as single Redis commands or Lua
//! scripts, which Redis executes atomically, so concurrent writers on any
//! number of hosts cannot interleave inside one of them.

use crate::{BoxFuture, Error, Result, Store, check_limits};
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, RedisError, RedisResult};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sets KEYS[1] to ARGV[2] only if its current value equals ARGV[1].
const CAS_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// How long start-up waits for Redis before giving up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt to (re)connect while serving. Short: a request waiting on
/// it is a client waiting, and a refused connection fails at once anyway;
/// what this bounds is a server that accepts but does not answer (stopped).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for the answer to one command. Redis answers in well under
/// a millisecond; a second of silence means it is stopped or cut off.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Hard bound on one store call (connecting included), whatever the
/// connection does: a call fails with [`Error::Unavailable`] by then, so a
/// request never waits on Redis anywhere near the host's request timeout.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1500);
/// A connection that has only timed out for this long is replaced: a
/// stopped server keeps its socket (and answers queued commands when it
/// resumes), but a peer cut off by the network never answers again.
const STALE_AFTER: Duration = Duration::from_secs(5);

/// Keys fetched per SCAN round trip by `get_keys`.
const SCAN_COUNT: usize = 1000;

/// The Redis backend. It owns its one multiplexed connection instead of
/// redis' `ConnectionManager`, whose reconnect backoff (1 s, then up to a
/// minute per attempt, every command waiting meanwhile) made requests hang
/// for tens of seconds while Redis was down and for seconds after it came
/// back. Here a lost connection is dropped, and the next call makes ONE
/// bounded attempt to connect (concurrent callers share it): while Redis is
/// down every call fails within [`CALL_TIMEOUT`] with
/// [`Error::Unavailable`], and the first call after it is back succeeds.
pub struct RedisStore {
    client: redis::Client,
    config: AsyncConnectionConfig,
    /// `host:port` for log lines (never the URL: it may hold a password).
    addr: String,
    slot: Mutex<Slot>,
    /// Serialises connection attempts, so a burst of requests makes one.
    connecting: tokio::sync::Mutex<()>,
    /// Connection attempts started so far (see [`RedisStore::connection`]).
    attempts: AtomicU64,
    cas: redis::Script,
}

#[derive(Default)]
struct Slot {
    /// The live connection and its generation (bumped per connection).
    conn: Option<(u64, MultiplexedConnection)>,
    generation: u64,
    /// Last answer from Redis on the current connection.
    last_ok: Option<Instant>,
    /// Since when calls fail, for the "reachable again" log line.
    down_since: Option<Instant>,
}

fn unavailable(why: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("redis {why}"))
}

/// Maps a Redis failure: the server unreachable, silent, loading, out of
/// memory or unable to persist is [`Error::Unavailable`] (retry later);
/// anything else is a [`Error::Backend`] error.
fn classify(e: &RedisError) -> Error {
    if e.is_timeout() {
        return unavailable(format!("did not answer within {RESPONSE_TIMEOUT:?}"));
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        return unavailable(format!("cannot be reached ({})", io_kind(e)));
    }
    match e.code() {
        Some("LOADING") => unavailable("is loading its data"),
        Some("MISCONF") => unavailable("refuses writes: it cannot persist them (is its disk full?)"),
        Some("OOM") => unavailable("is out of memory"),
        Some("READONLY") => unavailable("is a read-only replica"),
        Some("TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN") => unavailable("is not ready"),
        _ => Error::Backend(format!("redis: {e}")),
    }
}

/// The kind of an I/O failure in words, without addresses or paths.
fn io_kind(e: &RedisError) -> &'static str {
    if e.is_connection_refusal() {
        "connection refused"
    } else if e.is_connection_dropped() {
        "connection lost"
    } else {
        "I/O error"
    }
}

/// Whether the connection that produced `e` is of no further use.
fn connection_broken(e: &RedisError) -> bool {
    (e.is_io_error() && !e.is_timeout()) || e.is_unrecoverable_error() || e.is_connection_dropped()
}

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/0`); fails at start-up
    /// rather than on the first request when the server is unreachable.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("invalid Redis URL {url:?}: {e}"))?;
        let addr = client.get_connection_info().addr.to_string();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let unreachable = |e: String| anyhow::anyhow!("cannot connect to Redis at {url}: {e}");
        let startup = AsyncConnectionConfig::new()
            .set_connection_timeout(STARTUP_TIMEOUT)
            .set_response_timeout(STARTUP_TIMEOUT);
        let conn = match tokio::time::timeout(
            STARTUP_TIMEOUT,
            client.get_multiplexed_async_connection_with_config(&startup),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no answer within {STARTUP_TIMEOUT:?}"))),
        };
        // The start-up connection keeps the long response timeout: drop it
        // and let the first call open one with the serving timeouts.
        drop(conn);
        Ok(RedisStore {
            client,
            config,
            addr,
            slot: Mutex::new(Slot::default()),
            connecting: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            cas: redis::Script::new(CAS_SCRIPT),
        })
    }

    /// The live connection, or one new connection attempt. Callers that
    /// waited while another caller's attempt failed fail too, without an
    /// attempt of their own: a burst of requests during an outage costs one
    /// attempt, not one each in a row.
    async fn connection(&self) -> Result<(u64, MultiplexedConnection)> {
        if let Some(c) = self.slot.lock().unwrap().conn.clone() {
            return Ok(c);
        }
        let seen = self.attempts.load(Ordering::SeqCst);
        let _turn = self.connecting.lock().await;
        if let Some(c) = self.slot.lock().unwrap().conn.clone() {
            return Ok(c);
        }
        if self.attempts.load(Ordering::SeqCst) != seen {
            return Err(unavailable("cannot be reached (connection attempt failed just now)"));
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        match self.client.get_multiplexed_async_connection_with_config(&self.config).await {
            Ok(conn) => {
                let mut slot = self.slot.lock().unwrap();
                slot.generation += 1;
                slot.conn = Some((slot.generation, conn.clone()));
                slot.last_ok = Some(Instant::now());
                Ok((slot.generation, conn))
            }
            Err(e) => {
                let err = classify(&e);
                self.went_down(&err);
                Err(err)
            }
        }
    }

    /// Runs one command on the connection, bounded by [`CALL_TIMEOUT`].
    async fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let call = async {
            let (generation, conn) = self.connection().await?;
            match f(conn).await {
                Ok(v) => {
                    self.came_up(generation);
                    Ok(v)
                }
                Err(e) => {
                    let err = classify(&e);
                    if matches!(err, Error::Unavailable(_)) {
                        self.went_down(&err);
                    }
                    self.maybe_drop(generation, &e);
                    Err(err)
                }
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(r) => r,
            Err(_) => {
                let err = unavailable(format!("did not answer within {CALL_TIMEOUT:?}"));
                self.went_down(&err);
                Err(err)
            }
        }
    }

    /// Drops the connection of `generation` when `e` shows it is dead, or
    /// when it has only timed out for [`STALE_AFTER`].
    fn maybe_drop(&self, generation: u64, e: &RedisError) {
        let mut slot = self.slot.lock().unwrap();
        let current = slot.conn.as_ref().is_some_and(|(g, _)| *g == generation);
        let stale = e.is_timeout() && slot.last_ok.is_none_or(|t| t.elapsed() > STALE_AFTER);
        if current && (connection_broken(e) || stale) {
            slot.conn = None;
        }
    }

    /// One log line when calls start failing (not one per call).
    fn went_down(&self, err: &Error) {
        let mut slot = self.slot.lock().unwrap();
        if slot.down_since.is_none() {
            slot.down_since = Some(Instant::now());
            eprintln!("warning: {err} (Redis at {}); key-value calls fail until it answers", self.addr);
        }
    }

    /// Notes an answer; one log line when Redis answers again after failures.
    fn came_up(&self, generation: u64) {
        let mut slot = self.slot.lock().unwrap();
        if slot.conn.as_ref().is_some_and(|(g, _)| *g == generation) {
            slot.last_ok = Some(Instant::now());
        }
        if let Some(since) = slot.down_since.take() {
            eprintln!("key-value store (Redis at {}) answers again after {:.1?}", self.addr, since.elapsed());
        }
    }
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(self.run(move |mut c| async move { c.get(key).await }))
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_limits(key, Some(value))?;
            self.run(move |mut c| async move { c.set(key, value).await }).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.run(move |mut c| async move { c.del(key).await }))
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.run(move |mut c| async move { c.exists(key).await }))
    }

    fn get_keys(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                // One bounded call per round trip: a large store may take
                // many, each as short as any other command.
                let (next, batch): (u64, Vec<String>) = self
                    .run(move |mut c| async move {
                        redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(SCAN_COUNT).query_async(&mut c).await
                    })
                    .await?;
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
            self.run(move |mut c| async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await }).await
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
            self.run(move |mut c| async move { c.mset(entries).await }).await
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            self.run(move |mut c| async move { c.del(keys).await }).await
        })
    }

    fn increment<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            check_limits(key, None)?;
            self.run(move |mut c| async move { c.incr(key, delta).await }).await
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
            match expected {
                None => {
                    self.run(move |mut c| async move {
                        redis::cmd("SET")
                            .arg(key)
                            .arg(new)
                            .arg("NX")
                            .query_async::<Option<String>>(&mut c)
                            .await
                            .map(|ok| ok.is_some())
                    })
                    .await
                }
                Some(old) => {
                    let cas = &self.cas;
                    self.run(move |mut c| async move {
                        cas.key(key).arg(old).arg(new).invoke_async::<i64>(&mut c).await.map(|n| n == 1)
                    })
                    .await
                }
            }
        })
    }
}
