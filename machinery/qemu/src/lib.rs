//! Boots a talos-rs image in QEMU: kernel + initramfs, or a disk image; serial console to a log
//! file; virtio-net user networking with apid's port 50000 forwarded to a loopback port;
//! virtio-rng; an i6300esb watchdog. The VM is killed (by PID) when its [`Vm`] is dropped.
//!
//! Acceleration: KVM hangs guests on this project's machines, so [`Accel::probe`] boots the
//! kernel under KVM with a short timeout and falls back to TCG unless the kernel gets going.
//! `TALOS_RS_ACCEL=tcg|kvm` skips the probe.
//!
//! Limits: x86_64 guests only; one NIC (user networking), so VMs cannot talk to each other.

use std::io::{Read as _, Seek as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What went wrong with a VM.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "VM {name}: {pattern:?} did not appear on the console within {timeout:?} (see {console}); \
         its last lines:\n{tail}"
    )]
    Timeout {
        name: String,
        pattern: String,
        timeout: Duration,
        console: PathBuf,
        tail: String,
    },
    #[error("VM {name} exited: {status}")]
    Exited { name: String, status: String },
    #[error("VM {name}: {problem}")]
    Config { name: String, problem: String },
}

fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> QemuError {
    let path = path.into();
    move |source| QemuError::Io { what, path, source }
}

/// QEMU's accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// KVM if a guest kernel makes progress under it within a few seconds, else TCG (the
    /// answer is computed once per process).
    pub fn probe(kernel: &Path) -> Accel {
        static PROBED: OnceLock<Accel> = OnceLock::new();
        *PROBED.get_or_init(|| match std::env::var("TALOS_RS_ACCEL").as_deref() {
            Ok("tcg") => Accel::Tcg,
            Ok("kvm") => Accel::Kvm,
            _ => probe_kvm(kernel),
        })
    }

    /// QEMU's arguments for this accelerator.
    /// Guest vCPUs: two under KVM; one under TCG, where a second vCPU thread competes with the
    /// first for the host's cores, and a guest whose lock holder is descheduled stalls (soft
    /// lockups, boots past any timeout on a loaded 2-core host).
    pub fn vcpus(self) -> &'static str {
        match self {
            Accel::Kvm => "2",
            Accel::Tcg => "1",
        }
    }

    pub fn args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }
}

/// Boots `kernel` without an initramfs under KVM: a working KVM reaches the "no root" panic
/// (or at least the first console lines) quickly; a hanging one prints nothing.
fn probe_kvm(kernel: &Path) -> Accel {
    if !Path::new("/dev/kvm").exists() {
        return Accel::Tcg;
    }
    let Ok(dir) = std::env::temp_dir().canonicalize() else {
        return Accel::Tcg;
    };
    let console = dir.join(format!("talos-rs-kvm-probe-{}.log", std::process::id()));
    let child = Command::new("qemu-system-x86_64")
        .args(Accel::Kvm.args())
        .args([
            "-m",
            "256",
            "-nographic",
            "-no-reboot",
            "-display",
            "none",
            "-monitor",
            "none",
        ])
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return Accel::Tcg;
    };
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut accel = Accel::Tcg;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&console).unwrap_or_default();
        if text.contains("Kernel panic") || text.contains("Run /init") || text.contains("VFS:") {
            accel = Accel::Kvm;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&console);
    accel
}

/// How the VM boots.
#[derive(Debug, Clone)]
pub enum Boot {
    /// Direct kernel boot: kernel, initramfs, command line.
    Kernel {
        kernel: PathBuf,
        initramfs: PathBuf,
        cmdline: String,
    },
    /// Firmware (SeaBIOS) boots the disk's own boot loader.
    Disk,
    /// UEFI firmware (OVMF, no Secure Boot) boots the disk's EFI system partition; its
    /// variables live in a copy in the VM's folder.
    UefiDisk,
    /// UEFI firmware boots this ISO's EFI El Torito entry from a CD-ROM drive.
    UefiIso(PathBuf),
    /// Firmware boots this ISO from a CD-ROM drive (the first boot; reboots try the disk first).
    Iso(PathBuf),
    /// OVMF with Secure Boot enforced (q35, SMM, secure pflash) boots the disk's EFI system
    /// partition, or the EFI ISO `cdrom` when given; its variables start from a copy of `vars`
    /// (the signer's certificate enrolled in db), made in the VM's folder.
    SecureBoot {
        vars: PathBuf,
        cdrom: Option<PathBuf>,
    },
}

