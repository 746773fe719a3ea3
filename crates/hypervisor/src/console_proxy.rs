//! The console proxy: a websocket-to-TCP bridge for the VNC displays of
//! libvirt guests, like Nova's `nova-novncproxy`.
//!
//! How it works:
//! 1. A client asks the API for a console (`GET /servers/{id}/consoles/novnc`).
//!    The libvirt driver reads the running domain's live XML for its VNC
//!    port, and [`ConsoleProxy::issue`] records a one-time token for that
//!    `host:port`, the console kind and the server. The client gets
//!    `<public_url>/vnc_auto.html?path=%3Ftoken%3D<token>` (the form Nova
//!    gives since noVNC 1.1, which reads the websocket path from `path`),
//!    or `<public_url>/console?token=<token>` for `xvpvnc`.
//! 2. noVNC opens a websocket to the `path` it was given, so the proxy
//!    accepts the upgrade on `GET /?token=...`, `GET /websockify?token=...`
//!    and `GET /console?token=...`. The token is consumed there (a used,
//!    unknown or expired token is a 4xx with a JSON error saying which), the
//!    proxy connects to the VNC display, answers `101 Switching Protocols`
//!    (with the `binary` subprotocol when the client offers it, as noVNC
//!    does) and then copies websocket binary frames to the TCP connection
//!    and TCP bytes to binary frames, until either side closes.
//!
//! 3. With `[console_proxy] web` (noVNC's directory, e.g. Debian's
//!    `/usr/share/novnc`), plain `GET`s of other paths serve its files, as
//!    nova-novncproxy does, so the console URI opens in a browser; without
//!    it, `public_url` must point where noVNC's pages are served with the
//!    proxy behind the same origin.
//!
//! Why this way: QEMU's VNC server listens on the compute node's loopback
//! (`<graphics type='vnc' listen='127.0.0.1'/>`), never on a public
//! address, and browsers speak websockets, not raw TCP. A proxy in the
//! adapter process, the one process that knows where each domain's display
//! is, bridges the two without exposing any VNC port; the token is the
//! only credential, so it is random (UUID v4), usable once and short-lived.
//! Tokens live in memory: a restarted adapter forgets them, and clients
//! ask for a new console, as with Nova's in-memory token store.
//!
//! The websocket layer (RFC 6455) is written here rather than taken from
//! `tokio-tungstenite`: the proxy needs only the server side of binary
//! frames, control frames and the handshake, about 250 lines, while
//! tungstenite would add several crates (rand, thiserror, utf-8, its own
//! HTTP parsing) to the adapter for a handshake hyper already does. The
//! handshake's SHA-1 and base64 come from `sha1_smol` and `base64`, both
//! already in the workspace's lock file. The tests use tokio-tungstenite
//! as an independent client, so the framing is not only checked against
//! itself.
//!
//! Robustness: every connection runs in its own task; a client that sends
//! garbage gets a close frame with the RFC's status code (1002 protocol
//! error, 1003 text data, 1009 a frame over [`MAX_FRAME_PAYLOAD`]) and is
//! dropped, never a panic. The accept loop survives accept errors.

use crate::inventory::ConsoleProxyOptions;
use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vnext_core::hypervisor::ConsoleType;

/// How long a console token can be used after it was issued by default
/// (`[console_proxy] token_ttl_seconds`). Nova's `[consoleauth]
/// token_ttl` is 10 minutes too: long enough for a user to open the URI
/// from the dashboard, a CLI or a ticket, short enough that a URI that
/// leaked into a log or a browser history is soon worthless. A token is
/// used once anyway; the TTL bounds the tokens nobody ever opened.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(600);

/// The largest websocket frame payload accepted from a client. A VNC
/// client sends key and pointer events of a few bytes; the largest message
/// is a clipboard paste (ClientCutText). 4 MiB is far above that and
/// bounds the memory one connection can make the adapter hold (a frame is
/// buffered whole before it is forwarded).
pub const MAX_FRAME_PAYLOAD: usize = 4 << 20;

