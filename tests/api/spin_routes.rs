//! Route precedence over HTTP, as Spin 4 resolves it: an exact route beats
//! named segments, which beat a trailing wildcard; among wildcards the
//! longest prefix wins whatever the declaration order (probe.toml declares
//! them in the least helpful order); no route is a 404; static responses;
//! the last of duplicate routes wins and is reported.

use crate::harness::wait_for;
use crate::probe::{get, probe_host};
use std::time::Duration;

#[test]
fn route_precedence_follows_spin() {
    let host = probe_host().start();
    // (path, component id that must answer, matched route)
    let table: &[(&str, &str, &str)] = &[
        ("/prec/exact", "exact", "/prec/exact"),
        ("/prec/other", "named", "/prec/:name"),
        ("/prec/u/items/i", "named", "/prec/:user_id/items/:item_id"),
        ("/prec/other/more", "wild", "/prec/..."),
        ("/prec/exact/more", "wild", "/prec/..."),
        ("/prec/u/items", "wild", "/prec/..."),
        ("/prec/u/items/i/j", "wild", "/prec/..."),
        ("/prec/deep/x", "deep-wild", "/prec/deep/..."),
        ("/prec/deep/x/y/z", "deep-wild", "/prec/deep/..."),
        ("/prec", "wild", "/prec/..."),
        ("/prec/", "wild", "/prec/..."),
        ("/p3/anything", "probe3", "/p3/..."),
        ("/p2/anything", "probe2", "/p2/..."),
        ("/nokv/headers", "nokv", "/nokv/..."),
        // The last of two identical routes wins.
        ("/dup", "probe2", "/dup"),
    ];
    let mut wrong = Vec::new();
    for (path, id, route) in table {
        let r = get(&host.url(path));
        if r.status != 200 {
            wrong.push(format!("{path}: status {} {}", r.status, r.body));
            continue;
        }
        let j = r.json();
        if j["component_id"] != *id || j["headers"]["spin-matched-route"][0] != *route {
            wrong.push(format!(
                "{path}: answered by {} via {} (expected {id} via {route})",
                j["component_id"], j["headers"]["spin-matched-route"][0]
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong routes:\n{}", wrong.join("\n"));

    // No route: 404, and a wildcard does not match a longer word.
    for path in ["/", "/nothing", "/p3x", "/pre", "/base/only-one", "/static/sub"] {
        let r = get(&host.url(path));
        assert_eq!(r.status, 404, "{path}: expected no route, got {} {}", r.status, r.body);
    }

    // A static response, with its status, headers and body.
    let r = get(&host.url("/static"));
    assert_eq!((r.status, r.body.as_str()), (418, "short and stout"));
    assert_eq!(r.header("x-probe"), Some("static"));

    // The runtime's own health route.
    assert_eq!(get(&host.url("/.well-known/spin/health")).status, 200);

    // The duplicate is reported at start.
    wait_for("the duplicate /dup route to be reported", Duration::from_secs(5), || {
        host.log().lines().any(|l| l.contains("/dup") && l.to_lowercase().contains("warn")).then_some(())
    });
    // And every route is listed, Spin style.
    let log = host.log();
    assert!(log.contains("Available Routes"), "{log}");
    assert!(log.contains(&format!("{}/p3 (wildcard)", host.base)), "{log}");
}
