//! The node's network: networkd as a service, given `machine.network` and the network documents
//! it applies ([`applied_by_networkd`]) whenever the active config changes. Its status feeds the
//! network resources ([`crate::controllers::network_status`]).
//!
//! In dev mode machined shares the host's network namespace, where changing links, addresses or
//! routes would change the host: networkd runs only when machined is told it owns the network
//! (`--manage-network`, for a machined started inside a network namespace of its own).

use std::path::Path;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use proto::talosrs::networkd::network_service_client::NetworkServiceClient;
use proto::talosrs::networkd::{ApplyRequest, ApplyResponse};
use resources::{Context, Controller, Kind, Requeue};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::controllers;
use crate::error::MachinedError;
use crate::machine::Machine;
use crate::services::{ApiOperations, HealthCheck, HostMount, ServiceSpec};

/// The networkd service: in a container it gets its socket and host-file folders and the
/// capabilities for links, addresses, routes and DHCP's packet socket.
pub fn networkd_spec(machine: &Machine, program: &Path) -> ServiceSpec {
    let root = machine.layout.root();
    machine.system_service(ServiceSpec {
        args: vec!["--state-dir".to_string(), root.display().to_string()],
        api: ApiOperations::NONE,
        mounts: vec![
            HostMount::writable(root.join("system/run/networkd")),
            HostMount::writable(root.join("system/resolved")),
            HostMount::writable(root.join("system/etc")),
        ],
        health_check: Some(HealthCheck::socket(machine.layout.networkd_socket())),
        memory_limit: Some(32 << 20),
        extra_capabilities: vec!["CAP_NET_ADMIN", "CAP_NET_RAW"],
        ..ServiceSpec::process("networkd", program)
    })
}

/// Whether networkd applies `document`. This is the one list of the network kinds talos-rs
/// applies: machined hands exactly these to networkd (merged there with `machine.network`) and
/// reports every other kind as not applied. `HostnameConfig` is also applied by machined's
/// hostname controller; networkd uses it for the hosts file and the search domain.
pub fn applied_by_networkd(document: &Document) -> bool {
    matches!(
        document,
        Document::Link(_)
            | Document::DummyLink(_)
            | Document::Vlan(_)
            | Document::Bond(_)
            | Document::Bridge(_)
            | Document::BlackholeRoute(_)
            | Document::RoutingRule(_)
            | Document::StaticHost(_)
            | Document::Resolver(_)
            | Document::Hostname(_)
    )
}