/// How long the proxy tries to reach a VNC display before answering 502.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Bytes read from the VNC display per binary frame at most.
const READ_CHUNK: usize = 64 << 10;
/// The GUID of RFC 6455's `Sec-WebSocket-Accept`.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Where a token leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleTarget {
    /// The server the console belongs to (logged).
    pub server_id: String,
    pub kind: ConsoleType,
    /// The VNC display to connect to, `host:port` (`[v6]:port` for IPv6).
    pub address: String,
}

/// Why a token opens nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Never issued, or forgotten long ago (or by a restarted adapter).
    Unknown,
    /// Already opened a console.
    Used,
    /// Issued more than the TTL ago.
    Expired,
}

impl TokenError {
    fn status(&self) -> StatusCode {
        match self {
            TokenError::Unknown => StatusCode::NOT_FOUND,
            TokenError::Used | TokenError::Expired => StatusCode::GONE,
        }
    }

    fn message(&self, ttl: Duration) -> String {
        match self {
            TokenError::Unknown => {
                "the console token is unknown (never issued, or issued before the adapter restarted); ask the API for a new console".into()
            }
            TokenError::Used => "the console token was already used: a token opens one console only; ask the API for a new console".into(),
            TokenError::Expired => format!(
                "the console token expired ({} s after it was issued); ask the API for a new console",
                ttl.as_secs()
            ),
        }
    }
}

struct Entry {
    target: ConsoleTarget,
    expires: Instant,
    used: bool,
}

/// The token store, shared by the handle and the accept loop (with the
/// optional web directory).
struct Tokens {
    ttl: Duration,
    map: Mutex<HashMap<String, Entry>>,
    web: Mutex<Option<PathBuf>>,
}

impl Tokens {
    fn issue(&self, target: ConsoleTarget) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap();
        // Used and expired tokens are remembered for another TTL so a
        // client is told what is wrong with its token, then dropped.
        map.retain(|_, e| e.expires + self.ttl > now);
        map.insert(token.clone(), Entry { target, expires: now + self.ttl, used: false });
        token
    }

    fn redeem(&self, token: &str) -> Result<ConsoleTarget, TokenError> {
        let mut map = self.map.lock().unwrap();
        let entry = map.get_mut(token).ok_or(TokenError::Unknown)?;
        if entry.used {
            return Err(TokenError::Used);
        }
        if Instant::now() >= entry.expires {
            return Err(TokenError::Expired);
        }
        entry.used = true;
        Ok(entry.target.clone())
    }
}

/// Aborts the accept loop when the last [`ConsoleProxy`] handle goes.
struct Running {
    tokens: Arc<Tokens>,
    public_url: String,
    local_addr: SocketAddr,
    accept: tokio::task::AbortHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A running console proxy. Cheap to clone; clones share the listener and
/// the tokens. The proxy stops accepting when the last clone is dropped
/// (consoles already open run until they close).
#[derive(Clone)]
pub struct ConsoleProxy {
    running: Arc<Running>,
}

impl std::fmt::Debug for ConsoleProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleProxy")
            .field("local_addr", &self.running.local_addr)
            .field("public_url", &self.running.public_url)
            .finish()
    }
}

impl ConsoleProxy {
    /// Binds `options.listen` and serves there. Must be called inside a
    /// tokio runtime.
    pub async fn start(options: &ConsoleProxyOptions) -> std::io::Result<ConsoleProxy> {
        let listener = TcpListener::bind(options.listen).await?;
        let proxy = Self::serve(listener, options.public_url.clone(), options.token_ttl)?;
        Ok(proxy.with_web(options.web.clone()))
    }

    /// Serves the files of `dir` (noVNC's web client) on plain `GET`s
    /// (`None`: serves none).
    pub fn with_web(self, dir: Option<PathBuf>) -> ConsoleProxy {
        *self.running.tokens.web.lock().unwrap() = dir;
        self
    }

