//! Requests in, responses out.
//!
//! [`serve`] is every component's entry: it reads the request, matches the
//! path against the core route table, refuses paths this component does
//! not serve (404) and methods the route does not allow (405 + `Allow`),
//! authenticates when the route needs it, runs the component's handler and
//! renders the result. Every response, error or not, carries
//! `X-OpenStack-Request-ID` (the caller's if it sent a sane one, else
//! `req-<uuid>`) and `X-OpenStack-Compute-API-Version`; every error has the
//! one JSON shape of `ApiError::to_json`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::future::Future;
use vnext_core::auth::{Identity, Verifier};
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::ids::new_request_id;
use vnext_core::routes::{self, Component, Params, Route};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 1 << 20;

pub type Response = http::Response<Full<Bytes>>;

/// A request as the handlers see it: body read, route matched.
pub struct Ctx {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    pub route: &'static Route,
    pub params: Params,
    /// Set when the route needs authentication.
    pub who: Option<Identity>,
}

impl Ctx {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The caller; 401 on routes that do not authenticate (a wiring bug).
    pub fn who(&self) -> ApiResult<&Identity> {
        self.who.as_ref().ok_or_else(|| ApiError::unauthorized("this route takes no X-Auth-Token"))
    }

    pub fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }
}

/// What a handler returns on success.
pub struct Reply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Self {
        Self::typed(status, routes::JSON, value)
    }

    /// JSON with another media type (json-home, schema+json).
    pub fn typed<T: serde::Serialize + ?Sized>(status: u16, content_type: &'static str, value: &T) -> Self {
        // `to_vec`, not `Value::to_string`: Display goes through the
        // formatting machinery for every token (measured ~2% of a request).
        match serde_json::to_vec(value) {
            Ok(body) => Reply { status, content_type: Some(content_type), headers: Vec::new(), body },
            // Only a map with non-string keys can fail (a bug): say so.
            Err(e) => {
                let e = ApiError::internal(format!("the response could not be encoded: {e}; report this"));
                let body = serde_json::to_vec(&e.to_json()).unwrap_or_default();
                Reply { status: e.status, content_type: Some(routes::JSON), headers: Vec::new(), body }
            }
        }
    }

    pub fn empty(status: u16) -> Self {
        Reply { status, content_type: None, headers: Vec::new(), body: Vec::new() }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}


fn sane_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len()) && v.bytes().all(|c| c.is_ascii_graphic())
}

fn decode_component(s: &str) -> String {
    // Query values: '+' is a space, %XX is a byte; bad escapes stay literal.
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%').then(|| s.get(i + 1..i + 3)).flatten().and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

async fn read_body(body: spin_sdk::wasip3::http_compat::IncomingRequestBody) -> ApiResult<Vec<u8>> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::new(413, format!("the request body exceeds {MAX_BODY} bytes; send less")))
        }
        Err(e) => Err(ApiError::bad_request(format!("the request body could not be read: {e}"))),
    }
}

/// Serves one request for `component` with `handler`.
pub async fn serve<F, Fut>(req: spin_sdk::http::Request, component: Component, handler: F) -> Response
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ApiResult<Reply>>,
{
    let request_id = req
        .headers()
        .get(routes::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    let is_head = req.method() == http::Method::HEAD;
    let result = dispatch(req, component, handler).await;
    // No log line here: the host logs every request with this request id
    // (taken from the response header), and a guest write to stderr costs a
    // host round trip per request.
    render(result, &request_id, is_head)
}

async fn dispatch<F, Fut>(req: spin_sdk::http::Request, component: Component, handler: F) -> ApiResult<Reply>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ApiResult<Reply>>,
{
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let not_found = || ApiError::not_found(format!("no route {path}; GET / lists every route"));
    let Some((route, params)) = routes::match_path(&path) else {
        // The catch-all (root) sends clients written from the proposal's
        // spellings of some paths to the canonical ones; 308 keeps the
        // method and the body.
        if component == Component::Root
            && let Some(to) = routes::canonical_path(&path)
        {
            let location = match parts.uri.query() {
                Some(q) => format!("{to}?{q}"),
                None => to,
            };
            return Ok(Reply::empty(308).header("location", location));
        }
        return Err(not_found());
    };
    if route.component != component {
        return Err(not_found());
    }
    let method = parts.method.as_str().to_string();
    if !route.methods.contains(&method.as_str()) {
        return Err(ApiError::method_not_allowed(route.methods));
    }
    let who = if route.auth {
        let token = parts.headers.get(routes::AUTH_TOKEN_HEADER).map(|v| v.to_str().unwrap_or("\u{0}"));
        Some(crate::auth::configured().await?.verify(token).await?)
    } else {
        None
    };
    let body = read_body(body).await?;
    let ctx = Ctx {
        method,
        query: parse_query(parts.uri.query()),
        path,
        headers: parts.headers,
        body,
        route,
        params,
        who,
    };
    handler(ctx).await
}

fn render(result: ApiResult<Reply>, request_id: &str, is_head: bool) -> Response {
    let reply = result.unwrap_or_else(|e| {
        let mut r = Reply::json(e.status, &e.to_json());
        if let Some(allow) = e.allow {
            r.headers.push(("allow", allow));
        }
        if let Some(secs) = e.retry_after {
            r.headers.push(("retry-after", secs.to_string()));
        }
        r
    });
    let mut b = http::Response::builder()
        .status(reply.status)
        .header(routes::REQUEST_ID_HEADER, request_id)
        .header(routes::API_VERSION_HEADER, routes::API_VERSION);
    if let Some(ct) = reply.content_type {
        b = b.header(http::header::CONTENT_TYPE, ct);
    }
    for (k, v) in &reply.headers {
        b = b.header(*k, v.as_str());
    }
    let body = if is_head { Vec::new() } else { reply.body };
    b.body(Full::new(Bytes::from(body))).unwrap_or_else(|e| {
        // Only an invalid header value can get here (a bug): say so.
        let mut r = http::Response::new(Full::new(Bytes::from(
            ApiError::internal(format!("response could not be built: {e}")).to_json().to_string(),
        )));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
