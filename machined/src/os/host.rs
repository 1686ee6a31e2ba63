//! The one seam through which PID 1 changes the host: [`Host`], implemented for Linux by
//! [`LinuxHost`](super::linux::LinuxHost) and, in tests, by a recording fake
//! ([`RecordingHost`]) so that the boot sequence runs without root.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::MsFlags;

use crate::error::MachinedError;

/// What reboot(2) is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Reboot,
    Off,
    /// Start the kernel staged with [`kexec`](super::kexec) (a reboot without firmware).
    Kexec,
}

/// One mount(2) call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: PathBuf,
    pub fstype: String,
    pub flags: MsFlags,
    pub data: String,
}

impl Mount {
    pub fn new(source: &str, target: &str, fstype: &str, flags: MsFlags, data: &str) -> Self {
        Mount {
            source: source.into(),
            target: target.into(),
            fstype: fstype.into(),
            flags,
            data: data.into(),
        }
    }
}

/// Every host side effect of PID 1 (and the few reads the boot sequence makes).
pub trait Host {
    /// Reads a whole file (`/proc/cmdline`, module lists, sysfs attributes).
    fn read_file(&mut self, path: &Path) -> Result<String, MachinedError>;
    /// The entry names of a directory, sorted.
    fn list_dir(&mut self, path: &Path) -> Result<Vec<String>, MachinedError>;
    /// The first `length` bytes of a file or block device (fewer if it is shorter).
    fn read_head(&mut self, path: &Path, length: usize) -> Result<Vec<u8>, MachinedError>;
    /// Writes a whole file with `mode` (before any service runs).
    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<(), MachinedError>;
    /// Whether `path` exists.
    fn exists(&mut self, path: &Path) -> bool;
    /// Creates `path` and its parents.
    fn create_dir(&mut self, path: &Path) -> Result<(), MachinedError>;
    /// Copies the directories, files and symbolic links below `from` into the existing
    /// directory `to`, with their modes.
    fn copy_tree(&mut self, from: &Path, to: &Path) -> Result<(), MachinedError>;
    fn mount(&mut self, mount: &Mount) -> Result<(), MachinedError>;
    /// Moves the mount at `from` to `to` (MS_MOVE).
    fn move_mount(&mut self, from: &Path, to: &Path) -> Result<(), MachinedError>;
    fn unmount(&mut self, target: &Path) -> Result<(), MachinedError>;
    /// Makes the mounted `new_root` the root: chdir, move it over `/`, chroot (an initramfs
    /// cannot be pivot_root'ed).
    fn change_root(&mut self, new_root: &Path) -> Result<(), MachinedError>;
    /// Attaches `file` read-only to a free loop device; returns the device.
    fn attach_loop(&mut self, file: &Path) -> Result<PathBuf, MachinedError>;
    /// Loads kernel modules that do not depend on each other (finit_module), concurrently
    /// where it can; one already loaded is not an error.
    fn load_modules(&mut self, paths: &[PathBuf]) -> Result<(), MachinedError>;
    /// Writes `/proc/sys/<key with dots as slashes>`.
    fn set_sysctl(&mut self, key: &str, value: &str) -> Result<(), MachinedError>;
    fn set_hostname(&mut self, name: &str) -> Result<(), MachinedError>;
    /// Sets a link administratively up.
    fn link_up(&mut self, link: &str) -> Result<(), MachinedError>;
    fn add_address(
        &mut self,
        link: &str,
        address: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), MachinedError>;
    fn add_default_route(&mut self, link: &str, gateway: Ipv4Addr) -> Result<(), MachinedError>;
    /// Asks the network on `link` (up, without an address) for a DHCP lease, waiting at most
    /// `timeout`; `None` when no server answered.
    fn dhcp_lease(
        &mut self,
        link: &str,
        timeout: Duration,
    ) -> Result<Option<dhcp::Lease>, MachinedError>;
    /// Runs a program with only the environment `env` to completion; fails unless it exits 0.
    /// Only before the service supervisor starts: afterwards its reaper owns every child.
    fn run(
        &mut self,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(), MachinedError>;
    /// Writes one line to the kernel log (and so to the console).
    fn log(&mut self, line: &str);
    /// Writes one line straight to the console: for what must be seen even if the kernel
    /// log drops it (user messages to /dev/kmsg are rate-limited by default).
    fn alert(&mut self, line: &str);
    fn sleep(&mut self, duration: Duration);
    /// The body of a plain-HTTP GET of `url`, or what went wrong.
    fn download(&mut self, url: &str) -> Result<Vec<u8>, String>;
    fn sync(&mut self);
    /// Overwrites the start of a block device with zeroes (its filesystem's superblock or
    /// META's copies), synced: what a reset does to a system volume.
    fn wipe(&mut self, device: &Path) -> Result<(), MachinedError>;
    /// reboot(2); returns only if the call failed.
    fn reboot(&mut self, power: Power) -> MachinedError;
}

#[cfg(test)]
pub use fake::{Action, RecordingHost};

#[cfg(test)]
mod fake {
    use std::collections::BTreeMap;

