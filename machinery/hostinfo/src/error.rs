//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Why a piece of host data could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum HostInfoError {
    /// A procfs or sysfs file (or directory) could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory that failed.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// A line of a procfs or sysfs file did not have the expected shape.
    #[error("{path}:{line}: {reason}")]
    Malformed {
        /// The file that holds the line.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What was wrong with it.
        reason: String,
    },
    /// The netstat request's `filter` is not one of ALL, CONNECTED, LISTENING.
    #[error("netstat filter {0} is unknown (expected 0 ALL, 1 CONNECTED or 2 LISTENING)")]
    UnknownNetstatFilter(i32),
    /// The netstat request asked for a network namespace other than the host's.
    #[error("netns selection is not supported: only the host network namespace can be inspected")]
    NetnsUnsupported,
}
