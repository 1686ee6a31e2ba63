//! etcd on control planes (dev mode: a child process). One task owns etcd's life on the node
//! ([`run`]): it issues the etcd PKI from `cluster.etcd.ca`, then either starts the member from
//! its data directory, joins an existing cluster (found through the etcd client port of
//! `cluster.controlPlane.endpoint`'s host) as a learner and promotes itself once caught up, or
//! waits for `Bootstrap` to start a new cluster, empty or restored from an uploaded snapshot
//! ([`recovery`]). Bootstrap is refused when the node already has etcd data or the cluster
//! already has members.

mod client;
pub mod member;
mod pki;
pub mod recovery;
pub mod spec;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::MemberAddOptions;
use machineconfig::{Config, MachineType};
use tokio::sync::{mpsc, oneshot};

pub use client::{connect, connect_for_watching, etcd_error};
pub use pki::EtcdPki;

use crate::error::MachinedError;
use crate::machine::Machine;
use crate::services::{ApiOperations, HealthCheck, HostMount, ServiceSpec};
use crate::time_sync;

/// etcd's client and peer ports.
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;
/// Pause between looks for an existing cluster, and between promotion attempts.
const DISCOVERY_PERIOD: Duration = Duration::from_secs(2);

/// A client of this node's etcd member (its client URL, with the admin certificate machined
/// issued); FailedPrecondition where the node has no etcd PKI (not a control plane, or etcd not
/// started yet).
pub async fn local_client(
    machine: &Machine,
) -> Result<(etcd_client::Client, String), MachinedError> {
    let pki = EtcdPki::new(machine.layout.root().join("system/secrets/etcd"));
    if !pki.ca().exists() {
        return Err(MachinedError::FailedPrecondition(
            "etcd is not running on this node: not a control plane, or not started yet".into(),
        ));
    }
    let url = url(machine.address(), CLIENT_PORT);
    let client = connect(&pki, std::slice::from_ref(&url)).await?;
    Ok((client, url))
}

/// The addresses of the etcd members' peer URLs: every control plane of the cluster, sorted.
pub async fn member_addresses(machine: &Machine) -> Result<Vec<IpAddr>, MachinedError> {
    let (mut client, url) = local_client(machine).await?;
    let list = client
        .member_list()
        .await
        .map_err(|e| etcd_error(&url, e))?;
    let mut addresses: Vec<IpAddr> = list
        .members()
        .iter()
        .flat_map(|member| url_addresses(member.peer_urls()))
        .collect();
    addresses.sort();
    addresses.dedup();
    Ok(addresses)
}

/// A client of the member at `member`, with this node's etcd admin identity.
pub async fn member_client(
    machine: &Machine,
    member: IpAddr,
) -> Result<etcd_client::Client, String> {
    let pki = EtcdPki::new(machine.layout.root().join("system/secrets/etcd"));
    connect(&pki, &[url(member, CLIENT_PORT)])
        .await
        .map_err(|error| format!("etcd on {member}: {error}"))
}

/// Whether every member at `members` answers without errors and knows a leader; the first
/// failure, naming its member, otherwise.
pub async fn members_healthy(machine: &Machine, members: &[IpAddr]) -> Result<(), String> {
    for &member in members {
        let mut client = member_client(machine, member).await?;
        let status = client
            .status()
            .await
            .map_err(|error| format!("etcd on {member}: {error}"))?;
        if !status.errors().is_empty() {
            return Err(format!(
                "etcd on {member} reports {}",
                status.errors().join(", ")
            ));
        }
        if status.leader() == 0 {
            return Err(format!("etcd on {member} has no leader"));
        }
    }
    Ok(())
}

/// The IP addresses that are the hosts of `urls` (`https://10.5.0.3:2380`, `https://[fd00::2]:2380`),
/// sorted; URLs with a host name or none are left out.
pub fn url_addresses(urls: &[String]) -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = urls
        .iter()
        .filter_map(|peer| {
            let host = url::Url::parse(peer).ok()?.host_str()?.to_string();
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })
        .collect();
    addresses.sort();
    addresses
}

/// How a new cluster starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootstrapMode {
    /// With no data.
    Empty,
    /// From the snapshot uploaded with `EtcdRecover`.
    Recover { skip_hash_check: bool },
}

