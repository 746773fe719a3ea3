//! `hypervisor-client`: the hypervisor capability for API components under
//! real Spin.
//!
//! The native host implements `vnext:compute/hypervisor` in-process. Real
//! Spin cannot, so this component exports the interface instead and Spin
//! composes it into each API component (`[component.x.dependencies]`). Every
//! call becomes a JSON `POST` to `<adapter_url><path>` (Spin variable
//! `adapter_url`, paths in `vnext_core::hypervisor::adapter_api`), served by
//! a `vnext adapter` process. The functions are `async func`s, so the WASI
//! 0.3 HTTP client can be awaited from them.
//!
//! The JSON shapes are the serde types of `vnext_core::hypervisor`, the same
//! ones the adapter uses; the conversions between them and the WIT records
//! are the `From` impls of `vnext_core::wit_conversions!`. An unreachable
//! adapter or an answer that is not the expected JSON becomes
//! `hypervisor-error::unavailable`, so callers can retry.

use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use serde::de::DeserializeOwned;
use spin_sdk::http::body::IncomingBodyExt;
use vnext_core::hypervisor as core;
use vnext_core::hypervisor::adapter_api;

spin_sdk::wit_bindgen::generate!({
    path: "../../wit/vnext-compute",
    world: "vnext:compute/hypervisor-provider",
    runtime_path: "::spin_sdk::wit_bindgen::rt",
});

use exports::vnext::compute::hypervisor::Guest;
use vnext::compute::types as wit;

struct Client;

vnext_core::wit_conversions!(crate::vnext::compute::types);

impl Guest for Client {
    async fn list_placements() -> Result<Vec<wit::Placement>, wit::HypervisorError> {
        let placements: Vec<core::Placement> = call(adapter_api::LIST_PLACEMENTS, &serde_json::json!({})).await?;
        Ok(placements.into_iter().map(Into::into).collect())
    }

    async fn list_templates() -> Result<Vec<wit::Template>, wit::HypervisorError> {
        let templates: Vec<core::Template> = call(adapter_api::LIST_TEMPLATES, &serde_json::json!({})).await?;
        Ok(templates.into_iter().map(Into::into).collect())
    }

    async fn list_compute_nodes() -> Result<Vec<wit::ComputeNode>, wit::HypervisorError> {
        let nodes: Vec<core::ComputeNode> = call(adapter_api::LIST_COMPUTE_NODES, &serde_json::json!({})).await?;
        Ok(nodes.into_iter().map(Into::into).collect())
    }

    async fn submit(op: wit::Operation) -> Result<(), wit::HypervisorError> {
        // The adapter answers `null`; any 2xx means accepted.
        let _: serde_json::Value = call(adapter_api::SUBMIT, &core::Operation::from(op)).await?;
        Ok(())
    }

    async fn submit_many(ops: Vec<wit::Operation>) -> Vec<Result<(), wit::HypervisorError>> {
        let n = ops.len();
        let ops: Vec<core::Operation> = ops.into_iter().map(Into::into).collect();
        match call::<_, Vec<adapter_api::SubmitOutcome>>(adapter_api::SUBMIT_MANY, &ops).await {
            Ok(outcomes) if outcomes.len() == n => {
                outcomes.into_iter().map(|o| Result::<(), core::HypervisorError>::from(o).map_err(Into::into)).collect()
            }
            Ok(outcomes) => {
                let e = unavailable(format!("the adapter answered {} results for {n} operations", outcomes.len()));
                (0..n).map(|_| Err(e.clone())).collect()
            }
            Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
        }
    }

    async fn server_state(server_id: String) -> Result<wit::RuntimeState, wit::HypervisorError> {
        let state: core::RuntimeState = call(adapter_api::SERVER_STATE, &adapter_api::ServerRef { server_id }).await?;
        Ok(state.into())
    }

    async fn console_log(server_id: String, lines: u32) -> Result<String, wit::HypervisorError> {
        call(adapter_api::CONSOLE_LOG, &adapter_api::ConsoleLogRequest { server_id, lines }).await
    }

    async fn console_uri(server_id: String, kind: wit::ConsoleType) -> Result<String, wit::HypervisorError> {
        let kind = kind.into();
        call(adapter_api::CONSOLE_URI, &adapter_api::ConsoleUriRequest { server_id, kind }).await
    }

    async fn diagnostics(server_id: String) -> Result<wit::Diagnostics, wit::HypervisorError> {
        let d: core::Diagnostics = call(adapter_api::DIAGNOSTICS, &adapter_api::ServerRef { server_id }).await?;
        Ok(d.into())
    }
}

export!(Client);

fn unavailable(message: String) -> wit::HypervisorError {
    wit::HypervisorError::Unavailable(message)
}

/// POSTs `body` as JSON to the adapter and decodes the answer: the `Ok`
/// value on 2xx, the adapter's `HypervisorError` otherwise.
async fn call<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, wit::HypervisorError> {
    let base = spin_sdk::variables::get("adapter_url")
        .await
        .map_err(|e| unavailable(format!("Spin variable adapter_url: {e}")))?;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let body = serde_json::to_vec(body).map_err(|e| unavailable(format!("encoding the request: {e}")))?;
    let request = http::Request::post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| unavailable(format!("POST {url}: {e}")))?;
    let response = spin_sdk::http::send(request)
        .await
        .map_err(|e| unavailable(format!("POST {url}: {e}")))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .bytes()
        .await
        .map_err(|e| unavailable(format!("reading the answer of POST {url}: {e}")))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| unavailable(format!("POST {url} answered {status} with unexpected JSON: {e}")));
    }
    match serde_json::from_slice::<core::HypervisorError>(&bytes) {
        Ok(error) => Err(error.into()),
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            Err(unavailable(format!("POST {url} answered {status}: {text}")))
        }
    }
}
