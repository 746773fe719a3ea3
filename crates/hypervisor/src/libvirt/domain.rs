//! The libvirt domain XML of a server, and the files it uses.
//!
//! A server is the domain `vnext-<server-id>` whose libvirt UUID is the
//! server id, so a domain is found from the id alone on any node. Its files
//! live in `<dir>/<server-id>/`: `root.qcow2` (the root disk, a
//! copy-on-write overlay of an image template or an empty disk for a kernel
//! template) and `console.log` (the serial console, appended across boots),
//! `rescue.qcow2` while the server is rescued (an overlay of the rescue
//! template, booted with the root disk as a second disk), and
//! `shelved.qcow2` once it is shelved (the root disk flattened, what
//! UNSHELVE starts from).

use crate::inventory::TemplateBoot;
use std::path::{Path, PathBuf};

/// The libvirt domain type a node runs guests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainKind {
    /// QEMU with KVM.
    Kvm,
    /// QEMU emulating the CPU (TCG).
    Qemu,
    /// libvirt's test driver (`test:///default`): no process, no files.
    Test,
}

impl DomainKind {
    fn as_str(self) -> &'static str {
        match self {
            DomainKind::Kvm => "kvm",
            DomainKind::Qemu => "qemu",
            DomainKind::Test => "test",
        }
    }
}

/// The domain name of a server.
pub fn domain_name(server_id: &str) -> String {
    format!("vnext-{server_id}")
}

/// The files of one server.
#[derive(Debug, Clone)]
pub struct ServerFiles {
    pub dir: PathBuf,
}

impl ServerFiles {
    pub fn new(base: &Path, server_id: &str) -> Self {
        ServerFiles { dir: base.join(server_id) }
    }

    pub fn root_disk(&self) -> PathBuf {
        self.dir.join("root.qcow2")
    }

    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// The swap disk, when the server's type gives `swap_mb`.
    pub fn swap_disk(&self) -> PathBuf {
        self.dir.join("swap.qcow2")
    }

    pub fn rescue_disk(&self) -> PathBuf {
        self.dir.join("rescue.qcow2")
    }

    pub fn shelved_disk(&self) -> PathBuf {
        self.dir.join("shelved.qcow2")
    }

    /// The config drive: an ISO 9660 image labelled `config-2` holding
    /// `openstack/latest/meta_data.json` and `user_data`, as Nova's.
    pub fn config_drive(&self) -> PathBuf {
        self.dir.join("config.iso")
    }
}

/// What a domain is made of.
#[derive(Debug, Clone)]
pub struct DomainSpec<'a> {
    pub server_id: &'a str,
    pub hostname: &'a str,
    pub kind: DomainKind,
    pub memory_mb: u64,
    pub vcpus: u32,
    pub boot: &'a TemplateBoot,
    pub files: &'a ServerFiles,
    /// Rescue mode: `boot` is the rescue template, its disk `rescue.qcow2`
    /// is `vda` and the server's own root disk is `vdb` (volumes are left out).
    pub rescue: bool,
    /// Attached volumes: (file, target device such as `vdc`).
    pub volumes: &'a [(PathBuf, String)],
    /// Give the guest a qemu-guest-agent channel (UPDATE_PASSWORD).
    pub agent: bool,
    /// Network interfaces: (MAC address, where it plugs in).
    pub nics: &'a [(String, NicSource)],
    /// Attach the config drive (`config.iso`) as `vdz`, read-only.
    pub config_drive: bool,
    /// A SPICE display beside the VNC one (QEMU's SPICE module needed).
    pub spice: bool,
    /// Attach the swap disk (`swap.qcow2`) as `vdy`.
    pub swap: bool,
}

/// The device the swap disk takes.
pub const SWAP_DEVICE: &str = "vdy";

/// Where a network interface plugs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicSource {
    /// A libvirt network of the node's daemon.
    Network(String),
    /// QEMU user-mode networking.
    User,
}

/// The device a config drive takes (volumes get `vdb` to `vdx`).
pub const CONFIG_DRIVE_DEVICE: &str = "vdz";

/// The `<interface>` element of a virtio NIC.
pub fn nic_xml(mac: &str, source: &NicSource) -> String {
    let (kind, source) = match source {
        NicSource::Network(name) => ("network", format!("      <source network='{}'/>\n", esc(name))),
        NicSource::User => ("user", String::new()),
    };
    format!("    <interface type='{kind}'>\n      <mac address='{}'/>\n{source}      <model type='virtio'/>\n    </interface>\n", esc(mac))
}

