//! Server types (flavors): `GET|POST /server_types`,
//! `GET|PATCH|DELETE /server_types/{id or name}`, and the tag and share
//! routes below it. Only the owner (its creator's project) or an admin may
//! change a type or see its shares.
//!
//! Names are unique through a claim record (`server_type_name/{name}`)
//! created with compare-and-swap before the type itself is written; a
//! second creator of the same name finds the claim and gets 400.

use std::collections::BTreeSet;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::ids::{new_id, parse_id, parse_uuid};
use vnext_core::keys::{self, NameClaim};
use vnext_core::model::{ServerTypeRecord, Shares, Visibility, server_type_view};
use vnext_core::routes::Component;
use vnext_core::{paging, time, validate};
use vnext_guest::index::{Index, Order};
use vnext_guest::kv::Kv;
use vnext_guest::web::{Ctx, Reply};

vnext_guest::http_component!(Component::ServerTypes, route);

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match (ctx.route.rel, ctx.method.as_str()) {
        ("server_types", "POST") => create(&ctx),
        ("server_types", "GET") => list(&ctx),
        ("server_type", "GET") => show(&ctx),
        ("server_type", "PATCH") => patch(&ctx),
        ("server_type", "DELETE") => delete(&ctx),
        ("server_type_shares", "GET") => {
            let t = find_owned(&Kv::open()?, &ctx)?;
            Ok(Reply::json(200, &serde_json::json!(t.shares)))
        }
        ("server_type_shares", "PUT") => {
            let shares = validate::shares(&ctx.body)?;
            change(&ctx, |t| {
                t.shares = shares.clone();
                Ok(())
            })
        }
        ("server_type_shares", "DELETE") => change(&ctx, |t| {
            t.shares = Shares::default();
            Ok(())
        }),
        ("server_type_user_share", method) => {
            let user = parse_id("user_id", ctx.param("user_id"))?;
            change(&ctx, |t| add_or_remove(&mut t.shares.users, &user, method == "PUT", "user"))
        }
        ("server_type_project_share", method) => {
            let project = parse_id("project_id", ctx.param("project_id"))?;
            change(&ctx, |t| add_or_remove(&mut t.shares.projects, &project, method == "PUT", "project"))
        }
        ("server_type_tags", "GET") => {
            let t = find(&Kv::open()?, &ctx)?;
            Ok(Reply::json(200, &t.tags))
        }
        ("server_type_tags", "PUT") => {
            let tags = validate::tag_list(&ctx.body)?;
            change(&ctx, |t| {
                t.tags = tags.clone();
                Ok(())
            })
        }
        ("server_type_tags", "DELETE") => change(&ctx, |t| {
            t.tags.clear();
            Ok(())
        }),
        ("server_type_tag", "PUT") => {
            let tag = ctx.param("tag");
            validate::tag("tag", tag)?;
            change(&ctx, |t| validate::add_tag(&mut t.tags, tag))
        }
        ("server_type_tag", "DELETE") => change(&ctx, |t| validate::remove_tag(&mut t.tags, ctx.param("tag"))),
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
    claim_name(&kv, &new.name, &id)?;
    // Index entry first: an id without its record is skipped by lists.
    Index::new(&kv, keys::SERVER_TYPES_INDEX).append(&id)?;
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

/// `GET /server_types?limit&marker&tag`: every type the caller may see
/// (PUBLIC, its project's own, shared with its user or project), in
/// creation order. One index holds every type and visibility is a filter:
/// a deployment has tens of types, not millions.
fn list(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let q = paging::page_query(&ctx.query, &["tag"])?;
    let tags: Vec<&str> = ctx.query.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.as_str()).collect();
    for t in &tags {
        validate::tag("tag", t)?;
    }
    let keep = |t: &ServerTypeRecord| t.visible_to(who) && (tags.is_empty() || tags.iter().any(|tag| t.tags.contains(*tag)));
    let kv = Kv::open()?;
    let index = Index::new(&kv, keys::SERVER_TYPES_INDEX);
    let visible = |t: &ServerTypeRecord| t.visible_to(who);
    let (types, next) = index.list(Order::OldestFirst, &q, |id| keys::server_type(id), visible, keep, |t| t.id.as_str())?;
    let views = types.iter().map(|t| server_type_view(t, who)).collect();
    Ok(Reply::json(200, &paging::collection("server_types", views, "/server_types", &ctx.query, next)))
}

