//! Where progress events go: the [`EventSink`] trait and its HTTP
//! implementation.
//!
//! The adapter calls [`EventSink::deliver`] for each event of a task, in
//! order, and retries a failed delivery until it succeeds (see
//! [`crate::adapter`]); a sink only has to say whether the API acknowledged
//! the event. The native host provides an in-process sink; the standalone
//! adapter process uses [`HttpEventSink`].

use crate::driver::BoxFuture;
use crate::error::Error;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::fmt;
use std::time::Duration;
use vnext_core::events::{EVENTS_ROUTE, EVENTS_SECRET_HEADER, ObservationBatch, ServerObservation, TaskEvent};

/// Why an event was not acknowledged; the adapter logs it and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub message: String,
}

impl DeliveryError {
    pub fn new(message: impl Into<String>) -> Self {
        DeliveryError { message: message.into() }
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeliveryError {}

/// Receives progress events. `Ok` means the API has applied (or already
/// had) the event; the adapter then never sends it again.
pub trait EventSink: Send + Sync {
    /// Delivers `events`: consecutive events of ONE task, in `seq` order
    /// (a batch, so a burst of progress costs one request, not one each).
    /// `Ok` acknowledges all of them.
    fn deliver<'a>(&'a self, events: &'a [TaskEvent]) -> BoxFuture<'a, Result<(), DeliveryError>>;

    /// Reports what the adapter saw of servers outside any task (power
    /// states, reclaims). `Ok` means the API took them; on `Err` the
    /// adapter reports again at its next sweep. The default drops them,
    /// for sinks that only follow tasks (tests).
    fn report<'a>(&'a self, observations: &'a [ServerObservation]) -> BoxFuture<'a, Result<(), DeliveryError>> {
        let _ = observations;
        Box::pin(async { Ok(()) })
    }
}

/// The body that carries a batch of task events to the events route.
pub fn events_body(events: &[TaskEvent]) -> Result<Vec<u8>, DeliveryError> {
    serde_json::to_vec(events).map_err(|e| DeliveryError::new(format!("encoding events: {e}")))
}

/// The body that carries observations to the events route.
pub fn observations_body(observations: &[ServerObservation]) -> Result<Vec<u8>, DeliveryError> {
    serde_json::to_vec(&ObservationBatch { observations: observations.to_vec() })
        .map_err(|e| DeliveryError::new(format!("encoding observations: {e}")))
}

/// Posts each batch as a JSON array to `<api base URL>/internal/events`
/// with the shared secret header, and counts any 2xx answer as acknowledged.
/// Plain `http://` only: the API and the adapter run side by side.
#[derive(Debug, Clone)]
pub struct HttpEventSink {
    authority: String,
    path: String,
    secret: String,
    timeout: Duration,
}

/// Several API hosts sharing one store (see docs/architecture.md, "Running
/// several hosts"): each delivery goes to the next host in turn, and on to
/// the others while one fails, so events keep flowing while any host is up.
/// Any host can apply any event: they all read and write the same records.
#[derive(Debug)]
pub struct HostsEventSink {
    hosts: Vec<HttpEventSink>,
    next: std::sync::atomic::AtomicUsize,
}

impl HostsEventSink {
    /// `base_urls`: one or more API base URLs (see [`HttpEventSink::new`]).
    pub fn new(base_urls: &[String], secret: &str) -> Result<HostsEventSink, Error> {
        if base_urls.is_empty() {
            return Err(Error::EventsUrl { url: String::new(), message: "at least one URL is needed".into() });
        }
        let hosts = base_urls.iter().map(|u| HttpEventSink::new(u, secret)).collect::<Result<Vec<_>, _>>()?;
        Ok(HostsEventSink { hosts, next: Default::default() })
    }

    /// Where events go, in order.
    pub fn urls(&self) -> Vec<String> {
        self.hosts.iter().map(HttpEventSink::url).collect()
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), DeliveryError> {
        let first = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut failures = Vec::new();
        for i in 0..self.hosts.len() {
            let host = &self.hosts[(first + i) % self.hosts.len()];
            match host.post_within_timeout(body.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => failures.push(e.message),
            }
        }
        Err(DeliveryError::new(failures.join("; ")))
    }
}

impl EventSink for HostsEventSink {
    fn deliver<'a>(&'a self, events: &'a [TaskEvent]) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move { self.post(events_body(events)?).await })
    }

    fn report<'a>(&'a self, observations: &'a [ServerObservation]) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move { self.post(observations_body(observations)?).await })
    }
}

