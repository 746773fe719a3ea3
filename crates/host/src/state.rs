//! Per-request store data: everything a component instance can reach.

use crate::outbound::OutboundPolicy;
use crate::variables::ComponentVariables;
use std::collections::HashSet;
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What one component is allowed and given, computed once at load.
pub struct ComponentConfig {
    pub id: String,
    pub key_value_stores: HashSet<String>,
    pub variables: ComponentVariables,
    pub outbound: OutboundPolicy,
    pub environment: Vec<(String, String)>,
    pub stdout: crate::logs::ComponentOutput,
    pub stderr: crate::logs::ComponentOutput,
}

pub struct HostState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: crate::outbound_http::OutboundHooks,
    pub limits: StoreLimits,
    pub component: Arc<ComponentConfig>,
    pub app: Arc<crate::app::AppShared>,
    /// When the request started, for the epoch deadline callback.
    pub started: std::time::Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}
