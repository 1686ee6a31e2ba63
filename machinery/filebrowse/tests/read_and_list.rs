//! `Read` and `List` on a real tree and on procfs.

mod fixture_tree;

use std::io::Read;

use filebrowse::{FileBrowseError, Roots};
use fixture_tree::Tree;
use proto::machine::list_request::Type;
use proto::machine::{FileInfo, ListRequest};

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_NAMED_PIPE: u32 = 1 << 25;
const GO_SETUID: u32 = 1 << 23;
const GO_CHAR_DEVICE: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

fn read_all(roots: &Roots, path: &str) -> String {
    let mut content = String::new();
    roots
        .read(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .read_to_string(&mut content)
        .expect("read");
    content
}

#[test]
fn read_streams_files_through_inside_symlinks() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    assert_eq!(read_all(&roots, "/var/log/a.log"), "hello");
    assert_eq!(read_all(&roots, "/var/link-to-log/b.log"), "world!!");
    assert_eq!(read_all(&roots, "/var/abs-link"), "hello");
    let reader = roots.read("/var/link-to-log/b.log").expect("open");
    assert_eq!(reader.virtual_path(), "/var/link-to-log/b.log");
}

#[test]
fn read_refuses_directories_pipes_and_missing_files() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    for path in ["/var/log", "/var/run/fifo", "/", "/var"] {
        assert!(
            matches!(
                roots.read(path),
                Err(FileBrowseError::NotRegularFile { .. })
            ),
            "{path}"
        );
    }
    assert!(matches!(
        Roots::whole_host().read("/dev/null"),
        Err(FileBrowseError::NotRegularFile { .. })
    ));
    match roots.read("/var/log/missing.log") {
        Err(FileBrowseError::NotFound { path }) => assert_eq!(path, "/var/log/missing.log"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn read_streams_zero_size_procfs_files() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    let status = read_all(&roots, "/proc/self/status");
    assert!(status.starts_with("Name:"), "{status}");
    assert!(status.contains(&format!("\nPid:\t{}\n", std::process::id())));
    assert!(!read_all(&roots, "/proc/cmdline").trim().is_empty());

    let chunks: Vec<Vec<u8>> = roots
        .read("/proc/self/status")
        .expect("open")
        .into_chunks()
        .collect::<Result<_, _>>()
        .expect("chunks");
    let joined: Vec<u8> = chunks.concat();
    assert!(joined.starts_with(b"Name:"));
    assert!(
        chunks
            .iter()
            .all(|c| !c.is_empty() && c.len() <= filebrowse::READ_CHUNK_SIZE)
    );
}

fn list(roots: &Roots, request: ListRequest) -> Vec<FileInfo> {
    roots
        .list(&request)
        .unwrap_or_else(|e| panic!("{request:?}: {e}"))
        .collect()
}

fn relative_names(entries: &[FileInfo]) -> Vec<&str> {
    entries.iter().map(|e| e.relative_name.as_str()).collect()
}

fn entry<'a>(entries: &'a [FileInfo], name: &str) -> &'a FileInfo {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", relative_names(entries)))
}

#[test]
fn list_without_recurse_gives_the_root_and_its_children() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    let entries = list(
        &roots,
        ListRequest {
            root: "/var".to_owned(),
            ..ListRequest::default()
        },
    );
    assert_eq!(
        relative_names(&entries),
        [
            ".",
            "abs-link",
            "bin",
            "dangling-out",
            "link-to-etc",
            "link-to-log",
            "link-up",
            "log",
            "run",
            "tmp"
        ]
    );
    assert_eq!(entries[0].name, "/var");
    assert!(entries[0].is_dir);
    let log = entry(&entries, "/var/log");
    assert_eq!(log.mode, GO_DIR | 0o755);
    assert!(log.is_dir && log.error.is_empty() && log.modified > 1_600_000_000);
    assert_eq!(
        (log.uid, log.gid),
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw()
        )
    );
}

#[test]
fn list_reports_go_mode_bits_and_virtual_link_targets() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    let entries = list(
        &roots,
        ListRequest {
            root: "/var".to_owned(),
            recurse: true,
            ..ListRequest::default()
        },
    );
    let state = tree.path("state").to_string_lossy().into_owned();
    for entry in &entries {
        assert!(
            !entry.name.contains(&state) && !entry.link.contains(&state),
            "{entry:?}"
        );
    }
    assert_eq!(entry(&entries, "/var/bin").mode, GO_SETUID | 0o755);
    assert_eq!(entry(&entries, "/var/tmp").mode, GO_DIR | GO_STICKY | 0o777);
    assert_eq!(entry(&entries, "/var/run/fifo").mode, GO_NAMED_PIPE | 0o644);
    let relative = entry(&entries, "/var/link-to-log");
    assert_eq!(
        (relative.mode, relative.link.as_str()),
        (GO_SYMLINK | 0o777, "log")
    );
    assert!(!relative.is_dir);
    assert_eq!(entry(&entries, "/var/abs-link").link, "/var/log/a.log");
    assert_eq!(entry(&entries, "/var/link-to-etc").link, "/etc");
    let file = entry(&entries, "/var/log/deep/c.txt");
    assert_eq!(
        (file.size, file.mode, file.relative_name.as_str()),
        (1, 0o644, "log/deep/c.txt")
    );

    let dev_null = list(
        &Roots::whole_host(),
        ListRequest {
            root: "/dev/null".to_owned(),
            ..ListRequest::default()
        },
    );
    assert_eq!(dev_null.len(), 1, "listing a file gives the file itself");
    assert_eq!(dev_null[0].relative_name, ".");
    assert_eq!(dev_null[0].mode, GO_DEVICE | GO_CHAR_DEVICE | 0o666);
}

