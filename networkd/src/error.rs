//! networkd's one error type; every variant names what it failed on.

use std::path::PathBuf;

use machineconfig::ValidationIssue;

/// Why a networkd operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkdError {
    /// The network configuration does not validate; nothing was changed.
    #[error("invalid network configuration:\n{}", .0.iter().map(|i| format!("  * {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ValidationIssue>),
    /// The machine config file given with `--config` could not be used.
    #[error("machine config {path}: {message}")]
    Config { path: PathBuf, message: String },
    /// A netlink request failed.
    #[error("netlink: {op} {target}: {source}")]
    Netlink {
        op: &'static str,
        target: String,
        source: rtnetlink::Error,
    },
    /// A route could not be expressed as a netlink message.
    #[error("{route}: {message}")]
    Route { route: String, message: String },
    /// The kernel does not know the link kind (module missing or not built).
    #[error("link {link}: the kernel does not support {kind} links (or one of their settings)")]
    KindUnsupported { link: String, kind: &'static str },
    /// A link the configuration refers to does not exist (yet).
    #[error("link {0} not found (waiting for it)")]
    LinkMissing(String),
    /// A DHCP client's socket failed.
    #[error("DHCP on {link}: {step}: {source}")]
    Dhcp {
        link: String,
        step: &'static str,
        source: std::io::Error,
    },
    /// The ownership record is unreadable.
    #[error("ownership record {path}: {source}")]
    Record {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A file could not be written atomically.
    #[error(transparent)]
    Write(#[from] atomicfile::WriteError),
    /// Any other I/O step.
    #[error("{path}: {step}: {source}")]
    Io {
        path: PathBuf,
        step: &'static str,
        source: std::io::Error,
    },
    /// The serving socket failed.
    #[error("serving on {path}: {source}")]
    Serve {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    /// The engine task is gone (networkd is stopping).
    #[error("networkd is shutting down")]
    Stopped,
}
