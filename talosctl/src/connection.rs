//! From the global flags to connected clients and the nodes each call is for.
//!
//! Normal mode: one client to the context's endpoints (or `--endpoints`), mutual TLS from the
//! context, and all nodes in one call (`node` for one, `nodes` for several; apid fans out).
//! Insecure mode (`-i`, maintenance): one client per node, dialled directly without verifying
//! the server (or only pinning its key with `--cert-fingerprint`), each answering for itself.
//!
//! Streams of several clients are read together ([`interleave`]): `-f` follows every node.

use std::future::Future;

use anyhow::Context as _;
use apiclient::{
    ApiClientError, Client, Endpoint, NodeMessage, NodeReply, NodeTarget, SpkiFingerprint,
};
use proto::cosi::resource::state_client::StateClient;
use proto::inspect::inspect_service_client::InspectServiceClient;
use proto::machine::machine_service_client::MachineServiceClient;
use proto::time::time_service_client::TimeServiceClient;
use talosconfig::{Credentials, Talosconfig};
use tokio_stream::{StreamExt as _, StreamMap};
use tonic::Streaming;
use tonic::transport::Channel;

use crate::cli::{GlobalArgs, InsecureArgs};
use crate::failures::Failures;
use proto::cluster::cluster_service_client::ClusterServiceClient;

/// Upstream's message when neither `--nodes` nor the context names a node.
pub const NODES_NOT_SET: &str = "nodes are not set for the command: please use `--nodes` flag or configuration file to set the nodes to run the command against";

/// Runs a node command's future on a fresh single-threaded runtime.
pub fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}

/// The clients of one command and the nodes each addresses.
#[derive(Debug)]
pub struct Session {
    targets: Vec<Target>,
    node_count: usize,
}

/// One client and the nodes its calls are for.
#[derive(Clone, Debug)]
pub struct Target {
    client: Client,
    nodes: NodeTarget,
    fallback: String,
}

impl Session {
    /// Connects with mutual TLS, as the talosconfig and the global flags say.
    pub async fn open(global: &GlobalArgs) -> anyhow::Result<Session> {
        Self::open_mutual(global).await
    }

    /// Connects as the flags say for a command that has `-i/--insecure` and
    /// `--cert-fingerprint`.
    pub async fn open_as(global: &GlobalArgs, access: &InsecureArgs) -> anyhow::Result<Session> {
        let fingerprints = access
            .cert_fingerprints
            .iter()
            .map(|text| SpkiFingerprint::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        if access.insecure {
            Self::open_insecure(global, &fingerprints).await
        } else if !fingerprints.is_empty() {
            anyhow::bail!(
                "--cert-fingerprint pins the server of an insecure connection: use it with --insecure"
            )
        } else {
            Self::open_mutual(global).await
        }
    }

    /// Connects with mutual TLS as [`Session::open`] does, with `credentials` in place of the
    /// context's (a CA rotation's intermediate client).
    pub async fn open_with(
        global: &GlobalArgs,
        credentials: &Credentials,
    ) -> anyhow::Result<Session> {
        Self::open_mutual_with(global, Some(credentials)).await
    }

    async fn open_mutual(global: &GlobalArgs) -> anyhow::Result<Session> {
        Self::open_mutual_with(global, None).await
    }

    async fn open_mutual_with(
        global: &GlobalArgs,
        credentials: Option<&Credentials>,
    ) -> anyhow::Result<Session> {
        let config = Talosconfig::load(&global.talosconfig_path())?;
        let (name, context) = config.context(global.context.as_deref())?;
        let context = match credentials {
            Some(credentials) => &context.with_credentials(credentials),
            None => context,
        };
        let nodes = if global.nodes.is_empty() {
            context.nodes.clone()
        } else {
            global.nodes.clone()
        };
        if nodes.is_empty() {
            anyhow::bail!(NODES_NOT_SET);
        }
        let client = Client::from_context(name, context, &global.endpoints).await?;
        let nodes = NodeTarget::for_nodes(&nodes);
        let fallback = nodes.fallback_label(client.endpoint());
        Ok(Session {
            node_count: nodes.nodes().len(),
            targets: vec![Target {
                client,
                nodes,
                fallback,
            }],
        })
    }

    /// Maintenance mode: no talosconfig needed; nodes from `--nodes`, else from the context if
    /// a talosconfig exists.
    async fn open_insecure(
        global: &GlobalArgs,
        fingerprints: &[SpkiFingerprint],
    ) -> anyhow::Result<Session> {
        let mut nodes = global.nodes.clone();
        if nodes.is_empty() {
            let config = Talosconfig::load_or_empty(&global.talosconfig_path())?;
            if let Ok((_, context)) = config.context(global.context.as_deref()) {
                nodes = context.nodes.clone();
            }
        }
        if nodes.is_empty() {
            anyhow::bail!(NODES_NOT_SET);
        }
        let mut targets = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let client = Client::insecure_pinned(&Endpoint::parse(node)?, fingerprints).await?;
            targets.push(Target {
                client,
                nodes: NodeTarget::Endpoint,
                fallback: node.clone(),
            });
        }
        Ok(Session {
            node_count: nodes.len(),
            targets,
        })
    }

