//! vNext Compute's hypervisor adapter.
//!
//! The API components never talk to a hypervisor directly: they import the
//! WIT interface `vnext:compute/hypervisor` (see `wit/vnext-compute`). This
//! crate is the native side of that interface:
//!
//! - [`inventory`]: the deployment's placements, compute nodes and driver
//!   settings, read and validated from a TOML file.
//! - [`driver`]: the [`Driver`] trait a hypervisor backend implements, one
//!   operation step at a time.
//! - [`fake`]: [`FakeDriver`], an in-memory backend in the spirit of Nova's
//!   FakeDriver, with configurable delays and failure injection.
//! - [`libvirt`]: [`LibvirtDriver`], real guests through libvirt (QEMU with
//!   KVM or TCG, remote daemons, libvirt's test driver).
//! - [`console_proxy`]: [`ConsoleProxy`], the websocket-to-VNC proxy that
//!   serves the consoles of libvirt guests (like nova-novncproxy).
//! - [`drivers`]: [`NodeDrivers`], which lets each node name its driver.
//! - [`adapter`]: [`Adapter`], the interface itself: scheduling claims,
//!   per-server operation queues, progress events.
//! - [`events`]: the [`EventSink`] progress events go to, with an HTTP
//!   implementation ([`HttpEventSink`]) for the API's events route.
//! - [`journal`]: the optional SQLite journal that lets an adapter resume
//!   unfinished operations and re-deliver events after a restart.
//! - [`http`]: the adapter's HTTP API, for running it as its own process
//!   beside real Spin (the `hypervisor-client` component calls it).
//!
//! Wire types come from [`vnext_core::hypervisor`] and [`vnext_core::events`]
//! so the host, the adapter and the components agree on one JSON shape.

pub mod adapter;
pub mod console_proxy;
pub mod driver;
pub mod drivers;
mod error;
pub mod events;
pub mod fake;
pub mod http;
pub mod inventory;
pub mod journal;
pub mod libvirt;
mod time;

pub use adapter::{Adapter, AdapterOptions};
pub use console_proxy::ConsoleProxy;
pub use driver::{BoxFuture, Driver, StepError, StepRequest};
pub use drivers::NodeDrivers;
pub use error::Error;
pub use events::{DeliveryError, EventSink, HostsEventSink, HttpEventSink};
pub use fake::FakeDriver;
pub use inventory::Inventory;
pub use journal::Journal;
pub use libvirt::LibvirtDriver;
