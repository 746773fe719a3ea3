//! [`Adapter`]: the `vnext:compute/hypervisor` interface in native Rust.
//!
//! What it guarantees, whatever the driver:
//! - `submit` answers at once and is idempotent per task id (also across
//!   restarts when a journal is configured);
//! - operations on one server run one at a time, in the order they were
//!   submitted; different servers run concurrently;
//! - every step produces a RUNNING event and then a COMPLETED, ABORTED or
//!   TIMED_OUT event, numbered 1, 2, 3... per task; the last event of a task
//!   carries its terminal operation state; a failed step ends the task;
//! - capacity claims are atomic: a spawn claims its spec on the first
//!   candidate node with room when its first (SCHEDULING) step runs, under
//!   one lock, so concurrent spawns never over-commit a node. A move claims
//!   on the target as well (the source is released when it completes), a
//!   resize holds the larger of both specs until it completes, terminate and
//!   shelve-offload release, restore and unshelve claim again. A failed
//!   operation gives back what it claimed;
//! - each task's events are delivered in order, each retried with
//!   exponential backoff (capped, default 2 s) until the sink acknowledges
//!   it; none is dropped.
//!
//! A spawn that fails is rolled back: its claim is released and the driver
//! forgets the half-built server, so a later TERMINATE of it just completes.
//!
//! Between tasks, a lifecycle sweep (every `[lifecycle] sync_interval_ms`)
//! does what Nova's periodic tasks do: it asks the driver for the power
//! state of every idle server on a node and reports any difference from
//! what the API was last told ([`EventSink::report`]: a guest that shut
//! itself down or crashed shows STOPPED), and it reclaims terminated
//! servers `reclaim_after_seconds` after their TERMINATE (the driver
//! deletes disk and domain; the adapter keeps a tombstone so a later
//! RESTORE aborts saying why, and reports the reclaim until acknowledged).

use crate::console_proxy::ConsoleProxy;
use crate::driver::{Driver, StepError, StepRequest};
use crate::drivers::{DriverKind, NodeDrivers};
use crate::error::Error;
use crate::events::EventSink;
use crate::fake::FakeDriver;
use crate::inventory::{DriverConfig, Inventory, NodeBackend, NodeConfig};
use crate::libvirt::LibvirtDriver;
use crate::journal::{Checkpoint, Journal};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use vnext_core::events::{OperationState, ServerObservation, ServerRuntime, StepState, TaskEvent};
use vnext_core::hypervisor::{
    Action, ComputeNode, ConsoleType, Diagnostics, HypervisorError, Operation, Placement, PowerState,
    Resources, RuntimeState, ServerSpec, Template,
};

/// How an adapter runs.
#[derive(Debug, Clone)]
pub struct AdapterOptions {
    /// Where the journal (`adapter.db`) lives; `None`: nothing survives a
    /// restart.
    pub state_dir: Option<PathBuf>,
    /// First wait after a failed event delivery; doubled after each failure.
    pub retry_initial: Duration,
    /// Longest wait between two delivery attempts.
    pub retry_max: Duration,
    /// Deliveries in flight at once, over all tasks. Events of one task
    /// wait in its outbox meanwhile and go out together as one batch, so
    /// a burst (a launch of 1,000 servers) costs a bounded number of
    /// concurrent API requests, and fewer requests in all.
    pub max_concurrent_deliveries: usize,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        AdapterOptions {
            state_dir: None,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(2),
            max_concurrent_deliveries: DEFAULT_CONCURRENT_DELIVERIES,
        }
    }
}

/// Default of [`AdapterOptions::max_concurrent_deliveries`]: enough to keep
/// two cores busy applying events, few enough to bound the API instances
/// (and memory) a burst of progress occupies.
pub const DEFAULT_CONCURRENT_DELIVERIES: usize = 2;
/// Most events of one task sent in one delivery.
pub const MAX_DELIVERY_BATCH: usize = 64;
/// Most observations sent in one report (the events route takes 256).
const OBSERVATION_BATCH: usize = 128;
/// How often reclaims are looked for when the power sync is off.
const RECLAIM_CHECK_MS: u64 = 1_000;

/// The hypervisor adapter. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Adapter {
    inner: Arc<Inner>,
}

struct Inner {
    inventory: Inventory,
    driver: Arc<dyn Driver>,
    sink: Arc<dyn EventSink>,
    journal: Option<Journal>,
    options: AdapterOptions,
    state: Mutex<State>,
    /// Woken whenever a worker finishes, for [`Adapter::idle`].
    idle: Notify,
    stopping: AtomicBool,
    stop: Notify,
    /// Permits for deliveries in flight (see `max_concurrent_deliveries`).
    deliveries: tokio::sync::Semaphore,
}

#[derive(Default)]
struct State {
    accepted: HashSet<String>,
    /// Pending operations per server. A key is present exactly while that
    /// server's worker runs, so a submit knows whether to start one.
    queues: HashMap<String, VecDeque<Progress>>,
    servers: HashMap<String, ServerRecord>,
    /// Undelivered events per task; a key is present while its delivery
    /// worker runs.
    outbox: HashMap<String, VecDeque<TaskEvent>>,
    /// The power state the API was last told of each server (by a step's
    /// event or an observation); the lifecycle sweep reports differences.
    reported_power: HashMap<String, PowerState>,
}

