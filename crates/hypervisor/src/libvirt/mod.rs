//! The libvirt driver: each server a libvirt domain on its node's daemon.
//!
//! Organisation:
//! - this module: [`LibvirtDriver`], the [`Driver`] implementation: one
//!   connection per node (opened on first use, opened again after it
//!   broke), the servers it placed (journaled through
//!   [`Driver::export_server`]), and what each task step does;
//! - [`domain`]: the domain XML and the server's files;
//! - [`accel`]: KVM or TCG per node, probed at start.
//!
//! Every libvirt call runs on a blocking thread under a deadline
//! ([`LibvirtOptions::call_timeout_ms`]): a daemon that hangs ends the step
//! TIMED_OUT with a message, never a task that stays RUNNING. What a node
//! cannot do (yet) ends the step ABORTED, saying so.
//!
//! Actions, as Nova's libvirt driver does them:
//! - CREATE: the root disk (BLOCK_DEVICE_MAPPING: `qemu-img create`, an
//!   overlay of an image template or an empty disk of `root_disk_gb`), then
//!   define and start (SPAWNING), ACTIVE once the domain runs.
//! - REBOOT: ACPI shutdown, wait up to the shutdown timeout, start again;
//!   a guest that does not go down is destroyed and started (a hard
//!   reboot), as Nova falls back. HARD_REBOOT: reset.
//! - POWER_OFF: ACPI shutdown, then destroy after the timeout. POWER_ON:
//!   start. PAUSE / UNPAUSE: suspend / resume. SUSPEND / RESUME: managed
//!   save / start (which restores it).
//! - TERMINATE: destroy and undefine, the disk kept; RESTORE: define and
//!   start again on the same disk. Forgetting a server (a failed spawn, a
//!   reclaim) deletes its domain and files.
//! - Consoles (`novnc`, `xvpvnc`): the running domain's VNC display,
//!   found in its live XML, through the adapter's console proxy
//!   ([`crate::console_proxy`]) with a one-time token. No SPICE or RDP:
//!   the domains have a VNC display only.
//! - RESIZE (cold, on the same node): shut down, grow the root disk
//!   (`qemu-img resize`; disks never shrink) and redefine the domain with
//!   the new memory and vCPUs, start again if it ran. REBUILD: shut down, a
//!   new root disk from the template, start.

pub mod accel;
pub mod domain;

use crate::console_proxy::{ConsoleProxy, ConsoleTarget};
use crate::driver::{BoxFuture, Driver, StepError, StepRequest};
use crate::inventory::{Inventory, LibvirtOptions, NodeBackend, NodeConfig, NodeNetwork, TemplateBoot, TemplateConfig};
use accel::AccelChoice;
use domain::{DomainKind, DomainSpec, NicSource, ServerFiles, domain_name, domain_xml};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vnext_core::events::{BlockDeviceInfo, InterfaceInfo, ServerRuntime};
use vnext_core::hypervisor::{
    Action, BlockDeviceArgs, ConsoleType, NetworkInterfaceArgs, Diagnostics, DiskCounters, HypervisorError, PowerState, RuntimeState, ServerSpec,
};
use virt::connect::Connect;
use virt::domain::Domain;

/// How often a wait for a domain's state looks again.
const POLL: Duration = Duration::from_millis(100);
/// How long a started domain may take to report running.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a guest may take to release a hot-unplugged device.
const DETACH_TIMEOUT: Duration = Duration::from_secs(30);
/// The root disk size when neither the spec nor the template gives one.
const MIN_ROOT_DISK_GB: u64 = 1;
/// Where SNAPSHOT and BACKUP put the templates they make, under `[libvirt] dir`.
const TEMPLATES_DIR: &str = "templates";
/// Where attached volumes live, under `[libvirt] dir`.
const VOLUMES_DIR: &str = "volumes";

/// A server this driver placed: enough to define its domain again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Placed {
    node_id: String,
    hostname: String,
    spec: ServerSpec,
    template_id: String,
    /// When the guest last started (ms since the epoch), for uptime.
    booted_at_ms: Option<i64>,
    /// During a RESIZE or REBUILD: whether the guest ran before it, so the
    /// last step starts it again only then (a stopped server stays
    /// stopped, as with Nova).
    #[serde(default)]
    was_running: Option<bool>,
    /// Terminated: the domain is undefined on purpose (RESTORE defines it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    terminated: bool,
    /// While rescued: the template the domain boots instead of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rescue_template_id: Option<String>,
    /// Shelved: no domain (undefined); `shelved.qcow2` holds the disk.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    shelved: bool,
    /// Offloaded as well: no root disk, no node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    offloaded: bool,
    /// Attached volumes, in attach order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<Volume>,
    /// Network interfaces, in plug order (on the node's network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    nics: Vec<Nic>,
    /// The server has a config drive (`config.iso`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    config_drive: bool,
}

/// A network interface of a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Nic {
    mac: String,
    /// The network the API named when it attached it, if any.
    network_id: Option<String>,
}

/// A locally administered MAC in QEMU's range.
fn new_mac() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// A volume attached to a server: `<dir>/volumes/<volume_id>.qcow2`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Volume {
    volume_id: String,
    /// Target device without `/dev/` (`vdb`, `vdc`, ...).
    device: String,
}

/// One libvirt node.
struct Node {
    config: NodeConfig,
    uri: String,
    /// The open connection; `None` until first used or after it broke.
    conn: Mutex<Option<Connect>>,
    accel: AccelChoice,
    /// Where its guests' NICs plug in; `None`: no NICs.
    network: Option<NodeNetwork>,
}

impl Node {
    fn is_test(&self) -> bool {
        self.uri.starts_with("test:")
    }
}

struct Inner {
    nodes: HashMap<String, Node>,
    templates: Vec<TemplateConfig>,
    dir: PathBuf,
    options: LibvirtOptions,
    servers: Mutex<HashMap<String, Placed>>,
    /// Templates SNAPSHOT and BACKUP added (`<dir>/templates/<id>.json`
    /// beside `<id>.qcow2`), read back at start.
    made: Mutex<Vec<TemplateConfig>>,
    /// Serves the guests' VNC displays; `None`: no consoles.
    console: Option<ConsoleProxy>,
}

/// The libvirt driver for the inventory's `driver = "libvirt"` nodes.
#[derive(Clone)]
pub struct LibvirtDriver {
    inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn aborted(message: impl Into<String>) -> StepError {
    StepError::Aborted(message.into())
}

/// A libvirt error as a message saying what was being done.
fn lv(what: &str) -> impl FnOnce(virt::error::Error) -> String + '_ {
    move |e| format!("{what}: {}", e.message())
}

fn power_state(dom: &Domain) -> Result<PowerState, String> {
    let (state, _) = dom.get_state().map_err(lv("reading the domain state"))?;
    Ok(match power_of_info(state) {
        // Shut off with a managed save image: SUSPENDED, as Nova.
        PowerState::Shutdown if dom.has_managed_save(0).unwrap_or(false) => PowerState::Suspended,
        p => p,
    })
}

fn is_active(dom: &Domain) -> Result<bool, String> {
    dom.is_active().map_err(lv("reading whether the domain runs"))
}

impl LibvirtDriver {
    /// A driver for the inventory's libvirt nodes; server files go under
    /// `dir`. Starts the KVM probe of every `accel = "auto"` node in the
    /// background (see [`accel`]); must be called inside a tokio runtime.
    /// It serves no interactive consoles (see [`Self::with_console_proxy`]).
    pub fn new(inventory: &Inventory, dir: PathBuf) -> LibvirtDriver {
        Self::with_console_proxy(inventory, dir, None)
    }

    /// As [`Self::new`], with the console proxy that serves its guests'
    /// VNC displays (`novnc` and `xvpvnc` consoles).
    pub fn with_console_proxy(inventory: &Inventory, dir: PathBuf, console: Option<ConsoleProxy>) -> LibvirtDriver {
        // Domain XML names files by absolute path: libvirtd has its own cwd.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        // libvirt prints every error to stderr unless told otherwise; ours
        // are reported through the steps.
        virt::error::clear_error_callback();
        let probe_kernel = inventory.templates.iter().find_map(|t| match &t.boot {
            TemplateBoot::Kernel { kernel, .. } => Some(kernel.clone()),
            TemplateBoot::Image { .. } => None,
        });
        let nodes = inventory
            .nodes
            .iter()
            .filter_map(|n| match &n.backend {
                NodeBackend::Libvirt { uri, accel, network } => Some((
                    n.id.clone(),
                    Node {
                        config: n.clone(),
                        uri: uri.clone(),
                        conn: Mutex::new(None),
                        accel: AccelChoice::new(*accel, uri, &n.hostname, probe_kernel.clone(), dir.join("probes")),
                        network: network.clone(),
                    },
                )),
                NodeBackend::Fake => None,
            })
            .collect();
        let driver = LibvirtDriver {
            inner: Arc::new(Inner {
                nodes,
                templates: inventory.templates.clone(),
                made: Mutex::new(load_made_templates(&dir.join(TEMPLATES_DIR))),
                dir,
                options: inventory.libvirt.clone(),
                servers: Mutex::new(HashMap::new()),
                console,
            }),
        };
        for node in driver.inner.nodes.values() {
            node.accel.start_probe();
        }
        if driver.inner.nodes.values().any(|n| !n.is_test()) {
            let mut paths = vec![driver.inner.dir.clone()];
            for t in &driver.inner.templates {
                match &t.boot {
                    TemplateBoot::Kernel { kernel, initrd, disk, .. } => {
                        paths.extend([Some(kernel.clone()), initrd.clone(), disk.clone()].into_iter().flatten())
                    }
                    TemplateBoot::Image { path } => paths.push(path.clone()),
                }
            }
            for p in paths {
                if let Some(blocked) = unreachable_by_others(&p) {
                    eprintln!(
                        "vnext-hypervisor: warning: libvirt's QEMU runs as its own user and cannot reach {} ({} is not \
                         traversable by others): chmod o+x {} or move it ([libvirt] dir, template paths)",
                        p.display(),
                        blocked.display(),
                        blocked.display()
                    );
                }
            }
        }
        driver
    }

