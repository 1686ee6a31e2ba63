//! OS mode: machined as PID 1 of the talos-rs image.
//!
//! The initramfs holds machined as `/init`, the boot modules and the root SquashFS. As PID 1,
//! machined mounts the pseudo filesystems, refuses to boot without the kernel's required
//! hardening options, loads the boot modules in dependency order, mounts the SquashFS
//! read-only through a loop device and moves it over `/` (MS_MOVE + chroot), applies the KSPP
//! sysctls, mounts tmpfs on `/system`, mounts STATE (`/system/state`) and EPHEMERAL (`/var`)
//! from the system disk, formatting them on first boot ([`disks`]; tmpfs `/var` and no STATE
//! without a disk), brings up loopback and the node address,
//! and then runs the same [`runtime`](crate::runtime) as dev mode with the state directory `/`
//! (maintenance mode until a config is applied; apid on port 50000). When the runtime returns,
//! it syncs, unmounts and calls reboot(2). A fatal error is printed on the console and the
//! machine reboots after [`sequence::FATAL_DELAY`]; PID 1 never exits.
//!
//! Every host side effect goes through [`host::Host`]; the boot logic lives in [`sequence`]
//! and is tested against a recording fake.
//!
//! The platform is `talos.platform=` or detected ([`platform`]: nocloud by SMBIOS serial or
//! cidata volume, whose user-data becomes the config); metal runs in mode metal, the others
//! in mode cloud.
//!
//! In a container (`PLATFORM=container`) the engine has done the early boot: [`container`].
//!
//! PID 1 gives the node its first address (`ip=`, else a DHCP lease on eth0); the
//! runtime then runs containerd and the system services as its tasks, networkd among them
//! for `machine.network`. metal nodes download `talos.config=http://…`.

pub mod cloud;
mod cmdline;
pub mod container;
mod disks;
mod host;
mod http;
#[allow(unsafe_code)]
pub(crate) mod kexec;
mod kspp;
mod linux;
#[allow(unsafe_code)]
pub(crate) mod loopdev;
mod measure;
mod modules;
mod netlink;
mod platform;
mod sequence;
#[allow(unsafe_code)]
pub(crate) mod watchdog;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use host::{Host as _, Power};
use linux::LinuxHost;
use machineconfig::RuntimeMode;

use crate::containerd::SystemContainerd;
use crate::error::MachinedError;
use crate::log_shipping;
use crate::machine::Platform;
use crate::runtime::{Exit, Options};

/// The port apid listens on.
const API_PORT: u16 = 50000;
/// apid in the root filesystem.
/// Where the image keeps the daemons machined runs.
const PROGRAMS: &str = "/usr/bin";
/// The kernel argument naming where the kernel log is shipped, as upstream.
const KERNEL_LOG_ARGUMENT: &str = "talos.logging.kernel";

