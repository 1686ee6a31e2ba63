//! `talosctl rotate-ca`: replaces the Talos API CA (and the Kubernetes CA in the configs) across
//! a running cluster without losing access, in upstream's order. Every node must answer first,
//! or nothing changes. Then, node by node, control planes first: the new CA is accepted; it
//! becomes the issuer with the old one still accepted (nodes reissue their certificates and
//! apid reloads, no reboot); the talosconfig gets a client certificate from the new CA; the old
//! CA is dropped. A dry run (the default, as upstream's; `--dry-run=false` changes the nodes)
//! prints each node's config diff at each step and changes nothing.
//!
//! The Kubernetes half changes only what needs no Kubernetes: the new CA in `cluster.ca`, the
//! old one in `cluster.acceptedCAs`. Refreshing what the old CA issued inside Kubernetes
//! (kubelet certificates, kubeconfigs, pods) needs the API server, so it is skipped and said;
//! the old Kubernetes CA stays accepted.

mod plan;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{ArgAction, Args};
use machineconfig::{Config, MachineType};
use pki::{CaKind, CertificateAuthority, PemCertificateAndKey, Validity};
use proto::machine::ApplyConfigurationRequest;
use proto::machine::apply_configuration_request::Mode;
use talosconfig::{Credentials, Talosconfig};

use crate::cli::GlobalArgs;
use crate::cmd::edit::active_config;
use crate::connection::{Session, Target, block_on};
use crate::failures::Failures;
use plan::{Authority, Rotation, Step};
use report::{capitalized, diff, print_new_ca};

/// How long a node may take to serve and accept the new certificates after an apply.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
const SETTLE_PAUSE: Duration = Duration::from_millis(200);

#[derive(Debug, Args)]
pub struct RotateCaArgs {
    /// Rotate Talos API CA
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = true, default_missing_value = "true")]
    pub talos: bool,
    /// Rotate Kubernetes API CA
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = true, default_missing_value = "true")]
    pub kubernetes: bool,
    /// Dry-run mode (no changes to the cluster)
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = true, default_missing_value = "true")]
    pub dry_run: bool,
    /// Path to the output new talosconfig
    #[arg(short = 'o', long, default_value = "talosconfig")]
    pub output: PathBuf,
    /// Specify IPs of control plane nodes
    #[arg(long, value_delimiter = ',')]
    pub control_plane_nodes: Vec<String>,
    /// Specify IPs of worker nodes
    #[arg(long, value_delimiter = ',')]
    pub worker_nodes: Vec<String>,
    /// Specify IPs of init node
    #[arg(long)]
    pub init_node: Option<String>,
}

/// One node and its config as the rotation goes.
struct Node {
    name: String,
    config: Config,
    /// Control planes are dialled directly when checking them (they are the endpoints);
    /// workers through the talosconfig's endpoints.
    control_plane: bool,
}

/// The nodes being rotated and how to reach them.
struct Rotator<'a> {
    args: &'a RotateCaArgs,
    /// The global flags with every node listed.
    global: GlobalArgs,
    /// Control planes first.
    nodes: Vec<Node>,
}

pub fn run(args: RotateCaArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let started = Instant::now();
        let talosconfig = Talosconfig::load(&global.talosconfig_path())?;
        let (context_name, context) = talosconfig.context(global.context.as_deref())?;
        let current = context.credentials(context_name)?;
        let listed = listed_nodes(&args, global, &context.nodes)?;
        let mut global = global.clone();
        global.nodes = listed;

        println!("> Starting CA rotation, dry-run mode {}", args.dry_run);
        println!("> Using config context: {context_name:?}");
        let mut nodes = read_every_node(&global).await?;
        order_control_planes_first(&mut nodes, &args);
        println!("> Cluster topology:");
        for node in &nodes {
            let role = if node.control_plane {
                "control plane"
            } else {
                "worker"
            };
            println!("  - {}: {role}", node.name);
        }

        let save_talosconfig = |credentials: &Credentials| -> anyhow::Result<()> {
            let mut rotated = talosconfig.clone();
            *rotated.context_mut(Some(context_name))? = context.with_credentials(credentials);
            rotated.save(&args.output, atomicfile::Overwrite::Allow)?;
            println!("> Wrote the new talosconfig to {}", args.output.display());
            Ok(())
        };
        let mut rotator = Rotator {
            args: &args,
            global,
            nodes,
        };
        let mut credentials = current.clone();
        if args.talos {
            credentials = rotator.talos(&current, save_talosconfig).await?;
        }
        if args.kubernetes {
            rotator.kubernetes(&credentials).await?;
        }
        if args.dry_run {
            println!("> Dry-run mode: nothing was changed");
        } else {
            println!("> CA rotation done in {:.1?}", started.elapsed());
        }
        Ok(())
    })
}

