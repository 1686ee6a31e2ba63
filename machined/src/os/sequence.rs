//! The boot sequence of OS mode, phase by phase, over a [`Host`]. Every phase is logged to the
//! kernel log with its duration and when it ended (`machined: phase <name> done in <ms> ms, at
//! <ms> ms`, since PID 1 started), which is what the serial console shows and what
//! `cargo xtask bench-boot` reads.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::MsFlags;

use super::cmdline::Cmdline;
use super::host::{Host, Mount, Power};
use super::kspp;
use crate::error::MachinedError;

/// The root filesystem image inside the initramfs.
pub const SQUASHFS: &str = "/rootfs.sqsh";
/// Where the SquashFS is mounted before it becomes `/`.
pub const SYSROOT: &str = "/sysroot";
/// Modules and their load order, in the initramfs and again in the root filesystem:
/// `load-order` has one line per level, dependencies first; the modules of one line (file
/// names, space-separated) do not depend on each other and load concurrently.
pub const MODULES: &str = "/lib/modules";
/// The root filesystem of the system services' containers: the SquashFS bound again without
/// the mounts below `/`, so a container sees only the paths its spec binds in.
pub const TASK_ROOT: &str = "/system/rootfs";
/// `/etc`, in memory over the read-only root and filled from it at every boot: machined writes
/// the Kubernetes files, containerd's CRI files and the `EtcFileConfig` files there.
pub const ETC: &str = "/etc";
/// What the ISO's GRUB hands over for an install (kernel, initramfs, command line), in the
/// initramfs ...
pub const INSTALL_FILES: &str = "/install";
/// ... and where they are once the SquashFS is `/` (its empty `/boot`, bound over).
pub const INSTALL_MEDIA: &str = "/boot";
/// How long a fatal error stays on the console before the reboot.
pub const FATAL_DELAY: Duration = Duration::from_secs(10);

/// How long the boot waits for a DHCP lease when the kernel command line has no `ip=`.
pub const DHCP_TIMEOUT: Duration = Duration::from_secs(15);
/// The link the boot gives the node's first address to.
const FIRST_LINK: &str = "eth0";

/// What the early boot found out about the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub cmdline: Cmdline,
    /// The node's IPv4 address (where apid listens), loopback when there is no network.
    pub address: Ipv4Addr,
    pub hostname: String,
    /// The platform (`talos.platform=` or detected).
    pub platform: String,
    /// What the platform said about the instance.
    pub platform_metadata: Option<crate::controllers::PlatformMetadataSpec>,
    /// Why the platform's user data did not become the config.
    pub user_data_problem: Option<String>,
    /// The platform's network as `machine.network` YAML.
    pub platform_network: Option<String>,
    /// What is mounted on `/system` and below, outermost first (unmounted in reverse).
    pub mounts: Vec<PathBuf>,
    /// BOOT and META and the slot GRUB booted, when the node booted from its system disk.
    pub system_disk: Option<crate::upgrade::SystemDisk>,
    /// The install files, when the node booted from the ISO.
    pub install_media: Option<PathBuf>,
}

/// Runs `work` as the phase `name`, logging its duration (or its failure).
pub fn phase<H: Host, T>(
    host: &mut H,
    name: &str,
    work: impl FnOnce(&mut H) -> Result<T, MachinedError>,
) -> Result<T, MachinedError> {
    let started = Instant::now();
    let result = work(host);
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let at = crate::boot_clock::since_start_ms();
    match &result {
        Ok(_) => host.log(&format!(
            "machined: phase {name} done in {took:.1} ms, at {at:.1} ms"
        )),
        Err(error) => host.log(&format!(
            "machined: phase {name} failed after {took:.1} ms, at {at:.1} ms: {error}"
        )),
    }
    result
}

/// The pseudo filesystems every later step needs.
fn pseudo_mounts() -> Vec<Mount> {
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    vec![
        Mount::new(
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MsFlags::MS_NOSUID,
            "mode=0755",
        ),
        Mount::new("proc", "/proc", "proc", hardened, ""),
        Mount::new("sysfs", "/sys", "sysfs", hardened, ""),
        Mount::new(
            "tmpfs",
            "/run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            "mode=0755",
        ),
        Mount::new(
            "tmpfs",
            "/tmp",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            "mode=1777",
        ),
    ]
}

