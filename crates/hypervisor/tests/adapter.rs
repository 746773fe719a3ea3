mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use vnext_core::events::{OperationState, StepState, TaskEvent};
use vnext_core::hypervisor::{Action, HypervisorError, MoveArgs, PowerState, Resources};
use vnext_hypervisor::{Adapter, AdapterOptions};

async fn adapter_with(driver: &str, sink: Arc<RecordingSink>) -> Adapter {
    Adapter::from_inventory(inventory(driver), sink, fast_retry()).await.unwrap()
}

/// Asserts the event contract: seq 1, 2, 3... in order, RUNNING then an end
/// state for each step, RUNNING operation state until the last event.
fn assert_well_formed(events: &[TaskEvent]) {
    assert!(!events.is_empty());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u32 + 1, "seq must count from 1 without gaps: {events:#?}");
        assert_eq!(e.step_index, i as u32 / 2);
        let expected = if i % 2 == 0 { StepState::Running } else { e.step_state };
        assert_eq!(e.step_state, expected);
        if i + 1 < events.len() {
            assert_eq!(e.operation_state, OperationState::Running);
        } else {
            assert!(e.operation_state.is_terminal(), "last event must be terminal: {e:?}");
        }
        assert!(e.at.ends_with('Z'));
    }
}

async fn usage_of(adapter: &Adapter, node: &str) -> Resources {
    adapter.list_compute_nodes().await.unwrap().into_iter().find(|n| n.id == node).unwrap().usage
}

#[tokio::test]
async fn spawn_emits_running_and_completed_per_step_and_ends_completed() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("", sink.clone()).await;
    let server = id();
    let op = spawn_op(&server, "web-1", spec(1024, 2, 20), &[NODE_SMALL]);
    adapter.submit(op.clone()).await.unwrap();
    settle(&adapter).await;
    let events = sink.of_task(&op.task_id);
    assert_eq!(events.len(), 8);
    assert_well_formed(&events);
    assert!(events.iter().skip(1).step_by(2).all(|e| e.step_state == StepState::Completed));
    assert_eq!(events[7].operation_state, OperationState::Completed);
    let runtime = events[7].server.as_ref().expect("the last step reports the server");
    assert_eq!(runtime.power_state, PowerState::Running);
    assert_eq!(runtime.compute_node_id.as_deref(), Some(NODE_SMALL));
    assert_eq!(adapter.server_state(&server).await.unwrap().power_state, PowerState::Running);
    assert_eq!(usage_of(&adapter, NODE_SMALL).await, Resources { memory_mb: 1024, cpu_units: 2, disk_gb: 20 });
}

#[tokio::test]
async fn submitting_the_same_task_twice_runs_it_once() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("", sink.clone()).await;
    let op = spawn_op(&id(), "web-1", spec(1024, 1, 10), &[]);
    adapter.submit(op.clone()).await.unwrap();
    adapter.submit(op.clone()).await.unwrap();
    settle(&adapter).await;
    adapter.submit(op.clone()).await.unwrap();
    settle(&adapter).await;
    assert_eq!(sink.of_task(&op.task_id).len(), 8);
    assert_eq!(usage_of(&adapter, NODE_SMALL).await.memory_mb, 1024, "claimed once");
}

#[tokio::test]
async fn submit_rejects_malformed_operations() {
    let adapter = adapter_with("", RecordingSink::new()).await;
    let mut op = spawn_op(&id(), "x", spec(1, 1, 1), &[]);
    op.steps.clear();
    assert!(matches!(adapter.submit(op).await, Err(HypervisorError::Invalid(_))));
    let unknown = id();
    let op = spawn_op(&id(), "x", spec(1, 1, 1), &[&unknown]);
    assert_eq!(adapter.submit(op).await, Err(HypervisorError::UnknownNode(unknown)));
}

