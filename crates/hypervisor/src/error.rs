//! The crate's error type for everything that is not a hypervisor call result
//! (those use the wire type [`vnext_core::hypervisor::HypervisorError`]).

use std::fmt;
use std::path::PathBuf;

/// Why setting up or running the adapter failed.
#[derive(Debug)]
pub enum Error {
    /// A file could not be read.
    Read { path: PathBuf, source: std::io::Error },
    /// The inventory file is not valid TOML or has fields of the wrong type.
    InventoryParse { path: PathBuf, message: String },
    /// The inventory parsed but one entry breaks a rule; `entry` names it.
    InventoryInvalid { path: PathBuf, entry: String, message: String },
    /// The state directory could not be created.
    StateDir { path: PathBuf, source: std::io::Error },
    /// The SQLite journal failed.
    Journal { context: &'static str, source: rusqlite::Error },
    /// A journal row could not be decoded (written by another version?).
    JournalCorrupt { context: String, message: String },
    /// The events URL is not one this crate can post to.
    EventsUrl { url: String, message: String },
    /// Accepting connections on the adapter's HTTP listener failed.
    Serve { message: String },
    /// The inventory has libvirt nodes but nowhere to keep server files.
    LibvirtDir { inventory: PathBuf },
    /// The console proxy could not listen on its address.
    ConsoleProxy { inventory: PathBuf, listen: std::net::SocketAddr, source: std::io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::InventoryParse { path, message } => {
                write!(f, "{}: not a valid inventory: {message}", path.display())
            }
            Error::InventoryInvalid { path, entry, message } => {
                write!(f, "{}: {entry}: {message}", path.display())
            }
            Error::StateDir { path, source } => {
                write!(f, "cannot create state directory {}: {source}", path.display())
            }
            Error::Journal { context, source } => write!(f, "journal: {context}: {source}"),
            Error::JournalCorrupt { context, message } => {
                write!(f, "journal: {context}: unreadable row: {message}")
            }
            Error::EventsUrl { url, message } => write!(f, "events URL {url:?}: {message}"),
            Error::Serve { message } => write!(f, "adapter HTTP API: {message}"),
            Error::LibvirtDir { inventory } => write!(
                f,
                "{}: libvirt nodes keep server disks and console logs in a directory: set [libvirt] dir, or run the adapter with a state directory",
                inventory.display()
            ),
            Error::ConsoleProxy { inventory, listen, source } => write!(
                f,
                "{}: the console proxy of the libvirt nodes cannot listen on {listen}: {source}; free that port or set [console_proxy] listen",
                inventory.display()
            ),
        }
    }
}

// The messages above already include their cause, so `source` stays None:
// a chain printed with `{:#}` would otherwise say it twice.
impl std::error::Error for Error {}
