//! The qemu provisioner: each node a QEMU VM booted from the project's image (`cargo xtask
//! image`): the kernel and initramfs booted directly, its system disk a copy-on-write overlay of
//! the image's disk. The VMs share one L2 network: a bridge and one tap per VM inside a network
//! namespace the command creates (`talos-NAME`), the gateway being the CIDR's first host. A
//! helper process ([`super::forward`]) serves DHCP on that bridge (each node's address and name
//! bound to its VM's hardware address) and publishes ports on the host's loopback, the only way
//! the host reaches the nodes: every node's apid (50000) and the first control plane's
//! Kubernetes API (6443).
//!
//! Nodes boot into maintenance mode; talosctl then applies each node's config over the insecure
//! API, as upstream's `cluster create qemu` does (preset `maintenance` stops before that). With
//! preset `iso` the VMs boot the ISO with blank disks instead; their configs carry
//! `machine.install.disk: /dev/vda`, so each node installs itself when its config arrives and
//! reboots from that disk.
//! Under TCG a node gets one vCPU unless told otherwise, and the VMs are started one after
//! another, each once the previous one answers.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use apiclient::{Client, Endpoint};
use machineconfig::RuntimeMode;
use proto::machine::ApplyConfigurationRequest;

use super::create::{self, CommonArgs, Network};
use super::sizes::parse_memory;
use super::spinner::Spinner;
use super::state::{ClusterState, NodeKind, NodeState};
use crate::cli::GlobalArgs;
use crate::humanize::parse_go_duration;

const API_PORT: u16 = 50000;
const KUBERNETES_PORT: u16 = 6443;
/// The bridge inside the cluster's namespace.
const BRIDGE: &str = "talos0";
/// How long a VM may take to answer in maintenance mode, and applying a config may be retried
/// (upstream: 2 minutes).
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// Where the iso preset's nodes install themselves: their first virtio disk.
const INSTALL_DISK: &str = "/dev/vda";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Boot from an overlay of the image's disk and apply each node's config
    DiskImage,
    /// Boot the ISO with blank disks; each node installs itself to its first disk when its
    /// config is applied, then boots from it
    Iso,
    /// Stop once the nodes answer in maintenance mode, before any config is applied
    Maintenance,
}

#[derive(Debug, clap::Args)]
pub struct QemuArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// How the nodes boot and are configured
    #[arg(long, value_enum, value_delimiter = ',', default_value = "disk-image")]
    pub presets: Vec<Preset>,
    /// The CIDR of the cluster's network
    #[arg(long, default_value = "10.5.0.0/24")]
    pub cidr: String,
    /// Disks of each VM as <driver>:<size>; the first is the system disk (an overlay of the
    /// image's disk grown to that size), the others are blank
    #[arg(long, value_delimiter = ',', default_value = "virtio:10GiB")]
    pub disks: Vec<String>,
    /// The kernel the VMs boot (beside it, `cmdline` holds the image's command line)
    #[arg(long, default_value = "_out/image/vmlinuz")]
    pub vmlinuz_path: PathBuf,
    /// The initramfs the VMs boot
    #[arg(long, default_value = "_out/image/initramfs.img")]
    pub initrd_path: PathBuf,
    /// The disk image each system disk overlays
    #[arg(long, default_value = "_out/image/disk.qcow2")]
    pub disk_image_path: PathBuf,
    /// The ISO the nodes boot with the iso preset
    #[arg(long, default_value = "_out/image/talos-rs.iso")]
    pub iso_path: PathBuf,
    /// More kernel arguments for every node
    #[arg(long)]
    pub extra_boot_kernel_args: Option<String>,
}