#[tokio::test]
async fn submit_many_answers_each_operation_in_order_and_runs_each_task_once() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("", sink.clone()).await;
    let good: Vec<_> = (0..3).map(|i| spawn_op(&id(), &format!("vm-{i}"), spec(512, 1, 10), &[NODE_SMALL])).collect();
    let mut bad = spawn_op(&id(), "bad", spec(1, 1, 1), &[]);
    bad.steps.clear();
    let unknown = id();
    let elsewhere = spawn_op(&id(), "x", spec(1, 1, 1), &[&unknown]);
    // The same task twice in one call, and one already submitted before.
    adapter.submit(good[2].clone()).await.unwrap();
    let batch = vec![good[0].clone(), bad, good[1].clone(), good[0].clone(), elsewhere, good[2].clone()];
    let results = adapter.submit_many(batch).await;
    assert_eq!(results.len(), 6);
    assert_eq!(results[0], Ok(()));
    assert!(matches!(results[1], Err(HypervisorError::Invalid(_))), "{results:?}");
    assert_eq!(results[2], Ok(()));
    assert_eq!(results[3], Ok(()), "a repeated task id is a no-op, not an error");
    assert_eq!(results[4], Err(HypervisorError::UnknownNode(unknown)));
    assert_eq!(results[5], Ok(()));
    settle(&adapter).await;
    for op in &good {
        let events = sink.of_task(&op.task_id);
        assert_well_formed(&events);
        assert_eq!(events.len(), 8, "task {} ran once", op.task_id);
    }
    assert_eq!(usage_of(&adapter, NODE_SMALL).await.memory_mb, 3 * 512);
    assert!(adapter.submit_many(Vec::new()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_spawns_claim_exactly_the_capacity_of_the_node() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("", sink.clone()).await;
    // The small node has 4096 MB and 4 CPUs: four 1024 MB / 1 CPU servers fit.
    let ops: Vec<_> = (0..20).map(|i| spawn_op(&id(), &format!("vm-{i}"), spec(1024, 1, 10), &[NODE_SMALL])).collect();
    let submits = ops.iter().cloned().map(|op| {
        let adapter = adapter.clone();
        tokio::spawn(async move { adapter.submit(op).await })
    });
    for handle in submits.collect::<Vec<_>>() {
        handle.await.unwrap().unwrap();
    }
    settle(&adapter).await;
    let mut completed = 0;
    for op in &ops {
        let events = sink.of_task(&op.task_id);
        assert_well_formed(&events);
        let last = events.last().unwrap();
        match last.operation_state {
            OperationState::Completed => completed += 1,
            OperationState::Aborted => {
                assert_eq!(last.step_index, 0, "a spawn without room fails at SCHEDULING");
                let message = last.error.as_deref().unwrap();
                assert!(message.contains("no compute node has room for 1024 MB memory, 1 CPU units, 10 GB disk"), "{message}");
                // The task error is user-visible: it must not name compute nodes.
                assert!(!message.contains("small"), "{message}");
            }
            other => panic!("unexpected end state {other:?}"),
        }
    }
    assert_eq!(completed, 4);
    assert_eq!(usage_of(&adapter, NODE_SMALL).await, Resources { memory_mb: 4096, cpu_units: 4, disk_gb: 40 });
    assert_eq!(usage_of(&adapter, NODE_BIG).await, Resources::default());
}

#[tokio::test]
async fn spawn_falls_through_candidates_to_one_with_room() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("", sink.clone()).await;
    let server = id();
    let op = spawn_op(&server, "huge", spec(8192, 8, 50), &[NODE_SMALL, NODE_BIG]);
    adapter.submit(op).await.unwrap();
    settle(&adapter).await;
    let state = adapter.server_state(&server).await.unwrap();
    assert_eq!(state.compute_node_hostname.as_deref(), Some("big"));
}

