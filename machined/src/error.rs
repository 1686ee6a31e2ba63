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
}

impl MachinedError {
    /// An I/O error on `path` while doing `what`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| MachinedError::Io { what, path, source }
    }
}

impl From<MachinedError> for Status {
    fn from(error: MachinedError) -> Status {
        use filebrowse::FileBrowseError as F;
        use machineconfig::ConfigError as C;
        let code = match &error {
            MachinedError::Events(EventsError::Lagged { .. }) => Code::ResourceExhausted,
            MachinedError::Events(_) => Code::InvalidArgument,
            MachinedError::Service(ServiceError::NotFound { .. }) => Code::NotFound,
            MachinedError::Service(ServiceError::NotSupportedViaApi { .. }) => {
                Code::FailedPrecondition
            }
            MachinedError::Service(_) => Code::Internal,
            MachinedError::HostInfo(_) => Code::Internal,
            MachinedError::Files(F::NotFound { .. }) => Code::NotFound,
            MachinedError::Files(F::OutsideRoots { .. }) => Code::PermissionDenied,
            MachinedError::Files(F::NotRegularFile { .. } | F::InvalidArgument { .. }) => {
                Code::InvalidArgument
            }
            MachinedError::Files(F::Io { .. }) => Code::Internal,
            MachinedError::Config(C::Encode(_)) => Code::Internal,
            MachinedError::Config(_) => Code::InvalidArgument,
            MachinedError::Kubernetes(_) => Code::FailedPrecondition,
            MachinedError::Pki(_) | MachinedError::Write(_) | MachinedError::Io { .. } => {
                Code::Internal
            }
            MachinedError::Trustd { .. }
            | MachinedError::Etcd { .. }
            | MachinedError::Containerd(_) => Code::Unavailable,
            MachinedError::AlreadyExists(_) => Code::AlreadyExists,
            MachinedError::InvalidArgument(_) => Code::InvalidArgument,
            MachinedError::FailedPrecondition(_) => Code::FailedPrecondition,
            MachinedError::PermissionDenied(_) => Code::PermissionDenied,
            MachinedError::Unimplemented(_) => Code::Unimplemented,
            MachinedError::NotFound(_) => Code::NotFound,
            MachinedError::ResourceExhausted(_) => Code::ResourceExhausted,
        };
        Status::new(code, error.to_string())
    }
}
