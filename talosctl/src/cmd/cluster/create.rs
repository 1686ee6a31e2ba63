//! What every provisioner shares: the cluster's configs and talosconfig, then waiting for each
//! node's API, the bootstrap of etcd on the first control plane, and the health checks.

use apiclient::ApiClientError;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use machineconfig::generate::{self, ClusterSpec};
use machineconfig::patch::load_patches;
use machineconfig::{Config, RuntimeMode};
use pki::SecretsBundle;
use talosconfig::Talosconfig;

use super::sizes::{Cidr, parse_cpus, parse_memory};
use super::spinner::Spinner;
use super::state::{ClusterState, NodeKind, NodeState};
use crate::cli::GlobalArgs;
use crate::cmd::r#gen::cluster_config::{normalize_talos_version, patched, talosconfig};
use crate::cmd::health;
use crate::connection::Session;

/// The flags every `cluster create` provisioner takes.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// The number of controlplane nodes to create
    #[arg(long, default_value_t = 1)]
    pub controlplanes: u32,
    /// The number of worker nodes to create
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// The number of CPUs to allocate to each control plane node (docker: 2.0; qemu: 1 under
    /// TCG, 2 under KVM)
    #[arg(long)]
    pub cpus_controlplanes: Option<String>,
    /// The number of CPUs to allocate to each worker node (as --cpus-controlplanes)
    #[arg(long)]
    pub cpus_workers: Option<String>,
    /// The memory of each control plane node (2GiB, 512MiB; a bare number is MiB)
    #[arg(long, default_value = "2GiB")]
    pub memory_controlplanes: String,
    /// The memory of each worker node (2GiB, 512MiB; a bare number is MiB)
    #[arg(long, default_value = "2GiB")]
    pub memory_workers: String,
    /// The MTU of the cluster's network
    #[arg(long, default_value_t = 1500)]
    pub mtu: u32,
    /// Desired Kubernetes version to run
    #[arg(long, default_value = generate::DEFAULT_KUBERNETES_VERSION)]
    pub kubernetes_version: String,
    /// The desired Talos version to generate config for
    #[arg(long, default_value = generate::DEFAULT_TALOS_VERSION)]
    pub talos_version: String,
    /// Patch generated machineconfigs (applied to all node types), use @file to read a patch from file
    #[arg(long)]
    pub config_patch: Vec<String>,
    /// Patch generated machineconfigs (applied to 'init' and 'controlplane' types)
    #[arg(long)]
    pub config_patch_controlplanes: Vec<String>,
    /// Patch generated machineconfigs (applied to 'worker' type)
    #[arg(long)]
    pub config_patch_workers: Vec<String>,
    /// The talosconfig to merge the cluster's context into (default: --talosconfig, else ~/.talos/config)
    #[arg(long)]
    pub talosconfig_destination: Option<PathBuf>,
    /// Wait for the cluster to be ready before returning
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// Timeout to wait for the cluster to be ready
    #[arg(long, default_value = "20m")]
    pub wait_timeout: String,
}

/// How a provisioner's network flags read.
pub struct Network<'a> {
    pub provisioner: &'static str,
    /// The name of the CIDR flag (`subnet` for docker, `cidr` for qemu).
    pub cidr_flag: &'static str,
    pub cidr: &'a str,
    /// CPUs per node when the flags say nothing.
    pub default_cpus: &'a str,
}