/// A request to the etcd task.
#[derive(Debug)]
pub struct BootstrapCall {
    mode: BootstrapMode,
    reply: oneshot::Sender<Result<(), MachinedError>>,
}

/// The API's handle on the etcd task.
#[derive(Clone, Debug)]
pub struct EtcdHandle {
    bootstrap: mpsc::Sender<BootstrapCall>,
}

impl EtcdHandle {
    pub fn new() -> (EtcdHandle, mpsc::Receiver<BootstrapCall>) {
        let (bootstrap, requests) = mpsc::channel(4);
        (EtcdHandle { bootstrap }, requests)
    }

    /// Asks the etcd task to bootstrap a new cluster with this node as its first member.
    pub async fn bootstrap(&self, mode: BootstrapMode) -> Result<(), MachinedError> {
        let (reply, answer) = oneshot::channel();
        let not_running =
            || MachinedError::FailedPrecondition("etcd is not managed on this node".into());
        self.bootstrap
            .send(BootstrapCall { mode, reply })
            .await
            .map_err(|_| not_running())?;
        answer.await.map_err(|_| not_running())?
    }
}

/// What etcd on this node is built from: present on control planes with an etcd CA.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EtcdInputs {
    ca: ::pki::PemCertificateAndKey,
    /// Host of `cluster.controlPlane.endpoint`, where an existing cluster is looked for.
    endpoint_host: Option<String>,
}

impl EtcdInputs {
    fn of(config: &Config) -> Option<Self> {
        let v1alpha1 = config.v1alpha1.as_ref()?;
        let machine_type: MachineType = v1alpha1.machine.as_ref()?.machine_type.parse().ok()?;
        let cluster = v1alpha1.cluster.as_ref()?;
        let ca = cluster.etcd.as_ref()?.ca.clone()?;
        if !machine_type.is_control_plane() || ca.key.is_none() {
            return None;
        }
        let endpoint_host = cluster
            .control_plane
            .as_ref()
            .and_then(|cp| url::Url::parse(&cp.endpoint).ok())
            .and_then(|url| url.host_str().map(String::from));
        Some(EtcdInputs { ca, endpoint_host })
    }
}

/// The node's etcd member as a URL on `port`.
pub fn url(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(v4) => format!("https://{v4}:{port}"),
        IpAddr::V6(v6) => format!("https://[{v6}]:{port}"),
    }
}

/// The etcd data directory.
pub fn data_dir(machine: &Machine) -> PathBuf {
    machine.layout.root().join("var/lib/etcd")
}

/// Runs etcd on this node for as long as the config watch lives.
pub async fn run(
    machine: Arc<Machine>,
    program: PathBuf,
    mut requests: mpsc::Receiver<BootstrapCall>,
) {
    let mut changes = machine.config.subscribe();
    let inputs = loop {
        let current = changes.borrow_and_update().clone();
        if let Some(inputs) = current.as_deref().and_then(EtcdInputs::of) {
            break inputs;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            Some(call) = requests.recv() => {
                let _ = call.reply.send(Err(MachinedError::FailedPrecondition(
                    "bootstrap needs a control plane config with an etcd CA".into(),
                )));
            }
        }
    };
    let pki = EtcdPki::new(machine.layout.root().join("system/secrets/etcd"));
    if let Err(error) = pki.issue(&inputs.ca, &machine.hostname(), machine.address()) {
        tracing::error!(%error, "cannot issue etcd certificates: etcd does not run");
        refuse_forever(requests, "etcd certificates could not be issued").await;
        return;
    }
    let member = Member {
        machine: Arc::clone(&machine),
        pki,
        program,
        endpoint_host: inputs.endpoint_host,
    };
    let started = if member.has_data() {
        member.start(None).await
    } else {
        member.join_or_bootstrap(&mut requests).await
    };
    if let Err(error) = started {
        tracing::error!(%error, "cannot start etcd");
    }
    tokio::join!(
        refuse_forever(
            requests,
            "etcd is already running on this node: a cluster is bootstrapped once",
        ),
        member.reissue_after_clock_jumps(&inputs.ca),
    );
}

