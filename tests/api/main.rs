//! The integration tests: one binary that starts the real host and talks
//! HTTP to it. Each module covers one capability.

mod apiary;
mod dependencies;
mod harness;
mod hostile_clients;
mod keystone;
mod launch;
mod libvirt;
mod observations;
mod lists;
mod placements;
mod proposal;
// A throwaway redis-server, shared with the kv crate's outage tests.
#[path = "../../crates/kv/tests/support/redis_server.rs"]
mod redis_server;
mod scale_out;
mod server_types;
mod servers;
mod slice;
mod store_outage;
mod tasks;

// Spin 4 compatibility, against the probe application (tests/fixtures/probe.toml).
mod probe;
mod spin_config;
mod spin_guest_limits;
mod spin_headers;
mod spin_instances;
mod spin_key_value;
mod spin_lifecycle;
mod spin_routes;
