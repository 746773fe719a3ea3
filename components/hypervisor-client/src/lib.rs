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
//! ones the adapter uses; this file only converts between them and the WIT
//! records. An unreachable adapter or an answer that is not the expected
//! JSON becomes `hypervisor-error::unavailable`, so callers can retry.

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

impl Guest for Client {
    async fn list_placements() -> Result<Vec<wit::Placement>, wit::HypervisorError> {
        let placements: Vec<core::Placement> = call(adapter_api::LIST_PLACEMENTS, &serde_json::json!({})).await?;
        Ok(placements.into_iter().map(placement).collect())
    }

    async fn list_compute_nodes() -> Result<Vec<wit::ComputeNode>, wit::HypervisorError> {
        let nodes: Vec<core::ComputeNode> = call(adapter_api::LIST_COMPUTE_NODES, &serde_json::json!({})).await?;
        Ok(nodes.into_iter().map(compute_node).collect())
    }

    async fn submit(op: wit::Operation) -> Result<(), wit::HypervisorError> {
        // The adapter answers `null`; any 2xx means accepted.
        let _: serde_json::Value = call(adapter_api::SUBMIT, &operation(op)).await?;
        Ok(())
    }

    async fn server_state(server_id: String) -> Result<wit::RuntimeState, wit::HypervisorError> {
        let state: core::RuntimeState = call(adapter_api::SERVER_STATE, &adapter_api::ServerRef { server_id }).await?;
        Ok(wit::RuntimeState {
            server_id: state.server_id,
            power_state: power_state(state.power_state),
            compute_node_id: state.compute_node_id,
            compute_node_hostname: state.compute_node_hostname,
            uptime_seconds: state.uptime_seconds,
        })
    }

    async fn console_log(server_id: String, lines: u32) -> Result<String, wit::HypervisorError> {
        call(adapter_api::CONSOLE_LOG, &adapter_api::ConsoleLogRequest { server_id, lines }).await
    }

    async fn console_uri(server_id: String, kind: wit::ConsoleType) -> Result<String, wit::HypervisorError> {
        let kind = console_type_to_core(kind);
        call(adapter_api::CONSOLE_URI, &adapter_api::ConsoleUriRequest { server_id, kind }).await
    }

    async fn diagnostics(server_id: String) -> Result<wit::Diagnostics, wit::HypervisorError> {
        let d: core::Diagnostics = call(adapter_api::DIAGNOSTICS, &adapter_api::ServerRef { server_id }).await?;
        Ok(wit::Diagnostics {
            cpu_time_ns: d.cpu_time_ns,
            memory_used_mb: d.memory_used_mb,
            memory_total_mb: d.memory_total_mb,
            uptime_seconds: d.uptime_seconds,
            disks: d
                .disks
                .into_iter()
                .map(|c| wit::DiskCounters {
                    device: c.device,
                    read_bytes: c.read_bytes,
                    write_bytes: c.write_bytes,
                    read_requests: c.read_requests,
                    write_requests: c.write_requests,
                })
                .collect(),
            interfaces: d
                .interfaces
                .into_iter()
                .map(|c| wit::InterfaceCounters {
                    name: c.name,
                    rx_bytes: c.rx_bytes,
                    tx_bytes: c.tx_bytes,
                    rx_packets: c.rx_packets,
                    tx_packets: c.tx_packets,
                })
                .collect(),
        })
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
        Ok(error) => Err(hypervisor_error(error)),
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            Err(unavailable(format!("POST {url} answered {status}: {text}")))
        }
    }
}

