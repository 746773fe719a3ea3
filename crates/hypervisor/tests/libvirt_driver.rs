//! The libvirt driver against libvirt's own test driver (`test:///default`,
//! in process, no daemon): every action it offers, with the domain's state
//! checked through libvirt itself; what it does not offer ends ABORTED with
//! a message; reads; a mixed inventory of fake and libvirt nodes.

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::Arc;
use vnext_core::hypervisor::{Action, ConsoleType, HypervisorError, Operation, PowerState, SpawnArgs};
use vnext_hypervisor::drivers::DriverKind;
use vnext_hypervisor::inventory::{Accel, NodeBackend, TemplateBoot};
use vnext_hypervisor::{Driver, FakeDriver, Inventory, LibvirtDriver, NodeDrivers, StepError, StepRequest};
use virt::connect::Connect;
use virt::domain::Domain;

const TEMPLATE: &str = "0c9e5b8a-2f4d-4e1a-9b3c-7d6e5f4a3b21";
const NODE_LV: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const NODE_FAKE: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const NODE_LV2: &str = "bbbbbbbb-0000-4000-8000-000000000003";

fn inventory_text() -> String {
    format!(
        r#"
[[placement]]
id = "{ROOT}"
name = "root"

[[compute_node]]
id = "{NODE_LV}"
hostname = "lv-1"
placements = ["root"]
memory_mb = 8192
cpu_units = 4
disk_gb = 100
driver = "libvirt"
libvirt_uri = "test:///default"

[[compute_node]]
id = "{NODE_LV2}"
hostname = "lv-2"
placements = ["root"]
memory_mb = 8192
cpu_units = 4
disk_gb = 100
driver = "libvirt"
libvirt_uri = "test:///default"
libvirt_network = "default"

[[compute_node]]
id = "{NODE_FAKE}"
hostname = "fake-1"
placements = ["root"]
memory_mb = 8192
cpu_units = 4
disk_gb = 100

[[template]]
id = "{TEMPLATE}"
name = "tiny"
kernel = "templates/vmlinuz"
initrd = "templates/initramfs.gz"
min_memory_mb = 64

[libvirt]
shutdown_timeout_ms = 2000

[driver]
kind = "fake"
step_delay_ms = 0
"#
    )
}

fn inventory() -> Inventory {
    Inventory::parse(&inventory_text(), "/etc/vnext/inventory.toml").unwrap()
}

struct Harness {
    driver: LibvirtDriver,
    inventory: Inventory,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let inventory = inventory();
        let dir = tempfile::tempdir().unwrap();
        let driver = LibvirtDriver::new(&inventory, dir.path().to_path_buf());
        Harness { driver, inventory, _dir: dir }
    }

    async fn run(&self, op: &Operation) -> Result<Option<vnext_core::events::ServerRuntime>, StepError> {
        self.run_on(op, NODE_LV).await
    }

    /// Runs every step as the adapter would with `node` as the node the
    /// operation targets.
    async fn run_on(&self, op: &Operation, node: &str) -> Result<Option<vnext_core::events::ServerRuntime>, StepError> {
        let node = self.inventory.node(node).unwrap();
        let mut last = None;
        for (i, step) in op.steps.iter().enumerate() {
            last = self.driver.run_step(StepRequest { op, step_index: i, step, node: Some(node) }).await?;
        }
        Ok(last)
    }

    async fn spawn(&self, hostname: &str) -> String {
        let server = id();
        let rt = self.run(&spawn_with(&server, hostname, Some(TEMPLATE))).await.unwrap().unwrap();
        assert_eq!(rt.power_state, PowerState::Running);
        assert_eq!(rt.compute_node_hostname.as_deref(), Some("lv-1"));
        server
    }
}

fn spawn_with(server: &str, hostname: &str, template: Option<&str>) -> Operation {
    let mut op = spawn_op(server, hostname, spec(128, 1, 1), &[]);
    if let Action::Spawn(SpawnArgs { template_id, .. }) = &mut op.action {
        *template_id = template.map(str::to_string);
    }
    op
}