/// The initramfs stage: pseudo filesystems, hardening check, boot modules, then the SquashFS
/// becomes `/`. Outside an initramfs (no SquashFS) only the pseudo filesystems are mounted.
pub fn early<H: Host>(host: &mut H, version: &str) -> Result<Cmdline, MachinedError> {
    phase(host, "mountPseudo", |host| {
        for mount in pseudo_mounts() {
            host.create_dir(&mount.target)?;
            host.mount(&mount)?;
        }
        Ok(())
    })?;
    let cmdline = Cmdline::parse(&host.read_file(Path::new("/proc/cmdline"))?);
    // Without this the kernel drops all but a burst of our lines; `printk.devkmsg=` on the
    // command line decides instead (and makes the sysctl refuse writes).
    if cmdline.get("printk.devkmsg").is_none()
        && let Err(error) = host.set_sysctl("kernel.printk_devkmsg", "on")
    {
        host.alert(&format!("machined: {error}"));
    }
    host.log(&format!("machined: PID 1 started, version {version}"));
    host.log(&format!(
        "machined: consoles {}",
        cmdline.all("console").join(" ")
    ));
    phase(host, "systemRequirements", |_| {
        let missing = cmdline.missing_hardening();
        if missing.is_empty() {
            return Ok(());
        }
        Err(MachinedError::FailedPrecondition(format!(
            "the kernel command line lacks required hardening options: {} (add them to the \
             boot loader's command line)",
            missing.join(" ")
        )))
    })?;
    if !host.exists(Path::new(SQUASHFS)) {
        return Ok(cmdline);
    }
    phase(host, "loadModules", |host| {
        load_modules(host, Path::new(MODULES))
    })?;
    phase(host, "mountRoot", |host| {
        let device = host.attach_loop(Path::new(SQUASHFS))?;
        host.mount(&Mount::new(
            &device.display().to_string(),
            SYSROOT,
            "squashfs",
            MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
            "",
        ))?;
        if host.exists(&Path::new(INSTALL_FILES).join("vmlinuz")) {
            host.mount(&Mount::new(
                INSTALL_FILES,
                &format!("{SYSROOT}{INSTALL_MEDIA}"),
                "",
                MsFlags::MS_BIND,
                "",
            ))?;
        }
        for mount in pseudo_mounts() {
            host.move_mount(
                &mount.target,
                &Path::new(SYSROOT).join(mount.target.strip_prefix("/").unwrap_or(&mount.target)),
            )?;
        }
        host.change_root(Path::new(SYSROOT))
    })?;
    Ok(cmdline)
}

/// Loads the modules `dir/load-order` lists, level by level.
pub fn load_modules<H: Host>(host: &mut H, dir: &Path) -> Result<(), MachinedError> {
    let order = host.read_file(&dir.join("load-order"))?;
    for level in order.lines() {
        let paths: Vec<PathBuf> = level
            .split_whitespace()
            .map(|name| dir.join(name))
            .collect();
        if !paths.is_empty() {
            host.load_modules(&paths)?;
        }
    }
    Ok(())
}

