//! The adapter's HTTP API, for running the adapter as its own process
//! beside real Spin, where the `hypervisor-client` component forwards each
//! WIT call to it.
//!
//! Every route is a `POST` of a JSON body to a path of
//! [`vnext_core::hypervisor::adapter_api`]; the answer is 200 with the
//! result as JSON (`null` for `submit`, one `{}` or `{"error": ...}`
//! per operation for `submit-many`), or an error status with a
//! [`HypervisorError`] JSON: 404 unknown server / node, 400 invalid or
//! unsupported, 503 unavailable. Unknown paths get 404 and other methods
//! 405, with the same error shape. No authentication: bind it to loopback
//! or a private network.

use crate::adapter::Adapter;
use crate::error::Error;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use vnext_core::hypervisor::adapter_api::{self, ConsoleLogRequest, ConsoleUriRequest, ServerRef, SubmitOutcome};
use vnext_core::hypervisor::{HypervisorError, Operation};

/// Largest request body accepted (an operation is a few hundred bytes; user
/// data can make a spawn larger).
const MAX_BODY: usize = 1 << 20;
/// Largest `submit-many` body: a launch of the API's largest batch of
/// servers, each with a large user data.
const MAX_BATCH_BODY: usize = 256 << 20;
/// How long open connections get to finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The HTTP status an error is answered with.
pub fn status_for(error: &HypervisorError) -> StatusCode {
    match error {
        HypervisorError::UnknownServer(_) | HypervisorError::UnknownNode(_) => StatusCode::NOT_FOUND,
        HypervisorError::Unsupported(_) | HypervisorError::Invalid(_) => StatusCode::BAD_REQUEST,
        HypervisorError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Serves the adapter API on `listener` until `shutdown` resolves, then
/// stops accepting and lets open connections finish their requests.
pub async fn serve(
    adapter: Adapter,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => {
                        // Answers are written in one go; without NODELAY a
                        // kept-alive caller waits out Nagle + delayed ACK.
                        let _ = stream.set_nodelay(true);
                        stream
                    }
                    Err(e) => {
                        // Usually out of file descriptors: back off instead
                        // of spinning, keep serving the open connections.
                        eprintln!("vnext-hypervisor: accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let adapter = adapter.clone();
                let service = service_fn(move |req| handle(adapter.clone(), req));
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        eprintln!("vnext-hypervisor: adapter API connection: {e}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        return Err(Error::Serve {
            message: format!("connections still open {SHUTDOWN_GRACE:?} after shutdown; closing them"),
        });
    }
    Ok(())
}

async fn handle(adapter: Adapter, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match route(adapter, req).await {
        Ok(json) => respond(StatusCode::OK, json),
        Err((status, error)) => {
            let mut response = respond(status, serde_json::to_vec(&error).expect("errors serialize"));
            if status == StatusCode::METHOD_NOT_ALLOWED {
                response.headers_mut().insert(hyper::header::ALLOW, hyper::header::HeaderValue::from_static("POST"));
            }
            response
        }
    })
}

fn respond(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

type Failure = (StatusCode, HypervisorError);

fn ok<T: Serialize>(result: Result<T, HypervisorError>) -> Result<Vec<u8>, Failure> {
    match result {
        Ok(value) => Ok(serde_json::to_vec(&value).expect("results serialize")),
        Err(e) => Err((status_for(&e), e)),
    }
}

async fn route(adapter: Adapter, req: Request<Incoming>) -> Result<Vec<u8>, Failure> {
    let path = req.uri().path().to_owned();
    const ROUTES: [&str; 9] = [
        adapter_api::LIST_PLACEMENTS,
        adapter_api::LIST_TEMPLATES,
        adapter_api::LIST_COMPUTE_NODES,
        adapter_api::SUBMIT,
        adapter_api::SUBMIT_MANY,
        adapter_api::SERVER_STATE,
        adapter_api::CONSOLE_LOG,
        adapter_api::CONSOLE_URI,
        adapter_api::DIAGNOSTICS,
    ];
    if !ROUTES.contains(&path.as_str()) {
        return Err((StatusCode::NOT_FOUND, HypervisorError::Invalid(format!("no route {path}"))));
    }
    if req.method() != Method::POST {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            HypervisorError::Invalid(format!("{path} takes POST, not {}", req.method())),
        ));
    }
    let limit = if path == adapter_api::SUBMIT_MANY { MAX_BATCH_BODY } else { MAX_BODY };
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return Err((StatusCode::BAD_REQUEST, HypervisorError::Invalid(format!("reading the body: {e}"))));
        }
    };
    match path.as_str() {
        adapter_api::LIST_PLACEMENTS => ok(adapter.list_placements().await),
        adapter_api::LIST_TEMPLATES => ok(adapter.list_templates().await),
        adapter_api::LIST_COMPUTE_NODES => ok(adapter.list_compute_nodes().await),
        adapter_api::SUBMIT => {
            let op: Operation = parse(&body)?;
            ok(adapter.submit(op).await)
        }
        adapter_api::SUBMIT_MANY => {
            let ops: Vec<Operation> = parse(&body)?;
            let outcomes: Vec<SubmitOutcome> = adapter.submit_many(ops).await.into_iter().map(Into::into).collect();
            ok(Ok(outcomes))
        }
        adapter_api::SERVER_STATE => {
            let r: ServerRef = parse(&body)?;
            ok(adapter.server_state(&r.server_id).await)
        }
        adapter_api::CONSOLE_LOG => {
            let r: ConsoleLogRequest = parse(&body)?;
            ok(adapter.console_log(&r.server_id, r.lines).await)
        }
        adapter_api::CONSOLE_URI => {
            let r: ConsoleUriRequest = parse(&body)?;
            ok(adapter.console_uri(&r.server_id, r.kind).await)
        }
        _ => {
            let r: ServerRef = parse(&body)?;
            ok(adapter.diagnostics(&r.server_id).await)
        }
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, HypervisorError::Invalid(format!("request body: {e}"))))
}
