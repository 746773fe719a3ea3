//! The fake driver: servers that exist only in memory.
//!
//! Like Nova's FakeDriver it lets the whole stack run without a hypervisor,
//! but it keeps Nova's power-state semantics (pause -> PAUSED, suspend ->
//! SUSPENDED, power-off -> SHUTDOWN, ...) and refuses what a real hypervisor
//! would refuse (unpausing a running server), so the API's behaviour can be
//! tested end to end. Steps take a configurable time and can be made to fail
//! ([`FakeOptions`]). Everything it reports (console log, diagnostics) is a
//! pure function of the server's history and uptime, and the clock can be
//! replaced, so tests are deterministic.

use crate::driver::{BoxFuture, Driver, StepError, StepRequest, action_kind};
use crate::inventory::{FailRule, FakeOptions, NodeConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vnext_core::events::{BlockDeviceInfo, InterfaceInfo, ServerRuntime};
use vnext_core::hypervisor::{
    Action, ConsoleType, Diagnostics, DiskCounters, HypervisorError, InterfaceCounters,
    PowerState, RuntimeState, ServerSpec,
};

/// Console lines kept per server; older ones are dropped like a ring buffer.
const CONSOLE_MAX_LINES: usize = 10_000;
/// A running fake guest prints a heartbeat line this often.
const HEARTBEAT_SECONDS: u64 = 10;

/// A clock in Unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The in-memory backend.
pub struct FakeDriver {
    options: FakeOptions,
    nodes: Vec<NodeConfig>,
    clock: Clock,
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    servers: HashMap<String, FakeServer>,
    /// Console tokens not used yet: token -> (server id, console type).
    tokens: HashMap<String, (String, ConsoleType)>,
}

/// What the fake knows of one server. Serialized into the adapter's journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FakeServer {
    hostname: String,
    spec: ServerSpec,
    node_id: Option<String>,
    node_hostname: Option<String>,
    power: PowerState,
    /// The spawn finished (before that the server is still being built).
    spawned: bool,
    terminated: bool,
    rescued: bool,
    shelved: bool,
    /// When the guest last booted (Unix ms); `None` while not running.
    booted_at_ms: Option<i64>,
    /// Heartbeat lines already written for the current boot.
    heartbeats_written: u64,
    boots: u32,
    console: Vec<String>,
    interfaces: Vec<InterfaceInfo>,
    /// Network id of each interface (same order), when known.
    interface_networks: Vec<Option<String>>,
    block_devices: Vec<BlockDeviceInfo>,
    /// Volume id of each block device (same order); `None` for ephemeral.
    block_volumes: Vec<Option<String>>,
}

impl FakeDriver {
    pub fn new(options: FakeOptions, nodes: Vec<NodeConfig>) -> FakeDriver {
        Self::with_clock(options, nodes, Arc::new(crate::time::now_unix_millis))
    }

    /// A fake whose notion of "now" comes from `clock` (tests).
    pub fn with_clock(options: FakeOptions, nodes: Vec<NodeConfig>, clock: Clock) -> FakeDriver {
        FakeDriver { options, nodes, clock, state: Mutex::new(FakeState::default()) }
    }

    /// Uses a console token: returns what it opens, once. A console proxy
    /// would call this; a second use of the same token gets `None`.
    pub fn redeem_console_token(&self, token: &str) -> Option<(String, ConsoleType)> {
        self.state.lock().unwrap().tokens.remove(token)
    }

    /// What a guest does by itself, behind the API's back: powers itself
    /// off, crashes, or is started by an operator. The adapter's lifecycle
    /// sweep notices it and reports it (tests and demos of the power-state
    /// sync). Unknown servers are ignored.
    pub fn set_power_state(&self, server_id: &str, power: PowerState) {
        let now = (self.clock)();
        if let Some(s) = self.state.lock().unwrap().servers.get_mut(server_id) {
            s.power = power;
            s.booted_at_ms = if power == PowerState::Running { Some(now) } else { None };
        }
    }

    fn delay(&self, action: &Action) -> Duration {
        let ms = self
            .options
            .action_delay_ms
            .get(action_kind(action))
            .copied()
            .unwrap_or(self.options.step_delay_ms);
        Duration::from_millis(ms)
    }