impl HttpEventSink {
    /// `base_url` is the API's base (e.g. `http://127.0.0.1:3000`); a URL
    /// that already ends with the events route is accepted as is.
    pub fn new(base_url: &str, secret: impl Into<String>) -> Result<HttpEventSink, Error> {
        let bad = |message: &str| Error::EventsUrl { url: base_url.to_owned(), message: message.to_owned() };
        let uri: http::Uri = base_url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// URLs are supported"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?.to_string();
        if uri.query().is_some() {
            return Err(bad("a query string is not allowed"));
        }
        let base = uri.path().trim_end_matches('/');
        let path = if base.ends_with(EVENTS_ROUTE) { base.to_owned() } else { format!("{base}{EVENTS_ROUTE}") };
        Ok(HttpEventSink { authority, path, secret: secret.into(), timeout: Duration::from_secs(10) })
    }

    /// The full URL events are posted to.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), DeliveryError> {
        let addr = if self.authority.contains(':') && !self.authority.ends_with(']') {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        };
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| DeliveryError::new(format!("connect to {addr}: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| DeliveryError::new(format!("HTTP handshake with {addr}: {e}")))?;
        // The connection future drives the socket; it ends with the request.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = hyper::Request::post(&self.path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(EVENTS_SECRET_HEADER, &self.secret)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| DeliveryError::new(format!("building the request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| DeliveryError::new(format!("POST {}: {e}", self.url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        Err(DeliveryError::new(format!("POST {} answered {status}: {text}", self.url())))
    }
}

impl HttpEventSink {
    async fn post_within_timeout(&self, body: Vec<u8>) -> Result<(), DeliveryError> {
        match tokio::time::timeout(self.timeout, self.post(body)).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::new(format!("POST {} got no answer within {:?}", self.url(), self.timeout))),
        }
    }
}

impl EventSink for HttpEventSink {
    fn deliver<'a>(&'a self, events: &'a [TaskEvent]) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move { self.post_within_timeout(events_body(events)?).await })
    }

    fn report<'a>(&'a self, observations: &'a [ServerObservation]) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move { self.post_within_timeout(observations_body(observations)?).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_url_is_the_base_plus_the_events_route() {
        let sink = HttpEventSink::new("http://127.0.0.1:3000", "s").unwrap();
        assert_eq!(sink.url(), "http://127.0.0.1:3000/internal/events");
        let sink = HttpEventSink::new("http://api.local:8080/prefix/", "s").unwrap();
        assert_eq!(sink.url(), "http://api.local:8080/prefix/internal/events");
        let sink = HttpEventSink::new("http://127.0.0.1:3000/internal/events", "s").unwrap();
        assert_eq!(sink.url(), "http://127.0.0.1:3000/internal/events");
    }

    #[test]
    fn several_hosts_are_tried_in_turn_and_all_named_when_all_fail() {
        let sink = HostsEventSink::new(&["http://127.0.0.1:1".to_string(), "http://127.0.0.1:2/".to_string()], "s").unwrap();
        assert_eq!(sink.urls(), ["http://127.0.0.1:1/internal/events", "http://127.0.0.1:2/internal/events"]);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = rt.block_on(sink.deliver(&[])).unwrap_err();
        assert!(err.message.contains("127.0.0.1:1") && err.message.contains("127.0.0.1:2"), "{err}");
        assert!(HostsEventSink::new(&[], "s").is_err());
    }

    #[test]
    fn events_url_must_be_plain_http() {
        let err = HttpEventSink::new("https://127.0.0.1:3000", "s").unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        assert!(HttpEventSink::new("not a url", "s").is_err());
    }
}