    /// Serves on a bound listener; `public_url` `None` means
    /// `http://<the listener's address>`.
    pub fn serve(listener: TcpListener, public_url: Option<String>, token_ttl: Duration) -> std::io::Result<ConsoleProxy> {
        let local_addr = listener.local_addr()?;
        let public_url = public_url
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let tokens = Arc::new(Tokens { ttl: token_ttl, map: Mutex::new(HashMap::new()), web: Mutex::new(None) });
        let accept = tokio::spawn(accept_loop(listener, tokens.clone())).abort_handle();
        Ok(ConsoleProxy { running: Arc::new(Running { tokens, public_url, local_addr, accept }) })
    }

    /// The address the proxy listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr
    }

    /// The base URL console URIs start with.
    pub fn public_url(&self) -> &str {
        &self.running.public_url
    }

    /// How long a token can be used after it was issued.
    pub fn token_ttl(&self) -> Duration {
        self.running.tokens.ttl
    }

    /// Records a one-time token for `target` and returns it.
    pub fn issue(&self, target: ConsoleTarget) -> String {
        self.running.tokens.issue(target)
    }

    /// Uses a token as a websocket upgrade does (for callers that bridge
    /// by other means, and for tests): what it opens, once.
    pub fn redeem(&self, token: &str) -> Result<ConsoleTarget, TokenError> {
        self.running.tokens.redeem(token)
    }

    /// Forgets every token of a server (it was deleted).
    pub fn revoke_server(&self, server_id: &str) {
        self.running.tokens.map.lock().unwrap().retain(|_, e| e.target.server_id != server_id);
    }

    /// The URI a client opens for a console of `kind` with `token`: noVNC's
    /// page with the websocket path in `path` (Nova's form), or the
    /// `xvpvnc` form; other kinds get the `novnc` form.
    pub fn console_uri(&self, kind: ConsoleType, token: &str) -> String {
        let base = self.public_url();
        match kind {
            ConsoleType::Xvpvnc => format!("{base}/console?token={token}"),
            // spice-html5's page, as nova-spicehtml5proxy gives it.
            ConsoleType::Spice => format!("{base}/spice_auto.html?token={token}"),
            _ => format!("{base}/vnc_auto.html?path=%3Ftoken%3D{token}"),
        }
    }

    /// Issues a token for `target` and returns its console URI.
    pub fn open(&self, target: ConsoleTarget) -> String {
        let kind = target.kind;
        let token = self.issue(target);
        self.console_uri(kind, &token)
    }
}

/// The token in a console URI, in either form this proxy (or the fake
/// driver) gives: `...?token=<t>` or `...?path=%3Ftoken%3D<t>`.
pub fn token_of_uri(uri: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    let direct = query_param(query, "token");
    direct.or_else(|| query_param(query, "path").and_then(|p| query_param(p.split_once('?').map_or(&p, |(_, q)| q), "token")))
}