    fn matching_rule<'r>(rules: &'r [FailRule], req: &StepRequest<'_>, hostname: &str) -> Option<&'r FailRule> {
        rules.iter().find(|r| {
            r.action.as_deref().is_none_or(|a| a == action_kind(&req.op.action))
                && r.step.as_deref().is_none_or(|s| s == req.step)
                && r.hostname_prefix.as_deref().is_none_or(|p| hostname.starts_with(p))
                && r.server_id.as_deref().is_none_or(|id| id == req.op.server_id)
        })
    }

    fn injected_failure(&self, req: &StepRequest<'_>) -> Option<StepError> {
        let hostname = match &req.op.action {
            Action::Spawn(args) => args.hostname.clone(),
            _ => self
                .state
                .lock()
                .unwrap()
                .servers
                .get(&req.op.server_id)
                .map(|s| s.hostname.clone())
                .unwrap_or_default(),
        };
        if let Some(rule) = Self::matching_rule(&self.options.timeout, req, &hostname) {
            return Some(StepError::TimedOut(rule.error.clone()));
        }
        Self::matching_rule(&self.options.fail, req, &hostname).map(|r| StepError::Aborted(r.error.clone()))
    }

    fn apply(&self, req: &StepRequest<'_>) -> Result<Option<ServerRuntime>, StepError> {
        let now = (self.clock)();
        let mut state = self.state.lock().unwrap();
        let id = req.op.server_id.as_str();
        if let Action::Spawn(args) = &req.op.action {
            if let Some(existing) = state.servers.get(id) {
                // A rerun of an interrupted spawn finds its own half-built
                // server; a finished one means the id is taken.
                if existing.spawned {
                    return Err(StepError::Aborted(format!("server {id} already exists")));
                }
            } else {
                state.servers.insert(id.to_owned(), FakeServer::new(&args.hostname, args.spec));
            }
        }
        let Some(server) = state.servers.get_mut(id) else {
            if matches!(req.op.action, Action::Terminate) {
                // Nothing to terminate (e.g. its spawn failed): done.
                return Ok(None);
            }
            return Err(StepError::Aborted(format!("the hypervisor has no server {id}")));
        };
        server.catch_up(now);
        if server.terminated && !matches!(req.op.action, Action::Restore | Action::Terminate) {
            return Err(StepError::Aborted(format!("server {id} is terminated")));
        }
        let changed = server.step(req, now)?;
        Ok(changed.then(|| server.runtime()))
    }
}

fn refuse(action: &str, power: PowerState) -> StepError {
    StepError::Aborted(format!("cannot {action} a server whose power state is {}", power_name(power)))
}

fn power_name(p: PowerState) -> &'static str {
    vnext_core::model::power_state_str(p)
}

impl FakeServer {
    fn new(hostname: &str, spec: ServerSpec) -> FakeServer {
        FakeServer {
            hostname: hostname.to_owned(),
            spec,
            node_id: None,
            node_hostname: None,
            power: PowerState::Shutdown,
            spawned: false,
            terminated: false,
            rescued: false,
            shelved: false,
            booted_at_ms: None,
            heartbeats_written: 0,
            boots: 0,
            console: Vec::new(),
            interfaces: Vec::new(),
            interface_networks: Vec::new(),
            block_devices: Vec::new(),
            block_volumes: Vec::new(),
        }
    }

    fn runtime(&self) -> ServerRuntime {
        ServerRuntime {
            power_state: self.power,
            compute_node_id: self.node_id.clone(),
            compute_node_hostname: self.node_hostname.clone(),
            placement_id: None,
            interfaces: self.interfaces.clone(),
            block_devices: self.block_devices.clone(),
        }
    }

    fn uptime_seconds(&self, now: i64) -> u64 {
        match self.booted_at_ms {
            Some(t) if self.power != PowerState::Shutdown => ((now - t).max(0) / 1000) as u64,
            _ => 0,
        }
    }

    fn log(&mut self, line: String) {
        self.console.push(line);
        if self.console.len() > CONSOLE_MAX_LINES {
            let extra = self.console.len() - CONSOLE_MAX_LINES;
            self.console.drain(..extra);
        }
    }

