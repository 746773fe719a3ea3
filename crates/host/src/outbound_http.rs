//! Outbound HTTP from components: `allowed_outbound_hosts` enforcement and
//! Spin's in-process service chaining (`http://<component>.spin.internal`).

use crate::app::AppShared;
use crate::state::ComponentConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Suffix of hosts that name a component of the same application.
pub const INTERNAL_SUFFIX: &str = ".spin.internal";

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
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