#[tokio::test]
async fn terminate_releases_capacity_and_restore_claims_it_again() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("", sink.clone()).await;
    let s = id();
    adapter.submit(spawn_op(&s, "vm", spec(2048, 2, 20), &[NODE_SMALL])).await.unwrap();
    adapter.submit(op(&s, Action::Terminate, &["TERMINATING"])).await.unwrap();
    settle(&adapter).await;
    assert_eq!(usage_of(&adapter, NODE_SMALL).await, Resources::default());
    adapter.submit(op(&s, Action::Restore, &["RESTORING"])).await.unwrap();
    settle(&adapter).await;
    assert_eq!(usage_of(&adapter, NODE_SMALL).await.memory_mb, 2048);
    assert_eq!(adapter.server_state(&s).await.unwrap().power_state, PowerState::Running);
    assert!(matches!(adapter.reclaim(&s).await, Err(HypervisorError::Invalid(_))), "a running server cannot be reclaimed");
    adapter.submit(op(&s, Action::Terminate, &["TERMINATING"])).await.unwrap();
    settle(&adapter).await;
    adapter.reclaim(&s).await.unwrap();
    assert!(matches!(adapter.server_state(&s).await, Err(HypervisorError::UnknownServer(_))));
}

#[tokio::test]
async fn move_claims_the_target_and_releases_the_source() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("", sink.clone()).await;
    let s = id();
    adapter.submit(spawn_op(&s, "vm", spec(2048, 2, 20), &[NODE_SMALL])).await.unwrap();
    let mv = op(&s, Action::Move(MoveArgs { candidate_node_ids: vec![], live: true }), &["PREPARING", "MIGRATING", "FINALIZING"]);
    adapter.submit(mv.clone()).await.unwrap();
    settle(&adapter).await;
    assert_well_formed(&sink.of_task(&mv.task_id));
    assert_eq!(usage_of(&adapter, NODE_SMALL).await, Resources::default());
    assert_eq!(usage_of(&adapter, NODE_BIG).await.memory_mb, 2048);
    let state = adapter.server_state(&s).await.unwrap();
    assert_eq!((state.compute_node_hostname.as_deref(), state.power_state), (Some("big"), PowerState::Running));
}

#[tokio::test]
async fn a_live_move_outside_the_live_migration_group_aborts_and_keeps_the_claim() {
    // The small node in a group of its own: the API refuses such a MOVE,
    // the adapter checks again for clients that are not our components.
    let text = inventory_toml("").replace("hostname = \"small\"\n", "hostname = \"small\"\nlive_migration_group = \"alone\"\n");
    let inv = vnext_hypervisor::Inventory::parse(&text, "test-inventory.toml").unwrap();
    let sink = RecordingSink::new();
    let adapter = Adapter::from_inventory(inv, sink.clone(), fast_retry()).await.unwrap();
    let s = id();
    adapter.submit(spawn_op(&s, "vm", spec(2048, 2, 20), &[NODE_SMALL])).await.unwrap();
    let live = op(&s, Action::Move(MoveArgs { candidate_node_ids: vec![NODE_BIG.into()], live: true }), &["PREPARING", "MIGRATING", "FINALIZING"]);
    adapter.submit(live.clone()).await.unwrap();
    let cold = op(&s, Action::Move(MoveArgs { candidate_node_ids: vec![NODE_BIG.into()], live: false }), &["PREPARING", "MIGRATING", "FINALIZING"]);
    adapter.submit(cold.clone()).await.unwrap();
    settle(&adapter).await;
    let events = sink.of_task(&live.task_id);
    let last = events.last().unwrap();
    assert_eq!((last.operation_state, last.step_index), (OperationState::Aborted, 0), "{events:#?}");
    assert!(last.error.as_deref().unwrap().contains("\"live\": false"), "names the cold MOVE: {last:?}");
    assert_eq!(sink.of_task(&cold.task_id).last().unwrap().operation_state, OperationState::Completed);
    assert_eq!(usage_of(&adapter, NODE_SMALL).await, Resources::default());
    assert_eq!(adapter.server_state(&s).await.unwrap().compute_node_hostname.as_deref(), Some("big"));
}

