//! Go's `os.FileMode` bits, which `FileInfo.mode` carries instead of POSIX `st_mode`.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// `os.ModeDir`.
pub(crate) const GO_MODE_DIR: u32 = 1 << 31;
/// `os.ModeSymlink`.
const GO_MODE_SYMLINK: u32 = 1 << 27;
/// `os.ModeDevice` (block and character devices).
const GO_MODE_DEVICE: u32 = 1 << 26;
/// `os.ModeNamedPipe`.
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
/// `os.ModeSocket`.
const GO_MODE_SOCKET: u32 = 1 << 24;
/// `os.ModeSetuid`.
const GO_MODE_SETUID: u32 = 1 << 23;
/// `os.ModeSetgid`.
const GO_MODE_SETGID: u32 = 1 << 22;
/// `os.ModeCharDevice` (with `ModeDevice`).
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
/// `os.ModeSticky`.
const GO_MODE_STICKY: u32 = 1 << 20;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// The Go `os.FileMode` of an `lstat` result, as Go's `os.Lstat` computes it.
pub(crate) fn go_file_mode(metadata: &Metadata) -> u32 {
    let file_type = metadata.file_type();
    let mode = metadata.mode();
    let mut go = mode & 0o777;
    if file_type.is_dir() {
        go |= GO_MODE_DIR;
    } else if file_type.is_symlink() {
        go |= GO_MODE_SYMLINK;
    } else if file_type.is_block_device() {
        go |= GO_MODE_DEVICE;
    } else if file_type.is_char_device() {
        go |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE;
    } else if file_type.is_fifo() {
        go |= GO_MODE_NAMED_PIPE;
    } else if file_type.is_socket() {
        go |= GO_MODE_SOCKET;
    }
    if mode & S_ISUID != 0 {
        go |= GO_MODE_SETUID;
    }
    if mode & S_ISGID != 0 {
        go |= GO_MODE_SETGID;
    }
    if mode & S_ISVTX != 0 {
        go |= GO_MODE_STICKY;
    }
    go
}