    use super::*;

    /// A side effect the fake recorded.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Action {
        CreateDir(PathBuf),
        CopyTree(PathBuf, PathBuf),
        Mount(Mount),
        MoveMount(PathBuf, PathBuf),
        Unmount(PathBuf),
        ChangeRoot(PathBuf),
        AttachLoop(PathBuf),
        LoadModule(PathBuf),
        Sysctl(String, String),
        Hostname(String),
        LinkUp(String),
        Address(String, Ipv4Addr, u8),
        DefaultRoute(String, Ipv4Addr),
        DhcpLease(String),
        Run(PathBuf, Vec<String>),
        WriteFile(PathBuf, String, u32),
        Log(String),
        Alert(String),
        Sleep(Duration),
        Download(String),
        Sync,
        Wipe(PathBuf),
        Reboot(Power),
    }

    /// Records every side effect; reads come from `files`, `exists` is true for files,
    /// directories created and `present`.
    #[derive(Debug, Default)]
    pub struct RecordingHost {
        pub actions: Vec<Action>,
        pub files: BTreeMap<PathBuf, String>,
        pub present: Vec<PathBuf>,
        /// What `read_head` returns, by path (empty when absent).
        pub heads: BTreeMap<PathBuf, Vec<u8>>,
        /// What successive `download` calls return (an error when none is left).
        pub downloads: Vec<Result<String, String>>,
        /// What `dhcp_lease` returns.
        pub lease: Option<dhcp::Lease>,
        /// Sources whose `mount` fails (EINVAL, as the kernel refuses a volume it cannot read).
        pub refused_mounts: Vec<String>,
    }

    impl RecordingHost {
        pub fn with_file(mut self, path: &str, text: &str) -> Self {
            self.files.insert(path.into(), text.into());
            self
        }

        /// The recorded actions other than log lines.
        pub fn effects(&self) -> Vec<Action> {
            self.actions
                .iter()
                .filter(|a| !matches!(a, Action::Log(_) | Action::Alert(_)))
                .cloned()
                .collect()
        }

        pub fn logs(&self) -> Vec<String> {
            self.actions
                .iter()
                .filter_map(|a| match a {
                    Action::Log(line) => Some(line.clone()),
                    _ => None,
                })
                .collect()
        }

        fn ok(&mut self, action: Action) -> Result<(), MachinedError> {
            self.actions.push(action);
            Ok(())
        }
    }