#[tokio::test]
async fn resize_that_does_not_fit_aborts_and_keeps_the_old_claim() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("", sink.clone()).await;
    let s = id();
    adapter.submit(spawn_op(&s, "vm", spec(2048, 2, 20), &[NODE_SMALL])).await.unwrap();
    let too_big = op(&s, Action::Resize(spec(8192, 2, 20)), &["PREPARING", "MIGRATING", "FINALIZING"]);
    adapter.submit(too_big.clone()).await.unwrap();
    let fits = op(&s, Action::Resize(spec(4096, 4, 20)), &["PREPARING", "MIGRATING", "FINALIZING"]);
    adapter.submit(fits.clone()).await.unwrap();
    settle(&adapter).await;
    let events = sink.of_task(&too_big.task_id);
    assert_eq!(events.last().unwrap().operation_state, OperationState::Aborted);
    assert!(events.last().unwrap().error.as_deref().unwrap().contains("no room to grow"));
    assert_eq!(sink.of_task(&fits.task_id).last().unwrap().operation_state, OperationState::Completed);
    assert_eq!(usage_of(&adapter, NODE_SMALL).await, Resources { memory_mb: 4096, cpu_units: 4, disk_gb: 20 });
}

#[tokio::test]
async fn operations_on_one_server_run_in_submission_order() {
    let sink = RecordingSink::new();
    let adapter = adapter_with("step_delay_ms = 5", sink.clone()).await;
    let s = id();
    let ops = vec![
        spawn_op(&s, "vm", spec(512, 1, 10), &[]),
        op(&s, Action::Pause, &["PAUSING"]),
        op(&s, Action::Unpause, &["UNPAUSING"]),
        op(&s, Action::PowerOff, &["POWERING_OFF"]),
        op(&s, Action::PowerOn, &["POWERING_ON"]),
    ];
    for o in &ops {
        adapter.submit(o.clone()).await.unwrap();
    }
    settle(&adapter).await;
    // Each succeeded, which it only can if the previous one finished first.
    let mut ends = Vec::new();
    for o in &ops {
        let events = sink.of_task(&o.task_id);
        assert_eq!(events.last().unwrap().operation_state, OperationState::Completed, "{events:#?}");
        ends.push((events.first().unwrap().at.clone(), events.last().unwrap().at.clone()));
    }
    for pair in ends.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "an operation started before the previous one ended: {ends:?}");
    }
}

#[tokio::test]
async fn injected_spawn_failure_aborts_at_its_step_and_rolls_back_the_claim() {
    let sink = RecordingSink::new();
    let driver = "[[driver.fail]]\naction = \"spawn\"\nstep = \"SPAWNING\"\nhostname_prefix = \"fail-\"\nerror = \"no bootable device\"\n\
                  [[driver.timeout]]\naction = \"reboot\"\nerror = \"guest hung\"\n";
    let adapter = adapter_with(driver, sink.clone()).await;
    let bad = id();
    let spawn = spawn_op(&bad, "fail-1", spec(1024, 1, 10), &[NODE_SMALL]);
    adapter.submit(spawn.clone()).await.unwrap();
    settle(&adapter).await;
    let events = sink.of_task(&spawn.task_id);
    assert_well_formed(&events);
    assert_eq!(events.len(), 8, "three steps completed, SPAWNING started then aborted");
    let last = events.last().unwrap();
    assert_eq!((last.step_index, last.step_state, last.operation_state), (3, StepState::Aborted, OperationState::Aborted));
    assert_eq!(last.error.as_deref(), Some("no bootable device"));
    assert_eq!(usage_of(&adapter, NODE_SMALL).await, Resources::default(), "the claim was given back");
    assert!(matches!(adapter.server_state(&bad).await, Err(HypervisorError::UnknownServer(_))));
    // Terminating the failed server still completes, so the API can clean up.
    let term = op(&bad, Action::Terminate, &["TERMINATING"]);
    adapter.submit(term.clone()).await.unwrap();
    // A timeout rule ends the task TIMED_OUT.
    let good = id();
    adapter.submit(spawn_op(&good, "ok-1", spec(1024, 1, 10), &[])).await.unwrap();
    let reboot = op(&good, Action::Reboot, &["REBOOTING"]);
    adapter.submit(reboot.clone()).await.unwrap();
    settle(&adapter).await;
    assert_eq!(sink.of_task(&term.task_id).last().unwrap().operation_state, OperationState::Completed);
    let last = sink.of_task(&reboot.task_id).pop().unwrap();
    assert_eq!((last.step_state, last.operation_state), (StepState::TimedOut, OperationState::TimedOut));
    assert_eq!(last.error.as_deref(), Some("guest hung"));
}