    /// Writes the heartbeat lines a running guest printed up to `now`, so the
    /// log grows with uptime and stays the same whenever it is read.
    fn catch_up(&mut self, now: i64) {
        if self.power != PowerState::Running {
            return;
        }
        let due = self.uptime_seconds(now) / HEARTBEAT_SECONDS;
        while self.heartbeats_written < due {
            self.heartbeats_written += 1;
            let t = self.heartbeats_written * HEARTBEAT_SECONDS;
            let line = format!("[{t:>8}.000000] {}: heartbeat {} (uptime {t}s)", self.hostname, self.heartbeats_written);
            self.log(line);
        }
    }

    fn place(&mut self, node: Option<&NodeConfig>) {
        if let Some(n) = node {
            self.node_id = Some(n.id.clone());
            self.node_hostname = Some(n.hostname.clone());
        }
    }

    fn boot(&mut self, now: i64, why: &str) {
        self.boots += 1;
        self.power = PowerState::Running;
        self.booted_at_ms = Some(now);
        self.heartbeats_written = 0;
        let host = self.hostname.clone();
        let node = self.node_hostname.clone().unwrap_or_else(|| "?".into());
        for line in [
            format!("[    0.000000] Linux version 6.1.0-vnext-fake (boot {} on {node}: {why})", self.boots),
            "[    0.000000] Command line: console=ttyS0 root=/dev/vda1 ro".to_string(),
            format!("[    0.210000] Memory: {}K available", self.spec.memory_mb * 1024),
            format!("[    0.430000] virtio_blk virtio1: [vda] {} GiB", self.spec.root_disk_gb),
            format!("[    1.020000] Run /sbin/init as init process ({} vCPU)", self.spec.cpu_units),
            format!("[    2.100000] cloud-init: hostname set to {host}"),
            format!("{host} login:"),
        ] {
            self.log(line);
        }
    }

    fn stop(&mut self, power: PowerState, line: &str) {
        self.power = power;
        if power == PowerState::Shutdown {
            self.booted_at_ms = None;
        }
        let host = self.hostname.clone();
        self.log(format!("{host}: {line}"));
    }

