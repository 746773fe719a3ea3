//! The deployment's inventory: placements, compute nodes and the driver.
//!
//! Operators describe their deployment in one TOML file (the API exposes
//! placements read-only and never lets users define nodes). Example:
//!
//! ```toml
//! [[placement]]
//! id = "8f0c1a52-3c1e-4d8e-9b7a-0f6f3f2b1a01"
//! name = "region-one"
//! description = "Everything"
//! tags = ["prod"]
//! properties = { tier = "gold" }
//!
//! [[placement]]
//! id = "8f0c1a52-3c1e-4d8e-9b7a-0f6f3f2b1a02"
//! name = "rack-a"
//! parents = ["region-one"]          # ids or names; several parents allowed
//!
//! [[compute_node]]
//! id = "5b7c6c1e-8a38-4d5e-8c7e-2f1a9e0d0c01"
//! hostname = "cn-a1"
//! placements = ["rack-a"]           # ids or names
//! memory_mb = 8192
//! cpu_units = 4
//! disk_gb = 100
//! console_types = ["novnc", "spice"]
//! enabled = true                    # default
//!
//! [[compute_node]]                 # a node with a real hypervisor
//! id = "5b7c6c1e-8a38-4d5e-8c7e-2f1a9e0d0c02"
//! hostname = "kvm-1"
//! placements = ["rack-a"]
//! memory_mb = 4096
//! cpu_units = 2
//! disk_gb = 50
//! driver = "libvirt"                # default: the [driver] table's kind
//! libvirt_uri = "qemu:///system"    # or qemu+ssh://host/system, test:///default
//! accel = "auto"                    # kvm | tcg | auto: probe KVM at start
//! libvirt_network = "default"       # NICs on this libvirt network; "user":
//!                                   # QEMU user-mode networking; none: no NIC
//! live_migration_group = "rack-a"   # live MOVEs go to nodes of the same
//!                                   # group (shared disks, daemons that
//!                                   # reach each other); none: cold only
//! # console_types: libvirt nodes serve ["novnc", "xvpvnc"] unless listed
//!
//! [[template]]                      # what `template_id` names (libvirt)
//! id = "0c9e5b8a-2f4d-4e1a-9b3c-7d6e5f4a3b21"
//! name = "tiny"
//! kernel = "templates/tiny/vmlinuz" # paths relative to this file
//! initrd = "templates/tiny/initramfs.gz"
//! # or: image = "images/debian.qcow2" (a disk to boot, copied on write);
//! # kernel and image together: the kernel boots, the image is the root disk
//! min_memory_mb = 64
//!
//! [libvirt]
//! dir = "/var/lib/vnext"            # server disks and console logs
//! shutdown_timeout_ms = 20000       # ACPI shutdown before destroy
//!
//! [lifecycle]
//! sync_interval_ms = 2000           # power-state sync; 0: off
//! reclaim_after_seconds = 86400     # RESTORE possible until then
//!
//! [console_proxy]                   # consoles of libvirt guests (noVNC)
//! listen = "127.0.0.1:6080"         # default
//! public_url = "https://console.example.org:6080" # default http://<listen>
//! token_ttl_seconds = 600           # default: a console URI works 10 min
//! web = "/usr/share/novnc"          # optional: serve noVNC's pages too
//!
//! [driver]
//! kind = "fake"
//! step_delay_ms = 300               # default 200
//! action_delay_ms = { spawn = 500 } # per-action overrides
//!
//! [[driver.fail]]                   # steps that abort
//! action = "spawn"
//! step = "SPAWNING"
//! hostname_prefix = "fail-"
//! error = "injected: no bootable device"
//!
//! [[driver.timeout]]                # steps that time out
//! action = "reboot"
//! error = "injected: guest did not come back"
//! ```
//!
//! Decisions: a placement may have several parents (overlapping
//! hierarchies), as long as the parent graph has no cycle; references
//! (`parents`, `placements`) may use an id or a name, and are stored as ids;
//! ids are UUIDs, accepted hyphenated or as 32 hex digits and stored
//! lowercase hyphenated. A missing `[driver]` table means the fake driver
//! with its defaults. A node that does not list `console_types` serves
//! none on the fake driver and `novnc` and `xvpvnc` on libvirt (its
//! domains have a VNC display, reached through the console proxy,
//! [`crate::console_proxy`]); an explicit list, even empty, is kept as
//! given. The `[console_proxy]` table only matters with libvirt nodes.
//! Fake nodes share the live-migration group `fake` unless they name
//! another; libvirt nodes have none unless they name one, and two nodes of
//! one libvirt daemon cannot share one.
//! Every rule violation is reported with the file, the entry and what to
//! fix.