/// The root stage: sysctls, writable `/system` and `/var`, loopback and the node address.
pub fn root<H: Host>(host: &mut H, cmdline: Cmdline) -> Result<Node, MachinedError> {
    phase(host, "sysctls", |host| {
        for (key, value) in kspp::SYSCTLS {
            if let Err(error) = host.set_sysctl(key, value) {
                host.log(&format!("machined: cannot set {key}={value}: {error}"));
            }
        }
        Ok(())
    })?;
    phase(host, "mountSystem", |host| {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        host.mount(&Mount::new("tmpfs", "/system", "tmpfs", flags, "mode=0755"))?;
        host.create_dir(Path::new(TASK_ROOT))?;
        host.mount(&Mount::new("/", TASK_ROOT, "", MsFlags::MS_BIND, ""))?;
        host.mount(&Mount::new(
            "tmpfs",
            ETC,
            "tmpfs",
            flags | MsFlags::MS_NOEXEC,
            "mode=0755",
        ))?;
        host.copy_tree(&Path::new(TASK_ROOT).join("etc"), Path::new(ETC))?;
        // containerd's tasks get their cgroups (and memory limits) below it.
        let hardened = flags | MsFlags::MS_NOEXEC;
        host.mount(&Mount::new(
            "cgroup2",
            "/sys/fs/cgroup",
            "cgroup2",
            hardened,
            "nsdelegate",
        ))
    })?;
    let mut mounts = ["/system", TASK_ROOT, ETC].map(PathBuf::from).to_vec();
    // Booted from the ISO, the node leaves every disk alone until it installs to one.
    let install_media = Path::new(INSTALL_MEDIA).join("vmlinuz");
    let install_media = host
        .exists(&install_media)
        .then(|| PathBuf::from(INSTALL_MEDIA));
    let use_disks = install_media.is_none();
    mounts.extend(phase(host, "volumes", |host| {
        super::disks::mount_volumes(host, use_disks)
    })?);
    let system_disk = system_disk(host, &cmdline)?;
    let (address, hostname) = phase(host, "network", |host| network(host, &cmdline))?;
    let (platform, outcome) = phase(host, "platform", |host| {
        let platform = super::platform::detect(host, &cmdline)?;
        let base = super::cloud::METADATA_BASE;
        let outcome = super::platform::fetch_config(host, &platform, &cmdline, &hostname, base)?;
        Ok((platform, outcome))
    })?;
    Ok(Node {
        cmdline,
        address,
        hostname: outcome.hostname.unwrap_or(hostname),
        platform,
        platform_metadata: outcome.metadata,
        user_data_problem: outcome.user_data_problem,
        platform_network: outcome.network_yaml,
        mounts,
        system_disk,
        install_media,
    })
}

/// BOOT and META of the disk GRUB booted from (`BOOT_IMAGE=/A/vmlinuz` names the slot).
fn system_disk<H: Host>(
    host: &mut H,
    cmdline: &Cmdline,
) -> Result<Option<crate::upgrade::SystemDisk>, MachinedError> {
    let Some(slot) = cmdline
        .get("BOOT_IMAGE")
        .and_then(crate::upgrade::Slot::from_boot_image)
    else {
        return Ok(None);
    };
    let partitions = super::disks::partitions(host)?;
    Ok(match (partitions.get("BOOT"), partitions.get("META")) {
        (Some(boot), Some(meta)) => {
            host.log(&format!(
                "machined: booted slot {} of the system disk",
                slot.label()
            ));
            Some(crate::upgrade::SystemDisk::new(
                boot.clone(),
                meta.clone(),
                slot,
            ))
        }
        _ => None,
    })
}

/// The node's first address: `ip=` as given, else a DHCP lease on the first link (as upstream
/// does when nothing configures the network); loopback only when neither gives one.
fn network<H: Host>(host: &mut H, cmdline: &Cmdline) -> Result<(Ipv4Addr, String), MachinedError> {
    host.link_up("lo")?;
    let configured = match cmdline.static_address() {
        Some(Ok(address)) => Some(address),
        Some(Err(problem)) => {
            host.log(&format!("machined: ignoring {problem}"));
            None
        }
        None => None,
    };
    let device = configured
        .as_ref()
        .map_or(FIRST_LINK.to_string(), |a| a.device.clone());
    let mut hostname = configured.as_ref().and_then(|a| a.hostname.clone());
    let address = if !host.exists(&Path::new("/sys/class/net").join(&device)) {
        host.log(&format!(
            "machined: no link {device}: the node only has loopback"
        ));
        Ipv4Addr::LOCALHOST
    } else {
        host.link_up(&device)?;
        let assigned = match configured {
            Some(a) => Some((a.address, a.prefix, a.gateway, "ip=".to_string())),
            None => lease(host, &device).map(|lease| {
                hostname = lease.hostname;
                let from = format!("DHCP from {}", lease.server);
                (
                    lease.address.addr(),
                    lease.address.prefix_len(),
                    lease.router,
                    from,
                )
            }),
        };
        match assigned {
            Some((address, prefix, gateway, from)) => {
                host.add_address(&device, address, prefix)?;
                if let Some(gateway) = gateway {
                    host.add_default_route(&device, gateway)?;
                }
                host.log(&format!(
                    "machined: {device} has {address}/{prefix} ({from})"
                ));
                address
            }
            None => Ipv4Addr::LOCALHOST,
        }
    };
    let hostname = cmdline
        .get("talos.hostname")
        .map(str::to_string)
        .or(hostname)
        .unwrap_or_else(|| format!("talos-{}", address.to_string().replace('.', "-")));
    host.set_hostname(&hostname)?;
    Ok((address, hostname))
}