    /// Applies one step; returns whether the server visibly changed.
    fn step(&mut self, req: &StepRequest<'_>, now: i64) -> Result<bool, StepError> {
        let last = req.is_last();
        let p = self.power;
        // Preconditions are checked at the first step, as a hypervisor would
        // refuse the action before doing any work.
        if req.step_index == 0 {
            let ok = match &req.op.action {
                Action::Pause | Action::Reboot | Action::UpdatePassword(_) => p == PowerState::Running,
                Action::Unpause => p == PowerState::Paused,
                Action::Suspend => matches!(p, PowerState::Running | PowerState::Paused),
                Action::Resume => p == PowerState::Suspended,
                Action::PowerOn => matches!(p, PowerState::Shutdown | PowerState::Crashed),
                Action::Unrescue => self.rescued,
                Action::ShelveOffload | Action::Unshelve => self.shelved,
                Action::Restore => self.terminated,
                _ => true,
            };
            if !ok {
                let what = action_kind(&req.op.action).replace('_', " ");
                return Err(match &req.op.action {
                    Action::Unrescue => StepError::Aborted("cannot unrescue a server that is not rescued".into()),
                    Action::ShelveOffload | Action::Unshelve => {
                        StepError::Aborted(format!("cannot {what} a server that is not shelved"))
                    }
                    Action::Restore => StepError::Aborted("cannot restore a server that is not terminated".into()),
                    _ => refuse(&what, p),
                });
            }
        }
        match &req.op.action {
            Action::Spawn(_) => {
                match req.step {
                    "BLOCK_DEVICE_MAPPING" => self.ensure_root_disk(),
                    "NETWORKING" => self.ensure_first_interface(&req.op.server_id),
                    _ => {}
                }
                if last {
                    self.ensure_root_disk();
                    self.ensure_first_interface(&req.op.server_id);
                    self.place(req.node);
                    self.spawned = true;
                    self.boot(now, "spawn");
                    return Ok(true);
                }
                Ok(false)
            }
            _ if !last => Ok(false),
            Action::Reboot => {
                self.stop(PowerState::Running, "reboot: the system is going down NOW");
                self.boot(now, "reboot");
                Ok(true)
            }
            Action::HardReboot => {
                self.stop(PowerState::Running, "hard reboot: reset");
                self.boot(now, "hard reboot");
                Ok(true)
            }
            Action::Pause => {
                self.stop(PowerState::Paused, "paused");
                Ok(true)
            }
            Action::Unpause => {
                self.power = PowerState::Running;
                self.log(format!("{}: unpaused", self.hostname));
                Ok(true)
            }
            Action::Suspend => {
                self.stop(PowerState::Suspended, "suspended to disk");
                Ok(true)
            }
            Action::Resume => {
                self.power = PowerState::Running;
                self.log(format!("{}: resumed", self.hostname));
                Ok(true)
            }
            Action::PowerOff => {
                self.stop(PowerState::Shutdown, "reached target Power-Off");
                Ok(true)
            }
            Action::PowerOn => {
                self.boot(now, "power on");
                Ok(true)
            }
            Action::Rescue(image) => {
                self.rescued = true;
                let image = image.clone().unwrap_or_else(|| "own template".into());
                self.stop(PowerState::Shutdown, &format!("rebooting into rescue image ({image})"));
                self.boot(now, "rescue");
                Ok(true)
            }
            Action::Unrescue => {
                self.rescued = false;
                self.stop(PowerState::Shutdown, "leaving rescue");
                self.boot(now, "unrescue");
                Ok(true)
            }
            Action::Rebuild(template) => {
                self.stop(PowerState::Shutdown, &format!("rebuilding from template {template}"));
                self.boot(now, "rebuild");
                Ok(true)
            }
            Action::Resize(spec) => {
                self.spec = *spec;
                // As Nova: a server resized while powered off stays off.
                if p == PowerState::Running {
                    self.stop(PowerState::Shutdown, "resizing");
                    self.boot(now, "resize");
                } else {
                    self.log(format!("{}: resized while powered off", self.hostname));
                }
                Ok(true)
            }
            Action::Move(args) => {
                let from = self.node_hostname.clone().unwrap_or_default();
                self.place(req.node);
                let to = self.node_hostname.clone().unwrap_or_default();
                let how = if args.live { "live-migrated" } else { "migrated" };
                self.log(format!("{}: {how} from {from} to {to}", self.hostname));
                if !args.live && p == PowerState::Running {
                    self.boot(now, "cold migration");
                }
                Ok(true)
            }
            Action::Snapshot(name) | Action::Backup(name) => {
                self.log(format!("{}: image {name:?} uploaded", self.hostname));
                Ok(false)
            }
            Action::UpdatePassword(_) => {
                self.log(format!("{}: administrator password changed", self.hostname));
                Ok(false)
            }
            Action::Shelve => {
                self.shelved = true;
                self.stop(PowerState::Shutdown, "shelved");
                Ok(true)
            }
            Action::ShelveOffload => {
                self.node_id = None;
                self.node_hostname = None;
                self.log(format!("{}: offloaded from its compute node", self.hostname));
                Ok(true)
            }
            Action::Unshelve => {
                self.shelved = false;
                self.place(req.node);
                self.boot(now, "unshelve");
                Ok(true)
            }
            Action::AttachBlockDevice(args) => {
                if self.block_volumes.iter().any(|v| v.as_deref() == Some(args.volume_id.as_str())) {
                    return Err(StepError::Aborted(format!("volume {} is already attached", args.volume_id)));
                }
                let device = args.device.clone().unwrap_or_else(|| next_device(&self.block_devices));
                if self.block_devices.iter().any(|d| d.device == device) {
                    return Err(StepError::Aborted(format!("device {device} is in use")));
                }
                self.block_devices.push(BlockDeviceInfo { device, kind: "PERSISTENT".into() });
                self.block_volumes.push(Some(args.volume_id.clone()));
                Ok(true)
            }
            Action::DetachBlockDevice(args) => {
                let Some(i) = self.block_volumes.iter().position(|v| v.as_deref() == Some(args.volume_id.as_str())) else {
                    return Err(StepError::Aborted(format!("volume {} is not attached", args.volume_id)));
                };
                self.block_devices.remove(i);
                self.block_volumes.remove(i);
                Ok(true)
            }
            Action::AttachNetworkInterface(args) => {
                let n = self.interfaces.len();
                let mac = args.mac.clone().unwrap_or_else(|| fake_mac(&req.op.server_id, n as u8));
                if self.interfaces.iter().any(|i| i.mac == mac) {
                    return Err(StepError::Aborted(format!("an interface with MAC {mac} exists")));
                }
                self.interfaces.push(InterfaceInfo {
                    name: format!("eth{n}"),
                    ip4: Some(fake_ip4(&req.op.server_id, n as u8)),
                    ip6: None,
                    mac,
                });
                self.interface_networks.push(args.network_id.clone());
                Ok(true)
            }
            Action::DetachNetworkInterface(args) => {
                let found = self.interfaces.iter().enumerate().position(|(i, iface)| {
                    args.mac.as_deref() == Some(iface.mac.as_str())
                        || (args.network_id.is_some() && self.interface_networks[i] == args.network_id)
                });
                let Some(i) = found else {
                    return Err(StepError::Aborted("no interface matches the given MAC or network".into()));
                };
                self.interfaces.remove(i);
                self.interface_networks.remove(i);
                Ok(true)
            }
            Action::Terminate => {
                if !self.terminated {
                    self.terminated = true;
                    self.stop(PowerState::Shutdown, "terminated");
                    // The node's resources are released; restore picks it up again.
                    self.node_id = None;
                    self.node_hostname = None;
                }
                Ok(true)
            }
            Action::Restore => {
                self.terminated = false;
                self.place(req.node);
                self.boot(now, "restore");
                Ok(true)
            }
        }
    }