/// An operation and how far it got (journaled after every transition).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    op: Operation,
    next_step: usize,
    /// The RUNNING event of `next_step` was already emitted.
    step_started: bool,
    /// Last event number used.
    seq: u32,
    /// The node claimed by this operation (spawn, move, resize, restore,
    /// unshelve).
    target_node: Option<String>,
}

/// What the adapter knows of a server: where it is and what it claims.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ServerRecord {
    spec: ServerSpec,
    /// The node it is on; `None` while terminated, offloaded or being spawned.
    node_id: Option<String>,
    /// The node it was on before terminate / shelve-offload.
    last_node_id: Option<String>,
    allocations: Vec<Allocation>,
    /// When its TERMINATE completed (ms since the epoch), for reclaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    terminated_at_ms: Option<i64>,
    /// Reclaimed: disk and domain deleted; only this tombstone is left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    reclaimed: bool,
    /// The API acknowledged the reclaim.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    reclaim_reported: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Allocation {
    node_id: String,
    resources: Resources,
    /// The operation holding this claim until it ends; `None` once settled.
    task_id: Option<String>,
}

impl Adapter {
    /// An adapter for `inventory` with the drivers its nodes name: the fake
    /// driver (configured by the `[driver]` table) alone, or, once a node
    /// uses libvirt, [`NodeDrivers`] over the libvirt driver and the fake one.
    ///
    /// With a libvirt node that is not libvirt's test driver, it also starts
    /// the console proxy (`[console_proxy]`, [`crate::console_proxy`]). A
    /// proxy that cannot listen is a startup error, not a warning: the
    /// nodes advertise VNC consoles, and an adapter that handed out console
    /// URIs nothing answers would fail later, at the user, with no hint;
    /// the operator fixes the port (or `listen`) once. `test:///default`
    /// nodes have no display, so an inventory with only those starts no
    /// proxy (and test suites do not contend for port 6080).
    pub async fn from_inventory(
        inventory: Inventory,
        sink: Arc<dyn EventSink>,
        options: AdapterOptions,
    ) -> Result<Adapter, Error> {
        let fake: Arc<dyn Driver> = match &inventory.driver {
            DriverConfig::Fake(fake) => Arc::new(FakeDriver::new(fake.clone(), inventory.nodes.clone())),
        };
        let uses = |libvirt: bool| inventory.nodes.iter().any(|n| matches!(n.backend, NodeBackend::Libvirt { .. }) == libvirt);
        let driver: Arc<dyn Driver> = if !uses(true) {
            fake
        } else {
            let dir = match (&inventory.libvirt.dir, &options.state_dir) {
                (Some(dir), _) => dir.clone(),
                (None, Some(state)) => state.join("libvirt"),
                (None, None) => return Err(Error::LibvirtDir { inventory: inventory.source.clone() }),
            };
            let displays = inventory.nodes.iter().any(|n| matches!(&n.backend, NodeBackend::Libvirt { uri, .. } if !uri.starts_with("test:")));
            let console = if displays {
                let options = &inventory.console_proxy;
                let proxy = ConsoleProxy::start(options).await.map_err(|source| Error::ConsoleProxy {
                    inventory: inventory.source.clone(),
                    listen: options.listen,
                    source,
                })?;
                eprintln!(
                    "vnext-hypervisor: console proxy listening on {}; console URIs start with {} (tokens last {} s)",
                    proxy.local_addr(),
                    proxy.public_url(),
                    proxy.token_ttl().as_secs()
                );
                Some(proxy)
            } else {
                None
            };
            let mut drivers: HashMap<DriverKind, Arc<dyn Driver>> = HashMap::new();
            drivers.insert(DriverKind::Libvirt, Arc::new(LibvirtDriver::with_console_proxy(&inventory, dir, console)));
            if uses(false) {
                drivers.insert(DriverKind::Fake, fake);
            }
            Arc::new(NodeDrivers::new(&inventory, drivers))
        };
        Self::open(inventory, driver, sink, options).await
    }

    /// Reads the inventory file and opens an adapter with its driver,
    /// journaling to `<state_dir>/adapter.db` when a state dir is given.
    pub async fn from_inventory_file(
        inventory_path: impl AsRef<Path>,
        state_dir: Option<&Path>,
        sink: Arc<dyn EventSink>,
    ) -> Result<Adapter, Error> {
        let inventory = Inventory::load(inventory_path)?;
        let options = AdapterOptions { state_dir: state_dir.map(Path::to_owned), ..Default::default() };
        Self::from_inventory(inventory, sink, options).await
    }

