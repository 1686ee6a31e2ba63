//! Atomic, durable file writes.
//!
//! A file is written to a temporary sibling, flushed to disk, given its mode, and then moved into
//! place with one `rename(2)` (or `link(2)` when overwriting is refused, which fails instead of
//! replacing), after which the directory itself is flushed. A reader therefore sees either the
//! old file or the complete new one, never a torn write, and a crash leaves at most a stray
//! `.<name>.tmp-*` file behind.
//!
//! Limits: the target's directory must exist and be on a file system that supports `rename` and
//! hard links (every Linux file system talos-rs uses does).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What to do when the target already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace the existing file atomically.
    Allow,
    /// Fail with [`WriteError::Exists`] and leave the existing file untouched.
    Refuse,
}

/// Why a write failed; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The target exists and overwriting was refused.
    #[error("{0} already exists (use --force to overwrite)")]
    Exists(PathBuf),
    /// The target has no file name (e.g. `/` or `..`).
    #[error("{0} is not a file path")]
    NotAFile(PathBuf),
    /// An I/O step failed.
    #[error("writing {path}: {step}: {source}")]
    Io {
        path: PathBuf,
        step: &'static str,
        source: std::io::Error,
    },
}

/// Writes `contents` to `path` atomically with permission bits `mode` (e.g. `0o600`).
pub fn write(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<(), WriteError> {
    let io = |step| {
        move |source| WriteError::Io {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let name = path
        .file_name()
        .ok_or_else(|| WriteError::NotAFile(path.to_path_buf()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if overwrite == Overwrite::Refuse && path.symlink_metadata().is_ok() {
        return Err(WriteError::Exists(path.to_path_buf()));
    }

    let temp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_temp(&temp, contents, mode).map_err(io("writing temporary file"));
    let result = result.and_then(|()| match overwrite {
        Overwrite::Allow => fs::rename(&temp, path).map_err(io("renaming into place")),
        Overwrite::Refuse => fs::hard_link(&temp, path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                WriteError::Exists(path.to_path_buf())
            } else {
                io("linking into place")(e)
            }
        }),
    });
    // After a rename the temporary name is gone; after a link (or a failure) it must go.
    if overwrite == Overwrite::Refuse || result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing directory"))
}

fn write_temp(temp: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(temp)?;
    // The umask may have narrowed the mode given to open(2): set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_with_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        write(&path, b"one", 0o600, Overwrite::Refuse).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_to_overwrite_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("talosconfig");
        write(&path, b"old", 0o644, Overwrite::Refuse).unwrap();
        let err = write(&path, b"new", 0o644, Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, WriteError::Exists(_)), "{err}");
        assert!(err.to_string().contains("already exists"));
        assert_eq!(fs::read(&path).unwrap(), b"old");
        write(&path, b"new", 0o640, Overwrite::Allow).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failure_names_the_file_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("file");
        let err = write(&path, b"x", 0o600, Overwrite::Allow).unwrap_err();
        assert!(err.to_string().contains("missing-dir/file"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
