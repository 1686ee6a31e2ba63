//! `DiskUsage`: `du` over one or more paths, as `DiskUsageInfo` messages.

use std::collections::{HashSet, VecDeque};
use std::io;

use proto::machine::{DiskUsageInfo, DiskUsageRequest};

use crate::tree::{Kind, Node};
use crate::virtual_path::VirtualPath;
use crate::{FileBrowseError, Roots};

/// The most paths one `DiskUsage` request may name.
pub const MAX_DISK_USAGE_PATHS: usize = 64;

/// Asked before each entry of a walk: whether to stop (the client went away).
struct StopCheck(Box<dyn Fn() -> bool + Send>);

impl std::fmt::Debug for StopCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopCheck")
    }
}

/// The entries of one `DiskUsage` request, produced lazily: per requested path, every directory
/// after its contents (post-order, like `du`), the requested path itself last.
#[derive(Debug)]
pub struct DiskUsageEntries {
    roots: Roots,
    /// Requested paths not started yet; a missing one becomes an error entry.
    paths: VecDeque<Result<Node, FileBrowseError>>,
    max_depth: usize,
    all: bool,
    threshold: i64,
    /// The requested path being walked.
    root: VirtualPath,
    /// Directories being summed, innermost last.
    frames: Vec<Frame>,
    /// `(st_dev, st_ino)` of multiply linked files already counted.
    counted: HashSet<(u64, u64)>,
    ready: VecDeque<DiskUsageInfo>,
    stop: Option<StopCheck>,
}

/// A directory whose size is being summed.
#[derive(Debug)]
struct Frame {
    node: Node,
    depth: usize,
    total: u64,
    children: std::vec::IntoIter<Node>,
}

impl Roots {
    /// Sums the apparent sizes (`st_size`, as `du --apparent-size --bytes`) of everything under
    /// each of `request.paths`: files, symlinks and directories themselves, each multiply linked
    /// file once. Reports each path and its directories down to `recursion_depth` levels (0 or
    /// less: no limit), files too with `all`; a positive `threshold` leaves out entries smaller
    /// than it, a negative one entries larger than its absolute value. A path outside the roots
    /// or not absolute fails the whole request; a missing path or unreadable entry is reported in
    /// `DiskUsageInfo.error` and the rest goes on. A path named twice is walked once; more than
    /// [`MAX_DISK_USAGE_PATHS`] paths are refused.
    pub fn disk_usage(
        &self,
        request: &DiskUsageRequest,
    ) -> Result<DiskUsageEntries, FileBrowseError> {
        if request.paths.len() > MAX_DISK_USAGE_PATHS {
            return Err(FileBrowseError::invalid(format!(
                "disk usage of {} paths asked; at most {MAX_DISK_USAGE_PATHS} per request",
                request.paths.len()
            )));
        }
        let mut paths = VecDeque::new();
        let mut seen = HashSet::new();
        for path in &request.paths {
            match self.resolve(path) {
                Ok(node) if !seen.insert(node.virt.clone()) => {}
                Ok(node) => paths.push_back(Ok(node)),
                Err(error @ FileBrowseError::NotFound { .. }) => paths.push_back(Err(error)),
                Err(error) => return Err(error),
            }
        }
        Ok(DiskUsageEntries {
            roots: self.clone(),
            paths,
            max_depth: usize::try_from(request.recursion_depth)
                .ok()
                .filter(|&depth| depth > 0)
                .unwrap_or(usize::MAX),
            all: request.all,
            threshold: request.threshold,
            root: VirtualPath::default(),
            frames: Vec::new(),
            counted: HashSet::new(),
            ready: VecDeque::new(),
            stop: None,
        })
    }
}

impl DiskUsageEntries {
    /// Ends the walk as soon as `stop` says so: it is asked before every entry, so a walk of a
    /// large tree that reports little (a depth limit, a threshold) still notices a client that
    /// went away.
    pub fn stop_when(mut self, stop: impl Fn() -> bool + Send + 'static) -> Self {
        self.stop = Some(StopCheck(Box::new(stop)));
        self
    }
}

impl Iterator for DiskUsageEntries {
    type Item = DiskUsageInfo;

    fn next(&mut self) -> Option<DiskUsageInfo> {
        loop {
            if let Some(info) = self.ready.pop_front() {
                return Some(info);
            }
            if self.stop.as_ref().is_some_and(|stop| (stop.0)()) {
                self.frames.clear();
                self.paths.clear();
                return None;
            }
            let Some(frame) = self.frames.last_mut() else {
                match self.paths.pop_front()? {
                    Ok(node) => {
                        self.root = node.virt.clone();
                        self.visit(node, 0);
                    }
                    Err(error) => self.ready.push_back(DiskUsageInfo {
                        name: error.path().unwrap_or_default().to_owned(),
                        error: error.to_string(),
                        ..DiskUsageInfo::default()
                    }),
                }
                continue;
            };
            let depth = frame.depth;
            if let Some(child) = frame.children.next() {
                self.visit(child, depth + 1);
                continue;
            }
            let Some(done) = self.frames.pop() else {
                continue;
            };
            if let Some(parent) = self.frames.last_mut() {
                parent.total += done.total;
            }
            self.report(&done.node, done.depth, done.total);
        }
    }
}

impl DiskUsageEntries {
    /// Counts one entry: a directory opens a frame, anything else adds to the enclosing one.
    fn visit(&mut self, node: Node, depth: usize) {
        let stat = match node.stat() {
            Ok(stat) => stat,
            Err(error) => {
                self.report_error(&node, &error);
                return;
            }
        };
        let own = match stat.hard_link {
            Some(inode) if !self.counted.insert(inode) => 0,
            _ => stat.size,
        };
        if stat.kind == Kind::Directory {
            let children = self.roots.children(&node).unwrap_or_else(|error| {
                self.report_error(&node, &error);
                Vec::new()
            });
            self.frames.push(Frame {
                node,
                depth,
                total: own,
                children: children.into_iter(),
            });
            return;
        }
        match self.frames.last_mut() {
            Some(parent) => {
                parent.total += own;
                if self.all {
                    self.report(&node, depth, own);
                }
            }
            // A requested path that is not a directory is always reported.
            None => self.report(&node, depth, own),
        }
    }

    fn report(&mut self, node: &Node, depth: usize, size: u64) {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let wanted = match self.threshold {
            0 => true,
            threshold if threshold > 0 => size >= threshold,
            threshold => size <= threshold.saturating_neg(),
        };
        if depth <= self.max_depth && wanted {
            self.ready.push_back(DiskUsageInfo {
                name: node.virt.to_string(),
                size,
                relative_name: node.virt.relative_to(&self.root),
                ..DiskUsageInfo::default()
            });
        }
    }

    fn report_error(&mut self, node: &Node, error: &io::Error) {
        self.ready.push_back(DiskUsageInfo {
            name: node.virt.to_string(),
            relative_name: node.virt.relative_to(&self.root),
            error: error.to_string(),
            ..DiskUsageInfo::default()
        });
    }
}