/// OVMF's Secure Boot build (Debian's `ovmf`), for [`Boot::SecureBoot`].
pub const OVMF_SECURE_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";

/// UEFI firmware as two pflash drives: `code` read-only, and the VM's own copy of `vars` (made
/// in `dir`), which the firmware writes.
fn firmware(command: &mut Command, code: &str, vars: &Path, dir: &Path) -> Result<(), QemuError> {
    let copy = dir.join("OVMF_VARS.fd");
    std::fs::copy(vars, &copy).map_err(io("copying", vars))?;
    command
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={code}"
        ))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            copy.display()
        ));
    Ok(())
}

/// A VM to start.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Names the VM's folder under `out_dir` (console log, pid file).
    pub name: String,
    pub out_dir: PathBuf,
    pub boot: Boot,
    /// The system disk (virtio-blk), if any.
    pub disk: Option<PathBuf>,
    /// The kernel used by the KVM probe.
    pub probe_kernel: PathBuf,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Host loopback port forwarded to the guest's 50000 (0: pick a free one).
    pub api_port: u16,
    /// The user network's address range.
    pub network: UserNet,
    /// Guest connections to the services' addresses, each served by a host command.
    pub host_services: Vec<HostService>,
}

/// The virtual network of QEMU's user networking (`-netdev user,net=…`): the host (gateway)
/// is its 2nd address and its DHCP server gives the guest the 15th, as in QEMU's default
/// 10.0.2.0/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserNet {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl UserNet {
    /// QEMU's default range, 10.0.2.0/24 (the guest is 10.0.2.15).
    pub const DEFAULT: UserNet = UserNet {
        address: Ipv4Addr::new(10, 0, 2, 0),
        prefix: 24,
    };

    /// The address the guest gets by DHCP.
    pub fn guest(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) + 15)
    }

    /// Whether `address` lies in the range (libslirp forwards only such addresses).
    pub fn contains(self, address: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(address) & mask == u32::from(self.address) & mask
    }

    /// `net=…,host=…,dhcpstart=…` for `-netdev user`.
    fn netdev_options(self) -> String {
        let host = Ipv4Addr::from(u32::from(self.address) + 2);
        format!(
            "net={}/{},host={host},dhcpstart={}",
            self.address,
            self.prefix,
            self.guest()
        )
    }
}

/// Guest connections to `address:port` are served by `command`, started on the host for each
/// one with its stdin and stdout being the connection (QEMU's `guestfwd=…-cmd:`): the only way
/// out of the guest that user networking allows here. The address must lie in the VM's
/// [`UserNet`]; the command must not contain commas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostService {
    pub address: Ipv4Addr,
    pub port: u16,
    pub command: String,
}

impl HostService {
    /// A service at [`HOST_SERVICES`]`:port` (QEMU's default range).
    pub fn at_host(port: u16, command: String) -> HostService {
        HostService {
            address: HOST_SERVICES,
            port,
            command,
        }
    }
}

/// Debian's OVMF (package `ovmf`): the firmware code and its variable store's template.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The guest-side address of [`HostService::at_host`] in [`UserNet::DEFAULT`].
pub const HOST_SERVICES: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 100);

/// What some VMs have besides a [`VmConfig`].
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Guest ports each forwarded from a free host loopback port (besides apid's).
    pub guest_ports: Vec<u16>,
    /// Raw disk files attached after the system disk (`/dev/vdb`, `/dev/vdc` …).
    pub raw_disks: Vec<PathBuf>,
}

/// A running VM; killed when dropped.
#[derive(Debug)]
pub struct Vm {
    pub name: String,
    pub console: PathBuf,
    /// `127.0.0.1:<port>` forwarded to the guest's apid.
    pub api: SocketAddr,
    /// `(guest port, 127.0.0.1:<port>)` for each of [`Extras::guest_ports`].
    pub forwarded: Vec<(u16, SocketAddr)>,
    pub accel: Accel,
    pub started: Instant,
    child: Child,
}

impl Vm {
    /// Starts QEMU; returns as soon as the process runs.
    pub fn start(config: &VmConfig) -> Result<Vm, QemuError> {
        Vm::start_with(config, &Extras::default())
    }

