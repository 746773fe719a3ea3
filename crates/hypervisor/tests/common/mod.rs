//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vnext_core::events::{ServerObservation, TaskEvent};
use vnext_core::hypervisor::{Action, Operation, ServerSpec, SpawnArgs};
use vnext_hypervisor::{BoxFuture, DeliveryError, EventSink};

pub const ROOT: &str = "11111111-1111-4111-8111-111111111111";
pub const CHILD: &str = "22222222-2222-4222-8222-222222222222";
pub const NODE_SMALL: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const NODE_BIG: &str = "aaaaaaaa-0000-4000-8000-000000000002";

/// Two nodes: a small one (4096 MB, 4 CPU, 100 GB, novnc) and a big one.
/// `driver` is extra `[driver]` text; steps take no time unless it sets
/// `step_delay_ms`.
pub fn inventory_toml(driver: &str) -> String {
    let delay = if driver.contains("step_delay_ms") { "" } else { "step_delay_ms = 0" };
    format!(
        r#"
[[placement]]
id = "{ROOT}"
name = "root"

[[placement]]
id = "{CHILD}"
name = "child"
parents = ["root"]

[[compute_node]]
id = "{NODE_SMALL}"
hostname = "small"
placements = ["child"]
memory_mb = 4096
cpu_units = 4
disk_gb = 100
console_types = ["novnc"]

[[compute_node]]
id = "{NODE_BIG}"
hostname = "big"
placements = ["root"]
memory_mb = 65536
cpu_units = 64
disk_gb = 2000
console_types = ["novnc", "spice"]

[driver]
kind = "fake"
{delay}
{driver}
"#
    )
}

pub fn inventory(driver: &str) -> vnext_hypervisor::Inventory {
    vnext_hypervisor::Inventory::parse(&inventory_toml(driver), "test-inventory.toml").unwrap()
}

pub fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub const SPAWN_STEPS: [&str; 4] = ["SCHEDULING", "BLOCK_DEVICE_MAPPING", "NETWORKING", "SPAWNING"];

pub fn spec(memory_mb: u64, cpu_units: u32, root_disk_gb: u64) -> ServerSpec {
    ServerSpec { memory_mb, root_disk_gb, cpu_units, swap_mb: 0 }
}

pub fn spawn_op(server_id: &str, hostname: &str, spec: ServerSpec, candidates: &[&str]) -> Operation {
    Operation {
        task_id: id(),
        server_id: server_id.to_owned(),
        action: Action::Spawn(SpawnArgs {
            hostname: hostname.to_owned(),
            spec,
            template_id: None,
            keypair_id: None,
            user_data: None,
            candidate_node_ids: candidates.iter().map(|s| s.to_string()).collect(),
        }),
        steps: SPAWN_STEPS.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn op(server_id: &str, action: Action, steps: &[&str]) -> Operation {
    Operation {
        task_id: id(),
        server_id: server_id.to_owned(),
        action,
        steps: steps.iter().map(|s| s.to_string()).collect(),
    }
}

/// Records every acknowledged event; refuses the first `failures` attempts.
#[derive(Default)]
pub struct RecordingSink {
    pub events: Mutex<Vec<TaskEvent>>,
    pub failures_left: AtomicU32,
    pub attempts: AtomicU32,
    /// Acknowledged deliveries (each a batch of one task's events).
    pub batches: AtomicU32,
    /// Observations reported by lifecycle sweeps.
    pub observations: Mutex<Vec<ServerObservation>>,
}

impl RecordingSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn failing(n: u32) -> Arc<Self> {
        let sink = Self::default();
        sink.failures_left.store(n, Ordering::SeqCst);
        Arc::new(sink)
    }

    pub fn of_task(&self, task_id: &str) -> Vec<TaskEvent> {
        self.events.lock().unwrap().iter().filter(|e| e.task_id == task_id).cloned().collect()
    }

    pub fn by_task(&self) -> HashMap<String, Vec<TaskEvent>> {
        let mut map: HashMap<String, Vec<TaskEvent>> = HashMap::new();
        for e in self.events.lock().unwrap().iter() {
            map.entry(e.task_id.clone()).or_default().push(e.clone());
        }
        map
    }
}

impl EventSink for RecordingSink {
    fn deliver<'a>(&'a self, batch: &'a [TaskEvent]) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            let left = self.failures_left.load(Ordering::SeqCst);
            if left > 0 {
                self.failures_left.store(left - 1, Ordering::SeqCst);
                return Err(DeliveryError::new("test sink refuses this attempt"));
            }
            assert!(!batch.is_empty(), "empty delivery");
            assert!(batch.iter().all(|e| e.task_id == batch[0].task_id), "a batch mixes tasks");
            assert!(batch.windows(2).all(|w| w[0].seq < w[1].seq), "a batch out of order");
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.events.lock().unwrap().extend(batch.iter().cloned());
            Ok(())
        })
    }

    fn report<'a>(&'a self, observations: &'a [ServerObservation]) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.observations.lock().unwrap().extend(observations.iter().cloned());
            Ok(())
        })
    }
}

pub fn fast_retry() -> vnext_hypervisor::AdapterOptions {
    vnext_hypervisor::AdapterOptions {
        state_dir: None,
        retry_initial: Duration::from_millis(1),
        retry_max: Duration::from_millis(8),
        ..Default::default()
    }
}

/// Waits for the adapter to go idle, failing the test after 10 s.
pub async fn settle(adapter: &vnext_hypervisor::Adapter) {
    tokio::time::timeout(Duration::from_secs(10), adapter.idle()).await.expect("adapter did not go idle within 10 s");
}

/// A fresh temporary directory (removed by the OS's tmp cleaning).
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vnext-hypervisor-{name}-{}", id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