/// A query parameter, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let decoded = (b[i] == b'%' && i + 2 < b.len())
            .then(|| Some(hex(b[i + 1])? * 16 + hex(b[i + 2])?))
            .flatten();
        match decoded {
            Some(c) => {
                out.push(c);
                i += 3;
            }
            None => {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn accept_loop(listener: TcpListener, tokens: Arc<Tokens>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors, for instance: wait, do not spin.
                eprintln!("vnext-hypervisor: console proxy: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let service = service_fn(move |req| {
                let tokens = tokens.clone();
                async move { Ok::<_, Infallible>(handle(tokens, peer, req).await) }
            });
            // Errors here are the client's (a malformed request, a dropped
            // connection): nothing to do but let the connection go.
            let _ = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn error_reply(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "error": {
            "code": status.as_u16(),
            "title": status.canonical_reason().unwrap_or(""),
            "message": message,
        }
    });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Whether a comma-separated header has `token` (case-insensitive).
fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// A file of the web directory for a plain `GET` (no `..`, no hidden
/// files; `/` is `vnc.html`).
async fn web_file(dir: &Path, path: &str) -> Response<Full<Bytes>> {
    let rel = Path::new(path.trim_start_matches('/'));
    let rel = if rel.as_os_str().is_empty() { Path::new("vnc.html") } else { rel };
    let safe = rel.components().all(|c| matches!(c, Component::Normal(n) if !n.to_string_lossy().starts_with('.')));
    let file = dir.join(rel);
    let body = match safe {
        true => tokio::fs::read(&file).await.ok(),
        false => None,
    };
    let Some(body) = body else {
        return error_reply(StatusCode::NOT_FOUND, &format!("{path} is not a file of the console's web client"));
    };
    let kind = match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "css" => "text/css",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "ttf" => "font/ttf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

async fn handle(tokens: Arc<Tokens>, peer: SocketAddr, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let upgrade = header_has(req.headers(), header::UPGRADE, "websocket");
    let web = tokens.web.lock().unwrap().clone();
    // A plain GET of a page (not of the websocket paths with a token).
    let page = !upgrade && req.method() == Method::GET && path != "/websockify" && (path != "/" || req.uri().query().is_none());
    if let Some(dir) = web.filter(|_| page) {
        return web_file(&dir, path).await;
    }
    if !matches!(path, "/" | "/websockify" | "/console") {
        return error_reply(
            StatusCode::NOT_FOUND,
            &format!("{path} is not served here: the console proxy takes websockets on /websockify?token=<token> (or /?token=<token>)"),
        );
    }
    if req.method() != Method::GET {
        return error_reply(StatusCode::METHOD_NOT_ALLOWED, "the console proxy takes websocket upgrades, which are GET requests");
    }
    let headers = req.headers();
    if !header_has(headers, header::UPGRADE, "websocket") || !header_has(headers, header::CONNECTION, "upgrade") {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "this is the console proxy's websocket endpoint: open the console URI in noVNC (a websocket upgrade with Upgrade: websocket)",
        );
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()).map(str::trim) != Some("13") {
        let mut r = error_reply(StatusCode::UPGRADE_REQUIRED, "the console proxy speaks websocket version 13 (RFC 6455) only");
        r.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return r;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty())
    else {
        return error_reply(StatusCode::BAD_REQUEST, "the websocket upgrade has no Sec-WebSocket-Key header");
    };
    let accept = accept_key(key);
    let binary = header_has(headers, header::SEC_WEBSOCKET_PROTOCOL, "binary");
    let Some(token) = req.uri().query().and_then(|q| query_param(q, "token")).filter(|t| !t.is_empty()) else {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "no console token: connect to /websockify?token=<token> with the token of a console URI",
        );
    };
    let target = match tokens.redeem(&token) {
        Ok(t) => t,
        Err(e) => return error_reply(e.status(), &e.message(tokens.ttl)),
    };
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target.address)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return unreachable_display(&target, &e.to_string()),
        Err(_) => return unreachable_display(&target, &format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
    };
    let _ = tcp.set_nodelay(true);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                eprintln!(
                    "vnext-hypervisor: console proxy: {} console of server {} from {peer}: upgrade failed: {e}",
                    target.kind.as_str(),
                    target.server_id
                );
                return;
            }
        };
        eprintln!(
            "vnext-hypervisor: console proxy: {} console of server {} opened from {peer} to {}",
            target.kind.as_str(),
            target.server_id,
            target.address
        );
        let started = Instant::now();
        let end = bridge(TokioIo::new(upgraded), tcp).await;
        eprintln!(
            "vnext-hypervisor: console proxy: {} console of server {} from {peer} closed after {} s: {end}",
            target.kind.as_str(),
            target.server_id,
            started.elapsed().as_secs()
        );
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if binary {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("binary"));
    }
    r
}