    /// The KVM-or-TCG decision of a node (waits for its probe).
    pub async fn accel_of(&self, node_id: &str) -> Option<DomainKind> {
        let node = self.inner.nodes.get(node_id)?;
        Some(if node.is_test() { DomainKind::Test } else { node.accel.decided().await })
    }

    fn node(&self, id: &str) -> Result<&Node, StepError> {
        self.inner.nodes.get(id).ok_or_else(|| aborted(format!("compute node {id} is not a libvirt node of this adapter")))
    }

    fn placed(&self, server_id: &str) -> Option<Placed> {
        self.inner.servers.lock().unwrap().get(server_id).cloned()
    }

    fn files(&self, server_id: &str) -> ServerFiles {
        ServerFiles::new(&self.inner.dir, server_id)
    }

    /// Runs `f` with the node's connection on a blocking thread, under the
    /// call deadline. A connection that fails is dropped, so the next call
    /// opens a new one (libvirtd restarted, for instance).
    async fn with_conn<T: Send + 'static>(
        &self,
        node_id: &str,
        what: &str,
        f: impl FnOnce(&Connect) -> Result<T, String> + Send + 'static,
    ) -> Result<T, StepError> {
        let node = self.node(node_id)?;
        let uri = node.uri.clone();
        let hostname = node.config.hostname.clone();
        let driver = self.clone();
        let node_key = node_id.to_string();
        let deadline = Duration::from_millis(self.inner.options.call_timeout_ms);
        let work = tokio::task::spawn_blocking(move || {
            let node = &driver.inner.nodes[&node_key];
            let conn = {
                let mut slot = node.conn.lock().unwrap();
                match slot.as_ref() {
                    Some(c) if c.is_alive().unwrap_or(false) => c.clone(),
                    _ => {
                        if let Some(mut old) = slot.take() {
                            let _ = old.close();
                        }
                        let c = Connect::open(Some(&uri))
                            .map_err(|e| format!("cannot connect to libvirt at {uri} (node {hostname}): {}", e.message()))?;
                        *slot = Some(c.clone());
                        c
                    }
                }
            };
            let mut conn = conn;
            let result = f(&conn);
            // A call that failed because the daemon went away names the
            // daemon and node, and the next call connects afresh.
            let result = match result {
                Err(e) if !conn.is_alive().unwrap_or(false) => {
                    if let Some(mut dead) = node.conn.lock().unwrap().take() {
                        let _ = dead.close();
                    }
                    Err(format!("lost libvirt at {uri} (node {hostname}): {e}"))
                }
                other => other,
            };
            let _ = conn.close();
            result
        });
        match tokio::time::timeout(deadline, work).await {
            Err(_) => Err(StepError::TimedOut(format!(
                "libvirt on node {} did not answer {what} within {} s",
                node.config.hostname,
                deadline.as_secs()
            ))),
            Ok(Err(join)) => Err(aborted(format!("{what} failed unexpectedly: {join}"))),
            Ok(Ok(result)) => result.map_err(aborted),
        }
    }

    /// Waits (polling) until the domain is inactive, or `limit` passes;
    /// true when it went down.
    async fn wait_inactive(&self, node_id: &str, name: &str, limit: Duration) -> Result<bool, StepError> {
        let started = Instant::now();
        loop {
            let n = name.to_string();
            let active = self
                .with_conn(node_id, "a state check", move |c| {
                    let dom = Domain::lookup_by_name(c, &n).map_err(lv("finding the domain"))?;
                    is_active(&dom)
                })
                .await?;
            if !active {
                return Ok(true);
            }
            if started.elapsed() >= limit {
                return Ok(false);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The server as it is now, for the step's event.
    async fn runtime(&self, node: &Node, server_id: &str) -> Result<ServerRuntime, StepError> {
        let name = domain_name(server_id);
        // Shelved and terminated servers have no domain on purpose.
        let undefined = self.placed(server_id).is_some_and(|p| p.shelved || p.terminated);
        let power = self
            .with_conn(&node.config.id, "a state check", move |c| match Domain::lookup_by_name(c, &name) {
                Ok(dom) => power_state(&dom),
                Err(_) if undefined => Ok(PowerState::Shutdown),
                Err(e) => Err(lv("finding the domain")(e)),
            })
            .await?;
        let mut block_devices = vec![BlockDeviceInfo { device: "/dev/vda".into(), kind: "EPHEMERAL".into() }];
        let mut interfaces = Vec::new();
        if let Some(p) = self.placed(server_id) {
            block_devices.extend(p.volumes.iter().map(|v| BlockDeviceInfo { device: format!("/dev/{}", v.device), kind: "PERSISTENT".into() }));
            let leases = if p.nics.is_empty() || power != PowerState::Running { HashMap::new() } else { self.leases(node, server_id).await };
            interfaces = p
                .nics
                .iter()
                .enumerate()
                .map(|(i, n)| InterfaceInfo {
                    name: format!("eth{i}"),
                    ip4: leases.get(&n.mac).cloned(),
                    ip6: None,
                    mac: n.mac.clone(),
                })
                .collect();
        }
        Ok(ServerRuntime {
            power_state: power,
            compute_node_id: Some(node.config.id.clone()),
            compute_node_hostname: Some(node.config.hostname.clone()),
            placement_id: None,
            interfaces,
            block_devices,
        })
    }

    /// The IPv4 addresses the network's DHCP server leased, by MAC (none
    /// for user-mode networking, or before the guest asked).
    async fn leases(&self, node: &Node, server_id: &str) -> HashMap<String, String> {
        if node.is_test() || !matches!(node.network, Some(NodeNetwork::Libvirt(_))) {
            return HashMap::new();
        }
        let name = domain_name(server_id);
        self.with_conn(&node.config.id, "reading DHCP leases", move |c| {
            let dom = Domain::lookup_by_name(c, &name).map_err(lv("finding the domain"))?;
            let ifaces = dom
                .interface_addresses(virt::sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)
                .map_err(lv("reading leases"))?;
            Ok(ifaces
                .into_iter()
                .filter_map(|i| {
                    let v4 = i.addrs.iter().find(|a| a.typed == virt::sys::VIR_IP_ADDR_TYPE_IPV4 as i64)?;
                    Some((i.hwaddr.to_ascii_lowercase(), v4.addr.clone()))
                })
                .collect())
        })
        .await
        .unwrap_or_default()
    }

    fn template(&self, id: &str) -> Result<TemplateConfig, StepError> {
        let made = self.inner.made.lock().unwrap();
        self.inner.templates.iter().chain(made.iter()).find(|t| t.id == id).cloned().ok_or_else(|| {
            aborted(format!(
                "template {id} is not in this deployment's catalogue (the inventory's [[template]] entries and \
                 the snapshots taken since)"
            ))
        })
    }

    /// The domain XML of a placed server on its node.
    async fn xml_of(&self, node: &Node, server_id: &str, placed: &Placed) -> Result<String, StepError> {
        let template = self.template(placed.rescue_template_id.as_deref().unwrap_or(&placed.template_id))?;
        let kind = if node.is_test() { DomainKind::Test } else { node.accel.decided().await };
        let files = self.files(server_id);
        Ok(domain_xml(&DomainSpec {
            server_id,
            hostname: &placed.hostname,
            kind,
            memory_mb: placed.spec.memory_mb,
            vcpus: placed.spec.cpu_units,
            boot: &template.boot,
            files: &files,
            rescue: placed.rescue_template_id.is_some(),
            volumes: &placed.volumes.iter().map(|v| (self.volume_path(&v.volume_id), v.device.clone())).collect::<Vec<_>>(),
            agent: true,
            // NICs plug into the network of the node the domain is on.
            nics: &match nic_source(node) {
                Some(source) => placed.nics.iter().map(|n| (n.mac.clone(), source.clone())).collect::<Vec<_>>(),
                None => Vec::new(),
            },
            config_drive: placed.config_drive,
            spice: node.config.console_types.contains(&ConsoleType::Spice),
            swap: placed.spec.swap_mb > 0 && !node.is_test(),
        }))
    }

    /// The swap disk of `swap_mb` (none for 0), made again when its size
    /// changes (a RESIZE to a type with other swap: swap holds nothing
    /// worth keeping across a shutdown).
    async fn make_swap_disk(&self, node: &Node, server_id: &str, swap_mb: u64) -> Result<(), StepError> {
        if node.is_test() {
            return Ok(());
        }
        let disk = self.files(server_id).swap_disk();
        let _ = std::fs::remove_file(&disk);
        if swap_mb == 0 {
            return Ok(());
        }
        let size = format!("{swap_mb}M");
        self.qemu_img(&["create".as_ref(), "-q".as_ref(), "-f".as_ref(), "qcow2".as_ref(), disk.as_os_str(), size.as_ref()], "creating the swap disk").await
    }

    /// BLOCK_DEVICE_MAPPING of a spawn: the config drive, as Nova's (ISO
    /// 9660, label `config-2`, `openstack/latest/meta_data.json` with the
    /// server's id and hostname, and `user_data` decoded). Returns whether
    /// the server has one (not on the test driver, which has no files).
    async fn make_config_drive(&self, node: &Node, server_id: &str, hostname: &str, user_data: Option<&str>) -> Result<bool, StepError> {
        if node.is_test() {
            return Ok(false);
        }
        let files = self.files(server_id);
        let iso = files.config_drive();
        if iso.exists() {
            return Ok(true); // a step run again
        }
        let staging = files.dir.join("config-drive");
        let latest = staging.join("openstack").join("latest");
        let io = |e: std::io::Error| aborted(format!("cannot write the config drive's files in {}: {e}", staging.display()));
        std::fs::create_dir_all(&latest).map_err(io)?;
        let meta = serde_json::json!({ "uuid": server_id, "hostname": hostname, "name": hostname, "launch_index": 0 });
        std::fs::write(latest.join("meta_data.json"), meta.to_string()).map_err(io)?;
        if let Some(text) = user_data {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| aborted(format!("user_data is not base64 ({e})")))?;
            std::fs::write(latest.join("user_data"), bytes).map_err(io)?;
        }
        let part = part_of(&iso);
        let deadline = Duration::from_millis(self.inner.options.call_timeout_ms);
        let out = tokio::time::timeout(
            deadline,
            tokio::process::Command::new("genisoimage")
                .args(["-quiet", "-r", "-J", "-V", "config-2", "-o"])
                .arg(&part)
                .arg(&staging)
                .output(),
        )
        .await
        .map_err(|_| StepError::TimedOut(format!("genisoimage did not make the config drive within {} s", deadline.as_secs())))?
        .map_err(|e| aborted(format!("cannot run genisoimage for the config drive (apt install genisoimage): {e}")))?;
        let _ = std::fs::remove_dir_all(&staging);
        if !out.status.success() {
            return Err(aborted(format!("genisoimage could not make the config drive: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        std::fs::rename(&part, &iso).map_err(|e| aborted(format!("cannot complete {}: {e}", iso.display())))?;
        Ok(true)
    }

    /// ATTACH_NETWORK_INTERFACE: a virtio NIC on the node's network, with
    /// the MAC asked for or a new one, hot-plugged and kept in the
    /// definition.
    async fn attach_nic(&self, node: &Node, server_id: &str, placed: &Placed, args: &NetworkInterfaceArgs) -> Result<(), StepError> {
        let source = nic_source(node).ok_or_else(|| {
            aborted(format!("compute node {} has no network for interfaces (libvirt_network in the inventory)", node.config.hostname))
        })?;
        let mac = args.mac.clone().map(|m| m.to_ascii_lowercase()).unwrap_or_else(new_mac);
        if placed.nics.iter().any(|n| n.mac == mac) {
            return Ok(()); // attached already (a step run again)
        }
        if self.inner.servers.lock().unwrap().values().any(|p| p.nics.iter().any(|n| n.mac == mac)) {
            return Err(aborted(format!("MAC {mac} is in use by another server's interface")));
        }
        self.plug(node, server_id, Plug::Attach, domain::nic_xml(&mac, &source)).await?;
        let mut changed = placed.clone();
        changed.nics.push(Nic { mac, network_id: args.network_id.clone() });
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), changed);
        Ok(())
    }

    /// Hot-plugs or unplugs a device (`<disk>`, `<interface>`) in the
    /// definition and, while the guest runs, in the guest.
    async fn plug(&self, node: &Node, server_id: &str, plug: Plug, device_xml: String) -> Result<(), StepError> {
        let test = node.is_test();
        let what = match plug {
            Plug::Attach => "attaching a device",
            Plug::Detach => "detaching a device",
        };
        self.on_domain(node, server_id, what, move |d| {
            let flags = device_flags(d, test)?;
            match plug {
                Plug::Attach => d.attach_device_flags(&device_xml, flags).map_err(lv("attach")),
                Plug::Detach => d.detach_device_flags(&device_xml, flags).map_err(lv("detach")),
            }
            .map(|_| ())
        })
        .await
    }

    /// Waits until the running guest has released a hot-unplugged device
    /// (QEMU removes it once the guest acknowledges the unplug), as Nova
    /// waits; `needle` is what names the device in the live XML.
    async fn wait_device_gone(&self, node: &Node, server_id: &str, needle: String) -> Result<(), StepError> {
        let started = Instant::now();
        loop {
            let name = domain_name(server_id);
            let n = needle.clone();
            let present = self
                .with_conn(&node.config.id, "checking the unplug", move |c| {
                    let dom = Domain::lookup_by_name(c, &name).map_err(lv("finding the domain"))?;
                    Ok(is_active(&dom)? && dom.get_xml_desc(0).map_err(lv("reading the domain XML"))?.contains(&n))
                })
                .await?;
            if !present {
                return Ok(());
            }
            if started.elapsed() > DETACH_TIMEOUT {
                return Err(StepError::TimedOut(format!(
                    "the guest did not release the device within {} s (it must acknowledge the unplug); \
                     it is removed from the definition and goes at the next restart",
                    DETACH_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// DETACH_NETWORK_INTERFACE: the NIC with the MAC given, else the first
    /// on the network given.
    async fn detach_nic(&self, node: &Node, server_id: &str, placed: &Placed, args: &NetworkInterfaceArgs) -> Result<(), StepError> {
        let mac = args.mac.as_ref().map(|m| m.to_ascii_lowercase());
        let Some(nic) = placed
            .nics
            .iter()
            .find(|n| match (&mac, &args.network_id) {
                (Some(mac), _) => &n.mac == mac,
                (None, Some(net)) => n.network_id.as_ref() == Some(net),
                (None, None) => false,
            })
            .cloned()
        else {
            return Err(aborted("the server has no such interface (match by mac, or by the network_id it was attached with)"));
        };
        if let Some(source) = nic_source(node) {
            self.plug(node, server_id, Plug::Detach, domain::nic_xml(&nic.mac, &source)).await?;
        }
        // Out of the definition already: recorded gone whatever the guest does.
        let mut changed = placed.clone();
        changed.nics.retain(|n| n.mac != nic.mac);
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), changed);
        if nic_source(node).is_some() {
            self.wait_device_gone(node, server_id, nic.mac.clone()).await?;
        }
        Ok(())
    }

    fn volume_path(&self, volume_id: &str) -> PathBuf {
        self.inner.dir.join(VOLUMES_DIR).join(format!("{volume_id}.qcow2"))
    }

    /// ATTACH_BLOCK_DEVICE: the volume (created empty on first use: the
    /// deployment has no volume service) hot-plugged as a virtio disk on
    /// the device asked for or the first free one, and kept in the
    /// domain's definition.
    async fn attach_volume(&self, node: &Node, server_id: &str, placed: &Placed, args: &BlockDeviceArgs) -> Result<(), StepError> {
        if placed.volumes.iter().any(|v| v.volume_id == args.volume_id) {
            return Ok(()); // attached already (a step run again)
        }
        if let Some(other) = self.inner.servers.lock().unwrap().iter().find(|(id, p)| *id != server_id && p.volumes.iter().any(|v| v.volume_id == args.volume_id)) {
            return Err(aborted(format!("volume {} is attached to server {} already; detach it there first", args.volume_id, other.0)));
        }
        let taken: Vec<&str> = placed.volumes.iter().map(|v| v.device.as_str()).collect();
        let device = match args.device.as_deref().map(|d| d.trim_start_matches("/dev/")) {
            Some(d) if !(d.len() == 3 && d.starts_with("vd") && (b'b'..=b'x').contains(&d.as_bytes()[2])) => {
                return Err(aborted(format!(
                    "device {d:?} cannot be used: give vdb to vdx (vda is the root disk, vdy swap, vdz the config drive)"
                )));
            }
            Some(d) if taken.contains(&d) => return Err(aborted(format!("device {d} is in use by another volume"))),
            Some(d) => d.to_string(),
            None => (b'b'..=b'x').map(|c| format!("vd{}", c as char)).find(|d| !taken.contains(&d.as_str()))
                .ok_or_else(|| aborted("the server has no free virtio device left (vdb to vdx)"))?,
        };
        let file = self.volume_path(&args.volume_id);
        if !node.is_test() && !file.exists() {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| aborted(format!("cannot create {}: {e}", dir.display())))?;
            }
            self.qemu_img(&["create".as_ref(), "-q".as_ref(), "-f".as_ref(), "qcow2".as_ref(), file.as_os_str(), "1G".as_ref()], "creating the volume").await?;
        }
        self.plug(node, server_id, Plug::Attach, domain::serial_disk_xml(&file, &device, Some(&args.volume_id))).await?;
        let mut changed = placed.clone();
        changed.volumes.push(Volume { volume_id: args.volume_id.clone(), device });
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), changed);
        Ok(())
    }

    /// DETACH_BLOCK_DEVICE: unplugged from the guest and its definition;
    /// the volume's file stays for a later attach.
    async fn detach_volume(&self, node: &Node, server_id: &str, placed: &Placed, args: &BlockDeviceArgs) -> Result<(), StepError> {
        let Some(volume) = placed.volumes.iter().find(|v| v.volume_id == args.volume_id).cloned() else {
            return Err(aborted(format!("volume {} is not attached to this server", args.volume_id)));
        };
        self.plug(node, server_id, Plug::Detach, domain::serial_disk_xml(&self.volume_path(&volume.volume_id), &volume.device, Some(&volume.volume_id))).await?;
        // Out of the definition already: recorded gone whatever the guest does.
        let mut changed = placed.clone();
        changed.volumes.retain(|v| v.volume_id != volume.volume_id);
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), changed);
        self.wait_device_gone(node, server_id, format!("{}.qcow2", volume.volume_id)).await
    }

    /// BLOCK_DEVICE_MAPPING of a spawn: the root disk.
    async fn make_root_disk(&self, node: &Node, server_id: &str, placed: &Placed) -> Result<(), StepError> {
        if node.is_test() {
            return Ok(()); // the test driver has no disks
        }
        let template = self.template(&placed.template_id)?;
        let files = self.files(server_id);
        std::fs::create_dir_all(&files.dir)
            .map_err(|e| aborted(format!("cannot create {}: {e}", files.dir.display())))?;
        let size_gb = placed.spec.root_disk_gb.max(template.min_disk_gb).max(MIN_ROOT_DISK_GB);
        let disk = files.root_disk();
        if disk.exists() {
            return Ok(()); // a step run again after a restart
        }
        let mut cmd = tokio::process::Command::new("qemu-img");
        cmd.args(["create", "-q", "-f", "qcow2"]);
        if let Some(path) = template.disk() {
            cmd.arg("-b").arg(path).args(["-F", image_format(path)]);
        }
        cmd.arg(&disk).arg(format!("{size_gb}G"));
        let deadline = Duration::from_millis(self.inner.options.call_timeout_ms);
        let out = tokio::time::timeout(deadline, cmd.output())
            .await
            .map_err(|_| StepError::TimedOut(format!("qemu-img did not create the root disk within {} s", deadline.as_secs())))?
            .map_err(|e| aborted(format!("cannot run qemu-img (install qemu-utils): {e}")))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&disk);
            return Err(aborted(format!("qemu-img could not create the root disk: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(())
    }

    /// Defines the domain unless it is (a spawn or restore run again after
    /// a restart finds it defined), then starts it.
    async fn define_and_start(&self, node: &Node, server_id: &str, placed: &Placed) -> Result<(), StepError> {
        let xml = self.xml_of(node, server_id, placed).await?;
        let name = domain_name(server_id);
        self.with_conn(&node.config.id, "defining the domain", move |c| {
            if Domain::lookup_by_name(c, &name).is_err() {
                Domain::define_xml(c, &xml).map_err(lv("defining the domain"))?;
            }
            Ok(())
        })
        .await?;
        self.start(node, server_id).await
    }

    /// Starts the domain unless it runs, and waits until it does. A domain
    /// that went missing (undefined behind the adapter's back, a node
    /// rebuilt) is defined again from the server's record first.
    async fn start(&self, node: &Node, server_id: &str) -> Result<(), StepError> {
        if let Some(placed) = self.placed(server_id) {
            let xml = self.xml_of(node, server_id, &placed).await?;
            let name = domain_name(server_id);
            self.with_conn(&node.config.id, "defining the domain", move |c| {
                if Domain::lookup_by_name(c, &name).is_err() {
                    eprintln!("vnext-hypervisor: domain {name} was missing; defining it again from the server's record");
                    Domain::define_xml(c, &xml).map_err(lv("defining the domain"))?;
                }
                Ok(())
            })
            .await?;
        }
        self.on_domain(node, server_id, "starting the domain", |d| {
            if !is_active(d)? {
                d.create().map_err(lv("create"))?;
            }
            Ok(())
        })
        .await?;
        self.wait_running(node, server_id).await?;
        self.set_booted(server_id);
        Ok(())
    }

    async fn wait_running(&self, node: &Node, server_id: &str) -> Result<(), StepError> {
        let started = Instant::now();
        loop {
            if self.runtime(node, server_id).await?.power_state == PowerState::Running {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(StepError::TimedOut(format!("the domain did not run within {} s of its start", START_TIMEOUT.as_secs())));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn set_booted(&self, server_id: &str) {
        if let Some(p) = self.inner.servers.lock().unwrap().get_mut(server_id) {
            p.booted_at_ms = Some(now_ms());
        }
    }

    /// Runs `f` on the server's domain.
    async fn on_domain(
        &self,
        node: &Node,
        server_id: &str,
        what: &'static str,
        f: impl FnOnce(&Domain) -> Result<(), String> + Send + 'static,
    ) -> Result<(), StepError> {
        let name = domain_name(server_id);
        self.with_conn(&node.config.id, what, move |c| {
            let dom = Domain::lookup_by_name(c, &name).map_err(lv("finding the domain"))?;
            f(&dom).map_err(|e| format!("{what}: {e}"))
        })
        .await
    }

    /// ACPI shutdown, then destroy once `shutdown_timeout_ms` has passed;
    /// true when the guest went down by itself.
    async fn shut_down(&self, node: &Node, server_id: &str) -> Result<bool, StepError> {
        let name = domain_name(server_id);
        let running = self
            .with_conn(&node.config.id, "an ACPI shutdown", move |c| {
                let dom = Domain::lookup_by_name(c, &name).map_err(lv("finding the domain"))?;
                if !is_active(&dom)? {
                    return Ok(false);
                }
                dom.shutdown().map_err(lv("the ACPI shutdown"))?;
                Ok(true)
            })
            .await?;
        if !running {
            return Ok(true);
        }
        let limit = Duration::from_millis(self.inner.options.shutdown_timeout_ms);
        if self.wait_inactive(&node.config.id, &domain_name(server_id), limit).await? {
            return Ok(true);
        }
        self.on_domain(node, server_id, "destroying the domain", |d| {
            if is_active(d)? { d.destroy().map_err(lv("destroy")) } else { Ok(()) }
        })
        .await?;
        Ok(false)
    }

    async fn run(&self, step: StepRequest<'_>) -> Result<Option<ServerRuntime>, StepError> {
        let op = step.op;
        let server_id = op.server_id.as_str();
        if let Action::Spawn(args) = &op.action {
            let node = self.node(&step.node.ok_or_else(|| aborted("a spawn step without a compute node"))?.id)?;
            let template_id = args
                .template_id
                .clone()
                .ok_or_else(|| aborted("servers on libvirt nodes need a template_id (one of the catalogue's templates)"))?;
            let template = self.template(&template_id)?;
            if args.spec.memory_mb < template.min_memory_mb {
                return Err(aborted(format!(
                    "template {} needs at least {} MB of memory; the server type gives {} MB",
                    template.name, template.min_memory_mb, args.spec.memory_mb
                )));
            }
            // Earlier steps of this spawn (or of a run before a restart)
            // may have planned its devices already: keep them.
            let mut placed = self.placed(server_id).filter(|p| p.node_id == node.config.id).unwrap_or(Placed {
                node_id: node.config.id.clone(),
                hostname: args.hostname.clone(),
                spec: args.spec,
                template_id,
                booted_at_ms: None,
                was_running: None,
                terminated: false,
                rescue_template_id: None,
                shelved: false,
                offloaded: false,
                volumes: Vec::new(),
                nics: Vec::new(),
                config_drive: false,
            });
            match step.step {
                "BLOCK_DEVICE_MAPPING" => {
                    self.make_root_disk(node, server_id, &placed).await?;
                    if !self.files(server_id).swap_disk().exists() {
                        self.make_swap_disk(node, server_id, placed.spec.swap_mb).await?;
                    }
                    placed.config_drive = self.make_config_drive(node, server_id, &args.hostname, args.user_data.as_deref()).await?;
                }
                // One interface on the node's network, if it has one.
                "NETWORKING" if node.network.is_some() && placed.nics.is_empty() => {
                    placed.nics.push(Nic { mac: new_mac(), network_id: None });
                }
                _ => {}
            }
            self.inner.servers.lock().unwrap().insert(server_id.to_string(), placed.clone());
            return match step.step {
                "SPAWNING" => {
                    self.define_and_start(node, server_id, &placed).await?;
                    Ok(Some(self.runtime(node, server_id).await?))
                }
                _ => Ok(None),
            };
        }
        let placed = self
            .placed(server_id)
            .ok_or_else(|| aborted(format!("server {server_id} is not on a libvirt node of this adapter")))?;
        let node = self.node(step.node.map(|n| n.id.as_str()).unwrap_or(&placed.node_id))?;
        match &op.action {
            Action::Reboot => {
                // A guest that ignored the ACPI button was destroyed after
                // the timeout, so starting it again is the hard reboot Nova
                // falls back to.
                self.shut_down(node, server_id).await?;
                self.start(node, server_id).await?;
            }
            Action::HardReboot => {
                self.on_domain(node, server_id, "a hard reboot", |d| {
                    if is_active(d)? { d.destroy().map_err(lv("destroy")) } else { Ok(()) }
                })
                .await?;
                self.start(node, server_id).await?;
            }
            Action::PowerOff => {
                self.shut_down(node, server_id).await?;
            }
            Action::PowerOn | Action::Resume => self.start(node, server_id).await?,
            Action::Pause => self.on_domain(node, server_id, "pausing", |d| d.suspend().map(|_| ()).map_err(lv("suspend"))).await?,
            Action::Unpause => self.on_domain(node, server_id, "unpausing", |d| d.resume().map(|_| ()).map_err(lv("resume"))).await?,
            Action::Suspend => {
                self.on_domain(node, server_id, "saving the domain", |d| d.managed_save(0).map(|_| ()).map_err(lv("managed save")))
                    .await?
            }
            Action::Terminate => {
                self.on_domain(node, server_id, "terminating", |d| {
                    if is_active(d)? {
                        d.destroy().map_err(lv("destroy"))?;
                    }
                    d.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE).map_err(lv("undefine"))
                })
                .await?;
                if let Some(p) = self.inner.servers.lock().unwrap().get_mut(server_id) {
                    p.terminated = true;
                }
                return Ok(Some(off_node()));
            }
            Action::Restore => {
                let mut placed = placed.clone();
                placed.node_id = node.config.id.clone();
                placed.terminated = false;
                self.inner.servers.lock().unwrap().insert(server_id.to_string(), placed.clone());
                self.define_and_start(node, server_id, &placed).await?;
            }
            // Cold, as Nova's resize on one host: stop, grow the disk and
            // give the domain its new size, start again if it ran.
            Action::Resize(new_spec) => match step.step_index {
                0 => self.stop_for_change(node, server_id).await?,
                1 => {
                    let mut changed = placed.clone();
                    changed.spec = *new_spec;
                    self.grow_root_disk(node, server_id, &placed, new_spec.root_disk_gb).await?;
                    if new_spec.swap_mb != placed.spec.swap_mb {
                        self.make_swap_disk(node, server_id, new_spec.swap_mb).await?;
                    }
                    self.redefine(node, server_id, &changed).await?;
                    self.inner.servers.lock().unwrap().insert(server_id.to_string(), changed);
                }
                _ => self.restart_if_it_ran(node, server_id).await?,
            },
            // A new root disk from the (new) template, the same domain.
            Action::Rebuild(template_id) => match step.step_index {
                0 => {
                    self.template(template_id)?;
                    self.stop_for_change(node, server_id).await?;
                }
                1 => {
                    let mut rebuilt = placed.clone();
                    rebuilt.template_id = template_id.clone();
                    let disk = self.files(server_id).root_disk();
                    if disk.exists() {
                        std::fs::remove_file(&disk).map_err(|e| aborted(format!("cannot remove the old root disk: {e}")))?;
                    }
                    self.make_root_disk(node, server_id, &rebuilt).await?;
                    self.redefine(node, server_id, &rebuilt).await?;
                    self.inner.servers.lock().unwrap().insert(server_id.to_string(), rebuilt);
                }
                _ => {
                    // A rebuilt server boots, whatever its state before (Nova).
                    self.start(node, server_id).await?;
                    self.take_was_running(server_id);
                }
            },
            // The task's id names the new template, so the user who asked
            // for it knows what to launch from (templates are not an API
            // resource). BACKUP is the same copy (no rotation here).
            Action::Snapshot(name) | Action::Backup(name) => match step.step_index {
                0 => self.copy_root_disk(node, server_id, &self.templates_dir().join(format!("{}.qcow2.part", op.task_id))).await?,
                _ => self.register_snapshot(node, &placed, &op.task_id, name)?,
            },
            Action::Rescue(template_id) => self.rescue(node, server_id, &placed, template_id.as_deref()).await?,
            Action::Unrescue => self.unrescue(node, server_id, &placed).await?,
            // As Nova (shelved_offload_time 0): stopped, its disk flattened
            // aside, and the domain undefined; the node still holds its
            // resources until SHELVE_OFFLOAD.
            Action::Shelve => match step.step_index {
                0 => {
                    self.shut_down(node, server_id).await?;
                }
                1 => self.copy_root_disk(node, server_id, &part_of(&self.files(server_id).shelved_disk())).await?,
                _ => {
                    finish_part(&self.files(server_id).shelved_disk(), node.is_test())?;
                    self.undefine(node, server_id).await?;
                    if let Some(p) = self.inner.servers.lock().unwrap().get_mut(server_id) {
                        p.shelved = true;
                    }
                    return Ok(Some(ServerRuntime { power_state: PowerState::Shutdown, ..self.on_node(node) }));
                }
            },
            Action::ShelveOffload => {
                self.undefine(node, server_id).await?;
                let root = self.files(server_id).root_disk();
                if root.exists() && (node.is_test() || self.files(server_id).shelved_disk().exists()) {
                    std::fs::remove_file(&root).map_err(|e| aborted(format!("cannot remove the root disk: {e}")))?;
                }
                if let Some(p) = self.inner.servers.lock().unwrap().get_mut(server_id) {
                    p.offloaded = true;
                }
                return Ok(Some(off_node()));
            }
            Action::Unshelve => self.unshelve(node, server_id, &placed).await?,
            Action::Move(args) => {
                self.move_step(step, node, server_id, &placed, args.live).await?;
                // Until MIGRATING, the domain is on the source node.
                let on = if step.step_index == 0 { self.node(&placed.node_id)? } else { node };
                return Ok(Some(self.runtime(on, server_id).await?));
            }
            Action::AttachBlockDevice(args) => self.attach_volume(node, server_id, &placed, args).await?,
            Action::AttachNetworkInterface(args) => self.attach_nic(node, server_id, &placed, args).await?,
            Action::DetachNetworkInterface(args) => self.detach_nic(node, server_id, &placed, args).await?,
            Action::DetachBlockDevice(args) => self.detach_volume(node, server_id, &placed, args).await?,
            // Through qemu-guest-agent (the domain has its channel); a guest
            // without the agent does not answer and the task aborts saying so.
            Action::UpdatePassword(password) => {
                let password = password.clone();
                self.on_domain(node, server_id, "setting the password", move |d| {
                    d.set_user_password("root", &password, 0).map(|_| ()).map_err(|e| {
                        format!(
                            "UPDATE_PASSWORD goes through qemu-guest-agent in the guest, which did not do it ({}); \
                             the server's template needs the agent installed and running",
                            e.message()
                        )
                    })
                })
                .await?;
            }
            other => {
                return Err(aborted(format!(
                    "{} is not available on libvirt nodes yet (node {}); the fake driver's nodes offer it",
                    crate::driver::action_kind(other),
                    node.config.hostname
                )));
            }
        }
        Ok(Some(self.runtime(node, server_id).await?))
    }

    /// Compares the node's inventory capacity with what its host reports
    /// (`virNodeGetInfo`, free space under `[libvirt] dir`) and logs where
    /// the inventory promises more than there is. CPU units may be
    /// overcommitted on purpose, so only memory and disk are checked.
    async fn check_capacity(&self, node: &Node) {
        let host = node.config.hostname.clone();
        let info = self.with_conn(&node.config.id, "reading the node's info", |c| c.get_node_info().map_err(lv("node info"))).await;
        match info {
            Ok(info) => {
                let memory_mb = info.memory / 1024;
                if node.config.capacity.memory_mb > memory_mb {
                    eprintln!(
                        "vnext-hypervisor: warning: the inventory gives node {host} {} MB of memory but its host reports {memory_mb} MB \
                         ({} CPUs): guests may not fit; lower memory_mb",
                        node.config.capacity.memory_mb, info.cpus
                    );
                }
            }
            Err(e) => eprintln!("vnext-hypervisor: cannot check node {host}'s capacity at start: {}", e.message()),
        }
        if let Some(free_gb) = free_disk_gb(&self.inner.dir)
            && node.config.capacity.disk_gb > free_gb
        {
            eprintln!(
                "vnext-hypervisor: warning: the inventory gives node {host} {} GB of disk but {} has {free_gb} GB free",
                node.config.capacity.disk_gb,
                self.inner.dir.display()
            );
        }
    }

    /// The server on `node`, as a step reports it when it has no domain.
    fn on_node(&self, node: &Node) -> ServerRuntime {
        ServerRuntime {
            compute_node_id: Some(node.config.id.clone()),
            compute_node_hostname: Some(node.config.hostname.clone()),
            ..off_node()
        }
    }

    /// Destroys (if it runs) and undefines the domain, if there is one.
    async fn undefine(&self, node: &Node, server_id: &str) -> Result<(), StepError> {
        let name = domain_name(server_id);
        self.with_conn(&node.config.id, "undefining the domain", move |c| {
            let Ok(dom) = Domain::lookup_by_name(c, &name) else { return Ok(()) };
            if is_active(&dom)? {
                dom.destroy().map_err(lv("destroy"))?;
            }
            dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE).map(|_| ()).map_err(lv("undefine"))
        })
        .await
    }

    fn templates_dir(&self) -> PathBuf {
        self.inner.dir.join(TEMPLATES_DIR)
    }

    /// Runs `qemu-img` under the call deadline; the error names `what`.
    async fn qemu_img(&self, args: &[&std::ffi::OsStr], what: &str) -> Result<(), StepError> {
        let deadline = Duration::from_millis(self.inner.options.call_timeout_ms);
        let out = tokio::time::timeout(deadline, tokio::process::Command::new("qemu-img").args(args).output())
            .await
            .map_err(|_| StepError::TimedOut(format!("qemu-img did not finish {what} within {} s", deadline.as_secs())))?
            .map_err(|e| aborted(format!("cannot run qemu-img (install qemu-utils): {e}")))?;
        if !out.status.success() {
            return Err(aborted(format!("qemu-img failed {what}: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(())
    }

    /// Copies the server's root disk, flattened (no backing file), to
    /// `to`. A running guest is paused during the copy so the copy is one
    /// moment of its disk (as Nova's snapshot without a guest agent to
    /// freeze file systems), then resumed.
    async fn copy_root_disk(&self, node: &Node, server_id: &str, to: &Path) -> Result<(), StepError> {
        if node.is_test() || finished(to).exists() {
            return Ok(()); // no disks on the test driver; or a step run again
        }
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| aborted(format!("cannot create {}: {e}", dir.display())))?;
        }
        let name = domain_name(server_id);
        let paused = self
            .with_conn(&node.config.id, "pausing for the copy", move |c| {
                let dom = Domain::lookup_by_name(c, &name).map_err(lv("finding the domain"))?;
                let (state, _) = dom.get_state().map_err(lv("reading the domain state"))?;
                if state == virt::sys::VIR_DOMAIN_RUNNING {
                    dom.suspend().map_err(lv("suspend"))?;
                    return Ok(true);
                }
                Ok(false)
            })
            .await?;
        let root = self.files(server_id).root_disk();
        // -U: QEMU holds the image's lock while the domain exists.
        let copied = self
            .qemu_img(&["convert".as_ref(), "-U".as_ref(), "-q".as_ref(), "-O".as_ref(), "qcow2".as_ref(), root.as_os_str(), to.as_os_str()], "copying the root disk")
            .await;
        if paused {
            self.on_domain(node, server_id, "resuming after the copy", |d| d.resume().map(|_| ()).map_err(lv("resume"))).await?;
        }
        if copied.is_err() {
            let _ = std::fs::remove_file(to);
        }
        copied
    }

    /// UPLOADING of SNAPSHOT and BACKUP: the copy becomes template
    /// `template_id` of the catalogue, booting as the server's template
    /// does, from the copied disk.
    fn register_snapshot(&self, node: &Node, placed: &Placed, template_id: &str, name: &str) -> Result<(), StepError> {
        if self.inner.made.lock().unwrap().iter().any(|t| t.id == template_id) {
            return Ok(()); // a step run again
        }
        let source = self.template(&placed.template_id)?;
        let image = self.templates_dir().join(format!("{template_id}.qcow2"));
        finish_part(&image, node.is_test())?;
        let disk = (!node.is_test()).then(|| image.clone());
        let boot = match source.boot {
            TemplateBoot::Kernel { kernel, initrd, cmdline, disk: old } => TemplateBoot::Kernel { kernel, initrd, cmdline, disk: disk.or(old) },
            TemplateBoot::Image { path } => TemplateBoot::Image { path: disk.unwrap_or(path) },
        };
        let template = TemplateConfig {
            id: template_id.to_string(),
            name: name.to_string(),
            boot,
            min_memory_mb: source.min_memory_mb,
            min_disk_gb: placed.spec.root_disk_gb.max(source.min_disk_gb),
            rescue_template_id: source.rescue_template_id,
        };
        let dir = self.templates_dir();
        std::fs::create_dir_all(&dir).map_err(|e| aborted(format!("cannot create {}: {e}", dir.display())))?;
        let json = serde_json::to_vec_pretty(&template).expect("templates serialize");
        let record = dir.join(format!("{template_id}.json"));
        std::fs::write(part_of(&record), json)
            .and_then(|_| std::fs::rename(part_of(&record), &record))
            .map_err(|e| aborted(format!("cannot record the template in {}: {e}", record.display())))?;
        self.inner.made.lock().unwrap().push(template);
        Ok(())
    }

    /// RESCUE: the domain boots the rescue template (the argument, else
    /// the server template's rescue template, else the server's own) from
    /// a fresh overlay, with the server's root disk attached second.
    async fn rescue(&self, node: &Node, server_id: &str, placed: &Placed, asked: Option<&str>) -> Result<(), StepError> {
        let own = self.template(&placed.template_id)?;
        let rescue_id = asked.map(str::to_owned).or(own.rescue_template_id.clone()).unwrap_or(own.id.clone());
        let rescue = self.template(&rescue_id)?;
        self.shut_down(node, server_id).await?;
        let disk = self.files(server_id).rescue_disk();
        if !node.is_test() {
            let _ = std::fs::remove_file(&disk);
            let size = format!("{}G", rescue.min_disk_gb.max(MIN_ROOT_DISK_GB));
            let mut args: Vec<std::ffi::OsString> = vec!["create".into(), "-q".into(), "-f".into(), "qcow2".into()];
            if let Some(base) = rescue.disk() {
                args.extend(["-b".into(), base.as_os_str().to_owned(), "-F".into(), image_format(base).into()]);
            }
            args.extend([disk.as_os_str().to_owned(), size.into()]);
            let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            self.qemu_img(&refs, "creating the rescue disk").await?;
        }
        let mut rescued = placed.clone();
        rescued.rescue_template_id = Some(rescue.id);
        self.redefine(node, server_id, &rescued).await?;
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), rescued);
        self.start(node, server_id).await
    }

    /// UNRESCUE: the rescue guest is stopped (no need to be gentle with
    /// it, as Nova), the server's own definition is back, and it boots.
    async fn unrescue(&self, node: &Node, server_id: &str, placed: &Placed) -> Result<(), StepError> {
        self.on_domain(node, server_id, "stopping the rescue guest", |d| {
            if is_active(d)? { d.destroy().map_err(lv("destroy")) } else { Ok(()) }
        })
        .await?;
        let mut back = placed.clone();
        back.rescue_template_id = None;
        self.redefine(node, server_id, &back).await?;
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), back);
        let _ = std::fs::remove_file(self.files(server_id).rescue_disk());
        self.start(node, server_id).await
    }

    /// UNSHELVE: an offloaded server's flattened disk becomes its root
    /// disk again on the node the adapter chose, defined and started; a
    /// server still on its node just starts.
    async fn unshelve(&self, node: &Node, server_id: &str, placed: &Placed) -> Result<(), StepError> {
        let files = self.files(server_id);
        let mut back = placed.clone();
        if placed.offloaded && !node.is_test() {
            let shelved = files.shelved_disk();
            if shelved.exists() {
                std::fs::rename(&shelved, files.root_disk())
                    .map_err(|e| aborted(format!("cannot restore the shelved disk: {e}")))?;
            } else if !files.root_disk().exists() {
                return Err(aborted(format!("the shelved disk of server {server_id} is gone ({})", shelved.display())));
            }
        } else {
            let _ = std::fs::remove_file(files.shelved_disk());
        }
        back.node_id = node.config.id.clone();
        back.offloaded = false;
        back.shelved = false;
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), back.clone());
        self.define_and_start(node, server_id, &back).await
    }

    /// MOVE, cold (Nova's cold migration): PREPARING stops the guest on
    /// its node, MIGRATING defines it on the target node's daemon and
    /// undefines it on the source (the disks stay where they are: nodes
    /// of one adapter share `[libvirt] dir`, on shared storage across
    /// machines), FINALIZING starts it there if it ran. A live MOVE
    /// migrates the running guest between the two daemons in MIGRATING;
    /// when libvirt refuses, the task aborts naming the cold MOVE.
    async fn move_step(&self, step: StepRequest<'_>, target: &Node, server_id: &str, placed: &Placed, live: bool) -> Result<(), StepError> {
        let source = self.node(&placed.node_id)?;
        if live {
            // Refused in PREPARING, where nothing has changed yet.
            return match step.step_index {
                0 => self.check_live_migration(source, target),
                1 => self.live_migrate(source, target, server_id, placed).await,
                _ => Ok(()),
            };
        }
        match step.step_index {
            0 => {
                // Checked before anything stops: NICs follow the target's network.
                if !placed.nics.is_empty() && target.network.is_none() {
                    return Err(aborted(format!(
                        "the server has {} network interface(s) and compute node {} has no network for them (libvirt_network)",
                        placed.nics.len(),
                        target.config.hostname
                    )));
                }
                self.stop_for_change(source, server_id).await
            }
            1 => {
                let mut moved = placed.clone();
                moved.node_id = target.config.id.clone();
                let xml = self.xml_of(target, server_id, &moved).await?;
                let name = domain_name(server_id);
                // Two URIs may reach one daemon (root's qemu:///session is
                // the system daemon): a domain the target already sees is
                // only defined again there, never undefined.
                let n = name.clone();
                let moved_over = self
                    .with_conn(&target.config.id, "defining the domain on the target node", move |c| {
                        let already = Domain::lookup_by_name(c, &n).is_ok();
                        Domain::define_xml(c, &xml).map_err(lv("defining the domain"))?;
                        Ok(!already)
                    })
                    .await?;
                if moved_over {
                    self.with_conn(&source.config.id, "undefining the domain on the source node", move |c| {
                        if let Ok(dom) = Domain::lookup_by_name(c, &name) {
                            dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE).map_err(lv("undefine"))?;
                        }
                        Ok(())
                    })
                    .await?;
                }
                self.inner.servers.lock().unwrap().insert(server_id.to_string(), moved);
                Ok(())
            }
            _ => self.restart_if_it_ran(target, server_id).await,
        }
    }

    fn check_live_migration(&self, source: &Node, target: &Node) -> Result<(), StepError> {
        if source.uri == target.uri {
            return Err(refuse_live(source, target, "both nodes are the same libvirt daemon"));
        }
        if source.is_test() || target.is_test() {
            return Err(refuse_live(source, target, "libvirt's test driver does not migrate"));
        }
        Ok(())
    }

    async fn live_migrate(&self, source: &Node, target: &Node, server_id: &str, placed: &Placed) -> Result<(), StepError> {
        self.check_live_migration(source, target)?;
        let name = domain_name(server_id);
        let dest = target.uri.clone();
        // Driven by the adapter with a connection to each daemon, not peer
        // to peer: inside a daemon, a URI without a transport
        // (qemu:///system) names that daemon itself, so p2p could not move
        // a guest back to such a node. UNSAFE: the disks are the same files
        // on both ends (nodes share `[libvirt] dir`), which libvirt cannot
        // tell from unshared local storage; nothing is copied.
        let flags = virt::sys::VIR_MIGRATE_LIVE
            | virt::sys::VIR_MIGRATE_PERSIST_DEST
            | virt::sys::VIR_MIGRATE_UNDEFINE_SOURCE
            | virt::sys::VIR_MIGRATE_UNSAFE;
        self.with_conn(&source.config.id, "a live migration", move |c| {
            let dom = Domain::lookup_by_name(c, &name).map_err(lv("finding the domain"))?;
            let mut dconn = Connect::open(Some(&dest)).map_err(|e| format!("cannot connect to {dest}: {}", e.message()))?;
            let moved = dom.migrate(&dconn, flags, None, None, 0).map(drop).map_err(|e| e.message().to_string());
            let _ = dconn.close();
            moved
        })
        .await
        .map_err(|e| refuse_live(source, target, e.message()))?;
        let mut moved = placed.clone();
        moved.node_id = target.config.id.clone();
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), moved);
        Ok(())
    }

    /// The first step of RESIZE and REBUILD: note whether the guest runs,
    /// then shut it down (ACPI, then destroy).
    async fn stop_for_change(&self, node: &Node, server_id: &str) -> Result<(), StepError> {
        let running = self.runtime(node, server_id).await?.power_state != PowerState::Shutdown;
        if let Some(p) = self.inner.servers.lock().unwrap().get_mut(server_id) {
            p.was_running = Some(running);
        }
        self.shut_down(node, server_id).await?;
        Ok(())
    }

    fn take_was_running(&self, server_id: &str) -> bool {
        let mut servers = self.inner.servers.lock().unwrap();
        servers.get_mut(server_id).and_then(|p| p.was_running.take()).unwrap_or(true)
    }

    async fn restart_if_it_ran(&self, node: &Node, server_id: &str) -> Result<(), StepError> {
        if self.take_was_running(server_id) {
            self.start(node, server_id).await?;
        }
        Ok(())
    }

    /// Gives the (shut off) domain its definition for `placed` again.
    async fn redefine(&self, node: &Node, server_id: &str, placed: &Placed) -> Result<(), StepError> {
        let xml = self.xml_of(node, server_id, placed).await?;
        self.with_conn(&node.config.id, "redefining the domain", move |c| {
            Domain::define_xml(c, &xml).map(|_| ()).map_err(lv("redefining the domain"))
        })
        .await
    }

    /// Grows the root disk to `gb` (disks never shrink: Nova refuses too).
    async fn grow_root_disk(&self, node: &Node, server_id: &str, placed: &Placed, gb: u64) -> Result<(), StepError> {
        if node.is_test() {
            return Ok(());
        }
        if gb < placed.spec.root_disk_gb {
            return Err(aborted(format!(
                "the root disk cannot shrink from {} GB to {gb} GB; choose a type with at least as much disk",
                placed.spec.root_disk_gb
            )));
        }
        let disk = self.files(server_id).root_disk();
        let deadline = Duration::from_millis(self.inner.options.call_timeout_ms);
        let out = tokio::time::timeout(deadline, tokio::process::Command::new("qemu-img").arg("resize").arg("-q").arg(&disk).arg(format!("{}G", gb.max(MIN_ROOT_DISK_GB))).output())
            .await
            .map_err(|_| StepError::TimedOut(format!("qemu-img did not resize the root disk within {} s", deadline.as_secs())))?
            .map_err(|e| aborted(format!("cannot run qemu-img (install qemu-utils): {e}")))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            // Already that size (a step run again): nothing to do.
            if !why.contains("same size") {
                return Err(aborted(format!("qemu-img could not resize the root disk: {}", why.trim())));
            }
        }
        Ok(())
    }

    fn read_node(&self, server_id: &str) -> Result<(&Node, Placed), HypervisorError> {
        let placed = self.placed(server_id).ok_or_else(|| HypervisorError::UnknownServer(server_id.to_string()))?;
        let node = self
            .inner
            .nodes
            .get(&placed.node_id)
            .ok_or_else(|| HypervisorError::UnknownNode(placed.node_id.clone()))?;
        Ok((node, placed))
    }
}