/// The type named by the path (a segment that parses as a UUID is an id,
/// anything else a name) if the caller may see it; 404 otherwise.
fn find(kv: &Kv, ctx: &Ctx) -> ApiResult<ServerTypeRecord> {
    let who = ctx.who()?;
    let key = ctx.param("server_type_id");
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
    Ok(record)
}

fn show(ctx: &Ctx) -> ApiResult<Reply> {
    let record = find(&Kv::open()?, ctx)?;
    Ok(Reply::json(200, &server_type_view(&record, ctx.who()?)))
}

/// The type, if the caller may also change it (owner or admin; 403 otherwise).
fn find_owned(kv: &Kv, ctx: &Ctx) -> ApiResult<ServerTypeRecord> {
    let record = find(kv, ctx)?;
    if !record.owned_by(ctx.who()?) {
        return Err(ApiError::forbidden("only the owner of a server type or an admin may change it or see its shares"));
    }
    Ok(record)
}

/// Applies `f` to the type (owner or admin only) with compare-and-swap; 204.
fn change(ctx: &Ctx, f: impl Fn(&mut ServerTypeRecord) -> ApiResult<()>) -> ApiResult<Reply> {
    let kv = Kv::open()?;
    let record = find_owned(&kv, ctx)?;
    kv.update_json(&keys::server_type(&record.id), |t: Option<ServerTypeRecord>| {
        let mut t = t.ok_or_else(|| ApiError::not_found("the server type was deleted meanwhile"))?;
        f(&mut t)?;
        Ok(t)
    })?;
    Ok(Reply::empty(204))
}

/// PUT adds `item` to a set (idempotent); DELETE removes it, 404 if absent.
fn add_or_remove(set: &mut BTreeSet<String>, item: &str, add: bool, what: &str) -> ApiResult<()> {
    if add {
        set.insert(item.to_string());
    } else if !set.remove(item) {
        return Err(ApiError::not_found(format!("the server type has no {what} {item:?}")));
    }
    Ok(())
}

/// `PATCH`: name (re-claimed), description, visibility, spec; 204.
fn patch(ctx: &Ctx) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let p = validate::server_type_patch(&ctx.body)?;
    if p.visibility == Some(Visibility::Public) && !who.admin {
        return Err(ApiError::forbidden("only admins may make a server type PUBLIC").field("visibility"));
    }
    let kv = Kv::open()?;
    let record = find_owned(&kv, ctx)?;
    let rename = p.name.clone().filter(|n| *n != record.name);
    if let Some(name) = &rename {
        claim_name(&kv, name, &record.id)?;
    }
    let updated = kv.update_json(&keys::server_type(&record.id), |t: Option<ServerTypeRecord>| {
        let mut t = t.ok_or_else(|| ApiError::not_found("the server type was deleted meanwhile"))?;
        if let Some(n) = &rename {
            t.name = n.clone();
        }
        if let Some(d) = &p.description {
            t.description = d.clone();
        }
        if let Some(v) = p.visibility {
            t.visibility = v;
        }
        if let Some(spec) = &p.spec {
            t.spec = spec.clone();
        }
        Ok(t)
    });
    match (updated, rename) {
        (Ok(_), Some(_)) => release_name(&kv, &record.name, &record.id)?,
        (Err(e), Some(name)) => {
            release_name(&kv, &name, &record.id)?;
            return Err(e);
        }
        (result, None) => {
            result?;
        }
    }
    Ok(Reply::empty(204))
}

/// Claims `name` for type `id` (compare-and-swap on the absent key); 400 if taken.
fn claim_name(kv: &Kv, name: &str, id: &str) -> ApiResult<()> {
    if kv.create_json(&keys::server_type_name(name), &NameClaim { id: id.to_string() })? {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("a server type named {name:?} already exists; choose another name")).field("name"))
    }
}

/// Deletes a name claim if it is still this type's.
fn release_name(kv: &Kv, name: &str, id: &str) -> ApiResult<()> {
    let key = keys::server_type_name(name);
    if kv.get_json::<NameClaim>(&key)?.is_some_and(|c| c.id == id) {
        kv.delete(&key)?;
    }
    Ok(())
}

/// `DELETE`: the record first, then its name claim; 204. Servers launched
/// from it keep their copy of the spec.
fn delete(ctx: &Ctx) -> ApiResult<Reply> {
    let kv = Kv::open()?;
    let record = find_owned(&kv, ctx)?;
    kv.delete(&keys::server_type(&record.id))?;
    Index::new(&kv, keys::SERVER_TYPES_INDEX).remove(&record.id)?;
    release_name(&kv, &record.name, &record.id)?;
    Ok(Reply::empty(204))
}
