//! KVM or TCG, per node.
//!
//! `/dev/kvm` being there does not mean KVM guests run: on some machines a
//! KVM domain starts and then never executes a guest instruction, or QEMU
//! refuses the host CPU model. So a node with `accel = "auto"` boots a probe
//! guest with KVM when the adapter starts (the first kernel template of the
//! catalogue, no initrd: the kernel prints its banner on the serial console
//! within a fraction of a second, then panics, which is fine) and uses KVM
//! only when the banner shows up within [`PROBE_TIMEOUT`]; TCG otherwise.
//! The decision is printed once per node. `accel = "kvm"` or `"tcg"` in the
//! inventory skips the probe.

/// Name prefix of the probe guests (their domains are not servers).
pub const PROBE_PREFIX: &str = "vnext-kvm-probe-";

use super::domain::DomainKind;
use crate::inventory::Accel;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use virt::connect::Connect;
use virt::domain::Domain;

/// How long a KVM probe guest has to print the kernel banner.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// A node's acceleration: configured, or decided by the probe once.
pub struct AccelChoice {
    configured: Accel,
    uri: String,
    hostname: String,
    kernel: Option<PathBuf>,
    dir: PathBuf,
    decided: Arc<tokio::sync::OnceCell<DomainKind>>,
}

impl AccelChoice {
    pub fn new(configured: Accel, uri: &str, hostname: &str, kernel: Option<PathBuf>, dir: PathBuf) -> Self {
        AccelChoice {
            configured,
            uri: uri.to_string(),
            hostname: hostname.to_string(),
            kernel,
            dir,
            decided: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Starts the probe in the background (for `auto` on a QEMU node).
    pub fn start_probe(&self) {
        if self.configured != Accel::Auto || self.uri.starts_with("test:") {
            return;
        }
        let me = self.detached();
        tokio::spawn(async move {
            me.decided().await;
        });
    }

    fn detached(&self) -> AccelChoice {
        AccelChoice {
            configured: self.configured,
            uri: self.uri.clone(),
            hostname: self.hostname.clone(),
            kernel: self.kernel.clone(),
            dir: self.dir.clone(),
            decided: self.decided.clone(),
        }
    }

    /// The domain type guests of this node get (waits for the probe).
    pub async fn decided(&self) -> DomainKind {
        match self.configured {
            Accel::Kvm => DomainKind::Kvm,
            Accel::Tcg => DomainKind::Qemu,
            Accel::Auto => *self.decided.get_or_init(|| self.probe()).await,
        }
    }

    async fn probe(&self) -> DomainKind {
        let (uri, hostname, kernel, dir) = (self.uri.clone(), self.hostname.clone(), self.kernel.clone(), self.dir.clone());
        let result = tokio::task::spawn_blocking(move || probe_kvm(&uri, &hostname, kernel, &dir))
            .await
            .unwrap_or_else(|e| Err(format!("the probe failed: {e}")));
        let (kind, why) = match result {
            Ok(elapsed) => (DomainKind::Kvm, format!("a KVM guest printed its banner after {} ms", elapsed.as_millis())),
            Err(why) => (DomainKind::Qemu, why),
        };
        let name = if kind == DomainKind::Kvm { "KVM" } else { "TCG (emulation)" };
        eprintln!("vnext-hypervisor: libvirt node {} ({}) runs guests with {name}: {why}", self.hostname, self.uri);
        kind
    }
}

/// Boots the probe guest; the time its banner took, or why KVM is not used.
fn probe_kvm(uri: &str, hostname: &str, kernel: Option<PathBuf>, dir: &std::path::Path) -> Result<Duration, String> {
    let local = uri.starts_with("qemu:///");
    if local && !std::path::Path::new("/dev/kvm").exists() {
        return Err("there is no /dev/kvm".into());
    }
    let kernel = kernel.ok_or("no kernel template in the catalogue to probe with")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log = dir.join(format!("kvm-probe-{hostname}.log"));
    let _ = std::fs::remove_file(&log);
    let name = format!("{PROBE_PREFIX}{hostname}");
    let xml = format!(
        "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel><cmdline>console=ttyS0 panic=0</cmdline></os>\
         <on_crash>destroy</on_crash><devices><serial type='file'><source path='{}'/><target port='0'/></serial></devices></domain>",
        kernel.display(),
        log.display()
    );
    let mut conn = Connect::open(Some(uri)).map_err(|e| format!("cannot connect to {uri}: {}", e.message()))?;
    if let Ok(old) = Domain::lookup_by_name(&conn, &name) {
        let _ = old.destroy();
    }
    let started = Instant::now();
    let result = match Domain::create_xml(&conn, &xml, 0) {
        Err(e) => Err(format!("a KVM guest does not start: {}", e.message())),
        Ok(dom) => {
            let seen = loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Linux version") {
                    break Some(started.elapsed());
                }
                if started.elapsed() > PROBE_TIMEOUT {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            let _ = dom.destroy();
            seen.ok_or_else(|| format!("a KVM guest printed nothing in {} s", PROBE_TIMEOUT.as_secs()))
        }
    };
    let _ = conn.close();
    let _ = std::fs::remove_file(&log);
    result
}
