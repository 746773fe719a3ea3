//! Hostile clients (issue 11, part 5), over raw TCP where an HTTP client
//! would be too polite: a body too large for the host refused from its
//! `Content-Length` before it is sent; too many or too large headers are
//! 431; a client sending its headers one byte at a time (slowloris) or its
//! body too slowly is cut off while others are served; connections past
//! the cap wait, with one log line; the events route refuses anything
//! without its secret; Keystone sees one check per refused token, however
//! often it is sent; and no error body gives anything internal away.

use crate::harness::{Host, Resp, assert_clean_error, assert_nothing_internal, request, try_request, wait_for};
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "0b5e0000-1111-4000-8000-000000000001:0b5e0000-2222-4000-8000-000000000001";

/// Sends `head` (and nothing more) on a fresh connection and reads one
/// answer: the status line and headers, and the body by its length.
fn raw_exchange(host: &Host, head: impl AsRef<[u8]>, timeout: Duration) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(host.addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(head.as_ref())?;
    read_response(&mut s)
}

/// Reads one HTTP/1.1 response (Content-Length bodies only, as the host sends).
fn read_response(s: &mut TcpStream) -> std::io::Result<Resp> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, format!("closed after {:?}", String::from_utf8_lossy(&buf))));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(Resp { status, headers, body: String::from_utf8_lossy(&body).to_string() })
}

/// Whether the host has closed `s` (EOF or reset), waiting up to `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // an answer (e.g. 408) before the close
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
}

fn get_root(host: &Host) -> Resp {
    try_request("GET", &host.url("/"), &[], None, Duration::from_secs(10)).expect("GET / answered")
}

// ------------------------------------------------------------ body limit

#[test]
fn a_content_length_over_the_limit_is_413_in_the_error_shape_before_the_body_is_sent() {
    let host = Host::vnext();
    let nine_mib = 9 * 1024 * 1024;
    // Only the head goes out: a host waiting for the body would never answer.
    let head = format!(
        "POST /server_types HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {nine_mib}\r\n\r\n"
    );
    let r = raw_exchange(&host, &head, Duration::from_secs(10)).expect("an answer without sending the body");
    assert_clean_error(&r, 413);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("8388608"), "{}", r.body);
    assert_eq!(r.header("connection"), Some("close"), "{:?}", r.headers);

    // A chunked body (no length announced) is cut off at the limit: 413 too.
    let big = "x".repeat(nine_mib);
    let r = try_request("POST", &host.url("/server_types"), &[("X-Auth-Token", TOKEN), ("Transfer-Encoding", "chunked")], Some(&big), Duration::from_secs(30));
    match r {
        Ok(r) => assert_clean_error(&r, 413),
        // The host may close before the client has sent everything.
        Err(e) => assert!(e.contains("reset") || e.contains("broken pipe") || e.contains("Broken pipe"), "{e}"),
    }
    assert_eq!(get_root(&host).status, 200);
}

// ------------------------------------------------------------ header limits

fn with_headers(n: usize, value_len: usize) -> String {
    let mut head = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..n {
        head.push_str(&format!("X-Filler-{i}: {}\r\n", "v".repeat(value_len)));
    }
    head.push_str("\r\n");
    head
}

#[test]
fn too_many_or_too_large_headers_are_431() {
    let host = Host::vnext();
    let t = Duration::from_secs(10);
    // Within the limits: served.
    assert_eq!(raw_exchange(&host, &with_headers(80, 10), t).unwrap().status, 200);
    // 200 headers, and 40 KiB of them: 431 in the error shape.
    assert_clean_error(&raw_exchange(&host, &with_headers(200, 10), t).unwrap(), 431);
    assert_clean_error(&raw_exchange(&host, &with_headers(4, 10 * 1024), t).unwrap(), 431);
    // Far beyond (more than hyper parses at all): hyper's own bare 431.
    assert_eq!(raw_exchange(&host, &with_headers(1000, 1), t).unwrap().status, 431);
    assert_eq!(raw_exchange(&host, &with_headers(2, 200 * 1024), t).unwrap().status, 431);
    assert_eq!(get_root(&host).status, 200, "the host serves on");
}

// ------------------------------------------------------------ slow clients