    /// Every client with its nodes.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// How many nodes the command addresses in all.
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Refuses commands whose output cannot be split by node (raw bytes) when several nodes
    /// are addressed.
    pub fn require_one_node(&self, command: &str) -> anyhow::Result<()> {
        if self.node_count > 1 {
            anyhow::bail!("command {command:?} is not supported with multiple nodes");
        }
        Ok(())
    }
}

impl Target {
    /// A `machine.MachineService` client on this target's connection.
    pub fn machine(&self) -> MachineServiceClient<Channel> {
        self.client.machine()
    }

    /// This target's connection, for the services without a helper here.
    pub fn channel(&self) -> Channel {
        self.client.channel()
    }

    /// A `time.TimeService` client on this target's connection.
    pub fn time(&self) -> TimeServiceClient<Channel> {
        TimeServiceClient::new(self.client.channel())
    }

    /// A `cluster.ClusterService` client on this target's connection.
    pub fn cluster(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::new(self.client.channel())
    }

    /// An `inspect.InspectService` client on this target's connection.
    pub fn inspect(&self) -> InspectServiceClient<Channel> {
        InspectServiceClient::new(self.client.channel())
    }

    /// A COSI `cosi.resource.State` client on this target's connection.
    pub fn resources(&self) -> StateClient<Channel> {
        StateClient::new(self.client.channel())
            .max_decoding_message_size(apiclient::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(apiclient::MAX_MESSAGE_SIZE)
    }

    /// One target per node: for calls apid cannot fan out (COSI), or whose request depends on
    /// the node.
    pub fn per_node(&self) -> Vec<Target> {
        match self.nodes.nodes() {
            [] | [_] => vec![Target {
                client: self.client.clone(),
                nodes: NodeTarget::for_nodes(self.nodes.nodes()),
                fallback: self.fallback.clone(),
            }],
            nodes => nodes
                .iter()
                .map(|node| Target {
                    client: self.client.clone(),
                    nodes: NodeTarget::Node(node.clone()),
                    fallback: node.clone(),
                })
                .collect(),
        }
    }

    /// `message` with this target's node metadata.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, ApiClientError> {
        self.nodes.request(message)
    }

    /// The node this target is for, or its endpoint when it names none.
    pub fn label(&self) -> String {
        match self.nodes.nodes() {
            [node] => node.clone(),
            _ => self.fallback.clone(),
        }
    }

    /// `node 10.5.0.2`, `nodes 10.5.0.2, 10.5.0.3`: whom a failed call was for.
    fn describe(&self) -> String {
        match self.nodes.nodes() {
            [] => format!("node {}", self.fallback),
            [node] => format!("node {node}"),
            nodes => format!("nodes {}", nodes.join(", ")),
        }
    }

    /// The per-node elements of a unary reply, labelled with their node. Node errors and a
    /// failed call are reported to `failures`.
    pub fn unary<T: NodeMessage>(
        &self,
        reply: Result<Vec<T>, tonic::Status>,
        failures: &mut Failures,
    ) -> Vec<(String, T)> {
        let messages = match reply {
            Ok(messages) => messages,
            Err(status) => {
                self.call_failed(status, failures);
                return Vec::new();
            }
        };
        let mut successes = Vec::new();
        for message in messages {
            let NodeReply { node, result } = NodeReply::of(message, &self.fallback);
            match result {
                Ok(message) => successes.push((node, message)),
                Err(error) => failures.report(error),
            }
        }
        successes
    }

    /// Feeds every message of a server stream to `each` with its node, until the stream ends
    /// (see [`interleave`]).
    pub async fn stream<T: NodeMessage>(
        &self,
        reply: StreamReply<T>,
        failures: &mut Failures,
        each: impl FnMut(&str, T) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        interleave(vec![(self, reply)], failures, each).await
    }

    fn call_failed(&self, status: tonic::Status, failures: &mut Failures) {
        failures.report(format_args!(
            "error from {}: {}",
            self.describe(),
            ApiClientError::from(status)
        ));
    }
}

/// What a server-streaming call returns.
pub type StreamReply<T> = Result<tonic::Response<Streaming<T>>, tonic::Status>;

/// Reads server streams of several targets together, feeding every message to `each` with its
/// node as it arrives from any of them, until all have ended. Node errors and failed calls are
/// reported to `failures` (the other streams go on); an error from `each` (such as a closed
/// stdout) ends the command.
pub async fn interleave<T: NodeMessage>(
    replies: Vec<(&Target, StreamReply<T>)>,
    failures: &mut Failures,
    mut each: impl FnMut(&str, T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut streams = StreamMap::new();
    let mut targets = Vec::with_capacity(replies.len());
    for (index, (target, reply)) in replies.into_iter().enumerate() {
        match reply {
            Ok(response) => {
                streams.insert(index, response.into_inner());
            }
            Err(status) => target.call_failed(status, failures),
        }
        targets.push(target);
    }
    while let Some((index, item)) = streams.next().await {
        let target = targets[index];
        match item {
            Ok(message) => {
                let NodeReply { node, result } = NodeReply::of(message, &target.fallback);
                match result {
                    Ok(message) => each(&node, message)?,
                    Err(error) => failures.report(error),
                }
            }
            Err(status) => {
                target.call_failed(status, failures);
                streams.remove(&index);
            }
        }
    }
    Ok(())
}