/// The first existing ancestor directory of `path` that others may not
/// traverse (mode without `o+x`), if any.
fn unreachable_by_others(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let absolute = std::path::absolute(path).ok()?;
    absolute
        .ancestors()
        .skip(1)
        .filter_map(|dir| std::fs::metadata(dir).ok().map(|m| (dir, m)))
        .find(|(_, m)| m.is_dir() && m.permissions().mode() & 0o001 == 0)
        .map(|(dir, _)| dir.to_path_buf())
}

/// Free space (GB) of the file system holding `dir` (or its nearest
/// existing ancestor), from `df`.
fn free_disk_gb(dir: &Path) -> Option<u64> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    let out = std::process::Command::new("df").arg("-Pk").arg(existing).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib / (1024 * 1024))
}

/// Where a file is written before it is complete: `<file>.part`.
fn part_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// The file a `.part` file becomes (the path itself otherwise).
fn finished(path: &Path) -> PathBuf {
    match path.to_str().and_then(|p| p.strip_suffix(".part")) {
        Some(done) => PathBuf::from(done),
        None => path.to_path_buf(),
    }
}

/// Makes `<file>.part` the complete `file` (a no-op once done, and on the
/// test driver, which has no files).
fn finish_part(file: &Path, test: bool) -> Result<(), StepError> {
    if test || file.exists() {
        return Ok(());
    }
    std::fs::rename(part_of(file), file).map_err(|e| aborted(format!("cannot complete {}: {e}", file.display())))
}