fn hypervisor_error(e: core::HypervisorError) -> wit::HypervisorError {
    match e {
        core::HypervisorError::UnknownServer(m) => wit::HypervisorError::UnknownServer(m),
        core::HypervisorError::UnknownNode(m) => wit::HypervisorError::UnknownNode(m),
        core::HypervisorError::Unsupported(m) => wit::HypervisorError::Unsupported(m),
        core::HypervisorError::Invalid(m) => wit::HypervisorError::Invalid(m),
        core::HypervisorError::Unavailable(m) => wit::HypervisorError::Unavailable(m),
    }
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

fn resources(r: core::Resources) -> wit::Resources {
    wit::Resources { memory_mb: r.memory_mb, cpu_units: r.cpu_units, disk_gb: r.disk_gb }
}

fn console_type(c: core::ConsoleType) -> wit::ConsoleType {
    match c {
        core::ConsoleType::Novnc => wit::ConsoleType::Novnc,
        core::ConsoleType::Xvpvnc => wit::ConsoleType::Xvpvnc,
        core::ConsoleType::Rdp => wit::ConsoleType::Rdp,
        core::ConsoleType::Spice => wit::ConsoleType::Spice,
    }
}

fn console_type_to_core(c: wit::ConsoleType) -> core::ConsoleType {
    match c {
        wit::ConsoleType::Novnc => core::ConsoleType::Novnc,
        wit::ConsoleType::Xvpvnc => core::ConsoleType::Xvpvnc,
        wit::ConsoleType::Rdp => core::ConsoleType::Rdp,
        wit::ConsoleType::Spice => core::ConsoleType::Spice,
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

fn power_state(p: core::PowerState) -> wit::PowerState {
    match p {
        core::PowerState::Running => wit::PowerState::Running,
        core::PowerState::Paused => wit::PowerState::Paused,
        core::PowerState::Shutdown => wit::PowerState::Shutdown,
        core::PowerState::Crashed => wit::PowerState::Crashed,
        core::PowerState::Suspended => wit::PowerState::Suspended,
    }
}

fn spec(s: wit::ServerSpec) -> core::ServerSpec {
    core::ServerSpec {
        memory_mb: s.memory_mb,
        root_disk_gb: s.root_disk_gb,
        cpu_units: s.cpu_units,
        swap_mb: s.swap_mb,
    }
}

fn block_device(a: wit::BlockDeviceArgs) -> core::BlockDeviceArgs {
    core::BlockDeviceArgs { volume_id: a.volume_id, device: a.device }
}

fn network_interface(a: wit::NetworkInterfaceArgs) -> core::NetworkInterfaceArgs {
    core::NetworkInterfaceArgs { network_id: a.network_id, mac: a.mac }
}

fn operation(op: wit::Operation) -> core::Operation {
    use core::Action as A;
    let action = match op.action {
        wit::Action::Spawn(a) => A::Spawn(core::SpawnArgs {
            hostname: a.hostname,
            spec: spec(a.spec),
            template_id: a.template_id,
            keypair_id: a.keypair_id,
            user_data: a.user_data,
            candidate_node_ids: a.candidate_node_ids,
        }),
        wit::Action::Reboot => A::Reboot,
        wit::Action::HardReboot => A::HardReboot,
        wit::Action::Pause => A::Pause,
        wit::Action::Unpause => A::Unpause,
        wit::Action::Suspend => A::Suspend,
        wit::Action::Resume => A::Resume,
        wit::Action::PowerOff => A::PowerOff,
        wit::Action::PowerOn => A::PowerOn,
        wit::Action::Rescue(image) => A::Rescue(image),
        wit::Action::Unrescue => A::Unrescue,
        wit::Action::Rebuild(template) => A::Rebuild(template),
        wit::Action::Resize(s) => A::Resize(spec(s)),
        wit::Action::Move(m) => A::Move(core::MoveArgs { candidate_node_ids: m.candidate_node_ids, live: m.live }),
        wit::Action::Snapshot(name) => A::Snapshot(name),
        wit::Action::Backup(name) => A::Backup(name),
        wit::Action::UpdatePassword(password) => A::UpdatePassword(password),
        wit::Action::Shelve => A::Shelve,
        wit::Action::ShelveOffload => A::ShelveOffload,
        wit::Action::Unshelve => A::Unshelve,
        wit::Action::AttachBlockDevice(a) => A::AttachBlockDevice(block_device(a)),
        wit::Action::DetachBlockDevice(a) => A::DetachBlockDevice(block_device(a)),
        wit::Action::AttachNetworkInterface(a) => A::AttachNetworkInterface(network_interface(a)),
        wit::Action::DetachNetworkInterface(a) => A::DetachNetworkInterface(network_interface(a)),
        wit::Action::Terminate => A::Terminate,
        wit::Action::Restore => A::Restore,
    };
    core::Operation { task_id: op.task_id, server_id: op.server_id, action, steps: op.steps }
}