fn unreachable_display(target: &ConsoleTarget, why: &str) -> Response<Full<Bytes>> {
    eprintln!(
        "vnext-hypervisor: console proxy: {} console of server {}: cannot reach the display at {}: {why}",
        target.kind.as_str(),
        target.server_id,
        target.address
    );
    error_reply(
        StatusCode::BAD_GATEWAY,
        &format!(
            "cannot reach the server's display at {} ({why}); the token is used up: check that the server runs and ask for a new console",
            target.address
        ),
    )
}

// ---------------------------------------------------------------------
// RFC 6455 framing, server side.

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close codes (RFC 6455 section 7.4.1).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
const CLOSE_TOO_BIG: u16 = 1009;

/// One frame from the client, unmasked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Bytes,
}

/// A frame the proxy must refuse, with the close code that says why.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: u16,
    pub reason: String,
}

fn refuse(code: u16, reason: impl Into<String>) -> Refusal {
    Refusal { code, reason: reason.into() }
}

/// Takes one complete client frame off the front of `buf`, if it holds
/// one; leaves `buf` untouched otherwise.
pub(crate) fn parse_frame(buf: &mut BytesMut, max_payload: usize) -> Result<Option<Frame>, Refusal> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    if b0 & 0x70 != 0 {
        return Err(refuse(CLOSE_PROTOCOL, "reserved bits set (no extension was negotiated)"));
    }
    if !matches!(opcode, OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG) {
        return Err(refuse(CLOSE_PROTOCOL, format!("unknown opcode {opcode:#x}")));
    }
    if b1 & 0x80 == 0 {
        return Err(refuse(CLOSE_PROTOCOL, "client frames must be masked"));
    }
    let (len, header) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut n = [0u8; 8];
            n.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        n => (n as u64, 2),
    };
    if opcode >= OP_CLOSE && (!fin || len > 125) {
        return Err(refuse(CLOSE_PROTOCOL, "control frames must be final and at most 125 bytes"));
    }
    if len > max_payload as u64 {
        return Err(refuse(CLOSE_TOO_BIG, format!("frame of {len} bytes, over the limit of {max_payload}")));
    }
    let len = len as usize;
    if buf.len() < header + 4 + len {
        buf.reserve(header + 4 + len - buf.len());
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&buf[header..header + 4]);
    buf.advance(header + 4);
    let mut payload = buf.split_to(len);
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
    Ok(Some(Frame { fin, opcode, payload: payload.freeze() }))
}

/// A server frame (unmasked, final) with `payload`.
pub(crate) fn encode_frame(opcode: u8, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= u16::MAX as usize => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(payload);
    out
}

fn close_frame(code: u16, reason: &str) -> BytesMut {
    let mut payload = code.to_be_bytes().to_vec();
    // A close reason fits a control frame: 123 bytes at most.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode_frame(OP_CLOSE, &payload)
}

/// How a bridged console ended (for the log line).
#[derive(Debug)]
enum End {
    ClientClosed(Option<u16>),
    ClientGone,
    DisplayClosed,
    Refused(Refusal),
    Io(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::ClientClosed(Some(code)) => write!(f, "the client closed it (code {code})"),
            End::ClientClosed(None) => write!(f, "the client closed it"),
            End::ClientGone => write!(f, "the client went away without a close frame"),
            End::DisplayClosed => write!(f, "the VNC display closed the connection"),
            End::Refused(r) => write!(f, "refused a client frame (close code {}): {}", r.code, r.reason),
            End::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

/// Copies frames both ways between a websocket (after the handshake) and
/// the VNC display, until one side closes. Two halves run concurrently
/// so a side that is slow to read never blocks the other direction; the
/// websocket's writer is shared (data frames from the display, pong and
/// close frames from the client's half), whole frames at a time.
async fn bridge<W>(ws: W, tcp: TcpStream) -> End
where
    W: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut ws_r, ws_w) = tokio::io::split(ws);
    let ws_w = tokio::sync::Mutex::new(ws_w);
    let (mut tcp_r, mut tcp_w) = tcp.into_split();

