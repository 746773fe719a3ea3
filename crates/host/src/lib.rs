//! The vNext native host: runs a Spin manifest-v2 application of WASI HTTP
//! components the way Spin 4 does, and serves vNext's own capabilities.
//!
//! How the crate is organised, from the outside in:
//! - [`cli`]: the `vnext` command (`up`, `adapter`, `baseline`), whose doc
//!   comments are its help;
//! - [`server`]: the hyper HTTP/1.1 server, request ids, the log line, and
//!   graceful shutdown;
//! - [`app`]: a loaded application: router + compiled components, and the
//!   dispatch of one request to a fresh instance (WASI 0.3 or 0.2);
//! - [`manifest`], [`router`], [`variables`], [`outbound`],
//!   [`runtime_config`]: Spin's manifest, route, variable, outbound-host and
//!   runtime-config rules, each testable without wasm;
//! - [`compose`]: `[component.x.dependencies]` composed into their parent
//!   at load (wac-graph), with Spin's configuration-inheritance rules;
//! - [`engine`]: wasmtime configuration, pooling allocator, compile cache;
//!   [`precompile`]: filling that cache in a child process (`vnext compile`);
//! - [`state`] and [`bindings`]: what an instance can reach (WASI, key-value,
//!   variables, the hypervisor capability);
//! - [`outbound_http`]: outbound requests, allow-list and `*.spin.internal`;
//! - [`events`]: in-process delivery of the adapter's progress events;
//! - [`logs`]: component stdout/stderr to the console and `<state dir>/logs/`,
//!   and the request log;
//! - [`repoll`]: keeps a request's self-wakes out of tokio's scheduler.

pub mod app;
pub mod baseline;
pub mod bindings;
pub mod cli;
pub mod compose;
pub mod engine;
pub mod events;
pub mod logs;
pub mod manifest;
pub mod outbound;
pub mod outbound_http;
pub mod precompile;
pub mod repoll;
pub mod router;
pub mod runtime_config;
pub mod server;
pub mod state;
pub mod variables;