    fn ensure_root_disk(&mut self) {
        if self.block_devices.is_empty() {
            self.block_devices.push(BlockDeviceInfo { device: "/dev/vda".into(), kind: "EPHEMERAL".into() });
            self.block_volumes.push(None);
        }
    }

    fn ensure_first_interface(&mut self, server_id: &str) {
        if self.interfaces.is_empty() {
            self.interfaces.push(InterfaceInfo {
                name: "eth0".into(),
                ip4: Some(fake_ip4(server_id, 0)),
                ip6: None,
                mac: fake_mac(server_id, 0),
            });
            self.interface_networks.push(None);
        }
    }
}

fn next_device(devices: &[BlockDeviceInfo]) -> String {
    (b'b'..=b'z')
        .map(|c| format!("/dev/vd{}", c as char))
        .find(|d| devices.iter().all(|x| &x.device != d))
        .unwrap_or_else(|| "/dev/vdzz".into())
}

/// A stable number per server, so MACs and addresses do not change between runs.
fn server_hash(server_id: &str) -> u32 {
    // FNV-1a: tiny, stable across Rust versions (unlike DefaultHasher).
    server_id.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

fn fake_mac(server_id: &str, n: u8) -> String {
    let h = server_hash(server_id).to_be_bytes();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", h[1], h[2], h[3].wrapping_add(n))
}

fn fake_ip4(server_id: &str, n: u8) -> String {
    let h = server_hash(server_id).to_be_bytes();
    format!("10.{}.{}.{}", n, h[2], h[3] % 250 + 2)
}

fn unknown(server_id: &str) -> HypervisorError {
    HypervisorError::UnknownServer(server_id.to_owned())
}

impl Driver for FakeDriver {
    fn run_step<'a>(&'a self, req: StepRequest<'a>) -> BoxFuture<'a, Result<Option<ServerRuntime>, StepError>> {
        Box::pin(async move {
            let delay = self.delay(&req.op.action);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if let Some(failure) = self.injected_failure(&req) {
                return Err(failure);
            }
            self.apply(&req)
        })
    }

    fn server_state<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, Result<RuntimeState, HypervisorError>> {
        Box::pin(async move {
            let now = (self.clock)();
            let state = self.state.lock().unwrap();
            let s = state.servers.get(server_id).ok_or_else(|| unknown(server_id))?;
            Ok(RuntimeState {
                server_id: server_id.to_owned(),
                power_state: s.power,
                compute_node_id: s.node_id.clone(),
                compute_node_hostname: s.node_hostname.clone(),
                uptime_seconds: s.uptime_seconds(now),
            })
        })
    }

    fn console_log<'a>(&'a self, server_id: &'a str, lines: u32) -> BoxFuture<'a, Result<String, HypervisorError>> {
        Box::pin(async move {
            let now = (self.clock)();
            let mut state = self.state.lock().unwrap();
            let s = state.servers.get_mut(server_id).ok_or_else(|| unknown(server_id))?;
            s.catch_up(now);
            let from = s.console.len().saturating_sub(lines as usize);
            let mut out = s.console[from..].join("\n");
            if !out.is_empty() {
                out.push('\n');
            }
            Ok(out)
        })
    }

    fn console_uri<'a>(&'a self, server_id: &'a str, kind: ConsoleType) -> BoxFuture<'a, Result<String, HypervisorError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            let s = state.servers.get(server_id).ok_or_else(|| unknown(server_id))?;
            let Some(node) = s.node_id.as_deref().and_then(|id| self.nodes.iter().find(|n| n.id == id)) else {
                return Err(HypervisorError::Unsupported(format!(
                    "server {server_id} is not on a compute node, so it has no console"
                )));
            };
            if !node.console_types.contains(&kind) {
                return Err(HypervisorError::Unsupported(format!(
                    "compute node {} does not serve {} consoles",
                    node.hostname,
                    kind.as_str()
                )));
            }
            let token = uuid::Uuid::new_v4().to_string();
            state.tokens.insert(token.clone(), (server_id.to_owned(), kind));
            Ok(match kind {
                ConsoleType::Novnc => format!("http://127.0.0.1:6080/vnc_auto.html?token={token}"),
                ConsoleType::Xvpvnc => format!("http://127.0.0.1:6081/console?token={token}"),
                ConsoleType::Spice => format!("http://127.0.0.1:6082/spice_auto.html?token={token}"),
                ConsoleType::Rdp => format!("http://127.0.0.1:6083/rdp?token={token}"),
            })
        })
    }

    fn diagnostics<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, Result<Diagnostics, HypervisorError>> {
        Box::pin(async move {
            let now = (self.clock)();
            let state = self.state.lock().unwrap();
            let s = state.servers.get(server_id).ok_or_else(|| unknown(server_id))?;
            if s.terminated {
                return Err(HypervisorError::Unsupported(format!("server {server_id} is terminated")));
            }
            Ok(fake_diagnostics(s, s.uptime_seconds(now)))
        })
    }

    fn forget<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            state.servers.remove(server_id);
            state.tokens.retain(|_, (id, _)| id != server_id);
        })
    }

    fn export_server(&self, server_id: &str) -> Option<serde_json::Value> {
        let state = self.state.lock().unwrap();
        state.servers.get(server_id).and_then(|s| serde_json::to_value(s).ok())
    }

    fn import_server(&self, server_id: &str, value: serde_json::Value) -> Result<(), String> {
        let server: FakeServer = serde_json::from_value(value).map_err(|e| e.to_string())?;
        self.state.lock().unwrap().servers.insert(server_id.to_owned(), server);
        Ok(())
    }
}