#[test]
fn list_never_follows_symlinks() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    let entries = list(
        &roots,
        ListRequest {
            root: "/var".to_owned(),
            recurse: true,
            ..ListRequest::default()
        },
    );
    let names = relative_names(&entries);
    assert_eq!(
        names,
        [
            ".",
            "abs-link",
            "bin",
            "dangling-out",
            "link-to-etc",
            "link-to-log",
            "link-up",
            "log",
            "log/a.log",
            "log/b.log",
            "log/deep",
            "log/deep/c.txt",
            "log/deep/hard",
            "run",
            "run/fifo",
            "tmp"
        ]
    );
}

#[test]
fn list_limits_depth_and_filters_types() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    let depth_one = list(
        &roots,
        ListRequest {
            root: "/var/log".to_owned(),
            recurse: true,
            recursion_depth: 1,
            ..ListRequest::default()
        },
    );
    assert_eq!(relative_names(&depth_one), [".", "a.log", "b.log", "deep"]);
    let unlimited = list(
        &roots,
        ListRequest {
            root: "/var/log".to_owned(),
            recurse: true,
            recursion_depth: 0,
            ..ListRequest::default()
        },
    );
    assert_eq!(
        relative_names(&unlimited),
        [".", "a.log", "b.log", "deep", "deep/c.txt", "deep/hard"]
    );
    let directories = list(
        &roots,
        ListRequest {
            root: "/var".to_owned(),
            recurse: true,
            types: vec![Type::Directory as i32],
            ..ListRequest::default()
        },
    );
    assert_eq!(
        relative_names(&directories),
        [".", "log", "log/deep", "run", "tmp"]
    );
    let links_and_files = list(
        &roots,
        ListRequest {
            root: "/var".to_owned(),
            types: vec![Type::Symlink as i32, Type::Regular as i32],
            ..ListRequest::default()
        },
    );
    assert_eq!(
        relative_names(&links_and_files),
        [
            "abs-link",
            "bin",
            "dangling-out",
            "link-to-etc",
            "link-to-log",
            "link-up"
        ]
    );
    let unknown_type = roots.list(&ListRequest {
        types: vec![7],
        ..ListRequest::default()
    });
    assert!(matches!(
        unknown_type,
        Err(FileBrowseError::InvalidArgument { .. })
    ));
}

#[test]
fn list_of_the_virtual_root_shows_the_mounts() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    let entries = list(&roots, ListRequest::default());
    assert_eq!(relative_names(&entries), [".", "proc", "system", "var"]);
    assert!(entries.iter().all(|e| e.is_dir && e.mode & GO_DIR != 0));
    assert_eq!(entries[0].name, "/");
    assert_eq!(entries[3].name, "/var");

    let deep = list(
        &roots,
        ListRequest {
            root: "/".to_owned(),
            recurse: true,
            recursion_depth: 3,
            ..ListRequest::default()
        },
    );
    assert!(
        deep.iter().any(|e| e.name == "/system/state/config.yaml"
            && e.relative_name == "system/state/config.yaml")
    );
    assert!(deep.iter().any(|e| e.name == "/proc/self"));
}

#[test]
fn list_reports_entry_errors_and_goes_on() {
    let tree = Tree::build();
    let roots = Roots::new([
        ("/gone", tree.path("does-not-exist")),
        ("/var", tree.path("state/var")),
    ])
    .expect("roots");
    let entries = list(
        &roots,
        ListRequest {
            recurse: true,
            recursion_depth: 3,
            ..ListRequest::default()
        },
    );
    let gone = entry(&entries, "/gone");
    assert!(!gone.error.is_empty() && gone.mode == 0, "{gone:?}");
    assert_eq!(gone.relative_name, "gone");
    assert!(
        entries.iter().any(|e| e.name == "/var/log/a.log"),
        "listing went on"
    );
    match roots.read("/gone/x") {
        Err(FileBrowseError::NotFound { path }) => assert_eq!(path, "/gone/x"),
        other => panic!("a missing mount directory is NotFound, got {other:?}"),
    }
}

#[test]
fn list_reports_extended_attributes_on_request() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    xattr::set(
        tree.path("state/var/log/a.log"),
        "user.talos.test",
        b"value",
    )
    .expect("ext4/tmpfs temp dirs support user xattrs");
    let request = |report_xattrs| ListRequest {
        root: "/var/log".to_owned(),
        report_xattrs,
        ..ListRequest::default()
    };
    let with = list(&roots, request(true));
    let a = entry(&with, "/var/log/a.log");
    assert_eq!(a.xattrs.len(), 1, "{a:?}");
    assert_eq!(
        (a.xattrs[0].name.as_str(), a.xattrs[0].data.as_slice()),
        ("user.talos.test", &b"value"[..])
    );
    assert!(entry(&with, "/var/log/b.log").xattrs.is_empty());
    let without = list(&roots, request(false));
    assert!(entry(&without, "/var/log/a.log").xattrs.is_empty());
}
