//! The `vnext` command line. The doc comments below are the `--help` text.

use crate::app::{App, RuntimeOptions};
use crate::engine::{CacheOutcome, EngineLimits};
use crate::manifest::Manifest;
use crate::runtime_config::RuntimeConfig;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Default address, as `spin up`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Default address of a standalone adapter (`vnext adapter`).
pub const DEFAULT_ADAPTER_LISTEN: &str = "127.0.0.1:3001";
/// Default per-request deadline.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default largest linear memory of one instance.
pub const DEFAULT_MAX_MEMORY_MB: usize = 128;
/// Default number of instances that may be alive at once.
pub const DEFAULT_MAX_INSTANCES: u32 = 256;
/// Task polls between two checks for I/O events (and of the global queue).
pub const RUNTIME_EVENT_INTERVAL: u32 = 4;
/// Default sequential requests per WASI 0.3 instance (Spin 4's default).
pub const DEFAULT_MAX_INSTANCE_REUSE_COUNT: usize = 128;
/// Inventory of `vnext up` when a component needs the hypervisor and none is given.
pub const DEFAULT_INVENTORY: &str = "deploy/sample-inventory.toml";
/// Default idle WASI 0.3 instances kept per component.
pub const DEFAULT_MAX_IDLE_INSTANCES: usize = 16;

/// vNext Compute host: runs the vNext Spin application (or any Spin
/// manifest-v2 HTTP application) and drives the hypervisors.
#[derive(Parser, Debug)]
#[command(name = "vnext", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a Spin application, like `spin up`.
    Up(UpArgs),
    /// Run the hypervisor adapter as its own process, for use beside real
    /// Spin (the `hypervisor-client` component forwards to it).
    Adapter(AdapterArgs),
    /// Serve a native (non-wasm) handler doing the same key-value read as
    /// `GET /servers/{id}`: the benchmark's baseline.
    Baseline(BaselineArgs),
    /// Compile wasm components into a compile cache. `vnext up` runs this in
    /// a child process for the components its cache lacks, so the
    /// compiler's memory goes back to the system when the child exits.
    Compile(CompileArgs),
}

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Directory for state (key-value database, compile cache, adapter
    /// journal). Default: `.spin` next to the manifest.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Spin runtime configuration file (e.g. a Redis key-value store).
    #[arg(long)]
    pub runtime_config_file: Option<PathBuf>,
    /// Set a key-value pair before serving: `key=value` in the default
    /// store, or `label:key=value`. May be repeated.
    #[arg(long = "key-value", value_name = "KEY=VALUE")]
    pub key_values: Vec<String>,
    /// Who serves the components' import of vnext:compute/hypervisor.
    /// `in-process`: this process, with its own adapter over --inventory
    /// (the manifest's dependency on the interface is left out; every other
    /// dependency is composed). `dependency`: the manifest's dependency, as
    /// real Spin does; in this app the hypervisor-client component, which
    /// forwards each call to a `vnext adapter` process at the `adapter_url`
    /// variable (SPIN_VARIABLE_ADAPTER_URL).
    #[arg(long, value_enum, default_value_t = crate::app::HypervisorSource::InProcess)]
    pub hypervisor: crate::app::HypervisorSource,
    /// Deployment inventory (placements, compute nodes, driver) for the
    /// in-process hypervisor adapter. Default: deploy/sample-inventory.toml
    /// when a component depends on the hypervisor interface; an application
    /// without such a component runs without an adapter unless this is given.
    /// Not with `--hypervisor dependency` (the adapter process has it).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Shared secret for progress events (the `events_secret` variable).
    /// Default: a random value for this process.
    #[arg(long, env = "VNEXT_EVENTS_SECRET", hide_env_values = true)]
    pub events_secret: Option<String>,
    /// Per-request deadline in milliseconds; a guest still running then is
    /// interrupted and the request gets a 500.
    #[arg(long, default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// Largest memory one component instance may use, in MiB.
    #[arg(long, default_value_t = DEFAULT_MAX_MEMORY_MB)]
    pub max_memory_mb: usize,
    /// Component instances that may be alive at once.
    #[arg(long, default_value_t = DEFAULT_MAX_INSTANCES)]
    pub max_instances: u32,
    /// Sequential requests one WASI 0.3 instance may serve before it is
    /// dropped, like Spin 4's flag of the same name (1: a fresh instance per
    /// request). WASI 0.2 components always get a fresh instance. An
    /// instance serves one request at a time here.
    #[arg(long, default_value_t = DEFAULT_MAX_INSTANCE_REUSE_COUNT, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_instance_reuse_count: usize,
    /// Idle WASI 0.3 instances kept ready per component.
    #[arg(long, default_value_t = DEFAULT_MAX_IDLE_INSTANCES)]
    pub max_idle_instances: usize,
    /// Most connections open at once; past it, new connections wait (in the
    /// listen backlog) until one closes, and the log says so.
    #[arg(long, default_value_t = crate::server::DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Time a client has to send its request line and headers, in
    /// milliseconds; a slower client, or an idle keep-alive connection, is
    /// disconnected.
    #[arg(long, default_value_t = crate::server::DEFAULT_HEADER_READ_TIMEOUT.as_millis() as u64)]
    pub header_read_timeout_ms: u64,
    /// Time a client has to send its request body once its headers are in,
    /// in milliseconds (408 after).
    #[arg(long, default_value_t = crate::server::DEFAULT_BODY_READ_TIMEOUT.as_millis() as u64)]
    pub body_read_timeout_ms: u64,
}

