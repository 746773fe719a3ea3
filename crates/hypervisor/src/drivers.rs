//! [`NodeDrivers`]: one adapter, nodes with different drivers.
//!
//! Each compute node names its driver in the inventory (`driver = "fake"`
//! or `"libvirt"`), so a deployment can mix them. `NodeDrivers` is the
//! [`Driver`] the adapter holds: a step goes to the driver of the node it
//! runs on, and reads (state, console, diagnostics) to the driver of the
//! node the server was last placed on, which it remembers per server (and
//! journals with the inner driver's own record).

use crate::driver::{BoxFuture, Driver, StepError, StepRequest};
use crate::inventory::{Inventory, NodeBackend};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use vnext_core::events::ServerRuntime;
use vnext_core::hypervisor::{ConsoleType, Diagnostics, HypervisorError, RuntimeState};

/// Which driver a node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverKind {
    Fake,
    Libvirt,
}

impl DriverKind {
    fn as_str(self) -> &'static str {
        match self {
            DriverKind::Fake => "fake",
            DriverKind::Libvirt => "libvirt",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "fake" => Some(DriverKind::Fake),
            "libvirt" => Some(DriverKind::Libvirt),
            _ => None,
        }
    }
}

pub struct NodeDrivers {
    drivers: HashMap<DriverKind, Arc<dyn Driver>>,
    nodes: HashMap<String, DriverKind>,
    servers: Mutex<HashMap<String, DriverKind>>,
}

impl NodeDrivers {
    /// `drivers` must hold a driver for every kind the inventory's nodes use.
    pub fn new(inventory: &Inventory, drivers: HashMap<DriverKind, Arc<dyn Driver>>) -> NodeDrivers {
        let nodes = inventory
            .nodes
            .iter()
            .map(|n| {
                let kind = match n.backend {
                    NodeBackend::Fake => DriverKind::Fake,
                    NodeBackend::Libvirt { .. } => DriverKind::Libvirt,
                };
                (n.id.clone(), kind)
            })
            .collect();
        NodeDrivers { drivers, nodes, servers: Mutex::new(HashMap::new()) }
    }

    fn of_server(&self, server_id: &str) -> Result<&Arc<dyn Driver>, HypervisorError> {
        let kind = self.servers.lock().unwrap().get(server_id).copied();
        kind.and_then(|k| self.drivers.get(&k)).ok_or_else(|| HypervisorError::UnknownServer(server_id.to_string()))
    }
}

impl Driver for NodeDrivers {
    fn run_step<'a>(&'a self, step: StepRequest<'a>) -> BoxFuture<'a, Result<Option<ServerRuntime>, StepError>> {
        Box::pin(async move {
            let server_id = step.op.server_id.as_str();
            let known = self.servers.lock().unwrap().get(server_id).copied();
            let kind = match step.node {
                Some(node) => {
                    let kind = *self.nodes.get(&node.id).ok_or_else(|| {
                        StepError::Aborted(format!("compute node {} is not in the inventory", node.hostname))
                    })?;
                    if let Some(before) = known.filter(|k| *k != kind) {
                        return Err(StepError::Aborted(format!(
                            "the server runs on a {} node and cannot go to {}, a {} node",
                            before.as_str(),
                            node.hostname,
                            kind.as_str()
                        )));
                    }
                    kind
                }
                None => known.ok_or_else(|| StepError::Aborted(format!("server {server_id} is on no compute node")))?,
            };
            let driver = self.drivers.get(&kind).ok_or_else(|| StepError::Aborted(format!("no {} driver", kind.as_str())))?;
            self.servers.lock().unwrap().insert(server_id.to_string(), kind);
            driver.run_step(step).await
        })
    }

    fn server_state<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, Result<RuntimeState, HypervisorError>> {
        Box::pin(async move { self.of_server(server_id)?.server_state(server_id).await })
    }

    fn console_log<'a>(&'a self, server_id: &'a str, lines: u32) -> BoxFuture<'a, Result<String, HypervisorError>> {
        Box::pin(async move { self.of_server(server_id)?.console_log(server_id, lines).await })
    }

    fn console_uri<'a>(&'a self, server_id: &'a str, kind: ConsoleType) -> BoxFuture<'a, Result<String, HypervisorError>> {
        Box::pin(async move { self.of_server(server_id)?.console_uri(server_id, kind).await })
    }

    fn diagnostics<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, Result<Diagnostics, HypervisorError>> {
        Box::pin(async move { self.of_server(server_id)?.diagnostics(server_id).await })
    }

    fn forget<'a>(&'a self, server_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let kind = self.servers.lock().unwrap().remove(server_id);
            if let Some(driver) = kind.and_then(|k| self.drivers.get(&k)) {
                driver.forget(server_id).await;
            }
        })
    }

    fn recover<'a>(&'a self, known: &'a [String]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for driver in self.drivers.values() {
                driver.recover(known).await;
            }
        })
    }

    fn templates(&self) -> Vec<crate::inventory::TemplateConfig> {
        self.drivers.values().flat_map(|d| d.templates()).collect()
    }

    fn export_server(&self, server_id: &str) -> Option<Value> {
        let kind = self.servers.lock().unwrap().get(server_id).copied()?;
        let inner = self.drivers.get(&kind)?.export_server(server_id);
        Some(json!({ "driver": kind.as_str(), "state": inner }))
    }

    fn import_server(&self, server_id: &str, state: Value) -> Result<(), String> {
        let kind = state["driver"].as_str().and_then(DriverKind::parse).ok_or("no driver named in the record")?;
        let driver = self.drivers.get(&kind).ok_or_else(|| format!("the inventory has no {} node any more", kind.as_str()))?;
        if let Some(inner) = state.get("state").filter(|s| !s.is_null()) {
            driver.import_server(server_id, inner.clone())?;
        }
        self.servers.lock().unwrap().insert(server_id.to_string(), kind);
        Ok(())
    }
}
