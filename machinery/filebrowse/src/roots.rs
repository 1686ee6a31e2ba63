//! The allowed roots: virtual prefixes mounted on real directories, and the resolution of a
//! request path to a real path that provably stays inside its mount.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::FileBrowseError;
use crate::tree::{Node, Place};
use crate::virtual_path::VirtualPath;

/// How many symlinks one resolution may follow before it gives up (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// The directories a client may see, each under a virtual prefix.
///
/// OS mode exposes the whole file system (`[("/", "/")]`, [`Roots::whole_host`]); dev mode
/// exposes a few directories, e.g. `[("/proc", "/proc"), ("/var", "<state>/var")]`, and the
/// virtual `/` then lists the prefixes as directories. When prefixes nest, the longest wins.
#[derive(Debug, Clone)]
pub struct Roots {
    mounts: Vec<Mount>,
}

/// One virtual prefix and the real directory behind it.
#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub(crate) prefix: VirtualPath,
    pub(crate) real: PathBuf,
}

impl Roots {
    /// Builds roots from `(virtual prefix, real directory)` pairs. Prefixes must be absolute and
    /// normalised (no `.`/`..`), distinct; real directories must be absolute. The real
    /// directories need not exist yet: paths under a missing one are simply not found.
    pub fn new<V, R>(mounts: impl IntoIterator<Item = (V, R)>) -> Result<Self, FileBrowseError>
    where
        V: AsRef<str>,
        R: Into<PathBuf>,
    {
        let mut checked: Vec<Mount> = Vec::new();
        for (prefix, real) in mounts {
            let prefix = prefix.as_ref();
            let real = real.into();
            let normalised = prefix
                .starts_with('/')
                .then(|| VirtualPath::normalise(prefix))
                .flatten()
                .filter(|n| n.lowest_after_parent.is_none() && !prefix.split('/').any(|p| p == "."))
                .ok_or_else(|| {
                    FileBrowseError::invalid(format!(
                        "mount prefix {prefix:?} must be an absolute path without . or .."
                    ))
                })?;
            if !real.is_absolute() {
                return Err(FileBrowseError::invalid(format!(
                    "real directory {} of mount {prefix:?} must be absolute",
                    real.display()
                )));
            }
            if checked.iter().any(|m| m.prefix == normalised.path) {
                return Err(FileBrowseError::invalid(format!(
                    "mount prefix {prefix:?} is given twice"
                )));
            }
            checked.push(Mount {
                prefix: normalised.path,
                real,
            });
        }
        if checked.is_empty() {
            return Err(FileBrowseError::invalid("at least one mount is needed"));
        }
        Ok(Self { mounts: checked })
    }

    /// The whole host file system under `/` (OS mode).
    pub fn whole_host() -> Self {
        Self {
            mounts: vec![Mount {
                prefix: VirtualPath::default(),
                real: PathBuf::from("/"),
            }],
        }
    }