/// The cluster as it will be: names, addresses (control planes first, from the CIDR's second
/// host on) and sizes, checked before anything is made.
pub fn plan(
    name: &str,
    common: &CommonArgs,
    network: &Network,
    image: &str,
) -> anyhow::Result<ClusterState> {
    let valid_name = !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !valid_name {
        bail!(
            "--name {name:?}: a cluster name is 1-48 lowercase letters, digits and dashes, not starting with a dash"
        );
    }
    if common.controlplanes == 0 {
        bail!("--controlplanes 0: a cluster needs at least one control plane");
    }
    let cidr = Cidr::parse(network.cidr_flag, network.cidr)?;
    let count = common.controlplanes.saturating_add(common.workers);
    if cidr.host(count.saturating_add(1)).is_none() {
        bail!(
            "--{} {cidr}: too small for a gateway and {count} nodes ({} control planes, {} workers)",
            network.cidr_flag,
            common.controlplanes,
            common.workers
        );
    }
    if !(576..=9000).contains(&common.mtu) {
        bail!("--mtu {}: must be between 576 and 9000", common.mtu);
    }
    let cpus = |flag: &str, value: &Option<String>| {
        parse_cpus(flag, value.as_deref().unwrap_or(network.default_cpus))
    };
    let sizes = [
        (
            NodeKind::Controlplane,
            common.controlplanes,
            cpus("cpus-controlplanes", &common.cpus_controlplanes)?,
            parse_memory("memory-controlplanes", &common.memory_controlplanes)?,
        ),
        (
            NodeKind::Worker,
            common.workers,
            cpus("cpus-workers", &common.cpus_workers)?,
            parse_memory("memory-workers", &common.memory_workers)?,
        ),
    ];
    let mut nodes = Vec::new();
    for (kind, n, cpus, memory_bytes) in sizes {
        for index in 1..=n {
            let ip = cidr
                .host(nodes.len() as u32 + 2)
                .context("address beyond the network")?;
            nodes.push(NodeState {
                name: format!("{name}-{}-{index}", kind.as_str()),
                kind,
                ip,
                cpus,
                memory_bytes,
                container: None,
                pid: None,
                disk_bytes: 0,
                disks: Vec::new(),
                volumes: Vec::new(),
                ports: Vec::new(),
            });
        }
    }
    Ok(ClusterState {
        name: name.to_string(),
        provisioner: network.provisioner.into(),
        cidr: cidr.to_string(),
        gateway: cidr.host(1).context("gateway")?,
        mtu: common.mtu,
        image: image.to_string(),
        network: None,
        namespace: None,
        helper_pid: None,
        endpoint: String::new(),
        kubernetes_endpoint: String::new(),
        nodes,
    })
}

/// The configs of a new cluster.
pub struct Configs {
    pub controlplane: String,
    pub worker: String,
    pub talosconfig: Talosconfig,
}

/// Generates a secrets bundle and the cluster's configs for `mode`, with the patches applied
/// and the results validated. `host_names` (how the host reaches the first control plane) go
/// into the control planes' certificate names only: trustd refuses to sign a worker names
/// that belong to a control plane.
pub fn configs(
    name: &str,
    endpoint: &str,
    args: &CommonArgs,
    mode: RuntimeMode,
    host_names: &[String],
    install_disk: Option<&str>,
) -> anyhow::Result<Configs> {
    let mut base = ClusterSpec {
        kubernetes_version: args.kubernetes_version.clone(),
        talos_version: normalize_talos_version(&args.talos_version)?,
        ..ClusterSpec::new(name, endpoint)
    };
    if let Some(disk) = install_disk {
        base.install_disk = disk.to_string();
    }
    let controlplane_spec = ClusterSpec {
        additional_sans: host_names.to_vec(),
        ..base.clone()
    };
    let bundle = SecretsBundle::generate()?;
    let common = load_patches(&args.config_patch)?;
    let controlplane = patched(
        "controlplane",
        &generate::controlplane(&bundle, &controlplane_spec)?,
        &[
            common.clone(),
            load_patches(&args.config_patch_controlplanes)?,
        ]
        .concat(),
        mode,
    )?;
    let worker = patched(
        "worker",
        &generate::worker(&bundle, &base)?,
        &[common, load_patches(&args.config_patch_workers)?].concat(),
        mode,
    )?;
    for (what, text) in [("controlplane", &controlplane), ("worker", &worker)] {
        let config = Config::from_yaml(text).with_context(|| format!("{what} config"))?;
        crate::cmd::validate::check(&config, mode, false)
            .with_context(|| format!("{what} config"))?;
    }
    Ok(Configs {
        controlplane,
        worker,
        talosconfig: talosconfig(&bundle, name)?,
    })
}

