//! Outbound HTTP from components: `allowed_outbound_hosts` enforcement,
//! Spin's in-process service chaining (`http://<component>.spin.internal`),
//! and a pool of kept-alive connections for plain `http://`.
//!
//! The pool is what makes the dependency path cheap: hypervisor-client
//! sends every hypervisor call as a POST to the `vnext adapter` process, and
//! a launch makes several. A fresh connection per call (wasmtime's default
//! sender) cost a TCP handshake each; pooled connections with TCP_NODELAY
//! (no Nagle wait on a body written after its headers) cost none.
//! `https://` and requests with their own connect timeout keep wasmtime's
//! default sender.

use crate::app::AppShared;
use crate::state::ComponentConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Suffix of hosts that name a component of the same application.
pub const INTERNAL_SUFFIX: &str = ".spin.internal";

/// How long a pooled connection may wait for a connect.
pub const POOL_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per host.
pub const POOL_MAX_IDLE_PER_HOST: usize = 32;

type PooledClient = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, WasiBody>;

/// The process-wide pool of plain-HTTP connections.
fn pool() -> &'static PooledClient {
    static POOL: OnceLock<PooledClient> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(POOL_CONNECT_TIMEOUT));
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector)
    })
}

/// Sends `request` on a pooled connection; `first_byte` bounds the wait
/// for the response head.
async fn send_pooled(
    request: http::Request<WasiBody>,
    first_byte: Option<Duration>,
) -> Result<http::Response<WasiBody>, Error> {
    let sent = pool().request(request);
    let response = match first_byte {
        Some(limit) => tokio::time::timeout(limit, sent).await.map_err(|_| Error::ConnectionReadTimeout)?,
        None => sent.await,
    };
    let response = response.map_err(|e| {
        if e.is_connect() {
            Error::ConnectionRefused
        } else {
            Error::InternalError(Some(e.to_string()))
        }
    })?;
    Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
}

pub struct OutboundHooks {
    pub component: Arc<ComponentConfig>,
    pub app: Arc<AppShared>,
}

type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>>
        + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host = uri.host().unwrap_or("").to_string();
        let port = uri.port_u16();
        if !self.component.outbound.allows(&scheme, &host, port) {
            eprintln!(
                "warning: component {:?} tried to reach {scheme}://{host}{} which its \
                 allowed_outbound_hosts does not list",
                self.component.id,
                port.map(|p| format!(":{p}")).unwrap_or_default()
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        if let Some(target) = host.strip_suffix(INTERNAL_SUFFIX) {
            let target = target.to_string();
            let app = self.app.app.get().and_then(|w| w.upgrade());
            return Box::new(async move {
                let Some(app) = app else { return Err(Error::DestinationUnavailable) };
                let (parts, body) = request.into_parts();
                let body = body.collect().await?.to_bytes();
                let resp = app.call_internal(&target, http::Request::from_parts(parts, body)).await;
                let resp = resp.map_err(|e| Error::InternalError(Some(e.to_string())))?;
                Ok((
                    resp.map(|b: Bytes| Full::new(b).map_err(|never| match never {}).boxed_unsync()),
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                ))
            });
        }
        let own_connect_timeout = options.as_ref().is_some_and(|o| o.connect_timeout.is_some());
        if scheme == "http" && !own_connect_timeout {
            let first_byte = options.and_then(|o| o.first_byte_timeout);
            return Box::new(async move {
                let res = send_pooled(request, first_byte).await?;
                Ok((res, Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>))
            });
        }
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