use crate::driver::ACTION_KINDS;
use crate::error::Error;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use vnext_core::hypervisor::{ConsoleType, Placement, Resources};

/// A validated inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The file it was read from (for messages).
    pub source: PathBuf,
    /// Placements in file order, references resolved to ids.
    pub placements: Vec<Placement>,
    /// Compute nodes in file order (the scheduler's fallback order).
    pub nodes: Vec<NodeConfig>,
    /// Settings of the fake driver, and the driver of nodes that name none.
    pub driver: DriverConfig,
    /// The template catalogue, in file order.
    pub templates: Vec<TemplateConfig>,
    pub libvirt: LibvirtOptions,
    /// Power-state sync and reclaim (the `[lifecycle]` table).
    pub lifecycle: LifecycleOptions,
    /// The console proxy of libvirt nodes (`[console_proxy]`).
    pub console_proxy: ConsoleProxyOptions,
}

/// What the adapter does with servers between tasks, for every driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleOptions {
    /// How often the adapter compares each idle server's power state with
    /// what the API was last told, and reports a difference (Nova's power
    /// state sync). `0` turns the sync off.
    pub sync_interval_ms: u64,
    /// How long a terminated server can still be RESTOREd before its disk
    /// and domain are deleted (Nova's `reclaim_instance_interval`).
    pub reclaim_after_seconds: u64,
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        LifecycleOptions { sync_interval_ms: DEFAULT_SYNC_INTERVAL_MS, reclaim_after_seconds: DEFAULT_RECLAIM_AFTER_SECONDS }
    }
}

/// Nova syncs power states every 10 minutes but also listens to libvirt's
/// lifecycle events, so its users see a guest that shut itself down at
/// once. We sweep instead of listening, so we sweep often: one state call
/// per idle server every 2 s costs little on a node of tens of guests.
pub const DEFAULT_SYNC_INTERVAL_MS: u64 = 2_000;
/// A day: long enough to undo a mistaken TERMINATE the next working day,
/// short enough that deleted servers' disks do not pile up. Nova's default
/// (0, delete at once) would make RESTORE useless.
pub const DEFAULT_RECLAIM_AFTER_SECONDS: u64 = 86_400;

/// Settings of the console proxy ([`crate::console_proxy`]), the
/// `[console_proxy]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleProxyOptions {
    /// Where the proxy listens for websockets.
    pub listen: std::net::SocketAddr,
    /// The base URL console URIs start with (no trailing `/`); `None`:
    /// `http://<the address the proxy is bound to>`.
    pub public_url: Option<String>,
    /// How long an issued console token can be used.
    pub token_ttl: std::time::Duration,
    /// A directory of noVNC's web client (e.g. `/usr/share/novnc` of
    /// Debian's `novnc` package) the proxy serves next to its websockets,
    /// as nova-novncproxy does, so `vnc_auto.html` opens in a browser.
    /// `None`: the pages are served elsewhere, at `public_url`.
    pub web: Option<PathBuf>,
}

/// Where the console proxy listens by default: nova-novncproxy's port, on
/// the loopback (expose it through a TLS reverse proxy, or set `listen`).
pub const DEFAULT_CONSOLE_LISTEN: &str = "127.0.0.1:6080";

impl Default for ConsoleProxyOptions {
    fn default() -> Self {
        ConsoleProxyOptions {
            listen: DEFAULT_CONSOLE_LISTEN.parse().expect("a valid default address"),
            public_url: None,
            token_ttl: crate::console_proxy::DEFAULT_TOKEN_TTL,
            web: None,
        }
    }
}

/// The live-migration group fake nodes belong to unless they name one.
pub const FAKE_LIVE_MIGRATION_GROUP: &str = "fake";

/// The console types a libvirt node serves when the inventory lists none:
/// its domains have a VNC display. A node that lists `spice` gets a SPICE
/// display too (its QEMU needs SPICE: Debian's qemu-system-modules-spice).
pub const LIBVIRT_CONSOLE_TYPES: [ConsoleType; 2] = [ConsoleType::Novnc, ConsoleType::Xvpvnc];

