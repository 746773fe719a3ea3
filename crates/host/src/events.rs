//! The host's side of the hypervisor adapter: it starts the adapter
//! in-process, serves it to components through the WIT binding, and delivers
//! the adapter's progress events to the application's events route without
//! a network hop (the request still goes through the router and the events
//! component, with the shared secret, exactly as an HTTP POST from a
//! standalone adapter would).

use crate::app::App;
use crate::bindings::hypervisor::{BoxFuture, Hypervisor};
use crate::cli::AdapterArgs;
use anyhow::Context;
use bytes::Bytes;
use std::path::Path;
use std::sync::{Arc, OnceLock, Weak};
use vnext_core::events::{EVENTS_ROUTE, EVENTS_SECRET_HEADER, ServerObservation, TaskEvent};
use vnext_core::hypervisor as hv;
use vnext_hypervisor::{Adapter, DeliveryError, EventSink, HostsEventSink};

/// Client address the events component sees for in-process deliveries.
const IN_PROCESS_PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

/// Delivers events by dispatching `POST /internal/events` into the app.
#[derive(Clone)]
pub struct InProcessSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    secret: String,
    app: OnceLock<Weak<App>>,
}

impl InProcessSink {
    pub fn new(secret: String) -> InProcessSink {
        InProcessSink { inner: Arc::new(SinkInner { secret, app: OnceLock::new() }) }
    }

    /// Connects the sink once the app is loaded; until then deliveries fail
    /// and the adapter retries them.
    pub fn attach(&self, app: &Arc<App>) {
        let _ = self.inner.app.set(Arc::downgrade(app));
    }
}

impl EventSink for InProcessSink {
    fn deliver<'a>(&'a self, events: &'a [TaskEvent]) -> vnext_hypervisor::BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(events).map_err(|e| DeliveryError::new(e.to_string()))?;
            self.post(body).await
        })
    }

    fn report<'a>(&'a self, observations: &'a [ServerObservation]) -> vnext_hypervisor::BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move { self.post(vnext_hypervisor::events::observations_body(observations)?).await })
    }
}

impl InProcessSink {
    /// Posts a body to the events route through the app, as the network would.
    async fn post(&self, body: Vec<u8>) -> Result<(), DeliveryError> {
        let app = self
            .inner
            .app
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| DeliveryError::new("the API is not loaded yet"))?;
        let req = http::Request::post(format!("http://localhost{EVENTS_ROUTE}"))
            .header(http::header::HOST, "localhost")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(EVENTS_SECRET_HEADER, &self.inner.secret)
            .body(Bytes::from(body))
            .map_err(|e| DeliveryError::new(e.to_string()))?;
        let outcome = app.handle(req, IN_PROCESS_PEER.into()).await;
        let status = outcome.response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::new(format!(
                "{EVENTS_ROUTE} answered {status}: {}",
                String::from_utf8_lossy(outcome.response.body())
            )))
        }
    }
}

impl Hypervisor for Adapter {
    fn list_placements(&self) -> BoxFuture<'_, Result<Vec<hv::Placement>, hv::HypervisorError>> {
        Box::pin(Adapter::list_placements(self))
    }
    fn list_compute_nodes(&self) -> BoxFuture<'_, Result<Vec<hv::ComputeNode>, hv::HypervisorError>> {
        Box::pin(Adapter::list_compute_nodes(self))
    }
    fn list_templates(&self) -> BoxFuture<'_, Result<Vec<hv::Template>, hv::HypervisorError>> {
        Box::pin(Adapter::list_templates(self))
    }
    fn submit(&self, op: hv::Operation) -> BoxFuture<'_, Result<(), hv::HypervisorError>> {
        Box::pin(Adapter::submit(self, op))
    }
    fn submit_many(&self, ops: Vec<hv::Operation>) -> BoxFuture<'_, Vec<Result<(), hv::HypervisorError>>> {
        Box::pin(Adapter::submit_many(self, ops))
    }
    fn server_state(&self, server_id: String) -> BoxFuture<'_, Result<hv::RuntimeState, hv::HypervisorError>> {
        Box::pin(async move { Adapter::server_state(self, &server_id).await })
    }
    fn console_log(&self, server_id: String, lines: u32) -> BoxFuture<'_, Result<String, hv::HypervisorError>> {
        Box::pin(async move { Adapter::console_log(self, &server_id, lines).await })
    }
    fn console_uri(&self, server_id: String, kind: hv::ConsoleType) -> BoxFuture<'_, Result<String, hv::HypervisorError>> {
        Box::pin(async move { Adapter::console_uri(self, &server_id, kind).await })
    }
    fn diagnostics(&self, server_id: String) -> BoxFuture<'_, Result<hv::Diagnostics, hv::HypervisorError>> {
        Box::pin(async move { Adapter::diagnostics(self, &server_id).await })
    }
}

/// Starts the in-process adapter for `vnext up`.
pub async fn start_adapter(inventory: &Path, state_dir: &Path, sink: InProcessSink) -> anyhow::Result<Arc<dyn Hypervisor>> {
    let adapter = Adapter::from_inventory_file(inventory, Some(state_dir), Arc::new(sink))
        .await
        .with_context(|| format!("cannot start the hypervisor adapter from inventory {}", inventory.display()))?;
    Ok(Arc::new(adapter))
}

/// `vnext adapter`: the adapter alone, serving its HTTP API and posting
/// events to the API over HTTP.
pub async fn run_standalone_adapter(args: AdapterArgs, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let sink = HostsEventSink::new(&args.events_url, &args.events_secret)
        .with_context(|| format!("--events-url {}", args.events_url.join(",")))?;
    eprintln!("events go to {} (in turn)", sink.urls().join(", "));
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create state directory {}", args.state_dir.display()))?;
    let adapter = Adapter::from_inventory_file(&args.inventory, Some(&args.state_dir), Arc::new(sink))
        .await
        .with_context(|| format!("cannot start the adapter from inventory {}", args.inventory.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("Adapter serving http://{}", listener.local_addr()?);
    vnext_hypervisor::http::serve(adapter, listener, shutdown).await?;
    Ok(())
}
