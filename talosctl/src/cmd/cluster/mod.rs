//! `talosctl cluster create docker|qemu`, `show`, `destroy`: local clusters, as upstream's
//! provisioners make them. The docker provisioner ([`docker`]) runs each node as a container of
//! the project's image on a private network; the qemu provisioner ([`qemu`]) as a VM on a bridge
//! inside a network namespace, its ports published by [`forward`]; [`create`] holds what every provisioner shares (configs, the
//! talosconfig, waiting for the nodes, bootstrap, health); [`state`] records what was made so
//! that `destroy` removes exactly that.

mod create;
mod docker;
mod forward;
mod qemu;
mod sizes;
mod spinner;
mod state;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::GlobalArgs;
use state::ClusterState;

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The name of the cluster
    #[arg(long, global = true, default_value = "talos-default")]
    pub name: String,
    /// Directory path to store cluster state
    #[arg(long, global = true)]
    pub state: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Creates a local Talos cluster
    #[command(subcommand)]
    Create(CreateCommand),
    /// Shows info about a local provisioned Talos cluster
    Show,
    /// Destroys a local Talos cluster
    Destroy(DestroyArgs),
    /// Publishes a QEMU cluster's ports on the host (started by `cluster create qemu`)
    #[command(hide = true)]
    Forward(forward::ForwardArgs),
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Creates a local Docker-based Talos cluster
    Docker(Box<docker::DockerArgs>),
    /// Creates a local QEMU-based Talos cluster
    Qemu(Box<qemu::QemuArgs>),
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Remove the cluster's state folder even when removing a container, volume or network failed
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn run(args: ClusterArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let state_root = args.state.clone().unwrap_or_else(default_state_root);
    match args.command {
        ClusterCommand::Create(CreateCommand::Docker(docker_args)) => {
            docker::create(&args.name, &state_root, *docker_args, global)
        }
        ClusterCommand::Create(CreateCommand::Qemu(qemu_args)) => {
            qemu::create(&args.name, &state_root, *qemu_args, global)
        }
        ClusterCommand::Show => show(&args.name, &state_root),
        ClusterCommand::Destroy(destroy) => destroy_cluster(&args.name, &state_root, destroy.force),
        ClusterCommand::Forward(forward_args) => forward::run(forward_args),
    }
}

/// Removes the cluster as its provisioner made it; without a state file, whatever carries its
/// name (Docker labels, the QEMU namespace).
fn destroy_cluster(name: &str, state_root: &std::path::Path, force: bool) -> anyhow::Result<()> {
    let dir = ClusterState::dir(state_root, name);
    match ClusterState::load(&dir)? {
        Some(state) if state.provisioner == "qemu" => {
            let started = std::time::Instant::now();
            qemu::destroy(&state, &dir)?;
            println!(
                "destroyed cluster {name} ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Some(_) => docker::destroy(name, state_root, force),
        None => {
            let found = qemu::destroy_leftovers(name)?;
            match docker::destroy(name, state_root, force) {
                Err(_) if !docker::available() => {
                    if !found {
                        println!("cluster {name}: nothing to destroy");
                    }
                    Ok(())
                }
                result => result,
            }
        }
    }
}

/// `~/.talos/clusters`.
fn default_state_root() -> PathBuf {
    talosconfig::default_path()
        .parent()
        .map_or_else(|| PathBuf::from(".talos"), PathBuf::from)
        .join("clusters")
}

fn show(name: &str, state_root: &std::path::Path) -> anyhow::Result<()> {
    let dir = ClusterState::dir(state_root, name);
    let Some(state) = ClusterState::load(&dir)? else {
        anyhow::bail!(
            "cluster {name:?} not found (no state in {}): create it with `talosctl cluster create docker --name {name}`",
            dir.display()
        );
    };
    print!("{}", describe(&state));
    Ok(())
}

fn describe(state: &ClusterState) -> String {
    let mut out = String::new();
    let mut field = |key: &str, value: &str| out.push_str(&format!("{key:<22}{value}\n"));
    field("PROVISIONER", &state.provisioner);
    field("NAME", &state.name);
    field("NETWORK NAME", state.network.as_deref().unwrap_or("-"));
    field("NETWORK CIDR", &state.cidr);
    field("NETWORK GATEWAY", &state.gateway.to_string());
    field("NETWORK MTU", &state.mtu.to_string());
    field("IMAGE", &state.image);
    field("TALOS API ENDPOINT", or_dash(&state.endpoint));
    field(
        "KUBERNETES ENDPOINT",
        &if state.kubernetes_endpoint.is_empty() {
            "-".to_string()
        } else {
            format!("https://{}", state.kubernetes_endpoint)
        },
    );
    out.push_str("\nNODES:\n\n");
    let width = state
        .nodes
        .iter()
        .map(|n| n.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "{:<width$}  {:<12}  {:<15}  {:<5}  {:<9}  {:<9}  {}\n",
        "NAME", "TYPE", "IP", "CPU", "RAM", "DISK", "PORTS"
    ));
    for node in &state.nodes {
        out.push_str(&format!(
            "{:<width$}  {:<12}  {:<15}  {:<5.2}  {:<9}  {:<9}  {}\n",
            node.name,
            node.kind.as_str(),
            node.ip,
            node.cpus,
            sizes::human_bytes(node.memory_bytes),
            if node.disk_bytes == 0 {
                "-".to_string()
            } else {
                sizes::human_bytes(node.disk_bytes)
            },
            or_dash(&node.ports.join(",")),
        ));
    }
    out
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}
