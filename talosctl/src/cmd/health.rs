//! `talosctl health`: by default the checks run on the node talosctl talks to
//! (`cluster.ClusterService/HealthCheck`, its progress printed as it streams); `--server=false`
//! runs them here: the API of every node, etcd on the control planes (healthy, consistent
//! membership matching the control planes) and the services of every node, each check retried
//! until it passes or the timeout ends.
//!
//! Kubernetes checks (nodes reporting, kubelets, control-plane pods) stop at this machine's
//! boundary: no Kubernetes images can be had here, so the kubelet service is left out of the
//! service check and the Kubernetes checks are reported as skipped.

use apiclient::ApiClientError;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use proto::cluster::{ClusterInfo, HealthCheckRequest};
use proto::machine::EtcdMemberListRequest;

use crate::cli::GlobalArgs;
use crate::connection::{Session, Target, block_on};
use crate::humanize::parse_go_duration;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Specify IPs of control plane nodes
    #[arg(long = "control-plane-nodes", value_delimiter = ',')]
    pub control_plane_nodes: Vec<String>,
    /// Specify IPs of worker nodes
    #[arg(long = "worker-nodes", value_delimiter = ',')]
    pub worker_nodes: Vec<String>,
    /// Timeout to wait for the cluster to be ready
    #[arg(long, default_value = "20m")]
    pub wait_timeout: String,
    /// Run the checks on the node (the first of --nodes, else the endpoint) instead of here
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub server: bool,
}

pub fn run(args: HealthArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let timeout = parse_go_duration(&args.wait_timeout)?;
    if args.server {
        let control_planes = if args.control_plane_nodes.is_empty() {
            global.nodes.clone()
        } else {
            args.control_plane_nodes.clone()
        };
        // One node runs the checks: the first of --nodes, else the first control plane.
        let mut on = global.clone();
        on.nodes = global
            .nodes
            .first()
            .or(control_planes.first())
            .cloned()
            .into_iter()
            .collect();
        return server_side(&on, control_planes, args.worker_nodes, timeout);
    }
    block_on(async {
        let control_planes = if args.control_plane_nodes.is_empty() {
            global.nodes.clone()
        } else {
            args.control_plane_nodes.clone()
        };
        if control_planes.is_empty() {
            bail!("no control plane nodes: pass --control-plane-nodes (or -n)");
        }
        let mut everyone = global.clone();
        everyone.nodes = control_planes
            .iter()
            .chain(&args.worker_nodes)
            .cloned()
            .collect();
        let session = Session::open(&everyone).await?;
        let nodes: Vec<Target> = session
            .targets()
            .iter()
            .flat_map(Target::per_node)
            .collect();
        let (cps, workers) = nodes.split_at(control_planes.len());
        let deadline = Instant::now() + timeout;

        check("waiting for etcd to be healthy", deadline, || {
            etcd_healthy(cps)
        })
        .await?;
        check(
            "waiting for etcd members to be consistent across nodes",
            deadline,
            || etcd_members(cps),
        )
        .await?;
        check("waiting for apid to be ready", deadline, || {
            apid_ready(&nodes)
        })
        .await?;
        check(
            "waiting for all services to be running and healthy",
            deadline,
            || services_healthy(cps.iter().chain(workers)),
        )
        .await?;
        println!("skipped Kubernetes checks: no Kubernetes images can be had on this machine");
        Ok(())
    })
}

