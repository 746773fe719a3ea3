//! The host's life cycle, as `spin up` users expect: a manifest with an
//! unknown field is refused at start naming the field; SIGTERM lets an
//! in-flight request finish and exits 0; the second start of the same
//! components loads them from the compile cache; an app that does not
//! depend on the hypervisor interface needs no inventory.

use crate::harness::wait_for;
use crate::probe::{get, probe_host, run_expecting_exit, write_manifest};
use std::time::{Duration, Instant};

const VALID: &str = r#"spin_manifest_version = 2

[application]
name = "strict"

[[trigger.http]]
route = "/..."
component = "web"

[component.web]
source = "@P3@"
key_value_stores = ["default"]
"#;

#[test]
fn unknown_manifest_fields_are_errors_naming_the_field() {
    // (what, text replaced in VALID, replacement, word the error must name)
    let cases = [
        ("component field", "key_value_stores", "key_value_storez", "key_value_storez"),
        ("trigger field", "route = \"/...\"", "route = \"/...\"\nroutes = \"/x\"", "routes"),
        ("application field", "name = \"strict\"", "name = \"strict\"\nnmae = \"typo\"", "nmae"),
        ("top-level table", "[application]", "[aplication]\nname = \"x\"\n\n[application]", "aplication"),
        ("manifest version", "spin_manifest_version = 2", "spin_manifest_version = 1", "spin_manifest_version"),
    ];
    for (what, from, to, word) in cases {
        let dir = tempfile::tempdir().unwrap();
        assert!(VALID.contains(from));
        let manifest = write_manifest(dir.path(), &VALID.replacen(from, to, 1));
        let (status, out) = run_expecting_exit(&manifest, &[]);
        assert!(!status.success(), "{what}: exit status {status}");
        assert!(out.contains(word), "{what}: the error should name {word:?}:\n{out}");
    }
    // The unmodified manifest does start (so the cases above fail for their field).
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(dir.path(), VALID);
    let host = crate::probe::manifest_host(&manifest).start();
    assert_eq!(get(&host.url("/web/headers")).status, 200);
}

#[test]
fn sigterm_lets_the_in_flight_request_finish_and_exits_zero() {
    let host = probe_host().start();
    let addr = host.addr;
    let url = host.url("/p3/sleep/1500");
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let r = get(&url);
        (r.status, r.body, started.elapsed())
    });
    // Give the request time to reach the guest; this wait is not asserted on.
    std::thread::sleep(Duration::from_millis(300));
    let stopping = Instant::now();
    let stopper = std::thread::spawn(move || host.stop());
    // While draining, the host takes no new connection.
    wait_for("the listener to close after SIGTERM", Duration::from_secs(1), || {
        std::net::TcpStream::connect(addr).is_err().then_some(())
    });
    let (status, body, elapsed) = slow.join().unwrap();
    assert_eq!((status, body.as_str()), (200, "slept 1500 ms"), "the in-flight request must complete");
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    let exit = stopper.join().unwrap();
    assert_eq!(exit.code(), Some(0), "exit status after SIGTERM: {exit}");
    assert!(stopping.elapsed() < Duration::from_secs(5), "shutdown took {:?}", stopping.elapsed());
}

#[test]
fn second_start_loads_components_from_the_compile_cache() {
    let state = tempfile::tempdir().unwrap();
    // A cache of its own (the harness would otherwise link the shared one).
    std::fs::create_dir_all(state.path().join("cache")).unwrap();
    let ids = ["probe3", "probe2", "nokv", "exact", "named", "wild", "deep-wild"];
    let loaded = |log: &str, how: &str| -> Vec<String> {
        ids.iter()
            .filter(|id| log.lines().any(|l| l.contains(&format!("component {id} (")) && l.contains(how)))
            .map(|s| s.to_string())
            .collect()
    };
    {
        let first = probe_host().state_dir(state.path()).start();
        wait_for("load lines of the first start", Duration::from_secs(5), || {
            (first.log().matches("loaded component").count() >= ids.len()).then_some(())
        });
        let log = first.log();
        // At least the first component of each wasm file was compiled.
        assert!(log.contains("compiled"), "first start on an empty cache:\n{log}");
        // One request first: SIGTERM right after "Serving" can still kill
        // the host before its signal handler exists (reported separately).
        assert_eq!(get(&first.url("/p3/headers/first")).status, 200);
        assert_eq!(first.stop().code(), Some(0));
    }
    let cached = std::fs::read_dir(state.path().join("cache")).unwrap().count();
    assert!(cached >= 2, "expected a cache file per wasm, found {cached}");
    let second = probe_host().state_dir(state.path()).start();
    wait_for("load lines of the second start", Duration::from_secs(5), || {
        (second.log().matches("loaded component").count() >= ids.len()).then_some(())
    });
    let log = second.log();
    assert_eq!(loaded(&log, "from cache").len(), ids.len(), "every component from cache:\n{log}");
    assert!(!log.contains("compiled"), "nothing recompiled:\n{log}");
    assert_eq!(get(&second.url("/p3/headers/cached")).status, 200);
}

/// Like `spin up`, component output reaches the console and is appended to
/// `<state dir>/logs/<component>_stderr.txt` (and `_stdout.txt`).
#[test]
fn component_output_is_kept_in_log_files() {
    crate::probe::require_probes();
    let host = crate::probe::probe_host().start();
    let r = crate::harness::send("GET", &host.url("/p3/trap"), None, None);
    assert_eq!(r.status, 500);
    let file = host.state_dir.join("logs/probe3_stderr.txt");
    let text = crate::harness::wait_for("the panic message in the log file", std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(&file).ok().filter(|t| t.contains("probe asked to trap"))
    });
    assert!(text.contains("panicked"), "{text}");
    assert!(host.state_dir.join("logs/probe3_stdout.txt").exists());
}

#[test]
fn an_app_without_a_hypervisor_dependency_needs_no_inventory() {
    // Any Spin app runs with `vnext up -f app.toml` alone, as with `spin up`:
    // no inventory is read when no component depends on the hypervisor.
    crate::probe::require_probes();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(dir.path(), VALID);
    let host = crate::harness::HostBuilder::new(&manifest).start();
    assert_eq!(get(&host.url("/web/headers")).status, 200);
    assert!(host.log().contains("running without a hypervisor adapter"), "{}", host.log());
}

#[test]
fn an_app_that_needs_the_hypervisor_names_the_missing_default_inventory() {
    crate::probe::require_probes();
    let dir = tempfile::tempdir().unwrap();
    let with_dependency = format!(
        "{VALID}\n[component.web.dependencies]\n\"vnext:compute/hypervisor@0.1.0\" = {{ path = \"client.wasm\" }}\n"
    );
    let manifest = write_manifest(dir.path(), &with_dependency);
    let state = tempfile::tempdir().unwrap();
    // Run where deploy/sample-inventory.toml does not exist.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vnext"))
        .current_dir(dir.path())
        .arg("up")
        .arg("-f")
        .arg(&manifest)
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .output()
        .expect("run vnext");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "started without an inventory:\n{text}");
    assert!(
        text.contains("deploy/sample-inventory.toml") && text.contains("--inventory") && text.contains("\"web\""),
        "the error should name the component, the inventory file and the flag:\n{text}"
    );
}