#[tokio::test]
async fn failed_deliveries_are_retried_until_acknowledged_in_order() {
    let sink = RecordingSink::failing(5);
    let adapter = adapter_with("", sink.clone()).await;
    let spawn = spawn_op(&id(), "vm", spec(512, 1, 10), &[]);
    adapter.submit(spawn.clone()).await.unwrap();
    settle(&adapter).await;
    let events = sink.of_task(&spawn.task_id);
    assert_eq!(events.len(), 8, "no event dropped");
    assert_well_formed(&events);
    // Every refused attempt was retried; events that queued meanwhile
    // went out in the same batches.
    let batches = sink.batches.load(Ordering::SeqCst);
    assert!((1..=8).contains(&batches), "{batches} batches for 8 events");
    assert_eq!(sink.attempts.load(Ordering::SeqCst), batches + 5);
}

#[tokio::test]
async fn delivery_backoff_grows_and_is_capped() {
    // 6 failures with 1, 2, 4, 8, 8, 8 ms waits (cap 8 ms): well under a second,
    // where an uncapped doubling would not be.
    let sink = RecordingSink::failing(6);
    let options = AdapterOptions { retry_initial: Duration::from_millis(1), retry_max: Duration::from_millis(8), ..Default::default() };
    let adapter = Adapter::from_inventory(inventory(""), sink.clone(), options).await.unwrap();
    let started = std::time::Instant::now();
    adapter.submit(spawn_op(&id(), "vm", spec(512, 1, 10), &["aaaaaaaa-0000-4000-8000-000000000001"])).await.unwrap();
    settle(&adapter).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(31), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

/// Runs `f` on its own runtime, then drops the runtime: every adapter task
/// dies mid-flight, as in a crash.
fn in_runtime_then_crash<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(f());
    rt.shutdown_background();
}

