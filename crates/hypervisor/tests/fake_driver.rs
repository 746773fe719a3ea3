mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use vnext_core::hypervisor::{Action, BlockDeviceArgs, ConsoleType, HypervisorError, Operation, PowerState};
use vnext_hypervisor::inventory::{FakeOptions, NodeConfig};
use vnext_hypervisor::{Driver, FakeDriver, StepError, StepRequest};

struct Harness {
    driver: FakeDriver,
    clock: Arc<AtomicI64>,
    nodes: Vec<NodeConfig>,
}

impl Harness {
    fn new(options: FakeOptions) -> Harness {
        let nodes = inventory("").nodes;
        let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
        let c = clock.clone();
        let driver = FakeDriver::with_clock(options, nodes.clone(), Arc::new(move || c.load(Ordering::SeqCst)));
        Harness { driver, clock, nodes }
    }

    fn advance(&self, seconds: i64) {
        self.clock.fetch_add(seconds * 1000, Ordering::SeqCst);
    }

    /// Runs every step of `op` on the small node; the first error stops it.
    async fn run(&self, op: &Operation) -> Result<Option<vnext_core::events::ServerRuntime>, StepError> {
        let mut last = None;
        for (i, step) in op.steps.iter().enumerate() {
            let req = StepRequest { op, step_index: i, step, node: Some(&self.nodes[0]) };
            last = self.driver.run_step(req).await?;
        }
        Ok(last)
    }

    async fn power(&self, server: &str) -> PowerState {
        self.driver.server_state(server).await.unwrap().power_state
    }
}

async fn spawned(h: &Harness, hostname: &str) -> String {
    let server = id();
    h.run(&spawn_op(&server, hostname, spec(512, 1, 10), &[])).await.unwrap();
    server
}

#[tokio::test]
async fn spawn_runs_the_server_on_the_given_node_with_a_disk_and_an_interface() {
    let h = Harness::new(FakeOptions::instant());
    let server = id();
    let runtime = h.run(&spawn_op(&server, "web-1", spec(512, 1, 10), &[])).await.unwrap().unwrap();
    assert_eq!(runtime.power_state, PowerState::Running);
    assert_eq!(runtime.compute_node_id.as_deref(), Some(NODE_SMALL));
    assert_eq!(runtime.compute_node_hostname.as_deref(), Some("small"));
    assert_eq!(runtime.block_devices.len(), 1);
    assert_eq!(runtime.block_devices[0].kind, "EPHEMERAL");
    assert_eq!(runtime.interfaces.len(), 1);
    assert!(runtime.interfaces[0].mac.starts_with("fa:16:3e:"));
    let state = h.driver.server_state(&server).await.unwrap();
    assert_eq!(state.uptime_seconds, 0);
    h.advance(42);
    assert_eq!(h.driver.server_state(&server).await.unwrap().uptime_seconds, 42);
}

#[tokio::test]
async fn power_actions_follow_nova_semantics() {
    let h = Harness::new(FakeOptions::instant());
    let s = spawned(&h, "vm").await;
    let step = |a: Action, name: &str| op(&s, a, &[name]);
    h.run(&step(Action::Pause, "PAUSING")).await.unwrap();
    assert_eq!(h.power(&s).await, PowerState::Paused);
    h.run(&step(Action::Unpause, "UNPAUSING")).await.unwrap();
    assert_eq!(h.power(&s).await, PowerState::Running);
    h.run(&step(Action::Suspend, "SUSPENDING")).await.unwrap();
    assert_eq!(h.power(&s).await, PowerState::Suspended);
    h.run(&step(Action::Resume, "RESUMING")).await.unwrap();
    assert_eq!(h.power(&s).await, PowerState::Running);
    h.run(&step(Action::PowerOff, "POWERING_OFF")).await.unwrap();
    assert_eq!(h.power(&s).await, PowerState::Shutdown);
    assert_eq!(h.driver.server_state(&s).await.unwrap().uptime_seconds, 0);
    h.run(&step(Action::PowerOn, "POWERING_ON")).await.unwrap();
    assert_eq!(h.power(&s).await, PowerState::Running);
    h.run(&step(Action::Shelve, "SHELVING")).await.unwrap();
    assert_eq!(h.power(&s).await, PowerState::Shutdown);
    let rt = h.run(&step(Action::ShelveOffload, "SHELVING_OFFLOADING")).await.unwrap().unwrap();
    assert_eq!(rt.compute_node_id, None);
    let rt = h.run(&step(Action::Unshelve, "UNSHELVING")).await.unwrap().unwrap();
    assert_eq!((rt.power_state, rt.compute_node_id.as_deref()), (PowerState::Running, Some(NODE_SMALL)));
}

