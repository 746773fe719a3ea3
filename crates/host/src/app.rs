//! A loaded Spin application: its router, its compiled components, and the
//! dispatch of one HTTP request to one fresh component instance.
//!
//! Instances come from components pre-instantiated at load (`InstancePre`)
//! with the pooling allocator. WASI 0.2 components
//! (`wasi:http/incoming-handler@0.2`) get a fresh instance per request. WASI
//! 0.3 components (`wasi:http/handler@0.3`) reuse an instance for up to
//! `max_instance_reuse_count` sequential requests, as Spin 4 does: an idle
//! instance is taken from the component's pool, serves one request at a time,
//! and goes back only if that request ended cleanly (a trap, a timeout or an
//! error drops it), so a failed instance never serves again.

use crate::bindings;
use crate::compose;
use crate::engine::{self, CacheOutcome, EngineLimits};
use crate::logs::{ComponentOutput, Console};
use crate::manifest::{Manifest, RouteSpec};
use crate::outbound::OutboundPolicy;
use crate::outbound_http::OutboundHooks;
use crate::router::{RequestInfo, Router, Target};
use crate::state::{ComponentConfig, HostState};
use crate::variables::{AppVariables, ComponentVariables};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

/// The interface our host can serve in-process; a manifest dependency on it
/// is how real Spin satisfies the same import (see docs/architecture.md).
pub const HYPERVISOR_INTERFACE: &str = "vnext:compute/hypervisor@0.1.0";

/// Who serves a component's import of [`HYPERVISOR_INTERFACE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum HypervisorSource {
    /// This process, with its own adapter: a manifest dependency on the
    /// interface is left out (every other dependency is composed).
    #[default]
    InProcess,
    /// The manifest, as under Spin: the dependency on the interface is
    /// composed like any other (in this app, `hypervisor-client`, which
    /// forwards each call to a `vnext adapter` process at `adapter_url`).
    Dependency,
}

/// How long a request may be under way before epoch ticks that find its
/// guest running make it step aside for other requests. Ordinary requests
/// spend ~0.1 ms in the guest and never get there; a busy guest queues
/// others behind it for at most this long (p99 beside a guest allocating
/// without bound: 16.5 ms at 20 ms, 9.5 ms at 5 ms, scripts/reliability.sh).
pub const YIELD_AFTER: Duration = Duration::from_millis(5);

/// How long a guest past [`YIELD_AFTER`] steps aside at each epoch tick, so
/// the requests queued on its thread run meanwhile.
pub const OVERRUN_PAUSE: Duration = Duration::from_millis(2);

/// Options of the runtime that are not in the manifest.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub state_dir: PathBuf,
    pub request_timeout: Duration,
    pub engine: EngineLimits,
    /// Values the host provides for application variables (e.g. `events_secret`).
    pub host_variables: HashMap<String, String>,
    /// The process environment (for `SPIN_VARIABLE_*`).
    pub env: HashMap<String, String>,
    /// Sequential requests one WASI 0.3 instance may serve (1: no reuse).
    pub max_instance_reuse_count: usize,
    /// Idle WASI 0.3 instances kept per component.
    pub max_idle_instances: usize,
    /// Who serves the hypervisor interface.
    pub hypervisor_source: HypervisorSource,
    /// The `vnext` executable that compiles components missing from the
    /// cache in a child process (see [`crate::precompile`]); `None`
    /// compiles them in this process.
    pub compiler: Option<PathBuf>,
}

/// What every instance of the application shares.
pub struct AppShared {
    pub stores: vnext_kv::Stores,
    pub hypervisor: Option<Arc<dyn crate::bindings::hypervisor::Hypervisor>>,
    /// Set once the app is built, so outbound calls to `*.spin.internal`
    /// can be dispatched in-process.
    pub app: OnceLock<Weak<App>>,
}

enum Handler {
    P3(ServicePre<HostState>),
    P2(ProxyPre<HostState>),
}

struct LoadedComponent {
    handler: Handler,
    config: Arc<ComponentConfig>,
    /// Idle WASI 0.3 instances ready for another request.
    idle: std::sync::Mutex<Vec<P3Worker>>,
}

