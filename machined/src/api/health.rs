//! `cluster.ClusterService/HealthCheck`: the cluster's health checked from this control plane,
//! each check retried until it passes or the wait timeout ends, its progress streamed as
//! upstream's messages (`waiting for X`, then `waiting for X: OK` or the last failure).
//!
//! etcd is asked directly (this node's etcd admin identity, every member's client URL); the
//! nodes' apid is dialled with this node's forwarding certificate and the reader role only, so
//! a health check can read what a reader may and nothing more. Kubernetes checks are reported
//! as skipped: no Kubernetes binaries can run on these machines.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use apiclient::{Client, Endpoint, TlsSettings};
use proto::cluster::cluster_service_server::ClusterService;
use proto::cluster::{HealthCheckProgress, HealthCheckRequest};
use proto::machine::machine_service_client::MachineServiceClient;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::error::MachinedError;
use crate::etcd;
use crate::machine::Machine;

/// The wait when the request names none (upstream's default).
const DEFAULT_WAIT: Duration = Duration::from_secs(20 * 60);
/// The longest wait a request may ask for.
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// The most nodes one check may cover.
const MAX_NODES: usize = 64;
/// Pause between two attempts of a check.
const RETRY: Duration = Duration::from_secs(1);
/// Connecting to a node's apid and each call may take this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The port of every node's apid.
const API_PORT: u16 = 50000;
/// Why the Kubernetes checks are skipped.
const KUBERNETES_SKIPPED: &str = "SKIPPED: no Kubernetes binaries can run on this machine";

#[derive(Clone, Debug)]
pub struct HealthApi {
    machine: Arc<Machine>,
}

impl HealthApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        HealthApi { machine }
    }
}

type ProgressStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<HealthCheckProgress, Status>> + Send>>;