#[test]
fn unfinished_operations_resume_and_undelivered_events_are_redelivered_after_a_restart() {
    let dir = temp_dir("journal");
    let server = id();
    let spawn = spawn_op(&server, "vm", spec(1024, 1, 10), &[NODE_SMALL]);
    let pause = op(&server, Action::Pause, &["PAUSING"]);
    let first = RecordingSink::new();
    {
        let (dir, first, spawn, pause) = (dir.clone(), first.clone(), spawn.clone(), pause.clone());
        in_runtime_then_crash(move || async move {
            let options = AdapterOptions { state_dir: Some(dir), ..fast_retry() };
            let adapter = Adapter::from_inventory(inventory("step_delay_ms = 150"), first.clone(), options).await.unwrap();
            // Both journalled in one transaction by submit-many.
            let results = adapter.submit_many(vec![spawn.clone(), pause.clone()]).await;
            assert_eq!(results, vec![Ok(()), Ok(())]);
            // Let the spawn get part of the way, then crash.
            while first.of_task(&spawn.task_id).len() < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    let before = first.of_task(&spawn.task_id).len();
    assert!(before < 8, "the spawn should not have finished before the crash");

    let second = RecordingSink::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let options = AdapterOptions { state_dir: Some(dir.clone()), ..fast_retry() };
        let adapter = Adapter::from_inventory(inventory("step_delay_ms = 1"), second.clone(), options).await.unwrap();
        // The same submit after the restart is still a no-op.
        adapter.submit(spawn.clone()).await.unwrap();
        settle(&adapter).await;
        for task in [&spawn, &pause] {
            let mut all = first.of_task(&task.task_id);
            for e in second.of_task(&task.task_id) {
                // Redelivery is at least once: drop what the API already has.
                if !all.iter().any(|x| x.seq == e.seq) {
                    all.push(e);
                }
            }
            all.sort_by_key(|e| e.seq);
            assert_well_formed(&all);
            assert_eq!(all.last().unwrap().operation_state, OperationState::Completed, "{all:#?}");
        }
        let resumed_from = sink_seqs(&second, &spawn.task_id)[0];
        assert!(resumed_from as usize <= before + 1, "no event lost between the runs");
        let state = adapter.server_state(&server).await.unwrap();
        assert_eq!(state.power_state, PowerState::Paused, "the fake's server record was journaled");
        assert_eq!(usage_of(&adapter, NODE_SMALL).await.memory_mb, 1024, "claims were journaled once");
    });
}

fn sink_seqs(sink: &RecordingSink, task: &str) -> Vec<u32> {
    sink.of_task(task).iter().map(|e| e.seq).collect()
}

#[test]
fn events_refused_before_a_restart_are_delivered_after_it() {
    let dir = temp_dir("redeliver");
    let spawn = spawn_op(&id(), "vm", spec(1024, 1, 10), &[]);
    let refusing = RecordingSink::failing(u32::MAX);
    {
        let (dir, refusing, spawn) = (dir.clone(), refusing.clone(), spawn.clone());
        in_runtime_then_crash(move || async move {
            let options = AdapterOptions { state_dir: Some(dir.clone()), ..fast_retry() };
            let adapter = Adapter::from_inventory(inventory(""), refusing.clone(), options).await.unwrap();
            adapter.submit(spawn.clone()).await.unwrap();
            // Wait for the operation itself to finish (its events are stuck).
            let journal = vnext_hypervisor::Journal::open(dir.join("adapter.db")).unwrap();
            while journal.pending_events().unwrap() < 8 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    assert!(refusing.events.lock().unwrap().is_empty());
    let sink = RecordingSink::new();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let options = AdapterOptions { state_dir: Some(dir.clone()), ..fast_retry() };
        let adapter = Adapter::from_inventory(inventory(""), sink.clone(), options).await.unwrap();
        settle(&adapter).await;
    });
    let events = sink.of_task(&spawn.task_id);
    assert_eq!(events.len(), 8);
    assert_well_formed(&events);
    let journal = vnext_hypervisor::Journal::open(dir.join("adapter.db")).unwrap();
    assert_eq!(journal.pending_events().unwrap(), 0);
    assert!(journal.knows_task(&spawn.task_id).unwrap());
}

/// An adapter over a fake driver the test keeps a handle of, with manual
/// lifecycle sweeps (`sync_interval_ms = 0`) and `reclaim_after_seconds`.
async fn adapter_with_fake(reclaim_after_seconds: u64, sink: Arc<RecordingSink>) -> (Adapter, Arc<vnext_hypervisor::FakeDriver>) {
    let inv = inventory(&format!("\n[lifecycle]\nsync_interval_ms = 0\nreclaim_after_seconds = {reclaim_after_seconds}\n"));
    let vnext_hypervisor::inventory::DriverConfig::Fake(options) = inv.driver.clone();
    let fake = Arc::new(vnext_hypervisor::FakeDriver::new(options, inv.nodes.clone()));
    let adapter = Adapter::open(inv, fake.clone(), sink, fast_retry()).await.unwrap();
    (adapter, fake)
}

#[tokio::test]
async fn a_guest_that_powers_itself_off_is_reported_once_by_the_sweep() {
    let sink = RecordingSink::new();
    let (adapter, fake) = adapter_with_fake(3600, sink.clone()).await;
    let s = id();
    adapter.submit(spawn_op(&s, "vm", spec(512, 1, 10), &[NODE_SMALL])).await.unwrap();
    settle(&adapter).await;
    assert_eq!(adapter.sweep().await, 0, "the spawn's events already told the API it runs");
    fake.set_power_state(&s, PowerState::Shutdown);
    assert_eq!(adapter.sweep().await, 1);
    let seen = sink.observations.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].server_id.as_str(), seen[0].power_state, seen[0].reclaimed), (s.as_str(), PowerState::Shutdown, false));
    assert_eq!(adapter.sweep().await, 0, "a state already reported is not reported again");
    fake.set_power_state(&s, PowerState::Crashed);
    assert_eq!(adapter.sweep().await, 1);
    // A task's own events report the state it leaves; the sweep stays quiet.
    adapter.submit(op(&s, Action::PowerOn, &["POWERING_ON"])).await.unwrap();
    settle(&adapter).await;
    assert_eq!(adapter.sweep().await, 0);
}

