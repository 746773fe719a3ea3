//! Key-value as Spin 4 offers it: `spin:key-value@3.0.0` (WASI 0.3 probe),
//! `fermyon:spin/key-value@2.0.0` (WASI 0.2 probe) and `wasi:keyvalue`
//! (store and atomics) all see the same data; `--key-value` seeds it; the
//! default store is the SQLite file `<state-dir>/sqlite_key_value.db`;
//! labels a component did not declare are `access-denied`; compare-and-swap
//! loses no update under concurrency; a Redis store configured with
//! `--runtime-config-file` is shared by two hosts.

use crate::harness::Host;
use crate::probe::{get, http, manifest_host, probe_host, start_redis, write_manifest};
use std::collections::BTreeSet;

fn put(host: &Host, path: &str, value: &str) {
    let r = http("PUT", &host.url(path), &[], Some(value));
    assert_eq!((r.status, r.body.as_str()), (200, "ok"), "PUT {path}");
}

fn value(host: &Host, path: &str) -> Option<String> {
    let r = get(&host.url(path));
    match r.status {
        200 => Some(r.body),
        404 => None,
        s => panic!("GET {path}: {s} {}", r.body),
    }
}

/// Reads `key` through all three interfaces.
fn read_all(host: &Host, key: &str) -> [Option<String>; 3] {
    [
        value(host, &format!("/p3/kv3/{key}")),
        value(host, &format!("/p2/kv2/{key}")),
        value(host, &format!("/p3/wasi-kv/get/{key}")),
    ]
}

fn all(v: &str) -> [Option<String>; 3] {
    [Some(v.to_string()), Some(v.to_string()), Some(v.to_string())]
}

#[test]
fn three_interfaces_share_one_store_seeded_from_the_command_line() {
    let host = probe_host()
        .arg("--key-value")
        .arg("seeded=from-cli")
        .arg("--key-value")
        .arg("default:labelled=with=equals")
        .start();

    assert_eq!(read_all(&host, "seeded"), all("from-cli"), "--key-value key=value");
    assert_eq!(read_all(&host, "labelled"), all("with=equals"), "--key-value label:key=value");
    assert_eq!(read_all(&host, "missing"), [None, None, None]);

    put(&host, "/p3/kv3/from-v3", "written by spin:key-value@3");
    assert_eq!(read_all(&host, "from-v3"), all("written by spin:key-value@3"));

    put(&host, "/p2/kv2/from-v2", "written by fermyon:spin/key-value@2");
    assert_eq!(read_all(&host, "from-v2"), all("written by fermyon:spin/key-value@2"));

    // wasi:keyvalue atomics: a counter is decimal text for the others.
    for expected in ["1", "2", "3"] {
        let r = get(&host.url("/p3/wasi-kv/incr/counter"));
        assert_eq!((r.status, r.body.as_str()), (200, expected));
    }
    assert_eq!(read_all(&host, "counter"), all("3"));

    // Overwrite through one, delete through another.
    put(&host, "/p2/kv2/from-v3", "overwritten");
    assert_eq!(read_all(&host, "from-v3"), all("overwritten"));
    assert_eq!(http("DELETE", &host.url("/p2/kv2/from-v3"), &[], None).status, 200);
    assert_eq!(read_all(&host, "from-v3"), [None, None, None]);
    assert_eq!(http("DELETE", &host.url("/p3/kv3/from-v2"), &[], None).status, 200);
    assert_eq!(read_all(&host, "from-v2"), [None, None, None]);

    // get-keys (streamed in spin:key-value@3) lists exactly what is there.
    let keys: Vec<String> = serde_json::from_value(get(&host.url("/p3/kv3-keys")).json()).unwrap();
    assert_eq!(keys, vec!["counter", "labelled", "seeded"]);

    // The default store is Spin's SQLite file in the state directory.
    let db = host.state_dir.join("sqlite_key_value.db");
    assert!(db.is_file(), "{} does not exist", db.display());
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT key || '=' || CAST(value AS TEXT) FROM spin_key_value WHERE store = 'default' ORDER BY key")
        .output()
        .expect("sqlite3 must be installed (scripts/setup.sh installs it)");
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(),
        vec!["counter=3", "labelled=with=equals", "seeded=from-cli"]
    );
}

#[test]
fn data_survives_a_restart_on_the_same_state_dir() {
    let state = tempfile::tempdir().unwrap();
    {
        let host = probe_host().state_dir(state.path()).start();
        put(&host, "/p3/kv3/durable", "still here");
        assert_eq!(host.stop().code(), Some(0));
    }
    let host = probe_host().state_dir(state.path()).start();
    assert_eq!(read_all(&host, "durable"), all("still here"));
}