#[tonic::async_trait]
impl ClusterService for HealthApi {
    async fn health_check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<ProgressStream>, Status> {
        let request = request.into_inner();
        let wait = request
            .wait_timeout
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_WAIT)
            .min(MAX_WAIT);
        let info = request.cluster_info.unwrap_or_default();
        let workers = parse_nodes("worker_nodes", &info.worker_nodes)?;
        let mut control_planes = parse_nodes("control_plane_nodes", &info.control_plane_nodes)?;
        let tls = forwarding_tls(&self.machine).map_err(Status::from)?;
        let (progress, receiver) = mpsc::channel(16);
        let machine = Arc::clone(&self.machine);
        tokio::spawn(async move {
            let deadline = Instant::now() + wait;
            let reporter = Reporter { progress, deadline };
            if control_planes.is_empty() {
                match etcd::member_addresses(&machine).await {
                    Ok(found) => control_planes = found,
                    Err(error) => {
                        reporter
                            .fail(&format!("discovering control planes: {error}"))
                            .await;
                        return;
                    }
                }
            }
            let checks = Checks {
                machine,
                control_planes,
                workers,
                tls,
            };
            if let Err(failure) = checks.run(&reporter).await {
                reporter.fail(&failure).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

fn parse_nodes(field: &str, nodes: &[String]) -> Result<Vec<IpAddr>, Status> {
    if nodes.len() > MAX_NODES {
        return Err(Status::invalid_argument(format!(
            "cluster_info.{field}: {} nodes, at most {MAX_NODES}",
            nodes.len()
        )));
    }
    let mut addresses: Vec<IpAddr> = nodes
        .iter()
        .map(|node| {
            node.parse().map_err(|_| {
                Status::invalid_argument(format!(
                    "cluster_info.{field}: {node:?} is not an IP address"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    addresses.sort();
    addresses.dedup();
    Ok(addresses)
}

/// The client certificate control planes forward with; workers hold none.
fn forwarding_tls(machine: &Machine) -> Result<TlsSettings, MachinedError> {
    let dir = machine.layout.apid_tls_dir();
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    let (Ok(ca_pem), Ok(crt_pem), Ok(key_pem)) =
        (read("ca.crt"), read("client.crt"), read("client.key"))
    else {
        return Err(MachinedError::FailedPrecondition(
            "health checks run on a configured control plane: this node holds no client certificate for the other nodes".into(),
        ));
    };
    TlsSettings::mutual(&talosconfig::Credentials {
        ca_pem,
        crt_pem,
        key_pem,
    })
    .map_err(|error| MachinedError::Internal(format!("forwarding credentials: {error}")))
}

/// Sends progress until the client goes away.
struct Reporter {
    progress: mpsc::Sender<Result<HealthCheckProgress, Status>>,
    deadline: Instant,
}

impl Reporter {
    async fn say(&self, message: String) -> bool {
        let progress = HealthCheckProgress {
            metadata: None,
            message,
        };
        self.progress.send(Ok(progress)).await.is_ok()
    }

    async fn fail(&self, failure: &str) {
        let _ = self
            .progress
            .send(Err(Status::deadline_exceeded(failure.to_string())))
            .await;
    }

    /// Runs `attempt` until it passes; the failure of the last attempt when the deadline
    /// passes or the client left.
    async fn check<F, Fut>(&self, what: &str, mut attempt: F) -> Result<(), String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        if !self.say(format!("waiting for {what}")).await {
            return Err("the client left".into());
        }
        let mut last = String::new();
        loop {
            let failure = match tokio::time::timeout_at(self.deadline, attempt()).await {
                Ok(Ok(())) => {
                    self.say(format!("waiting for {what}: OK")).await;
                    return Ok(());
                }
                Ok(Err(failure)) => failure,
                Err(_) => format!("{last} (timed out)"),
            };
            if Instant::now() + RETRY >= self.deadline {
                return Err(format!("waiting for {what}: {failure}"));
            }
            if failure != last && !self.say(format!("waiting for {what}: {failure}")).await {
                return Err("the client left".into());
            }
            last = failure;
            tokio::time::sleep(RETRY).await;
        }
    }
}

struct Checks {
    machine: Arc<Machine>,
    control_planes: Vec<IpAddr>,
    workers: Vec<IpAddr>,
    tls: TlsSettings,
}

impl Checks {
    async fn run(&self, reporter: &Reporter) -> Result<(), String> {
        let list = |nodes: &[IpAddr]| {
            nodes
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        reporter
            .say(format!(
                "discovered nodes: control plane: [{}], worker: [{}]",
                list(&self.control_planes),
                list(&self.workers)
            ))
            .await;
        reporter
            .check("etcd to be healthy", || self.etcd_healthy())
            .await?;
        reporter
            .check("etcd members to be consistent across nodes", || {
                self.etcd_consistent()
            })
            .await?;
        reporter
            .check("etcd members to be control plane nodes", || {
                self.etcd_members_are_control_planes()
            })
            .await?;
        reporter
            .check("apid to be ready", || async {
                self.versions().await.map(drop)
            })
            .await?;
        reporter
            .check("all nodes to run the same Talos version", || {
                self.same_version()
            })
            .await?;
        reporter
            .check("all services to be running and healthy", || {
                self.services_healthy()
            })
            .await?;
        for what in [
            "kubelet to be healthy",
            "all k8s nodes to report",
            "all control plane static pods to be running",
        ] {
            reporter
                .say(format!("waiting for {what}: {KUBERNETES_SKIPPED}"))
                .await;
        }
        Ok(())
    }

    fn everyone(&self) -> impl Iterator<Item = &IpAddr> {
        self.control_planes.iter().chain(&self.workers)
    }

    async fn etcd_client(&self, member: IpAddr) -> Result<etcd_client::Client, String> {
        etcd::member_client(&self.machine, member).await
    }

    async fn etcd_healthy(&self) -> Result<(), String> {
        etcd::members_healthy(&self.machine, &self.control_planes).await
    }

    /// Every member's list, as IDs and peer addresses; learners are not healthy yet.
    async fn member_lists(&self) -> Result<Vec<(IpAddr, BTreeSet<(u64, Vec<IpAddr>)>)>, String> {
        let mut lists = Vec::new();
        for &member in &self.control_planes {
            let mut client = self.etcd_client(member).await?;
            let reply = client
                .member_list()
                .await
                .map_err(|error| format!("etcd on {member}: {error}"))?;
            let mut members = BTreeSet::new();
            for listed in reply.members() {
                if listed.is_learner() {
                    return Err(format!(
                        "etcd on {member}: member {} is still a learner",
                        listed.name()
                    ));
                }
                members.insert((listed.id(), etcd::url_addresses(listed.peer_urls())));
            }
            lists.push((member, members));
        }
        Ok(lists)
    }

    async fn etcd_consistent(&self) -> Result<(), String> {
        let lists = self.member_lists().await?;
        if let Some((first, expected)) = lists.first() {
            for (member, members) in &lists[1..] {
                if members != expected {
                    return Err(format!(
                        "etcd on {member} lists other members than etcd on {first}"
                    ));
                }
            }
        }
        Ok(())
    }

    async fn etcd_members_are_control_planes(&self) -> Result<(), String> {
        let lists = self.member_lists().await?;
        let Some((_, members)) = lists.first() else {
            return Err("no control planes".into());
        };
        let addresses: BTreeSet<IpAddr> = members
            .iter()
            .flat_map(|(_, peers)| peers.iter().copied())
            .collect();
        let expected: BTreeSet<IpAddr> = self.control_planes.iter().copied().collect();
        if addresses != expected {
            return Err(format!(
                "etcd members are at {addresses:?}, control planes at {expected:?}"
            ));
        }
        Ok(())
    }

    async fn node(&self, node: IpAddr) -> Result<MachineServiceClient<Channel>, String> {
        let endpoint = Endpoint::parse(&std::net::SocketAddr::new(node, API_PORT).to_string())
            .map_err(|error| format!("node {node}: {error}"))?;
        let client = Client::connect(&[endpoint], &self.tls, CALL_TIMEOUT)
            .await
            .map_err(|error| format!("node {node}: {error}"))?;
        Ok(client.machine())
    }

    /// A request as a reader.
    fn as_reader<T>(message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(CALL_TIMEOUT);
        request.metadata_mut().insert(
            authz::METADATA_ROLE,
            tonic::metadata::MetadataValue::from_static("os:reader"),
        );
        request
    }

    async fn same_version(&self) -> Result<(), String> {
        let versions = self.versions().await?;
        if versions.len() > 1 {
            return Err(format!("nodes run different versions: {versions:?}"));
        }
        Ok(())
    }

    /// The version tags the nodes' apid reports (each node must answer).
    async fn versions(&self) -> Result<BTreeSet<String>, String> {
        let mut versions = BTreeSet::new();
        for &node in self.everyone() {
            let reply = self
                .node(node)
                .await?
                .version(Self::as_reader(()))
                .await
                .map_err(|status| format!("node {node}: {}", status.message()))?;
            for message in reply.into_inner().messages {
                if let Some(version) = message.version {
                    versions.insert(version.tag);
                }
            }
        }
        Ok(versions)
    }

    async fn services_healthy(&self) -> Result<(), String> {
        for &node in self.everyone() {
            let reply = self
                .node(node)
                .await?
                .service_list(Self::as_reader(()))
                .await
                .map_err(|status| format!("node {node}: {}", status.message()))?;
            for list in reply.into_inner().messages {
                for service in list.services.iter().filter(|s| s.id != "kubelet") {
                    let healthy = service
                        .health
                        .as_ref()
                        .is_none_or(|h| h.unknown || h.healthy);
                    if service.state != "Running" {
                        return Err(format!(
                            "node {node}: service {:?} is {}",
                            service.id, service.state
                        ));
                    }
                    if !healthy {
                        return Err(format!(
                            "node {node}: service {:?} is running but not healthy yet",
                            service.id
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_must_be_addresses_and_few() {
        let parsed = parse_nodes("worker_nodes", &["10.5.0.3".into(), "10.5.0.3".into()]);
        assert_eq!(parsed.unwrap(), vec!["10.5.0.3".parse::<IpAddr>().unwrap()]);
        let error = parse_nodes("worker_nodes", &["node-1".into()]).unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(error.message().contains("\"node-1\" is not an IP address"));
        let many: Vec<String> = (0..65).map(|i| format!("10.0.0.{i}")).collect();
        assert!(
            parse_nodes("control_plane_nodes", &many)
                .unwrap_err()
                .message()
                .contains("at most 64")
        );
    }

    #[test]
    fn peer_urls_give_their_hosts() {
        let urls = [
            "https://10.5.0.3:2380".to_string(),
            "https://[fd00::2]:2380".to_string(),
            "junk".to_string(),
        ];
        let addresses = etcd::url_addresses(&urls);
        assert_eq!(
            addresses,
            vec![
                "10.5.0.3".parse::<IpAddr>().unwrap(),
                "fd00::2".parse().unwrap()
            ]
        );
    }
}
