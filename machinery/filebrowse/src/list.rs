//! `List`: the entries under a directory, as `FileInfo` messages.

use std::io;

use nix::errno::Errno;
use proto::machine::list_request::Type;
use proto::machine::{FileInfo, ListRequest, Xattr};

use crate::tree::{Kind, Node, NodeStat};
use crate::virtual_path::VirtualPath;
use crate::{FileBrowseError, Roots};

/// The entries of one `List` request, produced lazily in depth-first order, each directory's
/// children sorted by name.
#[derive(Debug)]
pub struct ListEntries {
    roots: Roots,
    root: VirtualPath,
    max_depth: usize,
    /// Kinds to report; empty means all.
    types: Vec<Kind>,
    report_xattrs: bool,
    pending: Vec<Pending>,
}

/// Work left to do, popped from the end.
#[derive(Debug)]
enum Pending {
    Visit { node: Node, depth: usize },
    Report(FileInfo),
}

impl Roots {
    /// Lists `request.root` (default `/`): the root itself (relative name `.`) and, without
    /// `recurse`, its direct children; with `recurse`, everything down to `recursion_depth`
    /// levels (0 or less: no limit). `types` keeps only regular files, directories or symlinks
    /// (directories are still descended into). Errors on single entries are reported in
    /// `FileInfo.error` and the listing goes on. Symlinks are reported, never followed.
    pub fn list(&self, request: &ListRequest) -> Result<ListEntries, FileBrowseError> {
        let types = request
            .types
            .iter()
            .map(|&value| match Type::try_from(value) {
                Ok(Type::Regular) => Ok(Kind::Regular),
                Ok(Type::Directory) => Ok(Kind::Directory),
                Ok(Type::Symlink) => Ok(Kind::Symlink),
                Err(_) => Err(FileBrowseError::invalid(format!(
                    "list type {value} is unknown (expected 0 REGULAR, 1 DIRECTORY or 2 SYMLINK)"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let root_path = if request.root.is_empty() {
            "/"
        } else {
            request.root.as_str()
        };
        let root = self.resolve(root_path)?;
        let max_depth = match (request.recurse, usize::try_from(request.recursion_depth)) {
            (false, _) => 1,
            (true, Ok(depth)) if depth > 0 => depth,
            (true, _) => usize::MAX,
        };
        Ok(ListEntries {
            roots: self.clone(),
            root: root.virt.clone(),
            max_depth,
            types,
            report_xattrs: request.report_xattrs,
            pending: vec![Pending::Visit {
                node: root,
                depth: 0,
            }],
        })
    }
}

impl Iterator for ListEntries {
    type Item = FileInfo;

    fn next(&mut self) -> Option<FileInfo> {
        while let Some(pending) = self.pending.pop() {
            let (node, depth) = match pending {
                Pending::Report(info) => return Some(info),
                Pending::Visit { node, depth } => (node, depth),
            };
            let stat = match node.stat() {
                Ok(stat) => stat,
                Err(error) => return Some(self.error_entry(&node, &error)),
            };
            if stat.kind == Kind::Directory && depth < self.max_depth {
                match self.roots.children(&node) {
                    Ok(children) => {
                        self.pending
                            .extend(children.into_iter().rev().map(|node| Pending::Visit {
                                node,
                                depth: depth + 1,
                            }))
                    }
                    Err(error) => {
                        let report = self.error_entry(&node, &error);
                        self.pending.push(Pending::Report(report));
                    }
                }
            }
            if self.types.is_empty() || self.types.contains(&stat.kind) {
                return Some(self.file_info(&node, &stat));
            }
        }
        None
    }
}

impl ListEntries {
    fn file_info(&self, node: &Node, stat: &NodeStat) -> FileInfo {
        let mut info = FileInfo {
            name: node.virt.to_string(),
            relative_name: node.virt.relative_to(&self.root),
            size: i64::try_from(stat.size).unwrap_or(i64::MAX),
            mode: stat.go_mode,
            modified: stat.modified,
            is_dir: stat.kind == Kind::Directory,
            uid: stat.uid,
            gid: stat.gid,
            ..FileInfo::default()
        };
        let Some(real) = node.real() else {
            return info;
        };
        if stat.kind == Kind::Symlink {
            match std::fs::read_link(real) {
                Ok(target) => info.link = self.roots.virtualise_link(&target),
                Err(error) => info.error = error.to_string(),
            }
        }
        if self.report_xattrs {
            match read_xattrs(real) {
                Ok(xattrs) => info.xattrs = xattrs,
                Err(error) => info.error = format!("reading extended attributes: {error}"),
            }
        }
        info
    }

    fn error_entry(&self, node: &Node, error: &io::Error) -> FileInfo {
        FileInfo {
            name: node.virt.to_string(),
            relative_name: node.virt.relative_to(&self.root),
            error: error.to_string(),
            ..FileInfo::default()
        }
    }
}

/// The extended attributes of a file itself (not of a symlink's target); none where the file
/// system does not support them.
fn read_xattrs(path: &std::path::Path) -> io::Result<Vec<Xattr>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(error) if error.raw_os_error() == Some(Errno::EOPNOTSUPP as i32) => {
            return Ok(Vec::new());
        }
        Err(error) => return Err(error),
    };
    let mut xattrs = Vec::new();
    for name in names {
        // An attribute removed since the listing is skipped.
        if let Some(data) = xattr::get(path, &name)? {
            xattrs.push(Xattr {
                name: name.to_string_lossy().into_owned(),
                data,
            });
        }
    }
    Ok(xattrs)
}