/// A compute node as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: String,
    pub hostname: String,
    pub placement_ids: Vec<String>,
    pub capacity: Resources,
    pub console_types: Vec<ConsoleType>,
    pub enabled: bool,
    /// Which driver runs this node's servers.
    pub backend: NodeBackend,
    /// The nodes this one can move running servers to live: those of the
    /// same group. `None`: cold MOVEs only.
    pub live_migration_group: Option<String>,
}

/// The driver of one compute node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeBackend {
    /// The in-memory fake driver ([`crate::FakeDriver`]).
    Fake,
    /// A libvirt daemon ([`crate::libvirt::LibvirtDriver`]).
    Libvirt { uri: String, accel: Accel, network: Option<NodeNetwork> },
}

/// Where a libvirt node's guests get their network interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeNetwork {
    /// A libvirt network of the node's daemon (`virsh net-list`), e.g.
    /// `default` (NAT with DHCP through dnsmasq).
    Libvirt(String),
    /// QEMU's user-mode networking: no bridge, no root needed (session
    /// daemons), outbound only.
    User,
}

/// How a libvirt node runs guests: hardware virtualization or emulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM where a probe guest boots with it at start, else TCG.
    Auto,
    Kvm,
    Tcg,
}

/// A template of the catalogue: what a server boots from. Serialized for
/// the templates SNAPSHOT and BACKUP add to the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct TemplateConfig {
    pub id: String,
    pub name: String,
    pub boot: TemplateBoot,
    pub min_memory_mb: u64,
    pub min_disk_gb: u64,
    /// The template RESCUE boots by default.
    pub rescue_template_id: Option<String>,
}

impl TemplateConfig {
    /// The disk image a server's root disk is an overlay of, if any.
    pub fn disk(&self) -> Option<&Path> {
        match &self.boot {
            TemplateBoot::Image { path } => Some(path),
            TemplateBoot::Kernel { disk, .. } => disk.as_deref(),
        }
    }
}

/// How a template boots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateBoot {
    /// Direct kernel boot; the server's root disk starts empty, or as a
    /// copy-on-write overlay of `disk` (a snapshot of such a server).
    Kernel { kernel: PathBuf, initrd: Option<PathBuf>, cmdline: String, disk: Option<PathBuf> },
    /// A disk image the server's root disk is a copy-on-write overlay of.
    Image { path: PathBuf },
}

/// Settings of the libvirt driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibvirtOptions {
    /// Where server disks and console logs live (`None`: the adapter's
    /// state directory, `libvirt/` in it).
    pub dir: Option<PathBuf>,
    /// How long a guest has to shut down on the ACPI power button before
    /// it is destroyed (POWER_OFF) or reset (REBOOT), as Nova's
    /// `shutdown_timeout`.
    pub shutdown_timeout_ms: u64,
    /// How long any one libvirt call may take.
    pub call_timeout_ms: u64,
}

impl Default for LibvirtOptions {
    fn default() -> Self {
        LibvirtOptions { dir: None, shutdown_timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS, call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS }
    }
}

/// Nova's default `shutdown_timeout` is 60 s; tiny guests need far less.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 20_000;
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;
/// Longest `[console_proxy] token_ttl_seconds`: a console URI is meant to
/// be opened right away, not kept.
pub const MAX_CONSOLE_TOKEN_TTL_SECONDS: u64 = 86_400;
/// The kernel command line of a kernel template that gives none.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0";

/// Which backend runs the servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverConfig {
    Fake(FakeOptions),
}

/// Settings of the fake driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOptions {
    /// How long every step takes, unless overridden for its action.
    pub step_delay_ms: u64,
    /// Per-action step delay, keyed by action kind (`spawn`, `power_off`...).
    pub action_delay_ms: BTreeMap<String, u64>,
    /// Steps that abort.
    pub fail: Vec<FailRule>,
    /// Steps that time out.
    pub timeout: Vec<FailRule>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            step_delay_ms: DEFAULT_STEP_DELAY_MS,
            action_delay_ms: BTreeMap::new(),
            fail: Vec::new(),
            timeout: Vec::new(),
        }
    }
}

impl FakeOptions {
    /// Options with no delays and no failures, for tests.
    pub fn instant() -> Self {
        FakeOptions { step_delay_ms: 0, ..Default::default() }
    }
}

