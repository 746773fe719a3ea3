//! The hypervisor capability (`vnext:compute/hypervisor@0.1.0`), in the
//! core's serde types. Conversions to and from the WIT types live here and
//! nowhere else; a hypervisor error becomes an `ApiError` with the status a
//! client can act on.

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

fn resources(r: w::Resources) -> c::Resources {
    c::Resources { memory_mb: r.memory_mb, cpu_units: r.cpu_units, disk_gb: r.disk_gb }
}

fn console_type(t: w::ConsoleType) -> c::ConsoleType {
    match t {
        w::ConsoleType::Novnc => c::ConsoleType::Novnc,
        w::ConsoleType::Xvpvnc => c::ConsoleType::Xvpvnc,
        w::ConsoleType::Rdp => c::ConsoleType::Rdp,
        w::ConsoleType::Spice => c::ConsoleType::Spice,
    }
}

fn to_wit_console_type(t: c::ConsoleType) -> w::ConsoleType {
    match t {
        c::ConsoleType::Novnc => w::ConsoleType::Novnc,
        c::ConsoleType::Xvpvnc => w::ConsoleType::Xvpvnc,
        c::ConsoleType::Rdp => w::ConsoleType::Rdp,
        c::ConsoleType::Spice => w::ConsoleType::Spice,
    }
}

fn power_state(p: w::PowerState) -> c::PowerState {
    match p {
        w::PowerState::Running => c::PowerState::Running,
        w::PowerState::Paused => c::PowerState::Paused,
        w::PowerState::Shutdown => c::PowerState::Shutdown,
        w::PowerState::Crashed => c::PowerState::Crashed,
        w::PowerState::Suspended => c::PowerState::Suspended,
    }
}

fn spec(s: &c::ServerSpec) -> w::ServerSpec {
    w::ServerSpec { memory_mb: s.memory_mb, root_disk_gb: s.root_disk_gb, cpu_units: s.cpu_units, swap_mb: s.swap_mb }
}

fn block_device(a: c::BlockDeviceArgs) -> w::BlockDeviceArgs {
    w::BlockDeviceArgs { volume_id: a.volume_id, device: a.device }
}

fn interface(a: c::NetworkInterfaceArgs) -> w::NetworkInterfaceArgs {
    w::NetworkInterfaceArgs { network_id: a.network_id, mac: a.mac }
}

fn action(a: c::Action) -> w::Action {
    use c::Action as A;
    match a {
        A::Spawn(s) => w::Action::Spawn(w::SpawnArgs {
            hostname: s.hostname,
            spec: spec(&s.spec),
            template_id: s.template_id,
            keypair_id: s.keypair_id,
            user_data: s.user_data,
            candidate_node_ids: s.candidate_node_ids,
        }),
        A::Reboot => w::Action::Reboot,
        A::HardReboot => w::Action::HardReboot,
        A::Pause => w::Action::Pause,
        A::Unpause => w::Action::Unpause,
        A::Suspend => w::Action::Suspend,
        A::Resume => w::Action::Resume,
        A::PowerOff => w::Action::PowerOff,
        A::PowerOn => w::Action::PowerOn,
        A::Rescue(t) => w::Action::Rescue(t),
        A::Unrescue => w::Action::Unrescue,
        A::Rebuild(t) => w::Action::Rebuild(t),
        A::Resize(s) => w::Action::Resize(spec(&s)),
        A::Move(m) => w::Action::Move(w::MoveArgs { candidate_node_ids: m.candidate_node_ids, live: m.live }),
        A::Snapshot(n) => w::Action::Snapshot(n),
        A::Backup(n) => w::Action::Backup(n),
        A::UpdatePassword(p) => w::Action::UpdatePassword(p),
        A::Shelve => w::Action::Shelve,
        A::ShelveOffload => w::Action::ShelveOffload,
        A::Unshelve => w::Action::Unshelve,
        A::AttachBlockDevice(b) => w::Action::AttachBlockDevice(block_device(b)),
        A::DetachBlockDevice(b) => w::Action::DetachBlockDevice(block_device(b)),
        A::AttachNetworkInterface(i) => w::Action::AttachNetworkInterface(interface(i)),
        A::DetachNetworkInterface(i) => w::Action::DetachNetworkInterface(interface(i)),
        A::Terminate => w::Action::Terminate,
        A::Restore => w::Action::Restore,
    }
}

/// The deployment's placements.
pub async fn list_placements() -> ApiResult<Vec<c::Placement>> {
    let list = wit_hv::list_placements().await.map_err(|e| api_error("list-placements", e))?;
    Ok(list
        .into_iter()
        .map(|p| c::Placement {
            id: p.id,
            name: p.name,
            description: p.description,
            parent_ids: p.parent_ids,
            properties: p.properties,
            tags: p.tags,
        })
        .collect())
}

/// Every compute node with capacity and usage.
pub async fn list_compute_nodes() -> ApiResult<Vec<c::ComputeNode>> {
    let list = wit_hv::list_compute_nodes().await.map_err(|e| api_error("list-compute-nodes", e))?;
    Ok(list
        .into_iter()
        .map(|n| c::ComputeNode {
            id: n.id,
            hostname: n.hostname,
            placement_ids: n.placement_ids,
            capacity: resources(n.capacity),
            usage: resources(n.usage),
            console_types: n.console_types.into_iter().map(console_type).collect(),
            enabled: n.enabled,
        })
        .collect())
}

/// Hands an operation to the hypervisor; progress comes back as events.
pub async fn submit(op: c::Operation) -> ApiResult<()> {
    let op = w::Operation { task_id: op.task_id, server_id: op.server_id, action: action(op.action), steps: op.steps };
    wit_hv::submit(op).await.map_err(|e| api_error("submit", e))
}

pub async fn server_state(server_id: &str) -> ApiResult<c::RuntimeState> {
    let s = wit_hv::server_state(server_id.to_string()).await.map_err(|e| api_error("server-state", e))?;
    Ok(c::RuntimeState {
        server_id: s.server_id,
        power_state: power_state(s.power_state),
        compute_node_id: s.compute_node_id,
        compute_node_hostname: s.compute_node_hostname,
        uptime_seconds: s.uptime_seconds,
    })
}

pub async fn console_log(server_id: &str, lines: u32) -> ApiResult<String> {
    wit_hv::console_log(server_id.to_string(), lines).await.map_err(|e| api_error("console-log", e))
}

pub async fn console_uri(server_id: &str, kind: c::ConsoleType) -> ApiResult<String> {
    wit_hv::console_uri(server_id.to_string(), to_wit_console_type(kind))
        .await
        .map_err(|e| api_error("console-uri", e))
}

pub async fn diagnostics(server_id: &str) -> ApiResult<c::Diagnostics> {
    let d = wit_hv::diagnostics(server_id.to_string()).await.map_err(|e| api_error("diagnostics", e))?;
    Ok(c::Diagnostics {
        cpu_time_ns: d.cpu_time_ns,
        memory_used_mb: d.memory_used_mb,
        memory_total_mb: d.memory_total_mb,
        uptime_seconds: d.uptime_seconds,
        disks: d
            .disks
            .into_iter()
            .map(|x| c::DiskCounters {
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
            .map(|x| c::InterfaceCounters {
                name: x.name,
                rx_bytes: x.rx_bytes,
                tx_bytes: x.tx_bytes,
                rx_packets: x.rx_packets,
                tx_packets: x.tx_packets,
            })
            .collect(),
    })
}
