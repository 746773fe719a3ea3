//! Host implementations of the non-WASI interfaces components import.
//!
//! One `bindgen!` over `wit/host/world.wit` generates the traits; each
//! submodule implements one family against the host's own capabilities:
//! - [`key_value`]: `spin:key-value@3.0.0`, `fermyon:spin/key-value@2.0.0`
//!   and `wasi:keyvalue` (store, batch, atomics), all over [`vnext_kv::Store`];
//! - [`variables`]: `spin:variables@3.0.0` and `fermyon:spin/variables@2.0.0`;
//! - [`hypervisor`]: `vnext:compute/hypervisor`, served in-process by the
//!   adapter (under real Spin the `hypervisor-client` component does this).

pub mod hypervisor;
pub mod key_value;
pub mod variables;

wasmtime::component::bindgen!({
    path: [
        "../../wit/deps/spin-key-value@3.0.0",
        "../../wit/deps/spin-variables@3.0.0",
        "../../wit/deps/fermyon-spin@2.0.0",
        "../../wit/deps/wasi-keyvalue-2024-10-17",
        "../../wit/vnext-compute",
        "../../wit/host",
    ],
    world: "vnext:host/host",
    imports: { default: async },
    with: {
        "spin:key-value/key-value.store": crate::bindings::key_value::KvHandle,
        "fermyon:spin/key-value.store": crate::bindings::key_value::KvHandle,
        "wasi:keyvalue/store.bucket": crate::bindings::key_value::KvHandle,
        "wasi:keyvalue/atomics.cas": crate::bindings::key_value::CasHandle,
    },
});

use crate::state::HostState;
use wasmtime::component::{HasData, Linker};

/// The `HasData` marker all our bindings use: they see the whole [`HostState`].
pub struct Host;

impl HasData for Host {
    type Data<'a> = &'a mut HostState;
}

/// Adds every interface of `wit/host/world.wit` to the linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    fn get(s: &mut HostState) -> &mut HostState {
        s
    }
    spin::key_value::key_value::add_to_linker::<_, Host>(linker, get)?;
    spin::variables::variables::add_to_linker::<_, Host>(linker, get)?;
    fermyon::spin::key_value::add_to_linker::<_, Host>(linker, get)?;
    fermyon::spin::variables::add_to_linker::<_, Host>(linker, get)?;
    wasi::keyvalue::store::add_to_linker::<_, Host>(linker, get)?;
    wasi::keyvalue::atomics::add_to_linker::<_, Host>(linker, get)?;
    wasi::keyvalue::batch::add_to_linker::<_, Host>(linker, get)?;
    vnext::compute::hypervisor::add_to_linker::<_, Host>(linker, get)?;
    vnext::compute::types::add_to_linker::<_, Host>(linker, get)?;
    Ok(())
}
