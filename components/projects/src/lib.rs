//! Projects: `GET /projects/{project_id}`.
//!
//! Projects belong to the identity service; the API only shows a project's
//! id and the link to its servers. Nothing is stored, so the component has
//! no key-value store. A member sees only the project its token is scoped
//! to: any other id, and any id that is not a UUID, is 404 (as for every
//! entity the caller may not see). Admins see any well-formed id.

use vnext_core::error::{ApiError, ApiResult};
use vnext_core::ids::parse_uuid;
use vnext_core::model::project_view;
use vnext_core::routes::Component;
use vnext_guest::web::{Ctx, Reply};

vnext_guest::http_component!(Component::Projects, route);

async fn route(ctx: Ctx) -> ApiResult<Reply> {
    match ctx.route.rel {
        "project" => show(&ctx),
        other => Err(ApiError::internal(format!("route {other} has no handler in the projects component"))),
    }
}

fn show(ctx: &Ctx) -> ApiResult<Reply> {
    let raw = ctx.param("project_id");
    let not_found = || ApiError::not_found(format!("no project {raw} visible to you"));
    let id = parse_uuid(raw).ok_or_else(not_found)?;
    if !ctx.who()?.can_act_in(&id) {
        return Err(not_found());
    }
    Ok(Reply::json(200, &project_view(&id)))
}
