//! The command line: global flags and the command tree, as upstream talosctl spells them.

use std::path::PathBuf;

use clap::{Args, CommandFactory as _, Parser, Subcommand};

use crate::cmd::{
    apply, cgroups, cluster, config, containers, copy, dashboard, debug, diskfree, docs, edit,
    etcd, events, r#gen, get, health, inject, inspect, kubeconfig, kubernetes, list, logs,
    machineconfig, memory, mounts, netstat, pcap, power, processes, read, rotate_ca, service,
    support, time, upgrade, usage, validate, version, wipe,
};

/// A CLI for out-of-band management of Kubernetes nodes created by talos-rs.
#[derive(Debug, Parser)]
#[command(name = "talosctl", version, propagate_version = false)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The heading of the global flags in `--help`, as upstream's.
pub const GLOBAL_FLAGS: &str = "Global Flags";

/// Commands that never talk to a node (upstream's "mgmt" group): they accept the global flags
/// but their `--help` does not list them.
const OFFLINE_COMMANDS: &[&str] = &[
    "gen",
    "validate",
    "machineconfig",
    "completion",
    "cluster",
    "docs",
];

/// Flags every node command takes.
#[derive(Clone, Debug, Args)]
pub struct GlobalArgs {
    /// Target the specified nodes
    #[arg(short = 'n', long = "nodes", global = true, value_delimiter = ',', help_heading = GLOBAL_FLAGS)]
    pub nodes: Vec<String>,
    /// Override default endpoints in Talos configuration
    #[arg(short = 'e', long = "endpoints", global = true, value_delimiter = ',', help_heading = GLOBAL_FLAGS)]
    pub endpoints: Vec<String>,
    /// The path to the Talos configuration file. Defaults to 'TALOSCONFIG' env variable if set,
    /// otherwise '$HOME/.talos/config' and '/var/run/secrets/talos.dev/config' in order.
    #[arg(long, global = true, help_heading = GLOBAL_FLAGS)]
    pub talosconfig: Option<PathBuf>,
    /// Context to be used in command
    #[arg(long, global = true, help_heading = GLOBAL_FLAGS)]
    pub context: Option<String>,
    /// Cluster to connect to if a proxy endpoint is used. (No `-c` short form: `validate`
    /// uses `-c` for `--config`.)
    #[arg(long, global = true, help_heading = GLOBAL_FLAGS)]
    pub cluster: Option<String>,
    /// The path to the SideroV1 auth PGP keys directory (accepted for upstream's scripts;
    /// talos-rs has no SideroV1 auth and ignores it)
    #[arg(long = "siderov1-keys-dir", global = true, help_heading = GLOBAL_FLAGS)]
    pub siderov1_keys_dir: Option<PathBuf>,
}

/// The command tree as the binary parses and documents it: the global flags are accepted
/// everywhere but listed, under "Global Flags", only by the commands that talk to nodes.
pub fn command() -> clap::Command {
    let root = Cli::command();
    let globals: Vec<clap::Arg> = root
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .cloned()
        .collect();
    // A subcommand that already has an argument does not receive the root's copy, so each
    // top-level command gets its own, hidden on the offline ones, and passes it further down.
    let mut root = root.mut_subcommands(|sub| {
        let offline = OFFLINE_COMMANDS.contains(&sub.get_name());
        globals
            .iter()
            .fold(sub, |sub, arg| sub.arg(arg.clone().hide(offline)))
    });
    for arg in &globals {
        root = root.mut_arg(arg.get_id(), |arg| arg.hide(true));
    }
    sorted_by_name(root)
}

/// Lists flags and subcommands by name, as cobra does, not in declaration order (positional
/// arguments keep their order).
fn sorted_by_name(command: clap::Command) -> clap::Command {
    let flag_name = |arg: &clap::Arg| {
        arg.get_long()
            .map_or_else(|| arg.get_id().to_string(), str::to_owned)
    };
    let mut flags: Vec<String> = command
        .get_arguments()
        .filter(|arg| !arg.is_positional())
        .map(flag_name)
        .collect();
    flags.sort();
    let mut subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    subcommands.sort();
    command
        .mut_args(|arg| {
            if arg.is_positional() {
                return arg;
            }
            let order = flags.iter().position(|name| *name == flag_name(&arg));
            arg.display_order(order)
        })
        .mut_subcommands(|sub| {
            let order = subcommands.iter().position(|name| name == sub.get_name());
            sorted_by_name(sub).display_order(order)
        })
}

/// Whether `args` (program name first) name `apply-config` by its alias `apply`: the first
/// argument that is either name decides (a flag's value is very unlikely to be one).
pub fn called_as_alias(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .find(|arg| *arg == "apply" || *arg == "apply-config")
        .is_some_and(|arg| arg == "apply")
}

/// `-i/--insecure` and `--cert-fingerprint`: on the commands that can reach a node in
/// maintenance mode.
#[derive(Debug, Default, Args)]
pub struct InsecureArgs {
    /// Use Talos maintenance mode API (TLS without client certificate or server verification)
    #[arg(short = 'i', long)]
    pub insecure: bool,
    /// List of server certificate fingerprints to accept (SHA-256 of the public key, base64 or
    /// hex; defaults to no check)
    #[arg(long = "cert-fingerprint", value_delimiter = ',')]
    pub cert_fingerprints: Vec<String>,
}