/// `talosctl cluster create qemu`.
pub fn create(
    name: &str,
    state_root: &Path,
    args: QemuArgs,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = ClusterState::dir(state_root, name);
    preflight(name, &dir)?;
    let image = Image::find(&args)?;
    if image.iso.is_some() && args.extra_boot_kernel_args.is_some() {
        bail!(
            "--extra-boot-kernel-args: the ISO's command line is fixed; patch \
             machine.install.extraKernelArgs into the configs instead (--config-patch)"
        );
    }
    let disk_sizes = parse_disks(&args.disks)?;
    let accel = ::qemu::Accel::probe(&image.kernel);
    let default_cpus = match accel {
        ::qemu::Accel::Tcg => "1",
        ::qemu::Accel::Kvm => "2",
    };
    let mut state = create::plan(
        name,
        &args.common,
        &Network {
            provisioner: "qemu",
            cidr_flag: "cidr",
            cidr: &args.cidr,
            default_cpus,
        },
        &image.kernel.display().to_string(),
    )?;
    let configs = create::configs(
        name,
        &format!("https://{}:{KUBERNETES_PORT}", state.nodes[0].ip),
        &args.common,
        RuntimeMode::Metal,
        &["127.0.0.1".to_string()],
        image.iso.is_some().then_some(INSTALL_DISK),
    )?;
    let timeout = parse_go_duration(&args.common.wait_timeout)?;
    println!("booting {} VMs under {accel:?}", state.nodes.len());

    state.save(&dir)?;
    let vm = VmSettings {
        image: &image,
        disk_sizes: &disk_sizes,
        accel,
        extra_args: args.extra_boot_kernel_args.as_deref().unwrap_or(""),
    };
    if let Err(error) = provision(&mut state, &dir, &vm, started) {
        eprintln!("creating cluster {name} failed: {error:#}; removing what was made");
        if let Err(cleanup) = destroy(&state, &dir) {
            eprintln!("{cleanup:#}");
        }
        return Err(error);
    }
    let own = create::save_talosconfig(
        configs.talosconfig.clone(),
        &state,
        &dir,
        &args.common,
        global,
    )?;
    let left_running = || {
        format!(
            "cluster {name} is left running: `talosctl cluster destroy --name {name}` removes its VMs, disks, namespace and {}",
            dir.display()
        )
    };
    if args.presets.contains(&Preset::Maintenance) {
        println!(
            "the nodes wait in maintenance mode: apply configs with `talosctl apply-config --insecure -n 127.0.0.1:<port>` (ports in `talosctl cluster show`)"
        );
        return Ok(());
    }
    apply_configs(&state, &configs, &own, started).with_context(left_running)?;
    create::bring_up(&state, &own, args.common.wait, timeout, started).with_context(left_running)
}

/// The image's files; `iso` with the iso preset.
struct Image {
    kernel: PathBuf,
    initramfs: PathBuf,
    disk: PathBuf,
    cmdline: String,
    iso: Option<PathBuf>,
}

impl Image {
    fn find(args: &QemuArgs) -> anyhow::Result<Image> {
        let absolute = |path: &Path, flag: &str| {
            std::path::absolute(path)
                .ok()
                .filter(|p| p.exists())
                .with_context(|| {
                    format!(
                        "{} (--{flag}) not found: build the image with `cargo xtask image`",
                        path.display()
                    )
                })
        };
        let kernel = absolute(&args.vmlinuz_path, "vmlinuz-path")?;
        let cmdline_file = kernel.with_file_name("cmdline");
        let cmdline = std::fs::read_to_string(&cmdline_file).with_context(|| {
            format!(
                "reading the image's command line {}",
                cmdline_file.display()
            )
        })?;
        let iso = if args.presets.contains(&Preset::Iso) {
            if args.presets.contains(&Preset::DiskImage) {
                bail!("--presets: iso and disk-image both choose how the nodes boot: pick one");
            }
            Some(absolute(&args.iso_path, "iso-path")?)
        } else {
            None
        };
        Ok(Image {
            initramfs: absolute(&args.initrd_path, "initrd-path")?,
            disk: absolute(&args.disk_image_path, "disk-image-path")?,
            cmdline: cmdline.trim().to_string(),
            kernel,
            iso,
        })
    }
}

/// Bytes of each `<driver>:<size>` disk; only virtio is offered.
fn parse_disks(disks: &[String]) -> anyhow::Result<Vec<u64>> {
    if disks.is_empty() {
        bail!("--disks: at least the system disk is needed");
    }
    disks
        .iter()
        .map(|disk| {
            let (driver, size) = disk
                .split_once(':')
                .with_context(|| format!("--disks {disk:?}: expected <driver>:<size>"))?;
            if driver != "virtio" {
                bail!("--disks {disk:?}: only the virtio driver is offered");
            }
            let bytes = parse_memory("disks", size)?;
            if bytes < 2 << 30 {
                bail!("--disks {disk:?}: at least 2GiB");
            }
            Ok(bytes)
        })
        .collect()
}

fn namespace_of(name: &str) -> String {
    format!("talos-{name}")
}