/// A failure injection rule: a step fails when every field that is set
/// matches (an empty rule matches every step).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRule {
    /// Action kind, as in the adapter's JSON (`spawn`, `power_off`...).
    pub action: Option<String>,
    /// Step (task item) name, e.g. `SPAWNING`.
    pub step: Option<String>,
    /// Prefix of the server's hostname.
    pub hostname_prefix: Option<String>,
    pub server_id: Option<String>,
    /// The error message the step reports.
    pub error: String,
}

pub const DEFAULT_STEP_DELAY_MS: u64 = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    placement: Vec<RawPlacement>,
    #[serde(default)]
    compute_node: Vec<RawNode>,
    driver: Option<RawDriver>,
    #[serde(default)]
    template: Vec<RawTemplate>,
    libvirt: Option<RawLibvirt>,
    lifecycle: Option<RawLifecycle>,
    console_proxy: Option<RawConsoleProxy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLifecycle {
    sync_interval_ms: Option<u64>,
    reclaim_after_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsoleProxy {
    listen: Option<String>,
    public_url: Option<String>,
    token_ttl_seconds: Option<u64>,
    web: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    id: String,
    name: String,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    cmdline: Option<String>,
    image: Option<PathBuf>,
    #[serde(default)]
    min_memory_mb: u64,
    #[serde(default)]
    min_disk_gb: u64,
    rescue_template: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLibvirt {
    dir: Option<PathBuf>,
    shutdown_timeout_ms: Option<u64>,
    call_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlacement {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parents: Vec<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: String,
    hostname: String,
    placements: Vec<String>,
    memory_mb: u64,
    cpu_units: u32,
    disk_gb: u64,
    /// `None`: the driver's default (none on fake nodes).
    console_types: Option<Vec<ConsoleType>>,
    #[serde(default = "yes")]
    enabled: bool,
    driver: Option<String>,
    libvirt_uri: Option<String>,
    accel: Option<Accel>,
    libvirt_network: Option<String>,
    live_migration_group: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDriver {
    kind: String,
    step_delay_ms: Option<u64>,
    #[serde(default)]
    action_delay_ms: BTreeMap<String, u64>,
    #[serde(default)]
    fail: Vec<FailRule>,
    #[serde(default)]
    timeout: Vec<FailRule>,
}

impl Inventory {
    /// Reads and validates an inventory file.
    pub fn load(path: impl AsRef<Path>) -> Result<Inventory, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Validates inventory text; `source` only names it in messages.
    pub fn parse(text: &str, source: impl AsRef<Path>) -> Result<Inventory, Error> {
        let source = source.as_ref().to_owned();
        let raw: RawInventory = toml::from_str(text).map_err(|e| Error::InventoryParse {
            path: source.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Validator { path: &source }.validate(raw)
    }

    /// The configured node with this id.
    pub fn node(&self, id: &str) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The template with this id.
    pub fn template(&self, id: &str) -> Option<&TemplateConfig> {
        self.templates.iter().find(|t| t.id == id)
    }
}

struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn err(&self, entry: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InventoryInvalid {
            path: self.path.to_owned(),
            entry: entry.into(),
            message: message.into(),
        }
    }

    fn validate(&self, raw: RawInventory) -> Result<Inventory, Error> {
        let placements = self.placements(raw.placement)?;
        let nodes = self.nodes(raw.compute_node, &placements)?;
        let driver = match raw.driver {
            None => DriverConfig::Fake(FakeOptions::default()),
            Some(d) => self.driver(d)?,
        };
        let templates = self.templates(raw.template)?;
        let libvirt = match raw.libvirt {
            None => LibvirtOptions::default(),
            Some(l) => LibvirtOptions {
                dir: l.dir.map(|d| self.relative(d)),
                shutdown_timeout_ms: l.shutdown_timeout_ms.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_MS),
                call_timeout_ms: l.call_timeout_ms.unwrap_or(DEFAULT_CALL_TIMEOUT_MS),
            },
        };
        let lifecycle = match raw.lifecycle {
            None => LifecycleOptions::default(),
            Some(l) => LifecycleOptions {
                sync_interval_ms: l.sync_interval_ms.unwrap_or(DEFAULT_SYNC_INTERVAL_MS),
                reclaim_after_seconds: l.reclaim_after_seconds.unwrap_or(DEFAULT_RECLAIM_AFTER_SECONDS),
            },
        };
        let console_proxy = match raw.console_proxy {
            None => ConsoleProxyOptions::default(),
            Some(c) => self.console_proxy(c)?,
        };
        Ok(Inventory { source: self.path.to_owned(), placements, nodes, driver, templates, libvirt, lifecycle, console_proxy })
    }

    fn console_proxy(&self, raw: RawConsoleProxy) -> Result<ConsoleProxyOptions, Error> {
        let entry = "console_proxy";
        let mut options = ConsoleProxyOptions::default();
        if let Some(listen) = raw.listen {
            options.listen = listen.trim().parse().map_err(|_| {
                self.err(entry, format!("listen {listen:?} is not an address with a port, e.g. \"127.0.0.1:6080\" or \"[::1]:6080\""))
            })?;
        }
        if let Some(url) = raw.public_url {
            let url = url.trim().trim_end_matches('/').to_string();
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
                return Err(self.err(
                    entry,
                    format!("public_url {url:?} must be an http:// or https:// base URL without query, e.g. \"https://console.example.org:6080\""),
                ));
            }
            options.public_url = Some(url);
        } else if options.listen.ip().is_unspecified() {
            return Err(self.err(
                entry,
                format!("listen {} accepts on every address, so there is no one URL to give clients: set public_url to the address they reach", options.listen),
            ));
        }
        if let Some(ttl) = raw.token_ttl_seconds {
            if ttl == 0 || ttl > MAX_CONSOLE_TOKEN_TTL_SECONDS {
                return Err(self.err(
                    entry,
                    format!("token_ttl_seconds {ttl} must be between 1 and {MAX_CONSOLE_TOKEN_TTL_SECONDS} (a day)"),
                ));
            }
            options.token_ttl = std::time::Duration::from_secs(ttl);
        }
        options.web = raw.web.map(|w| self.relative(w));
        Ok(options)
    }

    /// A path given in the file: relative to the file's directory, made
    /// absolute (libvirtd resolves paths from its own working directory).
    fn relative(&self, p: PathBuf) -> PathBuf {
        let joined = match self.path.parent() {
            Some(dir) if !p.is_absolute() => dir.join(&p),
            _ => p,
        };
        std::path::absolute(&joined).unwrap_or(joined)
    }

    fn templates(&self, raw: Vec<RawTemplate>) -> Result<Vec<TemplateConfig>, Error> {
        let mut by_key: HashMap<String, String> = HashMap::new();
        let mut out: Vec<TemplateConfig> = Vec::with_capacity(raw.len());
        let mut rescue_refs = Vec::new();
        for (i, t) in raw.into_iter().enumerate() {
            let entry = if t.name.is_empty() { format!("template #{}", i + 1) } else { format!("template {:?}", t.name) };
            let id = normalize_uuid(&t.id).ok_or_else(|| self.err(&entry, format!("id {:?} is not a UUID", t.id)))?;
            if t.name.trim().is_empty() {
                return Err(self.err(&entry, "name is empty; give every template a name"));
            }
            if by_key.insert(id.clone(), id.clone()).is_some() || by_key.insert(t.name.clone(), id.clone()).is_some() {
                return Err(self.err(&entry, "id or name is used by an earlier template; both must be unique"));
            }
            let boot = match (t.kernel, t.image) {
                (Some(kernel), disk) => TemplateBoot::Kernel {
                    kernel: self.relative(kernel),
                    initrd: t.initrd.map(|p| self.relative(p)),
                    cmdline: t.cmdline.unwrap_or_else(|| DEFAULT_CMDLINE.to_string()),
                    disk: disk.map(|p| self.relative(p)),
                },
                (None, Some(image)) if t.initrd.is_none() && t.cmdline.is_none() => {
                    TemplateBoot::Image { path: self.relative(image) }
                }
                (None, Some(_)) => {
                    return Err(self.err(&entry, "initrd and cmdline go with kernel, not with image"));
                }
                _ => return Err(self.err(&entry, "give kernel (with optional initrd, cmdline, and image as its root disk) or image")),
            };
            rescue_refs.push((entry, t.rescue_template));
            out.push(TemplateConfig {
                id,
                name: t.name,
                boot,
                min_memory_mb: t.min_memory_mb,
                min_disk_gb: t.min_disk_gb,
                rescue_template_id: None,
            });
        }
        for (t, (entry, reference)) in out.iter_mut().zip(rescue_refs) {
            if let Some(r) = reference {
                let id = resolve(&by_key, &r).ok_or_else(|| {
                    self.err(&entry, format!("rescue_template {r:?} is neither the id nor the name of a template"))
                })?;
                t.rescue_template_id = Some(id);
            }
        }
        Ok(out)
    }

    fn placements(&self, raw: Vec<RawPlacement>) -> Result<Vec<Placement>, Error> {
        // First pass: ids and names, so parents may refer to later entries.
        let mut by_key: HashMap<String, String> = HashMap::new();
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, p) in raw.iter().enumerate() {
            let entry = placement_entry(i, &p.name);
            let id = normalize_uuid(&p.id).ok_or_else(|| {
                self.err(&entry, format!("id {:?} is not a UUID; use e.g. a `uuidgen` output", p.id))
            })?;
            if p.name.trim().is_empty() {
                return Err(self.err(&entry, "name is empty; give every placement a name"));
            }
            if !ids.insert(id.clone()) {
                return Err(self.err(&entry, format!("id {id} is used by an earlier placement; ids must be unique")));
            }
            if !names.insert(p.name.clone()) {
                return Err(self.err(&entry, "name is used by an earlier placement; names must be unique"));
            }
            self.tags(&entry, &p.tags)?;
            for key in p.properties.keys() {
                if key.is_empty() || key.chars().count() > 50 {
                    return Err(self.err(&entry, format!("property key {key:?} must have 1 to 50 characters")));
                }
            }
            by_key.insert(id.clone(), id.clone());
            by_key.insert(p.name.clone(), id.clone());
            out.push(Placement {
                id,
                name: p.name.clone(),
                description: p.description.clone(),
                parent_ids: Vec::new(),
                properties: p.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                tags: dedup(&p.tags),
            });
        }
        for (i, p) in raw.iter().enumerate() {
            let entry = placement_entry(i, &p.name);
            let mut parents = Vec::new();
            for reference in &p.parents {
                let id = resolve(&by_key, reference).ok_or_else(|| {
                    self.err(&entry, format!("parent {reference:?} is neither the id nor the name of a placement"))
                })?;
                if id == out[i].id {
                    return Err(self.err(&entry, "lists itself as a parent"));
                }
                if !parents.contains(&id) {
                    parents.push(id);
                }
            }
            out[i].parent_ids = parents;
        }
        self.no_cycles(&out)?;
        Ok(out)
    }

    fn no_cycles(&self, placements: &[Placement]) -> Result<(), Error> {
        let index: HashMap<&str, usize> =
            placements.iter().enumerate().map(|(i, p)| (p.id.as_str(), i)).collect();
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut mark = vec![0u8; placements.len()];
        for start in 0..placements.len() {
            if mark[start] != 0 {
                continue;
            }
            // Iterative DFS keeping the path, so a cycle can be named.
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            mark[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let parents = &placements[node].parent_ids;
                if *next < parents.len() {
                    let parent = index[parents[*next].as_str()];
                    *next += 1;
                    match mark[parent] {
                        0 => {
                            mark[parent] = 1;
                            stack.push((parent, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|&(n, _)| n == parent).unwrap_or(0);
                            let mut names: Vec<&str> =
                                stack[from..].iter().map(|&(n, _)| placements[n].name.as_str()).collect();
                            names.push(&placements[parent].name);
                            return Err(self.err(
                                placement_entry(parent, &placements[parent].name),
                                format!(
                                    "parents form a cycle ({}); remove one of these parent links",
                                    names.join(" -> ")
                                ),
                            ));
                        }
                        _ => {}
                    }
                } else {
                    mark[node] = 2;
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    fn nodes(&self, raw: Vec<RawNode>, placements: &[Placement]) -> Result<Vec<NodeConfig>, Error> {
        let mut by_key: HashMap<String, String> = HashMap::new();
        for p in placements {
            by_key.insert(p.id.clone(), p.id.clone());
            by_key.insert(p.name.clone(), p.id.clone());
        }
        let mut ids = HashSet::new();
        let mut hostnames = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, n) in raw.into_iter().enumerate() {
            let entry = if n.hostname.is_empty() {
                format!("compute_node #{}", i + 1)
            } else {
                format!("compute_node {:?}", n.hostname)
            };
            let id = normalize_uuid(&n.id)
                .ok_or_else(|| self.err(&entry, format!("id {:?} is not a UUID", n.id)))?;
            if !valid_hostname(&n.hostname) {
                return Err(self.err(
                    &entry,
                    "hostname must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen",
                ));
            }
            if !ids.insert(id.clone()) {
                return Err(self.err(&entry, format!("id {id} is used by an earlier compute node")));
            }
            if !hostnames.insert(n.hostname.clone()) {
                return Err(self.err(&entry, "hostname is used by an earlier compute node"));
            }
            if n.placements.is_empty() {
                return Err(self.err(&entry, "placements is empty; list at least one placement (id or name)"));
            }
            let mut placement_ids = Vec::new();
            for reference in &n.placements {
                let id = resolve(&by_key, reference).ok_or_else(|| {
                    self.err(&entry, format!("placement {reference:?} is neither the id nor the name of a placement"))
                })?;
                if !placement_ids.contains(&id) {
                    placement_ids.push(id);
                }
            }
            if n.memory_mb == 0 || n.cpu_units == 0 || n.disk_gb == 0 {
                return Err(self.err(&entry, "memory_mb, cpu_units and disk_gb must all be greater than 0"));
            }
            let listed = n.console_types.is_some();
            let mut console_types = Vec::new();
            for c in n.console_types.unwrap_or_default() {
                if !console_types.contains(&c) {
                    console_types.push(c);
                }
            }
            let backend = match (n.driver.as_deref(), n.libvirt_uri) {
                (Some("libvirt"), Some(uri)) if !uri.trim().is_empty() => {
                    let network = match n.libvirt_network.as_deref().map(str::trim) {
                        None => None,
                        Some("") => return Err(self.err(&entry, "libvirt_network is empty; name a libvirt network, or \"user\"")),
                        Some("user") => Some(NodeNetwork::User),
                        Some(name) => Some(NodeNetwork::Libvirt(name.to_string())),
                    };
                    NodeBackend::Libvirt { uri, accel: n.accel.unwrap_or(Accel::Auto), network }
                }
                (Some("libvirt"), _) => {
                    return Err(self.err(&entry, "driver \"libvirt\" needs libvirt_uri, e.g. \"qemu:///system\""));
                }
                (None | Some("fake"), None) if n.accel.is_none() && n.libvirt_network.is_none() => NodeBackend::Fake,
                (None | Some("fake"), _) => {
                    return Err(self.err(&entry, "libvirt_uri, accel and libvirt_network are for driver = \"libvirt\" nodes"));
                }
                (Some(other), _) => {
                    return Err(self.err(&entry, format!("driver {other:?} is not a driver; use \"fake\" or \"libvirt\"")));
                }
            };
            if !listed && matches!(backend, NodeBackend::Libvirt { .. }) {
                console_types = LIBVIRT_CONSOLE_TYPES.to_vec();
            }
            let live_migration_group = self.live_migration_group(&entry, n.live_migration_group, &backend)?;
            out.push(NodeConfig {
                id,
                hostname: n.hostname,
                placement_ids,
                capacity: Resources { memory_mb: n.memory_mb, cpu_units: n.cpu_units, disk_gb: n.disk_gb },
                console_types,
                enabled: n.enabled,
                backend,
                live_migration_group,
            });
        }
        self.check_live_migration_groups(&out)?;
        Ok(out)
    }

    /// A node's `live_migration_group`: fake nodes default to one group
    /// (the fake driver moves anything anywhere), libvirt nodes to none,
    /// since a live migration needs what the inventory cannot see (shared
    /// disks, daemons that reach each other): the operator says so.
    fn live_migration_group(&self, entry: &str, raw: Option<String>, backend: &NodeBackend) -> Result<Option<String>, Error> {
        match (raw.as_deref().map(str::trim), backend) {
            (Some(""), _) => Err(self.err(entry, "live_migration_group is empty; name a group, or leave it out for cold MOVEs only")),
            (Some(_), NodeBackend::Libvirt { uri, .. }) if uri.starts_with("test:") => Err(self.err(
                entry,
                "libvirt's test driver cannot migrate; leave live_migration_group out on test:/// nodes",
            )),
            (Some(group), _) => Ok(Some(group.to_string())),
            (None, NodeBackend::Fake) => Ok(Some(FAKE_LIVE_MIGRATION_GROUP.to_string())),
            (None, NodeBackend::Libvirt { .. }) => Ok(None),
        }
    }

    /// A group's nodes use one driver, and no two libvirt nodes of a group
    /// reach the same daemon (a daemon cannot migrate a guest to itself).
    fn check_live_migration_groups(&self, nodes: &[NodeConfig]) -> Result<(), Error> {
        for (i, n) in nodes.iter().enumerate() {
            let Some(group) = &n.live_migration_group else { continue };
            for earlier in nodes[..i].iter().filter(|e| e.live_migration_group.as_ref() == Some(group)) {
                let entry = format!("compute_node {:?}", n.hostname);
                match (&earlier.backend, &n.backend) {
                    (NodeBackend::Libvirt { uri: a, .. }, NodeBackend::Libvirt { uri: b, .. }) if a == b => {
                        return Err(self.err(
                            entry,
                            format!(
                                "shares libvirt_uri {b:?} and live_migration_group {group:?} with {:?}; \
                                 a daemon cannot migrate to itself: give one of them another group",
                                earlier.hostname
                            ),
                        ));
                    }
                    (NodeBackend::Fake, NodeBackend::Libvirt { .. }) | (NodeBackend::Libvirt { .. }, NodeBackend::Fake) => {
                        return Err(self.err(
                            entry,
                            format!(
                                "is in live_migration_group {group:?} with {:?}, which uses another driver; \
                                 servers move live only between nodes of one driver",
                                earlier.hostname
                            ),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn driver(&self, d: RawDriver) -> Result<DriverConfig, Error> {
        if d.kind != "fake" {
            return Err(self.err(
                "driver",
                format!("kind {:?} is not supported; the only driver is \"fake\"", d.kind),
            ));
        }
        for action in d.action_delay_ms.keys() {
            self.action_name("driver.action_delay_ms", action)?;
        }
        for (list, rules) in [("fail", &d.fail), ("timeout", &d.timeout)] {
            for (i, rule) in rules.iter().enumerate() {
                let entry = format!("driver.{list}[{i}]");
                if let Some(action) = &rule.action {
                    self.action_name(&entry, action)?;
                }
                if rule.error.trim().is_empty() {
                    return Err(self.err(&entry, "error is empty; say what the injected failure reports"));
                }
                if let Some(id) = &rule.server_id
                    && normalize_uuid(id).is_none()
                {
                    return Err(self.err(&entry, format!("server_id {id:?} is not a UUID")));
                }
            }
        }
        let norm = |rules: Vec<FailRule>| -> Vec<FailRule> {
            rules
                .into_iter()
                .map(|mut r| {
                    r.server_id = r.server_id.as_deref().and_then(normalize_uuid);
                    r
                })
                .collect()
        };
        Ok(DriverConfig::Fake(FakeOptions {
            step_delay_ms: d.step_delay_ms.unwrap_or(DEFAULT_STEP_DELAY_MS),
            action_delay_ms: d.action_delay_ms,
            fail: norm(d.fail),
            timeout: norm(d.timeout),
        }))
    }

    fn action_name(&self, entry: &str, action: &str) -> Result<(), Error> {
        if ACTION_KINDS.contains(&action) {
            Ok(())
        } else {
            Err(self.err(
                entry,
                format!("unknown action {action:?}; use one of: {}", ACTION_KINDS.join(", ")),
            ))
        }
    }

    fn tags(&self, entry: &str, tags: &[String]) -> Result<(), Error> {
        if tags.len() > 50 {
            return Err(self.err(entry, "more than 50 tags"));
        }
        for t in tags {
            let n = t.chars().count();
            if n == 0 || n > 50 || t.contains('/') || t.contains(',') {
                return Err(self.err(entry, format!("tag {t:?} must have 1 to 50 characters and no '/' or ','")));
            }
        }
        Ok(())
    }
}

fn placement_entry(i: usize, name: &str) -> String {
    if name.is_empty() { format!("placement #{}", i + 1) } else { format!("placement {name:?}") }
}

fn resolve(by_key: &HashMap<String, String>, reference: &str) -> Option<String> {
    by_key
        .get(reference)
        .or_else(|| normalize_uuid(reference).and_then(|id| by_key.get(&id)))
        .cloned()
}

fn dedup(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

/// Lowercase hyphenated form of a UUID given hyphenated or as 32 hex digits.
pub(crate) fn normalize_uuid(s: &str) -> Option<String> {
    let ok = s.len() == 32 || (s.len() == 36 && s.as_bytes()[8] == b'-');
    if !ok {
        return None;
    }
    uuid::Uuid::parse_str(s).ok().map(|u| u.hyphenated().to_string())
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && !h.starts_with('-')
        && !h.ends_with('-')
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
