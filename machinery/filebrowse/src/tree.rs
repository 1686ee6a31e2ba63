//! The virtual tree: real directories of the mounts, overlaid with the mount prefixes
//! themselves. Walking it never follows a symlink, so it never leaves the roots.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::Roots;
use crate::mode::{GO_MODE_DIR, go_file_mode};
use crate::virtual_path::VirtualPath;

/// One entry of the virtual tree.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) virt: VirtualPath,
    pub(crate) place: Place,
}

/// Where a [`Node`] lives.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    /// A real file; `path` has no symlinks before its last component.
    Real { path: PathBuf, mount: usize },
    /// A directory above the mounts that exists only to lead to them.
    Synthetic,
}

/// What kind of file a node is, as far as the operations care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Directory,
    Regular,
    Symlink,
    /// Devices, pipes, sockets.
    Special,
}

/// The `lstat` facts the operations report.
#[derive(Debug, Clone)]
pub(crate) struct NodeStat {
    pub(crate) kind: Kind,
    pub(crate) go_mode: u32,
    /// `st_mode & 0o7777`: permissions plus setuid, setgid and sticky.
    pub(crate) unix_mode: u32,
    pub(crate) size: u64,
    pub(crate) modified: i64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// `(st_dev, st_ino)` of files with several hard links, to count them once.
    pub(crate) hard_link: Option<(u64, u64)>,
}

/// The permission bits reported for the synthetic directories above the mounts.
const SYNTHETIC_DIR_PERMISSIONS: u32 = 0o555;

impl Node {
    /// The real path, if the node has one.
    pub(crate) fn real(&self) -> Option<&PathBuf> {
        match &self.place {
            Place::Real { path, .. } => Some(path),
            Place::Synthetic => None,
        }
    }

    /// `lstat` of the node (symlinks are not followed).
    pub(crate) fn stat(&self) -> io::Result<NodeStat> {
        match &self.place {
            Place::Real { path, .. } => fs::symlink_metadata(path).map(|m| NodeStat::of(&m)),
            Place::Synthetic => Ok(NodeStat {
                kind: Kind::Directory,
                go_mode: GO_MODE_DIR | SYNTHETIC_DIR_PERMISSIONS,
                unix_mode: SYNTHETIC_DIR_PERMISSIONS,
                size: 0,
                modified: 0,
                uid: 0,
                gid: 0,
                hard_link: None,
            }),
        }
    }
}

impl NodeStat {
    fn of(metadata: &Metadata) -> Self {
        let file_type = metadata.file_type();
        let kind = if file_type.is_dir() {
            Kind::Directory
        } else if file_type.is_file() {
            Kind::Regular
        } else if file_type.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Special
        };
        Self {
            kind,
            go_mode: go_file_mode(metadata),
            unix_mode: metadata.mode() & 0o7777,
            size: metadata.len(),
            modified: metadata.mtime(),
            uid: metadata.uid(),
            gid: metadata.gid(),
            hard_link: (kind != Kind::Directory && metadata.nlink() > 1)
                .then(|| (metadata.dev(), metadata.ino())),
        }
    }
}

impl Roots {
    /// The children of a directory node, sorted by name: its real entries, with the mounts whose
    /// prefix is a direct child taking the place of any real entry of that name, and synthetic
    /// directories leading to deeper mounts.
    pub(crate) fn children(&self, node: &Node) -> io::Result<Vec<Node>> {
        let mut children: BTreeMap<OsString, Node> = BTreeMap::new();
        if let Place::Real { path, mount } = &node.place {
            for entry in fs::read_dir(path)? {
                let name = entry?.file_name();
                children.insert(
                    name.clone(),
                    Node {
                        virt: node.virt.child(&name),
                        place: Place::Real {
                            path: path.join(&name),
                            mount: *mount,
                        },
                    },
                );
            }
        }
        for (index, mount) in self.mounts().iter().enumerate() {
            if mount.prefix.len() <= node.virt.len() || !mount.prefix.starts_with(&node.virt) {
                continue;
            }
            let name = mount.prefix.components()[node.virt.len()].clone();
            let virt = node.virt.child(&name);
            if mount.prefix.len() == virt.len() {
                let path = fs::canonicalize(&mount.real).unwrap_or_else(|_| mount.real.clone());
                let place = Place::Real { path, mount: index };
                children.insert(name, Node { virt, place });
            } else {
                children.entry(name).or_insert(Node {
                    virt,
                    place: Place::Synthetic,
                });
            }
        }
        Ok(children.into_values().collect())
    }
}