#[derive(clap::Args, Debug)]
pub struct AdapterArgs {
    /// Deployment inventory (placements, compute nodes, driver).
    #[arg(long, default_value = DEFAULT_INVENTORY)]
    pub inventory: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_ADAPTER_LISTEN)]
    pub listen: SocketAddr,
    /// Base URL of the API, where events are posted (`<url>/internal/events`).
    /// Several hosts sharing one store: repeat the flag or separate URLs
    /// with commas; each delivery goes to the next host in turn and on to
    /// the others while one does not answer.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:3000")]
    pub events_url: Vec<String>,
    /// Shared secret sent with each event (the app's `events_secret`).
    #[arg(long, env = "VNEXT_EVENTS_SECRET", hide_env_values = true)]
    pub events_secret: String,
    /// Directory for the adapter's journal.
    #[arg(long, default_value = ".spin")]
    pub state_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// The compile cache (`<state dir>/cache` of `vnext up`).
    #[arg(long)]
    pub cache_dir: PathBuf,
    /// Largest memory of one instance, in bytes: the same as the host's
    /// (`--max-memory-mb`), since the engine's settings name the artefacts.
    #[arg(long, default_value_t = DEFAULT_MAX_MEMORY_MB << 20)]
    pub max_memory_bytes: usize,
    /// Component instances alive at once: the same as the host's.
    #[arg(long, default_value_t = DEFAULT_MAX_INSTANCES)]
    pub max_instances: u32,
    /// The wasm component files.
    #[arg(required = true)]
    pub wasm: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct BaselineArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3002")]
    pub listen: SocketAddr,
    /// The SQLite key-value file to read (the host's default store).
    #[arg(long, default_value = ".spin/sqlite_key_value.db")]
    pub db: PathBuf,
}

