//! Key-value store outages, as clients see them (issue 11, part 3).
//!
//! Redis: a host on a Redis these tests start (`--appendonly yes`, its own
//! data directory) takes writes from several threads while Redis is stopped
//! (SIGSTOP: the socket stays, nothing answers) and then killed and
//! restarted on the same port and data. Every answer meanwhile is a 2xx or
//! a 503 with `Retry-After` in the API's error shape, within the client's
//! timeout; the same host serves again within seconds of Redis answering;
//! every write that got a 2xx is readable afterwards.
//!
//! SQLite: a full disk (the state directory on a small tmpfs) and a file
//! made immutable (`chattr +i`: file modes do not stop root) are 503 with a
//! message, the host stays up, and writes succeed once space or write
//! access is back.

use crate::harness::{Host, Resp, assert_clean_error, try_request};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USER: &str = "0a7a0000-1111-4000-8000-000000000001";
const PROJECT: &str = "0a7a0000-2222-4000-8000-000000000001";
/// The host's request timeout in these tests, and the client's, a bit above.
const HOST_TIMEOUT_MS: u64 = 5_000;
const CLIENT_TIMEOUT: Duration = Duration::from_millis(HOST_TIMEOUT_MS + 3_000);
/// How soon after Redis answers again the host must serve again.
const RECOVER_WITHIN: Duration = Duration::from_secs(5);

fn token() -> String {
    format!("{USER}:{PROJECT}")
}