    /// An adapter with an explicit driver. With a state dir, it reloads the
    /// journal, resumes unfinished operations and re-delivers undelivered
    /// events. Must be called inside a tokio runtime (it spawns workers).
    pub async fn open(
        inventory: Inventory,
        driver: Arc<dyn Driver>,
        sink: Arc<dyn EventSink>,
        options: AdapterOptions,
    ) -> Result<Adapter, Error> {
        let journal = match &options.state_dir {
            Some(dir) => Some(Journal::open(dir.join("adapter.db"))?),
            None => None,
        };
        let mut state = State::default();
        if let Some(journal) = &journal {
            let loaded = journal.load()?;
            for (id, json) in loaded.driver {
                let value = parse_row::<serde_json::Value>("driver record", &id, &json)?;
                driver
                    .import_server(&id, value)
                    .map_err(|message| Error::JournalCorrupt { context: format!("driver record {id}"), message })?;
            }
            for (id, json) in loaded.servers {
                let record = parse_row::<ServerRecord>("server record", &id, &json)?;
                state.servers.insert(id, record);
            }
            state.accepted.extend(loaded.task_ids);
            for json in loaded.events {
                let event = parse_row::<TaskEvent>("event", "", &json)?;
                state.outbox.entry(event.task_id.clone()).or_default().push_back(event);
            }
            for json in loaded.unfinished {
                let progress = parse_row::<Progress>("operation", "", &json)?;
                state.queues.entry(progress.op.server_id.clone()).or_default().push_back(progress);
            }
        }
        let resume_servers: Vec<String> = state.queues.keys().cloned().collect();
        let resume_tasks: Vec<String> = state.outbox.keys().cloned().collect();
        let adapter = Adapter {
            inner: Arc::new(Inner {
                inventory,
                driver,
                sink,
                journal,
                deliveries: tokio::sync::Semaphore::new(options.max_concurrent_deliveries.max(1)),
                options,
                state: Mutex::new(state),
                idle: Notify::new(),
                stopping: AtomicBool::new(false),
                stop: Notify::new(),
            }),
        };
        for task_id in resume_tasks {
            tokio::spawn(adapter.clone().deliver_worker(task_id));
        }
        for server_id in resume_servers {
            tokio::spawn(adapter.clone().server_worker(server_id));
        }
        {
            let known: Vec<String> = adapter.inner.state.lock().unwrap().servers.iter()
                .filter(|(_, r)| !r.reclaimed)
                .map(|(id, _)| id.clone())
                .collect();
            adapter.inner.driver.recover(&known).await;
        }
        tokio::spawn(adapter.clone().lifecycle_worker());
        Ok(adapter)
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inner.inventory
    }

    /// The deployment's placements.
    pub async fn list_placements(&self) -> Result<Vec<Placement>, HypervisorError> {
        Ok(self.inner.inventory.placements.clone())
    }

    /// The template catalogue: the inventory's, in its order, then those
    /// SNAPSHOT and BACKUP tasks added.
    pub async fn list_templates(&self) -> Result<Vec<Template>, HypervisorError> {
        let made = self.inner.driver.templates();
        Ok(self
            .inner
            .inventory
            .templates
            .iter()
            .chain(made.iter())
            .map(|t| Template {
                id: t.id.clone(),
                name: t.name.clone(),
                min_memory_mb: t.min_memory_mb,
                min_disk_gb: t.min_disk_gb,
                rescue_template_id: t.rescue_template_id.clone(),
            })
            .collect())
    }

    /// Every compute node with its capacity and what servers claim on it.
    pub async fn list_compute_nodes(&self) -> Result<Vec<ComputeNode>, HypervisorError> {
        let state = self.inner.state.lock().unwrap();
        Ok(self
            .inner
            .inventory
            .nodes
            .iter()
            .map(|n| ComputeNode {
                id: n.id.clone(),
                hostname: n.hostname.clone(),
                placement_ids: n.placement_ids.clone(),
                capacity: n.capacity,
                usage: usage(&state, &n.id),
                console_types: n.console_types.clone(),
                enabled: n.enabled,
                live_migration_group: n.live_migration_group.clone(),
            })
            .collect())
    }

    /// Accepts an operation and returns at once; progress comes as events.
    /// A task id seen before makes this a no-op.
    pub async fn submit(&self, op: Operation) -> Result<(), HypervisorError> {
        self.submit_many(vec![op]).await.pop().expect("one result per operation")
    }

    /// [`Adapter::submit`] for several operations, each accepted or refused
    /// on its own (results in order), journalled in one transaction: a
    /// launch of 1,000 servers is one commit and one call, and none of its
    /// operations starts before all are recorded.
    pub async fn submit_many(&self, ops: Vec<Operation>) -> Vec<Result<(), HypervisorError>> {
        let mut results: Vec<Result<(), HypervisorError>> = ops.iter().map(|op| self.validate(op)).collect();
        let mut start_workers = Vec::new();
        {
            let mut state = self.inner.state.lock().unwrap();
            // Valid, not seen before, and first of its task id in this call.
            let mut seen = std::collections::HashSet::new();
            let mut fresh: Vec<(usize, Progress)> = Vec::new();
            for (i, op) in ops.into_iter().enumerate() {
                if results[i].is_ok() && !state.accepted.contains(&op.task_id) && seen.insert(op.task_id.clone()) {
                    fresh.push((i, Progress { op, next_step: 0, step_started: false, seq: 0, target_node: None }));
                }
            }
            if let Some(journal) = &self.inner.journal {
                // Recorded before answering: an accepted task must survive a crash.
                let rows: Vec<(&str, &str, String)> = fresh
                    .iter()
                    .map(|(_, p)| {
                        let json = serde_json::to_string(p).expect("operations serialize");
                        (p.op.task_id.as_str(), p.op.server_id.as_str(), json)
                    })
                    .collect();
                match journal.accept_many(&rows) {
                    Ok(new) => {
                        let mut new = new.into_iter();
                        fresh.retain(|_| new.next().unwrap_or(false));
                    }
                    Err(e) => {
                        for (i, _) in &fresh {
                            results[*i] = Err(HypervisorError::Unavailable(e.to_string()));
                        }
                        return results;
                    }
                }
            }
            for (_, progress) in fresh {
                let server_id = progress.op.server_id.clone();
                state.accepted.insert(progress.op.task_id.clone());
                if !state.queues.contains_key(&server_id) {
                    start_workers.push(server_id.clone());
                }
                state.queues.entry(server_id).or_default().push_back(progress);
            }
        }
        for server_id in start_workers {
            tokio::spawn(self.clone().server_worker(server_id));
        }
        results
    }