#[tokio::test]
async fn invalid_transitions_abort_like_a_hypervisor_would() {
    let h = Harness::new(FakeOptions::instant());
    let s = spawned(&h, "vm").await;
    let err = h.run(&op(&s, Action::Unpause, &["UNPAUSING"])).await.unwrap_err();
    assert_eq!(err, StepError::Aborted("cannot unpause a server whose power state is RUNNING".into()));
    let err = h.run(&op(&s, Action::Resume, &["RESUMING"])).await.unwrap_err();
    assert!(err.message().contains("cannot resume"), "{err:?}");
    let err = h.run(&op(&s, Action::Restore, &["RESTORING"])).await.unwrap_err();
    assert!(err.message().contains("not terminated"), "{err:?}");
    let err = h.run(&op(&id(), Action::Pause, &["PAUSING"])).await.unwrap_err();
    assert!(err.message().contains("has no server"), "{err:?}");
}

#[tokio::test]
async fn terminate_keeps_a_restorable_record_and_forget_drops_it() {
    let h = Harness::new(FakeOptions::instant());
    let s = spawned(&h, "vm").await;
    let rt = h.run(&op(&s, Action::Terminate, &["TERMINATING"])).await.unwrap().unwrap();
    assert_eq!((rt.power_state, rt.compute_node_id), (PowerState::Shutdown, None));
    let err = h.run(&op(&s, Action::PowerOn, &["POWERING_ON"])).await.unwrap_err();
    assert!(err.message().contains("is terminated"), "{err:?}");
    let rt = h.run(&op(&s, Action::Restore, &["RESTORING"])).await.unwrap().unwrap();
    assert_eq!(rt.power_state, PowerState::Running);
    h.run(&op(&s, Action::Terminate, &["TERMINATING"])).await.unwrap();
    h.driver.forget(&s).await;
    assert_eq!(h.driver.server_state(&s).await, Err(HypervisorError::UnknownServer(s.clone())));
    // Terminating what the hypervisor never had (a failed spawn) completes.
    assert_eq!(h.run(&op(&id(), Action::Terminate, &["TERMINATING"])).await, Ok(None));
}

#[tokio::test]
async fn console_log_shows_boot_messages_and_grows_with_uptime() {
    let h = Harness::new(FakeOptions::instant());
    let s = spawned(&h, "web-7").await;
    let log = h.driver.console_log(&s, 1000).await.unwrap();
    assert!(log.contains("Linux version"), "{log}");
    assert!(log.contains("hostname set to web-7"), "{log}");
    assert!(log.ends_with("web-7 login:\n"), "{log}");
    let before = log.lines().count();
    h.advance(35);
    let log = h.driver.console_log(&s, 1000).await.unwrap();
    assert_eq!(log.lines().count(), before + 3, "one heartbeat per 10 s of uptime");
    assert!(log.ends_with("web-7: heartbeat 3 (uptime 30s)\n"), "{log}");
    // Reading again without time passing gives the same text.
    assert_eq!(h.driver.console_log(&s, 1000).await.unwrap(), log);
    assert_eq!(h.driver.console_log(&s, 2).await.unwrap().lines().count(), 2);
}