    /// [`Vm::start`] with `extras`.
    pub fn start_with(config: &VmConfig, extras: &Extras) -> Result<Vm, QemuError> {
        let dir = config.out_dir.join(&config.name);
        std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let console = dir.join("console.log");
        let _ = std::fs::remove_file(&console);
        let port = match config.api_port {
            0 => free_port().map_err(io("finding a free port on", "127.0.0.1"))?,
            port => port,
        };
        if let Some(service) = config
            .host_services
            .iter()
            .find(|s| !config.network.contains(s.address) || s.command.contains(','))
        {
            return Err(QemuError::Config {
                name: config.name.clone(),
                problem: format!(
                    "host service {}:{} must lie in {}/{} and its command hold no comma: {:?}",
                    service.address,
                    service.port,
                    config.network.address,
                    config.network.prefix,
                    service.command
                ),
            });
        }
        let mut forwarded = Vec::with_capacity(extras.guest_ports.len());
        for &guest in &extras.guest_ports {
            let host = free_port().map_err(io("finding a free port on", "127.0.0.1"))?;
            forwarded.push((guest, SocketAddr::from((Ipv4Addr::LOCALHOST, host))));
        }
        let accel = Accel::probe(&config.probe_kernel);
        let mut command = Command::new("qemu-system-x86_64");
        command
            .args(accel.args())
            .args(["-m", &config.memory_mib.to_string()])
            .args(["-smp", accel.vcpus()])
            .args(["-nographic", "-display", "none", "-monitor", "none"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .args([
                "-netdev",
                // restrict=on: the guest reaches nothing outside; only the forwarded port in and
                // the host services out.
                &format!(
                    "user,id=net0,restrict=on,{},hostfwd=tcp:127.0.0.1:{port}-:50000{}{}",
                    config.network.netdev_options(),
                    forwarded
                        .iter()
                        .map(|(guest, host)| format!(
                            ",hostfwd=tcp:127.0.0.1:{}-:{guest}",
                            host.port()
                        ))
                        .collect::<String>(),
                    config
                        .host_services
                        .iter()
                        .map(|s| format!(
                            ",guestfwd=tcp:{}:{}-cmd:{}",
                            s.address, s.port, s.command
                        ))
                        .collect::<String>()
                ),
            ])
            .args(["-device", "virtio-net-pci,netdev=net0"])
            .args(["-device", "virtio-rng-pci"])
            // A hardware watchdog, as upstream's QEMU nodes have: inert until the guest arms
            // it (WatchdogTimerConfig), then it resets a guest that stops feeding it.
            .args(["-device", "i6300esb"]);
        if let Boot::Kernel {
            kernel,
            initramfs,
            cmdline,
        } = &config.boot
        {
            command
                .arg("-kernel")
                .arg(kernel)
                .arg("-initrd")
                .arg(initramfs)
                .args(["-append", cmdline]);
        }
        if let Boot::UefiDisk | Boot::UefiIso(_) = &config.boot {
            firmware(&mut command, OVMF_CODE, Path::new(OVMF_VARS), &dir)?;
        }
        if let Boot::UefiIso(iso) = &config.boot {
            command.arg("-cdrom").arg(iso);
        }
        if let Boot::Iso(iso) = &config.boot {
            // The CD-ROM boots once; a reboot then tries the disk first (an installed system)
            // and falls back to the CD-ROM when the disk is not bootable.
            command
                .arg("-cdrom")
                .arg(iso)
                .args(["-boot", "order=cd,once=d"]);
        }
        if let Boot::SecureBoot { vars, cdrom } = &config.boot {
            if let Some(iso) = cdrom {
                command.arg("-cdrom").arg(iso);
            }
            command
                .args(["-machine", "q35,smm=on"])
                .args(["-global", "driver=cfi.pflash01,property=secure,value=on"]);
            firmware(&mut command, OVMF_SECURE_CODE, vars, &dir)?;
        }
        if let Some(disk) = &config.disk {
            let format = if disk.extension().is_some_and(|e| e == "qcow2") {
                "qcow2"
            } else {
                "raw"
            };
            command.args([
                "-drive",
                &format!(
                    "file={},format={format},if=virtio,cache=unsafe",
                    disk.display()
                ),
            ]);
        }
        for disk in &extras.raw_disks {
            command.args([
                "-drive",
                &format!("file={},format=raw,if=virtio,cache=unsafe", disk.display()),
            ]);
        }
        let log = dir.join("qemu.log");
        let stderr = std::fs::File::create(&log).map_err(io("creating", &log))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(io("starting", "qemu-system-x86_64"))?;
        let pid_file = dir.join("qemu.pid");
        std::fs::write(&pid_file, child.id().to_string()).map_err(io("writing", &pid_file))?;
        Ok(Vm {
            name: config.name.clone(),
            console,
            api: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            forwarded,
            accel,
            started: Instant::now(),
            child,
        })
    }

    /// The QEMU process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The console log so far.
    pub fn console_text(&self) -> String {
        let mut text = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.console) {
            let _ = file.rewind();
            let _ = file.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    /// Waits until the console shows `pattern` after byte `from`; returns the whole log.
    pub fn wait_for_console(
        &mut self,
        pattern: &str,
        from: usize,
        timeout: Duration,
    ) -> Result<String, QemuError> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.console_text();
            if text.get(from..).is_some_and(|t| t.contains(pattern)) {
                return Ok(text);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(QemuError::Exited {
                    name: self.name.clone(),
                    status: status.to_string(),
                });
            }
            if Instant::now() >= deadline {
                return Err(QemuError::Timeout {
                    name: self.name.clone(),
                    pattern: pattern.to_string(),
                    timeout,
                    console: self.console.clone(),
                    tail: last_lines(&text, 60),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// QEMU's exit status, once it has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// Kills QEMU (SIGKILL by PID) and waits for it.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The last `count` lines of `text`: what a timed-out wait shows of the console. Kernel
/// backtraces and register dumps (a soft lockup prints dozens of lines at a time) are left out,
/// each run of them replaced by one line saying so, so that what the system last did stays in
/// view.
fn last_lines(text: &str, count: usize) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut left_out = 0;
    for line in text.lines() {
        if is_kernel_dump_line(line) {
            left_out += 1;
            continue;
        }
        if left_out > 0 {
            kept.push(format!("({left_out} lines of kernel backtrace left out)"));
            left_out = 0;
        }
        kept.push(line.to_string());
    }
    if left_out > 0 {
        kept.push(format!("({left_out} lines of kernel backtrace left out)"));
    }
    kept[kept.len().saturating_sub(count)..].join("\n")
}

/// A line of a kernel stack trace or register dump: `[  1.2] ? func+0x3c/0x80`, `RIP: …`.
fn is_kernel_dump_line(line: &str) -> bool {
    let Some(message) = line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .map(|(_, message)| message.trim_start())
    else {
        return false;
    };
    const DUMP_STARTS: [&str; 20] = [
        "? ",
        "<TASK>",
        "</TASK>",
        "<IRQ>",
        "</IRQ>",
        "Call Trace:",
        "RIP:",
        "RSP:",
        "RAX:",
        "RDX:",
        "RBP:",
        "R10:",
        "R13:",
        "FS:",
        "CS:",
        "CR2:",
        "DR0:",
        "DR3:",
        "PKRU:",
        "Code:",
    ];
    DUMP_STARTS.iter().any(|start| message.starts_with(start))
        || message
            .split_once("+0x")
            .is_some_and(|(function, offset)| !function.contains(' ') && offset.contains("/0x"))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::{UserNet, last_lines};

    #[test]
    fn a_user_network_gives_the_guest_its_15th_address_and_holds_its_range() {
        assert_eq!(UserNet::DEFAULT.guest(), Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(
            UserNet::DEFAULT.netdev_options(),
            "net=10.0.2.0/24,host=10.0.2.2,dhcpstart=10.0.2.15"
        );
        // 168.0.0.0/7 holds both Azure's wire server and the link-local metadata address.
        let wide = UserNet {
            address: Ipv4Addr::new(168, 0, 0, 0),
            prefix: 7,
        };
        assert!(wide.contains(Ipv4Addr::new(168, 63, 129, 16)));
        assert!(wide.contains(Ipv4Addr::new(169, 254, 169, 254)));
        assert!(!wide.contains(Ipv4Addr::new(170, 0, 0, 1)));
        assert!(!UserNet::DEFAULT.contains(Ipv4Addr::new(10, 0, 3, 1)));
    }

    #[test]
    fn a_timeout_shows_what_came_around_a_kernel_backtrace_not_the_backtrace() {
        let console = "[    1.0] machined: PID 1 started\n\
            [  156.9] watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [apid:301]\n\
            [  156.9] RIP: 0010:kmalloc_trace+0x26/0x90\n\
            [  156.9] Call Trace:\n\
            [  156.9]  <TASK>\n\
            [  156.9]  ? apparmor_sk_alloc_security+0x3c/0x80\n\
            [  156.9]  kmalloc_trace+0x26/0x90\n\
            [  156.9]  </TASK>\n\
            [  160.2] machined: etcd: started";
        assert_eq!(
            last_lines(console, 3),
            "[  156.9] watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [apid:301]\n\
             (6 lines of kernel backtrace left out)\n\
             [  160.2] machined: etcd: started"
        );
    }
}