async fn refuse_forever(mut requests: mpsc::Receiver<BootstrapCall>, why: &str) {
    while let Some(call) = requests.recv().await {
        let _ = call
            .reply
            .send(Err(MachinedError::AlreadyExists(why.to_string())));
    }
}

/// This node's etcd member.
struct Member {
    machine: Arc<Machine>,
    pki: EtcdPki,
    program: PathBuf,
    endpoint_host: Option<String>,
}

impl Member {
    /// etcd checks certificates on its own clock: after the clock is set back, those issued
    /// before are not valid yet, and etcd refuses its peers and machined. They are issued anew
    /// (etcd reads its certificate files at every handshake).
    async fn reissue_after_clock_jumps(&self, ca: &::pki::PemCertificateAndKey) {
        let mut jumps = crate::clock::jumps();
        while jumps.changed().await.is_ok() {
            if self.pki.valid_now() {
                continue;
            }
            match self
                .pki
                .issue(ca, &self.machine.hostname(), self.machine.address())
            {
                Ok(()) => tracing::info!("the clock was set: etcd certificates issued anew"),
                Err(error) => tracing::error!(%error, "cannot issue etcd certificates anew"),
            }
        }
    }

    fn has_data(&self) -> bool {
        data_dir(&self.machine).join("member").exists()
    }

    fn peer_url(&self) -> String {
        url(self.machine.address(), PEER_PORT)
    }

    /// Waits for an existing cluster to join or for a bootstrap request.
    async fn join_or_bootstrap(
        &self,
        requests: &mut mpsc::Receiver<BootstrapCall>,
    ) -> Result<(), MachinedError> {
        loop {
            tokio::select! {
                Some(call) = requests.recv() => {
                    let result = self.bootstrap(call.mode).await;
                    let done = result.is_ok();
                    let _ = call.reply.send(result);
                    if done {
                        return Ok(());
                    }
                }
                () = tokio::time::sleep(DISCOVERY_PERIOD) => {
                    match self.join().await {
                        Ok(true) => return Ok(()),
                        Ok(false) => {}
                        Err(error) => tracing::warn!(%error, "joining the etcd cluster failed; retrying"),
                    }
                }
            }
        }
    }

    /// The members of the existing cluster, if one answers at the control-plane endpoint.
    async fn existing_cluster(&self) -> Option<(etcd_client::Client, Vec<etcd_client::Member>)> {
        let host = self.endpoint_host.as_deref()?;
        let address: IpAddr = host.parse().ok()?;
        if address == self.machine.address() {
            return None;
        }
        let mut client = connect(&self.pki, &[url(address, CLIENT_PORT)])
            .await
            .ok()?;
        let members = client.member_list().await.ok()?.members().to_vec();
        (!members.is_empty()).then_some((client, members))
    }

    async fn bootstrap(&self, mode: BootstrapMode) -> Result<(), MachinedError> {
        if self.has_data() {
            return Err(MachinedError::AlreadyExists(
                "etcd data directory is not empty".into(),
            ));
        }
        if let Some((_, members)) = self.existing_cluster().await {
            let names: Vec<&str> = members.iter().map(|m| m.name()).collect();
            return Err(MachinedError::AlreadyExists(format!(
                "the etcd cluster already has members ({}): bootstrap is refused",
                names.join(", ")
            )));
        }
        if !time_sync::wait_until_synced(&self.machine).await {
            return Err(MachinedError::FailedPrecondition(
                "time is not in sync yet".into(),
            ));
        }
        let hostname = self.machine.hostname();
        let peer_url = self.peer_url();
        if let BootstrapMode::Recover { skip_hash_check } = mode {
            let etcdctl = self.program.with_file_name("etcdctl");
            let restore = recovery::Restore {
                etcdctl: &etcdctl,
                name: &hostname,
                peer_url: &peer_url,
                data_dir: &data_dir(&self.machine),
                skip_hash_check,
            };
            recovery::restore(&self.machine, restore).await?;
        }
        let initial = format!("{hostname}={peer_url}");
        self.start(Some((initial, "new"))).await
    }

