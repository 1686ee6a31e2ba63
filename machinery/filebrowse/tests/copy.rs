//! `Copy`: the tar.gz it writes, read back with flate2 and tar.

mod fixture_tree;

use std::collections::BTreeMap;
use std::io::Read;

use filebrowse::Roots;
use fixture_tree::Tree;
use flate2::read::GzDecoder;
use tar::EntryType;

/// One archive entry: its type, mode, content or link target.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: EntryType,
    mode: u32,
    data: String,
}

fn unpack(archive: &[u8]) -> BTreeMap<String, Entry> {
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let mut entries = BTreeMap::new();
    for entry in tar.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        // The raw name, as `tar tf` would print it (directories end in '/').
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().expect("mode");
        let mut data = match entry.link_name().expect("link name") {
            Some(target) => target.to_string_lossy().into_owned(),
            None => String::new(),
        };
        entry.read_to_string(&mut data).expect("content");
        entries.insert(name, Entry { kind, mode, data });
    }
    entries
}

fn copy(roots: &Roots, path: &str) -> (BTreeMap<String, Entry>, filebrowse::CopyReport) {
    let mut archive = Vec::new();
    let report = roots
        .copy_tar_gz(path, &mut archive)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&archive[..2], [0x1f, 0x8b], "gzip magic");
    (unpack(&archive), report)
}

fn file(mode: u32, data: &str) -> Entry {
    Entry {
        kind: EntryType::Regular,
        mode,
        data: data.to_owned(),
    }
}

fn dir(mode: u32) -> Entry {
    Entry {
        kind: EntryType::Directory,
        mode,
        data: String::new(),
    }
}

#[test]
fn copy_of_a_directory_names_entries_from_its_parent() {
    let tree = Tree::build();
    let (entries, report) = copy(&tree.dev_roots(), "/var/log");
    assert!(report.skipped.is_empty(), "{report:?}");
    let expected: BTreeMap<String, Entry> = [
        ("log/", dir(0o755)),
        ("log/a.log", file(0o644, "hello")),
        ("log/b.log", file(0o644, "world!!")),
        ("log/deep/", dir(0o755)),
        ("log/deep/c.txt", file(0o644, "c")),
        ("log/deep/hard", file(0o644, "hello")),
    ]
    .into_iter()
    .map(|(name, entry)| (name.to_owned(), entry))
    .collect();
    assert_eq!(entries, expected);
}

#[test]
fn copy_stores_symlinks_as_symlinks_and_skips_special_files() {
    let tree = Tree::build();
    let (entries, report) = copy(&tree.dev_roots(), "/var");
    assert!(report.skipped.is_empty(), "{report:?}");
    let link = |target: &str| Entry {
        kind: EntryType::Symlink,
        mode: 0o777,
        data: target.to_owned(),
    };
    assert_eq!(entries["var/link-to-log"], link("log"));
    assert_eq!(entries["var/link-to-etc"], link("/etc"));
    assert_eq!(
        entries["var/abs-link"],
        link("/var/log/a.log"),
        "target made virtual"
    );
    assert_eq!(entries["var/bin"], file(0o4755, "#!"));
    assert_eq!(entries["var/tmp/"], dir(0o1777));
    assert!(entries.contains_key("var/run/"));
    assert!(!entries.contains_key("var/run/fifo"), "fifo skipped");
    assert!(
        !entries
            .keys()
            .any(|name| name.starts_with("var/link-to-etc/")),
        "symlinks not followed"
    );
    assert_eq!(
        entries.len(),
        15,
        "{:?}",
        entries.keys().collect::<Vec<_>>()
    );
}

#[test]
fn copy_of_a_file_or_a_symlinked_path_uses_the_requested_name() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    let (single, _) = copy(&roots, "/var/log/deep/c.txt");
    assert_eq!(
        single.into_iter().collect::<Vec<_>>(),
        [("c.txt".to_owned(), file(0o644, "c"))]
    );
    let (via_link, _) = copy(&roots, "/var/link-to-log");
    assert_eq!(via_link["link-to-log/a.log"], file(0o644, "hello"));
}

#[test]
fn copy_skips_unreadable_entries_with_a_note_and_goes_on() {
    let tree = Tree::build();
    let roots = Roots::new([
        ("/gone", tree.path("does-not-exist")),
        ("/logs", tree.path("state/var/log")),
    ])
    .expect("roots");
    let (entries, report) = copy(&roots, "/");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(report.skipped[0].path, "/gone");
    assert!(!report.skipped[0].reason.is_empty());
    assert_eq!(entries["logs/a.log"], file(0o644, "hello"));
    assert!(!entries.keys().any(|name| name.starts_with("gone")));
}

#[test]
fn copy_streams_into_any_writer() {
    /// A sink that only counts, so nothing could be buffered by the test.
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let tree = Tree::build();
    let mut counter = Counter(0);
    tree.dev_roots()
        .copy_tar_gz("/var/log", &mut counter)
        .expect("copy");
    assert!(counter.0 > 20, "wrote {} bytes", counter.0);

    /// A sink that fails, as a client that went away.
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("client gone"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let error = tree
        .dev_roots()
        .copy_tar_gz("/var/log", Broken)
        .expect_err("write failure stops the copy");
    assert!(error.to_string().contains("client gone"), "{error}");
    assert_eq!(error.path(), Some("/var/log"));
}