/// A server that is on no node any more (terminated, offloaded).
fn off_node() -> ServerRuntime {
    ServerRuntime {
        power_state: PowerState::Shutdown,
        compute_node_id: None,
        compute_node_hostname: None,
        placement_id: None,
        interfaces: Vec::new(),
        block_devices: Vec::new(),
    }
}

/// The templates earlier SNAPSHOTs and BACKUPs made; unreadable records
/// are reported and skipped.
fn load_made_templates(dir: &Path) -> Vec<TemplateConfig> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "json")) {
        match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
            Ok(t) => out.push(t),
            Err(e) => eprintln!("vnext-hypervisor: skipping template record {}: {e}", path.display()),
        }
    }
    out.sort_by(|a: &TemplateConfig, b| a.id.cmp(&b.id));
    out
}

/// Which way a hot-plug goes.
#[derive(Debug, Clone, Copy)]
enum Plug {
    Attach,
    Detach,
}

/// Hot-plug flags: the definition, and the running guest if it runs.
/// (libvirt's test driver changes only the running guest.)
fn device_flags(d: &Domain, test: bool) -> Result<u32, String> {
    if test {
        return Ok(virt::sys::VIR_DOMAIN_AFFECT_CURRENT);
    }
    let live = if is_active(d)? { virt::sys::VIR_DOMAIN_AFFECT_LIVE } else { 0 };
    Ok(virt::sys::VIR_DOMAIN_AFFECT_CONFIG | live)
}

