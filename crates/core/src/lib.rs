//! vNext Compute's shared, target-independent core: the API's models,
//! validation, errors, key-value key layout, route table, and the wire types
//! of the hypervisor capability and its progress events. Compiled both
//! natively (host, adapter) and for `wasm32-wasip2` (components), so it has
//! no I/O of its own (it reads the clock and the random source only through
//! `time::now` and `ids::new_id`).
//!
//! How it is organised:
//! - [`error`]: the one error type and its JSON body.
//! - [`ids`], [`time`]: UUIDs and RFC 3339 timestamps.
//! - [`model`]: stored records and the functions that render their views.
//! - [`validate`]: request bodies and field rules; [`schemas`]: the same
//!   rules as JSON Schema documents.
//! - [`transitions`]: the task-action table (Nova semantics) and the
//!   hypervisor action of a task; [`progress`]: applying progress events.
//! - [`keys`]: the key-value layout; [`index`]: the collection indexes that
//!   make lists O(page); [`paging`]: `limit`/`marker` and collection bodies.
//! - [`auth`]: identities and the token verifier trait.
//! - [`routes`]: the route table, dispatch and JSON-Home.
//! - [`scheduler`]: candidate compute nodes for a launch.
//! - [`events`], [`hypervisor`]: wire types shared with the native host;
//!   [`wit_convert`]: the macro that converts the hypervisor types to and
//!   from each crate's WIT bindings.

pub mod auth;
pub mod error;
pub mod events;
pub mod hypervisor;
pub mod ids;
pub mod index;
pub mod keys;
pub mod model;
pub mod openapi;
pub mod paging;
pub mod progress;
pub mod routes;
pub mod scheduler;
pub mod schemas;
pub mod time;
pub mod transitions;
pub mod validate;
pub mod wit_convert;