impl GlobalArgs {
    /// The talosconfig path: `--talosconfig`, else upstream's default search.
    pub fn talosconfig_path(&self) -> PathBuf {
        self.talosconfig
            .clone()
            .unwrap_or_else(talosconfig::default_path)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate CAs, certificates, and private keys
    #[command(subcommand)]
    Gen(r#gen::GenCommand),
    /// Validate config
    Validate(validate::ValidateArgs),
    /// Machine config related commands
    #[command(name = "machineconfig", visible_alias = "mc", subcommand)]
    Machineconfig(machineconfig::MachineconfigCommand),
    /// Manage the client configuration file (talosconfig)
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Output shell completion code for the specified shell (bash, fish or zsh)
    Completion {
        /// The shell to generate completions for
        shell: clap_complete::Shell,
    },
    /// Generate documentation for the CLI or config
    #[command(hide = true)]
    Docs(docs::DocsArgs),
    /// Prints the version
    Version(version::VersionArgs),
    /// Bootstrap the etcd cluster on the specified node
    Bootstrap(etcd::BootstrapArgs),
    /// Manage etcd
    #[command(subcommand)]
    Etcd(etcd::EtcdCommand),
    /// Check cluster health
    Health(health::HealthArgs),
    /// A local Talos Kubernetes cluster
    Cluster(cluster::ClusterArgs),
    /// Dump debug information about the cluster
    Support(support::SupportArgs),
    /// Capture the network packets on the node
    #[command(visible_alias = "tcpdump")]
    Pcap(pcap::PcapArgs),
    /// Get a specific resource or list of resources
    Get(get::GetArgs),
    /// Inspect internals of Talos
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
    /// Gets current server time
    Time(time::TimeArgs),
    /// Retrieve the state of a service (or all services), control service state
    #[command(visible_alias = "services")]
    Service(service::ServiceArgs),
    /// Retrieve logs for a service
    Logs(logs::LogsArgs),
    /// Retrieve kernel logs
    Dmesg(logs::DmesgArgs),
    /// Stream runtime events
    Events(events::EventsArgs),
    /// Cluster dashboard with node overview, logs and real-time metrics
    Dashboard(dashboard::DashboardArgs),
    /// Show memory usage
    #[command(visible_aliases = ["m", "free"])]
    Memory(memory::MemoryArgs),
    /// Retrieve cgroups usage information
    #[command(visible_alias = "cg")]
    Cgroups(cgroups::CgroupsArgs),
    /// List running processes
    #[command(visible_aliases = ["p", "ps"])]
    Processes(processes::ProcessesArgs),
    /// Retrieve disk usage information for mounted volumes
    #[command(visible_alias = "df")]
    Diskfree(diskfree::DiskfreeArgs),
    /// List mounts
    #[command(visible_alias = "mount")]
    Mounts(mounts::MountsArgs),
    /// Get container stats
    Stats(containers::ContainersArgs),
    /// List containers
    #[command(visible_alias = "c")]
    Containers(containers::ContainersArgs),
    /// Restart a container
    Restart(containers::RestartArgs),
    /// Show network connections and sockets
    #[command(visible_alias = "ss")]
    Netstat(netstat::NetstatArgs),
    /// Retrieve a directory listing
    #[command(visible_alias = "ls")]
    List(list::ListArgs),
    /// Read a file on the machine
    #[command(visible_alias = "cat")]
    Read(read::ReadArgs),
    /// Download the admin kubeconfig from the node
    Kubeconfig(kubeconfig::KubeconfigArgs),
    /// Copy data out from the node
    #[command(visible_alias = "cp")]
    Copy(copy::CopyArgs),
    /// Retrieve a disk usage
    #[command(visible_alias = "du")]
    Usage(usage::UsageArgs),
    /// Apply a new configuration to a node
    #[command(name = "apply-config", visible_alias = "apply")]
    ApplyConfig(apply::ApplyArgs),
    /// Patch a resource (machineconfig) on the nodes and apply it
    Patch(edit::PatchArgs),
    /// Rotate cluster CAs (Talos and Kubernetes APIs)
    #[command(name = "rotate-ca")]
    RotateCa(rotate_ca::RotateCaArgs),
    /// Edit a resource (machineconfig) on the nodes in $EDITOR and apply it
    Edit(edit::EditArgs),
    /// Reboot a node
    Reboot(power::RebootArgs),
    /// Shutdown a node
    Shutdown(power::ShutdownArgs),
    /// Upgrade Talos on the target node
    Upgrade(upgrade::UpgradeArgs),
    /// Rollback a node to the previous installation
    Rollback,
    /// Reset a node
    Reset(power::ResetArgs),
    /// Manage CRI container images
    #[command(subcommand, visible_alias = "images")]
    Image(upgrade::ImageCommand),
    /// Run a debug container from an image archive or reference
    Debug(debug::DebugArgs),
    /// Write and delete keys in the META partition
    #[command(subcommand)]
    Meta(upgrade::MetaCommand),
    /// Wipe block device or volumes
    #[command(subcommand)]
    Wipe(wipe::WipeCommand),
    /// Upgrade Kubernetes control plane in the Talos cluster
    UpgradeK8s(kubernetes::UpgradeK8sArgs),
    /// Run conformance tests
    #[command(subcommand)]
    Conformance(kubernetes::ConformanceCommand),
    /// Inject Talos API resources into Kubernetes manifests
    #[command(subcommand)]
    Inject(inject::InjectCommand),
    /// Get the list of disks from /sys/block on the machine (removed upstream)
    #[command(hide = true)]
    Disks,
    /// List network interfaces (removed upstream)
    #[command(hide = true)]
    Interfaces,
    /// List network routes (removed upstream)
    #[command(hide = true, alias = "route")]
    Routes,
    /// Dump debug information about the cluster (removed upstream)
    #[command(hide = true)]
    Crashdump,
}
