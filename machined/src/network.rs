//! The node's network: networkd as a service, given `machine.network` and the network documents
//! it applies ([`applied_by_networkd`]) whenever the active config changes, and its status for
//! the network resources of the COSI API.
//!
//! In dev mode machined shares the host's network namespace, where changing links, addresses or
//! routes would change the host: networkd runs only when machined is told it owns the network
//! (`--manage-network`, for a machined started inside a network namespace of its own).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use machineconfig::Config;
use machineconfig::documents::Document;
use proto::talosrs::networkd::network_service_client::NetworkServiceClient;
use proto::talosrs::networkd::{ApplyRequest, NetworkStatus};
use tonic::Code;

use crate::error::MachinedError;
use crate::machine::Machine;
use crate::services::{ApiOperations, HealthCheck, HostMount, ServiceSpec};

/// Pause between attempts to reach a networkd that is not answering yet.
const APPLY_RETRY: Duration = Duration::from_millis(200);

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
            | Document::StaticHost(_)
            | Document::Resolver(_)
            | Document::Hostname(_)
    )
}

/// What networkd is given of `config`: `machine.network` as YAML (the platform's network,
/// `platform_network`, when the config has none) and the documents it applies as a YAML stream
/// (empty: nothing configured).
fn network_request(
    config: Option<&Config>,
    platform_network: &str,
) -> Result<ApplyRequest, MachinedError> {
    let network = config.and_then(|c| c.v1alpha1.as_ref()?.machine.as_ref()?.network.as_ref());
    let network_yaml = match network {
        Some(network) => serde_yaml::to_string(network)
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

/// Applies `machine.network` and the network documents through networkd whenever the active
/// config changes; runs until the config watch ends. A config networkd refuses is logged and
/// left unapplied (the network keeps its previous state, as networkd changes nothing for an
/// invalid config).
pub async fn keep_applied(machine: Arc<Machine>) {
    let mut changes = machine.config.subscribe();
    let platform_network = machine.platform.network_yaml.clone().unwrap_or_default();
    let mut networkd = client(&machine);
    let mut applied: Option<ApplyRequest> = None;
    loop {
        let request =
            match network_request(changes.borrow_and_update().as_deref(), &platform_network) {
                Ok(request) => request,
                Err(error) => {
                    tracing::error!(%error, "cannot hand the network config to networkd");
                    applied.clone().unwrap_or_default()
                }
            };
        if applied.as_ref() != Some(&request) {
            match networkd.apply(request.clone()).await {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    for error in &reply.errors {
                        tracing::warn!(%error, "networkd could not apply a part of the network config");
                    }
                    tracing::info!(changes = reply.changes.len(), "network config applied");
                    applied = Some(request);
                }
                Err(status) if status.code() == Code::InvalidArgument => {
                    tracing::error!(error = %status.message(), "networkd refused the network config");
                    applied = Some(request);
                }
                Err(status) => {
                    tracing::debug!(error = %status.message(), "networkd not reachable yet");
                    tokio::time::sleep(APPLY_RETRY).await;
                    continue;
                }
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// networkd's view of links, addresses, routes, hostname and resolvers.
pub async fn status(machine: &Machine) -> Result<NetworkStatus, MachinedError> {
    if !machine.manages_network {
        return Err(MachinedError::FailedPrecondition(
            "this node does not manage its network (dev mode without --manage-network): \
             networkd does not run"
                .into(),
        ));
    }
    client(machine)
        .status(())
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| {
            MachinedError::FailedPrecondition(format!("networkd: {}", status.message()))
        })
}

fn client(machine: &Machine) -> NetworkServiceClient<tonic::transport::Channel> {
    NetworkServiceClient::new(crate::local_socket::channel(
        &machine.layout.networkd_socket(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A config's machine.network replaces it.
        let own = Config::from_yaml(
            "version: v1alpha1\nmachine:\n  network:\n    nameservers: [192.0.2.53]\n",
        )
        .unwrap();
        let request = network_request(Some(&own), platform).unwrap();
        assert_eq!(request.network_yaml, "nameservers:\n- 192.0.2.53\n");
    }
}
