//! The hypervisor capability (`vnext:compute/hypervisor@0.1.0`), in the
//! core's serde types. The `From` conversions to and from the WIT types are
//! expanded here by `vnext_core::wit_conversions!`; a hypervisor error
//! becomes an `ApiError` with the status a client can act on.

use crate::bindings::vnext::compute::{hypervisor as wit_hv, types as w};
use vnext_core::error::{ApiError, ApiResult};
use vnext_core::hypervisor as c;

fn api_error(call: &str, e: w::HypervisorError) -> ApiError {
    match e {
        w::HypervisorError::Unavailable(m) => {
            ApiError::unavailable(format!("the hypervisor is unavailable ({call}: {m}); retry later"))
        }
        w::HypervisorError::Unsupported(m) => ApiError::bad_request(format!("this deployment cannot do that: {m}")),
        w::HypervisorError::UnknownServer(m) => {
            ApiError::not_found(format!("the hypervisor knows no such server ({m})"))
        }
        // Both mean the API sent something wrong: a bug, not the caller's fault.
        w::HypervisorError::UnknownNode(m) | w::HypervisorError::Invalid(m) => {
            ApiError::internal(format!("the hypervisor refused {call}: {m}; report this"))
        }
    }
}

vnext_core::wit_conversions!(crate::bindings::vnext::compute::types);

/// The deployment's placements.
pub async fn list_placements() -> ApiResult<Vec<c::Placement>> {
    let list = wit_hv::list_placements().await.map_err(|e| api_error("list-placements", e))?;
    Ok(list.into_iter().map(Into::into).collect())
}

/// The template catalogue (empty: any template id is accepted).
pub async fn list_templates() -> ApiResult<Vec<c::Template>> {
    let list = wit_hv::list_templates().await.map_err(|e| api_error("list-templates", e))?;
    Ok(list.into_iter().map(Into::into).collect())
}

/// Every compute node with capacity and usage.
pub async fn list_compute_nodes() -> ApiResult<Vec<c::ComputeNode>> {
    let list = wit_hv::list_compute_nodes().await.map_err(|e| api_error("list-compute-nodes", e))?;
    Ok(list.into_iter().map(Into::into).collect())
}

/// Hands an operation to the hypervisor; progress comes back as events.
pub async fn submit(op: c::Operation) -> ApiResult<()> {
    wit_hv::submit(op.into()).await.map_err(|e| api_error("submit", e))
}

/// Hands several operations over in one call; one result per operation,
/// in order.
pub async fn submit_many(ops: Vec<c::Operation>) -> Vec<ApiResult<()>> {
    let results = wit_hv::submit_many(ops.into_iter().map(Into::into).collect()).await;
    results.into_iter().map(|r| r.map_err(|e| api_error("submit-many", e))).collect()
}

pub async fn server_state(server_id: &str) -> ApiResult<c::RuntimeState> {
    let s = wit_hv::server_state(server_id.to_string()).await.map_err(|e| api_error("server-state", e))?;
    Ok(s.into())
}

pub async fn console_log(server_id: &str, lines: u32) -> ApiResult<String> {
    wit_hv::console_log(server_id.to_string(), lines).await.map_err(|e| api_error("console-log", e))
}

pub async fn console_uri(server_id: &str, kind: c::ConsoleType) -> ApiResult<String> {
    wit_hv::console_uri(server_id.to_string(), kind.into()).await.map_err(|e| api_error("console-uri", e))
}

pub async fn diagnostics(server_id: &str) -> ApiResult<c::Diagnostics> {
    let d = wit_hv::diagnostics(server_id.to_string()).await.map_err(|e| api_error("diagnostics", e))?;
    Ok(d.into())
}
