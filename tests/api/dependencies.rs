//! Component dependencies (`[component.x.dependencies]`) composed at load,
//! as Spin does: the vNext app with `--hypervisor dependency` (the
//! hypervisor-client component composed into each API component, calls going
//! to a `vnext adapter` process), and the manifest rules a platform team
//! composing its own components relies on.

use crate::harness::{Host, HostBuilder, repo_root, send, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const PROJECT: &str = "22222222-2222-4222-8222-222222222222";

fn member() -> String {
    format!("33333333-3333-4333-8333-333333333333:{PROJECT}")
}

fn admin() -> String {
    format!("11111111-1111-4111-8111-111111111111:{PROJECT}:admin")
}

fn dependency_host() -> Host {
    HostBuilder::new(repo_root().join("spin.toml"))
        .arg("--inventory")
        .arg(repo_root().join("tests/fixtures/inventory.toml").to_str().unwrap())
        .adapter_process()
        .start()
}

fn launch_active(host: &Host, hostname: &str) -> String {
    let ty = send(
        "POST",
        &host.url("/server_types"),
        Some(&admin()),
        Some(&json!({"name": format!("dep.{hostname}"), "visibility": "PUBLIC", "spec": {"memory_mb": 512, "cpu_units": 1}})),
    );
    assert_eq!(ty.status, 201, "{}", ty.body);
    let ty = ty.json()["id"].as_str().unwrap().to_string();
    let r = send(
        "POST",
        &host.url(&format!("/projects/{PROJECT}/servers")),
        Some(&member()),
        Some(&json!({"defaults": {"type_id": ty, "template_id": "44444444-4444-4444-8444-444444444444"}, "servers": [{"hostname": hostname}]})),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()[0]["id"].as_str().unwrap().to_string();
    wait_for("the server to become ACTIVE", Duration::from_secs(20), || {
        let s = send("GET", &host.url(&format!("/servers/{id}")), Some(&member()), None).json();
        (s["virt_state"] == "ACTIVE").then_some(())
    });
    id
}

#[test]
fn the_hypervisor_dependency_is_composed_and_its_calls_reach_the_adapter_process() {
    let mut host = dependency_host();
    let log = host.log();
    for component in ["servers", "server-tasks", "placements"] {
        assert!(
            log.contains(&format!("loaded component {component} composed with vnext:compute/hypervisor@0.1.0")),
            "{component} should be composed with hypervisor-client:\n{log}"
        );
    }
    let id = launch_active(&host, "dep-1");
    let task = send("POST", &host.url(&format!("/servers/{id}/tasks")), Some(&member()), Some(&json!({"action": "REBOOT"})));
    assert_eq!(task.status, 202, "{}", task.body);
    let task_id = task.json()["id"].as_str().unwrap().to_string();
    wait_for("the REBOOT to complete", Duration::from_secs(20), || {
        let t = send("GET", &host.url(&format!("/server_tasks/{task_id}")), Some(&member()), None).json();
        (t["state"] == "COMPLETED").then_some(())
    });

    // Without the adapter process, hypervisor calls fail cleanly (503 with
    // Retry-After), the API's own records still answer, and everything
    // works again once the adapter is back.
    host.kill_adapter();
    let down = send("GET", &host.url("/placements"), Some(&member()), None);
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.header("retry-after").is_some(), "a 503 says when to retry");
    let stored = send("GET", &host.url(&format!("/servers/{id}")), Some(&member()), None);
    assert_eq!(stored.status, 200, "{}", stored.body);
    host.restart_adapter();
    let up = send("GET", &host.url("/placements"), Some(&member()), None);
    assert_eq!(up.status, 200, "{}", up.body);
    let placements: Value = up.json();
    assert!(placements["placements"].as_array().is_some_and(|p| !p.is_empty()), "{placements}");
}

/// Writes spin.toml with `edit` applied, next to the real one (so its
/// relative paths hold), and returns what `vnext up` printed when it refused it.
fn refused(name: &str, edit: impl Fn(&str) -> String, mode: &str) -> String {
    let original = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap();
    let edited = edit(&original);
    assert_ne!(edited, original, "the edit must change the manifest");
    let path = repo_root().join(format!("target/test-{name}-{}.toml", std::process::id()));
    // target/ is next to spin.toml's `target/...` sources: same base directory
    // one level down, so sources are rewritten to stay valid.
    std::fs::write(&path, edited.replace("\"target/", "\"../target/")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vnext"));
    cmd.arg("up").arg("-f").arg(&path).args(["--listen", "127.0.0.1:0", "--hypervisor", mode, "--state-dir"]).arg(state.path());
    if mode == "in-process" {
        cmd.arg("--inventory").arg(repo_root().join("tests/fixtures/inventory.toml"));
    }
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&path);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "vnext up should refuse the manifest:\n{text}");
    text
}

#[test]
fn a_dependency_that_does_not_inherit_outbound_hosts_is_refused_naming_the_key() {
    let text = refused(
        "no-outbound",
        |m| {
            m.replacen(
                "inherit_configuration = [\"allowed_outbound_hosts\", \"variables\"]",
                "inherit_configuration = [\"variables\"]",
                1,
            )
        },
        "dependency",
    );
    assert!(
        text.contains("needs the parent's allowed_outbound_hosts") && text.contains("vnext:compute/hypervisor@0.1.0"),
        "the error names the dependency and the key that would grant the capability:\n{text}"
    );
}

#[test]
fn a_dependency_naming_no_import_is_refused_even_when_the_hypervisor_is_served_in_process() {
    // Only the dependency on the hypervisor interface is left out in-process;
    // any other dependency is composed, and one that fits no import is an error.
    let text = refused(
        "no-import",
        |m| {
            m.replacen(
                "[component.projects.build]",
                "[component.projects.dependencies]\n\"example:missing/thing@1.0.0\" = { path = \"target/wasm32-wasip2/release/vnext_hypervisor_client.wasm\" }\n\n[component.projects.build]",
                1,
            )
        },
        "in-process",
    );
    assert!(
        text.contains("\"example:missing/thing@1.0.0\" matches no import of component \"projects\""),
        "the error names the key and the component:\n{text}"
    );
}

#[test]
fn inherit_configuration_names_only_known_keys() {
    let text = refused(
        "bad-key",
        |m| m.replacen("inherit_configuration = [\"allowed_outbound_hosts\", \"variables\"]", "inherit_configuration = [\"outbound\"]", 1),
        "dependency",
    );
    assert!(text.contains("\"outbound\" is no configuration key") && text.contains("allowed_outbound_hosts"), "{text}");
}
