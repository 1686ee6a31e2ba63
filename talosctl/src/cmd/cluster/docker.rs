//! The docker provisioner: each node a container of the project's image (machined as PID 1 on
//! platform `container`, its config in `USERDATA`) on a private network the command creates;
//! the first control plane's apid (50000) and Kubernetes API (6443) published on the host's
//! loopback. Everything it makes carries the labels `talos.owned=true` and
//! `talos.cluster.name=NAME`, and is recorded in the cluster's state file before the next step.
//!
//! Docker here cannot run `--privileged` containers (the host's bounding set lacks
//! CAP_SYS_RESOURCE): nodes get every other capability, no seccomp filter, and volumes for what
//! must be writable (STATE, /var); the root filesystem stays read-only.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use machineconfig::RuntimeMode;

use super::create::{self, CommonArgs, Network};
use super::state::{ClusterState, NodeKind, NodeState};
use crate::cli::GlobalArgs;
use crate::humanize::parse_go_duration;

/// The image `cargo xtask docker-image` imports.
pub const DEFAULT_IMAGE: &str = concat!("talos-rs/talos:v", env!("CARGO_PKG_VERSION"));
/// Label on everything the provisioner creates.
const OWNED_LABEL: &str = "talos.owned=true";
/// Label naming the cluster.
const CLUSTER_LABEL: &str = "talos.cluster.name";
const API_PORT: u16 = 50000;
const KUBERNETES_PORT: u16 = 6443;

#[derive(Debug, clap::Args)]
pub struct DockerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The image to use
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// The CIDR of the cluster's network
    #[arg(long, visible_alias = "cidr", default_value = "10.5.0.0/24")]
    pub subnet: String,
    /// Host IP the first control plane's ports are published on
    #[arg(long, default_value = "127.0.0.1")]
    pub host_ip: std::net::IpAddr,
    /// More ports to publish on the first control plane: <hostPort>:<containerPort>[/<tcp|udp>]
    #[arg(short = 'p', long, value_delimiter = ',')]
    pub exposed_ports: Vec<String>,
}

/// `talosctl cluster create docker`.
pub fn create(
    name: &str,
    state_root: &Path,
    args: DockerArgs,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let plan = plan(name, &args)?;
    let dir = ClusterState::dir(state_root, name);
    preflight(name, &dir, &args.image)?;
    let first_ip = plan.nodes[0].ip;
    let configs = create::configs(
        name,
        &format!("https://{first_ip}:{KUBERNETES_PORT}"),
        &args.common,
        RuntimeMode::Container,
        &[args.host_ip.to_string()],
        None,
    )?;
    let timeout = parse_go_duration(&args.common.wait_timeout)?;

    let mut state = plan;
    state.save(&dir)?;
    if let Err(error) = provision(&mut state, &dir, &args, &configs) {
        eprintln!("creating cluster {name} failed: {error:#}; removing what was made");
        if let Err(cleanup) = destroy(name, state_root, true) {
            eprintln!("{cleanup:#}");
        }
        return Err(error);
    }
    let own = create::save_talosconfig(configs.talosconfig, &state, &dir, &args.common, global)?;
    create::bring_up(&state, &own, args.common.wait, timeout, started).with_context(|| {
        format!(
            "cluster {name} is left running: `talosctl cluster destroy --name {name}` removes its containers, volumes, network and {}",
            dir.display()
        )
    })
}

/// The cluster as it will be, checked before anything is made.
fn plan(name: &str, args: &DockerArgs) -> anyhow::Result<ClusterState> {
    for port in &args.exposed_ports {
        parse_exposed_port(port)?;
    }
    create::plan(
        name,
        &args.common,
        &Network {
            provisioner: "docker",
            cidr_flag: "subnet",
            cidr: &args.subnet,
            default_cpus: "2.0",
        },
        &args.image,
    )
}