    let client_to_display = async {
        let mut buf = BytesMut::with_capacity(8 << 10);
        // The opcode of a fragmented message in progress.
        let mut message: Option<u8> = None;
        loop {
            let frame = loop {
                match parse_frame(&mut buf, MAX_FRAME_PAYLOAD) {
                    Ok(Some(f)) => break f,
                    Ok(None) => {}
                    Err(r) => return End::Refused(r),
                }
                match ws_r.read_buf(&mut buf).await {
                    Ok(0) => return End::ClientGone,
                    Ok(_) => {}
                    Err(e) => return End::Io(e.to_string()),
                }
            };
            match frame.opcode {
                OP_PING => {
                    if let Err(e) = ws_w.lock().await.write_all(&encode_frame(OP_PONG, &frame.payload)).await {
                        return End::Io(e.to_string());
                    }
                }
                OP_PONG => {}
                OP_CLOSE => {
                    let code = (frame.payload.len() >= 2).then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                    // Echo the close (RFC 6455 5.5.1); the bridge ends.
                    let _ = ws_w.lock().await.write_all(&close_frame(code.unwrap_or(CLOSE_NORMAL), "")).await;
                    return End::ClientClosed(code);
                }
                opcode => {
                    let opcode = match (opcode, message) {
                        (OP_CONTINUATION, Some(op)) => op,
                        (OP_CONTINUATION, None) => {
                            return End::Refused(refuse(CLOSE_PROTOCOL, "continuation frame without a message to continue"));
                        }
                        (_, Some(_)) => {
                            return End::Refused(refuse(CLOSE_PROTOCOL, "new message before the fragmented one ended"));
                        }
                        (op, None) => op,
                    };
                    message = if frame.fin { None } else { Some(opcode) };
                    if opcode == OP_TEXT {
                        return End::Refused(refuse(
                            CLOSE_UNSUPPORTED_DATA,
                            "text frames are not VNC data: use binary frames (the binary subprotocol)",
                        ));
                    }
                    if let Err(e) = tcp_w.write_all(&frame.payload).await {
                        return End::Io(format!("writing to the display: {e}"));
                    }
                }
            }
        }
    };