/// The nodes named by the flags, else by `--nodes`, else by the context.
fn listed_nodes(
    args: &RotateCaArgs,
    global: &GlobalArgs,
    context_nodes: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut nodes: Vec<String> = args
        .init_node
        .iter()
        .chain(&args.control_plane_nodes)
        .chain(&args.worker_nodes)
        .cloned()
        .collect();
    if nodes.is_empty() {
        nodes = if global.nodes.is_empty() {
            context_nodes.to_vec()
        } else {
            global.nodes.clone()
        };
    }
    let mut seen = Vec::with_capacity(nodes.len());
    for node in nodes {
        anyhow::ensure!(!seen.contains(&node), "node {node} is listed twice");
        seen.push(node);
    }
    anyhow::ensure!(
        !seen.is_empty(),
        "no nodes to rotate: use --control-plane-nodes and --worker-nodes, --nodes, or the talosconfig's nodes"
    );
    Ok(seen)
}

/// Reads every node's active config: a node that does not answer stops the rotation before
/// anything changed, naming every such node.
async fn read_every_node(global: &GlobalArgs) -> anyhow::Result<Vec<Node>> {
    let session = Session::open(global).await.context(
        "cannot reach the cluster's endpoint: nothing was changed, every node must be reachable",
    )?;
    let targets = node_targets(&session);
    // Together: a node that does not answer costs one dial timeout, not one per node.
    let configs = futures_util::future::join_all(targets.iter().map(|target| async move {
        let name = target.label();
        let config = active_config(target).await.and_then(|text| {
            Config::from_yaml(&text).with_context(|| format!("decoding node {name}'s config"))
        });
        (name, config)
    }))
    .await;
    let mut nodes = Vec::with_capacity(configs.len());
    let mut unreachable = Vec::new();
    for (name, config) in configs {
        match config {
            Ok(config) => nodes.push(Node {
                control_plane: machine_type(&config).is_control_plane(),
                name,
                config,
            }),
            Err(error) => unreachable.push(format!("node {name}: {error:#}")),
        }
    }
    if !unreachable.is_empty() {
        anyhow::bail!(
            "not every node is reachable, nothing was changed:\n  {}",
            unreachable.join("\n  ")
        );
    }
    Ok(nodes)
}

fn machine_type(config: &Config) -> MachineType {
    config
        .v1alpha1
        .as_ref()
        .and_then(|v| v.machine.as_ref())
        .and_then(|m| m.machine_type.parse().ok())
        .unwrap_or(MachineType::Worker)
}

/// Control planes first (workers get their certificates from a control plane's trustd), in
/// the order listed otherwise; `--worker-nodes` count as workers whatever their config says.
fn order_control_planes_first(nodes: &mut [Node], args: &RotateCaArgs) {
    for node in nodes.iter_mut() {
        node.control_plane &= !args.worker_nodes.contains(&node.name);
    }
    nodes.sort_by_key(|node| !node.control_plane);
}

/// One target per node of the session, in its order.
fn node_targets(session: &Session) -> Vec<Target> {
    session
        .targets()
        .iter()
        .flat_map(Target::per_node)
        .collect()
}

