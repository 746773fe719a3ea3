//! The Keystone verifier (`auth_verifier = "keystone"`) against a real
//! OpenStack Keystone, started here from the venv scripts/setup.sh makes
//! (target/keystone-venv): SQLite database, fernet tokens, one gunicorn
//! worker. Tokens come from Keystone's own API, as a client would get them.

use crate::harness::{Host, Resp, repo_root, send, wait_for};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ADMIN_PASSWORD: &str = "admin-secret";

struct Keystone {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Keystone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv_bin(name: &str) -> PathBuf {
    let p = repo_root().join("target/keystone-venv/bin").join(name);
    assert!(p.exists(), "{} is missing: run scripts/setup.sh (it installs Keystone)", p.display());
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Keystone {
    fn start() -> Keystone {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let conf = d.join("keystone.conf");
        std::fs::write(
            &conf,
            format!(
                "[DEFAULT]\nlog_file = {d}/keystone.log\n\
                 [database]\nconnection = sqlite:///{d}/keystone.db\n\
                 [token]\nprovider = fernet\nexpiration = 3600\n\
                 [fernet_tokens]\nkey_repository = {d}/fernet-keys\n\
                 [fernet_receipts]\nkey_repository = {d}/fernet-keys\n\
                 [credential]\nkey_repository = {d}/credential-keys\n",
                d = d.display()
            ),
        )
        .unwrap();
        let manage = |args: &[&str]| {
            let out = Command::new(venv_bin("keystone-manage"))
                .arg("--config-file")
                .arg(&conf)
                .args(args)
                .env("OS_KEYSTONE_CONFIG_FILES", &conf)
                .output()
                .unwrap();
            assert!(out.status.success(), "keystone-manage {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        manage(&["db_sync"]);
        manage(&["fernet_setup", "--keystone-user", &user, "--keystone-group", &user]);
        manage(&["credential_setup", "--keystone-user", &user, "--keystone-group", &user]);
        manage(&["bootstrap", "--bootstrap-password", ADMIN_PASSWORD, "--bootstrap-public-url", &format!("{url}/v3")]);
        // Keystone's config parser would read gunicorn's arguments as its own.
        std::fs::write(d.join("wsgi_shim.py"), "import sys\nsys.argv = sys.argv[:1]\nfrom keystone.wsgi.api import application\n").unwrap();
        let child = Command::new(venv_bin("gunicorn"))
            .args(["--chdir", d.to_str().unwrap(), "-b", &format!("127.0.0.1:{port}"), "-w", "1", "wsgi_shim:application"])
            .env("OS_KEYSTONE_CONFIG_FILES", &conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gunicorn");
        let ks = Keystone { url, child, _dir: dir };
        wait_for("Keystone to listen", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(drop)
        });
        let r = send("GET", &format!("{}/v3", ks.url), None, None);
        assert_eq!(r.status, 200, "Keystone: {}", r.body);
        ks
    }

    /// A project-scoped token of `user` (password auth), as a client gets one.
    fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }});
        let r = send("POST", &format!("{}/v3/auth/tokens", self.url), None, Some(&body));
        assert_eq!(r.status, 201, "token for {user}: {}", r.body);
        r.header("x-subject-token").expect("x-subject-token header").to_string()
    }

    /// Creates `name` as an admin and returns its Keystone id (32 hex digits).
    fn create(&self, admin: &str, path: &str, kind: &str, fields: Value) -> String {
        let r = send("POST", &format!("{}/v3/{path}", self.url), Some(admin), Some(&json!({ kind: fields })));
        assert_eq!(r.status, 201, "create {kind}: {}", r.body);
        r.json()[kind]["id"].as_str().unwrap().to_string()
    }
}

/// Keystone's 32-hex id as the API spells it (hyphenated UUID).
fn api_id(keystone_id: &str) -> String {
    uuid::Uuid::parse_str(keystone_id).unwrap().hyphenated().to_string()
}

fn host_for(ks: &Keystone) -> Host {
    Host::vnext_builder()
        .env("SPIN_VARIABLE_AUTH_VERIFIER", "keystone")
        .env("SPIN_VARIABLE_KEYSTONE_URL", &ks.url)
        .start()
}

fn get(host: &Host, path: &str, token: &str) -> Resp {
    send("GET", &host.url(path), Some(token), None)
}

fn assert_error(r: &Resp, status: u16, words: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = r.json();
    assert_eq!(e["error"]["code"], status, "{}", r.body);
    assert!(e["error"]["message"].as_str().unwrap().contains(words), "{}", r.body);
}

