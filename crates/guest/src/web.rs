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
use spin_sdk::wasip3::http::types;
use spin_sdk::wasip3::http_compat::{BodyWriter, IncomingRequestBody};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY: usize = 1 << 20;

pub type Response = types::Response;

/// A request as the handlers see it: body read, route matched.
pub struct Ctx {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The request's header fields as the host gave them.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub route: &'static Route,
    pub params: Params,
    /// Set when the route needs authentication.
    pub who: Option<Identity>,
}

impl Ctx {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
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

async fn read_body(body: IncomingRequestBody) -> ApiResult<Vec<u8>> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::new(413, format!("the request body exceeds {MAX_BODY} bytes; send less")))
        }
        Err(e) => Err(ApiError::bad_request(format!("the request body could not be read: {e}"))),
    }
}

/// Serves one request for `component` with `handler`.
///
/// Works on the WASI request and response themselves, not on spin-sdk's
/// `http` conversions: those parse every header into a `HeaderMap`, build
/// a `Uri` and set up a body stream for every request, and copy the headers
/// once more on the way out (together ~8% of the CPU time of GET
/// /servers/{id}, measured with perf and VNEXT_PERFMAP=1).
pub async fn serve<F, Fut>(req: types::Request, component: Component, handler: F) -> Response
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ApiResult<Reply>>,
{
    let headers = req.get_headers().copy_all();
    let request_id = find_header(&headers, routes::REQUEST_ID_HEADER)
        .filter(|v| sane_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    let method = method_name(req.get_method());
    let is_head = method == "HEAD";
    let result = dispatch(req, method, headers, component, handler).await;
    // No log line here: the host logs every request with this request id
    // (taken from the response header), and a guest write to stderr costs a
    // host round trip per request.
    render(result, &request_id, is_head)
}

/// Exports `wasi:http/handler` for a component whose requests `route`
/// handles (`async fn route(ctx: Ctx) -> ApiResult<Reply>`), through
/// [`serve`]: the one line a component's lib.rs needs.
#[macro_export]
macro_rules! http_component {
    ($component:expr, $route:path) => {
        // At the call site (not in a module of its own), so that the
        // component and the route resolve where they are written.
        struct VnextHttpService;
        ::spin_sdk::wasip3::http::service::export!(VnextHttpService);

        impl ::spin_sdk::wasip3::exports::http::handler::Guest for VnextHttpService {
            async fn handle(
                request: ::spin_sdk::wasip3::http::types::Request,
            ) -> Result<::spin_sdk::wasip3::http::types::Response, ::spin_sdk::wasip3::http::types::ErrorCode> {
                Ok($crate::web::serve(request, $component, $route).await)
            }
        }
    };
}

fn method_name(m: types::Method) -> String {
    use types::Method as M;
    match m {
        M::Get => "GET",
        M::Head => "HEAD",
        M::Post => "POST",
        M::Put => "PUT",
        M::Delete => "DELETE",
        M::Patch => "PATCH",
        M::Options => "OPTIONS",
        M::Connect => "CONNECT",
        M::Trace => "TRACE",
        M::Other(other) => return other,
    }
    .to_string()
}

/// The first value of header `name` (field names compare without case),
/// if it is text.
fn find_header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

async fn dispatch<F, Fut>(
    req: types::Request,
    method: String,
    headers: Vec<(String, Vec<u8>)>,
    component: Component,
    handler: F,
) -> ApiResult<Reply>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ApiResult<Reply>>,
{
    let target = req.get_path_with_query().unwrap_or_else(|| "/".to_string());
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q)),
        None => (target.clone(), None),
    };
    let not_found = || ApiError::not_found(format!("no route {path}; GET / lists every route"));
    let Some((route, params)) = routes::match_path(&path) else {
        // The catch-all (root) sends clients written from the proposal's
        // spellings of some paths to the canonical ones; 308 keeps the
        // method and the body.
        if component == Component::Root
            && let Some(to) = routes::canonical_path(&path)
        {
            let location = match query {
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
    if !route.methods.contains(&method.as_str()) {
        return Err(ApiError::method_not_allowed(route.methods));
    }
    let who = if route.auth {
        // A token that is not text can only be refused: NUL is never valid.
        let token = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(routes::AUTH_TOKEN_HEADER))
            .map(|(_, v)| std::str::from_utf8(v).unwrap_or("\u{0}"));
        Some(crate::auth::configured().await?.verify(token).await?)
    } else {
        None
    };
    // GET and HEAD handlers never look at a body, and reading even an
    // empty one is a round trip through the host (~1% of GET /servers/{id}).
    let body = if method == "GET" || method == "HEAD" {
        Vec::new()
    } else {
        let body = IncomingRequestBody::new(req)
            .map_err(|e| ApiError::bad_request(format!("the request body could not be read: {e:?}")))?;
        read_body(body).await?
    };
    let ctx = Ctx { method, query: parse_query(query), path, headers, body, route, params, who };
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
    let mut fields: Vec<(String, Vec<u8>)> = Vec::with_capacity(3 + reply.headers.len());
    fields.push((routes::REQUEST_ID_HEADER.to_string(), request_id.as_bytes().to_vec()));
    fields.push((routes::API_VERSION_HEADER.to_string(), routes::API_VERSION.as_bytes().to_vec()));
    if let Some(ct) = reply.content_type {
        fields.push(("content-type".to_string(), ct.as_bytes().to_vec()));
    }
    for (k, v) in reply.headers {
        fields.push((k.to_string(), v.into_bytes()));
    }
    let body = if is_head { Vec::new() } else { reply.body };
    match types::Fields::from_list(&fields) {
        Ok(headers) => respond(reply.status, headers, body),
        // Only an invalid header value can get here (a bug): say so.
        Err(e) => {
            let e = ApiError::internal(format!("response could not be built: {e:?}; report this"));
            let body = serde_json::to_vec(&e.to_json()).unwrap_or_default();
            let headers = types::Fields::from_list(&[("content-type".to_string(), routes::JSON.as_bytes().to_vec())])
                .unwrap_or_else(|_| types::Fields::new());
            respond(e.status, headers, body)
        }
    }
}

/// A WASI response with `body`, written by a task of its own once the
/// host reads it (the handler has returned by then).
fn respond(status: u16, headers: types::Fields, body: Vec<u8>) -> Response {
    let (writer, body_rx, result_rx) = BodyWriter::new();
    let (response, _done) = types::Response::new(headers, Some(body_rx), result_rx);
    // Every status we answer with is a valid one (100-599).
    let _ = response.set_status_code(status);
    spin_sdk::wasip3::spawn(async move {
        let mut full = Full::new(Bytes::from(body));
        let _ = writer.send_http_body(&mut full).await;
    });
    response
}
