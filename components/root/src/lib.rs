//! Root component: `GET /` (JSON-Home rendered from the core route table),
//! `GET /schemas` and `GET /schemas/{object}` (as `application/json`, the
//! proposal's type, or `application/schema+json` when `Accept` prefers it),
//! and `GET /openapi.json` (generated from the same table and schemas).
//! No authentication, no state.
//!
//! It also owns spin.toml's catch-all route `/...`, so a path that no other
//! component takes still gets the API's JSON error shape: such a path
//! matches no root row of the route table, and `web::serve` answers 404
//! (or 405 for a root path with the wrong method) before `route` runs.

use vnext_core::error::{ApiError, ApiResult};
use vnext_core::routes::{self, Component};
use serde_json::Value;
use std::sync::OnceLock;
use vnext_core::openapi;
use vnext_core::schemas;
use vnext_guest::web::{Ctx, Reply};

vnext_guest::http_component!(Component::Root, route);

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match ctx.route.rel {
        "home" => Ok(Reply::typed(200, routes::JSON_HOME, &routes::json_home())),
        "schemas" => Ok(Reply::json(200, &schemas::index())),
        "schema" => {
            let object = ctx.param("object");
            let schema = schemas::get(object).ok_or_else(|| {
                ApiError::not_found(format!("no schema {object:?}; GET /schemas lists them"))
            })?;
            let offered: Vec<&'static str> = std::iter::once(ctx.route.format).chain(ctx.route.other_formats.iter().copied()).collect();
            let media = routes::negotiate(ctx.header("accept"), &offered);
            Ok(Reply::typed(200, media, &schema))
        }
        "openapi" => {
            // Generated once per instance: the same bytes for every request.
            static DOCUMENT: OnceLock<Value> = OnceLock::new();
            Ok(Reply::json(200, DOCUMENT.get_or_init(openapi::document)))
        }
        other => Err(ApiError::internal(format!("route {other} has no handler in the root component"))),
    }
}
