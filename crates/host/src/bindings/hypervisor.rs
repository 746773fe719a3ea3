//! `vnext:compute/hypervisor@0.1.0` served in-process: every call converts
//! the WIT records to the serde wire types of `vnext_core::hypervisor` and
//! goes to a [`Hypervisor`] (the adapter), so the in-process path and the
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
    fn list_compute_nodes(&self) -> BoxFuture<'_, HvResult<Vec<core::ComputeNode>>>;
    fn submit(&self, op: core::Operation) -> BoxFuture<'_, HvResult<()>>;
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

impl<T> super::vnext::compute::hypervisor::HostWithStore<T> for Host {
    async fn list_placements(accessor: &Accessor<T, Self>) -> Result<Vec<wit::Placement>, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.list_placements().await.map_err(to_wit_error)?.into_iter().map(placement).collect())
    }

    async fn list_compute_nodes(accessor: &Accessor<T, Self>) -> Result<Vec<wit::ComputeNode>, wit::HypervisorError> {
        let hv = service(accessor)?;
        Ok(hv.list_compute_nodes().await.map_err(to_wit_error)?.into_iter().map(compute_node).collect())
    }

    async fn submit(accessor: &Accessor<T, Self>, op: wit::Operation) -> Result<(), wit::HypervisorError> {
        let hv = service(accessor)?;
        hv.submit(operation(op)).await.map_err(to_wit_error)
    }

    async fn server_state(accessor: &Accessor<T, Self>, server_id: String) -> Result<wit::RuntimeState, wit::HypervisorError> {
        let hv = service(accessor)?;
        let s = hv.server_state(server_id).await.map_err(to_wit_error)?;
        Ok(wit::RuntimeState {
            server_id: s.server_id,
            power_state: power_state(s.power_state),
            compute_node_id: s.compute_node_id,
            compute_node_hostname: s.compute_node_hostname,
            uptime_seconds: s.uptime_seconds,
        })
    }

    async fn console_log(accessor: &Accessor<T, Self>, server_id: String, lines: u32) -> Result<String, wit::HypervisorError> {
        let hv = service(accessor)?;
        hv.console_log(server_id, lines).await.map_err(to_wit_error)
    }

    async fn console_uri(accessor: &Accessor<T, Self>, server_id: String, kind: wit::ConsoleType) -> Result<String, wit::HypervisorError> {
        let hv = service(accessor)?;
        let kind = match kind {
            wit::ConsoleType::Novnc => core::ConsoleType::Novnc,
            wit::ConsoleType::Xvpvnc => core::ConsoleType::Xvpvnc,
            wit::ConsoleType::Rdp => core::ConsoleType::Rdp,
            wit::ConsoleType::Spice => core::ConsoleType::Spice,
        };
        hv.console_uri(server_id, kind).await.map_err(to_wit_error)
    }

    async fn diagnostics(accessor: &Accessor<T, Self>, server_id: String) -> Result<wit::Diagnostics, wit::HypervisorError> {
        let hv = service(accessor)?;
        let d = hv.diagnostics(server_id).await.map_err(to_wit_error)?;
        Ok(wit::Diagnostics {
            cpu_time_ns: d.cpu_time_ns,
            memory_used_mb: d.memory_used_mb,
            memory_total_mb: d.memory_total_mb,
            uptime_seconds: d.uptime_seconds,
            disks: d
                .disks
                .into_iter()
                .map(|x| wit::DiskCounters {
                    device: x.device,
                    read_bytes: x.read_bytes,
                    write_bytes: x.write_bytes,
                    read_requests: x.read_requests,
                    write_requests: x.write_requests,
                })
                .collect(),
            interfaces: d
                .interfaces
                .into_iter()
                .map(|x| wit::InterfaceCounters {
                    name: x.name,
                    rx_bytes: x.rx_bytes,
                    tx_bytes: x.tx_bytes,
                    rx_packets: x.rx_packets,
                    tx_packets: x.tx_packets,
                })
                .collect(),
        })
    }
}

fn to_wit_error(e: core::HypervisorError) -> wit::HypervisorError {
    match e {
        core::HypervisorError::UnknownServer(m) => wit::HypervisorError::UnknownServer(m),
        core::HypervisorError::UnknownNode(m) => wit::HypervisorError::UnknownNode(m),
        core::HypervisorError::Unsupported(m) => wit::HypervisorError::Unsupported(m),
        core::HypervisorError::Invalid(m) => wit::HypervisorError::Invalid(m),
        core::HypervisorError::Unavailable(m) => wit::HypervisorError::Unavailable(m),
    }
}

