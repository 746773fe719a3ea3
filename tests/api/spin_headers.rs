//! The `spin-*` request headers a component receives, exactly as Spin
//! documents them, for WASI 0.3 and WASI 0.2 components alike; and the
//! request URI the guest sees (authority from the Host header).

use crate::probe::{probe_host, raw_request};
use std::collections::BTreeMap;

type Headers = BTreeMap<String, Vec<String>>;

struct Case {
    what: &'static str,
    /// Request target (path and query) as sent.
    target: &'static str,
    /// `None`: an HTTP/1.0 request without a Host header.
    host: Option<&'static str>,
    /// Extra request headers, e.g. forged `spin-*` ones.
    extra: &'static [(&'static str, &'static str)],
    /// Which probe answers: "p3" or "p2".
    kind: &'static str,
    component_id: &'static str,
    route: &'static str,
    component_route: &'static str,
    path_info: &'static str,
    params: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        what: "Spin's documented example",
        target: "/base/path/end/rest?key=value",
        host: Some("example.com"),
        extra: &[],
        kind: "p3",
        component_id: "probe3",
        route: "/base/:path_segment/:path_end/...",
        component_route: "/base/:path_segment/:path_end",
        path_info: "/rest",
        params: &[("spin-path-match-path-segment", "path"), ("spin-path-match-path-end", "end")],
    },
    Case {
        what: "named segments then nothing for the wildcard",
        target: "/base/one/two",
        host: Some("example.com"),
        extra: &[],
        kind: "p3",
        component_id: "probe3",
        route: "/base/:path_segment/:path_end/...",
        component_route: "/base/:path_segment/:path_end",
        path_info: "",
        params: &[("spin-path-match-path-segment", "one"), ("spin-path-match-path-end", "two")],
    },
    Case {
        what: "wildcard with deeper path and a query, Host with a port",
        target: "/p3/headers/a/b?x=1&y=2",
        host: Some("myapp.example:8080"),
        extra: &[],
        kind: "p3",
        component_id: "probe3",
        route: "/p3/...",
        component_route: "/p3",
        path_info: "/headers/a/b",
        params: &[],
    },
    Case {
        what: "wildcard route requested without trailing slash: empty path info",
        target: "/p3",
        host: Some("example.com"),
        extra: &[],
        kind: "p3",
        component_id: "probe3",
        route: "/p3/...",
        component_route: "/p3",
        path_info: "",
        params: &[],
    },
    Case {
        what: "wildcard route requested with a trailing slash: path info \"/\"",
        target: "/p3/",
        host: Some("example.com"),
        extra: &[],
        kind: "p3",
        component_id: "probe3",
        route: "/p3/...",
        component_route: "/p3",
        path_info: "/",
        params: &[],
    },
    Case {
        what: "exact route",
        target: "/prec/exact",
        host: Some("example.com"),
        extra: &[],
        kind: "p3",
        component_id: "exact",
        route: "/prec/exact",
        component_route: "/prec/exact",
        path_info: "",
        params: &[],
    },
    Case {
        what: "named segments with '_' become '-' in the header name",
        target: "/prec/u-1/items/I_2",
        host: Some("example.com"),
        extra: &[],
        kind: "p3",
        component_id: "named",
        route: "/prec/:user_id/items/:item_id",
        component_route: "/prec/:user_id/items/:item_id",
        path_info: "",
        params: &[("spin-path-match-user-id", "u-1"), ("spin-path-match-item-id", "I_2")],
    },
    Case {
        what: "single named segment",
        target: "/prec/some-name?q=%20x",
        host: Some("example.com"),
        extra: &[],
        kind: "p3",
        component_id: "named",
        route: "/prec/:name",
        component_route: "/prec/:name",
        path_info: "",
        params: &[("spin-path-match-name", "some-name")],
    },
    Case {
        what: "longest wildcard prefix",
        target: "/prec/deep/x/y",
        host: Some("example.com"),
        extra: &[],
        kind: "p3",
        component_id: "deep-wild",
        route: "/prec/deep/...",
        component_route: "/prec/deep",
        path_info: "/x/y",
        params: &[],
    },
    Case {
        what: "no Host header: localhost",
        target: "/p3/headers/nohost?a=b",
        host: None,
        extra: &[],
        kind: "p3",
        component_id: "probe3",
        route: "/p3/...",
        component_route: "/p3",
        path_info: "/headers/nohost",
        params: &[],
    },
    Case {
        what: "forged spin-* request headers are replaced, unknown ones dropped",
        target: "/p3/headers/forged",
        host: Some("example.com"),
        extra: &[
            ("spin-path-info", "/evil"),
            ("Spin-Full-Url", "http://evil.example/"),
            ("spin-client-addr", "6.6.6.6:66"),
            ("spin-matched-route", "/evil/..."),
            ("spin-path-match-name", "evil"),
            ("spin-custom", "evil"),
        ],
        kind: "p3",
        component_id: "probe3",
        route: "/p3/...",
        component_route: "/p3",
        path_info: "/headers/forged",
        params: &[],
    },
    Case {
        what: "WASI 0.2 component: same headers",
        target: "/p2/headers/z?q=1",
        host: Some("p2.example"),
        extra: &[],
        kind: "p2",
        component_id: "probe2",
        route: "/p2/...",
        component_route: "/p2",
        path_info: "/headers/z",
        params: &[],
    },
    Case {
        what: "WASI 0.2 component: forged headers replaced",
        target: "/p2/headers/forged",
        host: Some("p2.example"),
        extra: &[("spin-path-info", "/evil"), ("spin-base-path", "/evil"), ("spin-extra", "1")],
        kind: "p2",
        component_id: "probe2",
        route: "/p2/...",
        component_route: "/p2",
        path_info: "/headers/forged",
        params: &[],
    },
    Case {
        what: "WASI 0.2 component without Host header",
        target: "/p2",
        host: None,
        extra: &[],
        kind: "p2",
        component_id: "probe2",
        route: "/p2/...",
        component_route: "/p2",
        path_info: "",
        params: &[],
    },
];