    pub async fn server_state(&self, server_id: &str) -> Result<RuntimeState, HypervisorError> {
        self.inner.driver.server_state(server_id).await
    }

    pub async fn console_log(&self, server_id: &str, lines: u32) -> Result<String, HypervisorError> {
        self.inner.driver.console_log(server_id, lines).await
    }

    pub async fn console_uri(&self, server_id: &str, kind: ConsoleType) -> Result<String, HypervisorError> {
        self.inner.driver.console_uri(server_id, kind).await
    }

    pub async fn diagnostics(&self, server_id: &str) -> Result<Diagnostics, HypervisorError> {
        self.inner.driver.diagnostics(server_id).await
    }

    /// Deletes a terminated server's disk and domain for good (RESTORE is
    /// no longer possible). The lifecycle sweep calls it once the
    /// server's `reclaim_after_seconds` have passed; it is public for
    /// operators' tools and tests. The adapter keeps a tombstone of the
    /// server, so a RESTORE after it aborts with the reason.
    pub async fn reclaim(&self, server_id: &str) -> Result<(), HypervisorError> {
        {
            let mut state = self.inner.state.lock().unwrap();
            if state.queues.contains_key(server_id) {
                return Err(HypervisorError::Invalid(format!("server {server_id} has operations in progress")));
            }
            let record = state.servers.entry(server_id.to_string()).or_default();
            if record.node_id.is_some() || !record.allocations.is_empty() {
                return Err(HypervisorError::Invalid(format!(
                    "server {server_id} is not terminated; terminate it first"
                )));
            }
            record.reclaimed = true;
            record.last_node_id = None;
            let json = serde_json::to_string(record).expect("records serialize");
            state.reported_power.remove(server_id);
            if let Some(journal) = &self.inner.journal {
                journal
                    .save_server(server_id, Some(&json), None)
                    .map_err(|e| HypervisorError::Unavailable(e.to_string()))?;
            }
        }
        self.inner.driver.forget(server_id).await;
        Ok(())
    }

    /// Runs one lifecycle sweep now (the worker runs one every
    /// `sync_interval_ms`): reclaims what is due, then reports power states
    /// that differ from what the API was told, and reclaims not yet
    /// acknowledged. Returns how many observations the API took.
    pub async fn sweep(&self) -> usize {
        self.sweep_with(true).await
    }

    async fn sweep_with(&self, sync_power: bool) -> usize {
        let lifecycle = self.inner.inventory.lifecycle;
        let now = crate::time::now_unix_millis();
        let reclaim_after_ms = (lifecycle.reclaim_after_seconds as i64).saturating_mul(1000);
        let (idle, due) = {
            let state = self.inner.state.lock().unwrap();
            let free = |id: &String| !state.queues.contains_key(id);
            let idle: Vec<String> =
                state.servers.iter().filter(|(id, r)| r.node_id.is_some() && free(id)).map(|(id, _)| id.clone()).collect();
            let due: Vec<String> = state
                .servers
                .iter()
                .filter(|(id, r)| {
                    r.node_id.is_none()
                        && !r.reclaimed
                        && r.terminated_at_ms.is_some_and(|t| now.saturating_sub(t) >= reclaim_after_ms)
                        && free(id)
                })
                .map(|(id, _)| id.clone())
                .collect();
            (idle, due)
        };
        for id in &due {
            match self.reclaim(id).await {
                Ok(()) => eprintln!("vnext-hypervisor: reclaimed terminated server {id} (disk and domain deleted)"),
                Err(e) => eprintln!("vnext-hypervisor: reclaiming server {id} failed: {e}; trying again at the next sweep"),
            }
        }
        let at = crate::time::now_rfc3339();
        let mut observations = Vec::new();
        if sync_power {
            for id in idle {
                let Ok(seen) = self.inner.driver.server_state(&id).await else { continue };
                let state = self.inner.state.lock().unwrap();
                // An operation started meanwhile reports for itself.
                if state.queues.contains_key(&id) || state.reported_power.get(&id) == Some(&seen.power_state) {
                    continue;
                }
                observations.push(ServerObservation { server_id: id, power_state: seen.power_state, reclaimed: false, at: at.clone() });
            }
        }
        {
            let state = self.inner.state.lock().unwrap();
            observations.extend(state.servers.iter().filter(|(_, r)| r.reclaimed && !r.reclaim_reported).map(|(id, _)| {
                ServerObservation { server_id: id.clone(), power_state: PowerState::Shutdown, reclaimed: true, at: at.clone() }
            }));
        }
        let mut taken = 0;
        for batch in observations.chunks(OBSERVATION_BATCH) {
            if let Err(e) = self.inner.sink.report(batch).await {
                eprintln!("vnext-hypervisor: reporting {} server observation(s) failed: {e}; reporting again at the next sweep", batch.len());
                break;
            }
            taken += batch.len();
            let mut state = self.inner.state.lock().unwrap();
            for obs in batch {
                if obs.reclaimed {
                    if let Some(r) = state.servers.get_mut(&obs.server_id) {
                        r.reclaim_reported = true;
                        let json = serde_json::to_string(r).expect("records serialize");
                        if let Some(journal) = &self.inner.journal
                            && let Err(e) = journal.save_server(&obs.server_id, Some(&json), None)
                        {
                            eprintln!("vnext-hypervisor: journaling the reclaim of {} failed: {e}", obs.server_id);
                        }
                    }
                } else {
                    state.reported_power.insert(obs.server_id.clone(), obs.power_state);
                }
            }
        }
        taken
    }