/// Counters that grow with uptime the way a lightly loaded guest's would.
fn fake_diagnostics(s: &FakeServer, uptime: u64) -> Diagnostics {
    let total = s.spec.memory_mb;
    let used = if uptime == 0 { 0 } else { (total / 4 + uptime / 10).min(total) };
    Diagnostics {
        // A quarter of one CPU unit busy on average.
        cpu_time_ns: uptime * 250_000_000 * s.spec.cpu_units as u64,
        memory_used_mb: used,
        memory_total_mb: total,
        uptime_seconds: uptime,
        disks: s
            .block_devices
            .iter()
            .map(|d| DiskCounters {
                device: d.device.clone(),
                read_bytes: (1_000 + 10 * uptime) * 4096,
                write_bytes: (100 + 5 * uptime) * 4096,
                read_requests: 1_000 + 10 * uptime,
                write_requests: 100 + 5 * uptime,
            })
            .collect(),
        interfaces: s
            .interfaces
            .iter()
            .map(|i| InterfaceCounters {
                name: i.name.clone(),
                rx_bytes: (20 + 3 * uptime) * 1500,
                tx_bytes: (10 + 2 * uptime) * 1500,
                rx_packets: 20 + 3 * uptime,
                tx_packets: 10 + 2 * uptime,
            })
            .collect(),
    }
}