fn call(host: &Host, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<Resp, String> {
    let token = token();
    let mut headers = vec![("X-Auth-Token", token.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let body = body.map(|b| b.to_string());
    try_request(method, &host.url(path), &headers, body.as_deref(), CLIENT_TIMEOUT)
}

/// A 503 of an unavailable store: the one error shape, `Retry-After` of a
/// few seconds, a message naming the key-value store.
fn assert_store_503(r: &Resp) {
    assert_clean_error(r, 503);
    let secs: u64 = r.header("retry-after").unwrap_or_else(|| panic!("503 without Retry-After: {:?}", r.headers)).parse().unwrap();
    assert!((1..=10).contains(&secs), "Retry-After {secs}");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("key-value store"), "{}", r.body);
}

// ------------------------------------------------------------------ Redis

use crate::redis_server::RedisServer as Redis;

/// One answer seen under load.
struct Seen {
    at: Instant,
    took: Duration,
    what: String,
    outcome: Result<Resp, String>,
}

#[test]
fn redis_stopped_and_killed_under_load_gets_503s_then_recovers_losing_no_acknowledged_write() {
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("runtime-config.toml");
    let url = redis.url();
    std::fs::write(&rc, format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\"\n")).unwrap();
    let host = Host::vnext_builder()
        .arg("--runtime-config-file")
        .arg(rc.to_str().unwrap())
        .arg("--request-timeout-ms")
        .arg(HOST_TIMEOUT_MS.to_string())
        .start();

    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
    // Ids of the types whose creation got a 2xx, with their names.
    let created: Arc<Mutex<Vec<(String, String)>>> = Default::default();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, seen, created) = (stop.clone(), seen.clone(), created.clone());
            let host_url = host.base.clone();
            std::thread::spawn(move || {
                let host = HostUrl(host_url);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let name = format!("outage-{w}-{i}");
                    let started = Instant::now();
                    let outcome = host.call("POST", "/server_types", Some(&json!({"name": name, "spec": {"memory_mb": 256, "cpu_units": 1}})));
                    if let Ok(r) = &outcome
                        && r.status == 201
                    {
                        created.lock().unwrap().push((r.json()["id"].as_str().unwrap().to_string(), name.clone()));
                    }
                    // A read of something written before, too.
                    let last = created.lock().unwrap().last().cloned();
                    seen.lock().unwrap().push(Seen { at: started, took: started.elapsed(), what: format!("POST {name}"), outcome });
                    if let Some((id, _)) = last {
                        let started = Instant::now();
                        let outcome = host.call("GET", &format!("/server_types/{id}"), None);
                        seen.lock().unwrap().push(Seen { at: started, took: started.elapsed(), what: format!("GET {id}"), outcome });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();

    let phase = |what: &str, d: Duration| {
        eprintln!("{what} for {d:?}");
        std::thread::sleep(d);
    };
    phase("load with Redis up", Duration::from_secs(2));
    let stopped_at = Instant::now();
    redis.signal("STOP");
    phase("Redis stopped (SIGSTOP)", Duration::from_secs(7));
    redis.signal("CONT");
    let resumed_at = Instant::now();
    phase("Redis resumed", Duration::from_secs(3));
    let killed_at = Instant::now();
    redis.kill();
    phase("Redis killed", Duration::from_secs(4));
    redis.restart();
    let restarted_at = Instant::now();
    phase("Redis restarted", Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    // Every answer: a 2xx, or a 503 of the store in the error shape; no
    // transport failure (which a hung request past the timeout would be).
    let seen = seen.lock().unwrap();
    let mut outage_max = Duration::ZERO;
    let mut unavailable = 0;
    for s in seen.iter() {
        let r = match &s.outcome {
            Ok(r) => r,
            Err(e) => panic!("{}: no answer within {CLIENT_TIMEOUT:?} ({e}) after {:?}", s.what, s.took),
        };
        match r.status {
            200..=299 => {}
            503 => {
                assert_store_503(r);
                unavailable += 1;
                outage_max = outage_max.max(s.took);
            }
            other => panic!("{} answered {other}: {}", s.what, r.body),
        }
    }
    // The outages were seen, and answered well within the host's timeout.
    let failed_in = |from: Instant, to: Instant| {
        seen.iter().filter(|s| s.at >= from && s.at < to && s.outcome.as_ref().is_ok_and(|r| r.status == 503)).count()
    };
    assert!(failed_in(stopped_at, resumed_at) > 0, "no 503 while Redis was stopped");
    assert!(failed_in(killed_at, restarted_at) > 0, "no 503 while Redis was dead");
    assert!(outage_max < Duration::from_millis(HOST_TIMEOUT_MS), "a 503 took {outage_max:?}");
    // Back to 2xx soon after each return, without restarting the host.
    let recovered = |from: Instant| {
        let first_ok = seen
            .iter()
            .filter(|s| s.at >= from && s.outcome.as_ref().is_ok_and(|r| r.status < 300))
            .map(|s| s.at + s.took)
            .min()
            .expect("a 2xx after Redis came back");
        let after = first_ok.saturating_duration_since(from);
        assert!(after < RECOVER_WITHIN, "first 2xx {after:?} after Redis came back");
        after
    };
    let after_resume = recovered(resumed_at);
    let after_restart = recovered(restarted_at);
    let fails_after = |from: Instant| failed_in(from + RECOVER_WITHIN, Instant::now() + Duration::from_secs(60));
    assert_eq!(fails_after(restarted_at), 0, "503s long after Redis came back");
    let ok = seen.iter().filter(|s| s.outcome.as_ref().is_ok_and(|r| r.status < 300)).count();
    eprintln!(
        "{} answers: {ok} 2xx, {unavailable} 503 (slowest 503 {outage_max:?}); first 2xx {after_resume:?} after SIGCONT, {after_restart:?} after the restart",
        seen.len()
    );

    // Every acknowledged creation is there, in the restarted Redis.
    let created = created.lock().unwrap();
    assert!(created.len() > 10, "only {} creations succeeded", created.len());
    for (id, name) in created.iter() {
        let r = call(&host, "GET", &format!("/server_types/{id}"), None).unwrap();
        assert_eq!(r.status, 200, "type {name} ({id}) got 201 but reads {}: {}", r.status, r.body);
        assert_eq!(r.json()["name"], name.as_str());
    }
}

/// A host's base URL, usable from threads (Host itself is not shared).
struct HostUrl(String);

impl HostUrl {
    fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<Resp, String> {
        let token = token();
        let mut headers = vec![("X-Auth-Token", token.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let body = body.map(|b| b.to_string());
        try_request(method, &format!("{}{path}", self.0), &headers, body.as_deref(), CLIENT_TIMEOUT)
    }
}

// ------------------------------------------------------------------ SQLite

fn create(host: &Host, name: &str) -> Resp {
    call(host, "POST", "/server_types", Some(&json!({"name": name, "spec": {"memory_mb": 256, "cpu_units": 1}}))).unwrap()
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    fn new(size: &str) -> TmpfsMount {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs (needs root with CAP_SYS_ADMIN) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TmpfsMount { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn sqlite_on_a_full_disk_answers_503_and_recovers_when_space_is_freed() {
    let mount = TmpfsMount::new("8m");
    let state = mount.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let host = Host::vnext_builder().state_dir(&state).start();
    let before = create(&host, "before-full");
    assert_eq!(before.status, 201, "{}", before.body);
    let id = before.json()["id"].as_str().unwrap().to_string();

    // Fill the filesystem to the last byte.
    let filler = mount.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
    }
    // Writes are refused with a message (a few attempts: the WAL may still
    // have room for a page or two), reads and the host go on.
    let mut refused = None;
    for i in 0..20 {
        let r = create(&host, &format!("while-full-{i}"));
        match r.status {
            201 => continue,
            503 => {
                refused = Some(r);
                break;
            }
            other => panic!("a write on a full disk answered {other}: {}", r.body),
        }
    }
    let r = refused.expect("a write on a full disk was refused");
    assert_store_503(&r);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("full"), "{}", r.body);
    let read = call(&host, "GET", &format!("/server_types/{id}"), None).unwrap();
    assert!(matches!(read.status, 200 | 503), "{}", read.body);
    if read.status == 503 {
        assert_store_503(&read);
    }
    assert_eq!(call(&host, "GET", "/", None).unwrap().status, 200, "the host is alive");

    std::fs::remove_file(&filler).unwrap();
    let after = create(&host, "after-full");
    assert_eq!(after.status, 201, "space is back: {}", after.body);
    assert_eq!(call(&host, "GET", &format!("/server_types/{id}"), None).unwrap().status, 200);
}

#[test]
fn sqlite_file_made_read_only_answers_503_and_recovers() {
    let host = Host::vnext();
    let before = create(&host, "before-ro");
    assert_eq!(before.status, 201, "{}", before.body);
    let files: Vec<PathBuf> =
        ["sqlite_key_value.db", "sqlite_key_value.db-wal"].iter().map(|f| host.state_dir.join(f)).collect();
    let chattr = |flag: &str| {
        for f in &files {
            let ok = Command::new("chattr").arg(flag).arg(f).status().expect("chattr (e2fsprogs) must be installed");
            assert!(ok.success(), "chattr {flag} {} (needs root and a filesystem with the immutable attribute)", f.display());
        }
    };
    chattr("+i");
    let r = create(&host, "while-ro");
    chattr("-i");
    assert_store_503(&r);
    assert_eq!(call(&host, "GET", "/", None).unwrap().status, 200, "the host is alive");
    let after = create(&host, "after-ro");
    assert_eq!(after.status, 201, "write access is back: {}", after.body);
}
