//! `allowed_outbound_hosts`: which outbound HTTP requests a component may make.
//!
//! Entries follow Spin's form `scheme://host[:port]`: `*` for any scheme,
//! host or port, `*.example.com` for subdomains, and a default port from the
//! scheme (80 for http, 443 for https) when none is given. `http://self` (and
//! `http://localhost` style entries) allow calling the application itself;
//! `http://<component>.spin.internal` allows calling one of its components
//! in-process.

use anyhow::bail;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
}

impl Pattern {
    fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => e.eq_ignore_ascii_case(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: any subdomain (not the bare domain).
    Subdomains(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Pattern,
    host: HostPattern,
    /// `None`: the scheme's default port.
    port: Option<Pattern>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    pub fn parse(entry: &str) -> anyhow::Result<AllowedHost> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("allowed_outbound_hosts entry {entry:?} needs a scheme, like \"https://{entry}\"");
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            bail!("allowed_outbound_hosts entry {entry:?} may not contain a path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
        };
        let host = match host {
            "*" => HostPattern::Any,
            h if h.starts_with("*.") => HostPattern::Subdomains(h[2..].to_ascii_lowercase()),
            "" => bail!("allowed_outbound_hosts entry {entry:?} has no host"),
            h => HostPattern::Exact(h.to_ascii_lowercase()),
        };
        let port = match port {
            None => None,
            Some("*") => Some(Pattern::Any),
            Some(p) if p.parse::<u16>().is_ok() => Some(Pattern::Exact(p.to_string())),
            Some(p) => bail!("allowed_outbound_hosts entry {entry:?} has an invalid port {p:?}"),
        };
        let scheme = if scheme == "*" { Pattern::Any } else { Pattern::Exact(scheme.to_string()) };
        Ok(AllowedHost { scheme, host, port })
    }

    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        if !self.scheme.matches(scheme) {
            return false;
        }
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomains(d) => host.ends_with(&format!(".{d}")),
        };
        if !host_ok {
            return false;
        }
        let port = port.or_else(|| default_port(scheme));
        match &self.port {
            Some(Pattern::Any) => true,
            Some(Pattern::Exact(p)) => port.map(|x| x.to_string()) == Some(p.clone()),
            None => match (&self.scheme, port) {
                (Pattern::Exact(s), Some(p)) => default_port(s) == Some(p),
                _ => false,
            },
        }
    }
}

/// All the entries of one component.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn new(entries: &[String]) -> anyhow::Result<OutboundPolicy> {
        Ok(OutboundPolicy { allowed: entries.iter().map(|e| AllowedHost::parse(e)).collect::<Result<_, _>>()? })
    }

    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.allowed.iter().any(|a| a.allows(scheme, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entry: &str, scheme: &str, host: &str, port: Option<u16>) -> bool {
        AllowedHost::parse(entry).unwrap().allows(scheme, host, port)
    }

    #[test]
    fn scheme_is_required() {
        assert!(AllowedHost::parse("example.com").is_err());
    }

    #[test]
    fn default_port_comes_from_the_scheme() {
        assert!(allows("https://example.com", "https", "example.com", None));
        assert!(allows("https://example.com", "https", "example.com", Some(443)));
        assert!(!allows("https://example.com", "https", "example.com", Some(8443)));
        assert!(!allows("https://example.com", "http", "example.com", None));
    }

    #[test]
    fn explicit_port_must_match() {
        assert!(allows("http://127.0.0.1:3001", "http", "127.0.0.1", Some(3001)));
        assert!(!allows("http://127.0.0.1:3001", "http", "127.0.0.1", Some(3002)));
    }

    #[test]
    fn wildcards_cover_scheme_host_and_port() {
        assert!(allows("*://*:*", "http", "anything", Some(1)));
        assert!(allows("https://*.example.com", "https", "api.example.com", None));
        assert!(!allows("https://*.example.com", "https", "example.com", None));
        assert!(allows("http://localhost:*", "http", "localhost", Some(9999)));
    }

    #[test]
    fn empty_policy_denies_everything() {
        assert!(!OutboundPolicy::default().allows("http", "127.0.0.1", Some(80)));
    }
}