/// Runs `cluster.ClusterService/HealthCheck` on the node `global` addresses (one node at most)
/// for the given nodes (discovered by the node when `control_planes` is empty), printing each
/// progress message; fails when the node reports a failed check or the stream breaks.
pub fn server_side(
    global: &GlobalArgs,
    control_planes: Vec<String>,
    workers: Vec<String>,
    timeout: Duration,
) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        let target = &session.targets()[0];
        let request = target.request(HealthCheckRequest {
            wait_timeout: Some(prost_types::Duration {
                seconds: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
                nanos: 0,
            }),
            cluster_info: Some(ClusterInfo {
                control_plane_nodes: control_planes,
                worker_nodes: workers,
                force_endpoint: String::new(),
            }),
        })?;
        let mut stream = target
            .cluster()
            .health_check(request)
            .await
            .map_err(|status| anyhow::anyhow!("health check: {}", ApiClientError::from(status)))?
            .into_inner();
        while let Some(progress) = stream.message().await.map_err(|status| {
            anyhow::anyhow!("health check failed: {}", ApiClientError::from(status))
        })? {
            if let Some(error) = progress
                .metadata
                .as_ref()
                .map(|m| &m.error)
                .filter(|e| !e.is_empty())
            {
                bail!("health check failed: {error}");
            }
            println!("{}", progress.message);
        }
        Ok(())
    })
}

/// Prints `what`, retries `attempt` every second until it succeeds or `deadline` passes.
async fn check<F, Fut>(what: &str, deadline: Instant, mut attempt: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    println!("{what}...");
    loop {
        match attempt().await {
            Ok(()) => {
                println!("{what}: OK");
                return Ok(());
            }
            Err(error) if Instant::now() >= deadline => {
                bail!("{what}: {error:#}");
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

fn rpc(node: &str) -> impl FnOnce(tonic::Status) -> anyhow::Error + '_ {
    move |status| anyhow::anyhow!("node {node}: {}", ApiClientError::from(status))
}

async fn etcd_healthy(control_planes: &[Target]) -> anyhow::Result<()> {
    for target in control_planes {
        let node = target.label();
        let reply = target
            .machine()
            .etcd_status(target.request(())?)
            .await
            .map_err(rpc(&node))?;
        let status = reply
            .into_inner()
            .messages
            .into_iter()
            .next()
            .and_then(|m| m.member_status)
            .with_context(|| format!("node {node}: no etcd status"))?;
        if !status.errors.is_empty() {
            bail!("node {node}: etcd reports {}", status.errors.join(", "));
        }
    }
    Ok(())
}

async fn etcd_members(control_planes: &[Target]) -> anyhow::Result<()> {
    let mut seen: Option<BTreeSet<u64>> = None;
    for target in control_planes {
        let node = target.label();
        let request = target.request(EtcdMemberListRequest::default())?;
        let reply = target
            .machine()
            .etcd_member_list(request)
            .await
            .map_err(rpc(&node))?;
        let members: Vec<_> = reply
            .into_inner()
            .messages
            .into_iter()
            .flat_map(|m| m.members)
            .collect();
        if let Some(learner) = members.iter().find(|m| m.is_learner) {
            bail!(
                "node {node}: member {} is still a learner",
                learner.hostname
            );
        }
        let ids: BTreeSet<u64> = members.iter().map(|m| m.id).collect();
        if ids.len() != control_planes.len() {
            bail!(
                "node {node}: {} etcd members, expected {} control planes",
                ids.len(),
                control_planes.len()
            );
        }
        match &seen {
            Some(first) if *first != ids => bail!("node {node}: etcd members differ"),
            _ => seen = Some(ids),
        }
    }
    Ok(())
}

async fn apid_ready(nodes: &[Target]) -> anyhow::Result<()> {
    for target in nodes {
        let node = target.label();
        target
            .machine()
            .version(target.request(())?)
            .await
            .map_err(rpc(&node))?;
    }
    Ok(())
}

async fn services_healthy<'a>(nodes: impl Iterator<Item = &'a Target>) -> anyhow::Result<()> {
    for target in nodes {
        let node = target.label();
        let reply = target
            .machine()
            .service_list(target.request(())?)
            .await
            .map_err(rpc(&node))?;
        for list in reply.into_inner().messages {
            for service in list.services.iter().filter(|s| s.id != "kubelet") {
                let healthy = service
                    .health
                    .as_ref()
                    .is_none_or(|h| h.unknown || h.healthy);
                if service.state != "Running" || !healthy {
                    bail!("node {node}: service {} is {}", service.id, service.state);
                }
            }
        }
    }
    Ok(())
}