    /// Joins the cluster found at the control-plane endpoint as a learner; false when there is
    /// none yet.
    async fn join(&self) -> Result<bool, MachinedError> {
        let Some((mut client, members)) = self.existing_cluster().await else {
            return Ok(false);
        };
        let endpoint = self.endpoint_host.clone().unwrap_or_default();
        let peer_url = self.peer_url();
        // A member left behind by an earlier life of this node (same peer URL, no data here).
        if let Some(stale) = members.iter().find(|m| m.peer_urls().contains(&peer_url)) {
            client
                .member_remove(stale.id())
                .await
                .map_err(|e| etcd_error(&endpoint, e))?;
        }
        let added = client
            .member_add(
                [peer_url.clone()],
                Some(MemberAddOptions::new().with_is_learner()),
            )
            .await
            .map_err(|e| etcd_error(&endpoint, e))?;
        let own_id = added.member().map(|m| m.id()).unwrap_or_default();
        let hostname = self.machine.hostname();
        let initial: Vec<String> = added
            .member_list()
            .iter()
            .map(|m| {
                let name = if m.id() == own_id {
                    hostname.as_str()
                } else {
                    m.name()
                };
                let url = m.peer_urls().first().cloned().unwrap_or_default();
                format!("{name}={url}")
            })
            .collect();
        self.start(Some((initial.join(","), "existing"))).await?;
        tracing::info!(member = own_id, "joined the etcd cluster as a learner");
        tokio::spawn(promote(client, own_id, endpoint));
        Ok(true)
    }

    /// Registers and starts the etcd service; `initial` is the initial cluster and its state
    /// when the data directory is new.
    async fn start(&self, initial: Option<(String, &str)>) -> Result<(), MachinedError> {
        let spec = self.spec(initial);
        let services = &self.machine.services;
        match services.register(spec.clone()).await {
            Ok(()) => {}
            Err(crate::services::ServiceError::AlreadyRegistered { .. }) => {
                services.update(spec).await?
            }
            Err(error) => return Err(error.into()),
        }
        services.start("etcd").await?;
        Ok(())
    }

    fn spec(&self, initial: Option<(String, &str)>) -> ServiceSpec {
        let address = self.machine.address();
        let path = |p: PathBuf| p.display().to_string();
        let (server_crt, server_key) = self.pki.server();
        let (peer_crt, peer_key) = self.pki.peer();
        let mut args = vec![
            format!("--name={}", self.machine.hostname()),
            format!("--data-dir={}", path(data_dir(&self.machine))),
            format!("--listen-client-urls={}", url(address, CLIENT_PORT)),
            format!("--advertise-client-urls={}", url(address, CLIENT_PORT)),
            format!("--listen-peer-urls={}", self.peer_url()),
            format!("--initial-advertise-peer-urls={}", self.peer_url()),
            format!("--cert-file={}", path(server_crt)),
            format!("--key-file={}", path(server_key)),
            format!("--trusted-ca-file={}", path(self.pki.ca())),
            "--client-cert-auth=true".to_string(),
            format!("--peer-cert-file={}", path(peer_crt)),
            format!("--peer-key-file={}", path(peer_key)),
            format!("--peer-trusted-ca-file={}", path(self.pki.ca())),
            "--peer-client-cert-auth=true".to_string(),
        ];
        if let Some((cluster, state)) = initial {
            args.push(format!("--initial-cluster={cluster}"));
            args.push(format!("--initial-cluster-state={state}"));
        }
        let health = std::net::SocketAddr::new(address, CLIENT_PORT);
        self.machine.system_service(ServiceSpec {
            args,
            health_check: Some(HealthCheck::tcp(health)),
            api: ApiOperations::NONE,
            mounts: vec![
                HostMount::writable(data_dir(&self.machine)),
                HostMount::read_only(self.pki.dir()),
            ],
            ..ServiceSpec::process("etcd", &self.program)
        })
    }
}

/// Promotes the learner `id` once it has caught up with the leader.
async fn promote(mut client: etcd_client::Client, id: u64, endpoint: String) {
    loop {
        tokio::time::sleep(DISCOVERY_PERIOD).await;
        match client.member_promote(id).await {
            Ok(_) => {
                tracing::info!(member = id, "promoted to a voting etcd member");
                return;
            }
            Err(error) => tracing::debug!(%error, %endpoint, "not promoted yet"),
        }
    }
}
