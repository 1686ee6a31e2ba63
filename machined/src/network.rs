//! The node's network: networkd as a service, given `machine.network` whenever the active config
//! changes, and its status for the network resources of the COSI API.
//!
//! In dev mode machined shares the host's network namespace, where changing links, addresses or
//! routes would change the host: networkd runs only when machined is told it owns the network
//! (`--manage-network`, for a machined started inside a network namespace of its own).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use machineconfig::Config;
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

/// `machine.network` of `config` as YAML (empty: nothing configured).
fn network_yaml(config: Option<&Config>) -> Result<String, MachinedError> {
    let network = config.and_then(|c| c.v1alpha1.as_ref()?.machine.as_ref()?.network.as_ref());
    match network {
        Some(network) => serde_yaml::to_string(network)
            .map_err(|e| MachinedError::InvalidArgument(format!("machine.network: {e}"))),
        None => Ok(String::new()),
    }
}

/// Applies `machine.network` through networkd whenever the active config changes; runs until the
/// config watch ends. A config networkd refuses is logged and left unapplied (the network keeps
/// its previous state, as networkd changes nothing for an invalid config).
pub async fn keep_applied(machine: Arc<Machine>) {
    let mut changes = machine.config.subscribe();
    let mut networkd = client(&machine);
    let mut applied: Option<String> = None;
    loop {
        let yaml = match network_yaml(changes.borrow_and_update().as_deref()) {
            Ok(yaml) => yaml,
            Err(error) => {
                tracing::error!(%error, "cannot hand the network config to networkd");
                applied.clone().unwrap_or_default()
            }
        };
        if applied.as_deref() != Some(yaml.as_str()) {
            let request = ApplyRequest {
                network_yaml: yaml.clone(),
                kernel_ip_arg: String::new(),
            };
            match networkd.apply(request).await {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    for error in &reply.errors {
                        tracing::warn!(%error, "networkd could not apply a part of the network config");
                    }
                    tracing::info!(changes = reply.changes.len(), "network config applied");
                    applied = Some(yaml);
                }
                Err(status) if status.code() == Code::InvalidArgument => {
                    tracing::error!(error = %status.message(), "networkd refused the network config");
                    applied = Some(yaml);
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