/// `HOST:CONTAINER[/tcp|udp]`.
fn parse_exposed_port(text: &str) -> anyhow::Result<(u16, u16, &str)> {
    let bad = || format!("--exposed-ports {text:?}: expected <hostPort>:<containerPort>[/tcp|udp]");
    let (ports, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
    let (host, container) = ports.split_once(':').with_context(bad)?;
    if !matches!(protocol, "tcp" | "udp") {
        bail!(bad());
    }
    Ok((
        host.parse().with_context(bad)?,
        container.parse().with_context(bad)?,
        protocol,
    ))
}

/// Whether the Docker engine answers.
pub fn available() -> bool {
    docker(&["info", "--format", "{{.ServerVersion}}"]).is_ok()
}

/// Refuses to start when Docker does not answer, the image is missing or the name is taken.
fn preflight(name: &str, dir: &Path, image: &str) -> anyhow::Result<()> {
    if !available() {
        bail!("Docker is not running or not reachable (`docker info` fails)");
    }
    if docker(&["image", "inspect", "--format", "{{.Id}}", image]).is_err() {
        bail!(
            "image {image} not found in the local Docker engine: build it with `cargo xtask docker-image` (or pass --image)"
        );
    }
    if dir.join("state.yaml").exists() {
        bail!(
            "cluster {name:?} already exists (state in {}): remove it with `talosctl cluster destroy --name {name}`",
            dir.display()
        );
    }
    if docker(&["network", "inspect", name]).is_ok() {
        bail!("a Docker network named {name:?} already exists: choose another --name");
    }
    Ok(())
}

/// Creates the network, then each node's volumes and container, recording each in `state`.
fn provision(
    state: &mut ClusterState,
    dir: &Path,
    args: &DockerArgs,
    configs: &create::Configs,
) -> anyhow::Result<()> {
    let cluster_label = format!("{CLUSTER_LABEL}={}", state.name);
    let mtu_option = format!("com.docker.network.driver.mtu={}", state.mtu);
    let gateway = state.gateway.to_string();
    docker(&[
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        &state.cidr,
        "--gateway",
        &gateway,
        "--opt",
        &mtu_option,
        "--label",
        OWNED_LABEL,
        "--label",
        &cluster_label,
        &state.name,
    ])?;
    state.network = Some(state.name.clone());
    state.save(dir)?;
    println!("created network {} ({})", state.name, state.cidr);

    for index in 0..state.nodes.len() {
        let node = state.nodes[index].clone();
        for (suffix, _) in VOLUMES {
            let volume = format!("{}-{suffix}", node.name);
            docker(&[
                "volume",
                "create",
                "--label",
                OWNED_LABEL,
                "--label",
                &cluster_label,
                &volume,
            ])?;
            state.nodes[index].volumes.push(volume);
            state.save(dir)?;
        }
        let config = match node.kind {
            NodeKind::Controlplane => &configs.controlplane,
            NodeKind::Worker => &configs.worker,
        };
        let first = index == 0;
        run_node(state, &node, config, first.then_some(args))?;
        state.nodes[index].container = Some(node.name.clone());
        state.save(dir)?;
        println!("{} ({}): container started", node.name, node.ip);
        if first {
            let api = published(&node.name, API_PORT)?;
            state.kubernetes_endpoint = published(&node.name, KUBERNETES_PORT)?;
            state.nodes[index].ports = vec![
                format!("{api}->{API_PORT}"),
                format!("{}->{KUBERNETES_PORT}", state.kubernetes_endpoint),
            ];
            state.endpoint = api;
            state.save(dir)?;
        }
    }
    Ok(())
}

/// The node's volumes: name suffix and mount point.
const VOLUMES: [(&str, &str); 2] = [("state", "/system/state"), ("var", "/var")];

/// Starts the node's container; `publish` is set for the first control plane.
fn run_node(
    state: &ClusterState,
    node: &NodeState,
    config: &str,
    publish: Option<&DockerArgs>,
) -> anyhow::Result<String> {
    let userdata = base64::engine::general_purpose::STANDARD.encode(config);
    let memory = node.memory_bytes.to_string();
    let cpus = format!("{:.2}", node.cpus);
    let sku = format!(
        "TALOSSKU={}CPU-{}RAM",
        node.cpus.ceil() as u64,
        node.memory_bytes >> 20
    );
    let ip = node.ip.to_string();
    let cluster_label = format!("{CLUSTER_LABEL}={}", state.name);
    let type_label = format!("talos.type={}", node.kind.as_str());
    let network = state.network.clone().unwrap_or_default();
    let mut args: Vec<String> = [
        "run",
        "--detach",
        "--name",
        &node.name,
        "--hostname",
        &node.name,
        "--network",
        &network,
        "--ip",
        &ip,
        "--read-only",
        "--cap-add",
        "ALL",
        "--cap-drop",
        "SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--cpus",
        &cpus,
        "--memory",
        &memory,
        "--label",
        OWNED_LABEL,
        "--label",
        &cluster_label,
        "--label",
        &type_label,
        "--env",
        "PLATFORM=container",
        "--env",
        &sku,
        "--env",
        "USERDATA",
    ]
    .map(String::from)
    .to_vec();
    for tmpfs in ["/run", "/system", "/tmp", "/etc/kubernetes"] {
        args.extend(["--tmpfs".into(), tmpfs.into()]);
    }
    for (suffix, target) in VOLUMES {
        args.extend([
            "--mount".into(),
            format!("type=volume,source={}-{suffix},target={target}", node.name),
        ]);
    }
    if let Some(flags) = publish {
        let host = flags.host_ip;
        for port in [API_PORT, KUBERNETES_PORT] {
            args.extend(["--publish".into(), format!("{host}::{port}/tcp")]);
        }
        for exposed in &flags.exposed_ports {
            let (host_port, container_port, protocol) = parse_exposed_port(exposed)?;
            args.extend([
                "--publish".into(),
                format!("{host}:{host_port}:{container_port}/{protocol}"),
            ]);
        }
    }
    args.push(state.image.clone());
    // The config goes through the environment of `docker` itself (`--env USERDATA` copies it),
    // never on a command line other users can read.
    let output = Command::new("docker")
        .args(&args)
        .env("USERDATA", userdata)
        .output()
        .context("running docker")?;
    check(&output, &format!("docker run {}", node.name))
}

/// `127.0.0.1:49153` for the container port `port` of `container`.
fn published(container: &str, port: u16) -> anyhow::Result<String> {
    let text = docker(&["port", container, &format!("{port}/tcp")])?;
    text.lines()
        .next()
        .map(str::to_string)
        .with_context(|| format!("docker published no host port for {container}:{port}"))
}

/// `talosctl cluster destroy`: removes every container, volume and network of the cluster
/// (those in its state file and any other carrying its label), then its state folder. Running
/// it again finds nothing and says so.
pub fn destroy(name: &str, state_root: &Path, force: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = ClusterState::dir(state_root, name);
    let state = ClusterState::load(&dir)?;
    let filter = format!("label={CLUSTER_LABEL}={name}");
    let names = "{{.Name}}";
    let mut containers = lines(&docker(&[
        "ps",
        "--all",
        "--format",
        "{{.Names}}",
        "--filter",
        &filter,
    ])?);
    let mut volumes = lines(&docker(&[
        "volume", "ls", "--format", names, "--filter", &filter,
    ])?);
    let mut networks = lines(&docker(&[
        "network", "ls", "--format", names, "--filter", &filter,
    ])?);
    if let Some(state) = &state {
        for node in &state.nodes {
            containers.extend(node.container.iter().cloned());
            volumes.extend(node.volumes.iter().cloned());
        }
        networks.extend(state.network.iter().cloned());
    }
    if state.is_none() && containers.is_empty() && volumes.is_empty() && networks.is_empty() {
        println!("cluster {name}: nothing to destroy");
        return Ok(());
    }
    let mut failures = Vec::new();
    let mut remove = |what: &str, command: &[&str], items: Vec<String>| {
        let mut items = items;
        items.sort();
        items.dedup();
        for item in items {
            let mut full: Vec<&str> = command.to_vec();
            full.push(&item);
            match docker(&full) {
                Ok(_) => println!("removed {what} {item}"),
                Err(error) if is_gone(&error) => {}
                Err(error) => failures.push(format!("{what} {item}: {error:#}")),
            }
        }
    };
    remove("container", &["rm", "--force", "--volumes"], containers);
    remove("volume", &["volume", "rm", "--force"], volumes);
    remove("network", &["network", "rm"], networks);
    if !failures.is_empty() && !force {
        bail!(
            "cluster {name}: could not remove {}; state kept in {} (retry, or --force to remove it anyway)",
            failures.join("; "),
            dir.display()
        );
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        println!("removed {}", dir.display());
    }
    println!(
        "destroyed cluster {name} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        bail!("cluster {name}: could not remove {}", failures.join("; "));
    }
    Ok(())
}

/// Docker's answer for something already removed.
fn is_gone(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    text.contains("No such") || text.contains("not found")
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Runs `docker ARGS`; its stdout, or an error carrying its stderr.
fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .context("running docker (is it installed?)")?;
    check(&output, &format!("docker {}", args.first().unwrap_or(&"")))
}

fn check(output: &std::process::Output, what: &str) -> anyhow::Result<String> {
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
    }
    bail!("{what}: {}", String::from_utf8_lossy(&output.stderr).trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(line: &str) -> DockerArgs {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            docker: DockerArgs,
        }
        let words = std::iter::once("x").chain(line.split_whitespace());
        Wrapper::try_parse_from(words).unwrap().docker
    }

    #[test]
    fn plans_names_and_addresses_control_planes_first() {
        let state = plan("demo", &args("--controlplanes 3 --workers 1")).unwrap();
        let names: Vec<_> = state
            .nodes
            .iter()
            .map(|n| format!("{} {}", n.name, n.ip))
            .collect();
        assert_eq!(
            names,
            [
                "demo-controlplane-1 10.5.0.2",
                "demo-controlplane-2 10.5.0.3",
                "demo-controlplane-3 10.5.0.4",
                "demo-worker-1 10.5.0.5"
            ]
        );
        assert_eq!(state.gateway.to_string(), "10.5.0.1");
        assert_eq!(state.nodes[0].memory_bytes, 2 << 30);
    }

    #[test]
    fn refuses_bad_input_before_anything_is_made() {
        let error = |name: &str, line: &str| format!("{:#}", plan(name, &args(line)).unwrap_err());
        assert!(error("demo", "--controlplanes 0").contains("at least one control plane"));
        assert!(error("demo", "--subnet 10.5.0.0/30 --workers 2").contains("too small"));
        assert!(error("Demo_1", "").contains("lowercase"));
        assert!(error("demo", "--memory-workers 3XB").contains("unknown unit"));
        assert!(error("demo", "-p 80").contains("hostPort"));
        assert!(error("demo", "--mtu 100").contains("--mtu"));
        assert!(error("demo", "--workers 4294967295").contains("too small"));
    }
}
