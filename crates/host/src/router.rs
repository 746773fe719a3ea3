//! HTTP routing with Spin 4's rules, built in explicit stages:
//!
//! 1. [`RoutePattern::parse`] turns a manifest route string into segments
//!    (literal, `:name`, trailing wildcard `/...` or `/*`);
//! 2. [`Router::build`] collects the triggers, keeps the last of duplicate
//!    routes and reports the ones it dropped, and refuses reserved routes;
//! 3. [`Router::route`] matches a request path: an exact route beats a route
//!    with named segments, which beats a trailing wildcard; among wildcards the
//!    longest prefix wins, whatever the declaration order;
//! 4. [`RouteMatch::spin_headers`] computes the `spin-*` headers the
//!    component receives, exactly the set Spin sets.

use std::collections::HashMap;

/// Routes under this prefix belong to the runtime, as in Spin.
pub const RESERVED_PREFIX: &str = "/.well-known/spin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
}

/// Whether a route ends in a trailing wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    Exact,
    Wildcard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    /// The route as written in the manifest.
    pub raw: String,
    pub segments: Vec<Segment>,
    pub tail: Tail,
}

/// The precedence class of a route: lower sorts first (wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Exact,
    Named,
    Wildcard,
}

impl RoutePattern {
    pub fn parse(raw: &str) -> anyhow::Result<RoutePattern> {
        if !raw.starts_with('/') {
            anyhow::bail!("route {raw:?} must start with '/'");
        }
        let (body, tail) = if raw == "/..." || raw == "/*" {
            ("", Tail::Wildcard)
        } else if let Some(b) = raw.strip_suffix("/...").or_else(|| raw.strip_suffix("/*")) {
            (b, Tail::Wildcard)
        } else {
            (raw.trim_end_matches('/'), Tail::Exact)
        };
        let mut segments = Vec::new();
        for s in body.split('/').skip(1) {
            if s == "..." || s == "*" {
                anyhow::bail!("route {raw:?}: a wildcard may only end a route");
            }
            segments.push(match s.strip_prefix(':') {
                Some("") => anyhow::bail!("route {raw:?}: a named segment needs a name after ':'"),
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(s.to_string()),
            });
        }
        Ok(RoutePattern { raw: raw.to_string(), segments, tail })
    }

    fn class(&self) -> Class {
        match self.tail {
            Tail::Wildcard => Class::Wildcard,
            Tail::Exact if self.segments.iter().any(|s| matches!(s, Segment::Param(_))) => {
                Class::Named
            }
            Tail::Exact => Class::Exact,
        }
    }

    /// Route without the trailing wildcard (`spin-component-route`).
    pub fn component_route(&self) -> String {
        match self.tail {
            Tail::Exact => self.raw.clone(),
            Tail::Wildcard => {
                let mut s = String::new();
                for seg in &self.segments {
                    s.push('/');
                    match seg {
                        Segment::Literal(l) => s.push_str(l),
                        Segment::Param(p) => {
                            s.push(':');
                            s.push_str(p)
                        }
                    }
                }
                s
            }
        }
    }

    /// Matches a request path; on success the named segments and the path
    /// info (what the wildcard consumed; empty for non-wildcard routes).
    fn matches(&self, path: &str) -> Option<(Vec<(String, String)>, String)> {
        let mut rest = path;
        let mut params = Vec::new();
        for seg in &self.segments {
            let after = rest.strip_prefix('/')?;
            let (part, remainder) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) if !part.is_empty() => {
                    params.push((name.clone(), part.to_string()))
                }
                Segment::Param(_) => return None,
            }
            rest = remainder;
        }
        match self.tail {
            Tail::Wildcard => Some((params, rest.to_string())),
            Tail::Exact if rest.is_empty() || (rest == "/" && self.segments.is_empty()) => {
                Some((params, String::new()))
            }
            Tail::Exact => None,
        }
    }

    /// Literal segments before the first parameter outrank parameters, segment
    /// by segment: `/servers/:id/tasks` beats `/servers/:id/:sub`.
    fn specificity(&self) -> Vec<u8> {
        self.segments.iter().map(|s| matches!(s, Segment::Param(_)) as u8).collect()
    }
}

/// What a route leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Component(String),
    /// Index into the manifest's static responses.
    Static(usize),
}

#[derive(Debug, Clone)]
pub struct Route {
    pub pattern: RoutePattern,
    pub target: Target,
}

/// A route dropped because a later trigger declared the same route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute {
    pub route: String,
    pub replaced: Target,
    pub by: Target,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
    duplicates: Vec<DuplicateRoute>,
}

#[derive(Debug, Clone)]
pub struct RouteMatch<'a> {
    pub route: &'a Route,
    pub params: Vec<(String, String)>,
    pub path_info: String,
}

