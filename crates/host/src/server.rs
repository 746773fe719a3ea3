//! The HTTP/1.1 front door: accepts connections, reads each request body
//! (bounded), hands the request to the [`App`], writes one log line, and
//! shuts down gracefully, letting in-flight requests finish.

use crate::app::{App, text};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use vnext_core::routes::REQUEST_ID_HEADER;

/// Largest request body accepted; larger ones get 413 before any guest runs.
pub const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = hyper::server::conn::http1::Builder::new();
    tokio::pin!(shutdown);
    loop {
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
                    async move { Ok::<_, Infallible>(handle(&app, req, peer).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await
                        && !e.is_incomplete_message()
                    {
                        eprintln!("warning: connection from {peer}: {e}");
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

async fn handle(app: &App, req: http::Request<Incoming>, peer: SocketAddr) -> http::Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (parts, body) = req.into_parts();
    let outcome = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => app.handle(http::Request::from_parts(parts, b.to_bytes()), peer).await,
        Err(e) => {
            let too_big = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            crate::app::Outcome {
                component: "-".into(),
                response: if too_big {
                    text(413, &format!("request body larger than {MAX_REQUEST_BODY} bytes"))
                } else {
                    text(400, "could not read the request body")
                },
            }
        }
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