fn power_state(p: core::PowerState) -> wit::PowerState {
    match p {
        core::PowerState::Running => wit::PowerState::Running,
        core::PowerState::Paused => wit::PowerState::Paused,
        core::PowerState::Shutdown => wit::PowerState::Shutdown,
        core::PowerState::Crashed => wit::PowerState::Crashed,
        core::PowerState::Suspended => wit::PowerState::Suspended,
    }
}

fn console_type(c: core::ConsoleType) -> wit::ConsoleType {
    match c {
        core::ConsoleType::Novnc => wit::ConsoleType::Novnc,
        core::ConsoleType::Xvpvnc => wit::ConsoleType::Xvpvnc,
        core::ConsoleType::Rdp => wit::ConsoleType::Rdp,
        core::ConsoleType::Spice => wit::ConsoleType::Spice,
    }
}

fn resources(r: core::Resources) -> wit::Resources {
    wit::Resources { memory_mb: r.memory_mb, cpu_units: r.cpu_units, disk_gb: r.disk_gb }
}

fn placement(p: core::Placement) -> wit::Placement {
    wit::Placement {
        id: p.id,
        name: p.name,
        description: p.description,
        parent_ids: p.parent_ids,
        properties: p.properties,
        tags: p.tags,
    }
}

fn compute_node(n: core::ComputeNode) -> wit::ComputeNode {
    wit::ComputeNode {
        id: n.id,
        hostname: n.hostname,
        placement_ids: n.placement_ids,
        capacity: resources(n.capacity),
        usage: resources(n.usage),
        console_types: n.console_types.into_iter().map(console_type).collect(),
        enabled: n.enabled,
    }
}

fn spec(s: wit::ServerSpec) -> core::ServerSpec {
    core::ServerSpec { memory_mb: s.memory_mb, root_disk_gb: s.root_disk_gb, cpu_units: s.cpu_units, swap_mb: s.swap_mb }
}

fn block_device(b: wit::BlockDeviceArgs) -> core::BlockDeviceArgs {
    core::BlockDeviceArgs { volume_id: b.volume_id, device: b.device }
}

fn nic(n: wit::NetworkInterfaceArgs) -> core::NetworkInterfaceArgs {
    core::NetworkInterfaceArgs { network_id: n.network_id, mac: n.mac }
}

fn operation(op: wit::Operation) -> core::Operation {
    use core::Action as C;
    use wit::Action as W;
    let action = match op.action {
        W::Spawn(a) => C::Spawn(core::SpawnArgs {
            hostname: a.hostname,
            spec: spec(a.spec),
            template_id: a.template_id,
            keypair_id: a.keypair_id,
            user_data: a.user_data,
            candidate_node_ids: a.candidate_node_ids,
        }),
        W::Reboot => C::Reboot,
        W::HardReboot => C::HardReboot,
        W::Pause => C::Pause,
        W::Unpause => C::Unpause,
        W::Suspend => C::Suspend,
        W::Resume => C::Resume,
        W::PowerOff => C::PowerOff,
        W::PowerOn => C::PowerOn,
        W::Rescue(t) => C::Rescue(t),
        W::Unrescue => C::Unrescue,
        W::Rebuild(t) => C::Rebuild(t),
        W::Resize(s) => C::Resize(spec(s)),
        W::Move(m) => C::Move(core::MoveArgs { candidate_node_ids: m.candidate_node_ids, live: m.live }),
        W::Snapshot(n) => C::Snapshot(n),
        W::Backup(n) => C::Backup(n),
        W::UpdatePassword(p) => C::UpdatePassword(p),
        W::Shelve => C::Shelve,
        W::ShelveOffload => C::ShelveOffload,
        W::Unshelve => C::Unshelve,
        W::AttachBlockDevice(b) => C::AttachBlockDevice(block_device(b)),
        W::DetachBlockDevice(b) => C::DetachBlockDevice(block_device(b)),
        W::AttachNetworkInterface(n) => C::AttachNetworkInterface(nic(n)),
        W::DetachNetworkInterface(n) => C::DetachNetworkInterface(nic(n)),
        W::Terminate => C::Terminate,
        W::Restore => C::Restore,
    };
    core::Operation { task_id: op.task_id, server_id: op.server_id, action, steps: op.steps }
}