/// Why a live MOVE cannot be, naming the cold one.
fn refuse_live(source: &Node, target: &Node, why: &str) -> StepError {
    aborted(format!(
        "a live MOVE from {} to {} is not possible: {why}; MOVE the server cold (\"live\": false) instead",
        source.config.hostname, target.config.hostname
    ))
}

/// Where the node's NICs plug in (`None`: the node has no network).
fn nic_source(node: &Node) -> Option<NicSource> {
    match node.network.as_ref()? {
        NodeNetwork::Libvirt(name) => Some(NicSource::Network(name.clone())),
        NodeNetwork::User => Some(NicSource::User),
    }
}

fn image_format(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("raw" | "img") => "raw",
        _ => "qcow2",
    }
}

fn unavailable(e: StepError) -> HypervisorError {
    HypervisorError::Unavailable(e.message().to_string())
}

/// The last `lines` lines of a text file (empty when it does not exist).
fn tail(path: &Path, lines: u32) -> std::io::Result<String> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let text = text.replace("\r\n", "\n");
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines as usize);
    Ok(all[start..].iter().map(|l| format!("{l}\n")).collect())
}

impl Driver for LibvirtDriver {
    fn run_step<'a>(&'a self, step: StepRequest<'a>) -> BoxFuture<'a, Result<Option<ServerRuntime>, StepError>> {
        Box::pin(self.run(step))
    }