fn namespace_path(namespace: &str) -> PathBuf {
    Path::new("/run/netns").join(namespace)
}

fn preflight(name: &str, dir: &Path) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("cluster create qemu needs root (it creates a network namespace, a bridge and taps)");
    }
    for program in ["qemu-system-x86_64", "qemu-img", "ip"] {
        let found = Command::new(program)
            .arg(if program == "ip" { "-V" } else { "--version" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            bail!("{program} not found: install it (scripts/setup.sh does)");
        }
    }
    if dir.join("state.yaml").exists() {
        bail!(
            "cluster {name:?} already exists (state in {}): remove it with `talosctl cluster destroy --name {name}`",
            dir.display()
        );
    }
    if namespace_path(&namespace_of(name)).exists() {
        bail!(
            "a network namespace {} already exists: choose another --name",
            namespace_of(name)
        );
    }
    Ok(())
}

struct VmSettings<'a> {
    image: &'a Image,
    disk_sizes: &'a [u64],
    accel: ::qemu::Accel,
    extra_args: &'a str,
}

/// Creates the namespace and its bridge, publishes the ports, then boots the VMs one by one,
/// recording each step in `state`.
fn provision(
    state: &mut ClusterState,
    dir: &Path,
    vm: &VmSettings,
    started: Instant,
) -> anyhow::Result<()> {
    let namespace = namespace_of(&state.name);
    run(Command::new("ip").args(["netns", "add", &namespace]))?;
    state.namespace = Some(namespace.clone());
    state.save(dir)?;
    let prefix = state.cidr.split_once('/').map_or("24", |(_, p)| p);
    let gateway = format!("{}/{prefix}", state.gateway);
    let mtu = state.mtu.to_string();
    let ip = |args: &[&str]| run(Command::new("ip").args(["-n", &namespace]).args(args));
    ip(&["link", "set", "lo", "up"])?;
    ip(&["link", "add", BRIDGE, "type", "bridge"])?;
    ip(&["link", "set", BRIDGE, "mtu", &mtu, "up"])?;
    ip(&["address", "add", &gateway, "dev", BRIDGE])?;
    println!(
        "created network namespace {namespace} ({} on {BRIDGE})",
        state.cidr
    );

    publish_ports(state, dir)?;

    for index in 0..state.nodes.len() {
        let node = state.nodes[index].clone();
        let tap = format!("tap{index}");
        ip(&["tuntap", "add", "dev", &tap, "mode", "tap"])?;
        ip(&["link", "set", &tap, "mtu", &mtu, "master", BRIDGE, "up"])?;
        let node_dir = dir.join(&node.name);
        std::fs::create_dir_all(&node_dir)?;
        state.nodes[index].disk_bytes = vm.disk_sizes.iter().sum();
        for (disk_index, &size) in vm.disk_sizes.iter().enumerate() {
            let path = node_dir.join(format!("disk-{disk_index}.qcow2"));
            let mut command = Command::new("qemu-img");
            command.args(["create", "-q", "-f", "qcow2"]);
            if disk_index == 0 && vm.image.iso.is_none() {
                command.args(["-F", "qcow2", "-b"]).arg(&vm.image.disk);
            }
            run(command.arg(&path).arg(size.to_string()))?;
            state.nodes[index].disks.push(path);
            state.save(dir)?;
        }
        let pid = start_vm(state, &state.nodes[index], &node_dir, &tap, vm)?;
        state.nodes[index].pid = Some(pid);
        state.save(dir)?;
        let port = api_port(&state.nodes[index])?;
        let waiting = Spinner::start(format!("{}: booting", node.name));
        wait_for_maintenance(&node, port, &node_dir)?;
        drop(waiting);
        println!(
            "{} ({}): booted, maintenance API up ({:.1} s)",
            node.name,
            node.ip,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Picks free loopback ports, records them, and starts the helper relaying them into the
/// namespace.
fn publish_ports(state: &mut ClusterState, dir: &Path) -> anyhow::Result<()> {
    let namespace = state.namespace.clone().context("no namespace")?;
    let mut routes = Vec::new();
    for (index, node) in state.nodes.iter_mut().enumerate() {
        let mut targets = vec![API_PORT];
        if index == 0 {
            targets.push(KUBERNETES_PORT);
        }
        node.ports.clear();
        for target in targets {
            let host = free_port()?;
            routes.push(format!("{host}={}:{target}", node.ip));
            node.ports.push(format!("{host}->{target}"));
        }
    }
    let first = &state.nodes[0];
    state.endpoint = first.ports[0].split("->").next().unwrap_or_default().into();
    state.kubernetes_endpoint = first.ports[1].split("->").next().unwrap_or_default().into();
    let log = std::fs::File::create(dir.join("forward.log"))?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["cluster", "forward", "--netns"])
        .arg(namespace_path(&namespace))
        .args(["--dhcp", &format!("{BRIDGE}={}", state.gateway)])
        .args(["--mtu", &state.mtu.to_string()]);
    for route in &routes {
        command.args(["--route", route]);
    }
    let prefix = state.cidr.split_once('/').map_or("24", |(_, p)| p);
    for node in &state.nodes {
        command.args([
            "--lease",
            &format!("{}={}/{prefix}={}", mac_of(node.ip), node.ip, node.name),
        ]);
    }
    let child = detached(&mut command, log)?;
    state.helper_pid = Some(child);
    state.save(dir)?;
    Ok(())
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// Starts `command` in a process group of its own (a Ctrl-C of talosctl does not reach it), its
/// output to `log`; returns its PID.
fn detached(command: &mut Command, log: std::fs::File) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let stderr = log.try_clone()?;
    let child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .spawn()
        .context("starting the port helper")?;
    Ok(child.id())
}

fn api_port(node: &NodeState) -> anyhow::Result<u16> {
    node.ports
        .first()
        .and_then(|p| p.split("->").next())
        .and_then(|p| p.parse::<SocketAddr>().ok())
        .map(|a| a.port())
        .with_context(|| format!("{}: no published API port", node.name))
}

/// Boots the node's VM inside the namespace (QEMU daemonizes itself); returns its PID.
fn start_vm(
    state: &ClusterState,
    node: &NodeState,
    node_dir: &Path,
    tap: &str,
    vm: &VmSettings,
) -> anyhow::Result<u32> {
    let append = format!("{} {}", vm.image.cmdline, vm.extra_args);
    let mac = mac_of(node.ip);
    let pid_file = node_dir.join("qemu.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut command = Command::new("ip");
    command
        .args([
            "netns",
            "exec",
            state.namespace.as_deref().unwrap_or_default(),
        ])
        .arg("qemu-system-x86_64")
        .args(vm.accel.args())
        .args(["-name", &node.name])
        .args(["-m", &(node.memory_bytes >> 20).to_string()])
        .args(["-smp", &(node.cpus.ceil() as u32).max(1).to_string()])
        .args(["-display", "none", "-monitor", "none", "-daemonize"])
        .arg("-pidfile")
        .arg(&pid_file)
        .arg("-serial")
        .arg(format!("file:{}", node_dir.join("console.log").display()));
    match &vm.image.iso {
        // The ISO boots once; the reboot after the install boots the disk.
        Some(iso) => command
            .arg("-cdrom")
            .arg(iso)
            .args(["-boot", "order=cd,once=d"]),
        None => command
            .arg("-kernel")
            .arg(&vm.image.kernel)
            .arg("-initrd")
            .arg(&vm.image.initramfs)
            .args(["-append", append.trim()]),
    };
    command.args([
        "-netdev",
        &format!("tap,id=net0,ifname={tap},script=no,downscript=no"),
        "-device",
        &format!("virtio-net-pci,netdev=net0,mac={mac}"),
        "-device",
        "virtio-rng-pci",
    ]);
    for disk in &node.disks {
        command.args([
            "-drive",
            &format!(
                "file={},format=qcow2,if=virtio,cache=unsafe",
                disk.display()
            ),
        ]);
    }
    run(&mut command).with_context(|| format!("starting the VM of {}", node.name))?;
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .with_context(|| format!("{}: QEMU wrote no PID to {}", node.name, pid_file.display()))?;
    Ok(pid)
}

/// The hardware address of the node at `ip` (its DHCP binding).
fn mac_of(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("52:54:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// Waits until the node answers Version over the insecure API (maintenance mode).
fn wait_for_maintenance(node: &NodeState, port: u16, node_dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    crate::connection::block_on(async {
        let endpoint = Endpoint::parse(&format!("127.0.0.1:{port}"))?;
        loop {
            let attempt = async {
                let client = Client::insecure(&endpoint).await?;
                client.machine().version(()).await?;
                anyhow::Ok(())
            };
            if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(5), attempt).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: no answer in maintenance mode within {} s (console: {})",
                    node.name,
                    BOOT_TIMEOUT.as_secs(),
                    node_dir.join("console.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

/// Applies each node's config over the insecure API (mode left at 0, as upstream sends it),
/// one node at a time: the next once this one answers over mutual TLS, so that two TCG guests
/// never start their services at once.
fn apply_configs(
    state: &ClusterState,
    configs: &create::Configs,
    talosconfig: &Path,
    started: Instant,
) -> anyhow::Result<()> {
    crate::connection::block_on(async {
        for node in &state.nodes {
            let config = match node.kind {
                NodeKind::Controlplane => &configs.controlplane,
                NodeKind::Worker => &configs.worker,
            };
            let endpoint = Endpoint::parse(&format!("127.0.0.1:{}", api_port(node)?))?;
            let deadline = Instant::now() + BOOT_TIMEOUT;
            let waiting = Spinner::start(format!("{}: applying its config", node.name));
            loop {
                let attempt = async {
                    let client = Client::insecure(&endpoint).await?;
                    let request = ApplyConfigurationRequest {
                        data: config.clone().into_bytes(),
                        ..Default::default()
                    };
                    client.machine().apply_configuration(request).await?;
                    anyhow::Ok(())
                };
                match attempt.await {
                    Ok(()) => break,
                    Err(error) if Instant::now() >= deadline => {
                        bail!("{}: applying its config: {error:#}", node.name)
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
            let global = create::through_endpoint(state, talosconfig, vec![node.ip.to_string()]);
            create::wait_for_api(node, &global, Instant::now() + BOOT_TIMEOUT).await?;
            drop(waiting);
            println!(
                "{}: config applied, API up over mutual TLS ({:.1} s)",
                node.name,
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    })
}

/// Ends the VMs and the port helper (only processes whose command line names this cluster),
/// deletes the namespace (its bridge and taps with it) and the state folder (disks included).
pub fn destroy(state: &ClusterState, dir: &Path) -> anyhow::Result<()> {
    let name = &state.name;
    for node in &state.nodes {
        if let Some(pid) = node.pid
            && end_process(pid, &["qemu", &node.name])
        {
            println!("stopped the VM of {}", node.name);
        }
    }
    if let (Some(pid), Some(namespace)) = (state.helper_pid, &state.namespace)
        && end_process(pid, &["forward", namespace])
    {
        println!("stopped the port helper");
    }
    let namespace = state
        .namespace
        .clone()
        .unwrap_or_else(|| namespace_of(name));
    if namespace_path(&namespace).exists() {
        run(Command::new("ip").args(["netns", "delete", &namespace]))?;
        println!("removed network namespace {namespace}");
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        println!("removed {}", dir.display());
    }
    Ok(())
}

/// Without a state file: the namespace named after the cluster, if any (a create killed before
/// it wrote its state).
/// Returns whether there was one.
pub fn destroy_leftovers(name: &str) -> anyhow::Result<bool> {
    let namespace = namespace_of(name);
    if !namespace_path(&namespace).exists() {
        return Ok(false);
    }
    run(Command::new("ip").args(["netns", "delete", &namespace]))?;
    println!("removed network namespace {namespace}");
    Ok(true)
}

/// SIGKILLs `pid` if its command line holds every one of `marks`, and waits until it is gone.
fn end_process(pid: u32, marks: &[&str]) -> bool {
    let cmdline = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
            .ok()
    };
    let Some(text) = cmdline(pid) else {
        return false;
    };
    if !marks.iter().all(|mark| text.contains(mark)) {
        return false;
    }
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(raw),
        nix::sys::signal::Signal::SIGKILL,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while cmdline(pid).is_some_and(|now| now == text) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{} {}: {}",
            command.get_program().to_string_lossy(),
            command
                .get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_are_virtio_and_large_enough() {
        assert_eq!(
            parse_disks(&["virtio:10GiB".into(), "virtio:6GiB".into()]).unwrap(),
            vec![10 << 30, 6 << 30]
        );
        let error = |disk: &str| format!("{:#}", parse_disks(&[disk.into()]).unwrap_err());
        assert!(error("nvme:10GiB").contains("only the virtio driver"));
        assert!(error("virtio:1GiB").contains("at least 2GiB"));
        assert!(error("10GiB").contains("<driver>:<size>"));
    }
}
