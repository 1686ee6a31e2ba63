//! Against a snapshot the real etcd wrote (`etcdctl snapshot save` of 200 small keys, three
//! values that need overflow pages, one deletion): the status `etcdctl snapshot status` printed
//! for it, with and without its hash trailer; damaged and foreign files are refused, never a
//! panic.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use etcdsnapshot::{SnapshotError, SnapshotStatus, check_integrity, status};

/// `etcdctl snapshot status -w json`: {"hash":2655923554,"revision":205,"totalKey":208,"totalSize":73728}
const EXPECTED: SnapshotStatus = SnapshotStatus {
    hash: 2_655_923_554,
    revision: 205,
    total_keys: 208,
    total_size: 73_728,
};

fn fixture() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/snapshot.db")).unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn status_matches_etcdctl_with_and_without_the_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture();
    assert_eq!(bytes.len(), 73_728 + 32);
    let snapshot = write(&dir, "snapshot.db", &bytes);
    assert_eq!(status(&snapshot).unwrap(), EXPECTED);
    let copy = write(&dir, "db", &bytes[..73_728]);
    assert_eq!(status(&copy).unwrap(), EXPECTED);
}

#[test]
fn integrity_is_checked_like_etcdctl_restore() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture();
    let snapshot = write(&dir, "snapshot.db", &bytes);
    check_integrity(&snapshot, false).unwrap();

    let copy = write(&dir, "db", &bytes[..73_728]);
    assert!(matches!(
        check_integrity(&copy, false),
        Err(SnapshotError::MissingHash { .. })
    ));
    check_integrity(&copy, true).unwrap();

    let mut damaged = bytes.clone();
    damaged[40_000] ^= 0x55;
    let damaged = write(&dir, "damaged.db", &damaged);
    let error = check_integrity(&damaged, false).unwrap_err();
    assert!(matches!(error, SnapshotError::HashMismatch { .. }));
    assert!(error.to_string().contains("damaged.db"), "{error}");
}

#[test]
fn foreign_and_truncated_files_are_not_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture();
    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    for (name, content) in [
        ("empty", &[][..]),
        ("garbage", &garbage[..]),
        ("short", &bytes[..100]),
        ("truncated", &bytes[..16_384]),
    ] {
        let path = write(&dir, name, content);
        let error = status(&path).unwrap_err();
        assert!(
            matches!(error, SnapshotError::NotSnapshot { .. }),
            "{name}: {error}"
        );
        assert!(
            error.to_string().contains("is not an etcd snapshot"),
            "{error}"
        );
    }
    let missing = status(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(missing, SnapshotError::Io { .. }), "{missing}");
}

#[test]
fn damaged_pages_give_an_error_or_a_status_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture();
    let path = dir.path().join("damaged.db");
    let mut refused = 0;
    // The header and first elements of every data page, set to values that point anywhere.
    let offsets = (2..18).flat_map(|page| (0..64).map(move |byte| page * 4096 + byte));
    for offset in offsets {
        for value in [0x00u8, 0xff] {
            let mut damaged = bytes.clone();
            if damaged[offset] == value {
                continue;
            }
            damaged[offset] = value;
            std::fs::write(&path, &damaged).unwrap();
            if status(&path).is_err() {
                refused += 1;
            }
        }
    }
    assert!(refused > 50, "only {refused} damaged files were refused");
}