/// The `<disk>` element of a qcow2 file as virtio device `dev` (`vda`).
pub fn disk_xml(file: &Path, dev: &str) -> String {
    serial_disk_xml(file, dev, None)
}

/// [`disk_xml`] with a serial the guest reads in
/// `/sys/block/vdX/serial`: virtio disks are named in the guest in probe
/// order, not by their target, so the serial is how a guest finds a given
/// disk (a volume by its id, the swap disk). virtio keeps 20 bytes of it.
pub fn serial_disk_xml(file: &Path, dev: &str, serial: Option<&str>) -> String {
    let serial = serial.map(|s| format!("      <serial>{}</serial>\n", esc(&s.chars().take(20).collect::<String>()))).unwrap_or_default();
    format!(
        "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='{}'/>\n      \
         <target dev='{}' bus='virtio'/>\n{serial}    </disk>\n",
        path(file),
        esc(dev)
    )
}

/// The serial of the swap disk.
pub const SWAP_SERIAL: &str = "vnext-swap";

/// Escapes text for an XML attribute or element.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;").replace('"', "&quot;")
}

fn path(p: &Path) -> String {
    esc(&p.to_string_lossy())
}

/// The domain XML. QEMU domains boot the template (direct kernel boot, or
/// the root disk), log the serial console to a file, answer the ACPI power
/// button (`<acpi/>`) and offer a VNC display on the loopback; a guest that
/// powers itself off leaves the domain defined and shut off. Test domains
/// are the bare minimum libvirt's test driver accepts.
pub fn domain_xml(d: &DomainSpec) -> String {
    let name = domain_name(d.server_id);
    let head = format!(
        "<domain type='{}'>\n  <name>{}</name>\n  <uuid>{}</uuid>\n  <memory unit='MiB'>{}</memory>\n  <vcpu>{}</vcpu>\n",
        d.kind.as_str(),
        esc(&name),
        esc(d.server_id),
        d.memory_mb.max(1),
        d.vcpus.max(1)
    );
    if d.kind == DomainKind::Test {
        return format!("{head}  <os><type>hvm</type></os>\n</domain>\n");
    }
    let os = match d.boot {
        TemplateBoot::Kernel { kernel, initrd, cmdline, .. } => {
            let initrd = initrd.as_ref().map(|p| format!("\n    <initrd>{}</initrd>", path(p))).unwrap_or_default();
            format!(
                "    <kernel>{}</kernel>{initrd}\n    <cmdline>{} vnext.hostname={}</cmdline>\n",
                path(kernel),
                esc(cmdline),
                esc(d.hostname)
            )
        }
        TemplateBoot::Image { .. } => "    <boot dev='hd'/>\n".to_string(),
    };
    let mut disks = if d.rescue {
        disk_xml(&d.files.rescue_disk(), "vda") + &disk_xml(&d.files.root_disk(), "vdb")
    } else {
        disk_xml(&d.files.root_disk(), "vda")
    };
    // A rescued guest boots with its root disk as vdb; volumes come back
    // with UNRESCUE (Nova keeps them attached; this driver does not yet).
    for (file, dev) in d.volumes.iter().filter(|_| !d.rescue) {
        let serial = file.file_stem().and_then(|s| s.to_str());
        disks.push_str(&serial_disk_xml(file, dev, serial));
    }
    if d.swap {
        disks.push_str(&serial_disk_xml(&d.files.swap_disk(), SWAP_DEVICE, Some(SWAP_SERIAL)));
    }
    if d.config_drive {
        disks.push_str(&format!(
            "    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source file='{}'/>\n      \
             <target dev='{CONFIG_DRIVE_DEVICE}' bus='virtio'/>\n      <readonly/>\n    </disk>\n",
            path(&d.files.config_drive())
        ));
    }
    for (mac, source) in d.nics {
        disks.push_str(&nic_xml(mac, source));
    }
    let agent = if d.agent {
        "    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n    </channel>\n"
    } else {
        ""
    };
    format!(
        "{head}  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n{os}  </os>\n  <features><acpi/></features>\n  \
         <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n\
         {disks}{agent}    <serial type='file'>\n      <source path='{console}' append='on'/>\n      \
         <target port='0'/>\n    </serial>\n    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>\n{spice}  </devices>\n</domain>\n",
        spice = if d.spice { "    <graphics type='spice' autoport='yes' listen='127.0.0.1'/>\n" } else { "" },
        console = path(&d.files.console_log()),
    )
}