    pub(crate) fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// Resolves a request path to a node of the virtual tree. The path must be absolute; it is
    /// normalised lexically, mapped onto the longest matching mount, and every symlink on the way
    /// is followed while checking that the result stays inside that mount's real directory.
    pub(crate) fn resolve(&self, path: &str) -> Result<Node, FileBrowseError> {
        let outside = || FileBrowseError::OutsideRoots {
            path: path.to_owned(),
        };
        if !path.starts_with('/') {
            return Err(FileBrowseError::invalid(format!(
                "path {path:?} is not absolute"
            )));
        }
        if path.contains('\0') {
            return Err(FileBrowseError::invalid(format!(
                "path {path:?} contains a NUL byte"
            )));
        }
        let normalised = VirtualPath::normalise(path).ok_or_else(outside)?;
        let virt = normalised.path;
        let Some((index, mount)) = self.mount_of(&virt) else {
            // Above every mount: a directory that exists only to lead to the mounts.
            if self
                .mounts
                .iter()
                .any(|m| m.prefix.starts_with(&virt) && m.prefix.len() > virt.len())
            {
                return Ok(Node {
                    virt,
                    place: Place::Synthetic,
                });
            }
            return Err(outside());
        };
        if normalised
            .lowest_after_parent
            .is_some_and(|lowest| lowest < mount.prefix.len())
        {
            return Err(outside());
        }
        let display = virt.to_string();
        let root = fs::canonicalize(&mount.real)
            .map_err(|source| FileBrowseError::from_io(display.clone(), source))?;
        let rest = virt.components()[mount.prefix.len()..].iter().cloned();
        let real = match resolve_within(&root, rest) {
            Ok(real) => real,
            Err(Resolution::Escapes) => return Err(outside()),
            Err(Resolution::Failed(source)) => {
                return Err(FileBrowseError::from_io(display, source));
            }
        };
        Ok(Node {
            virt,
            place: Place::Real {
                path: real,
                mount: index,
            },
        })
    }

    /// The mount with the longest prefix that `virt` lies in.
    fn mount_of(&self, virt: &VirtualPath) -> Option<(usize, &Mount)> {
        self.mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| virt.starts_with(&m.prefix))
            .max_by_key(|(_, m)| m.prefix.len())
    }

    /// A symlink target as the client should see it: absolute targets inside a mount's real
    /// directory are rewritten to the mount's virtual prefix, so the real layout never leaks.
    pub(crate) fn virtualise_link(&self, target: &Path) -> String {
        if target.is_absolute() {
            let best = self
                .mounts
                .iter()
                .filter_map(|m| target.strip_prefix(&m.real).ok().map(|rest| (m, rest)))
                .max_by_key(|(m, _)| m.real.components().count());
            if let Some((mount, rest)) = best {
                let mut virt = mount.prefix.clone();
                for component in rest.components() {
                    virt = virt.child(component.as_os_str());
                }
                return virt.to_string();
            }
        }
        target.to_string_lossy().into_owned()
    }
}

/// Why [`resolve_within`] gave no path.
enum Resolution {
    /// The path, or a symlink on it, leads out of the mount.
    Escapes,
    /// A component is missing or unreadable (inside the mount).
    Failed(io::Error),
}

/// Walks `rest` from the canonical directory `root`, following symlinks like the kernel would,
/// and returns the real path if it ends inside `root`.
fn resolve_within(
    root: &Path,
    rest: impl Iterator<Item = OsString>,
) -> Result<PathBuf, Resolution> {
    let mut pending: VecDeque<OsString> = rest.collect();
    let mut current = root.to_path_buf();
    let mut followed = 0;
    while let Some(component) = pending.pop_front() {
        if component == "." || component.is_empty() {
            continue;
        }
        if component == ".." {
            current.pop();
            continue;
        }
        let next = current.join(&component);
        let metadata = match fs::symlink_metadata(&next) {
            Ok(metadata) => metadata,
            // Failing outside the mount means the path left it: say so rather than leak
            // whether something exists out there.
            Err(_) if !next.starts_with(root) => return Err(Resolution::Escapes),
            Err(error) => return Err(Resolution::Failed(error)),
        };
        if !metadata.file_type().is_symlink() {
            current = next;
            continue;
        }
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err(Resolution::Failed(io::Error::other(
                "too many levels of symbolic links",
            )));
        }
        let target = fs::read_link(&next).map_err(Resolution::Failed)?;
        let mut spliced: VecDeque<OsString> = VecDeque::new();
        for part in target.components() {
            match part {
                Component::RootDir | Component::Prefix(_) => current = PathBuf::from("/"),
                other => spliced.push_back(other.as_os_str().to_owned()),
            }
        }
        spliced.extend(pending);
        pending = spliced;
    }
    if current.starts_with(root) {
        Ok(current)
    } else {
        Err(Resolution::Escapes)
    }
}