    fn server_state<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, Result<RuntimeState, HypervisorError>> {
        Box::pin(async move {
            let (node, placed) = self.read_node(server_id)?;
            let rt = self.runtime(node, server_id).await.map_err(unavailable)?;
            let uptime = match (rt.power_state, placed.booted_at_ms) {
                (PowerState::Running | PowerState::Paused, Some(t)) => ((now_ms() - t).max(0) / 1000) as u64,
                _ => 0,
            };
            Ok(RuntimeState {
                server_id: server_id.to_string(),
                power_state: rt.power_state,
                compute_node_id: rt.compute_node_id,
                compute_node_hostname: rt.compute_node_hostname,
                uptime_seconds: uptime,
            })
        })
    }

    fn console_log<'a>(&'a self, server_id: &'a str, lines: u32) -> BoxFuture<'a, Result<String, HypervisorError>> {
        Box::pin(async move {
            self.read_node(server_id)?;
            let path = self.files(server_id).console_log();
            tail(&path, lines).map_err(|e| HypervisorError::Unavailable(format!("cannot read the console log {}: {e}", path.display())))
        })
    }

    fn console_uri<'a>(&'a self, server_id: &'a str, kind: ConsoleType) -> BoxFuture<'a, Result<String, HypervisorError>> {
        Box::pin(async move {
            let (node, _) = self.read_node(server_id)?;
            let host = &node.config.hostname;
            if !node.config.console_types.contains(&kind) {
                return Err(HypervisorError::Unsupported(format!(
                    "compute node {host} does not serve {} consoles",
                    kind.as_str()
                )));
            }
            let protocol = match kind {
                ConsoleType::Novnc | ConsoleType::Xvpvnc => "vnc",
                ConsoleType::Spice => "spice",
                ConsoleType::Rdp => {
                    return Err(HypervisorError::Unsupported(format!(
                        "rdp consoles are for Hyper-V guests, not libvirt ones (node {host}); use novnc"
                    )));
                }
            };
            if node.is_test() {
                return Err(HypervisorError::Unsupported(format!(
                    "node {host} uses libvirt's test driver ({}), whose domains have no display: no interactive console; read the console log",
                    node.uri
                )));
            }
            if !is_local_uri(&node.uri) {
                return Err(HypervisorError::Unsupported(format!(
                    "node {host} is a remote libvirt daemon ({}): its guests' VNC displays listen on that host's loopback, which the console proxy cannot reach",
                    node.uri
                )));
            }
            let Some(proxy) = &self.inner.console else {
                return Err(HypervisorError::Unsupported(format!(
                    "this adapter runs no console proxy, so node {host} serves no interactive console; read the console log"
                )));
            };
            let name = domain_name(server_id);
            let display = self
                .with_conn(&node.config.id, "reading the domain's display", move |c| {
                    let dom = Domain::lookup_by_name(c, &name).map_err(lv("finding the domain"))?;
                    if !is_active(&dom)? {
                        return Ok(None);
                    }
                    let xml = dom.get_xml_desc(0).map_err(lv("reading the domain XML"))?;
                    Ok(Some(domain::display(&xml, protocol)))
                })
                .await
                .map_err(unavailable)?;
            let address = match display {
                None | Some(Some(domain::VncDisplay { port: None, .. })) => {
                    return Err(HypervisorError::Unavailable(format!(
                        "server {server_id} is not running: its {protocol} display exists only while the guest runs; start it and ask for the console again"
                    )));
                }
                Some(None) => {
                    return Err(HypervisorError::Unsupported(format!(
                        "the domain of server {server_id} has no {protocol} display (defined before its node served it?); a hard reboot or rebuild gives it one"
                    )));
                }
                Some(Some(d)) => d.address(),
            };
            Ok(proxy.open(ConsoleTarget { server_id: server_id.to_string(), kind, address }))
        })
    }