impl Rotator<'_> {
    /// The Talos API CA: accept, swap, new talosconfig (saved once every node serves the new
    /// CA's certificates, before the old CA is dropped), drop. Returns the new client
    /// credentials.
    async fn talos(
        &mut self,
        current: &Credentials,
        save_talosconfig: impl FnOnce(&Credentials) -> anyhow::Result<()>,
    ) -> anyhow::Result<Credentials> {
        let rotation = new_rotation(Authority::Talos, &self.nodes)?;
        let new_crt = rotation.new.crt.as_deref().unwrap_or_default();
        let both_cas = format!("{}\n{}", current.ca_pem.trim_end(), new_crt.trim_end());
        let client = new_client(&rotation.new, &current.crt_pem)?;
        let with_trust = |credentials: &Credentials, ca_pem: &str| Credentials {
            ca_pem: ca_pem.to_string(),
            ..credentials.clone()
        };
        print_new_ca(&rotation);

        self.apply_step(&rotation, Step::Accept, current).await?;
        self.settle(
            "accepts the new client certificate",
            &with_trust(&client, &current.ca_pem),
        )
        .await?;
        self.apply_step(&rotation, Step::Swap, &with_trust(current, &both_cas))
            .await?;
        self.settle("serves certificates of the new CA", &client)
            .await?;
        if !self.args.dry_run {
            save_talosconfig(&client)?;
        }
        self.apply_step(&rotation, Step::Drop, &with_trust(&client, &both_cas))
            .await?;
        self.settle("still answers the new talosconfig", &client)
            .await?;
        Ok(client)
    }

    /// The Kubernetes CA in the configs: accept, swap; the rest needs Kubernetes.
    async fn kubernetes(&mut self, credentials: &Credentials) -> anyhow::Result<()> {
        let rotation = new_rotation(Authority::Kubernetes, &self.nodes)?;
        print_new_ca(&rotation);
        self.apply_step(&rotation, Step::Accept, credentials)
            .await?;
        self.apply_step(&rotation, Step::Swap, credentials).await?;
        println!(
            "> Skipped (they need the Kubernetes API server, which does not run here): refreshing \
             kubelet client certificates, the admin kubeconfig and the pods' service account \
             tokens, and removing the old Kubernetes CA from cluster.acceptedCAs (it stays \
             accepted)"
        );
        Ok(())
    }

    /// Runs `step` on every node in order, connected with `credentials`; a dry run prints
    /// each node's config diff instead.
    async fn apply_step(
        &mut self,
        rotation: &Rotation,
        step: Step,
        credentials: &Credentials,
    ) -> anyhow::Result<()> {
        println!("> {}", capitalized(&step.describe(rotation.authority)));
        let dry_run = self.args.dry_run;
        let session = match dry_run {
            true => None,
            false => Some(Session::open_with(&self.global, credentials).await?),
        };
        let targets = session.as_ref().map(node_targets).unwrap_or_default();
        for node in &mut self.nodes {
            let before = node.config.to_yaml()?;
            rotation
                .apply(step, &mut node.config)
                .with_context(|| format!("node {}", node.name))?;
            let after = node.config.to_yaml()?;
            if dry_run {
                println!("  - {}: would apply", node.name);
                print!("{}", diff(&before, &after));
                continue;
            }
            let target = targets
                .iter()
                .find(|t| t.label() == node.name)
                .with_context(|| format!("no connection for node {}", node.name))?;
            apply(target, after).await.with_context(|| {
                format!(
                    "{} CA rotation stopped at node {} ({}); nodes before it in this step are \
                     changed",
                    rotation.authority.name(),
                    node.name,
                    step.describe(rotation.authority)
                )
            })?;
            println!("  - {}: applied", node.name);
        }
        Ok(())
    }

    /// Waits until every node answers a new connection made with `credentials` (control
    /// planes dialled directly, so that each one's own certificates are checked).
    async fn settle(&self, what: &str, credentials: &Credentials) -> anyhow::Result<()> {
        if self.args.dry_run {
            return Ok(());
        }
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        for node in &self.nodes {
            let mut global = self.global.clone();
            global.nodes = vec![node.name.clone()];
            if node.control_plane {
                global.endpoints = vec![node.name.clone()];
            }
            loop {
                match answers(&global, credentials).await {
                    Ok(()) => break,
                    Err(error) if Instant::now() >= deadline => {
                        return Err(error.context(format!(
                            "waited {SETTLE_TIMEOUT:?} until node {} {what}",
                            node.name
                        )));
                    }
                    Err(_) => tokio::time::sleep(SETTLE_PAUSE).await,
                }
            }
        }
        println!("> Every node {what}");
        Ok(())
    }
}

/// Whether the one node of `global` answers Version on a new connection with `credentials`.
async fn answers(global: &GlobalArgs, credentials: &Credentials) -> anyhow::Result<()> {
    let session = Session::open_with(global, credentials).await?;
    let target = &session.targets()[0];
    target.machine().version(target.request(())?).await?;
    Ok(())
}

