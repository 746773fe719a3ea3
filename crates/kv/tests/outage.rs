//! Store outages at the backend level: while Redis is stopped (SIGSTOP: the
//! socket stays, nothing answers) or dead (killed: connections refused),
//! every call fails with `Error::Unavailable` within a bounded time, and the
//! same `RedisStore` works again as soon as Redis is back, without being
//! re-created. SQLite: a read-only (immutable) file is `Unavailable` too.
//! tests/api/store_outage.rs checks what clients see over HTTP.

use std::process::Command;
use std::time::{Duration, Instant};
use vnext_kv::redis::{CALL_TIMEOUT, RedisStore};
use vnext_kv::{Error, Store};

/// Longest a failing call may take: the store's own bound plus scheduling slack.
const FAIL_WITHIN: Duration = Duration::from_secs(3);

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer as Redis;

/// A call that must fail as unavailable, quickly.
async fn assert_unavailable<T: std::fmt::Debug>(what: &str, call: impl std::future::Future<Output = vnext_kv::Result<T>>) {
    let started = Instant::now();
    let r = call.await;
    let took = started.elapsed();
    assert!(matches!(r, Err(Error::Unavailable(_))), "{what}: {r:?}");
    assert!(took < FAIL_WITHIN, "{what} took {took:?}");
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("key-value store") && msg.contains("redis"), "{msg}");
    assert!(!msg.contains("127.0.0.1"), "no address in a message clients may see: {msg}");
}

/// Polls until `get` succeeds; returns how long that took.
async fn recovers(store: &RedisStore, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        match store.get("k").await {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some(&b"v"[..]), "the data written before the outage is there");
                return started.elapsed();
            }
            Err(e) => assert!(started.elapsed() < within, "no recovery within {within:?}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_then_resumed_fails_fast_and_recovers() {
    let redis = Redis::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    store.set("k", b"v").await.unwrap();

    redis.signal("STOP");
    for i in 0..3 {
        assert_unavailable(&format!("get #{i} while stopped"), store.get("k")).await;
        assert_unavailable(&format!("set #{i} while stopped"), store.set("k2", b"x")).await;
    }
    assert!(CALL_TIMEOUT < FAIL_WITHIN);

    redis.signal("CONT");
    let took = recovers(&store, Duration::from_secs(5)).await;
    eprintln!("resumed: first success after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_then_restarted_fails_fast_and_recovers_with_its_data() {
    let mut redis = Redis::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    store.set("k", b"v").await.unwrap();

    redis.kill();
    for i in 0..3 {
        assert_unavailable(&format!("get #{i} while dead"), store.get("k")).await;
        assert_unavailable(&format!("cas #{i} while dead"), store.compare_and_swap("k", Some(b"v"), b"w")).await;
    }

    redis.restart();
    let took = recovers(&store, Duration::from_secs(5)).await;
    eprintln!("restarted: first success after {took:?}");
    assert!(store.compare_and_swap("k", Some(b"v"), b"w").await.unwrap(), "writes work again");
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_read_only_file_is_unavailable_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let backend = std::sync::Arc::new(vnext_kv::sqlite::SqliteBackend::open(&path).unwrap());
    let store = backend.store("default");
    store.set("k", b"v").await.unwrap();
    // Root ignores file modes; the immutable attribute stops root too, even
    // through file descriptors opened before (as the pooled connections are).
    let wal = dir.path().join("kv.db-wal");
    let chattr = |flag: &str| {
        for f in [&path, &wal] {
            let ok = Command::new("chattr").arg(flag).arg(f).status().expect("chattr (e2fsprogs) must be installed");
            assert!(ok.success(), "chattr {flag} {} (needs root and a filesystem with the immutable attribute)", f.display());
        }
    };
    chattr("+i");
    let r = store.set("k", b"w").await;
    chattr("-i");
    let msg = match &r {
        Err(Error::Unavailable(m)) => m.clone(),
        other => panic!("a write to an immutable file: {other:?}"),
    };
    assert!(msg.starts_with("sqlite: ") && !msg.contains(dir.path().to_str().unwrap()), "{msg}");
    store.set("k", b"w").await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"w"[..]));
}
