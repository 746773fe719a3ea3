//! Reads the hypervisor answers live, never stored: `GET
//! /servers/{id}/console_log?lines=N` (text/plain, the last N lines),
//! `GET /servers/{id}/consoles/{type}` (a one-time console URI) and `GET
//! /servers/{id}/diagnostics` (resource counters).
//!
//! All three need a server on a compute node: a server still being placed,
//! offloaded or TERMINATED is 409 (`ServerRecord::check_on_node`), since
//! the request is valid but not in that state. A console type the server's
//! node does not serve is the hypervisor's `unsupported`, which
//! `vnext_guest::hv` maps to 400 (functionality the deployment lacks).

use vnext_core::error::ApiResult;
use vnext_core::model::{ServerRecord, console_view, diagnostics_view};
use vnext_core::{routes, validate};
use vnext_guest::kv::Kv;
use vnext_guest::web::{Ctx, Reply};
use vnext_guest::{hv, records};

/// The visible server, if it is on a compute node (409 otherwise).
fn on_node(ctx: &Ctx, what: &str) -> ApiResult<ServerRecord> {
    let server = records::visible_server(&Kv::open()?, ctx.who()?, ctx.param("server_id"))?;
    server.check_on_node(what)?;
    Ok(server)
}

pub async fn console_log(ctx: &Ctx) -> ApiResult<Reply> {
    let lines = validate::console_log_query(&ctx.query)?;
    let server = on_node(ctx, "console log")?;
    let text = hv::console_log(&server.id, lines).await?;
    Ok(Reply { status: 200, content_type: Some(routes::TEXT), headers: Vec::new(), body: text.into_bytes() })
}

pub async fn console(ctx: &Ctx) -> ApiResult<Reply> {
    let kind = validate::console_type(ctx.param("console_type"))?;
    let server = on_node(ctx, "console")?;
    let uri = hv::console_uri(&server.id, kind).await?;
    Ok(Reply::json(200, &console_view(&server.id, kind, &uri)))
}

pub async fn diagnostics(ctx: &Ctx) -> ApiResult<Reply> {
    let server = on_node(ctx, "diagnostics")?;
    let d = hv::diagnostics(&server.id).await?;
    Ok(Reply::json(200, &diagnostics_view(&server.id, &d)))
}
