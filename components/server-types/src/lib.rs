//! Server types (flavors): `POST /server_types` and
//! `GET /server_types/{id or name}`.
//!
//! Names are unique through a claim record (`server_type_name/{name}`)
//! created with compare-and-swap before the type itself is written; a
//! second creator of the same name finds the claim and gets 400.

use spin_sdk::http::Request;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::ids::{new_id, parse_uuid};
use vnext_core::keys::{self, NameClaim};
use vnext_core::model::{ServerTypeRecord, Visibility, server_type_view};
use vnext_core::routes::Component;
use vnext_core::{time, validate};
use vnext_guest::kv::Kv;
use vnext_guest::web::{self, Ctx, Reply};

#[spin_sdk::http_service]
async fn handle(req: Request) -> web::Response {
    web::serve(req, Component::ServerTypes, route).await
}

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match (ctx.route.rel, ctx.method.as_str()) {
        ("server_types", "POST") => create(&ctx),
        ("server_type", "GET") => show(&ctx),
        (rel, method) => Err(ApiError::internal(format!("{method} {rel} has no handler in server-types"))),
    }
}

fn create(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let new = validate::server_type_create(&ctx.body)?;
    if new.visibility == Visibility::Public && !who.admin {
        return Err(ApiError::forbidden(
            "only admins may create PUBLIC server types; omit visibility (PRIVATE) and share the type instead",
        )
        .field("visibility"));
    }
    let kv = Kv::open()?;
    let id = new_id();
    if !kv.create_json(&keys::server_type_name(&new.name), &NameClaim { id: id.clone() })? {
        return Err(ApiError::bad_request(format!("a server type named {:?} already exists; choose another name", new.name))
            .field("name"));
    }
    let record = ServerTypeRecord {
        id: id.clone(),
        name: new.name,
        description: new.description,
        visibility: new.visibility,
        shares: new.shares,
        spec: new.spec,
        tags: new.tags,
        created_at: time::now(),
        owner_project_id: who.project_id.clone(),
        owner_user_id: who.user_id.clone(),
    };
    kv.put_json(&keys::server_type(&id), &record)?;
    Ok(Reply::json(201, &server_type_view(&record, who)).header("location", format!("/server_types/{id}")))
}

/// A path segment that parses as a UUID is an id, anything else a name.
fn show(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let key = ctx.param("server_type");
    let kv = Kv::open()?;
    let not_found = || ApiError::not_found(format!("no server type {key:?} visible to you; GET /server_types/{{id or name}}"));
    let id = match parse_uuid(key) {
        Some(id) => id,
        None => kv.get_json::<NameClaim>(&keys::server_type_name(key))?.ok_or_else(not_found)?.id,
    };
    let record: ServerTypeRecord = kv.get_json(&keys::server_type(&id))?.ok_or_else(not_found)?;
    // Invisible types are reported exactly like missing ones.
    if !record.visible_to(who) {
        return Err(not_found());
    }
    Ok(Reply::json(200, &server_type_view(&record, who)))
}