#[tokio::test]
async fn a_terminated_server_is_reclaimed_when_due_and_cannot_be_restored_after() {
    let sink = RecordingSink::new();
    let (adapter, _fake) = adapter_with_fake(3600, sink.clone()).await;
    let s = id();
    adapter.submit(spawn_op(&s, "vm", spec(512, 1, 10), &[NODE_SMALL])).await.unwrap();
    adapter.submit(op(&s, Action::Terminate, &["TERMINATING"])).await.unwrap();
    settle(&adapter).await;
    adapter.sweep().await;
    assert!(adapter.server_state(&s).await.is_ok(), "not due for an hour: still restorable");
    assert!(sink.observations.lock().unwrap().iter().all(|o| !o.reclaimed));

    let sink = RecordingSink::new();
    let (adapter, _fake) = adapter_with_fake(0, sink.clone()).await;
    adapter.submit(spawn_op(&s, "vm", spec(512, 1, 10), &[NODE_SMALL])).await.unwrap();
    adapter.submit(op(&s, Action::Terminate, &["TERMINATING"])).await.unwrap();
    settle(&adapter).await;
    assert_eq!(adapter.sweep().await, 1);
    let reclaims: Vec<_> = sink.observations.lock().unwrap().iter().filter(|o| o.reclaimed).cloned().collect();
    assert_eq!(reclaims.len(), 1, "{reclaims:?}");
    assert_eq!(reclaims[0].server_id, s);
    assert!(matches!(adapter.server_state(&s).await, Err(HypervisorError::UnknownServer(_))), "the driver forgot it");
    assert_eq!(adapter.sweep().await, 0, "an acknowledged reclaim is not reported again");
    let restore = op(&s, Action::Restore, &["RESTORING"]);
    adapter.submit(restore.clone()).await.unwrap();
    settle(&adapter).await;
    let events = sink.of_task(&restore.task_id);
    let last = events.last().unwrap();
    assert_eq!(last.operation_state, OperationState::Aborted);
    assert!(last.error.as_deref().unwrap_or("").contains("reclaimed"), "{last:?}");
}

/// An inventory with one QEMU node (TCG: no KVM probe, no daemon needed to
/// start) and the console proxy on `listen`.
fn qemu_inventory(listen: &str, dir: &std::path::Path) -> vnext_hypervisor::Inventory {
    let text = format!(
        "[[placement]]\nid = \"{ROOT}\"\nname = \"root\"\n\
         [[compute_node]]\nid = \"{NODE_SMALL}\"\nhostname = \"qemu-1\"\nplacements = [\"root\"]\nmemory_mb = 1024\ncpu_units = 1\ndisk_gb = 10\n\
         driver = \"libvirt\"\nlibvirt_uri = \"qemu:///system\"\naccel = \"tcg\"\n\
         [libvirt]\ndir = \"{}\"\n[console_proxy]\nlisten = \"{listen}\"\n",
        dir.display()
    );
    vnext_hypervisor::Inventory::parse(&text, "qemu-inventory.toml").unwrap()
}

#[tokio::test]
async fn libvirt_nodes_start_the_console_proxy_and_a_taken_port_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = Adapter::from_inventory(qemu_inventory("127.0.0.1:0", dir.path()), RecordingSink::new(), fast_retry()).await;
    assert!(adapter.is_ok(), "{:?}", adapter.err().map(|e| e.to_string()));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = Adapter::from_inventory(qemu_inventory(&addr, dir.path()), RecordingSink::new(), fast_retry())
        .await
        .err()
        .expect("the console proxy's port is taken")
        .to_string();
    assert!(
        err.starts_with("qemu-inventory.toml: the console proxy of the libvirt nodes cannot listen on ") && err.contains(&addr),
        "{err}"
    );
    assert!(err.contains("[console_proxy] listen"), "{err}");
}
