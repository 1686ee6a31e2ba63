//! `talosctl upgrade-k8s` and `talosctl conformance kubernetes`, with upstream's flags. Both
//! drive a running Kubernetes: upgrade-k8s rolls new images through the control-plane static
//! pods and kubelets and waits on the API server; conformance runs sonobuoy's pods. talos-rs
//! nodes cannot run Kubernetes's server binaries (kube-apiserver, kube-controller-manager,
//! kube-scheduler, kubelet: their images come from a registry this environment cannot reach), so
//! each command stops with an error that says so, before contacting any node: never a pass.

use clap::{ArgAction, Args, Subcommand, ValueEnum};

/// Why neither command can run against a talos-rs cluster.
const NO_KUBERNETES: &str = "talos-rs nodes do not run kube-apiserver, kube-controller-manager, \
    kube-scheduler or the kubelet (their images need a container registry), so this cluster has \
    no Kubernetes API";

#[derive(Debug, Args)]
pub struct UpgradeK8sArgs {
    /// The Kubernetes version to upgrade from (default: the running one)
    #[arg(long)]
    pub from: Option<String>,
    /// The Kubernetes version to upgrade to
    #[arg(long)]
    pub to: Option<String>,
    /// The Kubernetes API endpoint (default: the cluster's control-plane endpoint)
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Skip the actual upgrade and show the upgrade plan instead
    #[arg(long)]
    pub dry_run: bool,
    /// Pre-pull images before the upgrade
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = true,
          default_missing_value = "true")]
    pub pre_pull_images: bool,
    /// Upgrade the kubelet service
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = true,
          default_missing_value = "true")]
    pub upgrade_kubelet: bool,
    /// kube-apiserver image to use
    #[arg(long)]
    pub apiserver_image: Option<String>,
    /// kube-controller-manager image to use
    #[arg(long)]
    pub controller_manager_image: Option<String>,
    /// kube-scheduler image to use
    #[arg(long)]
    pub scheduler_image: Option<String>,
    /// kube-proxy image to use
    #[arg(long)]
    pub proxy_image: Option<String>,
    /// kubelet image to use
    #[arg(long)]
    pub kubelet_image: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConformanceCommand {
    /// Run Kubernetes conformance tests
    #[command(visible_alias = "k8s")]
    Kubernetes(ConformanceArgs),
}

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// Conformance test mode
    #[arg(long, value_enum, default_value = "fast")]
    pub mode: ConformanceMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConformanceMode {
    Fast,
    Certified,
    NetworkPolicy,
}

pub fn upgrade_k8s(args: &UpgradeK8sArgs) -> anyhow::Result<()> {
    let target = args.to.as_deref().unwrap_or("the requested version");
    anyhow::bail!(
        "upgrade-k8s to {target}: {NO_KUBERNETES}: there are no Kubernetes components to upgrade"
    )
}

pub fn conformance(command: &ConformanceCommand) -> anyhow::Result<()> {
    let ConformanceCommand::Kubernetes(args) = command;
    anyhow::bail!(
        "conformance kubernetes --mode {}: {NO_KUBERNETES}: sonobuoy has nothing to run its tests against",
        args.mode
            .to_possible_value()
            .map_or(String::new(), |v| v.get_name().to_string())
    )
}
