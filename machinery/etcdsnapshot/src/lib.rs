//! etcd snapshot files, as `etcdctl snapshot save` and the maintenance API's `Snapshot` write
//! them: etcd's bbolt database, followed by the sha256 of the database when it comes from the
//! API (a copy of a data directory's `member/snap/db` has no such trailer).
//!
//! - [`check_integrity`] verifies the trailer the way `etcdctl snapshot restore` does: a file
//!   whose length is 32 bytes more than a multiple of 512 carries one.
//! - [`status`] reads the database without etcd and reports what `etcdctl snapshot status`
//!   reports: a CRC-32C over every bucket name, key and value, the newest revision, the number
//!   of keys and the database size.
//!
//! Both treat the file as hostile: every offset is checked, pages are read on demand (a file
//! may be gigabytes), each page is visited at most once and the tree depth is bounded, so a
//! crafted file ends in an error, never a panic or an endless walk. Limits: only little-endian
//! databases (what etcd writes on every platform talos-rs runs on); the free list is not checked.

mod bolt;
mod crc32c;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use bolt::status;

/// Length of the sha256 trailer.
const HASH_LEN: u64 = 32;

/// What a snapshot file holds, as `etcdctl snapshot status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// CRC-32C (Castagnoli) over every bucket's name, keys and values, in order.
    pub hash: u32,
    /// The main revision of the newest key revision.
    pub revision: i64,
    /// Keys in all buckets.
    pub total_keys: u64,
    /// Size of the database (pages in use × page size).
    pub total_size: u64,
}

/// Why a file is not a usable snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an etcd snapshot: {reason}")]
    NotSnapshot { path: PathBuf, reason: String },
    #[error(
        "{path} has no integrity hash (a copy of a data directory's db file? then skip the hash check)"
    )]
    MissingHash { path: PathBuf },
    #[error("{path} is damaged: its sha256 does not match the hash it carries")]
    HashMismatch { path: PathBuf },
}

impl SnapshotError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
        move |source| SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Checks the sha256 trailer of the snapshot at `path`, as `etcdctl snapshot restore` does; with
/// `skip_hash_check` nothing is checked (the restore ignores a trailer then).
pub fn check_integrity(path: &Path, skip_hash_check: bool) -> Result<(), SnapshotError> {
    if skip_hash_check {
        return Ok(());
    }
    let mut file = File::open(path).map_err(SnapshotError::io(path))?;
    let len = file.metadata().map_err(SnapshotError::io(path))?.len();
    if len % 512 != HASH_LEN {
        return Err(SnapshotError::MissingHash {
            path: path.to_path_buf(),
        });
    }
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut remaining = len - HASH_LEN;
    let mut buffer = vec![0u8; 1 << 20];
    while remaining > 0 {
        let want = usize::try_from(remaining.min(buffer.len() as u64)).unwrap_or(buffer.len());
        let chunk = &mut buffer[..want];
        file.read_exact(chunk).map_err(SnapshotError::io(path))?;
        context.update(chunk);
        remaining -= want as u64;
    }
    let mut trailer = [0u8; HASH_LEN as usize];
    file.read_exact(&mut trailer)
        .map_err(SnapshotError::io(path))?;
    if context.finish().as_ref() != trailer {
        return Err(SnapshotError::HashMismatch {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}