/// A display (VNC or SPICE) of a running domain, from its live XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VncDisplay {
    /// The address QEMU listens on (`127.0.0.1` when none is given).
    pub listen: String,
    /// `None` while the domain is shut off (libvirt says `port='-1'`).
    pub port: Option<u16>,
}

impl VncDisplay {
    /// `host:port` to connect to: a wildcard listen address is reached on
    /// the loopback.
    pub fn address(&self) -> String {
        let host = match self.listen.as_str() {
            "" | "0.0.0.0" => "127.0.0.1",
            "::" => "::1",
            h => h,
        };
        let port = self.port.unwrap_or(0);
        if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
    }
}

/// The first `<graphics type='vnc' ...>` element of a domain XML, if any.
pub fn vnc_display(xml: &str) -> Option<VncDisplay> {
    display(xml, "vnc")
}

/// The first `<graphics type='<kind>' ...>` element of a domain XML, if
/// any. A small attribute scanner, not an XML parser: libvirt writes this
/// element in one known shape (`<graphics type='vnc' port='5900'
/// autoport='yes' listen='127.0.0.1'>`), and the crate has no XML
/// dependency.
pub fn display(xml: &str, kind: &str) -> Option<VncDisplay> {
    let mut rest = xml;
    while let Some(at) = rest.find("<graphics") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at + "<graphics".len()..tag_end];
        rest = &rest[tag_end..];
        if attribute(tag, "type").as_deref() != Some(kind) {
            continue;
        }
        let port = attribute(tag, "port").and_then(|p| p.parse::<i32>().ok()).filter(|p| *p > 0).and_then(|p| u16::try_from(p).ok());
        let listen = attribute(tag, "listen").unwrap_or_default();
        return Some(VncDisplay { listen, port });
    }
    None
}