impl Router {
    /// Stage 2: build from `(route, target)` pairs in declaration order.
    pub fn build(entries: impl IntoIterator<Item = (String, Target)>) -> anyhow::Result<Router> {
        let mut routes: Vec<Route> = Vec::new();
        let mut duplicates = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (raw, target) in entries {
            let pattern = RoutePattern::parse(&raw)?;
            if pattern.raw == RESERVED_PREFIX || pattern.raw.starts_with(&format!("{RESERVED_PREFIX}/")) {
                anyhow::bail!("route {raw:?} is reserved for the runtime ({RESERVED_PREFIX}/...)");
            }
            // Duplicates compare by shape: `/a/:x` and `/a/:y` are the same route.
            let key = format!("{:?}{:?}", shape(&pattern), pattern.tail);
            match index.get(&key) {
                Some(&i) => {
                    duplicates.push(DuplicateRoute {
                        route: raw.clone(),
                        replaced: routes[i].target.clone(),
                        by: target.clone(),
                    });
                    routes[i] = Route { pattern, target };
                }
                None => {
                    index.insert(key, routes.len());
                    routes.push(Route { pattern, target });
                }
            }
        }
        Ok(Router { routes, duplicates })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn duplicates(&self) -> &[DuplicateRoute] {
        &self.duplicates
    }

    /// Stage 3: the route a request path goes to, if any.
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let mut best: Option<(Key, RouteMatch<'_>)> = None;
        for route in &self.routes {
            let Some((params, path_info)) = route.pattern.matches(path) else { continue };
            let key = Key::of(&route.pattern);
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((key, RouteMatch { route, params, path_info }));
            }
        }
        best.map(|(_, m)| m)
    }
}

fn shape(p: &RoutePattern) -> Vec<Option<&str>> {
    p.segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => Some(l.as_str()),
            Segment::Param(_) => None,
        })
        .collect()
}

/// Sort key of a matching route: the smallest wins.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    class: Class,
    /// Longer wildcard prefixes first (negated length).
    neg_len: isize,
    specificity: Vec<u8>,
}

impl Key {
    fn of(p: &RoutePattern) -> Key {
        let class = p.class();
        let neg_len = match class {
            Class::Wildcard => -(p.segments.len() as isize),
            _ => 0,
        };
        Key { class, neg_len, specificity: p.specificity() }
    }
}

/// Where the request came from, for the headers.
pub struct RequestInfo<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// From the Host header; `localhost` when absent.
    pub host: Option<&'a str>,
    /// Path and query as received.
    pub path_and_query: &'a str,
    pub client_addr: std::net::SocketAddr,
}