fn one(v: impl Into<String>) -> Vec<String> {
    vec![v.into()]
}

#[test]
fn spin_headers_are_exactly_the_documented_set() {
    let host = probe_host().start();
    let mut failures = Vec::new();
    for c in CASES {
        let mut req = match c.host {
            Some(h) => format!("GET {} HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n", c.target),
            None => format!("GET {} HTTP/1.0\r\n", c.target),
        };
        for (k, v) in c.extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let (resp, client) = raw_request(host.addr, &req);
        if resp.status != 200 {
            failures.push(format!("{}: GET {} -> {} {}", c.what, c.target, resp.status, resp.body));
            continue;
        }
        let got = resp.json();
        let authority = c.host.unwrap_or("localhost");
        let mut expected: Headers = BTreeMap::from([
            ("spin-full-url".to_string(), one(format!("http://{authority}{}", c.target))),
            ("spin-path-info".to_string(), one(c.path_info)),
            ("spin-matched-route".to_string(), one(c.route)),
            ("spin-raw-component-route".to_string(), one(c.route)),
            ("spin-component-route".to_string(), one(c.component_route)),
            ("spin-base-path".to_string(), one("/")),
            ("spin-client-addr".to_string(), one(client.to_string())),
        ]);
        for (k, v) in c.params {
            expected.insert(k.to_string(), one(*v));
        }
        let actual: Headers = serde_json::from_value(got["headers"].clone()).unwrap();
        if actual != expected {
            failures.push(format!(
                "{}: GET {} (Host {:?})\n  expected {expected:?}\n  got      {actual:?}",
                c.what, c.target, c.host
            ));
        }
        if got["component"] != c.kind || got["component_id"] != c.component_id {
            failures.push(format!(
                "{}: answered by {} {} instead of {} {}",
                c.what, got["component"], got["component_id"], c.kind, c.component_id
            ));
        }
        // The guest's request URI keeps the Host header's authority and the
        // full path with query.
        if got["authority"] != authority || got["path_and_query"] != c.target {
            failures.push(format!(
                "{}: guest saw authority {} and path {} (expected {authority:?} and {:?})",
                c.what, got["authority"], got["path_and_query"], c.target
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

/// The method and body reach the guest, whatever the route kind, and the
/// spin-* set does not depend on the method.
#[test]
fn spin_headers_do_not_depend_on_the_method() {
    let host = probe_host().start();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let req = format!(
            "{method} /p3/headers/m HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
        let (resp, _) = raw_request(host.addr, &req);
        assert_eq!(resp.status, 200, "{method}: {}", resp.body);
        let got = resp.json();
        assert_eq!(got["method"], method);
        assert_eq!(got["headers"]["spin-path-info"][0], "/headers/m", "{method}");
        assert_eq!(got["headers"].as_object().unwrap().len(), 7, "{method}: {}", got["headers"]);
    }
}