/// What networkd is given of `config`: `machine.network` as YAML (the platform's network,
/// `platform_network`, when the config has none or an empty one: `talosctl gen config` writes
/// `network: {}`) and the documents it applies as a YAML stream (empty: nothing configured).
fn network_request(
    config: Option<&Config>,
    platform_network: &str,
) -> Result<ApplyRequest, MachinedError> {
    let network = config
        .and_then(|c| c.v1alpha1.as_ref()?.machine.as_ref()?.network.as_ref())
        .filter(|network| **network != machineconfig::v1alpha1::NetworkConfig::default());
    let network_yaml = match network {
        Some(network) => serde_norway::to_string(network)
            .map_err(|e| MachinedError::InvalidArgument(format!("machine.network: {e}")))?,
        None => platform_network.to_string(),
    };
    let documents = Config {
        v1alpha1: None,
        documents: config
            .map(|c| {
                c.documents
                    .iter()
                    .filter(|d| applied_by_networkd(d))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
    };
    let documents_yaml = if documents.documents.is_empty() {
        String::new()
    } else {
        documents.to_yaml()?
    };
    Ok(ApplyRequest {
        network_yaml,
        kernel_ip_arg: String::new(),
        documents_yaml,
    })
}

/// What the network controller needs of networkd: its `Apply` call.
pub trait NetworkdClient: Send + 'static {
    fn apply(&mut self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse, Status>>;
}

impl NetworkdClient for NetworkServiceClient<Channel> {
    fn apply(&mut self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse, Status>> {
        Box::pin(async move {
            NetworkServiceClient::apply(self, request)
                .await
                .map(tonic::Response::into_inner)
        })
    }
}

/// The networkd client of the node whose networkd listens on `socket`.
pub fn networkd_client(socket: &Path) -> NetworkServiceClient<Channel> {
    NetworkServiceClient::new(crate::local_socket::channel(socket))
}

/// Hands `machine.network` and the network documents to networkd: reconciles when the config or
/// a service changes, applies once networkd runs (again after each restart) and otherwise only
/// when the request differs from the last one networkd answered. A config networkd refuses is
/// logged and left unapplied (the network keeps its previous state, as networkd changes nothing
/// for an invalid config); a networkd that does not answer yet is retried by the runtime.
#[derive(Debug)]
pub struct NetworkdConfigController<C> {
    networkd: C,
    /// `machine.network` as the platform gives it, for a config without one.
    platform_network: String,
    applied: Option<ApplyRequest>,
}

impl<C: NetworkdClient> NetworkdConfigController<C> {
    pub fn new(networkd: C, platform_network: String) -> Self {
        NetworkdConfigController {
            networkd,
            platform_network,
            applied: None,
        }
    }
}

impl<C: NetworkdClient> Controller for NetworkdConfigController<C> {
    fn name(&self) -> &'static str {
        "network.NetworkdConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![
            controllers::machine_config_kind(),
            Kind::of::<controllers::ServiceSpec>(),
        ]
    }

    fn outputs(&self) -> Vec<Kind> {
        Vec::new()
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            if !controllers::service_is_running(context.state(), "networkd") {
                // A networkd that starts again starts empty: it gets the config again.
                self.applied = None;
                return Ok(Requeue::Never);
            }
            let config = controllers::active_config(context)?;
            let request = match network_request(config.as_ref(), &self.platform_network) {
                Ok(request) => request,
                Err(error) => {
                    tracing::error!(%error, "cannot hand the network config to networkd");
                    self.applied.clone().unwrap_or_default()
                }
            };
            if self.applied.as_ref() == Some(&request) {
                return Ok(Requeue::Never);
            }
            match self.networkd.apply(request.clone()).await {
                Ok(reply) => {
                    for error in &reply.errors {
                        tracing::warn!(%error, "networkd could not apply a part of the network config");
                    }
                    tracing::info!(changes = reply.changes.len(), "network config applied");
                }
                Err(status) if status.code() == Code::InvalidArgument => {
                    tracing::error!(error = %status.message(), "networkd refused the network config");
                }
                Err(status) => return Err(format!("networkd: {}", status.message())),
            }
            self.applied = Some(request);
            Ok(Requeue::Never)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use resources::{Runtime, State};
    use tokio::sync::mpsc;

    use super::*;
    use crate::controllers::test_inputs::{settle, write_config, write_service};

    /// Records every request and answers each with the last of `answers` (`None`: success;
    /// success once they are used up).
    #[derive(Debug)]
    struct FakeNetworkd {
        calls: mpsc::UnboundedSender<ApplyRequest>,
        answers: Vec<Option<Status>>,
    }

    impl NetworkdClient for FakeNetworkd {
        fn apply(&mut self, request: ApplyRequest) -> BoxFuture<'_, Result<ApplyResponse, Status>> {
            Box::pin(async move {
                self.calls.send(request).unwrap();
                match self.answers.pop().flatten() {
                    Some(status) => Err(status),
                    None => Ok(ApplyResponse::default()),
                }
            })
        }
    }

    fn write_networkd_running(state: &State, running: bool) {
        let spec = controllers::ServiceSpec {
            running,
            healthy: running,
            unknown: false,
        };
        write_service(state, "networkd", &spec);
    }

    #[tokio::test]
    async fn networkd_gets_the_config_once_it_runs_retried_refused_and_again_after_a_restart() {
        const MTU: &str = "version: v1alpha1\nmachine:\n  network:\n    interfaces:\n    - interface: eth0\n      mtu: 1400\n";
        let platform = "interfaces:\n- interface: eth0\n  dhcp: true\n";
        let state = Arc::new(State::new());
        let (calls, mut requests) = mpsc::unbounded_channel();
        let fake = FakeNetworkd {
            calls,
            // Popped from the end: unreachable, applied, refused.
            answers: vec![
                Some(Status::invalid_argument("eth0: bad mtu")),
                None,
                Some(Status::unavailable("not listening yet")),
            ],
        };
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(NetworkdConfigController::new(fake, platform.into()));
        runtime.start();
        settle().await;
        assert!(requests.try_recv().is_err(), "networkd is not running yet");

        // Maintenance (no config): the platform's network, retried until networkd answers.
        write_networkd_running(&state, true);
        for _ in 0..2 {
            assert_eq!(requests.recv().await.unwrap().network_yaml, platform);
        }
        settle().await;
        assert!(requests.try_recv().is_err(), "applied: not sent again");

        // A config: its machine.network. networkd refuses it: logged, not retried.
        write_config(&state, MTU);
        let refused = requests.recv().await.unwrap();
        assert!(refused.network_yaml.contains("mtu: 1400"), "{refused:?}");
        settle().await;
        assert!(
            requests.try_recv().is_err(),
            "a refused config is not retried"
        );

        // networkd restarts: it gets the config again.
        write_networkd_running(&state, false);
        settle().await;
        write_networkd_running(&state, true);
        assert_eq!(requests.recv().await.unwrap(), refused);
        write_config(&state, &MTU.replace("1400", "1300"));
        assert!(
            requests
                .recv()
                .await
                .unwrap()
                .network_yaml
                .contains("mtu: 1300")
        );
        settle().await;
        assert!(requests.try_recv().is_err());
    }

    const DOCUMENTS: &str = "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\nmtu: 1400\n---\n\
        apiVersion: v1alpha1\nkind: LinkAliasConfig\nname: net0\nselector:\n  match: 'true'\n---\n\
        apiVersion: v1alpha1\nkind: StaticHostConfig\nname: 10.5.0.9\nhostnames: [db]\n";

    #[test]
    fn networkd_gets_the_kinds_it_applies_and_nothing_else() {
        let config = Config::from_yaml(DOCUMENTS).unwrap();
        let request = network_request(Some(&config), "").unwrap();
        assert_eq!(request.network_yaml, "");
        let sent = Config::from_yaml(&request.documents_yaml).unwrap();
        let kinds: Vec<&str> = sent.documents.iter().map(Document::kind).collect();
        assert_eq!(kinds, ["LinkConfig", "StaticHostConfig"]);
        assert_eq!(network_request(None, "").unwrap(), ApplyRequest::default());
        // Without machine.network (or without a config) the platform's network is applied.
        let platform = "interfaces:\n- interface: eth0\n  dhcp: true\n";
        assert_eq!(
            network_request(None, platform).unwrap().network_yaml,
            platform
        );
        assert_eq!(
            network_request(Some(&config), platform)
                .unwrap()
                .network_yaml,
            platform
        );
        // So is it with an empty one, as generated configs have.
        let empty = Config::from_yaml("version: v1alpha1\nmachine:\n  network: {}\n").unwrap();
        assert_eq!(
            network_request(Some(&empty), platform)
                .unwrap()
                .network_yaml,
            platform
        );
        // A config's machine.network replaces it.
        let own = Config::from_yaml(
            "version: v1alpha1\nmachine:\n  network:\n    nameservers: [192.0.2.53]\n",
        )
        .unwrap();
        let request = network_request(Some(&own), platform).unwrap();
        assert_eq!(request.network_yaml, "nameservers:\n- 192.0.2.53\n");
    }
}