/// A DHCP lease on `device`, or `None` (logged) when none came within [`DHCP_TIMEOUT`].
fn lease<H: Host>(host: &mut H, device: &str) -> Option<dhcp::Lease> {
    match host.dhcp_lease(device, DHCP_TIMEOUT) {
        Ok(Some(lease)) => Some(lease),
        Ok(None) => {
            host.log(&format!(
                "machined: no DHCP server answered on {device} within {} s: the node only has loopback",
                DHCP_TIMEOUT.as_secs()
            ));
            None
        }
        Err(error) => {
            host.log(&format!("machined: {error}: the node only has loopback"));
            None
        }
    }
}

/// Ends the node after every service stopped: sync, unmount `mounts` (innermost last in the
/// list, so unmounted first), sync, reboot(2). Returns only if reboot(2) failed.
pub fn stop<H: Host>(
    host: &mut H,
    mounts: &[PathBuf],
    wipe: &[PathBuf],
    power: Power,
) -> MachinedError {
    host.log(&format!("machined: all services stopped; {power:?}"));
    host.sync();
    for target in mounts.iter().rev() {
        if let Err(error) = host.unmount(target) {
            // Still busy (open log files): at least leave it clean.
            let remount = Mount::new(
                "",
                &target.display().to_string(),
                "",
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                "",
            );
            if let Err(again) = host.mount(&remount) {
                host.log(&format!("machined: {error}; {again}"));
            }
        }
    }
    for device in wipe {
        match host.wipe(device) {
            Ok(()) => host.log(&format!("machined: reset: wiped {}", device.display())),
            Err(error) => host.alert(&format!("machined: reset: {error}")),
        }
    }
    host.sync();
    host.reboot(power)
}

/// A fatal boot error: say so on the console, wait so a person can read it, reboot.
pub fn fatal<H: Host>(host: &mut H, error: &MachinedError) -> MachinedError {
    host.alert(&format!("machined: FATAL: {error}"));
    host.alert(&format!(
        "machined: rebooting in {} s",
        FATAL_DELAY.as_secs()
    ));
    host.sleep(FATAL_DELAY);
    host.sync();
    host.reboot(Power::Reboot)
}

#[cfg(test)]
mod tests {
    use super::super::host::{Action, RecordingHost};
    use super::*;

    const CMDLINE: &str =
        "init_on_alloc=1 slab_nomerge pti=on console=ttyS0 talos.platform=metal\n";

    fn initramfs() -> RecordingHost {
        RecordingHost::default()
            .with_file("/proc/cmdline", CMDLINE)
            .with_file("/rootfs.sqsh", "")
            .with_file(
                "/lib/modules/load-order",
                "loop.ko virtio.ko\nvirtio_pci.ko\n",
            )
    }

    #[test]
    fn printk_devkmsg_is_set_unless_the_command_line_decides() {
        let devkmsg = Action::Sysctl("kernel.printk_devkmsg".into(), "on".into());
        let mut host = initramfs();
        early(&mut host, "test").unwrap();
        assert!(host.effects().contains(&devkmsg));
        let cmdline = format!("{} printk.devkmsg=on", CMDLINE.trim_end());
        let mut host = initramfs().with_file("/proc/cmdline", &cmdline);
        early(&mut host, "test").unwrap();
        assert!(!host.effects().contains(&devkmsg));
    }

