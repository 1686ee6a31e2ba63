//! A real directory tree in a temp dir, laid out like a dev-mode state directory, with files,
//! directories, a fifo, special modes and symlinks that stay inside or escape the roots.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use filebrowse::Roots;
use nix::sys::stat::Mode;
use tempfile::TempDir;

/// ```text
/// <tmp>/state/var/log/a.log            "hello"
/// <tmp>/state/var/log/b.log            "world!!"
/// <tmp>/state/var/log/deep/c.txt       "c"
/// <tmp>/state/var/log/deep/hard        hard link to a.log
/// <tmp>/state/var/run/fifo             named pipe
/// <tmp>/state/var/bin                  mode 04755, "#!"
/// <tmp>/state/var/tmp/                 mode 01777
/// <tmp>/state/var/link-to-log  -> log                        (inside)
/// <tmp>/state/var/abs-link     -> <tmp>/state/var/log/a.log  (inside, absolute)
/// <tmp>/state/var/link-to-etc  -> /etc                       (escapes)
/// <tmp>/state/var/link-up      -> ../system                  (escapes into another mount)
/// <tmp>/state/var/dangling-out -> /nonexistent/x             (escapes, missing)
/// <tmp>/state/system/state/config.yaml  "version: v1alpha1"
/// <tmp>/outside/secret                  "secret"
/// ```
pub struct Tree {
    pub dir: TempDir,
}

impl Tree {
    pub fn build() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let var = root.join("state/var");
        for sub in ["log/deep", "run", "tmp"] {
            fs::create_dir_all(var.join(sub)).expect("mkdir");
        }
        fs::create_dir_all(root.join("state/system/state")).expect("mkdir");
        fs::create_dir_all(root.join("outside")).expect("mkdir");
        write(&var.join("log/a.log"), "hello");
        write(&var.join("log/b.log"), "world!!");
        write(&var.join("log/deep/c.txt"), "c");
        fs::hard_link(var.join("log/a.log"), var.join("log/deep/hard")).expect("hard link");
        nix::unistd::mkfifo(&var.join("run/fifo"), Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        write(&var.join("bin"), "#!");
        fs::set_permissions(var.join("bin"), fs::Permissions::from_mode(0o4755)).expect("chmod");
        fs::set_permissions(var.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
        symlink("log", var.join("link-to-log")).expect("symlink");
        symlink(var.join("log/a.log"), var.join("abs-link")).expect("symlink");
        symlink("/etc", var.join("link-to-etc")).expect("symlink");
        symlink("../system", var.join("link-up")).expect("symlink");
        symlink("/nonexistent/x", var.join("dangling-out")).expect("symlink");
        write(
            &root.join("state/system/state/config.yaml"),
            "version: v1alpha1",
        );
        write(&root.join("outside/secret"), "secret");
        Self { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Dev-mode roots: `/proc`, and `/system`, `/var` from the state directory.
    pub fn dev_roots(&self) -> Roots {
        Roots::new([
            ("/proc", PathBuf::from("/proc")),
            ("/system", self.path("state/system")),
            ("/var", self.path("state/var")),
        ])
        .expect("valid roots")
    }
}

fn write(path: &Path, content: &str) {
    fs::write(path, content).expect("write fixture file");
}
