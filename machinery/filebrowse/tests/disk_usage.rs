//! `DiskUsage`: sizes summed like `du --apparent-size --bytes`.

mod fixture_tree;

use std::fs;
use std::process::Command;

use filebrowse::{FileBrowseError, Roots};
use fixture_tree::Tree;
use proto::machine::{DiskUsageInfo, DiskUsageRequest};

fn usage(roots: &Roots, request: DiskUsageRequest) -> Vec<DiskUsageInfo> {
    roots
        .disk_usage(&request)
        .unwrap_or_else(|e| panic!("{request:?}: {e}"))
        .collect()
}

fn request(paths: &[&str]) -> DiskUsageRequest {
    DiskUsageRequest {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        ..DiskUsageRequest::default()
    }
}

fn sizes(entries: &[DiskUsageInfo]) -> Vec<(&str, i64)> {
    entries
        .iter()
        .map(|e| (e.relative_name.as_str(), e.size))
        .collect()
}

/// `st_size` of a directory of the tree (file-system dependent, e.g. 4096 on ext4).
fn dir_size(tree: &Tree, relative: &str) -> i64 {
    i64::try_from(fs::metadata(tree.path(relative)).expect("stat").len()).expect("size")
}

/// What GNU du says for a real directory.
fn gnu_du_bytes(path: &std::path::Path) -> i64 {
    let output = Command::new("du")
        .arg("-sb")
        .arg(path)
        .output()
        .expect("du runs");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du prints a number")
}

#[test]
fn directories_sum_their_contents_in_post_order() {
    let tree = Tree::build();
    let deep = dir_size(&tree, "state/var/log/deep") + 1; // c.txt; `hard` was counted as a.log
    let log = dir_size(&tree, "state/var/log") + 5 + 7 + deep;
    let entries = usage(&tree.dev_roots(), request(&["/var/log"]));
    assert_eq!(sizes(&entries), [("deep", deep), (".", log)]);
    assert_eq!(entries[1].name, "/var/log");
    assert_eq!(
        log,
        gnu_du_bytes(&tree.path("state/var/log")),
        "matches du -sb"
    );
    assert!(entries.iter().all(|e| e.error.is_empty()));
}

#[test]
fn all_reports_files_and_depth_limits_reports_not_sums() {
    let tree = Tree::build();
    let deep = dir_size(&tree, "state/var/log/deep") + 1;
    let log = dir_size(&tree, "state/var/log") + 5 + 7 + deep;
    let all = usage(
        &tree.dev_roots(),
        DiskUsageRequest {
            all: true,
            ..request(&["/var/log"])
        },
    );
    assert_eq!(
        sizes(&all),
        [
            ("a.log", 5),
            ("b.log", 7),
            ("deep/c.txt", 1),
            ("deep/hard", 0),
            ("deep", deep),
            (".", log)
        ]
    );
    let shallow = usage(
        &tree.dev_roots(),
        DiskUsageRequest {
            all: true,
            recursion_depth: 1,
            ..request(&["/var/log"])
        },
    );
    assert_eq!(
        sizes(&shallow),
        [("a.log", 5), ("b.log", 7), ("deep", deep), (".", log)]
    );
}

#[test]
fn thresholds_skip_smaller_or_larger_entries() {
    let tree = Tree::build();
    let at_least_six = usage(
        &tree.dev_roots(),
        DiskUsageRequest {
            all: true,
            threshold: 6,
            ..request(&["/var/log"])
        },
    );
    assert!(sizes(&at_least_six).iter().all(|(_, size)| *size >= 6));
    assert!(at_least_six.iter().any(|e| e.relative_name == "b.log"));
    assert!(!at_least_six.iter().any(|e| e.relative_name == "a.log"));
    let at_most_six = usage(
        &tree.dev_roots(),
        DiskUsageRequest {
            all: true,
            threshold: -6,
            ..request(&["/var/log"])
        },
    );
    assert_eq!(
        sizes(&at_most_six),
        [("a.log", 5), ("deep/c.txt", 1), ("deep/hard", 0)]
    );
}

#[test]
fn several_paths_files_and_missing_paths() {
    let tree = Tree::build();
    let entries = usage(
        &tree.dev_roots(),
        request(&["/var/log/b.log", "/var/missing", "/system"]),
    );
    assert_eq!(entries.len(), 4, "{entries:?}");
    assert_eq!(
        (entries[0].name.as_str(), entries[0].size),
        ("/var/log/b.log", 7)
    );
    assert_eq!(entries[0].relative_name, ".");
    assert_eq!(entries[1].name, "/var/missing");
    assert!(
        entries[1].error.contains("no such file"),
        "{:?}",
        entries[1]
    );
    let system = dir_size(&tree, "state/system") + dir_size(&tree, "state/system/state") + 17;
    assert_eq!(
        sizes(&entries[2..]),
        [
            ("state", system - dir_size(&tree, "state/system")),
            (".", system)
        ]
    );
    assert_eq!(system, gnu_du_bytes(&tree.path("state/system")));
}

#[test]
fn symlinks_count_their_own_size_and_are_not_followed() {
    let tree = Tree::build();
    let var = usage(&tree.dev_roots(), request(&["/var"]));
    let total = var.last().expect("total");
    assert_eq!(total.name, "/var");
    // Following link-to-etc would add all of /etc; du -sb counts each link's own size.
    assert_eq!(
        total.size,
        gnu_du_bytes(&tree.path("state/var")),
        "du -sb of the same tree"
    );
}

#[test]
fn unknown_roots_fail_the_request() {
    let tree = Tree::build();
    let result = tree.dev_roots().disk_usage(&request(&["relative"]));
    assert!(matches!(
        result,
        Err(FileBrowseError::InvalidArgument { .. })
    ));
}

#[test]
fn paths_are_deduplicated_and_capped() {
    let tree = Tree::build();
    let entries = usage(
        &tree.dev_roots(),
        request(&["/var/log", "/var/log/", "/var/log/deep/..", "/var/log"]),
    );
    assert_eq!(
        entries.iter().filter(|e| e.relative_name == ".").count(),
        1,
        "{entries:?}"
    );
    let many = vec!["/var/log"; filebrowse::MAX_DISK_USAGE_PATHS + 1];
    let result = tree.dev_roots().disk_usage(&request(&many));
    assert!(
        matches!(&result, Err(FileBrowseError::InvalidArgument { reason }) if reason.contains("at most")),
        "{result:?}"
    );
}

#[test]
fn a_walk_stops_when_asked() {
    let tree = Tree::build();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&asked);
    let entries: Vec<_> = tree
        .dev_roots()
        .disk_usage(&DiskUsageRequest {
            recursion_depth: 1,
            ..request(&["/var", "/var/log"])
        })
        .unwrap()
        .stop_when(move || counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 2)
        .collect();
    // Stopped after two entries were visited: nothing reported (the totals come last).
    assert!(entries.is_empty(), "{entries:?}");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
}