impl RouteMatch<'_> {
    /// Stage 4: the `spin-*` request headers, exactly the set Spin 4 sets.
    pub fn spin_headers(&self, req: &RequestInfo<'_>) -> Vec<(String, String)> {
        let host = req.host.unwrap_or("localhost");
        let raw = self.route.pattern.raw.clone();
        let mut h = vec![
            ("spin-full-url".to_string(), format!("{}://{}{}", req.scheme, host, req.path_and_query)),
            ("spin-path-info".to_string(), self.path_info.clone()),
            ("spin-matched-route".to_string(), raw.clone()),
            ("spin-raw-component-route".to_string(), raw),
            ("spin-component-route".to_string(), self.route.pattern.component_route()),
            ("spin-base-path".to_string(), "/".to_string()),
            ("spin-client-addr".to_string(), req.client_addr.to_string()),
        ];
        for (name, value) in &self.params {
            h.push((
                format!("spin-path-match-{}", name.replace('_', "-").to_lowercase()),
                value.clone(),
            ));
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router {
        Router::build(routes.iter().map(|r| (r.to_string(), Target::Component(r.to_string()))))
            .unwrap()
    }

    fn winner(r: &Router, path: &str) -> Option<String> {
        r.route(path).map(|m| m.route.pattern.raw.clone())
    }

    #[test]
    fn exact_beats_wildcard() {
        let r = router(&["/foo/...", "/foo"]);
        assert_eq!(winner(&r, "/foo").as_deref(), Some("/foo"));
        let r = router(&["/foo", "/foo/..."]);
        assert_eq!(winner(&r, "/foo").as_deref(), Some("/foo"));
    }

    #[test]
    fn exact_beats_named_segment() {
        let r = router(&["/servers/:id", "/servers/new"]);
        assert_eq!(winner(&r, "/servers/new").as_deref(), Some("/servers/new"));
        assert_eq!(winner(&r, "/servers/abc").as_deref(), Some("/servers/:id"));
    }

    #[test]
    fn named_segment_beats_wildcard() {
        let r = router(&["/servers/...", "/servers/:id/tasks"]);
        assert_eq!(winner(&r, "/servers/1/tasks").as_deref(), Some("/servers/:id/tasks"));
        assert_eq!(winner(&r, "/servers/1/tags").as_deref(), Some("/servers/..."));
    }

    #[test]
    fn longest_wildcard_prefix_wins_whatever_the_order() {
        for routes in [["/...", "/api/...", "/api/v2/..."], ["/api/v2/...", "/api/...", "/..."]] {
            let r = router(&routes);
            assert_eq!(winner(&r, "/api/v2/x").as_deref(), Some("/api/v2/..."));
            assert_eq!(winner(&r, "/api/v1/x").as_deref(), Some("/api/..."));
            assert_eq!(winner(&r, "/other").as_deref(), Some("/..."));
        }
    }

    #[test]
    fn wildcard_matches_its_prefix_itself_but_not_a_longer_word() {
        let r = router(&["/foo/..."]);
        assert_eq!(winner(&r, "/foo").as_deref(), Some("/foo/..."));
        assert_eq!(winner(&r, "/foo/").as_deref(), Some("/foo/..."));
        assert_eq!(winner(&r, "/foobar"), None);
    }

    #[test]
    fn star_is_a_wildcard_too() {
        let r = router(&["/static/*"]);
        assert_eq!(r.route("/static/a/b").unwrap().path_info, "/a/b");
    }

    #[test]
    fn path_info_is_what_the_wildcard_consumed() {
        let r = router(&["/foo/..."]);
        assert_eq!(r.route("/foo").unwrap().path_info, "");
        assert_eq!(r.route("/foo/").unwrap().path_info, "/");
        assert_eq!(r.route("/foo/bar/baz").unwrap().path_info, "/bar/baz");
    }

    #[test]
    fn last_duplicate_wins_and_is_reported() {
        let r = Router::build([
            ("/dup".to_string(), Target::Component("first".into())),
            ("/dup".to_string(), Target::Component("second".into())),
        ])
        .unwrap();
        assert_eq!(r.route("/dup").unwrap().route.target, Target::Component("second".into()));
        assert_eq!(r.duplicates().len(), 1);
        assert_eq!(r.duplicates()[0].replaced, Target::Component("first".into()));
    }

    #[test]
    fn reserved_routes_are_refused() {
        assert!(Router::build([("/.well-known/spin/x".to_string(), Target::Static(0))]).is_err());
        assert!(Router::build([("/.well-known/spin/...".to_string(), Target::Static(0))]).is_err());
    }

    #[test]
    fn root_exact_route_matches_only_root() {
        let r = router(&["/"]);
        assert_eq!(winner(&r, "/").as_deref(), Some("/"));
        assert_eq!(winner(&r, "/x"), None);
    }

    #[test]
    fn empty_named_segment_does_not_match() {
        let r = router(&["/servers/:id"]);
        assert_eq!(winner(&r, "/servers/"), None);
    }

    /// The example from Spin's documentation of the request headers.
    #[test]
    fn headers_match_spins_documented_example() {
        let r = router(&["/base/:path_segment/:path_end/..."]);
        let m = r.route("/base/path/end/rest").unwrap();
        let h: HashMap<String, String> = m
            .spin_headers(&RequestInfo {
                scheme: "http",
                host: Some("example.com"),
                path_and_query: "/base/path/end/rest?key=value",
                client_addr: "127.0.0.1:51234".parse().unwrap(),
            })
            .into_iter()
            .collect();
        let expect = [
            ("spin-full-url", "http://example.com/base/path/end/rest?key=value"),
            ("spin-path-info", "/rest"),
            ("spin-matched-route", "/base/:path_segment/:path_end/..."),
            ("spin-raw-component-route", "/base/:path_segment/:path_end/..."),
            ("spin-component-route", "/base/:path_segment/:path_end"),
            ("spin-base-path", "/"),
            ("spin-client-addr", "127.0.0.1:51234"),
            ("spin-path-match-path-segment", "path"),
            ("spin-path-match-path-end", "end"),
        ];
        for (k, v) in expect {
            assert_eq!(h.get(k).map(String::as_str), Some(v), "header {k}");
        }
        assert_eq!(h.len(), expect.len(), "no other spin-* header: {h:?}");
    }

    #[test]
    fn full_url_defaults_host_to_localhost() {
        let r = router(&["/x"]);
        let h = r.route("/x").unwrap().spin_headers(&RequestInfo {
            scheme: "http",
            host: None,
            path_and_query: "/x",
            client_addr: "127.0.0.1:1".parse().unwrap(),
        });
        assert_eq!(h[0], ("spin-full-url".into(), "http://localhost/x".into()));
    }

    #[test]
    fn non_wildcard_path_info_is_empty() {
        let r = router(&["/servers/:id"]);
        assert_eq!(r.route("/servers/42").unwrap().path_info, "");
    }
}
