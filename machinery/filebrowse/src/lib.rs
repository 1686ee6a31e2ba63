//! List, Read, Copy and DiskUsage of the node's files for `machine.MachineService`, confined to
//! the allowed roots.
//!
//! A [`Roots`] value says which real directories a client may see and under which virtual
//! prefix: the whole file system in OS mode ([`Roots::whole_host`]), a few directories in dev
//! mode (e.g. `/proc`, `/sys`, and `/system`, `/var` from the daemon's state directory). Every
//! request path must be absolute; it is normalised lexically (a `..` may not climb above the
//! mount the path ends up in), mapped onto its mount, and resolved symlink by symlink with the
//! result required to stay inside that mount's real directory. Anything else is
//! [`FileBrowseError::OutsideRoots`]. Paths sent back (names, link targets, errors) are virtual:
//! the real directories behind the mounts never show.
//!
//! All operations are synchronous and lazy, meant to run on a blocking thread while the caller
//! streams their output: [`Roots::read`] gives a [`FileReader`] (or its chunks),
//! [`Roots::list`] and [`Roots::disk_usage`] give iterators of API messages with per-entry
//! errors inside them, and [`Roots::copy_tar_gz`] writes a `tar.gz` to any [`std::io::Write`].
//!
//! Limits:
//! - Checks and use are separate system calls: a directory swapped for a symlink between the
//!   check and the use could still be followed (the final component of `Read` and `Copy` files is
//!   opened with `O_NOFOLLOW`). The roots are meant for the node's own trusted layout.
//! - `..` is applied lexically, before symlinks: `/var/link/..` is `/var`, not the link
//!   target's parent.
//! - Walks (List, Copy, DiskUsage) follow no symlinks below the requested path and cross file
//!   system boundaries.
//! - DiskUsage reports apparent sizes (`du --apparent-size --bytes`), not allocated blocks.

mod copy;
mod disk_usage;
mod error;
mod list;
mod mode;
mod read;
mod roots;
mod tree;
mod virtual_path;

pub use copy::{CopyReport, SkippedEntry};
pub use disk_usage::{DiskUsageEntries, MAX_DISK_USAGE_PATHS};
pub use error::FileBrowseError;
pub use list::ListEntries;
pub use read::{FileChunks, FileReader, READ_CHUNK_SIZE};
pub use roots::Roots;