/// A WASI 0.3 instance with its store, and how many requests it served.
struct P3Worker {
    store: Store<HostState>,
    service: wasmtime_wasi_http::p3::bindings::Service,
    served: usize,
}

pub struct App {
    engine: Engine,
    router: Router,
    components: HashMap<String, LoadedComponent>,
    statics: Vec<crate::manifest::StaticResponse>,
    shared: Arc<AppShared>,
    options: RuntimeOptions,
    /// Component calls running now (see [`crate::repoll`]).
    in_flight: std::sync::atomic::AtomicUsize,
}

/// Counts one component call in [`App::in_flight`] while it lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What happened to one request, for the log line.
pub struct Outcome {
    pub component: String,
    pub response: http::Response<Bytes>,
}

/// Progress of loading, reported per component.
pub struct LoadReport {
    pub component: String,
    pub cache: CacheOutcome,
    pub elapsed: Duration,
    /// The dependencies composed into it (`key (origin)`).
    pub composed_with: Vec<String>,
}

fn deps_list(deps: &[compose::Resolved]) -> String {
    deps.iter().map(|d| d.key.as_str()).collect::<Vec<_>>().join(", ")
}

impl App {
    /// Loads every component of `manifest`. `base` is the manifest's directory.
    pub fn load(
        manifest: &Manifest,
        base: &Path,
        options: RuntimeOptions,
        stores: vnext_kv::Stores,
        hypervisor: Option<Arc<dyn crate::bindings::hypervisor::Hypervisor>>,
        mut progress: impl FnMut(&LoadReport),
    ) -> anyhow::Result<Arc<App>> {
        let engine = engine::new_engine(&options.engine)?;
        let vars = AppVariables::resolve(&manifest.variables, &options.host_variables, &options.env)?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking wasi 0.2: {e}"))?;
        wasmtime_wasi::p3::add_to_linker(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking wasi 0.3: {e}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking wasi:http 0.2: {e}"))?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking wasi:http 0.3: {e}"))?;
        bindings::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("linking host interfaces: {e}"))?;

        let cache_dir = options.state_dir.join("cache");
        let logs_dir = options.state_dir.join("logs");

        // Stage 1: what each component is: its file, or its composition with
        // its dependencies. A component no trigger names is only there to be
        // composed into others (`{ component = "..." }` dependencies): Spin
        // does not instantiate it on its own, so it need not be an HTTP handler.
        let triggered: HashSet<&str> = manifest.trigger.http.iter().filter_map(|t| t.component.as_deref()).collect();
        let mut sources = Vec::new();
        for (id, c) in &manifest.component {
            if !triggered.contains(id.as_str()) {
                continue;
            }
            let path = c.source_path(id, base)?;
            let wasm = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read component {} (build the components first: scripts/build-components.sh)",
                    path.display()
                )
            })?;
            // The in-process adapter answers the hypervisor import itself.
            let served_here = |key: &str| {
                options.hypervisor_source == HypervisorSource::InProcess
                    && compose::Selector::parse(key).matches(HYPERVISOR_INTERFACE)
            };
            let deps = compose::resolve(id, c, manifest, base, served_here)?;
            let (wasm, label) = if deps.is_empty() {
                (wasm, path.display().to_string())
            } else {
                let composed = compose::compose(id, &wasm, &deps, |key| compose::grants(c, key))?;
                (composed, format!("{} composed with {}", path.display(), deps_list(&deps)))
            };
            let composed_with: Vec<String> = deps.iter().map(|d| format!("{} ({})", d.key, d.origin)).collect();
            sources.push((id, c, wasm, label, composed_with));
        }

        // Stage 2: what the compile cache lacks is compiled in a child
        // process, whose memory goes back when it exits.
        if let Some(compiler) = &options.compiler {
            let wasms: Vec<&[u8]> = sources.iter().map(|s| s.2.as_slice()).collect();
            crate::precompile::fill_cache_in_child(compiler, &engine, &options.engine, &wasms, &cache_dir);
        }

        // Stage 3: load each from the cache (or compile it here if the child
        // could not) and pre-instantiate it.
        let mut components = HashMap::new();
        for (id, c, wasm, label, composed_with) in sources {
            let started = Instant::now();
            let (component, cache) = engine::load_component_bytes(&engine, &wasm, &label, &cache_dir)?;
            drop(wasm);
            let path = label;
            let pre = linker.instantiate_pre(&component).map_err(|e| {
                anyhow::anyhow!("component {id:?} ({path}) cannot be linked: {e}")
            })?;
            let handler = match ServicePre::new(pre.clone()) {
                Ok(p3) => Handler::P3(p3),
                Err(_) => Handler::P2(ProxyPre::new(pre).map_err(|e| {
                    anyhow::anyhow!(
                        "component {id:?} exports neither wasi:http/handler@0.3 nor \
                         wasi:http/incoming-handler@0.2: {e}"
                    )
                })?),
            };
            let outbound: Vec<String> = c
                .allowed_outbound_hosts
                .iter()
                .map(|h| vars.render(h).with_context(|| format!("[component.{id}] allowed_outbound_hosts")))
                .collect::<anyhow::Result<_>>()?;
            let config = ComponentConfig {
                id: id.clone(),
                key_value_stores: c.key_value_stores.iter().cloned().collect::<HashSet<_>>(),
                variables: ComponentVariables::for_component(manifest, id, &vars)?,
                outbound: OutboundPolicy::new(&outbound).with_context(|| format!("[component.{id}]"))?,
                environment: c.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                stdout: ComponentOutput::open(&logs_dir, id, Console::Stdout),
                stderr: ComponentOutput::open(&logs_dir, id, Console::Stderr),
            };
            for label in &config.key_value_stores {
                if stores.get(label).is_none() {
                    anyhow::bail!(
                        "[component.{id}] key_value_stores names {label:?}, which is not configured: \
                         add [key_value_store.{label}] to the runtime config file"
                    );
                }
            }
            components.insert(id.clone(), LoadedComponent { handler, config: Arc::new(config), idle: Default::default() });
            progress(&LoadReport { component: id.clone(), cache, elapsed: started.elapsed(), composed_with });
        }

        let mut statics = Vec::new();
        let mut entries = Vec::new();
        for t in &manifest.trigger.http {
            let RouteSpec::Path(route) = &t.route else { continue };
            let target = match (&t.component, &t.static_response) {
                (Some(c), _) => Target::Component(c.clone()),
                (None, Some(s)) => {
                    statics.push(s.clone());
                    Target::Static(statics.len() - 1)
                }
                (None, None) => unreachable!("checked by Manifest::parse"),
            };
            entries.push((route.clone(), target));
        }
        let router = Router::build(entries)?;

        let shared = Arc::new(AppShared { stores, hypervisor, app: OnceLock::new() });
        let app = Arc::new(App {
            engine,
            router,
            components,
            statics,
            shared: shared.clone(),
            options,
            in_flight: Default::default(),
        });
        let _ = shared.app.set(Arc::downgrade(&app));
        Ok(app)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Handles one request whose body has been read. Never fails: every
    /// problem becomes a response (404 no route, 500 guest failure).
    pub async fn handle(
        &self,
        req: http::Request<Bytes>,
        client_addr: std::net::SocketAddr,
    ) -> Outcome {
        let path = req.uri().path().to_string();
        if path == "/.well-known/spin/health" {
            return Outcome { component: "-".into(), response: text(200, "OK") };
        }
        let Some(m) = self.router.route(&path) else {
            return Outcome { component: "-".into(), response: text(404, "Not Found") };
        };
        let component_id = match &m.route.target {
            Target::Static(i) => {
                let s = &self.statics[*i];
                let mut b = http::Response::builder().status(s.status_code);
                for (k, v) in &s.headers {
                    b = b.header(k, v);
                }
                let response = b
                    .body(Bytes::from(s.body.clone().unwrap_or_default()))
                    .unwrap_or_else(|_| text(500, "invalid static_response in manifest"));
                return Outcome { component: "(static)".into(), response };
            }
            Target::Component(c) => c.clone(),
        };
        let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string);
        let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or(path.clone());
        let spin_headers = m.spin_headers(&RequestInfo {
            scheme: "http",
            host: host.as_deref(),
            path_and_query: &path_and_query,
            client_addr,
        });
        let (mut parts, body) = req.into_parts();
        // The guest must see only the spin-* headers the runtime computed.
        let forged: Vec<_> = parts.headers.keys().filter(|k| k.as_str().starts_with("spin-")).cloned().collect();
        for k in forged {
            parts.headers.remove(&k);
        }
        for (k, v) in spin_headers {
            if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(k), http::HeaderValue::try_from(v)) {
                parts.headers.insert(k, v);
            }
        }
        // The guest sees an absolute URI with the authority from the Host header.
        let authority = host.unwrap_or_else(|| "localhost".to_string());
        parts.uri = format!("http://{authority}{path_and_query}").parse().unwrap_or(parts.uri);
        let req = http::Request::from_parts(parts, body);
        let response = match self.call_component(&component_id, req).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: component {component_id:?} failed: {e:#}");
                text(500, "Internal Server Error")
            }
        };
        Outcome { component: component_id, response }
    }

    /// Calls component `id` directly (service chaining, in-process events).
    pub async fn call_internal(&self, id: &str, req: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        self.call_component(id, req).await
    }

    fn new_store(&self, component: &LoadedComponent) -> Store<HostState> {
        let cfg = component.config.clone();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(cfg.stdout.clone()).stderr(cfg.stderr.clone());
        for (k, v) in &cfg.environment {
            wasi.env(k, v);
        }
        let state = HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks { component: cfg.clone(), app: self.shared.clone() },
            limits: StoreLimitsBuilder::new()
                .memory_size(self.options.engine.max_memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            component: cfg,
            app: self.shared.clone(),
            started: Instant::now(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let timeout = self.options.request_timeout;
        // At each epoch tick a running guest is checked: interrupted once its
        // request is older than the timeout; made to yield to the executor
        // once it has run longer than YIELD_AFTER (so a busy guest cannot
        // starve other requests on the same thread). A request caught by a
        // tick in its first fraction of a millisecond just goes on: sending
        // it to the back of the run queue put ~2% of requests behind every
        // other ready one, which was most of the p99 in scripts/bench.sh.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |ctx| {
            let age = ctx.data().started.elapsed();
            if age > timeout {
                Ok(UpdateDeadline::Interrupt)
            } else if age > YIELD_AFTER {
                // Not a bare yield: a guest that woke itself ran again as soon
                // as the requests queued on its worker had each been polled
                // once, and a request takes several polls, each then waiting
                // out another slice of the busy guest (p99 4 -> 313 ms beside
                // a looping guest, scripts/reliability.sh). Pausing it lets
                // its worker finish what is queued meanwhile; with a 2 ms
                // tick the busy guest gets at most half a core.
                Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep(OVERRUN_PAUSE))))
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store
    }

    async fn call_component(&self, id: &str, req: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
        let component = self.components.get(id).with_context(|| format!("no component {id:?}"))?;
        // Host-side waits (key-value, hypervisor) are bounded too, with a
        // little slack so a guest deadline reports as the guest's trap.
        let limit = self.options.request_timeout + Duration::from_secs(1);
        let fut = async {
            match &component.handler {
                Handler::P3(pre) => self.call_p3_reusing(component, pre, req).await,
                Handler::P2(pre) => call_p2(self.new_store(component), pre, req).await,
            }
        };
        let _counted = InFlight::enter(&self.in_flight);
        let alone = || self.in_flight.load(std::sync::atomic::Ordering::Relaxed) <= 1;
        match tokio::time::timeout(limit, crate::repoll::Repoll::new(fut, alone)).await {
            Ok(r) => r,
            Err(_) => anyhow::bail!("request exceeded the {:?} request timeout", self.options.request_timeout),
        }
    }
}

