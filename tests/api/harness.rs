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

/// `VNEXT_TEST_HYPERVISOR=dependency` runs every host of the vNext app as
/// real Spin would: `vnext up --hypervisor dependency` (hypervisor-client
/// composed into the components) beside a `vnext adapter` process that
/// holds the inventory. scripts/test.sh runs the task and walk-through
/// tests a second time so.
pub fn dependency_mode() -> bool {
    std::env::var("VNEXT_TEST_HYPERVISOR").is_ok_and(|v| v == "dependency")
}

/// A `vnext adapter` process beside a host (dependency mode), or shared by
/// several hosts ([`SharedAdapter`]).
struct AdapterProcess {
    child: Child,
    /// Port, inventory and events secret it was started with.
    setup: (u16, String, String),
}

impl Drop for AdapterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `vnext adapter` on `port` over `inventory`, posting events to
/// `api`; its output joins the host's log. Returns once it serves.
fn start_adapter(port: u16, inventory: &str, api: &str, secret: &str, state_dir: &Path, log: &Arc<Mutex<Vec<String>>>) -> AdapterProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vnext"))
        .arg("adapter")
        .args(["--inventory", inventory])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--events-url", api])
        .arg("--state-dir")
        .arg(state_dir.join("adapter"))
        .env("VNEXT_EVENTS_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vnext adapter");
    let (tx, rx) = std::sync::mpsc::channel();
    for (pipe, tx) in [
        (Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Some(tx)),
        (Box::new(child.stderr.take().unwrap()), None),
    ] {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let serving = line.starts_with("Adapter serving ");
                // Logged before the start is reported, so the log has it.
                log.lock().unwrap().push(format!("[adapter] {line}"));
                if let (true, Some(tx)) = (serving, &tx) {
                    let _ = tx.send(());
                }
            }
        });
    }
    if rx.recv_timeout(START_TIMEOUT).is_err() {
        let _ = child.kill();
        panic!("vnext adapter did not serve:\n{}", log.lock().unwrap().join("\n"));
    }
    AdapterProcess { child, setup: (port, inventory.to_string(), secret.to_string()) }
}

pub struct Host {
    pub base: String,
    pub addr: std::net::SocketAddr,
    child: Child,
    pub state_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    log: Arc<Mutex<Vec<String>>>,
    /// Dependency mode: the adapter process (dropped after the host).
    adapter: Option<AdapterProcess>,
}

pub struct HostBuilder {
    manifest: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    state_dir: Option<PathBuf>,
    /// Serve the hypervisor from a `vnext adapter` process (dependency mode).
    adapter_process: bool,
}

