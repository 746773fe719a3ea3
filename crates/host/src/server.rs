//! The HTTP/1.1 front door: accepts connections (at most
//! [`ServerLimits::max_connections`] at once), reads each request body
//! (bounded in size and time), hands the request to the [`App`], writes one
//! log line, and shuts down gracefully, letting in-flight requests finish.
//!
//! What a hostile or broken client meets here, before any guest runs, is
//! answered in the API's one error shape (`vnext_core::error::ApiError`),
//! JSON with `Connection: close`: 413 for a body over [`MAX_REQUEST_BODY`]
//! (from its `Content-Length` alone, before reading it), 431 for more than
//! [`MAX_HEADERS`] headers or more than [`MAX_HEADER_BYTES`] of them, 408
//! for a body not sent within the body timeout. Beyond hyper's own parser
//! limits ([`HYPER_MAX_HEADERS`], [`HYPER_MAX_HEAD_BYTES`]) the request is
//! never parsed: hyper answers a bare 431 (no body) and closes. A client
//! that does not finish its headers within the header timeout (slowloris),
//! and an idle keep-alive connection past it, is disconnected.

use crate::app::App;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use vnext_core::error::ApiError;
use vnext_core::routes::REQUEST_ID_HEADER;

/// Largest request body accepted; larger ones get 413 before any guest
/// runs. Spin's generic apps may take bodies this large (the vNext
/// components refuse more than 1 MiB themselves).
pub const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;
/// Most request headers accepted (431 beyond). Real clients send a dozen;
/// 100 is hyper's and nginx's order of magnitude.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of header names and values in all (431 beyond): 32 KiB is
/// room for a large Keystone token and cookies, like nginx's 4 x 8 KiB.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// hyper's parser limits, above ours so that requests between the two get
/// our 431 in the error shape; past these hyper refuses the request itself
/// (a bare 431, no body) without parsing it. Setting `max_headers` makes
/// hyper allocate the header array per request (negligible next to an
/// instance call).
pub const HYPER_MAX_HEADERS: usize = 4 * MAX_HEADERS;
/// The request line plus headers as read from the socket (see above).
pub const HYPER_MAX_HEAD_BYTES: usize = 2 * MAX_HEADER_BYTES + 16 * 1024;
/// Default time a client has to send its request line and headers, counted
/// from the first byte it owes (so an idle keep-alive connection is closed
/// after it too): a slowloris client holds a connection this long at most.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time a client has to send its whole body once its headers are in
/// (408 after): 8 MiB at a slow 300 KiB/s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on open connections. Past it, new connections wait in the
/// kernel's listen backlog until one closes (a burst is queued, not
/// refused), and slow or idle ones are closed by the header timeout.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Shortest interval between two "connection limit reached" log lines.
const CAP_LOG_EVERY: Duration = Duration::from_secs(10);

/// The front door's limits that `vnext up` flags may change.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(HYPER_MAX_HEADERS)
        .max_header_size(HYPER_MAX_HEAD_BYTES);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut cap_log = CapLog::default();
    let body_timeout = limits.body_read_timeout;
    tokio::pin!(shutdown);
    loop {
        // A slot before accepting: past the cap, connections wait in the
        // listen backlog rather than costing a task and buffers here.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                cap_log.reached(limits.max_connections);
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    _ = &mut shutdown => break,
                }
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Running out of file descriptors must not end the server.
                        eprintln!("warning: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Responses are small and written at once; without NODELAY
                // Nagle plus delayed ACK add ~40 ms to every request.
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(handle(&app, req, peer, body_timeout).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // The slot is freed when the connection ends.
                    let _slot = slot;
                    match conn.await {
                        Ok(()) => {}
                        // A client going away, or one cut off for being too
                        // slow, is routine: not worth a line each.
                        Err(e) if e.is_incomplete_message() || e.is_timeout() => {}
                        Err(e) => eprintln!("warning: connection from {peer}: {e}"),
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    crate::logs::flush_request_log();
    eprintln!("shutting down: waiting up to {SHUTDOWN_GRACE:?} for in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        eprintln!("warning: some requests were still running after {SHUTDOWN_GRACE:?}");
    }
    crate::logs::flush_request_log();
    Ok(())
}

/// A refusal of the front door, in the API's error shape, closing the
/// connection (what is left of the request is not read).
fn refuse(status: u16, message: String) -> crate::app::Outcome {
    let body = ApiError::new(status, message).to_json().to_string();
    let response = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONNECTION, "close")
        .body(Bytes::from(body))
        .expect("static response parts are valid");
    crate::app::Outcome { component: "-".into(), response }
}

/// The refusal a request gets before its body is read, if any.
fn check_head(parts: &http::request::Parts) -> Option<crate::app::Outcome> {
    let headers = &parts.headers;
    if headers.len() > MAX_HEADERS {
        return Some(refuse(
            431,
            format!("the request has {} headers; at most {MAX_HEADERS} are accepted", headers.len()),
        ));
    }
    let bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Some(refuse(
            431,
            format!("the request headers hold {bytes} bytes; at most {MAX_HEADER_BYTES} are accepted"),
        ));
    }
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        return Some(too_large());
    }
    None
}

fn too_large() -> crate::app::Outcome {
    refuse(413, format!("the request body is larger than {MAX_REQUEST_BODY} bytes; send less"))
}

async fn handle(
    app: &App,
    req: http::Request<Incoming>,
    peer: SocketAddr,
    body_timeout: Duration,
) -> http::Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (parts, body) = req.into_parts();
    let outcome = match check_head(&parts) {
        Some(refused) => refused,
        None => match tokio::time::timeout(body_timeout, Limited::new(body, MAX_REQUEST_BODY).collect()).await {
            Ok(Ok(b)) => app.handle(http::Request::from_parts(parts, b.to_bytes()), peer).await,
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => too_large(),
            Ok(Err(_)) => refuse(400, "the request body could not be read (malformed chunked encoding?)".into()),
            Err(_) => refuse(
                408,
                format!("the request body was not received within {body_timeout:?}; send it faster"),
            ),
        },
    };
    let response = outcome.response;
    let request_id = response
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    crate::logs::request_line(format!(
        "{} {method} {path} component={} status={} duration={:.2}ms request_id={request_id}",
        vnext_core::time::now(),
        outcome.component,
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0,
    ));
    response.map(Full::new)
}

/// The "connection limit reached" log line, at most once per
/// [`CAP_LOG_EVERY`], counting the times it was reached in between.
#[derive(Default)]
struct CapLog {
    last: Option<Instant>,
    since: u64,
}

impl CapLog {
    fn reached(&mut self, cap: usize) {
        self.since += 1;
        if self.last.is_none_or(|t| t.elapsed() >= CAP_LOG_EVERY) {
            eprintln!(
                "warning: connection limit reached: {cap} connections open (--max-connections); \
                 new connections wait until one closes ({} times since the last report)",
                self.since
            );
            self.last = Some(Instant::now());
            self.since = 0;
        }
    }
}
