//! The one place with spin-sdk glue, shared by every vNext API component
//! (`wasm32-wasip2` only).
//!
//! - [`bindings`]: wit-bindgen output for the imports spin-sdk does not
//!   cover: `vnext:compute/hypervisor@0.1.0` and `wasi:keyvalue@0.2.0-draft2`
//!   (store, atomics, batch).
//! - [`kv`]: JSON records in the `default` store, with compare-and-swap updates;
//!   [`records`]: loading servers and tasks the caller may see; [`index`]:
//!   the collection indexes behind every list (logic in `vnext_core::index`).
//! - [`web`]: request parsing, authentication, dispatch through the core
//!   route table, and responses (request id, API version, error shape);
//!   [`auth`]: the verifier the configuration chose (development tokens or
//!   Keystone, with its cache).
//! - [`tasks`]: submitting a task's operation (or recording its failure);
//!   [`affinity`]: reading the servers an affinity rule targets;
//!   [`claims`]: hostname claims (unique names per project).
//! - [`hv`]: the hypervisor calls, converting between the WIT types and
//!   `vnext_core::hypervisor` (the only place the WIT types appear).
//!
//! Components stay thin: they match on a route's `rel`, call core for the
//! logic, and use these helpers for I/O.

pub mod affinity;
pub mod auth;
pub mod bindings;
pub mod claims;
pub mod hv;
pub mod kv;
/// The collection indexes (`vnext_core::index`), usable with [`kv::Kv`].
pub mod index {
    pub use vnext_core::index::*;
}
pub mod records;
pub mod tasks;
pub mod web;

pub use vnext_core as core;
