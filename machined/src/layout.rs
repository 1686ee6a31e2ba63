//! Where machined keeps things: the same tree in OS mode (rooted at `/`) and in dev mode
//! (rooted at the state directory given on the command line).

use std::path::{Path, PathBuf};

use crate::error::MachinedError;

/// The node's file layout under one root.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root` (`/` on a real node).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The persisted machine config (STATE partition).
    pub fn config_file(&self) -> PathBuf {
        self.root.join("system/state/config.yaml")
    }

    /// machined's API socket.
    pub fn machine_socket(&self) -> PathBuf {
        self.root.join("system/run/machined/machine.sock")
    }

    /// The TLS material machined writes for apid.
    pub fn apid_tls_dir(&self) -> PathBuf {
        self.root.join("system/secrets/apid")
    }

    /// The TLS material machined writes for trustd (control planes).
    pub fn trustd_tls_dir(&self) -> PathBuf {
        self.root.join("system/secrets/trustd")
    }

    /// networkd's API socket.
    pub fn networkd_socket(&self) -> PathBuf {
        self.root.join("system/run/networkd/networkd.sock")
    }

    /// The `hosts` and `resolv.conf` files networkd writes (as its `HostFiles::under`).
    pub fn network_etc_files(&self) -> [PathBuf; 2] {
        [
            self.root.join("system/etc/hosts"),
            self.root.join("system/resolved/resolv.conf"),
        ]
    }

    /// timed's API socket.
    pub fn timed_socket(&self) -> PathBuf {
        self.root.join("system/run/timed/timed.sock")
    }

    /// Where machined's socket lives (apid's mount).
    pub fn machine_socket_dir(&self) -> PathBuf {
        self.root.join("system/run/machined")
    }

    /// timed's socket directory.
    pub fn timed_socket_dir(&self) -> PathBuf {
        self.root.join("system/run/timed")
    }

    /// containerd's API socket (OS mode).
    pub fn containerd_socket(&self) -> PathBuf {
        self.root.join("system/run/containerd/containerd.sock")
    }

    /// The system containerd's root (its metadata database), in memory in OS mode.
    pub fn containerd_root(&self) -> PathBuf {
        self.root.join("system/var/lib/containerd")
    }

    /// The FIFOs containerd tasks write their output to.
    pub fn task_output_dir(&self) -> PathBuf {
        self.root.join("system/run/machined/task-output")
    }

    /// Per-service log files.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("var/log")
    }

    /// Installer images imported through `ImageService.Import` (on EPHEMERAL).
    pub fn image_dir(&self) -> PathBuf {
        self.root.join("var/lib/talos-rs/images")
    }

    /// Debug images imported through `ImageService.Import` (in memory in OS mode).
    pub fn debug_image_dir(&self) -> PathBuf {
        self.root.join("system/var/lib/talos-rs/debug/images")
    }

    /// The root filesystems of running debug containers (in memory in OS mode).
    pub fn debug_container_dir(&self) -> PathBuf {
        self.root.join("system/var/lib/talos-rs/debug/containers")
    }

    /// Creates every directory of the layout.
    pub fn create(&self) -> Result<(), MachinedError> {
        for dir in [
            self.root.join("system/state"),
            self.machine_socket_dir(),
            self.apid_tls_dir(),
            self.log_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(MachinedError::io("creating", &dir))?;
        }
        Ok(())
    }
}
