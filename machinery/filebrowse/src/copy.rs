//! `Copy`: a gzip-compressed tar of a file or directory tree, streamed to a writer.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use flate2::Compression;
use flate2::write::GzEncoder;
use nix::fcntl::OFlag;
use tar::{EntryType, Header};

use crate::tree::{Kind, Node, NodeStat};
use crate::{FileBrowseError, Roots};

/// What [`Roots::copy_tar_gz`] could not put into the archive, and why.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// Entries left out (or, for read errors mid-file, zero-filled), in archive order.
    pub skipped: Vec<SkippedEntry>,
}

/// One entry [`Roots::copy_tar_gz`] could not archive faithfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The virtual path of the entry.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

impl Roots {
    /// Writes a gzip-compressed tar of `path` to `writer`, entry by entry (nothing is buffered
    /// beyond the compressor's window). Names are relative to the parent of `path`, as `tar -C
    /// parent -c name` would store them (for `/`, the entries under it without a prefix).
    /// Directories, regular files and symlinks (as symlinks) are stored with their mode, owner
    /// and modification time; devices, pipes and sockets are left out. Entries that cannot be
    /// read are left out and listed in the returned report; only a failure to write stops the
    /// copy. File sizes are taken from `stat` at the time each file is opened: a file that grows
    /// meanwhile is cut there, one that shrinks is padded with zeros, and procfs files (size 0)
    /// are stored empty — use `Read` for those.
    pub fn copy_tar_gz<W: Write>(
        &self,
        path: &str,
        writer: W,
    ) -> Result<CopyReport, FileBrowseError> {
        let root = self.resolve(path)?;
        let root_display = root.virt.to_string();
        let write_error = |source| FileBrowseError::Io {
            path: root_display.clone(),
            source,
        };
        let base: Option<OsString> = root.virt.file_name().map(ToOwned::to_owned);
        let mut report = CopyReport::default();
        let mut builder = tar::Builder::new(GzEncoder::new(writer, Compression::default()));
        let mut pending = vec![root.clone()];
        while let Some(node) = pending.pop() {
            let name: PathBuf = base
                .iter()
                .chain(&node.virt.components()[root.virt.len()..])
                .collect();
            let stat = match node.stat() {
                Ok(stat) => stat,
                Err(error) => {
                    report.skip(&node, error);
                    continue;
                }
            };
            match stat.kind {
                Kind::Directory => {
                    match self.children(&node) {
                        Ok(children) => pending.extend(children.into_iter().rev()),
                        Err(error) => report.skip(&node, error),
                    }
                    // The root of a copy of `/` has no name of its own.
                    if !name.as_os_str().is_empty() {
                        let mut header = header_for(&stat, EntryType::Directory, 0);
                        // `tar` stores directory names with a trailing slash.
                        let mut name = name.into_os_string();
                        name.push("/");
                        builder
                            .append_data(&mut header, &name, io::empty())
                            .map_err(write_error)?;
                    }
                }
                Kind::Regular => {
                    let Some(real) = node.real() else { continue };
                    let opened = OpenOptions::new()
                        .read(true)
                        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
                        .open(real)
                        .and_then(|file| file.metadata().map(|metadata| (file, metadata)));
                    let (file, metadata) = match opened {
                        Ok((file, metadata)) if metadata.is_file() => (file, metadata),
                        Ok(_) => continue,
                        Err(error) => {
                            report.skip(&node, error);
                            continue;
                        }
                    };
                    let mut header = header_for(&stat, EntryType::Regular, metadata.len());
                    let mut content = ExactSize::new(file, metadata.len());
                    builder
                        .append_data(&mut header, &name, &mut content)
                        .map_err(write_error)?;
                    if let Some(error) = content.failure {
                        report.skip(&node, error);
                    }
                }
                Kind::Symlink => {
                    let Some(real) = node.real() else { continue };
                    let target = match std::fs::read_link(real) {
                        Ok(target) => self.virtualise_link(&target),
                        Err(error) => {
                            report.skip(&node, error);
                            continue;
                        }
                    };
                    let mut header = header_for(&stat, EntryType::Symlink, 0);
                    builder
                        .append_link(&mut header, &name, &target)
                        .map_err(write_error)?;
                }
                Kind::Special => {}
            }
        }
        builder
            .into_inner()
            .and_then(GzEncoder::finish)
            .and_then(|mut writer| writer.flush())
            .map_err(write_error)?;
        Ok(report)
    }
}

impl CopyReport {
    fn skip(&mut self, node: &Node, error: io::Error) {
        self.skipped.push(SkippedEntry {
            path: node.virt.to_string(),
            reason: error.to_string(),
        });
    }
}

/// A GNU tar header with the entry's type, size, mode, owner and modification time.
fn header_for(stat: &NodeStat, entry_type: EntryType, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_size(size);
    header.set_mode(stat.unix_mode);
    header.set_uid(u64::from(stat.uid));
    header.set_gid(u64::from(stat.gid));
    header.set_mtime(u64::try_from(stat.modified).unwrap_or(0));
    header
}

/// Reads exactly `remaining` bytes from a file: its content up to that size, then zeros if it
/// ended early or failed (the failure is kept for the report). A tar entry's size is fixed in
/// its header, so the data must match it whatever happens to the file meanwhile.
struct ExactSize {
    file: Option<File>,
    remaining: u64,
    failure: Option<io::Error>,
}

impl ExactSize {
    fn new(file: File, size: u64) -> Self {
        Self {
            file: Some(file),
            remaining: size,
            failure: None,
        }
    }
}

impl Read for ExactSize {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wanted = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if wanted == 0 {
            return Ok(0);
        }
        let buf = &mut buf[..wanted];
        let filled = loop {
            let Some(file) = self.file.as_mut() else {
                buf.fill(0);
                break wanted;
            };
            match file.read(buf) {
                Ok(0) => self.file = None,
                Ok(filled) => break filled,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.failure = Some(error);
                    self.file = None;
                }
            }
        };
        self.remaining -= filled as u64;
        Ok(filled)
    }
}