/// The sysctls the boot sequence sets, `(key as under /proc/sys, value)`.
pub fn managed_sysctls() -> Vec<(String, String)> {
    kspp::SYSCTLS
        .iter()
        .chain(&[(modules::MODULES_DISABLED, "1")])
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Boots the machine as PID 1; never returns.
pub fn boot() -> ! {
    if container::selected() {
        let code = match container::run() {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("machined: {error}");
                1
            }
        };
        std::process::exit(code);
    }
    let mut host = LinuxHost::default();
    let error = match run(&mut host) {
        Ok((mounts, wipe, power)) => sequence::stop(&mut host, &mounts, &wipe, power),
        Err(error) => sequence::fatal(&mut host, &error),
    };
    host.log(&format!("machined: {error}; halting"));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Boots and runs the node; returns what to unmount, what to wipe (a reset) and how to end.
fn run(host: &mut LinuxHost) -> Result<(Vec<PathBuf>, Vec<PathBuf>, Power), MachinedError> {
    // The image's release, in the initramfs (gone once the root is switched).
    let release = host
        .read_file(std::path::Path::new("/release"))
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| crate::BUILD_RELEASE.to_string());
    // Read again after the root switch, when the initramfs is out of reach.
    let squashfs = std::fs::File::open(measure::SQUASHFS).ok();
    let cmdline = sequence::early(host, &release)?;
    let kernel_log_destination = cmdline.get(KERNEL_LOG_ARGUMENT).map(str::to_string);
    let events_sink = cmdline
        .get(crate::event_sink::KERNEL_ARGUMENT)
        .map(str::to_string);
    let kernel_environment: Vec<String> = cmdline
        .all(crate::environment::KERNEL_ARGUMENT)
        .into_iter()
        .map(str::to_string)
        .collect();
    let node = sequence::root(host, cmdline)?;
    logging::init_with_tee(
        "machined",
        &release,
        crate::log_shipping::machined_log_tee(),
    );
    let kernel_log_destination =
        kernel_log_destination.and_then(|text| match log_shipping::check_endpoint(&text) {
            Ok(endpoint) => Some(endpoint),
            Err(error) => {
                tracing::warn!(%error, "{KERNEL_LOG_ARGUMENT}: the kernel log is not shipped");
                None
            }
        });
    let kernel_environment = {
        let values: Vec<&str> = kernel_environment.iter().map(String::as_str).collect();
        crate::environment::kernel_environment(&values)
    };
    let events_sink = events_sink.and_then(|text| {
        crate::event_sink::check_endpoint(&text)
            .inspect_err(|error| {
                let argument = crate::event_sink::KERNEL_ARGUMENT;
                tracing::warn!(%error, "{argument}: events are not streamed");
            })
            .ok()
    });
    let platform_name = node.platform.clone();
    let mode = if platform_name == "metal" {
        RuntimeMode::Metal
    } else {
        RuntimeMode::Cloud
    };
    let api_address = SocketAddr::new(node.address.into(), API_PORT);
    let mounts = node.mounts.clone();
    let system_disk = node.system_disk.map(std::sync::Arc::new);
    let (measured, boot_artifacts) = tokio::sync::watch::channel(Vec::new());
    let (ending, ends) = std::sync::mpsc::channel();
    let kexec = system_disk
        .clone()
        .map(|disk| stage_kexec_on_reboot(disk, ends));
    let options = Options {
        state_dir: "/".into(),
        api_address,
        hostname: node.hostname,
        api_services: crate::api_services::ApiServices {
            apid: PathBuf::from(PROGRAMS).join("apid"),
            trustd: PathBuf::from(PROGRAMS).join("trustd"),
            certificate_ttl: Duration::from_secs(24 * 3600),
        },
        timed: PathBuf::from(PROGRAMS).join("timed"),
        // PID 1 brings the first address up itself (netlink.rs) so that maintenance mode
        // answers at once; networkd then owns `machine.network` from the config.
        networkd: Some(PathBuf::from(PROGRAMS).join("networkd")),
        etcd: PathBuf::from(PROGRAMS).join("etcd"),
        containerd: Some(SystemContainerd {
            program: PathBuf::from(PROGRAMS).join("containerd"),
            config: PathBuf::from("/etc/containerd/config.toml"),
            task_root: PathBuf::from(sequence::TASK_ROOT),
        }),
        platform: Platform {
            name: platform_name,
            mode,
            metadata: node.platform_metadata,
            user_data_problem: node.user_data_problem,
            network_yaml: node.platform_network,
        },
        release,
        system_disk: system_disk.clone(),
        boot_artifacts: Some(boot_artifacts),
        kernel_log_destination,
        events_sink,
        kernel_environment,
        install_media: node.install_media,
        ending: Some(ending),
    };
    let on_disk = mounts.iter().any(|m| m.as_os_str() == "/system/state");
    report_api(
        api_address,
        on_disk,
        Measure {
            squashfs,
            system_disk: system_disk.clone(),
            measured,
        },
    );
    let runtime = tokio::runtime::Runtime::new()
        .map_err(MachinedError::io("starting", "the tokio runtime"))?;
    let exit = runtime.block_on(crate::runtime::run(options))?;
    drop(runtime);
    let kexec = kexec.and_then(|staging| staging.join().ok()).flatten();
    let (power, wipe) = match exit {
        Exit::Reboot | Exit::PowerCycle => (Power::Reboot, Vec::new()),
        Exit::Shutdown => (Power::Off, Vec::new()),
        Exit::Reset(plan) => {
            let partitions = disks::partitions(host)?;
            let wipe = plan
                .labels()
                .into_iter()
                .filter_map(|label| partitions.get(label).cloned())
                .collect();
            let power = if plan.reboot {
                Power::Reboot
            } else {
                Power::Off
            };
            (power, wipe)
        }
    };
    let power = match (power, kexec) {
        (Power::Reboot, Some(staged)) => staged,
        _ => power,
    };
    Ok((mounts, wipe, power))
}

/// What the boot measures once the API answers ([`measure`]).
struct Measure {
    squashfs: Option<std::fs::File>,
    system_disk: Option<std::sync::Arc<crate::upgrade::SystemDisk>>,
    measured: tokio::sync::watch::Sender<Vec<crate::controllers::boot_artifacts::BootArtifact>>,
}

