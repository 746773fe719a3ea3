//! `vnext:compute/hypervisor@0.1.0` served in-process: every call converts
//! the WIT records to the serde wire types of `vnext_core::hypervisor`
//! (`From` impls expanded by `vnext_core::wit_conversions!`) and goes to a [`Hypervisor`] (the adapter), so the in-process path and the
//! HTTP path through the `hypervisor-client` component reach the same code.

use super::Host;
use super::vnext::compute::types as wit;
use crate::state::HostState;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use vnext_core::hypervisor as core;
use wasmtime::component::Accessor;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type HvResult<T> = Result<T, core::HypervisorError>;

/// The hypervisor capability as the host consumes it.
pub trait Hypervisor: Send + Sync {
    fn list_placements(&self) -> BoxFuture<'_, HvResult<Vec<core::Placement>>>;
    fn list_templates(&self) -> BoxFuture<'_, HvResult<Vec<core::Template>>>;
    fn list_compute_nodes(&self) -> BoxFuture<'_, HvResult<Vec<core::ComputeNode>>>;
    fn submit(&self, op: core::Operation) -> BoxFuture<'_, HvResult<()>>;
    fn submit_many(&self, ops: Vec<core::Operation>) -> BoxFuture<'_, Vec<HvResult<()>>>;
    fn server_state(&self, server_id: String) -> BoxFuture<'_, HvResult<core::RuntimeState>>;
    fn console_log(&self, server_id: String, lines: u32) -> BoxFuture<'_, HvResult<String>>;
    fn console_uri(&self, server_id: String, kind: core::ConsoleType) -> BoxFuture<'_, HvResult<String>>;
    fn diagnostics(&self, server_id: String) -> BoxFuture<'_, HvResult<core::Diagnostics>>;
}

fn service<T>(accessor: &Accessor<T, Host>) -> Result<Arc<dyn Hypervisor>, wit::HypervisorError> {
    accessor.with(|mut a| {
        a.get().app.hypervisor.clone().ok_or_else(|| {
            wit::HypervisorError::Unavailable("this host runs without a hypervisor adapter".into())
        })
    })
}

impl super::vnext::compute::types::Host for HostState {}
impl super::vnext::compute::hypervisor::Host for HostState {}

vnext_core::wit_conversions!(crate::bindings::vnext::compute::types);

impl<T> super::vnext::compute::hypervisor::HostWithStore<T> for Host {
    async fn list_placements(accessor: &Accessor<T, Self>) -> Result<Vec<wit::Placement>, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.list_placements().await?.into_iter().map(Into::into).collect())
    }

    async fn list_templates(accessor: &Accessor<T, Self>) -> Result<Vec<wit::Template>, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.list_templates().await?.into_iter().map(Into::into).collect())
    }

    async fn list_compute_nodes(accessor: &Accessor<T, Self>) -> Result<Vec<wit::ComputeNode>, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.list_compute_nodes().await?.into_iter().map(Into::into).collect())
    }

    async fn submit(accessor: &Accessor<T, Self>, op: wit::Operation) -> Result<(), wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.submit(op.into()).await?)
    }

    async fn submit_many(accessor: &Accessor<T, Self>, ops: Vec<wit::Operation>) -> Vec<Result<(), wit::HypervisorError>> {
        let hv = match service(accessor) {
            Ok(hv) => hv,
            Err(e) => return ops.iter().map(|_| Err(e.clone())).collect(),
        };
        let results = hv.submit_many(ops.into_iter().map(Into::into).collect()).await;
        results.into_iter().map(|r| r.map_err(Into::into)).collect()
    }

    async fn server_state(accessor: &Accessor<T, Self>, server_id: String) -> Result<wit::RuntimeState, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.server_state(server_id).await?.into())
    }

    async fn console_log(accessor: &Accessor<T, Self>, server_id: String, lines: u32) -> Result<String, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.console_log(server_id, lines).await?)
    }

    async fn console_uri(accessor: &Accessor<T, Self>, server_id: String, kind: wit::ConsoleType) -> Result<String, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.console_uri(server_id, kind.into()).await?)
    }

    async fn diagnostics(accessor: &Accessor<T, Self>, server_id: String) -> Result<wit::Diagnostics, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.diagnostics(server_id).await?.into())
    }
}