impl App {
    /// Serves `req` on an idle instance of the component, or a new one.
    /// The worker is owned by this future: if the request times out and
    /// the future is dropped, the instance goes with it.
    async fn call_p3_reusing(
        &self,
        component: &LoadedComponent,
        pre: &ServicePre<HostState>,
        req: http::Request<Bytes>,
    ) -> anyhow::Result<http::Response<Bytes>> {
        let idle = component.idle.lock().unwrap().pop();
        let mut worker = match idle {
            Some(w) => w,
            None => {
                let mut store = self.new_store(component);
                let service =
                    pre.instantiate_async(&mut store).await.map_err(|e| anyhow::anyhow!("instantiate: {e:#}"))?;
                P3Worker { store, service, served: 0 }
            }
        };
        // The deadline counts from this request, not from the instance's birth.
        worker.store.data_mut().started = Instant::now();
        let response = match call_p3(&mut worker.store, &worker.service, req).await {
            Ok(r) => r,
            Err(e) => {
                // A failed instance is never reused. Its memory may have
                // grown to the limit (a guest allocating without bound):
                // giving that back to the kernel takes milliseconds, so it
                // is done off the worker thread that serves other requests.
                tokio::task::spawn_blocking(move || drop(worker));
                return Err(e);
            }
        };
        worker.served += 1;
        if worker.served < self.options.max_instance_reuse_count {
            let mut idle = component.idle.lock().unwrap();
            if idle.len() < self.options.max_idle_instances {
                idle.push(worker);
            }
        }
        Ok(response)
    }
}