/// The domain's state as libvirt itself reports it (`None`: no such domain).
fn libvirt_state(server: &str) -> Option<(u32, bool)> {
    let mut conn = Connect::open(Some("test:///default")).unwrap();
    let state = Domain::lookup_by_name(&conn, &format!("vnext-{server}"))
        .ok()
        .map(|d| (d.get_state().unwrap().0, d.has_managed_save(0).unwrap_or(false)));
    conn.close().unwrap();
    state
}

#[test]
fn libvirt_nodes_and_templates_are_read_from_the_inventory() {
    let inv = inventory();
    assert_eq!(inv.node(NODE_LV).unwrap().backend, NodeBackend::Libvirt { uri: "test:///default".into(), accel: Accel::Auto, network: None });
    assert_eq!(inv.node(NODE_FAKE).unwrap().backend, NodeBackend::Fake);
    let t = inv.template(TEMPLATE).unwrap();
    assert_eq!(t.name, "tiny");
    match &t.boot {
        TemplateBoot::Kernel { kernel, initrd, cmdline, .. } => {
            assert_eq!(kernel, std::path::Path::new("/etc/vnext/templates/vmlinuz"), "relative to the inventory file");
            assert_eq!(initrd.as_deref(), Some(std::path::Path::new("/etc/vnext/templates/initramfs.gz")));
            assert_eq!(cmdline, "console=ttyS0");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(inv.libvirt.shutdown_timeout_ms, 2000);
    // Paths come out absolute even from a relative inventory path: libvirtd
    // resolves relative paths from its own working directory.
    let relative = Inventory::parse(&inventory_text(), "deploy/inventory.toml").unwrap();
    let TemplateBoot::Kernel { kernel, .. } = &relative.template(TEMPLATE).unwrap().boot else { panic!() };
    assert!(kernel.is_absolute() && kernel.ends_with("deploy/templates/vmlinuz"), "{}", kernel.display());
    for (bad, says) in [
        (inventory_text().replace("libvirt_uri = \"test:///default\"\n", ""), "needs libvirt_uri"),
        (inventory_text().replace("driver = \"libvirt\"", "driver = \"xen\""), "is not a driver"),
        (inventory_text().replace("kernel = \"templates/vmlinuz\"\n", ""), "give kernel"),
        (inventory_text().replace("kernel = \"templates/vmlinuz\"", "image = \"x.qcow2\""), "go with kernel"),
    ] {
        let e = Inventory::parse(&bad, "inv.toml").unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
    // A kernel with an image: the kernel boots, the image is the root disk.
    let both = Inventory::parse(&inventory_text().replace("min_memory_mb = 64", "image = \"x.qcow2\""), "/i/inv.toml").unwrap();
    let t = both.template(TEMPLATE).unwrap();
    assert!(matches!(&t.boot, TemplateBoot::Kernel { .. }) && t.disk() == Some(std::path::Path::new("/i/x.qcow2")), "{t:?}");
}

#[tokio::test]
async fn every_action_it_offers_changes_the_domain_as_libvirt_reports_it() {
    let h = Harness::new();
    let s = h.spawn("web-1").await;
    assert_eq!(libvirt_state(&s), Some((virt::sys::VIR_DOMAIN_RUNNING, false)));
    let step = |a: Action, name: &str| op(&s, a, &[name]);
    // (action, step, libvirt state after, managed save, power state reported)
    let table = [
        (Action::Reboot, "REBOOTING", virt::sys::VIR_DOMAIN_RUNNING, false, PowerState::Running),
        (Action::PowerOff, "POWERING_OFF", virt::sys::VIR_DOMAIN_SHUTOFF, false, PowerState::Shutdown),
        (Action::PowerOn, "POWERING_ON", virt::sys::VIR_DOMAIN_RUNNING, false, PowerState::Running),
        (Action::Pause, "PAUSING", virt::sys::VIR_DOMAIN_PAUSED, false, PowerState::Paused),
        (Action::Unpause, "UNPAUSING", virt::sys::VIR_DOMAIN_RUNNING, false, PowerState::Running),
        (Action::Suspend, "SUSPENDING", virt::sys::VIR_DOMAIN_SHUTOFF, true, PowerState::Suspended),
        (Action::Resume, "RESUMING", virt::sys::VIR_DOMAIN_RUNNING, false, PowerState::Running),
        (Action::HardReboot, "REBOOTING", virt::sys::VIR_DOMAIN_RUNNING, false, PowerState::Running),
    ];
    for (action, name, state, saved, power) in table {
        let what = format!("{action:?}");
        let rt = h.run(&step(action, name)).await.unwrap_or_else(|e| panic!("{what}: {e:?}")).expect("a runtime");
        assert_eq!(rt.power_state, power, "{what}");
        assert_eq!(libvirt_state(&s), Some((state, saved)), "{what}");
        assert_eq!(h.driver.server_state(&s).await.unwrap().power_state, power, "{what}");
    }
    // TERMINATE undefines the domain (its disk would stay); RESTORE defines it again.
    let rt = h.run(&step(Action::Terminate, "TERMINATING")).await.unwrap().unwrap();
    assert_eq!((rt.power_state, rt.compute_node_id), (PowerState::Shutdown, None));
    assert_eq!(libvirt_state(&s), None, "terminated: no domain");
    h.run(&step(Action::Restore, "RESTORING")).await.unwrap();
    assert_eq!(libvirt_state(&s), Some((virt::sys::VIR_DOMAIN_RUNNING, false)));
    // Forgetting removes it for good.
    h.driver.forget(&s).await;
    assert_eq!(libvirt_state(&s), None);
    assert!(matches!(h.driver.server_state(&s).await, Err(HypervisorError::UnknownServer(_))));
}

/// The domain's memory (MiB) and vCPUs as libvirt has them defined.
fn libvirt_size(server: &str) -> (u64, u32) {
    let mut conn = Connect::open(Some("test:///default")).unwrap();
    let info = Domain::lookup_by_name(&conn, &format!("vnext-{server}")).unwrap().get_info().unwrap();
    conn.close().unwrap();
    (info.max_mem / 1024, info.nr_virt_cpu)
}

#[tokio::test]
async fn resize_redefines_the_domain_and_keeps_a_stopped_server_stopped() {
    let h = Harness::new();
    let s = h.spawn("big-1").await;
    assert_eq!(libvirt_size(&s), (128, 1));
    let resize = |memory| op(&s, Action::Resize(spec(memory, 2, 2)), &["PREPARING", "MIGRATING", "FINALIZING"]);
    let rt = h.run(&resize(256)).await.unwrap().unwrap();
    assert_eq!(rt.power_state, PowerState::Running, "it ran before, it runs after");
    assert_eq!(libvirt_size(&s), (256, 2));
    h.run(&op(&s, Action::PowerOff, &["POWERING_OFF"])).await.unwrap();
    let rt = h.run(&resize(512)).await.unwrap().unwrap();
    assert_eq!(rt.power_state, PowerState::Shutdown, "stopped before, stopped after");
    assert_eq!(libvirt_size(&s), (512, 2));
    // REBUILD boots it again, from the (known) template.
    let rebuild = |t: &str| op(&s, Action::Rebuild(t.into()), &["REBUILDING", "REBUILDING_BLOCK_DEVICES", "SPAWNING"]);
    let rt = h.run(&rebuild(TEMPLATE)).await.unwrap().unwrap();
    assert_eq!(rt.power_state, PowerState::Running);
    let e = h.run(&rebuild("9d9d9d9d-0000-4000-8000-000000000000")).await.unwrap_err();
    assert!(e.message().contains("not in this deployment's catalogue"), "{e:?}");
    assert_eq!(libvirt_state(&s).map(|s| s.0), Some(virt::sys::VIR_DOMAIN_RUNNING), "an unknown template changes nothing");
}

#[tokio::test]
async fn what_a_libvirt_node_cannot_do_aborts_with_a_message() {
    let h = Harness::new();
    let s = h.spawn("web-2").await;
    let nic = vnext_core::hypervisor::NetworkInterfaceArgs { network_id: None, mac: Some("52:54:00:12:34:56".into()) };
    let e = h.run(&op(&s, Action::AttachNetworkInterface(nic), &["ATTACHING_NETWORK_INTERFACE"])).await.unwrap_err();
    assert!(matches!(&e, StepError::Aborted(m) if m.contains("node lv-1 has no network for interfaces")), "{e:?}");
    assert_eq!(libvirt_state(&s), Some((virt::sys::VIR_DOMAIN_RUNNING, false)), "nothing changed");
    let e = h.run(&spawn_with(&id(), "web-3", None)).await.unwrap_err();
    assert!(e.message().contains("need a template_id"), "{e:?}");
    let e = h.run(&spawn_with(&id(), "web-4", Some("9d9d9d9d-0000-4000-8000-000000000000"))).await.unwrap_err();
    assert!(e.message().contains("not in this deployment's catalogue"), "{e:?}");
    let mut small = spawn_with(&id(), "web-5", Some(TEMPLATE));
    if let Action::Spawn(a) = &mut small.action {
        a.spec.memory_mb = 32;
    }
    let e = h.run(&small).await.unwrap_err();
    assert!(e.message().contains("needs at least 64 MB"), "{e:?}");
}

#[tokio::test]
async fn reads_come_from_libvirt() {
    let h = Harness::new();
    let s = h.spawn("web-6").await;
    let d = h.driver.diagnostics(&s).await.unwrap();
    assert_eq!(d.memory_total_mb, 128);
    assert_eq!(h.driver.console_log(&s, 10).await.unwrap(), "", "the test driver has no serial console");
    assert_eq!(h.inventory.node(NODE_LV).unwrap().console_types, [ConsoleType::Novnc, ConsoleType::Xvpvnc], "libvirt nodes serve VNC by default");
    match h.driver.console_uri(&s, ConsoleType::Novnc).await {
        Err(HypervisorError::Unsupported(m)) => assert!(m.contains("test driver") && m.contains("no display"), "{m}"),
        other => panic!("a test:///default domain has no display: {other:?}"),
    }
    match h.driver.console_uri(&s, ConsoleType::Spice).await {
        Err(HypervisorError::Unsupported(m)) => assert!(m.contains("does not serve spice"), "{m}"),
        other => panic!("spice is not a libvirt node's console: {other:?}"),
    }
    assert!(matches!(h.driver.diagnostics(&id()).await, Err(HypervisorError::UnknownServer(_))));
    // The journal record brings a server back after a restart.
    let record = h.driver.export_server(&s).unwrap();
    let again = LibvirtDriver::new(&h.inventory, h._dir.path().to_path_buf());
    again.import_server(&s, record).unwrap();
    assert_eq!(again.server_state(&s).await.unwrap().power_state, PowerState::Running);
}

#[tokio::test]
async fn a_mixed_inventory_runs_each_server_on_its_nodes_driver() {
    let inv = inventory();
    let dir = tempfile::tempdir().unwrap();
    let mut drivers: HashMap<DriverKind, Arc<dyn Driver>> = HashMap::new();
    drivers.insert(DriverKind::Libvirt, Arc::new(LibvirtDriver::new(&inv, dir.path().to_path_buf())));
    let fake = inv.driver.clone();
    let vnext_hypervisor::inventory::DriverConfig::Fake(options) = fake;
    drivers.insert(DriverKind::Fake, Arc::new(FakeDriver::new(options, inv.nodes.clone())));
    let nd = NodeDrivers::new(&inv, drivers);
    let run = |op: Operation, node: &'static str| {
        let inv = &inv;
        let nd = &nd;
        async move {
            let mut last = None;
            for (i, step) in op.steps.iter().enumerate() {
                last = nd.run_step(StepRequest { op: &op, step_index: i, step, node: Some(inv.node(node).unwrap()) }).await?;
            }
            Ok::<_, StepError>(last)
        }
    };
    let (on_lv, on_fake) = (id(), id());
    run(spawn_with(&on_lv, "lv-vm", Some(TEMPLATE)), NODE_LV).await.unwrap();
    run(spawn_with(&on_fake, "fake-vm", None), NODE_FAKE).await.unwrap();
    assert_eq!(libvirt_state(&on_lv).map(|s| s.0), Some(virt::sys::VIR_DOMAIN_RUNNING));
    assert_eq!(libvirt_state(&on_fake), None, "the fake node's server is no domain");
    assert!(nd.console_log(&on_fake, 5).await.unwrap().contains("fake-vm"), "the fake driver's console");
    assert_eq!(nd.server_state(&on_lv).await.unwrap().compute_node_hostname.as_deref(), Some("lv-1"));
    // No MOVE across drivers.
    let mv = op(&on_lv, Action::Move(vnext_core::hypervisor::MoveArgs { candidate_node_ids: vec![], live: false }), &["PREPARING"]);
    let e = run(mv, NODE_FAKE).await.unwrap_err();
    assert!(e.message().contains("cannot go to fake-1"), "{e:?}");
    // Journal records name the driver.
    let record = nd.export_server(&on_lv).unwrap();
    assert_eq!(record["driver"], "libvirt");
    nd.forget(&on_lv).await;
    assert_eq!(libvirt_state(&on_lv), None);
}

/// The domain's definition as libvirt has it.
fn libvirt_xml(server: &str) -> String {
    let mut conn = Connect::open(Some("test:///default")).unwrap();
    let xml = Domain::lookup_by_name(&conn, &format!("vnext-{server}")).unwrap().get_xml_desc(0).unwrap();
    conn.close().unwrap();
    xml
}

#[tokio::test]
async fn a_snapshot_is_a_template_a_later_launch_boots_and_a_restart_remembers() {
    let h = Harness::new();
    let s = h.spawn("snap-src").await;
    let snap = op(&s, Action::Snapshot("golden".into()), &["SNAPSHOTTING", "UPLOADING"]);
    let rt = h.run(&snap).await.unwrap().unwrap();
    assert_eq!(rt.power_state, PowerState::Running, "the guest runs on after its snapshot");
    let made = h.driver.templates();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!((made[0].id.as_str(), made[0].name.as_str()), (snap.task_id.as_str(), "golden"), "the task's id names the template");
    assert_eq!(made[0].min_memory_mb, 64, "the source template's minimum");
    // Running the steps again (after an adapter restart) adds nothing.
    h.run(&snap).await.unwrap();
    assert_eq!(h.driver.templates().len(), 1);
    let from_snapshot = id();
    h.run(&spawn_with(&from_snapshot, "snap-copy", Some(&snap.task_id))).await.unwrap();
    assert_eq!(libvirt_state(&from_snapshot).map(|s| s.0), Some(virt::sys::VIR_DOMAIN_RUNNING));
    let again = LibvirtDriver::new(&h.inventory, h._dir.path().to_path_buf());
    assert_eq!(again.templates(), made, "the catalogue's additions survive a restart");
}

#[tokio::test]
async fn shelve_offload_and_unshelve_bring_the_server_back_on_the_chosen_node() {
    let h = Harness::new();
    let s = h.spawn("shelf").await;
    let rt = h.run(&op(&s, Action::Shelve, &["SHELVING", "PREPARING_UPLOAD", "UPLOADING"])).await.unwrap().unwrap();
    assert_eq!(rt.power_state, PowerState::Shutdown);
    assert_eq!(libvirt_state(&s), None, "shelved: stopped and undefined");
    assert_eq!(h.driver.server_state(&s).await.unwrap().power_state, PowerState::Shutdown);
    let rt = h.run(&op(&s, Action::ShelveOffload, &["SHELVING_OFFLOADING"])).await.unwrap().unwrap();
    assert_eq!((rt.power_state, rt.compute_node_id), (PowerState::Shutdown, None));
    assert_eq!(libvirt_state(&s), None, "offloaded: no domain");
    let rt = h.run_on(&op(&s, Action::Unshelve, &["UNSHELVING"]), NODE_LV2).await.unwrap().unwrap();
    assert_eq!((rt.power_state, rt.compute_node_hostname.as_deref()), (PowerState::Running, Some("lv-2")));
    assert_eq!(h.driver.server_state(&s).await.unwrap().compute_node_hostname.as_deref(), Some("lv-2"));
}

#[tokio::test]
async fn rescue_boots_the_rescue_disk_with_the_root_disk_second_and_unrescue_undoes_it() {
    let h = Harness::new();
    let s = h.spawn("lost").await;
    h.run(&op(&s, Action::Rescue(None), &["RESCUING"])).await.unwrap();
    // The test driver keeps no disks: the record says what the domain boots
    // (the domain XML itself is checked in domain.rs and on real QEMU).
    assert_eq!(h.driver.export_server(&s).unwrap()["rescue_template_id"], TEMPLATE, "its own template, as Nova");
    assert_eq!(libvirt_state(&s).map(|s| s.0), Some(virt::sys::VIR_DOMAIN_RUNNING));
    h.run(&op(&s, Action::Unrescue, &["UNRESCUING"])).await.unwrap();
    assert!(h.driver.export_server(&s).unwrap().get("rescue_template_id").is_none());
    assert_eq!(libvirt_state(&s).map(|s| s.0), Some(virt::sys::VIR_DOMAIN_RUNNING));
    let e = h.run(&op(&s, Action::Rescue(Some("9d9d9d9d-0000-4000-8000-000000000000".into())), &["RESCUING"])).await.unwrap_err();
    assert!(e.message().contains("not in this deployment's catalogue"), "{e:?}");
}

#[tokio::test]
async fn a_cold_move_restarts_the_server_on_the_target_and_a_live_one_names_the_cold_move() {
    let h = Harness::new();
    let s = h.spawn("mover").await;
    let mv = |live| op(&s, Action::Move(vnext_core::hypervisor::MoveArgs { candidate_node_ids: vec![], live }), &["PREPARING", "MIGRATING", "FINALIZING"]);
    let e = h.run_on(&mv(true), NODE_LV2).await.unwrap_err();
    assert!(e.message().contains("cold") && e.message().contains("lv-2"), "{e:?}");
    assert_eq!(h.driver.server_state(&s).await.unwrap().compute_node_hostname.as_deref(), Some("lv-1"), "nothing moved");
    let rt = h.run_on(&mv(false), NODE_LV2).await.unwrap().unwrap();
    assert_eq!((rt.power_state, rt.compute_node_hostname.as_deref()), (PowerState::Running, Some("lv-2")));
    assert_eq!(libvirt_state(&s).map(|s| s.0), Some(virt::sys::VIR_DOMAIN_RUNNING));
    // A stopped server stays stopped where it goes.
    h.run_on(&op(&s, Action::PowerOff, &["POWERING_OFF"]), NODE_LV2).await.unwrap();
    let rt = h.run_on(&mv(false), NODE_LV).await.unwrap().unwrap();
    assert_eq!((rt.power_state, rt.compute_node_hostname.as_deref()), (PowerState::Shutdown, Some("lv-1")));
}

#[tokio::test]
async fn a_volume_attaches_as_a_virtio_disk_to_one_server_at_a_time() {
    let h = Harness::new();
    let s = h.spawn("disks").await;
    let vol = "7a7a7a7a-0000-4000-8000-000000000001";
    let args = |device: Option<&str>| vnext_core::hypervisor::BlockDeviceArgs { volume_id: vol.into(), device: device.map(str::to_string) };
    let e = h.run(&op(&s, Action::AttachBlockDevice(args(Some("/dev/vda"))), &["ATTACHING_BLOCK_DEVICE"])).await.unwrap_err();
    assert!(e.message().contains("vdb to vdx"), "{e:?}");
    let rt = h.run(&op(&s, Action::AttachBlockDevice(args(None)), &["ATTACHING_BLOCK_DEVICE"])).await.unwrap().unwrap();
    let devices: Vec<(String, String)> = rt.block_devices.iter().map(|b| (b.device.clone(), b.kind.clone())).collect();
    assert_eq!(devices, [("/dev/vda".to_string(), "EPHEMERAL".to_string()), ("/dev/vdb".into(), "PERSISTENT".into())]);
    assert!(libvirt_xml(&s).contains(&format!("{vol}.qcow2")), "in the definition");
    let other = h.spawn("other").await;
    let e = h.run(&op(&other, Action::AttachBlockDevice(args(None)), &["ATTACHING_BLOCK_DEVICE"])).await.unwrap_err();
    assert!(e.message().contains("attached to server"), "{e:?}");
    // (libvirt's test driver cannot detach: tests/api/libvirt.rs detaches on QEMU.)
    let e = h.run(&op(&other, Action::DetachBlockDevice(args(None)), &["DETACHING_BLOCK_DEVICE"])).await.unwrap_err();
    assert!(e.message().contains("not attached"), "{e:?}");
}

#[tokio::test]
async fn update_password_goes_to_the_guest_through_libvirt() {
    // libvirt's test driver plays a guest agent that takes any password;
    // a real guest without the agent is tests/api/libvirt.rs's case.
    let h = Harness::new();
    let s = h.spawn("pw").await;
    h.run(&op(&s, Action::UpdatePassword("s3cret".into()), &["UPDATING_PASSWORD"])).await.unwrap();
    h.run(&op(&s, Action::PowerOff, &["POWERING_OFF"])).await.unwrap();
    let e = h.run(&op(&s, Action::UpdatePassword("s3cret".into()), &["UPDATING_PASSWORD"])).await.unwrap_err();
    assert!(matches!(&e, StepError::Aborted(m) if m.contains("qemu-guest-agent")), "a stopped guest has no agent: {e:?}");
}

#[tokio::test]
async fn a_node_with_a_network_gives_each_server_a_nic_that_moves_only_to_such_nodes() {
    let h = Harness::new();
    let s = id();
    let rt = h.run_on(&spawn_with(&s, "net-1", Some(TEMPLATE)), NODE_LV2).await.unwrap().unwrap();
    assert_eq!(rt.interfaces.len(), 1, "{rt:?}");
    assert!(rt.interfaces[0].mac.starts_with("52:54:00:") && rt.interfaces[0].name == "eth0", "{rt:?}");
    // (libvirt's test driver cannot hot-plug interfaces: tests/api/libvirt.rs does, on QEMU.)
    // A server with interfaces moves only to a node with a network, and
    // is checked before anything stops.
    let mv = op(&s, Action::Move(vnext_core::hypervisor::MoveArgs { candidate_node_ids: vec![], live: false }), &["PREPARING", "MIGRATING", "FINALIZING"]);
    let e = h.run_on(&mv, NODE_LV).await.unwrap_err();
    assert!(e.message().contains("node lv-1 has no network"), "{e:?}");
    assert_eq!(libvirt_state(&s).map(|s| s.0), Some(virt::sys::VIR_DOMAIN_RUNNING), "still running where it was");
}

#[tokio::test]
async fn a_cold_move_between_two_daemons_defines_on_the_target_and_undefines_on_the_source() {
    // A test:/// URI naming a file is a daemon of its own (test:///default
    // is another), as two libvirt hosts would be.
    let dir = tempfile::tempdir().unwrap();
    let node_file = dir.path().join("node.xml");
    std::fs::write(&node_file, "<node/>").unwrap();
    let text = inventory_text().replacen(
        "libvirt_uri = \"test:///default\"\nlibvirt_network = \"default\"",
        &format!("libvirt_uri = \"test://{}\"", node_file.display()),
        1,
    );
    let inventory = Inventory::parse(&text, "/etc/vnext/inventory.toml").unwrap();
    let h = Harness { driver: LibvirtDriver::new(&inventory, dir.path().join("servers")), inventory, _dir: dir };
    let s = h.spawn("traveller").await;
    let mv = op(&s, Action::Move(vnext_core::hypervisor::MoveArgs { candidate_node_ids: vec![], live: false }), &["PREPARING", "MIGRATING", "FINALIZING"]);
    let rt = h.run_on(&mv, NODE_LV2).await.unwrap().unwrap();
    assert_eq!((rt.power_state, rt.compute_node_hostname.as_deref()), (PowerState::Running, Some("lv-2")));
    assert_eq!(libvirt_state(&s), None, "gone from the source daemon");
    assert_eq!(h.driver.server_state(&s).await.unwrap().power_state, PowerState::Running, "running on the target's");
    // And back: the two daemons' domains stay apart.
    h.run_on(&mv, NODE_LV).await.unwrap();
    assert_eq!(libvirt_state(&s).map(|s| s.0), Some(virt::sys::VIR_DOMAIN_RUNNING));
}