    async fn lifecycle_worker(self) {
        let sync = self.inner.inventory.lifecycle.sync_interval_ms;
        // Without a power sync, reclaims are still due: look once a second.
        let tick = Duration::from_millis(if sync > 0 { sync } else { RECLAIM_CHECK_MS });
        loop {
            let stop = self.inner.stop.notified();
            if self.stopping() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop => return,
            }
            self.sweep_with(sync > 0).await;
        }
    }

    /// Waits until no operation runs and every event was delivered.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            {
                let state = self.inner.state.lock().unwrap();
                if state.queues.is_empty() && state.outbox.is_empty() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Stops starting steps and delivery attempts. Unfinished work stays in
    /// the journal and resumes when an adapter opens it again.
    pub fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.stop.notify_waiters();
    }

    fn stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }

    fn validate(&self, op: &Operation) -> Result<(), HypervisorError> {
        if op.task_id.trim().is_empty() || op.server_id.trim().is_empty() {
            return Err(HypervisorError::Invalid("task_id and server_id must not be empty".into()));
        }
        if op.steps.is_empty() {
            return Err(HypervisorError::Invalid(format!("task {} has no steps", op.task_id)));
        }
        if let Some(i) = op.steps.iter().position(|s| s.trim().is_empty()) {
            return Err(HypervisorError::Invalid(format!("step {i} of task {} has no name", op.task_id)));
        }
        let candidates: &[String] = match &op.action {
            Action::Spawn(args) => &args.candidate_node_ids,
            Action::Move(args) => &args.candidate_node_ids,
            _ => &[],
        };
        if let Some(unknown) = candidates.iter().find(|id| self.inner.inventory.node(id).is_none()) {
            return Err(HypervisorError::UnknownNode(unknown.clone()));
        }
        Ok(())
    }

    async fn server_worker(self, server_id: String) {
        loop {
            if self.stopping() {
                return;
            }
            let next = {
                let mut state = self.inner.state.lock().unwrap();
                match state.queues.get_mut(&server_id).and_then(VecDeque::pop_front) {
                    Some(p) => p,
                    None => {
                        state.queues.remove(&server_id);
                        drop(state);
                        self.inner.idle.notify_waiters();
                        return;
                    }
                }
            };
            self.run_operation(next).await;
        }
    }

    async fn run_operation(&self, mut p: Progress) {
        let steps = p.op.steps.len();
        while p.next_step < steps {
            if self.stopping() {
                return;
            }
            let i = p.next_step;
            if !p.step_started {
                p.step_started = true;
                p.seq += 1;
                let event = new_event(&p, i, StepState::Running, OperationState::Running, None, None);
                self.checkpoint(&p, false, event).await;
            }
            if i == 0 && p.target_node.is_none() {
                let claim = {
                    let mut state = self.inner.state.lock().unwrap();
                    self.claim(&mut state, &p.op)
                };
                match claim {
                    Ok(node) => p.target_node = node,
                    Err(message) => return self.fail(p, i, StepError::Aborted(message)).await,
                }
            }
            let node = self.node_for(&p);
            let request = StepRequest { op: &p.op, step_index: i, step: &p.op.steps[i], node };
            match self.inner.driver.run_step(request).await {
                Ok(mut runtime) => {
                    // Drivers know nodes, the inventory knows their placements.
                    if let Some(rt) = runtime.as_mut()
                        && let Some(node) = rt.compute_node_id.as_deref().and_then(|id| self.inner.inventory.node(id))
                    {
                        rt.placement_id = node.placement_ids.first().cloned();
                    }
                    if let Some(rt) = &runtime {
                        self.inner.state.lock().unwrap().reported_power.insert(p.op.server_id.clone(), rt.power_state);
                    }
                    let last = i + 1 == steps;
                    if last {
                        let mut state = self.inner.state.lock().unwrap();
                        settle(&mut state, &p);
                    }
                    p.next_step += 1;
                    p.step_started = false;
                    p.seq += 1;
                    let op_state = if last { OperationState::Completed } else { OperationState::Running };
                    let event = new_event(&p, i, StepState::Completed, op_state, None, runtime);
                    self.checkpoint(&p, last, event).await;
                }
                Err(error) => return self.fail(p, i, error).await,
            }
        }
    }

    /// Ends an operation with a failed step, giving back what it claimed.
    async fn fail(&self, mut p: Progress, i: usize, error: StepError) {
        let forget = {
            let mut state = self.inner.state.lock().unwrap();
            release_claims(&mut state, &p)
        };
        if forget {
            self.inner.driver.forget(&p.op.server_id).await;
        }
        let (step_state, op_state) = match &error {
            StepError::Aborted(_) => (StepState::Aborted, OperationState::Aborted),
            StepError::TimedOut(_) => (StepState::TimedOut, OperationState::TimedOut),
        };
        p.next_step = p.op.steps.len();
        p.step_started = false;
        p.seq += 1;
        let event = new_event(&p, i, step_state, op_state, Some(error.message().to_owned()), None);
        self.checkpoint(&p, true, event).await;
    }

    fn node_for(&self, p: &Progress) -> Option<&NodeConfig> {
        let id = p.target_node.clone().or_else(|| {
            let state = self.inner.state.lock().unwrap();
            state.servers.get(&p.op.server_id).and_then(|r| r.node_id.clone())
        })?;
        self.inner.inventory.node(&id)
    }

    /// Journals a transition (progress, event, server records) in one
    /// transaction, then queues the event for delivery.
    async fn checkpoint(&self, p: &Progress, done: bool, event: TaskEvent) {
        if let Some(journal) = &self.inner.journal {
            let server_id = p.op.server_id.as_str();
            let record = {
                let state = self.inner.state.lock().unwrap();
                state.servers.get(server_id).map(|r| serde_json::to_string(r).expect("records serialize"))
            };
            let driver = self.inner.driver.export_server(server_id).map(|v| v.to_string());
            let checkpoint = Checkpoint {
                task_id: &p.op.task_id,
                progress: serde_json::to_string(p).expect("progress serializes"),
                done,
                event: Some((event.seq, serde_json::to_string(&event).expect("events serialize"))),
                server: Some((server_id, record)),
                driver: Some((server_id, driver)),
            };
            if let Err(e) = journal.checkpoint(&checkpoint) {
                // The in-memory run goes on; only a crash before the next
                // successful checkpoint would lose this transition.
                eprintln!(
                    "vnext-hypervisor: journaling event {} of task {} failed: {e}",
                    event.seq, event.task_id
                );
            }
        }
        let start = {
            let mut state = self.inner.state.lock().unwrap();
            let start = !state.outbox.contains_key(&event.task_id);
            let task_id = event.task_id.clone();
            state.outbox.entry(task_id).or_default().push_back(event.clone());
            start
        };
        if start {
            tokio::spawn(self.clone().deliver_worker(event.task_id));
        }
    }

    async fn deliver_worker(self, task_id: String) {
        loop {
            // Wait for a delivery slot first: events keep queuing meanwhile
            // and leave together.
            let Ok(_permit) = self.inner.deliveries.acquire().await else { return };
            let batch: Vec<TaskEvent> = {
                let mut state = self.inner.state.lock().unwrap();
                match state.outbox.get(&task_id).filter(|q| !q.is_empty()) {
                    Some(q) => q.iter().take(MAX_DELIVERY_BATCH).cloned().collect(),
                    None => {
                        state.outbox.remove(&task_id);
                        drop(state);
                        self.inner.idle.notify_waiters();
                        return;
                    }
                }
            };
            if !self.deliver_until_acknowledged(&batch).await {
                return;
            }
            if let Some(journal) = &self.inner.journal {
                for event in &batch {
                    if let Err(e) = journal.delivered(&event.task_id, event.seq) {
                        // Worst case the event is delivered again after a restart,
                        // which the API tolerates (it ignores a seq it has applied).
                        eprintln!("vnext-hypervisor: could not mark event {} of task {} delivered: {e}", event.seq, task_id);
                    }
                }
            }
            let mut state = self.inner.state.lock().unwrap();
            if let Some(q) = state.outbox.get_mut(&task_id) {
                q.drain(..batch.len().min(q.len()));
            }
        }
    }

    /// Retries one batch until the sink takes it; `false` if the adapter is
    /// shutting down first.
    async fn deliver_until_acknowledged(&self, batch: &[TaskEvent]) -> bool {
        let mut wait = self.inner.options.retry_initial;
        let mut attempt = 1u32;
        let (first, last) = (&batch[0], &batch[batch.len() - 1]);
        loop {
            match self.inner.sink.deliver(batch).await {
                Ok(()) => return true,
                Err(e) => eprintln!(
                    "vnext-hypervisor: delivering events {}..={} of task {} for server {} failed \
                     (attempt {attempt}): {e}; retrying in {wait:?}",
                    first.seq, last.seq, first.task_id, first.server_id
                ),
            }
            let stop = self.inner.stop.notified();
            if self.stopping() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop => return false,
            }
            wait = (wait * 2).min(self.inner.options.retry_max);
            attempt += 1;
        }
    }

    /// Claims capacity for an operation's first step, atomically under the
    /// state lock. Returns the node the operation targets (`None` for
    /// actions that do not claim), or why nothing fits.
    fn claim(&self, state: &mut State, op: &Operation) -> Result<Option<String>, String> {
        let nodes = &self.inner.inventory.nodes;
        let task = Some(op.task_id.clone());
        let record = state.servers.get(&op.server_id).cloned();
        // Resumed after a restart that kept the claim: reuse it.
        if let Some(a) = record.iter().flat_map(|r| &r.allocations).find(|a| a.task_id == task) {
            return Ok(Some(a.node_id.clone()));
        }
        let candidates = |ids: &[String]| -> Vec<&NodeConfig> {
            if ids.is_empty() {
                nodes.iter().collect()
            } else {
                ids.iter().filter_map(|id| self.inner.inventory.node(id)).collect()
            }
        };
        match &op.action {
            Action::Spawn(args) => {
                if record.is_some() {
                    return Err(format!("server {} already exists", op.server_id));
                }
                let need = args.spec.resources();
                let node = pick(state, &candidates(&args.candidate_node_ids), None, &need)?;
                state.servers.insert(
                    op.server_id.clone(),
                    ServerRecord {
                        spec: args.spec,
                        node_id: None,
                        last_node_id: None,
                        allocations: vec![Allocation { node_id: node.clone(), resources: need, task_id: task }],
                        ..Default::default()
                    },
                );
                Ok(Some(node))
            }
            Action::Move(args) => {
                let Some(current) = record.as_ref().and_then(|r| r.node_id.clone()) else {
                    return Err(format!("server {} is not on a compute node, so it cannot move", op.server_id));
                };
                let record = record.unwrap();
                let need = record.spec.resources();
                let mut eligible = candidates(&args.candidate_node_ids);
                if args.live {
                    // The components filter the same way; checked again
                    // because an adapter client need not be our component.
                    let group = self.inner.inventory.node(&current).and_then(|n| n.live_migration_group.as_ref());
                    let Some(group) = group else {
                        return Err(LIVE_MOVE_REFUSED.to_string());
                    };
                    eligible.retain(|n| n.live_migration_group.as_ref() == Some(group));
                    if eligible.iter().all(|n| n.id == current) {
                        return Err(LIVE_MOVE_REFUSED.to_string());
                    }
                }
                let node = pick(state, &eligible, Some(&current), &need)?;
                add_allocation(state, &op.server_id, &node, need, task);
                Ok(Some(node))
            }
            Action::Resize(new) => {
                let Some(record) = record else { return Ok(None) };
                let Some(node) = record.node_id.clone() else {
                    return Err(format!("server {} is not on a compute node, so it cannot resize", op.server_id));
                };
                let old = record.spec.resources();
                let new = new.resources();
                // Hold the larger of both specs until the resize ends, so
                // neither a rollback nor the new size can over-commit.
                let extra = Resources {
                    memory_mb: new.memory_mb.saturating_sub(old.memory_mb),
                    cpu_units: new.cpu_units.saturating_sub(old.cpu_units),
                    disk_gb: new.disk_gb.saturating_sub(old.disk_gb),
                };
                let config = self.inner.inventory.node(&node).expect("records name inventory nodes");
                if !usage(state, &node).fits(&extra, &config.capacity) {
                    // Node names are for operators (the log), not for the
                    // task's error, which any project member reads.
                    eprintln!(
                        "vnext-hypervisor: resize of {}: compute node {} has {} free",
                        op.server_id,
                        config.hostname,
                        describe(&free(state, config))
                    );
                    return Err(format!("the server's compute node has no room to grow to {}", describe(&new)));
                }
                add_allocation(state, &op.server_id, &node, extra, task);
                Ok(Some(node))
            }
            Action::Restore | Action::Unshelve => {
                let Some(record) = record else { return Ok(None) };
                if record.reclaimed {
                    return Err(format!(
                        "server {} was reclaimed (its disk and domain are deleted), so it cannot come back",
                        op.server_id
                    ));
                }
                if record.node_id.is_some() {
                    // Not terminated / not offloaded: the driver decides.
                    return Ok(None);
                }
                let need = record.spec.resources();
                let mut order: Vec<&NodeConfig> = Vec::new();
                if let Some(last) = record.last_node_id.as_deref().and_then(|id| self.inner.inventory.node(id)) {
                    order.push(last);
                }
                // A restored server comes back where it was; an unshelved
                // one may go to any node, preferring its previous one.
                if matches!(op.action, Action::Unshelve) {
                    order.extend(nodes.iter().filter(|n| Some(&n.id) != record.last_node_id.as_ref()));
                }
                let node = pick(state, &order, None, &need)?;
                add_allocation(state, &op.server_id, &node, need, task);
                Ok(Some(node))
            }
            _ => Ok(None),
        }
    }
}