async fn call_p3(
    store: &mut Store<HostState>,
    service: &wasmtime_wasi_http::p3::bindings::Service,
    req: http::Request<Bytes>,
) -> anyhow::Result<http::Response<Bytes>> {
    use wasmtime_wasi_http::p3::Request;
    let req = req.map(full_body);
    let (req, _io) = Request::from_http(&mut store.data_mut().hooks, req);
    let result = store
        .run_concurrent(async |store| {
            let res = match service.handle(store, req).await? {
                Ok(res) => res,
                Err(code) => return wasmtime::error::Ok(Err(code)),
            };
            let res = store.with(|store| res.into_http(store, async { Ok(()) }))?;
            let (parts, body) = res.into_parts();
            // Reading the whole body here keeps a guest trap mid-body inside
            // this call, where it becomes a 500 (responses are small JSON).
            let body = body.collect().await.map_err(|e| wasmtime::format_err!("response body: {e:?}"))?.to_bytes();
            Ok(Ok(http::Response::from_parts(parts, body)))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    result.map_err(|code| anyhow::anyhow!("guest returned error code {code:?}"))
}

async fn call_p2(
    mut store: Store<HostState>,
    pre: &ProxyPre<HostState>,
    req: http::Request<Bytes>,
) -> anyhow::Result<http::Response<Bytes>> {
    use wasmtime_wasi_http::WasiHttpView;
    use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let req = req.map(full_body);
    let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = store.data_mut().http().new_response_outparam(sender).map_err(|e| anyhow::anyhow!("{e}"))?;
    let proxy = pre.instantiate_async(&mut store).await.map_err(|e| anyhow::anyhow!("instantiate: {e:#}"))?;
    let task = tokio::spawn(async move {
        proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, out).await
    });
    match receiver.await {
        Ok(Ok(resp)) => {
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| anyhow::anyhow!("response body: {e:?}"))?.to_bytes();
            // The guest may still be running after streaming its body; wait
            // so its errors are seen and its instance freed.
            if let Ok(Err(e)) = task.await {
                anyhow::bail!("guest failed after responding: {e:#}");
            }
            Ok(http::Response::from_parts(parts, body))
        }
        Ok(Err(code)) => anyhow::bail!("guest returned error code {code:?}"),
        Err(_) => match task.await {
            Ok(Err(e)) => anyhow::bail!("guest trapped: {e:#}"),
            Ok(Ok(())) => anyhow::bail!("guest returned without setting a response"),
            Err(e) => anyhow::bail!("guest task panicked: {e}"),
        },
    }
}

/// A complete body in the error type wasi-http wants.
fn full_body(b: Bytes) -> http_body_util::combinators::BoxBody<Bytes, wasmtime_wasi_http::Error> {
    Full::new(b).map_err(|never: std::convert::Infallible| match never {}).boxed()
}

pub fn text(status: u16, body: &str) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Bytes::from(body.to_string()))
        .expect("static response parts are valid")
}