/// Waits on its own thread for how the node ends; a plain reboot is prepared by
/// [`kexec_or_firmware`] while the services stop (reading and staging the kernel and
/// initramfs takes seconds under TCG). Returns the power action for a plain reboot, `None`
/// for any other end.
fn stage_kexec_on_reboot(
    disk: std::sync::Arc<crate::upgrade::SystemDisk>,
    ends: std::sync::mpsc::Receiver<Exit>,
) -> std::thread::JoinHandle<Option<Power>> {
    std::thread::spawn(move || match ends.recv() {
        Ok(Exit::Reboot) => Some(kexec_or_firmware(&mut LinuxHost::default(), &disk)),
        _ => None,
    })
}

/// A plain reboot starts the same system again by kexec when GRUB would boot the slot that
/// is running (no upgrade trial or rollback pending): firmware, GRUB and its reading of the
/// initramfs through the firmware are skipped. Anything else, or any failure, reboots through
/// the firmware.
fn kexec_or_firmware(host: &mut LinuxHost, disk: &crate::upgrade::SystemDisk) -> Power {
    let staged = host
        .read_file(std::path::Path::new("/proc/cmdline"))
        .and_then(|cmdline| disk.stage_kexec(&cmdline));
    match staged {
        Ok(true) => {
            host.log("machined: reboot by kexec into the running slot");
            Power::Kexec
        }
        Ok(false) => Power::Reboot,
        Err(error) => {
            host.log(&format!(
                "machined: kexec not staged ({error}): rebooting through the firmware"
            ));
            Power::Reboot
        }
    }
}

/// Logs once apid accepts connections, with the time since PID 1 started (the boot figure
/// `cargo xtask bench-boot` reads); then loads the rest of the image's modules (the disk group
/// when no system disk needed it, cidata, the root filesystem's: containerd's and Kubernetes'
/// needs, which stay off the path to a working API), locks module loading ([`modules`]) and
/// measures what booted.
fn report_api(address: SocketAddr, disk_modules_loaded: bool, measure: Measure) {
    std::thread::spawn(move || {
        let mut host = LinuxHost::default();
        let answered = wait_for_api(&mut host, address, Duration::from_millis(10), API_WAIT);
        // Some (netfilter) need libcrc32c from the disk group.
        let disk = std::path::Path::new(disks::DISK_MODULES);
        let groups: Vec<&std::path::Path> = [disk]
            .into_iter()
            .filter(|_| !disk_modules_loaded)
            .chain([
                std::path::Path::new(platform::CIDATA_MODULES),
                std::path::Path::new(sequence::MODULES),
            ])
            .collect();
        let config = std::path::Path::new(platform::CONFIG);
        if let Err(error) = sequence::phase(&mut host, "loadRootfsModules", |host| {
            modules::load_rest_and_lock(host, &groups, config)
        }) {
            host.alert(&format!(
                "machined: kernel module loading is not locked: {error}"
            ));
        }
        let Measure {
            mut squashfs,
            system_disk,
            measured,
        } = measure;
        let artifacts = measure::measure(squashfs.as_mut(), system_disk.as_deref());
        for (name, spec) in &artifacts {
            host.log(&format!("machined: booted {name} sha256 {}", spec.sha256));
        }
        measured.send_replace(artifacts);
        if !answered {
            host.alert(&format!(
                "machined: apid does not answer on {address} {API_WAIT:?} after the boot"
            ));
            wait_for_api(&mut host, address, Duration::from_secs(1), Duration::MAX);
        }
    });
}

/// How long the boot waits for apid before it loads the rest of the modules anyway.
const API_WAIT: Duration = Duration::from_secs(120);

/// Polls apid every `every` until it answers (logged, with the time since PID 1 started) or
/// `patience` runs out; returns whether it answered.
fn wait_for_api(
    host: &mut LinuxHost,
    address: SocketAddr,
    every: Duration,
    patience: Duration,
) -> bool {
    let started = Instant::now();
    while started.elapsed() < patience {
        let answered = TcpStream::connect_timeout(&address, Duration::from_millis(200))
            .and_then(crate::services::answered_by_another);
        if answered.is_ok() {
            let took = crate::boot_clock::since_start_ms();
            host.log(&format!(
                "machined: apid answering on {address}, {took:.1} ms after PID 1 started"
            ));
            return true;
        }
        std::thread::sleep(every);
    }
    false
}