/// Writes the cluster's talosconfig (endpoint and every node) into its state folder and merges
/// it into `--talosconfig-destination` (default: the global `--talosconfig`); returns the path
/// of the cluster's own copy.
pub fn save_talosconfig(
    mut config: Talosconfig,
    state: &ClusterState,
    dir: &Path,
    common: &CommonArgs,
    global: &GlobalArgs,
) -> anyhow::Result<PathBuf> {
    let destination = common
        .talosconfig_destination
        .clone()
        .unwrap_or_else(|| global.talosconfig_path());
    let destination = destination.as_path();
    let context = config.context_mut(Some(&state.name))?;
    context.endpoints = vec![state.endpoint.clone()];
    context.nodes = state.nodes.iter().map(|n| n.ip.to_string()).collect();
    let own = dir.join("talosconfig");
    config.save(&own, atomicfile::Overwrite::Allow)?;
    let mut merged = Talosconfig::load_or_empty(destination)?;
    for (old, new) in merged.merge(config) {
        println!("renamed talosconfig context {old:?} -> {new:?}");
    }
    merged.save(destination, atomicfile::Overwrite::Allow)?;
    println!(
        "merged the talosconfig context {:?} into {}",
        state.name,
        destination.display()
    );
    Ok(own)
}

/// Waits for every node's API, bootstraps etcd on the first control plane, then (with
/// `wait`) runs the health checks on it.
pub fn bring_up(
    state: &ClusterState,
    talosconfig: &Path,
    wait: bool,
    timeout: Duration,
    started: Instant,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let global = |nodes: Vec<String>| through_endpoint(state, talosconfig, nodes);
    crate::connection::block_on(async {
        for node in &state.nodes {
            let waiting = Spinner::start(format!("{}: waiting for its API", node.name));
            wait_for_api(node, &global(vec![node.ip.to_string()]), deadline).await?;
            drop(waiting);
            println!(
                "{}: API up ({:.1} s)",
                node.name,
                started.elapsed().as_secs_f64()
            );
        }
        let first = state
            .control_planes()
            .next()
            .context("the cluster has no control plane")?;
        let waiting = Spinner::start(format!("{}: bootstrapping etcd", first.name));
        bootstrap(first, &global(vec![first.ip.to_string()]), deadline).await?;
        drop(waiting);
        println!(
            "{}: etcd bootstrapped ({:.1} s)",
            first.name,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })?;
    if wait {
        let remaining = deadline.saturating_duration_since(Instant::now());
        health::server_side(
            &global(vec![
                state
                    .control_planes()
                    .next()
                    .map(|n| n.ip.to_string())
                    .unwrap_or_default(),
            ]),
            state.control_planes().map(|n| n.ip.to_string()).collect(),
            state.workers().map(|n| n.ip.to_string()).collect(),
            remaining,
        )?;
        println!(
            "cluster {} is healthy ({:.1} s)",
            state.name,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Global flags that reach `nodes` through the cluster's endpoint with its own talosconfig.
pub fn through_endpoint(
    state: &ClusterState,
    talosconfig: &Path,
    nodes: Vec<String>,
) -> GlobalArgs {
    GlobalArgs {
        nodes,
        endpoints: Vec::new(),
        talosconfig: Some(talosconfig.to_path_buf()),
        context: Some(state.name.clone()),
        cluster: None,
        siderov1_keys_dir: None,
    }
}

/// Waits until `node` answers Version over mutual TLS.
pub async fn wait_for_api(
    node: &NodeState,
    global: &GlobalArgs,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let attempt = async {
            let session = Session::open(global).await?;
            let target = &session.targets()[0];
            target.machine().version(target.request(())?).await?;
            anyhow::Ok(())
        };
        let error = match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => format!("{error:#}"),
            Err(_) => "no answer within 5 s".to_string(),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("{}: the API did not come up: {error}", node.name);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn bootstrap(node: &NodeState, global: &GlobalArgs, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let session = Session::open(global).await?;
        let target = &session.targets()[0];
        let request = target.request(proto::machine::BootstrapRequest::default())?;
        let status = match target.machine().bootstrap(request).await {
            Ok(_) => return Ok(()),
            Err(status) => status,
        };
        if status.code() == tonic::Code::AlreadyExists {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{}: bootstrap failed: {}",
                node.name,
                ApiClientError::from(status)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