impl HostBuilder {
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        HostBuilder {
            manifest: manifest.into(),
            args: Vec::new(),
            env: Vec::new(),
            state_dir: None,
            adapter_process: dependency_mode(),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Dependency mode with the adapter process of [`SharedAdapter`] (and
    /// no adapter of its own): several hosts, one adapter.
    pub fn shared_adapter(mut self, adapter: &SharedAdapterAddress) -> Self {
        self.adapter_process = false;
        self.args.extend(["--hypervisor".to_string(), "dependency".to_string()]);
        self.env.push(("SPIN_VARIABLE_ADAPTER_URL".into(), format!("http://127.0.0.1:{}", adapter.port)));
        self.env.push(("VNEXT_EVENTS_SECRET".into(), adapter.secret.clone()));
        self
    }

    /// Dependency mode for this host whatever VNEXT_TEST_HYPERVISOR says.
    pub fn adapter_process(mut self) -> Self {
        self.adapter_process = true;
        self
    }

    /// Reuse a state directory (to restart a host on the same data).
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    pub fn start(mut self) -> Host {
        // Dependency mode applies to the vNext app itself, not to the test
        // apps; the inventory then goes to the adapter process.
        let mut adapter_setup = None;
        if self.adapter_process && self.manifest == repo_root().join("spin.toml") {
            let inventory = match self.args.iter().position(|a| a == "--inventory") {
                Some(i) => {
                    let value = self.args.remove(i + 1);
                    self.args.remove(i);
                    value
                }
                None => repo_root().join("tests/fixtures/inventory.toml").to_str().unwrap().to_string(),
            };
            // A free port for the adapter, known before the host starts
            // (its adapter_url); the host's own port comes after.
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let secret = format!("test-{}-{port}", std::process::id());
            self.args.extend(["--hypervisor".to_string(), "dependency".to_string()]);
            self.env.push(("SPIN_VARIABLE_ADAPTER_URL".into(), format!("http://127.0.0.1:{port}")));
            self.env.push(("VNEXT_EVENTS_SECRET".into(), secret.clone()));
            adapter_setup = Some((port, inventory, secret));
        }
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
        let adapter = adapter_setup
            .map(|(port, inventory, secret)| start_adapter(port, &inventory, &base, &secret, &state_dir, &log));
        Host { base, addr, child, state_dir, _tmp: tmp, log, adapter }
    }
}

/// Where a shared adapter will listen, known before the hosts start.
pub struct SharedAdapterAddress {
    pub port: u16,
    pub secret: String,
}

impl SharedAdapterAddress {
    pub fn pick() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        SharedAdapterAddress { port, secret: format!("shared-{}-{port}", std::process::id()) }
    }
}

/// One `vnext adapter` for several hosts, posting events to each in turn.
pub struct SharedAdapter {
    process: AdapterProcess,
    log: Arc<Mutex<Vec<String>>>,
    /// Where events go (comma-separated host URLs) and the journal's parent.
    events_urls: String,
    state_dir: PathBuf,
}

impl SharedAdapter {
    pub fn start(at: &SharedAdapterAddress, inventory: &Path, hosts: &[&Host], state_dir: &Path) -> SharedAdapter {
        let log = Arc::new(Mutex::new(Vec::new()));
        let urls: Vec<&str> = hosts.iter().map(|h| h.base.as_str()).collect();
        let events_urls = urls.join(",");
        let process = start_adapter(at.port, inventory.to_str().unwrap(), &events_urls, &at.secret, state_dir, &log);
        SharedAdapter { process, log, events_urls, state_dir: state_dir.to_path_buf() }
    }

    /// `kill -9`, then a new process on the same port, inventory and journal.
    pub fn kill(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
    }

    pub fn restart(&mut self) {
        let (port, inventory, secret) = self.process.setup.clone();
        self.process = start_adapter(port, &inventory, &self.events_urls, &secret, &self.state_dir, &self.log);
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for SharedAdapter {
    fn drop(&mut self) {
        let _ = self.process.child.kill();
        if std::thread::panicking() {
            eprintln!("---- adapter log ----\n{}\n---------------------", self.log());
        }
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

    /// Dependency mode: kills the adapter process (SIGKILL) and waits for it.
    pub fn kill_adapter(&mut self) {
        if let Some(a) = &mut self.adapter {
            let _ = a.child.kill();
            let _ = a.child.wait();
        }
    }

    /// Dependency mode: starts the adapter process again, on the same port,
    /// inventory and journal.
    pub fn restart_adapter(&mut self) {
        let a = self.adapter.as_ref().expect("a host in dependency mode");
        let (port, inventory, secret) = a.setup.clone();
        let restarted = start_adapter(port, &inventory, &self.base, &secret, &self.state_dir, &self.log);
        self.adapter = Some(restarted);
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
    let resp = exchange(&agent(), method, url, headers, body).unwrap_or_else(|e| panic!("{e}"));
    check_against_schemas(method, url, &resp);
    resp
}

/// One request on `agent`; a status is an answer, a transport failure the `Err`.
fn exchange(agent: &ureq::Agent, method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Result<Resp, String> {
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
    exchange(&agent, method, url, headers, body)
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