fn parse_row<T: serde::de::DeserializeOwned>(what: &str, id: &str, json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| Error::JournalCorrupt {
        context: if id.is_empty() { what.to_owned() } else { format!("{what} {id}") },
        message: e.to_string(),
    })
}

fn new_event(
    p: &Progress,
    step_index: usize,
    step_state: StepState,
    operation_state: OperationState,
    error: Option<String>,
    server: Option<ServerRuntime>,
) -> TaskEvent {
    TaskEvent {
        task_id: p.op.task_id.clone(),
        server_id: p.op.server_id.clone(),
        seq: p.seq,
        step_index: step_index as u32,
        step_state,
        operation_state,
        error,
        server,
        at: crate::time::now_rfc3339(),
    }
}

fn usage(state: &State, node_id: &str) -> Resources {
    let mut total = Resources::default();
    for a in state.servers.values().flat_map(|r| &r.allocations).filter(|a| a.node_id == node_id) {
        total.memory_mb += a.resources.memory_mb;
        total.cpu_units += a.resources.cpu_units;
        total.disk_gb += a.resources.disk_gb;
    }
    total
}

fn free(state: &State, node: &NodeConfig) -> Resources {
    let used = usage(state, &node.id);
    Resources {
        memory_mb: node.capacity.memory_mb.saturating_sub(used.memory_mb),
        cpu_units: node.capacity.cpu_units.saturating_sub(used.cpu_units),
        disk_gb: node.capacity.disk_gb.saturating_sub(used.disk_gb),
    }
}

