//! Helpers for the Spin-compatibility tests: the probe application
//! (tests/fixtures/probe.toml), a raw HTTP/1.x client (to control the Host
//! header and know the client's address), plain HTTP with any body, a
//! manifest that must fail to start, a tiny local HTTP server for outbound
//! tests, and a throwaway `redis-server`.

use crate::harness::{HostBuilder, Resp, repo_root};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures")
}

pub fn probe_manifest() -> PathBuf {
    fixtures().join("probe.toml")
}

pub fn inventory() -> String {
    fixtures().join("inventory.toml").to_str().unwrap().to_string()
}

pub fn p3_wasm() -> PathBuf {
    repo_root().join("target/wasm32-wasip2/release/vnext_probe_p3.wasm")
}

pub fn p2_wasm() -> PathBuf {
    repo_root().join("target/wasm32-wasip2/release/vnext_probe_p2.wasm")
}

/// Fails with what to do when the probe components were not built.
pub fn require_probes() {
    for w in [p3_wasm(), p2_wasm()] {
        assert!(
            w.exists(),
            "{} is missing: build the fixtures with scripts/build-components.sh",
            w.display()
        );
    }
}

/// A host running the probe application (any manifest may be given).
pub fn probe_host() -> HostBuilder {
    manifest_host(&probe_manifest())
}

pub fn manifest_host(manifest: &Path) -> HostBuilder {
    require_probes();
    HostBuilder::new(manifest).arg("--inventory").arg(inventory())
}

/// Writes a manifest into `dir`; `@P3@` and `@P2@` stand for the probes' paths.
pub fn write_manifest(dir: &Path, text: &str) -> PathBuf {
    let text = text
        .replace("@P3@", p3_wasm().to_str().unwrap())
        .replace("@P2@", p2_wasm().to_str().unwrap());
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `vnext up` on a manifest that must NOT start; returns the exit
/// status and everything it printed. Panics if it starts serving.
pub fn run_expecting_exit(manifest: &Path, env: &[(&str, &str)]) -> (ExitStatus, String) {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vnext"))
        .arg("up")
        .arg("-f")
        .arg(manifest)
        .args(["--listen", "127.0.0.1:0", "--inventory", &inventory()])
        .arg("--state-dir")
        .arg(state.path())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vnext");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "vnext kept running for 60 s with a manifest it should refuse:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(!out.contains("Serving http://"), "the host served although it should refuse:\n{out}");
    (status, out)
}

pub use crate::harness::request as http;

pub fn get(url: &str) -> Resp {
    http("GET", url, &[], None)
}

/// Sends `request` as written (e.g. without a Host header) on a fresh
/// connection and reads the whole response. Returns it and the client's
/// own address, which the host should report in `spin-client-addr`.
pub fn raw_request(addr: SocketAddr, request: &str) -> (Resp, SocketAddr) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let local = s.local_addr().unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    (parse_response(&raw), local)
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("response has a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Resp { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { break };
        let size_text = String::from_utf8_lossy(&b[..eol]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).expect("chunk size");
        b = &b[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
    out
}

/// A one-route HTTP server on 127.0.0.1 answering every request with
/// `200 <body>` and counting the connections it accepted.
pub struct TestServer {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn start(body: &'static str) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes());
                });
            }
        });
        TestServer { port, connections }
    }

    pub fn accepted(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A `redis-server` on a free port, killed when dropped.
pub struct RedisServer {
    child: std::process::Child,
    pub url: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_redis() -> RedisServer {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/setup.sh installs it)");
    let server = RedisServer { child, url: format!("redis://127.0.0.1:{port}/0") };
    crate::harness::wait_for("redis-server to listen", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    server
}