pub fn main() -> ExitCode {
    // Errors are values on some hot paths of the runtime; capturing a
    // backtrace for each (RUST_BACKTRACE=1 turns that on for library errors
    // too) costs more than the request. Panics still honour RUST_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let cli = Cli::parse();
    // Compiling needs no async runtime (and no idle worker threads).
    if let Command::Compile(args) = &cli.command {
        let limits = EngineLimits { max_memory_bytes: args.max_memory_bytes, max_instances: args.max_instances };
        return match crate::precompile::compile_files(&limits, &args.cache_dir, &args.wasm) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // A guest that keeps its worker busy yields only at each epoch tick, so
    // the default intervals (I/O checked every 61 polls, the global queue
    // every 31) would leave new connections waiting ~600 ms while every
    // worker runs such a guest. Smaller intervals bound that wait.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(RUNTIME_EVENT_INTERVAL)
        .global_queue_interval(RUNTIME_EVENT_INTERVAL)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Up(args) => up(args).await,
            Command::Adapter(args) => adapter(args).await,
            Command::Baseline(args) => crate::baseline::serve(args.listen, &args.db, shutdown_signal()).await,
            Command::Compile(_) => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives
/// right after start-up is not lost) and resolves when one arrives.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                eprintln!("warning: cannot install signal handlers; stop the host with SIGKILL");
                std::future::pending::<()>().await
            }
        }
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let manifest_path = if args.manifest.is_dir() { args.manifest.join("spin.toml") } else { args.manifest.clone() };
    let manifest = Manifest::load(&manifest_path)?;
    let base = manifest_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let state_dir = args.state_dir.clone().unwrap_or_else(|| base.join(".spin"));
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;

    let runtime_config = match &args.runtime_config_file {
        Some(p) => RuntimeConfig::load(p)?,
        None => RuntimeConfig::default(),
    };
    let stores = vnext_kv::Stores::open(&runtime_config.key_value_store, state_dir.join("sqlite_key_value.db")).await?;
    seed_key_values(&stores, &args.key_values).await?;

    let events_secret = args.events_secret.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let events = crate::events::InProcessSink::new(events_secret.clone());
    let in_process = args.hypervisor == crate::app::HypervisorSource::InProcess;
    anyhow::ensure!(
        in_process || args.inventory.is_none(),
        "--inventory is for the in-process adapter; with --hypervisor dependency give it to `vnext adapter`"
    );
    let needs_hypervisor = manifest
        .component
        .iter()
        .find(|(_, c)| in_process && c.dependencies.contains_key(crate::app::HYPERVISOR_INTERFACE))
        .map(|(id, _)| id.clone());
    let inventory = match (&args.inventory, &needs_hypervisor) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(id)) => {
            let default = PathBuf::from(DEFAULT_INVENTORY);
            anyhow::ensure!(
                default.exists(),
                "component {id:?} depends on {}, served by the hypervisor adapter, whose inventory \
                 {DEFAULT_INVENTORY} does not exist here: give one with --inventory",
                crate::app::HYPERVISOR_INTERFACE
            );
            Some(default)
        }
        (None, None) => None,
    };
    let hypervisor = match &inventory {
        Some(p) => Some(crate::events::start_adapter(p, &state_dir, events.clone()).await?),
        None if !in_process => {
            eprintln!(
                "{} comes from the manifest's dependencies (--hypervisor dependency): no adapter in this process",
                crate::app::HYPERVISOR_INTERFACE
            );
            None
        }
        None => {
            eprintln!(
                "no component depends on {}: running without a hypervisor adapter",
                crate::app::HYPERVISOR_INTERFACE
            );
            None
        }
    };

    let options = RuntimeOptions {
        state_dir: state_dir.clone(),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        engine: EngineLimits { max_memory_bytes: args.max_memory_mb << 20, max_instances: args.max_instances },
        host_variables: HashMap::from([("events_secret".to_string(), events_secret)]),
        env: std::env::vars().collect(),
        max_instance_reuse_count: args.max_instance_reuse_count,
        max_idle_instances: args.max_idle_instances,
        hypervisor_source: args.hypervisor,
        // This very binary compiles what the cache lacks, in a child process.
        compiler: std::env::current_exe().ok(),
    };
    let app = App::load(&manifest, &base, options, stores, hypervisor, |r| {
        let how = match r.cache {
            CacheOutcome::Hit => "from cache",
            CacheOutcome::Miss => "compiled",
        };
        if r.composed_with.is_empty() {
            eprintln!("loaded component {} ({how}, {:.0?})", r.component, r.elapsed);
        } else {
            eprintln!(
                "loaded component {} composed with {} ({how}, {:.0?})",
                r.component,
                r.composed_with.join(", "),
                r.elapsed
            );
        }
    })?;
    for d in app.router().duplicates() {
        eprintln!("warning: route {:?} is declared more than once; the last one ({:?}) wins over {:?}", d.route, d.by, d.replaced);
    }
    events.attach(&app);
    // Epoch ticker: one thread for the whole process, not one per request.
    let engine = app.engine().clone();
    std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || loop {
        std::thread::sleep(crate::engine::EPOCH_TICK);
        engine.increment_epoch();
    })?;

    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is another server using it? try --listen)", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Serving http://{addr}");
    println!("Available Routes:");
    for r in app.router().routes() {
        let name = match &r.target {
            crate::router::Target::Component(c) => c.clone(),
            crate::router::Target::Static(_) => "(static response)".to_string(),
        };
        let wildcard = matches!(r.pattern.tail, crate::router::Tail::Wildcard);
        println!(
            "  {name}: http://{addr}{}{}",
            r.pattern.component_route(),
            if wildcard { " (wildcard)" } else { "" }
        );
    }
    eprintln!("ready in {:.0?}", started.elapsed());
    let limits = crate::server::ServerLimits {
        max_connections: args.max_connections,
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
        body_read_timeout: Duration::from_millis(args.body_read_timeout_ms),
    };
    crate::server::serve(app, listener, limits, shutdown).await
}

/// `--key-value key=value` or `label:key=value`.
async fn seed_key_values(stores: &vnext_kv::Stores, entries: &[String]) -> anyhow::Result<()> {
    for e in entries {
        let (lhs, value) = e.split_once('=').with_context(|| format!("--key-value {e:?} must look like key=value"))?;
        let (label, key) = lhs.split_once(':').unwrap_or(("default", lhs));
        let store = stores.get(label).with_context(|| format!("--key-value {e:?}: no store labelled {label:?}"))?;
        store.set(key, value.as_bytes()).await.map_err(|err| anyhow::anyhow!("--key-value {e:?}: {err}"))?;
    }
    Ok(())
}

async fn adapter(args: AdapterArgs) -> anyhow::Result<()> {
    crate::events::run_standalone_adapter(args, shutdown_signal()).await
}