#[test]
fn a_slowloris_connection_is_closed_after_the_header_timeout_while_others_are_served() {
    let host = Host::vnext_builder().arg("--header-read-timeout-ms").arg("2000").start();
    let mut slow = TcpStream::connect(host.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    // One header byte every 200 ms, for up to 15 s: the host must hang up first.
    let payload = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for (i, b) in payload.iter().cycle().take(75).enumerate() {
        if slow.write_all(&[*b]).is_err() || closed_within(&mut slow, Duration::from_millis(200)) {
            closed = true;
            break;
        }
        if i % 5 == 0 {
            // Meanwhile other clients are served.
            assert_eq!(get_root(&host).status, 200);
        }
    }
    let took = started.elapsed();
    assert!(closed, "the slow connection was still open after {took:?}");
    assert!(took >= Duration::from_millis(1500), "closed after only {took:?}: before the timeout");
    eprintln!("slowloris closed after {took:?} (header timeout 2 s)");
}

#[test]
fn a_body_sent_too_slowly_is_408_in_the_error_shape() {
    let host = Host::vnext_builder().arg("--body-read-timeout-ms").arg("2000").start();
    let mut s = TcpStream::connect(host.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let head = format!("POST /server_types HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {TOKEN}\r\nContent-Length: 100\r\n\r\n{{\"name\"");
    s.write_all(head.as_bytes()).unwrap();
    let r = read_response(&mut s).expect("an answer to a stalled body");
    assert_clean_error(&r, 408);
    assert_eq!(get_root(&host).status, 200);
}

// ------------------------------------------------------------ connection cap

#[test]
fn connections_past_the_cap_wait_with_one_log_line_and_are_served_when_one_closes() {
    const CAP: usize = 4;
    let host = Host::vnext_builder().arg("--max-connections").arg(CAP.to_string()).start();
    // CAP idle connections hold every slot (well within the header timeout).
    let mut idle: Vec<TcpStream> = (0..CAP).map(|_| TcpStream::connect(host.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    // More clients: connected by the kernel, not served while the cap holds.
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(host.addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            s
        })
        .collect();
    let mut first = waiting.into_iter();
    let mut w = first.next().unwrap();
    w.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut b = [0u8; 16];
    let early = w.read(&mut b);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a connection past the cap of {CAP} was served: {early:?}"
    );
    let log = host.log();
    let lines = log.lines().filter(|l| l.contains("connection limit")).count();
    assert_eq!(lines, 1, "one log line, not one per waiting connection:\n{log}");
    // One slot frees: the waiting clients are served, in turn.
    drop(idle.pop());
    w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = read_response(&mut w).expect("served once a slot is free");
    assert_eq!(r.status, 200);
    drop(w);
    for mut w in first {
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(read_response(&mut w).expect("served in turn").status, 200);
    }
}

// ------------------------------------------------------------ events secret

#[test]
fn the_events_route_refuses_anything_without_its_secret() {
    const SECRET: &str = "hostile-clients-events-secret";
    let host = Host::vnext_builder().arg("--events-secret").arg(SECRET).start();
    let url = host.url("/internal/events");
    let body = json!({"observations": []}).to_string();
    let json_ct = ("Content-Type", "application/json");
    let wrong = [
        None,
        Some(""),
        Some("x"),
        Some(&SECRET[..SECRET.len() - 1]),
        Some("hostile-clients-events-secreT"),
        Some("hostile-clients-events-secret-and-more"),
    ];
    for secret in wrong {
        let mut headers = vec![json_ct];
        if let Some(s) = secret {
            headers.push(("x-vnext-events-secret", s));
        }
        let r = request("POST", &url, &headers, Some(&body));
        assert_clean_error(&r, 401);
        // A garbage body is refused for the secret, not parsed first.
        let r = request("POST", &url, &headers, Some("{not json"));
        assert_clean_error(&r, 401);
    }
    // With the secret the same garbage body is a 400: the secret was the gate.
    let r = request("POST", &url, &[json_ct, ("x-vnext-events-secret", SECRET)], Some("{not json"));
    assert_clean_error(&r, 400);
}

// ------------------------------------------------------------ Keystone

/// A fake Keystone that refuses every token but `good` and counts checks.
struct FakeKeystone {
    url: String,
    checks: Arc<AtomicUsize>,
}

const GOOD: &str = "good-keystone-token";

impl FakeKeystone {
    fn start() -> FakeKeystone {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let checks = Arc::new(AtomicUsize::new(0));
        let counted = checks.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = Vec::new();
                    let mut byte = [0u8; 1];
                    while !buf.ends_with(b"\r\n\r\n") {
                        match s.read(&mut byte) {
                            Ok(1) => buf.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_lowercase();
                    if head.starts_with("get /v3/auth/tokens") {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    let body = if head.contains(&format!("x-subject-token: {}", GOOD.to_lowercase())) {
                        json!({"token": {
                            "expires_at": "2099-01-01T00:00:00.000000Z",
                            "user": {"id": "0b5e00001111400080000000000000aa"},
                            "project": {"id": "0b5e00002222400080000000000000aa"},
                            "roles": [{"name": "member"}],
                        }})
                        .to_string()
                    } else {
                        String::new()
                    };
                    let status = if body.is_empty() { "404 Not Found" } else { "200 OK" };
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        FakeKeystone { url, checks }
    }

    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

#[test]
fn keystone_sees_one_check_per_refused_token_however_often_it_is_sent() {
    let ks = FakeKeystone::start();
    let host = Host::vnext_builder()
        .env("SPIN_VARIABLE_AUTH_VERIFIER", "keystone")
        .env("SPIN_VARIABLE_KEYSTONE_URL", &ks.url)
        .start();
    // Routes of several components: the refusal is shared through the store.
    let paths = ["/server_types", "/projects/0b5e0000-2222-4000-8000-0000000000aa/servers", "/placements"];
    let get = |path: &str, token: &str| request("GET", &host.url(path), &[("X-Auth-Token", token)], None);
    for i in 0..12 {
        let r = get(paths[i % paths.len()], "garbage-token");
        assert_clean_error(&r, 401);
    }
    assert_eq!(ks.checks(), 1, "one Keystone check for one refused token sent 12 times");
    for t in ["garbage-1", "garbage-2", "garbage-3"] {
        for path in paths {
            assert_clean_error(&get(path, t), 401);
        }
    }
    assert_eq!(ks.checks(), 4, "one check per distinct refused token");
    // A token far longer than any Keystone token is refused without a check.
    assert_clean_error(&get("/server_types", &"a".repeat(6000)), 401);
    assert_eq!(ks.checks(), 4);
    // A good token still works (and is cached the usual way).
    let r = get("/server_types", GOOD);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get("/placements", GOOD);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ks.checks(), 5);
}

// ------------------------------------------------------------ error bodies

#[test]
fn no_error_body_gives_anything_internal_away() {
    let host = Host::vnext();
    let t = Some(TOKEN);
    let cases: Vec<(&str, String, Option<&str>, Option<String>)> = vec![
        ("GET", "/no/such/route".into(), t, None),
        ("DELETE", "/".into(), t, None),
        ("GET", "/server_types".into(), None, None),
        ("GET", "/server_types".into(), Some("not-a-token"), None),
        ("GET", "/server_types/not-a-uuid".into(), t, None),
        ("POST", "/server_types".into(), t, Some("{not json".into())),
        ("POST", "/server_types".into(), t, Some("[1, 2, 3]".into())),
        ("POST", "/server_types".into(), t, Some(json!({"name": "x", "spec": {"memory_mb": -1}}).to_string())),
        ("POST", "/server_types".into(), t, Some("x".repeat(2 << 20))),
        ("GET", "/servers?limit=-5&marker=../../etc/passwd".into(), t, None),
        ("POST", "/internal/events".into(), None, Some("{}".into())),
    ];
    for (method, path, token, body) in cases {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(tok) = token {
            headers.push(("X-Auth-Token", tok));
        }
        let r = request(method, &host.url(&path), &headers, body.as_deref());
        assert!((400..500).contains(&r.status), "{method} {path}: {} {}", r.status, r.body);
        assert_clean_error(&r, r.status);
    }
    // Invalid UTF-8 and control bytes in a header: still a clean 4xx.
    let r = raw_exchange(&host, b"GET /server_types HTTP/1.1\r\nHost: x\r\nX-Auth-Token: \xff\xfe\r\n\r\n", Duration::from_secs(10)).unwrap();
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    assert_nothing_internal(&r.body);
    wait_for("the host to answer", Duration::from_secs(5), || (get_root(&host).status == 200).then_some(()));
}
