//! What a component is configured with, as in Spin: application variables
//! (defaults, `SPIN_VARIABLE_*` overrides, templates, only the component's
//! own variables), `environment`, and `allowed_outbound_hosts` (with
//! `{{ variable }}` templates and `*.spin.internal` service chaining).

use crate::probe::{TestServer, get, manifest_host, probe_host, run_expecting_exit, write_manifest};

#[test]
fn variables_environment_and_outbound_hosts() {
    let allowed = TestServer::start("hello from the allowed server");
    let denied = TestServer::start("nobody should reach this");
    let port = allowed.port.to_string();
    let host = probe_host()
        .env("SPIN_VARIABLE_OVERRIDDEN", "from-env")
        .env("SPIN_VARIABLE_OUTBOUND_PORT", &port)
        .env("PROBE_LEAK", "host environment")
        .start();

    // ---- variables: (path, status, body or a fragment of the error)
    let table: &[(&str, u16, &str)] = &[
        ("/p3/var/greeting", 200, "hello"),
        ("/p3/var/overridden", 200, "from-env"),
        ("/p3/var/combined", 200, "hello-world"),
        ("/p3/var/token", 200, "not-a-real-token"),
        // An application variable the component did not map.
        ("/p3/var/outbound_port", 404, "Undefined"),
        ("/p3/var/undeclared", 404, "Undefined"),
        ("/p3/var/Bad-Name", 404, "InvalidName"),
        // A component without a `variables` table sees none.
        ("/nokv/var/greeting", 404, "Undefined"),
    ];
    let mut wrong = Vec::new();
    for (path, status, body) in table {
        let r = get(&host.url(path));
        let ok = r.status == *status && if *status == 200 { r.body == *body } else { r.body.contains(body) };
        if !ok {
            wrong.push(format!("{path}: {} {:?} (expected {status} {body:?})", r.status, r.body));
        }
    }

    // ---- environment: the manifest's, not the host's.
    for (path, status, body) in [
        ("/p3/env/PROBE_ENV", 200, "from-manifest"),
        ("/p3/env/PROBE_COMPONENT", 200, "probe3"),
        ("/nokv/env/PROBE_ENV", 404, ""),
        ("/p3/env/PROBE_LEAK", 404, ""),
        ("/p3/env/SPIN_VARIABLE_OVERRIDDEN", 404, ""),
    ] {
        let r = get(&host.url(path));
        if r.status != status || (status == 200 && r.body != body) {
            wrong.push(format!("{path}: {} {:?} (expected {status} {body:?})", r.status, r.body));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // ---- outbound: the templated entry allows exactly that port.
    let r = get(&host.url(&format!("/p3/outbound?url=http://127.0.0.1:{port}/hello")));
    assert_eq!(r.status, 200, "allowed outbound request failed: {}", r.body);
    let j = r.json();
    assert_eq!(j["status"], 200);
    assert_eq!(j["body"], "hello from the allowed server");
    assert_eq!(allowed.accepted(), 1);

    // The same rules for a WASI 0.2 component (wasi:http/outgoing-handler).
    let r = get(&host.url(&format!("/p2/outbound?url=http://127.0.0.1:{port}/from-p2")));
    assert_eq!(r.status, 200, "allowed outbound request from p2 failed: {}", r.body);
    assert_eq!(r.json()["body"], "hello from the allowed server");
    assert_eq!(allowed.accepted(), 2);

    for (path, why) in [
        (format!("/p2/outbound?url=http://127.0.0.1:{}/x", denied.port), "p2: port not listed"),
        (format!("/p2/outbound?url=http://probe2.spin.internal/p2/headers"), "p2: not listed"),
        (format!("/p3/outbound?url=http://127.0.0.1:{}/x", denied.port), "port not listed"),
        (format!("/p3/outbound?url=https://127.0.0.1:{port}/x"), "scheme not listed"),
        (format!("/nokv/outbound?url=http://127.0.0.1:{port}/x"), "component lists no host"),
    ] {
        let r = get(&host.url(&path));
        assert_eq!(r.status, 502, "{why}: {path} -> {} {}", r.status, r.body);
        assert!(r.body.contains("HttpRequestDenied"), "{why}: {}", r.body);
    }
    assert_eq!(denied.accepted(), 0, "a denied request must not even connect");
    assert_eq!(allowed.accepted(), 2, "denied requests must not connect");

    // Service chaining: http://<component>.spin.internal, listed in the manifest.
    let r = get(&host.url("/p3/outbound?url=http://probe2.spin.internal/p2/headers/chained"));
    assert_eq!(r.status, 200, "{}", r.body);
    let inner: serde_json::Value = serde_json::from_str(r.json()["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["component_id"], "probe2", "{inner}");
    // ... but only for components listed.
    let r = get(&host.url("/p3/outbound?url=http://nokv.spin.internal/nokv/headers"));
    assert_eq!(r.status, 502, "{}", r.body);
}

#[test]
fn a_required_variable_without_value_stops_the_start_naming_its_env_var() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        r#"spin_manifest_version = 2
[application]
name = "needs-a-key"
[variables]
api_key = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "@P3@"
variables = { key = "{{ api_key }}" }
"#,
    );
    let (status, out) = run_expecting_exit(&manifest, &[]);
    assert!(!status.success(), "exit status {status}");
    assert!(out.contains("SPIN_VARIABLE_API_KEY"), "the error should say what to set:\n{out}");

    // With the variable set it starts, and the component reads it.
    let host = manifest_host(&manifest).env("SPIN_VARIABLE_API_KEY", "k-123").start();
    let r = get(&host.url("/x/var/key"));
    assert_eq!((r.status, r.body.as_str()), (200, "k-123"));
}
