//! The crate's error type and its one mapping to gRPC status codes.

use std::path::PathBuf;

use tonic::{Code, Status};

use crate::events::EventsError;
use crate::services::ServiceError;

/// Everything machined can fail at; each variant names what it failed on.
#[derive(Debug, thiserror::Error)]
pub enum MachinedError {
    #[error(transparent)]
    Events(#[from] EventsError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    HostInfo(#[from] hostinfo::HostInfoError),
    #[error(transparent)]
    Files(#[from] filebrowse::FileBrowseError),
    #[error(transparent)]
    Config(#[from] machineconfig::ConfigError),
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Write(#[from] atomicfile::WriteError),
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::KubernetesError),
    #[error(transparent)]
    Snapshot(#[from] etcdsnapshot::SnapshotError),
    #[error(transparent)]
    BootDisk(#[from] bootdisk::BootDiskError),
    #[error(transparent)]
    Dhcp(#[from] dhcp::DhcpError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("etcd at {endpoint}: {reason}")]
    Etcd { endpoint: String, reason: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error("containerd: {0}")]
    Containerd(String),
    #[error("trustd at {endpoint}: {reason}")]
    Trustd { endpoint: String, reason: String },
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Internal(String),
    /// The containerd CRI configuration could not be made from the config (`what`: the part or
    /// registry).
    #[error("CRI configuration, {what}: {reason}")]
    CriConfig { what: String, reason: String },
    /// What a cloud provider's metadata service answered (or did not).
    #[error("{platform}: {problem}")]
    Platform {
        platform: &'static str,
        problem: String,
    },
}

impl MachinedError {
    /// An I/O error on `path` while doing `what`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| MachinedError::Io { what, path, source }
    }
}

impl From<MachinedError> for Status {
    /// The one mapping of errors to what a client sees. Errors about the node's own inner
    /// workings (files under the state directory, sockets, certificates, containerd) reach the
    /// client as a generic message, with the detail in machined's log: a client learns what
    /// failed, never where machined keeps things.
    fn from(error: MachinedError) -> Status {
        use etcdsnapshot::SnapshotError as S;
        use filebrowse::FileBrowseError as F;
        use machineconfig::ConfigError as C;
        let (code, generic) = match &error {
            MachinedError::Events(EventsError::Lagged { .. }) => (Code::ResourceExhausted, None),
            MachinedError::Events(_) => (Code::InvalidArgument, None),
            MachinedError::Service(ServiceError::NotFound { .. }) => (Code::NotFound, None),
            MachinedError::Service(ServiceError::NotSupportedViaApi { .. }) => {
                (Code::FailedPrecondition, None)
            }
            MachinedError::Service(_) => (
                Code::Internal,
                Some("the service operation failed".to_string()),
            ),
            MachinedError::HostInfo(_) => {
                (Code::Internal, Some("reading host data failed".to_string()))
            }
            MachinedError::Files(F::NotFound { .. }) => (Code::NotFound, None),
            MachinedError::Files(F::OutsideRoots { .. }) => (Code::PermissionDenied, None),
            MachinedError::Files(F::NotRegularFile { .. } | F::InvalidArgument { .. }) => {
                (Code::InvalidArgument, None)
            }
            // File errors name the client's own (virtual) path only.
            MachinedError::Files(F::Io { .. }) => (Code::Internal, None),
            MachinedError::Config(C::Encode(_)) => (
                Code::Internal,
                Some("encoding the config failed".to_string()),
            ),
            MachinedError::Config(_) => (Code::InvalidArgument, None),
            MachinedError::Kubernetes(_) => (Code::FailedPrecondition, None),
            // These name the file where the node keeps the snapshot; the client hears the reason.
            MachinedError::Snapshot(S::NotSnapshot { reason, .. }) => (
                Code::InvalidArgument,
                Some(format!(
                    "the uploaded file is not an etcd snapshot: {reason}"
                )),
            ),
            MachinedError::Snapshot(S::MissingHash { .. }) => (
                Code::InvalidArgument,
                Some(
                    "the snapshot has no integrity hash (a copy of a data directory's db file \
                     needs the hash check skipped)"
                        .to_string(),
                ),
            ),
            MachinedError::Snapshot(S::HashMismatch { .. }) => (
                Code::InvalidArgument,
                Some("the snapshot is damaged: its sha256 does not match its hash".to_string()),
            ),
            MachinedError::Snapshot(S::Io { .. }) => (
                Code::Internal,
                Some("reading the uploaded snapshot failed".to_string()),
            ),
            MachinedError::BootDisk(bootdisk::BootDiskError::DiskTooSmall { .. }) => {
                (Code::FailedPrecondition, None)
            }
            // GRUB's files in the root filesystem are wrong: the image is broken.
            MachinedError::BootDisk(_) => (
                Code::Internal,
                Some("the image's GRUB files cannot be installed".to_string()),
            ),
            MachinedError::Pki(_) => (
                Code::Internal,
                Some("a certificate operation failed".to_string()),
            ),
            // The system's reason (no space left, read-only file system) helps; the path not.
            MachinedError::Write(atomicfile::WriteError::Io { source, .. }) => (
                Code::Internal,
                Some(format!("writing the node's state failed: {source}")),
            ),
            MachinedError::Write(_) => (
                Code::Internal,
                Some("writing the node's state failed".to_string()),
            ),
            MachinedError::Dhcp(_) => (
                Code::Internal,
                Some("a network operation on the node failed".to_string()),
            ),
            MachinedError::Io { .. } => (
                Code::Internal,
                Some("an I/O operation on the node failed".to_string()),
            ),
            MachinedError::Trustd { .. } | MachinedError::Etcd { .. } => (Code::Unavailable, None),
            MachinedError::Containerd(_) => (
                Code::Unavailable,
                Some("containerd is unavailable".to_string()),
            ),
            MachinedError::AlreadyExists(_) => (Code::AlreadyExists, None),
            MachinedError::InvalidArgument(_) => (Code::InvalidArgument, None),
            MachinedError::FailedPrecondition(_) => (Code::FailedPrecondition, None),
            MachinedError::PermissionDenied(_) => (Code::PermissionDenied, None),
            MachinedError::Unimplemented(_) => (Code::Unimplemented, None),
            MachinedError::NotFound(_) => (Code::NotFound, None),
            MachinedError::ResourceExhausted(_) => (Code::ResourceExhausted, None),
            MachinedError::DeadlineExceeded(_) => (Code::DeadlineExceeded, None),
            MachinedError::Internal(_) | MachinedError::CriConfig { .. } => (Code::Internal, None),
            MachinedError::Platform { .. } => (Code::Unavailable, None),
        };
        match generic {
            Some(message) => {
                tracing::error!(error = %error, "{message}");
                Status::new(
                    code,
                    format!("{message} (the node's machined log has the details)"),
                )
            }
            None => Status::new(code, error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_paths_stay_in_the_log() {
        let error = MachinedError::io("writing", "/var/lib/talos-rs/system/state/config.yaml")(
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        let status = Status::from(error);
        assert_eq!(status.code(), Code::Internal);
        assert!(
            !status.message().contains("/var/lib"),
            "{}",
            status.message()
        );
        let status = Status::from(MachinedError::Containerd(
            "dialing /system/run/containerd/containerd.sock: refused".into(),
        ));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains(".sock"), "{}", status.message());
    }

    #[test]
    fn a_refused_snapshot_says_why_but_not_where_it_is_kept() {
        use etcdsnapshot::SnapshotError;
        let path = std::path::PathBuf::from("/var/lib/etcd.snapshot");
        let refusals = [
            (
                SnapshotError::NotSnapshot {
                    path: path.clone(),
                    reason: "no valid bbolt meta page".into(),
                },
                "no valid bbolt meta page",
            ),
            (
                SnapshotError::MissingHash { path: path.clone() },
                "no integrity hash",
            ),
            (SnapshotError::HashMismatch { path }, "damaged"),
        ];
        for (error, reason) in refusals {
            let status = Status::from(MachinedError::Snapshot(error));
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().contains(reason), "{}", status.message());
            assert!(
                !status.message().contains("/var/lib"),
                "{}",
                status.message()
            );
        }
    }
}
