//! Key-value semantics, the same suite on both backends: SQLite (a temp
//! file) and Redis (a `redis-server` this test starts on a free port).
//! Concurrency tests use two independent backend handles on the same data,
//! as two host processes sharing a store would.

use std::sync::Arc;
use vnext_kv::redis::RedisStore;
use vnext_kv::sqlite::SqliteBackend;
use vnext_kv::{Error, Store};

struct RedisServer {
    child: std::process::Child,
    url: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> RedisServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server must be installed for the Redis backend tests (scripts/setup.sh installs it)");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return RedisServer { child, url: format!("redis://127.0.0.1:{port}/0") };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("redis-server did not start listening on port {port}");
}

fn sqlite_pair() -> (tempfile::TempDir, Arc<dyn Store>, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let a = Arc::new(SqliteBackend::open(&path).unwrap());
    let b = Arc::new(SqliteBackend::open(&path).unwrap());
    (dir, Arc::new(a.store("default")), Arc::new(b.store("default")))
}

async fn redis_pair(server: &RedisServer) -> (Arc<dyn Store>, Arc<dyn Store>) {
    (
        Arc::new(RedisStore::connect(&server.url).await.unwrap()),
        Arc::new(RedisStore::connect(&server.url).await.unwrap()),
    )
}

async fn basic_semantics(s: &dyn Store) {
    assert_eq!(s.get("missing").await.unwrap(), None);
    assert!(!s.exists("k").await.unwrap());
    s.set("k", b"v1").await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    s.set("k", b"v2").await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]), "set overwrites");
    assert!(s.exists("k").await.unwrap());
    s.delete("k").await.unwrap();
    s.delete("k").await.unwrap(); // deleting a missing key is not an error
    assert_eq!(s.get("k").await.unwrap(), None);

    s.set_many(&[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]).await.unwrap();
    let got = s.get_many(&["a".into(), "nope".into(), "b".into()]).await.unwrap();
    assert_eq!(got, vec![Some(b"1".to_vec()), None, Some(b"2".to_vec())]);
    let mut keys = s.get_keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["a", "b"]);
    s.delete_many(&["a".into(), "b".into()]).await.unwrap();
    assert!(s.get_keys().await.unwrap().is_empty());

    // Empty values and binary values round-trip.
    s.set("empty", b"").await.unwrap();
    assert_eq!(s.get("empty").await.unwrap(), Some(Vec::new()));
    s.set("bin", &[0, 255, 10, 0]).await.unwrap();
    assert_eq!(s.get("bin").await.unwrap(), Some(vec![0, 255, 10, 0]));
    s.delete_many(&["empty".into(), "bin".into()]).await.unwrap();
}

async fn limits_are_enforced(s: &dyn Store) {
    let long_key = "k".repeat(vnext_kv::MAX_KEY_BYTES + 1);
    assert!(matches!(s.set(&long_key, b"v").await, Err(Error::TooLarge(_))));
    let big = vec![0u8; vnext_kv::MAX_VALUE_BYTES + 1];
    assert!(matches!(s.set("k", &big).await, Err(Error::TooLarge(_))));
    assert_eq!(s.get("k").await.unwrap(), None, "a refused write stores nothing");
}

async fn compare_and_swap_semantics(s: &dyn Store) {
    assert!(s.compare_and_swap("c", None, b"1").await.unwrap(), "create when absent");
    assert!(!s.compare_and_swap("c", None, b"x").await.unwrap(), "absent expected but present");
    assert!(!s.compare_and_swap("c", Some(b"0"), b"x").await.unwrap(), "wrong expected value");
    assert_eq!(s.get("c").await.unwrap(), Some(b"1".to_vec()), "failed swaps change nothing");
    assert!(s.compare_and_swap("c", Some(b"1"), b"2").await.unwrap());
    assert_eq!(s.get("c").await.unwrap(), Some(b"2".to_vec()));
    s.delete("c").await.unwrap();
}

async fn increment_semantics(s: &dyn Store) {
    assert_eq!(s.increment("n", 5).await.unwrap(), 5, "missing counts as zero");
    assert_eq!(s.increment("n", -2).await.unwrap(), 3);
    s.set("text", b"not a number").await.unwrap();
    assert!(s.increment("text", 1).await.is_err());
    s.delete_many(&["n".into(), "text".into()]).await.unwrap();
}

/// Writers on two handles race to add 1 to a shared counter with a CAS
/// loop; no update may be lost.
async fn concurrent_cas_loses_no_update(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    const WRITERS: usize = 8;
    const ADDS: usize = 25;
    a.delete("counter").await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..ADDS {
                loop {
                    let cur = s.get("counter").await.unwrap();
                    let n: u64 = cur.as_deref().map(|v| std::str::from_utf8(v).unwrap().parse().unwrap()).unwrap_or(0);
                    if s.compare_and_swap("counter", cur.as_deref(), (n + 1).to_string().as_bytes()).await.unwrap() {
                        break;
                    }
                    conflicts += 1;
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = a.get("counter").await.unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&total).unwrap(), (WRITERS * ADDS).to_string());
}

async fn concurrent_increments_are_atomic(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    a.delete("hits").await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                s.increment("hits", 1).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(a.increment("hits", 0).await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_backend_semantics() {
    let (_dir, a, b) = sqlite_pair();
    basic_semantics(&*a).await;
    limits_are_enforced(&*a).await;
    compare_and_swap_semantics(&*a).await;
    increment_semantics(&*a).await;
    concurrent_cas_loses_no_update(a.clone(), b.clone()).await;
    concurrent_increments_are_atomic(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_backend_semantics() {
    let server = start_redis();
    let (a, b) = redis_pair(&server).await;
    basic_semantics(&*a).await;
    limits_are_enforced(&*a).await;
    compare_and_swap_semantics(&*a).await;
    increment_semantics(&*a).await;
    concurrent_cas_loses_no_update(a.clone(), b.clone()).await;
    concurrent_increments_are_atomic(a, b).await;
}

#[tokio::test]
async fn sqlite_labels_in_one_file_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(&dir.path().join("kv.db")).unwrap());
    let one = backend.store("one");
    let two = backend.store("two");
    one.set("k", b"1").await.unwrap();
    assert_eq!(two.get("k").await.unwrap(), None);
    assert_eq!(two.get_keys().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    {
        let b = Arc::new(SqliteBackend::open(&path).unwrap());
        b.store("default").set("k", b"kept").await.unwrap();
    }
    let b = Arc::new(SqliteBackend::open(&path).unwrap());
    assert_eq!(b.store("default").get("k").await.unwrap(), Some(b"kept".to_vec()));
}

#[tokio::test]
async fn unreachable_redis_fails_at_connect_with_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let err = match RedisStore::connect(&url).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&url), "{err}");
}