    fn diagnostics<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, Result<Diagnostics, HypervisorError>> {
        Box::pin(async move {
            let (node, placed) = self.read_node(server_id)?;
            let name = domain_name(server_id);
            let test = node.is_test();
            let (info, disk) = self
                .with_conn(&node.config.id, "reading the domain's counters", move |c| {
                    let dom = Domain::lookup_by_name(c, &name).map_err(lv("finding the domain"))?;
                    let info = dom.get_info().map_err(lv("domain info"))?;
                    let disk = if test || !is_active(&dom)? { None } else { dom.get_block_stats("vda").ok() };
                    Ok((info, disk))
                })
                .await
                .map_err(unavailable)?;
            let running = matches!(power_of_info(info.state), PowerState::Running | PowerState::Paused);
            let uptime = match placed.booted_at_ms {
                Some(t) if running => ((now_ms() - t).max(0) / 1000) as u64,
                _ => 0,
            };
            Ok(Diagnostics {
                cpu_time_ns: info.cpu_time,
                memory_used_mb: if running { info.memory / 1024 } else { 0 },
                memory_total_mb: info.max_mem / 1024,
                uptime_seconds: uptime,
                disks: disk
                    .map(|s| {
                        vec![DiskCounters {
                            device: "vda".into(),
                            read_bytes: s.rd_bytes.max(0) as u64,
                            write_bytes: s.wr_bytes.max(0) as u64,
                            read_requests: s.rd_req.max(0) as u64,
                            write_requests: s.wr_req.max(0) as u64,
                        }]
                    })
                    .unwrap_or_default(),
                interfaces: Vec::new(),
            })
        })
    }