#[test]
fn undeclared_labels_are_access_denied() {
    // `other` is configured (runtime config) but no component declares it.
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("runtime-config.toml");
    std::fs::write(&rc, "[key_value_store.other]\ntype = \"spin\"\npath = \"other.db\"\n").unwrap();
    let host = probe_host().arg("--runtime-config-file").arg(rc.to_str().unwrap()).start();

    // (path, expected answer)
    let table = [
        // Declared: opens, through every interface.
        ("/p3/kv-open/default", "ok"),
        ("/p2/kv-open/default", "ok"),
        ("/p3/wasi-kv/open/default", "ok"),
        // `nokv` declares no store at all.
        ("/nokv/kv-open/default", "access-denied"),
        ("/nokv/wasi-kv/open/default", "access-denied"),
        // Configured, not declared.
        ("/p3/kv-open/other", "access-denied"),
        ("/p2/kv-open/other", "access-denied"),
        ("/p3/wasi-kv/open/other", "access-denied"),
        // Neither configured nor declared: Spin answers access-denied too
        // ("does not have access to the specified store (which may or may
        // not exist)"), so a component cannot probe which stores exist.
        ("/p3/kv-open/ghost", "access-denied"),
        ("/p2/kv-open/ghost", "access-denied"),
        ("/p3/wasi-kv/open/ghost", "access-denied"),
    ];
    let mut wrong = Vec::new();
    for (path, expected) in table {
        let r = get(&host.url(path));
        if (r.status, r.body.as_str()) != (200, expected) {
            wrong.push(format!("{path}: {} {:?} (expected {expected})", r.status, r.body));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // And using the store from `nokv` fails rather than reaching the data.
    assert_eq!(get(&host.url("/nokv/kv3/seeded")).status, 500);
}

#[test]
fn a_declared_label_without_a_store_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        r#"spin_manifest_version = 2
[application]
name = "ghost-store"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "@P3@"
key_value_stores = ["default", "ghost"]
"#,
    );
    let (status, out) = crate::probe::run_expecting_exit(&manifest, &[]);
    assert!(!status.success());
    assert!(out.contains("ghost"), "the error should name the label:\n{out}");
}

#[test]
fn compare_and_swap_loses_no_update_under_concurrency() {
    let host = probe_host().start();
    const N: usize = 20;
    let url = host.url("/p3/wasi-kv/cas-add/cas-counter");
    let results: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    let r = get(&url);
                    (r.status, r.body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seen = BTreeSet::new();
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        seen.insert(v["value"].as_i64().unwrap());
    }
    // Each successful swap wrote a distinct value: 1..=N exactly.
    assert_eq!(seen, (1..=N as i64).collect::<BTreeSet<_>>(), "{results:?}");
    assert_eq!(read_all(&host, "cas-counter"), all(&N.to_string()));
}

#[test]
fn redis_store_is_shared_by_two_hosts() {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("runtime-config.toml");
    std::fs::write(&rc, format!("[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n", redis.url)).unwrap();
    let rc = rc.to_str().unwrap().to_string();
    let manifest = crate::probe::probe_manifest();
    let a = manifest_host(&manifest).arg("--runtime-config-file").arg(&rc).start();
    let b = manifest_host(&manifest)
        .arg("--runtime-config-file")
        .arg(&rc)
        .arg("--key-value")
        .arg("seeded-by-b=yes")
        .start();

    assert_eq!(read_all(&a, "seeded-by-b"), all("yes"), "seed of host b seen by host a");
    put(&a, "/p3/kv3/shared", "from host a");
    assert_eq!(read_all(&b, "shared"), all("from host a"));
    put(&b, "/p2/kv2/shared", "from host b");
    assert_eq!(read_all(&a, "shared"), all("from host b"));

    // Compare-and-swap across both hosts: no lost update.
    const PER_HOST: usize = 10;
    let urls = [a.url("/p3/wasi-kv/cas-add/redis-counter"), b.url("/p3/wasi-kv/cas-add/redis-counter")];
    let statuses: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..PER_HOST * 2)
            .map(|i| {
                let url = urls[i % 2].clone();
                s.spawn(move || {
                    let r = get(&url);
                    (r.status, r.body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|(s, _)| *s == 200), "{statuses:?}");
    assert_eq!(read_all(&a, "redis-counter"), all(&(PER_HOST * 2).to_string()));

    // Nothing went to the SQLite file.
    let keys: Vec<String> = serde_json::from_value(get(&b.url("/p3/kv3-keys")).json()).unwrap();
    assert!(keys.contains(&"shared".to_string()), "{keys:?}");
    assert!(
        !a.state_dir.join("sqlite_key_value.db").exists()
            || std::process::Command::new("sqlite3")
                .arg(a.state_dir.join("sqlite_key_value.db"))
                .arg("SELECT count(*) FROM spin_key_value WHERE key = 'shared'")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
                .unwrap_or(true),
        "a Redis-backed default store must not write the SQLite file"
    );
}