#[tokio::test]
async fn console_uri_has_a_one_time_token_and_refuses_types_the_node_lacks() {
    let h = Harness::new(FakeOptions::instant());
    let s = spawned(&h, "vm").await;
    let uri = h.driver.console_uri(&s, ConsoleType::Novnc).await.unwrap();
    let token = uri.strip_prefix("http://127.0.0.1:6080/vnc_auto.html?token=").expect(&uri);
    assert!(uuid::Uuid::parse_str(token).is_ok());
    assert_eq!(h.driver.redeem_console_token(token), Some((s.clone(), ConsoleType::Novnc)));
    assert_eq!(h.driver.redeem_console_token(token), None, "a token opens one console only");
    let other = h.driver.console_uri(&s, ConsoleType::Novnc).await.unwrap();
    assert_ne!(other, uri);
    match h.driver.console_uri(&s, ConsoleType::Spice).await {
        Err(HypervisorError::Unsupported(m)) => assert!(m.contains("small does not serve spice"), "{m}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[tokio::test]
async fn diagnostics_are_derived_from_uptime() {
    let h = Harness::new(FakeOptions::instant());
    let s = spawned(&h, "vm").await;
    let d0 = h.driver.diagnostics(&s).await.unwrap();
    assert_eq!((d0.uptime_seconds, d0.cpu_time_ns), (0, 0));
    h.advance(100);
    let d = h.driver.diagnostics(&s).await.unwrap();
    assert_eq!(d.uptime_seconds, 100);
    assert_eq!(d.cpu_time_ns, 25_000_000_000, "a quarter of one CPU for 100 s");
    assert_eq!(d.memory_total_mb, 512);
    assert_eq!(d.memory_used_mb, 128 + 10);
    assert_eq!(d.disks[0].device, "/dev/vda");
    assert!(d.disks[0].read_bytes > d0.disks[0].read_bytes);
    assert_eq!(d.interfaces[0].name, "eth0");
    assert_eq!(h.driver.diagnostics(&s).await.unwrap(), d, "same uptime, same counters");
}

#[tokio::test]
async fn block_devices_attach_and_detach_by_volume() {
    let h = Harness::new(FakeOptions::instant());
    let s = spawned(&h, "vm").await;
    let args = BlockDeviceArgs { volume_id: id(), device: None };
    let rt = h.run(&op(&s, Action::AttachBlockDevice(args.clone()), &["ATTACHING_BLOCK_DEVICE"])).await.unwrap().unwrap();
    assert_eq!(rt.block_devices.last().unwrap().device, "/dev/vdb");
    assert_eq!(rt.block_devices.last().unwrap().kind, "PERSISTENT");
    let err = h.run(&op(&s, Action::AttachBlockDevice(args.clone()), &["ATTACHING_BLOCK_DEVICE"])).await.unwrap_err();
    assert!(err.message().contains("already attached"));
    let rt = h.run(&op(&s, Action::DetachBlockDevice(args), &["DETACHING_BLOCK_DEVICE"])).await.unwrap().unwrap();
    assert_eq!(rt.block_devices.len(), 1);
}

#[tokio::test]
async fn failure_rules_match_action_step_and_hostname_prefix() {
    let options = vnext_hypervisor::Inventory::parse(
        &inventory_toml(
            "[[driver.fail]]\naction = \"spawn\"\nstep = \"SPAWNING\"\nhostname_prefix = \"fail-\"\nerror = \"no bootable device\"\n\
             [[driver.timeout]]\naction = \"reboot\"\nerror = \"guest hung\"\n",
        ),
        "t.toml",
    )
    .unwrap();
    let vnext_hypervisor::inventory::DriverConfig::Fake(fake) = options.driver;
    let h = Harness::new(fake);
    let err = h.run(&spawn_op(&id(), "fail-1", spec(1, 1, 1), &[])).await.unwrap_err();
    assert_eq!(err, StepError::Aborted("no bootable device".into()));
    let s = spawned(&h, "ok-1").await;
    let err = h.run(&op(&s, Action::Reboot, &["REBOOTING"])).await.unwrap_err();
    assert_eq!(err, StepError::TimedOut("guest hung".into()));
    assert!(h.run(&op(&s, Action::Pause, &["PAUSING"])).await.is_ok());
}

#[tokio::test]
async fn server_records_survive_export_and_import() {
    let h = Harness::new(FakeOptions::instant());
    let s = spawned(&h, "vm").await;
    let saved = h.driver.export_server(&s).unwrap();
    let other = Harness::new(FakeOptions::instant());
    other.driver.import_server(&s, saved).unwrap();
    assert_eq!(other.power(&s).await, PowerState::Running);
    assert_eq!(
        other.driver.console_log(&s, 100).await.unwrap(),
        h.driver.console_log(&s, 100).await.unwrap()
    );
}