    #[test]
    fn early_boot_mounts_loads_modules_in_order_and_switches_root() {
        let mut host = initramfs();
        let cmdline = early(&mut host, "test").unwrap();
        assert_eq!(cmdline.get("talos.platform"), Some("metal"));
        let effects = host.effects();
        let position = |action: &Action| effects.iter().position(|a| a == action).unwrap();
        let devtmpfs = Mount::new(
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MsFlags::MS_NOSUID,
            "mode=0755",
        );
        assert!(
            position(&Action::Mount(devtmpfs))
                < position(&Action::LoadModule("/lib/modules/virtio.ko".into()))
        );
        assert!(
            position(&Action::LoadModule("/lib/modules/virtio.ko".into()))
                < position(&Action::LoadModule("/lib/modules/virtio_pci.ko".into()))
        );
        let tail: Vec<Action> = effects[effects.len() - 8..].to_vec();
        assert_eq!(
            tail,
            vec![
                Action::AttachLoop("/rootfs.sqsh".into()),
                Action::Mount(Mount::new(
                    "/dev/loop0",
                    "/sysroot",
                    "squashfs",
                    MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
                    ""
                )),
                Action::MoveMount("/dev".into(), "/sysroot/dev".into()),
                Action::MoveMount("/proc".into(), "/sysroot/proc".into()),
                Action::MoveMount("/sys".into(), "/sysroot/sys".into()),
                Action::MoveMount("/run".into(), "/sysroot/run".into()),
                Action::MoveMount("/tmp".into(), "/sysroot/tmp".into()),
                Action::ChangeRoot("/sysroot".into()),
            ]
        );
        let logs = host.logs();
        for phase in [
            "mountPseudo",
            "systemRequirements",
            "loadModules",
            "mountRoot",
        ] {
            assert!(
                logs.iter()
                    .any(|l| l.starts_with(&format!("machined: phase {phase} done in "))),
                "{logs:?}"
            );
        }
    }

    #[test]
    fn refuses_to_boot_without_hardening_options_and_reboots_after_a_delay() {
        let mut host = initramfs().with_file("/proc/cmdline", "console=ttyS0 pti=on");
        let error = early(&mut host, "test").unwrap_err();
        assert!(
            error.to_string().contains("init_on_alloc=1 slab_nomerge"),
            "{error}"
        );
        assert!(
            !host
                .effects()
                .iter()
                .any(|a| matches!(a, Action::LoadModule(_) | Action::ChangeRoot(_)))
        );
        let actions_before = host.actions.len();
        fatal(&mut host, &error);
        let after = host.actions[actions_before..].to_vec();
        assert!(
            matches!(&after[0], Action::Alert(line) if line.starts_with("machined: FATAL: the kernel command line lacks"))
        );
        assert_eq!(
            after[2..].to_vec(),
            vec![
                Action::Sleep(FATAL_DELAY),
                Action::Sync,
                Action::Reboot(Power::Reboot)
            ]
        );
    }

    #[test]
    fn booted_from_the_iso_the_install_files_follow_the_root_and_disks_are_left_alone() {
        let mut host = initramfs().with_file("/install/vmlinuz", "kernel");
        early(&mut host, "test").unwrap();
        let effects = host.effects();
        let bind = Action::Mount(Mount::new(
            "/install",
            "/sysroot/boot",
            "",
            MsFlags::MS_BIND,
            "",
        ));
        let bound = effects.iter().position(|a| *a == bind).unwrap();
        let switched = effects
            .iter()
            .position(|a| *a == Action::ChangeRoot("/sysroot".into()))
            .unwrap();
        assert!(bound < switched);

        let mut host = RecordingHost::default()
            .with_file("/boot/vmlinuz", "kernel")
            .with_file(
                "/sys/class/block/vda5/uevent",
                "DEVNAME=vda5\nPARTN=5\nPARTNAME=STATE\n",
            );
        let node = root(&mut host, Cmdline::parse(CMDLINE)).unwrap();
        assert_eq!(node.install_media, Some(PathBuf::from("/boot")));
        assert!(!node.mounts.contains(&PathBuf::from("/system/state")));
        assert!(
            host.logs()
                .iter()
                .any(|l| l.contains("booted from the install medium"))
        );
    }

