//! Every way out of the roots is refused, by every operation.

mod fixture_tree;

use std::path::PathBuf;

use filebrowse::{FileBrowseError, Roots};
use fixture_tree::Tree;
use proto::machine::{DiskUsageRequest, ListRequest};

/// Paths that must be refused in dev mode, and why.
const ESCAPES: [&str; 9] = [
    "/etc/passwd",                             // no mount covers it
    "/var/../etc/shadow",                      // `..` out of the mount
    "/var/../var/log/a.log",                   // `..` climbs above the mount, even if it returns
    "/../var/log/a.log",                       // `..` above `/`
    "/var/log/../../system/state/config.yaml", // `..` out of /var into another mount
    "/var/link-to-etc/passwd",                 // symlink to the host's /etc
    "/var/link-up/state/config.yaml",          // symlink into another mount's directory
    "/var/dangling-out",                       // escaping symlink whose target is missing
    "/var/link-to-etc",                        // the escaping symlink itself, followed
];

fn assert_outside(result: Result<impl std::fmt::Debug, FileBrowseError>, path: &str) {
    match result {
        Err(FileBrowseError::OutsideRoots { path: reported }) => assert_eq!(reported, path),
        other => panic!("{path}: expected OutsideRoots, got {other:?}"),
    }
}

#[test]
fn read_refuses_every_escape() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    for path in ESCAPES {
        assert_outside(roots.read(path), path);
    }
}

#[test]
fn list_refuses_every_escape() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    for path in ESCAPES {
        let request = ListRequest {
            root: path.to_owned(),
            recurse: true,
            ..ListRequest::default()
        };
        assert_outside(roots.list(&request), path);
    }
}

#[test]
fn copy_refuses_every_escape_and_writes_nothing() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    for path in ESCAPES {
        let mut archive = Vec::new();
        assert_outside(roots.copy_tar_gz(path, &mut archive), path);
        assert!(archive.is_empty(), "{path}: wrote {} bytes", archive.len());
    }
}

#[test]
fn disk_usage_refuses_every_escape() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    for path in ESCAPES {
        let request = DiskUsageRequest {
            paths: vec!["/var/log".to_owned(), path.to_owned()],
            ..DiskUsageRequest::default()
        };
        assert_outside(roots.disk_usage(&request), path);
    }
}

#[test]
fn the_same_paths_inside_the_roots_are_allowed() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    for path in [
        "/var/log/a.log",
        "/var/./log//a.log",
        "/var/log/deep/../a.log",
        "/var/link-to-log/a.log",
        "/var/abs-link",
        "/system/state/config.yaml",
    ] {
        roots.read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn whole_host_roots_allow_any_absolute_path_but_not_above_root() {
    let tree = Tree::build();
    let roots = Roots::whole_host();
    let secret = tree.path("outside/secret");
    let via_parent = format!("{}/../outside/secret", tree.path("state").display());
    for path in [secret.to_string_lossy().into_owned(), via_parent] {
        roots.read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    assert_outside(roots.read("/../etc/hostname"), "/../etc/hostname");
}

#[test]
fn relative_paths_are_invalid_arguments() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    for path in ["var/log/a.log", "", "./var"] {
        assert!(
            matches!(
                roots.read(path),
                Err(FileBrowseError::InvalidArgument { .. })
            ),
            "{path:?}"
        );
    }
}

#[test]
fn roots_reject_malformed_mounts() {
    let bad: [(&str, PathBuf); 4] = [
        ("var", PathBuf::from("/var")),
        ("/var/../etc", PathBuf::from("/etc")),
        ("/var/.", PathBuf::from("/var")),
        ("/var", PathBuf::from("relative/dir")),
    ];
    for (prefix, real) in bad {
        let result = Roots::new([(prefix, real)]);
        assert!(
            matches!(result, Err(FileBrowseError::InvalidArgument { .. })),
            "{prefix:?}: {result:?}"
        );
    }
    let duplicate = Roots::new([("/var", "/a"), ("/var/", "/b")]);
    assert!(matches!(
        duplicate,
        Err(FileBrowseError::InvalidArgument { .. })
    ));
    let none: [(&str, &str); 0] = [];
    assert!(Roots::new(none).is_err());
}

#[test]
fn errors_never_name_the_real_state_directory() {
    let tree = Tree::build();
    let roots = tree.dev_roots();
    let state = tree.path("state").to_string_lossy().into_owned();
    for path in [
        "/var/missing",
        "/var/log",
        "/var/link-to-etc/passwd",
        "/var/log/a.log/x",
    ] {
        let message = match roots.read(path) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("{path} should fail"),
        };
        assert!(message.starts_with(path), "{message}");
        assert!(!message.contains(&state), "{message} leaks {state}");
    }
}