fn describe(r: &Resources) -> String {
    format!("{} MB memory, {} CPU units, {} GB disk", r.memory_mb, r.cpu_units, r.disk_gb)
}

/// The first enabled candidate (other than `exclude`) where `need` fits.
/// Why a live MOVE has nowhere to go: the server's node shares no
/// live-migration group with any candidate.
const LIVE_MOVE_REFUSED: &str = "no compute node the server could move to live can take it \
     (live moves stay within a node's live_migration_group); MOVE it cold (\"live\": false) instead";

fn pick(state: &State, candidates: &[&NodeConfig], exclude: Option<&String>, need: &Resources) -> Result<String, String> {
    let mut seen = Vec::new();
    for node in candidates.iter().filter(|n| Some(&n.id) != exclude) {
        if !node.enabled {
            seen.push(format!("{} is disabled", node.hostname));
        } else if usage(state, &node.id).fits(need, &node.capacity) {
            return Ok(node.id.clone());
        } else {
            seen.push(format!("{} has {} free", node.hostname, describe(&free(state, node))));
        }
    }
    if seen.is_empty() {
        return Err(format!("no candidate compute node for {}", describe(need)));
    }
    // The per-node detail goes to the operator's log only: the message
    // becomes the task's error, and the API never names compute nodes.
    eprintln!("vnext-hypervisor: no room for {}: {}", describe(need), seen.join("; "));
    Err(format!("no compute node has room for {}", describe(need)))
}

