//! Placements: `GET /placements?limit&marker&tag&parent_placement` and
//! `GET /placements/{placement_id}`, read-only views of the deployment
//! inventory for any authenticated caller.
//!
//! Placements belong to the deployer: they live in the inventory behind the
//! hypervisor capability (`list-placements`), not in the key-value store, so
//! this component stores nothing. Each request fetches the whole list and
//! filters and pages it in memory: inventories are small (a region's zones
//! and racks, tens to hundreds of entries), an index would only duplicate
//! the deployer's file, and the answer is always current. The order is the
//! inventory's, which is stable, so markers stay valid from page to page.
//!
//! How several parents are shown is decided in
//! `vnext_core::model::placement_view`.

use vnext_core::error::{ApiError, ApiResult};
use vnext_core::hypervisor::Placement;
use vnext_core::ids::{parse_id, parse_uuid};
use vnext_core::model::placement_view;
use vnext_core::paging;
use vnext_core::routes::Component;
use vnext_core::validate;
use vnext_guest::hv;
use vnext_guest::web::{Ctx, Reply};

/// Query parameters of the collection besides `limit` and `marker`. Both
/// may repeat (OR within a parameter); the two combine with AND.
const TAG: &str = "tag";
const PARENT: &str = "parent_placement";

vnext_guest::http_component!(Component::Placements, route);

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match ctx.route.rel {
        "placements" => list(&ctx).await,
        "placement" => show(&ctx).await,
        other => Err(ApiError::internal(format!("route {other} has no handler in the placements component"))),
    }
}

fn values<'a>(ctx: &'a Ctx, name: &'a str) -> impl Iterator<Item = &'a str> {
    ctx.query.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn list(ctx: &Ctx) -> ApiResult<Reply> {
    let mut q = paging::page_query(&ctx.query, &[TAG, PARENT])?;
    // Ids are stored hyphenated; a marker copied in the 32-hex form still works.
    q.marker = q.marker.map(|m| parse_uuid(&m).unwrap_or(m));
    // A tag that no placement could carry is a mistake, not an empty filter.
    let tags: Vec<&str> = values(ctx, TAG).collect();
    for t in &tags {
        validate::tag(TAG, t)?;
    }
    let parents: Vec<String> = values(ctx, PARENT).map(|v| parse_id(PARENT, v)).collect::<ApiResult<_>>()?;

    let all = hv::list_placements().await?;
    for parent in &parents {
        if !all.iter().any(|p| &p.id == parent) {
            return Err(ApiError::bad_request(format!(
                "parent_placement {parent} is not a placement of this deployment; GET /placements lists them"
            ))
            .field(PARENT));
        }
    }
    let matching: Vec<Placement> = all
        .into_iter()
        .filter(|p| tags.is_empty() || p.tags.iter().any(|t| tags.contains(&t.as_str())))
        .filter(|p| parents.is_empty() || p.parent_ids.iter().any(|id| parents.contains(id)))
        .collect();
    let (page, next) = paging::page(matching, |p| p.id.as_str(), &q)?;
    let items = page.iter().map(placement_view).collect();
    Ok(Reply::json(200, &paging::collection("placements", items, "/placements", &ctx.query, next)))
}

async fn show(ctx: &Ctx) -> ApiResult<Reply> {
    let raw = ctx.param("placement_id");
    let not_found = || ApiError::not_found(format!("no placement {raw}; GET /placements lists them"));
    let id = parse_uuid(raw).ok_or_else(not_found)?;
    let placement = hv::list_placements().await?.into_iter().find(|p| p.id == id).ok_or_else(not_found)?;
    Ok(Reply::json(200, &placement_view(&placement)))
}