/// The value of `name='...'` or `name="..."` in the inside of a start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    loop {
        let at = rest.find(name)?;
        let before_ok = at == 0 || rest.as_bytes()[at - 1].is_ascii_whitespace();
        let after = rest[at + name.len()..].trim_start();
        rest = &rest[at + name.len()..];
        if !before_ok {
            continue;
        }
        let Some(value) = after.strip_prefix('=') else { continue };
        let value = value.trim_start();
        let quote = value.chars().next().filter(|q| *q == '\'' || *q == '"')?;
        let inner = &value[1..];
        let end = inner.find(quote)?;
        return Some(inner[..end].replace("&apos;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> TemplateBoot {
        TemplateBoot::Kernel { kernel: "/t/vmlinuz".into(), initrd: Some("/t/initrd & co".into()), cmdline: "console=ttyS0".into(), disk: None }
    }

    #[test]
    fn qemu_domains_boot_the_template_with_the_hostname_and_log_the_console() {
        let files = ServerFiles::new(Path::new("/srv/vnext"), "s-1");
        let boot = kernel();
        let xml = domain_xml(&DomainSpec { server_id: "s-1", hostname: "web-1", kind: DomainKind::Qemu, memory_mb: 128, vcpus: 2, boot: &boot, files: &files, rescue: false, volumes: &[], agent: true, nics: &[], config_drive: false, spice: false, swap: false });
        for want in [
            "<domain type='qemu'>", "<name>vnext-s-1</name>", "<uuid>s-1</uuid>", "<memory unit='MiB'>128</memory>",
            "<vcpu>2</vcpu>", "<kernel>/t/vmlinuz</kernel>", "<initrd>/t/initrd &amp; co</initrd>",
            "<cmdline>console=ttyS0 vnext.hostname=web-1</cmdline>", "<acpi/>", "/srv/vnext/s-1/root.qcow2",
            "<source path='/srv/vnext/s-1/console.log' append='on'/>", "<graphics type='vnc'", "org.qemu.guest_agent.0",
        ] {
            assert!(xml.contains(want), "{want} not in\n{xml}");
        }
    }

    #[test]
    fn the_vnc_port_is_read_from_live_xml() {
        let live = "<domain type='kvm' id='3'>\n  <devices>\n    <graphics type='spice' port='5901' autoport='yes'/>\n    \
                    <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1'>\n      \
                    <listen type='address' address='127.0.0.1'/>\n    </graphics>\n  </devices>\n</domain>";
        let d = vnc_display(live).unwrap();
        assert_eq!((d.port, d.address()), (Some(5900), "127.0.0.1:5900".to_string()));
        let off = "<graphics type=\"vnc\" port=\"-1\" autoport=\"yes\" listen=\"0.0.0.0\"/>";
        assert_eq!(vnc_display(off), Some(VncDisplay { listen: "0.0.0.0".into(), port: None }));
        assert_eq!(VncDisplay { listen: "::".into(), port: Some(5901) }.address(), "[::1]:5901");
        assert_eq!(vnc_display("<domain><devices/></domain>"), None);
        // The domain XML this module writes has one.
        let files = ServerFiles::new(Path::new("/d"), "s");
        let image = TemplateBoot::Image { path: "/i.qcow2".into() };
        let xml = domain_xml(&DomainSpec { server_id: "s", hostname: "h", kind: DomainKind::Qemu, memory_mb: 64, vcpus: 1, boot: &image, files: &files, rescue: false, volumes: &[], agent: true, nics: &[], config_drive: false, spice: false, swap: false });
        assert_eq!(vnc_display(&xml).map(|d| d.listen), Some("127.0.0.1".to_string()));
    }

    #[test]
    fn image_templates_boot_the_disk_and_test_domains_are_bare() {
        let files = ServerFiles::new(Path::new("/d"), "s");
        let image = TemplateBoot::Image { path: "/i.qcow2".into() };
        let xml = domain_xml(&DomainSpec { server_id: "s", hostname: "h", kind: DomainKind::Kvm, memory_mb: 64, vcpus: 1, boot: &image, files: &files, rescue: false, volumes: &[], agent: true, nics: &[], config_drive: false, spice: false, swap: false });
        assert!(xml.contains("<boot dev='hd'/>") && !xml.contains("<kernel>") && xml.contains("type='kvm'"), "{xml}");
        let xml = domain_xml(&DomainSpec { server_id: "s", hostname: "h", kind: DomainKind::Test, memory_mb: 64, vcpus: 1, boot: &image, files: &files, rescue: false, volumes: &[], agent: true, nics: &[], config_drive: false, spice: false, swap: false });
        assert!(xml.starts_with("<domain type='test'>") && !xml.contains("<devices>"), "{xml}");
    }

    #[test]
    fn a_rescued_domain_boots_the_rescue_disk_with_the_root_disk_second() {
        let files = ServerFiles::new(Path::new("/d"), "s");
        let boot = kernel();
        let xml = domain_xml(&DomainSpec { server_id: "s", hostname: "h", kind: DomainKind::Qemu, memory_mb: 64, vcpus: 1, boot: &boot, files: &files, rescue: true, volumes: &[], agent: false, nics: &[], config_drive: false, spice: false, swap: false });
        let rescue = xml.find("/d/s/rescue.qcow2").expect("rescue disk");
        let root = xml.find("/d/s/root.qcow2").expect("root disk");
        assert!(rescue < root && xml.contains("<target dev='vdb'"), "{xml}");
    }

    #[test]
    fn nics_and_the_config_drive_are_devices_of_the_domain() {
        let files = ServerFiles::new(Path::new("/d"), "s");
        let boot = kernel();
        let nics = [("52:54:00:00:00:01".to_string(), NicSource::Network("default".into())), ("52:54:00:00:00:02".to_string(), NicSource::User)];
        let xml = domain_xml(&DomainSpec { server_id: "s", hostname: "h", kind: DomainKind::Qemu, memory_mb: 64, vcpus: 1, boot: &boot, files: &files, rescue: false, volumes: &[], agent: true, nics: &nics, config_drive: true, spice: true, swap: true });
        for want in ["<interface type='network'>", "<source network='default'/>", "<mac address='52:54:00:00:00:01'/>", "<interface type='user'>", "/d/s/config.iso", "<target dev='vdz'", "<readonly/>", "<graphics type='spice'", "/d/s/swap.qcow2", "<target dev='vdy'", "<serial>vnext-swap</serial>"] {
            assert!(xml.contains(want), "{want} not in\n{xml}");
        }
    }
}