/// A new CA of `authority`'s kind; every node must have the same issuing CA now.
fn new_rotation(authority: Authority, nodes: &[Node]) -> anyhow::Result<Rotation> {
    let mut old: Option<(String, &str)> = None;
    for node in nodes {
        let crt = authority
            .issuing_certificate(&node.config)
            .with_context(|| format!("node {}", node.name))?;
        match &old {
            None => old = Some((crt, &node.name)),
            Some((first, first_node)) if first.trim() != crt.trim() => anyhow::bail!(
                "nodes {first_node} and {} have different {}.ca certificates: rotate them one \
                 cluster at a time",
                node.name,
                authority.section()
            ),
            Some(_) => {}
        }
    }
    let (old, _) = old.context("no nodes")?;
    let kind = match authority {
        Authority::Talos => CaKind::Talos,
        Authority::Kubernetes => CaKind::Kubernetes,
    };
    let new = pki::generate_ca(kind, Validity::for_new_ca())?;
    Ok(Rotation {
        authority,
        old,
        new,
    })
}

/// A client certificate from the new CA with the current one's name and roles.
fn new_client(ca: &PemCertificateAndKey, current_crt: &str) -> anyhow::Result<Credentials> {
    let current = pki::CertificateInfo::from_pem(current_crt)
        .context("reading the talosconfig's client certificate")?;
    let name = current.common_name.unwrap_or_else(|| "admin".into());
    let issued = CertificateAuthority::from_pair(ca)?.issue_client_certificate(
        &name,
        &current.organizations,
        Validity::from_now(pki::CLIENT_CERTIFICATE_TTL),
    )?;
    Ok(Credentials {
        ca_pem: ca.crt.clone().unwrap_or_default(),
        crt_pem: issued.crt.unwrap_or_default(),
        key_pem: issued.key.unwrap_or_default(),
    })
}

async fn apply(target: &Target, config: String) -> anyhow::Result<()> {
    let request = ApplyConfigurationRequest {
        data: config.into_bytes(),
        mode: Mode::NoReboot as i32,
        dry_run: false,
        try_mode_timeout: None,
    };
    let reply = target
        .machine()
        .apply_configuration(target.request(request)?)
        .await;
    let mut failures = Failures::default();
    target.unary(reply.map(|r| r.into_inner().messages), &mut failures);
    failures.finish()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> (RotateCaArgs, GlobalArgs) {
        let cli = Cli::parse_from(["talosctl", "rotate-ca"].iter().chain(args));
        match cli.command {
            Command::RotateCa(args) => (args, cli.global),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn upstreams_defaults_are_a_dry_run_of_both_cas() {
        let (args, _) = parse(&[]);
        assert!(args.dry_run && args.talos && args.kubernetes);
        assert_eq!(args.output, PathBuf::from("talosconfig"));
        let (args, _) = parse(&["--dry-run=false", "--kubernetes=false", "-o", "new"]);
        assert!(!args.dry_run && args.talos && !args.kubernetes);
        assert_eq!(args.output, PathBuf::from("new"));
    }

    #[test]
    fn nodes_come_from_the_flags_then_nodes_then_the_context() {
        let context = ["10.5.0.9".to_string()];
        let (args, global) = parse(&[
            "--init-node",
            "10.5.0.1",
            "--control-plane-nodes",
            "10.5.0.2,10.5.0.3",
            "--worker-nodes",
            "10.5.0.4",
            "-n",
            "10.5.0.8",
        ]);
        let listed = listed_nodes(&args, &global, &context).unwrap();
        assert_eq!(listed, ["10.5.0.1", "10.5.0.2", "10.5.0.3", "10.5.0.4"]);
        let (args, global) = parse(&["-n", "10.5.0.8"]);
        assert_eq!(
            listed_nodes(&args, &global, &context).unwrap(),
            ["10.5.0.8"]
        );
        let (args, global) = parse(&[]);
        assert_eq!(
            listed_nodes(&args, &global, &context).unwrap(),
            ["10.5.0.9"]
        );

        let error = listed_nodes(&args, &global, &[]).unwrap_err();
        assert!(
            error.to_string().starts_with("no nodes to rotate"),
            "{error}"
        );
        let (args, global) = parse(&[
            "--control-plane-nodes",
            "10.5.0.2",
            "--worker-nodes",
            "10.5.0.2",
        ]);
        let error = listed_nodes(&args, &global, &context).unwrap_err();
        assert_eq!(error.to_string(), "node 10.5.0.2 is listed twice");
    }
}
