//! [`wit_conversions!`](crate::wit_conversions): the `From` conversions
//! between the records of `vnext:compute/types` (WIT) and their serde mirror
//! in [`crate::hypervisor`], written once.
//!
//! Why a macro and not plain `impl`s here: the Rust types of the WIT records
//! do not exist in this crate. Each crate that runs a bindings generator
//! (`wasmtime::component::bindgen!` in the host, `wit_bindgen::generate!` in
//! `vnext-guest` and in the `hypervisor-client` component) gets its own,
//! distinct copy of them, local to that crate, and this crate cannot name
//! any of them. So each of those crates expands the conversions itself, for
//! its own generated module. The orphan rules allow it: the invoking crate
//! owns the generated types, and both `impl From<Local> for Foreign` and
//! `impl From<Foreign> for Local` are allowed for a local type.
//!
//! The generated records and the serde types have the same field and case
//! names (the WIT names in snake_case / UpperCamelCase), so the lists below
//! are the whole mapping. Both directions are generated for every type, even
//! where a crate uses only one. The compiler checks the lists against both
//! sides in every invoking crate: a struct literal must name every field and
//! a match must cover every case, so a field or case added to the WIT and the
//! serde mirror but not here (or to one of them only) fails the build, and
//! since everything maps by name nothing can be crossed over.
//!
//! ```ignore
//! vnext_core::wit_conversions!(crate::bindings::vnext::compute::types);
//! let node: vnext_core::hypervisor::ComputeNode = wit_node.into();
//! ```
//!
//! The argument is the path of the generated `types` interface module, as
//! seen from where the macro is invoked. The hypervisor interface's
//! `server-diagnostics` is a type alias of `types::diagnostics` in every
//! generator, so it is covered by `Diagnostics`.

/// Expands `From` conversions, both directions, between the WIT-generated
/// types in the module at `$types` and the serde types of
/// [`vnext_core::hypervisor`](crate::hypervisor). See the [module
/// documentation](crate::wit_convert) for why this is a macro.
///
/// Field and payload markers in the internal lists: none = moved as is,
/// `into` = converted with `Into`, `each` = a list converted element-wise.
#[macro_export]
macro_rules! wit_conversions {
    ($types:path) => {
        const _: () = {
            use $types as wit;

            $crate::wit_conversions!(@enum wit, ConsoleType { Novnc, Xvpvnc, Rdp, Spice });
            $crate::wit_conversions!(@enum wit, PowerState { Running, Paused, Shutdown, Crashed, Suspended });

            $crate::wit_conversions!(@record wit, Resources { memory_mb, cpu_units, disk_gb });
            $crate::wit_conversions!(@record wit, Placement {
                id, name, description, parent_ids, properties, tags,
            });
            $crate::wit_conversions!(@record wit, Template { id, name, min_memory_mb, min_disk_gb, rescue_template_id });
            $crate::wit_conversions!(@record wit, ComputeNode {
                id, hostname, placement_ids, capacity: into, usage: into, console_types: each, enabled, live_migration_group,
            });
            $crate::wit_conversions!(@record wit, ServerSpec { memory_mb, root_disk_gb, cpu_units, swap_mb });
            $crate::wit_conversions!(@record wit, SpawnArgs {
                hostname, spec: into, template_id, keypair_id, user_data, candidate_node_ids,
            });
            $crate::wit_conversions!(@record wit, MoveArgs { candidate_node_ids, live });
            $crate::wit_conversions!(@record wit, BlockDeviceArgs { volume_id, device });
            $crate::wit_conversions!(@record wit, NetworkInterfaceArgs { network_id, mac });
            $crate::wit_conversions!(@variant wit, Action {
                Spawn(a: into), Reboot, HardReboot, Pause, Unpause, Suspend, Resume, PowerOff, PowerOn,
                Rescue(template), Unrescue, Rebuild(template), Resize(spec: into), Move(a: into),
                Snapshot(name), Backup(name), UpdatePassword(password), Shelve, ShelveOffload, Unshelve,
                AttachBlockDevice(a: into), DetachBlockDevice(a: into),
                AttachNetworkInterface(a: into), DetachNetworkInterface(a: into),
                Terminate, Restore,
            });
            $crate::wit_conversions!(@record wit, Operation { task_id, server_id, action: into, steps });
            $crate::wit_conversions!(@record wit, RuntimeState {
                server_id, power_state: into, compute_node_id, compute_node_hostname, uptime_seconds,
            });
            $crate::wit_conversions!(@record wit, DiskCounters {
                device, read_bytes, write_bytes, read_requests, write_requests,
            });
            $crate::wit_conversions!(@record wit, InterfaceCounters {
                name, rx_bytes, tx_bytes, rx_packets, tx_packets,
            });
            $crate::wit_conversions!(@record wit, Diagnostics {
                cpu_time_ns, memory_used_mb, memory_total_mb, uptime_seconds, disks: each, interfaces: each,
            });
            $crate::wit_conversions!(@variant wit, HypervisorError {
                UnknownServer(m), UnknownNode(m), Unsupported(m), Invalid(m), Unavailable(m),
            });
        };
    };

    // A record: every field, by name, in both directions.
    (@record $w:ident, $name:ident { $($field:ident $(: $conv:ident)?),* $(,)? }) => {
        impl ::core::convert::From<$w::$name> for $crate::hypervisor::$name {
            fn from(v: $w::$name) -> Self {
                Self { $($field: $crate::wit_conversions!(@value v.$field $(, $conv)?)),* }
            }
        }
        impl ::core::convert::From<$crate::hypervisor::$name> for $w::$name {
            fn from(v: $crate::hypervisor::$name) -> Self {
                Self { $($field: $crate::wit_conversions!(@value v.$field $(, $conv)?)),* }
            }
        }
    };

    // A WIT enum: a variant whose cases carry nothing.
    (@enum $w:ident, $name:ident { $($case:ident),* $(,)? }) => {
        $crate::wit_conversions!(@variant $w, $name { $($case),* });
    };

    // A variant: each case, with its payload (bound to `$p`) if it has one.
    (@variant $w:ident, $name:ident { $($case:ident $(($p:ident $(: $conv:ident)?))?),* $(,)? }) => {
        impl ::core::convert::From<$w::$name> for $crate::hypervisor::$name {
            fn from(v: $w::$name) -> Self {
                match v {
                    $($w::$name::$case $(($p))? => Self::$case $(($crate::wit_conversions!(@value $p $(, $conv)?)))?,)*
                }
            }
        }
        impl ::core::convert::From<$crate::hypervisor::$name> for $w::$name {
            fn from(v: $crate::hypervisor::$name) -> Self {
                match v {
                    $($crate::hypervisor::$name::$case $(($p))? => Self::$case $(($crate::wit_conversions!(@value $p $(, $conv)?)))?,)*
                }
            }
        }
    };

    (@value $e:expr) => { $e };
    (@value $e:expr, into) => { ::core::convert::Into::into($e) };
    (@value $e:expr, each) => {
        ::core::iter::Iterator::collect(::core::iter::Iterator::map(
            ::core::iter::IntoIterator::into_iter($e),
            ::core::convert::Into::into,
        ))
    };
}
