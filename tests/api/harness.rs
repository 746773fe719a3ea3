//! Starts the real `vnext` binary on an ephemeral port with its own state
//! directory, waits until it serves, and offers a small HTTP client.
//! The process is killed (and its log printed on failure) when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root (tests run with the host crate as cwd).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// How long a host may take to start (compiling components on a cold cache).
const START_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Host {
    pub base: String,
    pub addr: std::net::SocketAddr,
    child: Child,
    pub state_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    log: Arc<Mutex<Vec<String>>>,
}

pub struct HostBuilder {
    manifest: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    state_dir: Option<PathBuf>,
}

impl HostBuilder {
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        HostBuilder { manifest: manifest.into(), args: Vec::new(), env: Vec::new(), state_dir: None }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Reuse a state directory (to restart a host on the same data).
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    pub fn start(self) -> Host {
        let (tmp, state_dir) = match self.state_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().unwrap();
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        // The compile cache is shared between tests so each host starts fast.
        let cache = repo_root().join("target/test-compile-cache");
        std::fs::create_dir_all(&cache).unwrap();
        let _ = std::os::unix::fs::symlink(&cache, state_dir.join("cache"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vnext"));
        cmd.arg("up")
            .arg("-f")
            .arg(&self.manifest)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(&state_dir)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn vnext");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("Serving ") {
                        let _ = tx.send(url.trim().to_string());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let started = Instant::now();
        let base = loop {
            if let Ok(url) = rx.recv_timeout(Duration::from_millis(100)) {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("vnext exited with {status} before serving:\n{}", log.lock().unwrap().join("\n"));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                panic!("vnext did not serve within {START_TIMEOUT:?}:\n{}", log.lock().unwrap().join("\n"));
            }
        };
        let addr = base.trim_start_matches("http://").parse().unwrap();
        Host { base, addr, child, state_dir, _tmp: tmp, log }
    }
}

impl Host {
    /// The vNext application (top-level spin.toml) with the test inventory.
    pub fn vnext() -> Host {
        Self::vnext_builder().start()
    }

    pub fn vnext_builder() -> HostBuilder {
        HostBuilder::new(repo_root().join("spin.toml"))
            .arg("--inventory")
            .arg(repo_root().join("tests/fixtures/inventory.toml").to_str().unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Stops the host with SIGTERM and waits for it to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = self.child.wait().unwrap();
        status
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- vnext log ----\n{}\n-------------------", self.log());
        }
    }
}

/// A response, whatever its status.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    // Redirects are answers to check, not to follow.
    ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).redirects(0).build()
}

/// Sends a JSON request; `token` goes into `X-Auth-Token`.
pub fn send(method: &str, url: &str, token: Option<&str>, body: Option<&serde_json::Value>) -> Resp {
    let mut headers = Vec::new();
    if let Some(t) = token {
        headers.push(("X-Auth-Token", t));
    }
    let body = body.map(|b| b.to_string());
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    request(method, url, &headers, body.as_deref())
}

/// Any method, any headers, a raw text body; never panics on a status.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .flat_map(|n| resp.all(&n).into_iter().map(move |v| (n.clone(), v.to_string())).collect::<Vec<_>>())
        .collect();
    let body = resp.into_string().unwrap_or_default();
    let resp = Resp { status, headers, body };
    check_against_schemas(method, url, &resp);
    resp
}

/// Every answer of the API (it carries the API version header) is checked
/// against the schemas it names, whatever the test asserts besides: each
/// object whose `_links.describedby` is `/schemas/<x>` must match that
/// schema (which also lists its required fields and forbids others), an
/// error body must match `/schemas/error`, a launch answer's entries
/// `/schemas/server_launch_result`, and a tag list must be tags.
/// The schemas are vnext-core's, the same code that serves `/schemas`
/// (`tests/api/proposal.rs` checks that they are what the host serves).
fn check_against_schemas(method: &str, url: &str, resp: &Resp) {
    use vnext_core::schemas;
    if resp.header("x-openstack-compute-api-version").is_none() || method == "HEAD" || resp.body.is_empty() {
        return;
    }
    let json_type = resp.header("content-type").is_some_and(|t| t.starts_with("application/json"));
    let Some(body) = json_type.then(|| serde_json::from_str::<serde_json::Value>(&resp.body).ok()).flatten() else {
        return;
    };
    let fail = |what: &str, e: String| -> ! { panic!("{method} {url} answered {} with {what} that {e}:\n{}", resp.status, resp.body) };
    if resp.status >= 400 {
        return schemas::validate("error", &body).unwrap_or_else(|e| fail("an error body", e));
    }
    // A launch answers a bare array of links to the new servers, whose
    // `describedby` names the schema of the server behind `self`.
    if method == "POST" && resp.status == 202 && body.is_array() {
        for entry in body.as_array().into_iter().flatten() {
            schemas::validate("server_launch_result", entry).unwrap_or_else(|e| fail("a launch entry", e));
        }
        return;
    }
    for (object, at) in schemas::described_objects(&body) {
        let value = body.pointer(&at).expect("a pointer found in the body");
        schemas::validate(&object, value).unwrap_or_else(|e| fail(&format!("{object} at {at:?}"), e));
    }
    let path = url.split('?').next().unwrap_or(url);
    if method == "GET" && path.ends_with("/tags") {
        let tags = body.as_array().unwrap_or_else(|| fail("a tag list", "is not a bare array".into()));
        for t in tags {
            schemas::validate("tag", t).unwrap_or_else(|e| fail("a tag", e));
        }
    }
}

/// Polls `f` until it returns `Some`, failing after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`request`], with a client timeout, and a transport failure (no
/// answer in time, connection closed) as an `Err` instead of a panic: for
/// tests of outages and hostile clients, where that is the thing checked.
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> Result<Resp, String> {
    let agent = ureq::AgentBuilder::new().timeout(timeout).redirects(0).build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("{method} {url}: {e}")),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .flat_map(|n| resp.all(&n).into_iter().map(move |v| (n.clone(), v.to_string())).collect::<Vec<_>>())
        .collect();
    let body = resp.into_string().map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
    Ok(Resp { status, headers, body })
}

/// Asserts an error answer in the API's one shape (`{"error": {"code",
/// "title", "message"}}`, JSON, code = status) that gives nothing internal
/// away: no file path, source location, panic or backtrace.
pub fn assert_clean_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?} {}", r.headers, r.body);
    let body = r.json();
    assert_eq!(body["error"]["code"], status, "{}", r.body);
    assert!(body["error"]["title"].as_str().is_some_and(|t| !t.is_empty()), "{}", r.body);
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.body);
    vnext_core::schemas::validate("error", &body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    assert_nothing_internal(&r.body);
}

/// Asserts `body` names no file path, source location, panic or backtrace.
pub fn assert_nothing_internal(body: &str) {
    let lower = body.to_lowercase();
    for leak in ["/work/", "/tmp/", "/root/", "/home/", "/usr/", ".rs:", "panicked", "backtrace", "stack", "os error", ".db"] {
        assert!(!lower.contains(leak), "an error body gives away {leak:?}: {body}");
    }
}