#[test]
fn keystone_tokens_authenticate_members_and_admins_and_checks_are_cached() {
    let ks = Keystone::start();
    let admin = ks.token("admin", ADMIN_PASSWORD, "admin");
    let project = ks.create(&admin, "projects", "project", json!({"name": "demo", "domain_id": "default"}));
    let alice = ks.create(&admin, "users", "user", json!({"name": "alice", "domain_id": "default", "password": "alice-pw"}));
    let roles = send("GET", &format!("{}/v3/roles?name=member", ks.url), Some(&admin), None).json();
    let member_role = roles["roles"][0]["id"].as_str().unwrap().to_string();
    let r = send("PUT", &format!("{}/v3/projects/{project}/users/{alice}/roles/{member_role}", ks.url), Some(&admin), None);
    assert_eq!(r.status, 204, "{}", r.body);
    let member = ks.token("alice", "alice-pw", "demo");

    let host = host_for(&ks);
    let project_id = api_id(&project);

    // A member acts in the token's project, as the user Keystone names.
    let ty = send(
        "POST",
        &host.url("/server_types"),
        Some(&member),
        Some(&json!({"name": "ks.small", "spec": {"memory_mb": 512, "cpu_units": 1}})),
    );
    assert_eq!(ty.status, 201, "{}", ty.body);
    let r = get(&host, &format!("/projects/{project_id}/servers"), &member);
    assert_eq!(r.status, 200, "{}", r.body);
    // ...and is no admin: the admin list of every server is refused, another project is not theirs.
    let other = "6f1d6a3e-2222-4000-8000-00000000abcd";
    assert!(matches!(get(&host, &format!("/projects/{other}/servers"), &member).status, 403 | 404));
    // The admin role elevates: the admin sees the member's private type.
    let type_id = ty.json()["id"].as_str().unwrap().to_string();
    assert_eq!(get(&host, &format!("/server_types/{type_id}"), &admin).status, 200);
    let launched = send(
        "POST",
        &host.url(&format!("/projects/{project_id}/servers")),
        Some(&member),
        Some(&json!({"defaults": {"type_id": type_id, "template_id": "6f1d6a3e-4444-4000-8000-000000000004"}, "servers": [{"hostname": "ks-1"}]})),
    );
    assert_eq!(launched.status, 202, "{}", launched.body);
    let server_id = launched.json()[0]["id"].as_str().unwrap().to_string();
    let server = get(&host, &format!("/servers/{server_id}"), &member).json();
    assert_eq!(server["launched_by"], api_id(&alice), "{server}");
    assert_eq!(server["project_id"], project_id, "{server}");

    // Tokens Keystone does not know, and development tokens, are 401.
    assert_error(&get(&host, &format!("/servers/{server_id}"), "not-a-keystone-token"), 401, "Keystone");
    let dev = format!("{}:{project_id}", api_id(&alice));
    assert_error(&get(&host, &format!("/servers/{server_id}"), &dev), 401, "Keystone");
    assert_error(&send("GET", &host.url(&format!("/servers/{server_id}")), None, None), 401, "X-Auth-Token");

    // Records of expired tokens are deleted by later cache writes: plant
    // the cache of a token that expired in 2020, then let a new token be checked.
    let state = host.state_dir.clone();
    let store = kv_store(&state);
    let expired_bucket = vnext_core::keys::keystone_tokens_expiring("2020-01-01T00");
    let expired_entry = vnext_core::keys::keystone_token("00ff");
    let mut hours: Vec<String> = read_json(&store, vnext_core::keys::KEYSTONE_EXPIRY_BUCKETS).unwrap_or_default();
    assert!(!hours.is_empty(), "the checked tokens' expiry hours are listed");
    hours.insert(0, "2020-01-01T00".into());
    write_json(&store, vnext_core::keys::KEYSTONE_EXPIRY_BUCKETS, &json!(hours));
    write_json(&store, &expired_bucket, &json!(["00ff"]));
    write_json(&store, &expired_entry, &json!({"user_id": "x", "project_id": "y", "admin": false,
        "expires_at": "2020-01-01T00:30:00.000000Z", "checked_at": "2020-01-01T00:00:00.000000Z"}));
    let second = ks.token("alice", "alice-pw", "demo");
    assert_eq!(get(&host, &format!("/servers/{server_id}"), &second).status, 200);
    assert!(read_json::<Value>(&store, &expired_entry).is_none(), "the expired token's cache record is deleted");
    assert!(read_json::<Value>(&store, &expired_bucket).is_none(), "and its bucket");
    let hours: Vec<String> = read_json(&store, vnext_core::keys::KEYSTONE_EXPIRY_BUCKETS).unwrap();
    assert!(!hours.contains(&"2020-01-01T00".to_string()) && !hours.is_empty(), "{hours:?}");

    // Checked tokens are cached in the key-value store: with Keystone gone
    // they still work (until the cache time), while a token never seen
    // before cannot be checked: 503, saying so.
    let fresh = ks.token("alice", "alice-pw", "demo");
    drop(ks);
    assert_eq!(get(&host, &format!("/servers/{server_id}"), &member).status, 200);
    assert_eq!(get(&host, &format!("/server_types/{type_id}"), &admin).status, 200);
    assert_error(&get(&host, &format!("/servers/{server_id}"), &fresh), 503, "could not check the token");
    // The cache keys never contain a token.
    let db = host.state_dir.join("sqlite_key_value.db");
    assert_cache_has_no_token(&db, &[&member, &admin, &second]);
}

fn assert_cache_has_no_token(db: &Path, tokens: &[&str]) {
    let out = Command::new("sqlite3").arg(db).arg("SELECT key FROM spin_key_value WHERE key LIKE 'auth/keystone/%'").output().unwrap();
    let keys = String::from_utf8_lossy(&out.stdout);
    assert_eq!(keys.lines().count(), tokens.len(), "one cache record per checked token: {keys}");
    for t in tokens {
        assert!(!keys.contains(t), "a cache key holds a token: {keys}");
    }
}

fn kv_store(state: &Path) -> vnext_kv::sqlite::SqliteStore {
    let backend = std::sync::Arc::new(vnext_kv::sqlite::SqliteBackend::open(&state.join("sqlite_key_value.db")).unwrap());
    backend.store("default")
}

fn read_json<T: serde::de::DeserializeOwned>(store: &vnext_kv::sqlite::SqliteStore, key: &str) -> Option<T> {
    let bytes = futures::executor::block_on(vnext_kv::Store::get(store, key)).unwrap()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

fn write_json(store: &vnext_kv::sqlite::SqliteStore, key: &str, value: &Value) {
    futures::executor::block_on(vnext_kv::Store::set(store, key, value.to_string().as_bytes())).unwrap();
}