    fn forget<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(placed) = self.inner.servers.lock().unwrap().remove(server_id) else { return };
            if let Some(proxy) = &self.inner.console {
                proxy.revoke_server(server_id);
            }
            if self.inner.nodes.contains_key(&placed.node_id) {
                let name = domain_name(server_id);
                // Best effort: a domain left behind is reported at the next start.
                let _ = self
                    .with_conn(&placed.node_id, "removing the domain", move |c| {
                        if let Ok(dom) = Domain::lookup_by_name(c, &name) {
                            if dom.is_active().unwrap_or(false) {
                                let _ = dom.destroy();
                            }
                            let _ = dom.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
                        }
                        Ok(())
                    })
                    .await;
            }
            let _ = std::fs::remove_dir_all(self.files(server_id).dir);
        })
    }

    fn recover<'a>(&'a self, known: &'a [String]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // (The test driver's host is fictional.)
            for node in self.inner.nodes.values().filter(|n| !n.is_test()) {
                self.check_capacity(node).await;
            }
            // Nodes may share a daemon (one URI): list each daemon once.
            let mut by_uri: HashMap<&str, &Node> = HashMap::new();
            for node in self.inner.nodes.values() {
                by_uri.entry(node.uri.as_str()).or_insert(node);
            }
            let mut running: HashMap<String, String> = HashMap::new();
            for (uri, node) in by_uri {
                let listed = self
                    .with_conn(&node.config.id, "listing domains", |c| {
                        let doms = c.list_all_domains(0).map_err(lv("listing domains"))?;
                        Ok(doms.iter().filter_map(|d| d.get_name().ok()).collect::<Vec<String>>())
                    })
                    .await;
                match listed {
                    Ok(names) => {
                        // (The KVM probe's domains are the adapter's own.)
                        for name in names.iter().filter(|n| !n.starts_with(accel::PROBE_PREFIX)) {
                            if let Some(id) = name.strip_prefix("vnext-") {
                                running.insert(id.to_string(), uri.to_string());
                            }
                        }
                    }
                    Err(e) => eprintln!("vnext-hypervisor: cannot match domains at {uri} after the start: {}", e.message()),
                }
            }
            let placed = self.inner.servers.lock().unwrap().clone();
            let mut matched = 0;
            for (id, uri) in &running {
                if placed.contains_key(id) && known.contains(id) {
                    matched += 1;
                } else {
                    eprintln!(
                        "vnext-hypervisor: domain vnext-{id} at {uri} belongs to no server this adapter knows (not in its journal); left alone"
                    );
                }
            }
            for (id, p) in placed.iter().filter(|(id, p)| !p.terminated && !p.shelved && !running.contains_key(*id)) {
                let host = self.inner.nodes.get(&p.node_id).map(|n| n.config.hostname.as_str()).unwrap_or("?");
                eprintln!(
                    "vnext-hypervisor: server {id} has no domain on node {host}; its next start defines it again"
                );
            }
            if !running.is_empty() || !placed.is_empty() {
                eprintln!("vnext-hypervisor: after the start, {matched} domain(s) matched journaled servers");
            }
        })
    }

    fn templates(&self) -> Vec<TemplateConfig> {
        self.inner.made.lock().unwrap().clone()
    }

    fn export_server(&self, server_id: &str) -> Option<serde_json::Value> {
        self.placed(server_id).and_then(|p| serde_json::to_value(p).ok())
    }

    fn import_server(&self, server_id: &str, state: serde_json::Value) -> Result<(), String> {
        let placed: Placed = serde_json::from_value(state).map_err(|e| e.to_string())?;
        self.inner.servers.lock().unwrap().insert(server_id.to_string(), placed);
        Ok(())
    }
}

/// Whether a libvirt URI names this machine's daemon (`qemu:///system`,
/// `qemu+ssh://localhost/system`), whose guests' loopback is ours.
fn is_local_uri(uri: &str) -> bool {
    let Some((_, rest)) = uri.split_once("://") else { return true };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    matches!(host, "" | "localhost" | "127.0.0.1" | "::1")
}

fn power_of_info(state: virt::sys::virDomainState) -> PowerState {
    match state {
        virt::sys::VIR_DOMAIN_RUNNING | virt::sys::VIR_DOMAIN_BLOCKED | virt::sys::VIR_DOMAIN_SHUTDOWN => PowerState::Running,
        virt::sys::VIR_DOMAIN_PAUSED => PowerState::Paused,
        virt::sys::VIR_DOMAIN_CRASHED => PowerState::Crashed,
        virt::sys::VIR_DOMAIN_PMSUSPENDED => PowerState::Suspended,
        _ => PowerState::Shutdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_others_cannot_traverse_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("servers");
        std::fs::create_dir(&inner).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(unreachable_by_others(&inner.join("x/root.qcow2")), Some(dir.path().to_path_buf()));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(unreachable_by_others(&inner.join("x/root.qcow2")), None);
    }

    #[test]
    fn only_uris_of_this_machine_are_local() {
        for uri in ["qemu:///system", "qemu:///session", "qemu+ssh://root@localhost/system", "qemu+tcp://127.0.0.1:16509/system", "qemu+ssh://[::1]/system"] {
            assert!(is_local_uri(uri), "{uri}");
        }
        for uri in ["qemu+ssh://kvm-7/system", "qemu+ssh://admin@10.0.0.5:2222/system", "qemu+tls://[2001:db8::1]/system"] {
            assert!(!is_local_uri(uri), "{uri}");
        }
    }

    #[test]
    fn tail_keeps_the_last_lines_and_tolerates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.log");
        assert_eq!(tail(&f, 5).unwrap(), "");
        std::fs::write(&f, "a\r\nb\nc\n").unwrap();
        assert_eq!(tail(&f, 2).unwrap(), "b\nc\n");
        assert_eq!(tail(&f, 9).unwrap(), "a\nb\nc\n");
    }
}