    impl Host for RecordingHost {
        fn read_file(&mut self, path: &Path) -> Result<String, MachinedError> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| MachinedError::Io {
                    what: "reading",
                    path: path.into(),
                    source: std::io::ErrorKind::NotFound.into(),
                })
        }
        fn list_dir(&mut self, path: &Path) -> Result<Vec<String>, MachinedError> {
            let mut names: Vec<String> = self
                .files
                .keys()
                .chain(self.present.iter())
                .filter_map(|p| p.strip_prefix(path).ok()?.iter().next())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        }
        fn read_head(&mut self, path: &Path, length: usize) -> Result<Vec<u8>, MachinedError> {
            let mut head = self.heads.get(path).cloned().unwrap_or_default();
            head.truncate(length);
            Ok(head)
        }
        fn run(
            &mut self,
            program: &Path,
            args: &[&str],
            _env: &[(&str, &str)],
        ) -> Result<(), MachinedError> {
            self.ok(Action::Run(
                program.into(),
                args.iter().map(|a| a.to_string()).collect(),
            ))
        }
        fn write_file(
            &mut self,
            path: &Path,
            contents: &[u8],
            mode: u32,
        ) -> Result<(), MachinedError> {
            self.ok(Action::WriteFile(
                path.into(),
                String::from_utf8_lossy(contents).into_owned(),
                mode,
            ))
        }
        fn exists(&mut self, path: &Path) -> bool {
            self.files.contains_key(path)
                || self.present.iter().any(|p| p == path)
                || self.actions.contains(&Action::CreateDir(path.into()))
        }
        fn create_dir(&mut self, path: &Path) -> Result<(), MachinedError> {
            self.ok(Action::CreateDir(path.into()))
        }
        fn copy_tree(&mut self, from: &Path, to: &Path) -> Result<(), MachinedError> {
            self.ok(Action::CopyTree(from.into(), to.into()))
        }
        fn mount(&mut self, mount: &Mount) -> Result<(), MachinedError> {
            if self.refused_mounts.contains(&mount.source) {
                return Err(MachinedError::Io {
                    what: "mounting",
                    path: mount.target.clone(),
                    source: std::io::Error::from_raw_os_error(22),
                });
            }
            self.ok(Action::Mount(mount.clone()))
        }
        fn move_mount(&mut self, from: &Path, to: &Path) -> Result<(), MachinedError> {
            self.ok(Action::MoveMount(from.into(), to.into()))
        }
        fn unmount(&mut self, target: &Path) -> Result<(), MachinedError> {
            self.ok(Action::Unmount(target.into()))
        }
        fn change_root(&mut self, new_root: &Path) -> Result<(), MachinedError> {
            self.ok(Action::ChangeRoot(new_root.into()))
        }
        fn attach_loop(&mut self, file: &Path) -> Result<PathBuf, MachinedError> {
            self.actions.push(Action::AttachLoop(file.into()));
            Ok("/dev/loop0".into())
        }
        fn load_modules(&mut self, paths: &[PathBuf]) -> Result<(), MachinedError> {
            for path in paths {
                self.actions.push(Action::LoadModule(path.clone()));
            }
            Ok(())
        }
        fn set_sysctl(&mut self, key: &str, value: &str) -> Result<(), MachinedError> {
            self.ok(Action::Sysctl(key.into(), value.into()))
        }
        fn set_hostname(&mut self, name: &str) -> Result<(), MachinedError> {
            self.ok(Action::Hostname(name.into()))
        }
        fn link_up(&mut self, link: &str) -> Result<(), MachinedError> {
            self.ok(Action::LinkUp(link.into()))
        }
        fn add_address(
            &mut self,
            link: &str,
            address: Ipv4Addr,
            prefix: u8,
        ) -> Result<(), MachinedError> {
            self.ok(Action::Address(link.into(), address, prefix))
        }
        fn add_default_route(
            &mut self,
            link: &str,
            gateway: Ipv4Addr,
        ) -> Result<(), MachinedError> {
            self.ok(Action::DefaultRoute(link.into(), gateway))
        }
        fn dhcp_lease(
            &mut self,
            link: &str,
            _timeout: Duration,
        ) -> Result<Option<dhcp::Lease>, MachinedError> {
            self.actions.push(Action::DhcpLease(link.into()));
            Ok(self.lease.clone())
        }
        fn log(&mut self, line: &str) {
            self.actions.push(Action::Log(line.into()));
        }
        fn alert(&mut self, line: &str) {
            self.actions.push(Action::Alert(line.into()));
        }
        fn sleep(&mut self, duration: Duration) {
            self.actions.push(Action::Sleep(duration));
        }
        fn download(&mut self, url: &str) -> Result<Vec<u8>, String> {
            self.actions.push(Action::Download(url.into()));
            if self.downloads.is_empty() {
                return Err("nothing to download".into());
            }
            self.downloads.remove(0).map(String::into_bytes)
        }
        fn sync(&mut self) {
            self.actions.push(Action::Sync);
        }
        fn wipe(&mut self, device: &Path) -> Result<(), MachinedError> {
            self.ok(Action::Wipe(device.into()))
        }
        fn reboot(&mut self, power: Power) -> MachinedError {
            self.actions.push(Action::Reboot(power));
            MachinedError::FailedPrecondition("recorded reboot".into())
        }
    }
}
