//! The one error type of this crate.

use std::io;

/// Why a file operation was refused or failed. Every path is the client's (virtual) path, never
/// the real directory behind a mount.
#[derive(Debug, thiserror::Error)]
pub enum FileBrowseError {
    /// The path does not exist (or a component of it is not a directory).
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The requested path.
        path: String,
    },
    /// The path lies outside every allowed root: no mount covers it, a `..` climbs above its
    /// mount, or a symlink on the way leads out of the mount.
    #[error("{path}: outside the allowed roots")]
    OutsideRoots {
        /// The requested path.
        path: String,
    },
    /// `Read` was asked for a directory, device, pipe or socket.
    #[error("{path}: not a regular file")]
    NotRegularFile {
        /// The requested path.
        path: String,
    },
    /// The request itself is malformed (a relative path, an unknown enum value, a bad mount).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What was wrong, naming the offending value.
        reason: String,
    },
    /// Any other I/O failure, including writing the archive of `Copy` to its sink.
    #[error("{path}: {source}")]
    Io {
        /// The path being worked on.
        path: String,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

impl FileBrowseError {
    /// The (virtual) path the error is about, if it is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::NotFound { path }
            | Self::OutsideRoots { path }
            | Self::NotRegularFile { path }
            | Self::Io { path, .. } => Some(path),
            Self::InvalidArgument { .. } => None,
        }
    }

    /// Classifies an I/O error met while working on `path`.
    pub(crate) fn from_io(path: impl Into<String>, source: io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Self::NotFound { path },
            _ => Self::Io { path, source },
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            reason: reason.into(),
        }
    }
}
