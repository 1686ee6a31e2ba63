//! Host data for the monitoring RPCs of `machine.MachineService`, read from procfs and sysfs into
//! the API messages of the [`proto`] crate.
//!
//! A [`Host`] is rooted at a procfs and a sysfs directory (`/proc` and `/sys` in production,
//! fixture trees in tests) and answers `Memory`, `LoadAvg`, `SystemStat`, `CPUInfo`,
//! `CPUFreqStats`, `Processes`, `Mounts`, `DiskStats`, `NetworkDeviceStats`, `Hostname` and
//! `Netstat` with the reply message each RPC wraps in its `messages` list. The `metadata` field is
//! left unset: apid fills it in.
//!
//! Parsing is lenient about shape and strict about numbers: unknown lines and keys are ignored,
//! columns that older kernels do not print read as 0, but a number that does not parse is an
//! error naming the file and line.
//!
//! Limits:
//! - Only the host network namespace can be inspected by [`Host::netstat`]; asking for other
//!   namespaces fails with [`HostInfoError::NetnsUnsupported`].
//! - [`Host::processes`] leaves `ProcessInfo.label` (the SELinux label) empty.
//! - [`Host::mounts`] calls `statfs` on the mount points of the running system, whatever procfs
//!   root the [`Host`] was given.
//! - CPU times are converted to seconds with `USER_HZ` = 100, the value of every Linux ABI
//!   talos-rs runs on.

mod cpu_freq;
mod cpu_info;
mod disk_stats;
mod error;
mod hostname;
mod load_avg;
mod memory;
mod mounts;
mod net_dev;
mod netstat;
mod processes;
mod procfile;
mod system_stat;

use std::path::{Path, PathBuf};

pub use error::HostInfoError;

/// The clock ticks per second that `/proc/stat` and `/proc/[pid]/stat` count in (`USER_HZ`).
const USER_HZ: f64 = 100.0;

/// A view of one machine through its procfs and sysfs mount points.
#[derive(Debug, Clone)]
pub struct Host {
    proc: PathBuf,
    sys: PathBuf,
}

impl Host {
    /// A host whose procfs is mounted at `proc` and sysfs at `sys`
    /// (`Host::new("/proc", "/sys")` for the running machine).
    pub fn new(proc: impl Into<PathBuf>, sys: impl Into<PathBuf>) -> Self {
        Self {
            proc: proc.into(),
            sys: sys.into(),
        }
    }

    /// Where this host's procfs is read from.
    pub fn proc_root(&self) -> &Path {
        &self.proc
    }

    /// Where this host's sysfs is read from.
    pub fn sys_root(&self) -> &Path {
        &self.sys
    }

    fn proc_path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.proc.join(relative)
    }

    fn sys_path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.sys.join(relative)
    }
}
