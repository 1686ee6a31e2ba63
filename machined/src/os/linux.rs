//! [`LinuxHost`]: the real [`Host`], through nix (and the loop-device seam).

use std::ffi::CString;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::kmod::{ModuleInitFlags, finit_module};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::reboot::{RebootMode, reboot};

use super::host::{Host, Mount, Power};
use super::{loopdev, netlink};
use crate::error::MachinedError;

fn load_module(path: &Path) -> Result<(), MachinedError> {
    let file = std::fs::File::open(path).map_err(MachinedError::io("opening", path))?;
    match finit_module(&file, &CString::default(), ModuleInitFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(errno("loading the module", path)(e)),
    }
}

/// The running kernel, seen from PID 1.
#[derive(Debug, Default)]
pub struct LinuxHost {
    kmsg: Option<std::fs::File>,
}

fn errno(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(nix::errno::Errno) -> MachinedError {
    let path = path.into();
    move |errno| MachinedError::Io {
        what,
        path,
        source: errno.into(),
    }
}

fn optional(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// How much of a volume a reset overwrites: every superblock and META copy machined reads.
const WIPE_SIZE: usize = 1 << 20;

impl Host for LinuxHost {
    fn read_file(&mut self, path: &Path) -> Result<String, MachinedError> {
        std::fs::read_to_string(path).map_err(MachinedError::io("reading", path))
    }

    fn list_dir(&mut self, path: &Path) -> Result<Vec<String>, MachinedError> {
        let mut names = std::fs::read_dir(path)
            .map_err(MachinedError::io("listing", path))?
            .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
            .collect::<Vec<_>>();
        names.sort();
        Ok(names)
    }

    fn read_head(&mut self, path: &Path, length: usize) -> Result<Vec<u8>, MachinedError> {
        use std::io::Read as _;
        let file = std::fs::File::open(path).map_err(MachinedError::io("opening", path))?;
        let mut head = Vec::with_capacity(length);
        file.take(u64::try_from(length).unwrap_or(u64::MAX))
            .read_to_end(&mut head)
            .map_err(MachinedError::io("reading", path))?;
        Ok(head)
    }

    fn run(
        &mut self,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(), MachinedError> {
        let output = std::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .map_err(MachinedError::io("running", program))?;
        if output.status.success() {
            return Ok(());
        }
        Err(MachinedError::FailedPrecondition(format!(
            "{} {}: {}: {}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }

    fn write_file(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<(), MachinedError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .map_err(MachinedError::io("creating", path))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(MachinedError::io("writing", path))
    }

    fn wipe(&mut self, device: &Path) -> Result<(), MachinedError> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(device)
            .map_err(MachinedError::io("opening", device))?;
        file.write_all(&vec![0; WIPE_SIZE])
            .and_then(|()| file.sync_all())
            .map_err(MachinedError::io("wiping", device))
    }

    fn exists(&mut self, path: &Path) -> bool {
        path.exists()
    }

    fn create_dir(&mut self, path: &Path) -> Result<(), MachinedError> {
        std::fs::create_dir_all(path).map_err(MachinedError::io("creating", path))
    }

    fn copy_tree(&mut self, from: &Path, to: &Path) -> Result<(), MachinedError> {
        copy_tree(from, to)
    }

    fn mount(&mut self, m: &Mount) -> Result<(), MachinedError> {
        mount(
            optional(&m.source),
            &m.target,
            optional(&m.fstype),
            m.flags,
            optional(&m.data),
        )
        .map_err(errno("mounting", &m.target))
    }

    fn move_mount(&mut self, from: &Path, to: &Path) -> Result<(), MachinedError> {
        mount(Some(from), to, None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(errno("moving a mount to", to))
    }

    fn unmount(&mut self, target: &Path) -> Result<(), MachinedError> {
        umount2(target, MntFlags::empty()).map_err(errno("unmounting", target))
    }

    fn change_root(&mut self, new_root: &Path) -> Result<(), MachinedError> {
        nix::unistd::chdir(new_root).map_err(errno("changing directory to", new_root))?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(errno("moving the new root over", "/"))?;
        nix::unistd::chroot(".").map_err(errno("changing root to", new_root))?;
        nix::unistd::chdir("/").map_err(errno("changing directory to", "/"))
    }

    fn attach_loop(&mut self, file: &Path) -> Result<PathBuf, MachinedError> {
        loopdev::attach(file)
    }

    fn load_modules(&mut self, paths: &[PathBuf]) -> Result<(), MachinedError> {
        std::thread::scope(|scope| {
            let loads: Vec<_> = paths
                .iter()
                .map(|path| scope.spawn(move || load_module(path)))
                .collect();
            loads
                .into_iter()
                .map(|load| {
                    load.join().unwrap_or_else(|_| {
                        Err(MachinedError::FailedPrecondition(
                            "a module load panicked".into(),
                        ))
                    })
                })
                .collect::<Result<Vec<()>, _>>()
                .map(drop)
        })
    }

    fn set_sysctl(&mut self, key: &str, value: &str) -> Result<(), MachinedError> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(MachinedError::io("writing", path))
    }

    fn set_hostname(&mut self, name: &str) -> Result<(), MachinedError> {
        nix::unistd::sethostname(name).map_err(errno("setting the hostname", name))
    }

    fn link_up(&mut self, link: &str) -> Result<(), MachinedError> {
        netlink::link_up(link)
    }

    fn add_address(
        &mut self,
        link: &str,
        address: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), MachinedError> {
        netlink::add_address(link, address, prefix)
    }

    fn add_default_route(&mut self, link: &str, gateway: Ipv4Addr) -> Result<(), MachinedError> {
        netlink::add_default_route(link, gateway)
    }

    fn dhcp_lease(
        &mut self,
        link: &str,
        timeout: Duration,
    ) -> Result<Option<dhcp::Lease>, MachinedError> {
        let path = Path::new("/sys/class/net").join(link).join("address");
        let text = std::fs::read_to_string(&path).map_err(MachinedError::io("reading", &path))?;
        let mac = dhcp::parse_mac(text.trim()).ok_or_else(|| {
            MachinedError::Internal(format!("{}: not a hardware address", path.display()))
        })?;
        Ok(dhcp::acquire(link, mac, timeout)?)
    }

    fn log(&mut self, line: &str) {
        if self.kmsg.is_none() {
            self.kmsg = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/kmsg")
                .ok();
        }
        // Priority 5 (notice): printed on the console at the default log level.
        let written = self
            .kmsg
            .as_mut()
            .is_some_and(|kmsg| kmsg.write_all(format!("<5>{line}\n").as_bytes()).is_ok());
        if !written {
            eprintln!("{line}");
        }
    }

    fn alert(&mut self, line: &str) {
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/console")
            .and_then(|mut console| console.write_all(format!("{line}\n").as_bytes()));
        if written.is_err() {
            eprintln!("{line}");
        }
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn download(&mut self, url: &str) -> Result<Vec<u8>, String> {
        super::http::get(url)
    }

    fn sync(&mut self) {
        nix::unistd::sync();
    }

    fn reboot(&mut self, power: Power) -> MachinedError {
        let mode = match power {
            Power::Reboot => RebootMode::RB_AUTOBOOT,
            Power::Off => RebootMode::RB_POWER_OFF,
            Power::Kexec => RebootMode::RB_KEXEC,
        };
        if power == Power::Kexec
            && let Err(error) = reboot(mode)
        {
            self.log(&format!(
                "machined: kexec failed ({error}): rebooting through the firmware"
            ));
            return self.reboot(Power::Reboot);
        }
        match reboot(mode) {
            Ok(never) => match never {},
            Err(e) => errno("rebooting", "/")(e),
        }
    }
}

/// [`Host::copy_tree`] on this machine.
fn copy_tree(from: &Path, to: &Path) -> Result<(), MachinedError> {
    use std::os::unix::fs::PermissionsExt as _;
    let entries = std::fs::read_dir(from).map_err(MachinedError::io("reading", from))?;
    for entry in entries {
        let entry = entry.map_err(MachinedError::io("reading", from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry
            .file_type()
            .map_err(MachinedError::io("reading", &source))?;
        if kind.is_symlink() {
            let link =
                std::fs::read_link(&source).map_err(MachinedError::io("reading", &source))?;
            std::os::unix::fs::symlink(link, &target)
                .map_err(MachinedError::io("linking", &target))?;
            continue;
        }
        let mode = entry
            .metadata()
            .map_err(MachinedError::io("reading", &source))?
            .permissions()
            .mode();
        if kind.is_dir() {
            std::fs::create_dir(&target).map_err(MachinedError::io("creating", &target))?;
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(MachinedError::io("copying", &target))?;
        }
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .map_err(MachinedError::io("setting the mode of", &target))?;
    }
    Ok(())
}