    let display_to_client = async {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = match tcp_r.read(&mut buf).await {
                Ok(0) => {
                    let _ = ws_w.lock().await.write_all(&close_frame(CLOSE_NORMAL, "the console closed")).await;
                    return End::DisplayClosed;
                }
                Ok(n) => n,
                Err(e) => return End::Io(format!("reading from the display: {e}")),
            };
            if let Err(e) = ws_w.lock().await.write_all(&encode_frame(OP_BINARY, &buf[..n])).await {
                return End::Io(e.to_string());
            }
        }
    };

    let end = tokio::select! {
        end = client_to_display => end,
        end = display_to_client => end,
    };
    if let End::Refused(r) = &end {
        let _ = ws_w.lock().await.write_all(&close_frame(r.code, &r.reason)).await;
    }
    let _ = ws_w.lock().await.shutdown().await;
    let _ = tcp_w.shutdown().await;
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(fin: bool, opcode: u8, payload: &[u8]) -> BytesMut {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = BytesMut::new();
        out.put_u8(if fin { 0x80 } else { 0 } | opcode);
        match payload.len() {
            n if n < 126 => out.put_u8(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.put_u8(0x80 | 126);
                out.put_u16(n as u16);
            }
            n => {
                out.put_u8(0x80 | 127);
                out.put_u64(n as u64);
            }
        }
        out.put_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn masked_frames_are_unmasked_once_complete() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let wire = masked(true, OP_BINARY, &payload);
            let mut partial = BytesMut::from(&wire[..wire.len() - 1]);
            assert_eq!(parse_frame(&mut partial, MAX_FRAME_PAYLOAD), Ok(None), "len {len}");
            let mut buf = wire.clone();
            buf.extend_from_slice(b"\x89");
            let f = parse_frame(&mut buf, MAX_FRAME_PAYLOAD).unwrap().unwrap();
            assert_eq!((f.fin, f.opcode, &f.payload[..]), (true, OP_BINARY, &payload[..]), "len {len}");
            assert_eq!(&buf[..], b"\x89", "the next frame's bytes stay");
        }
    }

    #[test]
    fn absurd_lengths_unmasked_and_bad_control_frames_are_refused() {
        let mut huge = BytesMut::from(&[0x82u8, 0x80 | 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..]);
        assert_eq!(parse_frame(&mut huge, MAX_FRAME_PAYLOAD).unwrap_err().code, CLOSE_TOO_BIG);
        let mut unmasked = BytesMut::from(&[0x82u8, 0x01, 0x00][..]);
        assert_eq!(parse_frame(&mut unmasked, MAX_FRAME_PAYLOAD).unwrap_err().code, CLOSE_PROTOCOL);
        let mut fragmented_ping = masked(false, OP_PING, b"x");
        assert_eq!(parse_frame(&mut fragmented_ping, MAX_FRAME_PAYLOAD).unwrap_err().code, CLOSE_PROTOCOL);
        let mut long_ping = masked(true, OP_PING, &[0; 126]);
        assert_eq!(parse_frame(&mut long_ping, MAX_FRAME_PAYLOAD).unwrap_err().code, CLOSE_PROTOCOL);
        let mut rsv = masked(true, OP_BINARY, b"x");
        rsv[0] |= 0x40;
        assert_eq!(parse_frame(&mut rsv, MAX_FRAME_PAYLOAD).unwrap_err().code, CLOSE_PROTOCOL);
        let mut unknown = masked(true, 0x3, b"x");
        assert_eq!(parse_frame(&mut unknown, MAX_FRAME_PAYLOAD).unwrap_err().code, CLOSE_PROTOCOL);
    }

    #[test]
    fn server_frames_use_the_shortest_length_form() {
        assert_eq!(&encode_frame(OP_BINARY, b"ab")[..], b"\x82\x02ab");
        assert_eq!(&encode_frame(OP_BINARY, &[0; 200])[..4], b"\x82\x7e\x00\xc8");
        assert_eq!(&encode_frame(OP_BINARY, &[0; 70_000])[..10], b"\x82\x7f\x00\x00\x00\x00\x00\x01\x11\x70");
        assert_eq!(&close_frame(1000, "bye")[..], b"\x88\x05\x03\xe8bye");
    }

    #[test]
    fn tokens_are_found_in_both_uri_forms() {
        assert_eq!(token_of_uri("http://h:6080/vnc_auto.html?path=%3Ftoken%3Dabc").as_deref(), Some("abc"));
        assert_eq!(token_of_uri("http://h:6080/console?token=abc").as_deref(), Some("abc"));
        assert_eq!(token_of_uri("http://h:6080/vnc_auto.html").as_deref(), None);
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn a_token_is_redeemed_once_and_not_after_its_ttl() {
        let tokens = Tokens { ttl: Duration::from_millis(30), map: Mutex::new(HashMap::new()), web: Mutex::new(None) };
        let target = ConsoleTarget { server_id: "s".into(), kind: ConsoleType::Novnc, address: "127.0.0.1:5900".into() };
        let t = tokens.issue(target.clone());
        assert_eq!(tokens.redeem(&t), Ok(target.clone()));
        assert_eq!(tokens.redeem(&t), Err(TokenError::Used));
        assert_eq!(tokens.redeem("nope"), Err(TokenError::Unknown));
        let late = tokens.issue(target);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(tokens.redeem(&late), Err(TokenError::Expired));
    }
}