    #[test]
    fn root_stage_sets_sysctls_and_the_address_of_a_dhcp_lease() {
        let mut host = RecordingHost {
            lease: Some(dhcp::Lease {
                address: "10.0.2.15/24".parse().unwrap(),
                router: Some(Ipv4Addr::new(10, 0, 2, 2)),
                dns: vec![],
                server: Ipv4Addr::new(10, 0, 2, 2),
                hostname: None,
                mtu: None,
                lease_seconds: 86_400,
                renew_seconds: 43_200,
                rebind_seconds: 75_600,
                acquired: std::time::SystemTime::now(),
                renewals: 0,
            }),
            ..RecordingHost::default()
        };
        host.present.push("/sys/class/net/eth0".into());
        let node = root(&mut host, Cmdline::parse(CMDLINE)).unwrap();
        assert_eq!(node.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(node.hostname, "talos-10-0-2-15");
        assert_eq!(
            node.mounts,
            ["/system", TASK_ROOT, ETC, "/var"].map(PathBuf::from)
        );
        let effects = host.effects();
        let mounted: Vec<_> = effects
            .iter()
            .filter_map(|effect| match effect {
                Action::Mount(mount) => Some(mount.target.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            mounted[..4],
            ["/system", TASK_ROOT, ETC, "/sys/fs/cgroup"].map(PathBuf::from)
        );
        assert!(effects.contains(&Action::CopyTree(
            Path::new(TASK_ROOT).join("etc"),
            ETC.into()
        )));
        for (key, value) in kspp::SYSCTLS {
            assert!(effects.contains(&Action::Sysctl((*key).into(), (*value).into())));
        }
        assert!(effects.ends_with(&[
            Action::LinkUp("lo".into()),
            Action::LinkUp("eth0".into()),
            Action::DhcpLease("eth0".into()),
            Action::Address("eth0".into(), Ipv4Addr::new(10, 0, 2, 15), 24),
            Action::DefaultRoute("eth0".into(), Ipv4Addr::new(10, 0, 2, 2)),
            Action::Hostname("talos-10-0-2-15".into()),
        ]));
    }

    #[test]
    fn without_ip_or_a_dhcp_answer_the_node_has_loopback_and_a_lease_names_it() {
        let mut host = RecordingHost::default();
        host.present.push("/sys/class/net/eth0".into());
        let node = root(&mut host, Cmdline::parse(CMDLINE)).unwrap();
        assert_eq!(node.address, Ipv4Addr::LOCALHOST);
        assert!(
            host.logs()
                .iter()
                .any(|l| l.contains("no DHCP server answered on eth0"))
        );
        assert!(
            !host
                .effects()
                .iter()
                .any(|e| matches!(e, Action::Address(..)))
        );

        let mut host = RecordingHost {
            lease: Some(dhcp::Lease {
                address: "10.5.0.3/24".parse().unwrap(),
                router: None,
                dns: vec![],
                server: Ipv4Addr::new(10, 5, 0, 1),
                hostname: Some("demo-worker-1".into()),
                mtu: None,
                lease_seconds: 60,
                renew_seconds: 30,
                rebind_seconds: 52,
                acquired: std::time::SystemTime::now(),
                renewals: 0,
            }),
            ..RecordingHost::default()
        };
        host.present.push("/sys/class/net/eth0".into());
        let node = root(&mut host, Cmdline::parse(CMDLINE)).unwrap();
        assert_eq!(
            (node.address, node.hostname.as_str()),
            (Ipv4Addr::new(10, 5, 0, 3), "demo-worker-1")
        );
        assert!(
            host.logs()
                .contains(&"machined: eth0 has 10.5.0.3/24 (DHCP from 10.5.0.1)".to_string())
        );
    }

    #[test]
    fn root_stage_honours_ip_and_hostname_and_survives_a_missing_link() {
        let mut host = RecordingHost::default();
        let cmdline =
            Cmdline::parse("ip=192.168.1.5::192.168.1.1:255.255.255.0::eth1:off talos.hostname=n1");
        let node = root(&mut host, cmdline).unwrap();
        assert_eq!(node.address, Ipv4Addr::LOCALHOST);
        assert_eq!(node.hostname, "n1");
        assert!(
            host.logs()
                .contains(&"machined: no link eth1: the node only has loopback".to_string())
        );
    }

    #[test]
    fn stop_unmounts_innermost_first_then_reboots() {
        let mut host = RecordingHost::default();
        stop(
            &mut host,
            &["/system/state".into(), "/var".into()],
            &[],
            Power::Off,
        );
        assert_eq!(
            host.effects(),
            vec![
                Action::Sync,
                Action::Unmount("/var".into()),
                Action::Unmount("/system/state".into()),
                Action::Sync,
                Action::Reboot(Power::Off),
            ]
        );
    }

    #[test]
    fn a_reset_wipes_the_volumes_once_unmounted() {
        let mut host = RecordingHost::default();
        stop(
            &mut host,
            &["/system/state".into()],
            &["/dev/vda5".into()],
            Power::Reboot,
        );
        assert_eq!(
            host.effects(),
            vec![
                Action::Sync,
                Action::Unmount("/system/state".into()),
                Action::Wipe("/dev/vda5".into()),
                Action::Sync,
                Action::Reboot(Power::Reboot),
            ]
        );
    }
}
