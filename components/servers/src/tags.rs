//! A server's tags: `GET|PUT|DELETE /servers/{id}/tags` (the set, a bare
//! array as in the proposal; PUT replaces it from that array or from
//! `{"tags": [...]}`, DELETE clears it)
//! and `PUT|DELETE /servers/{id}/tags/{tag}` (one tag; deleting an absent
//! tag is 404). The rules (tag syntax, at most 50) are `vnext_core::validate`'s,
//! shared with server types. Changes are compare-and-swap updates of the
//! server record; a locked server takes them from admins only (409).

use std::collections::BTreeSet;
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::model::ServerRecord;
use vnext_core::{keys, time, validate};
use vnext_guest::kv::Kv;
use vnext_guest::records;
use vnext_guest::web::{Ctx, Reply};

pub fn route(ctx: &Ctx) -> ApiResult<Reply> {
    let tag = ctx.param("tag");
    match (ctx.route.rel, ctx.method.as_str()) {
        ("server_tags", "GET") => {
            let s = records::visible_server(&Kv::open()?, ctx.who()?, ctx.param("server_id"))?;
            Ok(Reply::json(200, &s.tags))
        }
        ("server_tags", "PUT") => {
            let tags = validate::tag_list(&ctx.body)?;
            change(ctx, |set| {
                set.clone_from(&tags);
                Ok(())
            })
        }
        ("server_tags", "DELETE") => change(ctx, |set| {
            set.clear();
            Ok(())
        }),
        ("server_tag", "PUT") => {
            validate::tag("tag", tag)?;
            change(ctx, |set| validate::add_tag(set, tag))
        }
        ("server_tag", "DELETE") => change(ctx, |set| validate::remove_tag(set, tag)),
        (rel, method) => Err(ApiError::internal(format!("{method} {rel} has no handler in servers::tags"))),
    }
}

/// Applies `f` to the server's tags with compare-and-swap; 204.
fn change(ctx: &Ctx, f: impl Fn(&mut BTreeSet<String>) -> ApiResult<()>) -> ApiResult<Reply> {
    let who = ctx.who()?;
    let kv = Kv::open()?;
    let server = records::visible_server(&kv, who, ctx.param("server_id"))?;
    server.check_unlocked(who, "change its tags")?;
    let now = time::now();
    kv.update_json(&keys::server(&server.id), |s: Option<ServerRecord>| {
        let mut s = s.ok_or_else(|| ApiError::not_found(format!("server {} is gone", server.id)))?;
        // Re-checked on the record being replaced: it may have been locked
        // or transferred since it was read.
        s.check_unlocked(who, "change its tags")?;
        if !who.can_act_in(&s.project_id) {
            return Err(ApiError::not_found(format!("no server {} visible to you", server.id)));
        }
        f(&mut s.tags)?;
        s.updated_at = now.clone();
        Ok(s)
    })?;
    Ok(Reply::empty(204))
}