fn add_allocation(state: &mut State, server_id: &str, node_id: &str, resources: Resources, task_id: Option<String>) {
    if let Some(record) = state.servers.get_mut(server_id) {
        record.allocations.push(Allocation { node_id: node_id.to_owned(), resources, task_id });
    }
}

/// Makes a completed operation's claims final.
fn settle(state: &mut State, p: &Progress) {
    let Some(record) = state.servers.get_mut(&p.op.server_id) else { return };
    let settled = |node: &str, spec: &ServerSpec| {
        vec![Allocation { node_id: node.to_owned(), resources: spec.resources(), task_id: None }]
    };
    match (&p.op.action, &p.target_node) {
        (Action::Spawn(_) | Action::Move(_) | Action::Restore | Action::Unshelve, Some(target)) => {
            record.node_id = Some(target.clone());
            record.allocations = settled(target, &record.spec);
            record.terminated_at_ms = None;
        }
        (Action::Resize(spec), Some(node)) => {
            record.spec = *spec;
            record.allocations = settled(node, spec);
        }
        (Action::Terminate | Action::ShelveOffload, _) => {
            if let Some(node) = record.node_id.take() {
                record.last_node_id = Some(node);
            }
            record.allocations.clear();
            if matches!(p.op.action, Action::Terminate) {
                record.terminated_at_ms = Some(crate::time::now_unix_millis());
            }
        }
        _ => {}
    }
}

/// Gives back the claims of a failed operation. Returns whether the server
/// itself was dropped (a spawn that never placed it), so the driver should
/// forget it too.
fn release_claims(state: &mut State, p: &Progress) -> bool {
    let Some(record) = state.servers.get_mut(&p.op.server_id) else {
        return matches!(p.op.action, Action::Spawn(_));
    };
    record.allocations.retain(|a| a.task_id.as_deref() != Some(p.op.task_id.as_str()));
    let never_placed = record.node_id.is_none() && record.last_node_id.is_none() && record.allocations.is_empty();
    if matches!(p.op.action, Action::Spawn(_)) && never_placed {
        state.servers.remove(&p.op.server_id);
        return true;
    }
    false
}
