//! The node's network as upstream's status resources (namespace `network`), kept current by
//! networkd's `WatchStatus` (the kernel's netlink notifications and networkd's passes), so
//! Get, List and Watch all read the state:
//!
//! - [`run`] writes what networkd reports, each kind as the owner upstream names:
//!   `AddressStatuses` (id `link/address`), `LinkStatuses` (id: the link name), `RouteStatuses`
//!   (id `family/gateway/destination/priority`), `HostnameStatuses/hostname` and
//!   `ResolverStatuses/resolvers`; what networkd no longer reports is destroyed;
//! - [`NodeAddressController`] derives `NodeAddresses`: `current`, the global addresses off
//!   loopback (IPv4 first, then by address), and `default`, the first of them (upstream's
//!   `accumulative` and filtered sets are not served: no history, no filters);
//! - [`NetworkStatusController`] derives `NetworkStatuses/status`: an address, a default route,
//!   a hostname, and the `hosts` and `resolv.conf` files.
//!
//! While networkd does not answer, the resources keep their last values. No `proto_spec`:
//! talos-rs does not carry upstream's resource protos.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use proto::talosrs::networkd::NetworkStatus;
use proto::talosrs::networkd::network_service_client::NetworkServiceClient;
use resources::{Context, Controller, Kind, Requeue, Spec, State, StateError};
use serde::{Deserialize, Serialize};

pub const ADDRESS_OWNER: &str = "network.AddressStatusController";
pub const LINK_OWNER: &str = "network.LinkStatusController";
pub const ROUTE_OWNER: &str = "network.RouteStatusController";
pub const HOSTNAME_OWNER: &str = "network.HostnameSpecController";
pub const RESOLVER_OWNER: &str = "network.ResolverSpecController";
/// Pause before dialling networkd again.
const RETRY: Duration = Duration::from_millis(250);
/// How often the network status looks again for the `hosts` and `resolv.conf` files while
/// they are missing (networkd writes them; the state does not say when).
const ETC_FILES_RECHECK: Duration = Duration::from_secs(1);

/// `AddressStatuses.net.talos.dev`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AddressStatusSpec {
    pub address: String,
    pub link_index: u32,
    pub link_name: String,
    pub family: String,
    pub scope: String,
    pub flags: u32,
}

impl Spec for AddressStatusSpec {
    const TYPE: &'static str = "AddressStatuses.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `RouteStatuses.net.talos.dev`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatusSpec {
    pub family: String,
    pub dst: String,
    pub src: String,
    pub gateway: String,
    pub out_link_index: u32,
    pub out_link_name: String,
    pub table: u32,
    pub priority: u32,
    pub scope: String,
    pub r#type: String,
    pub protocol: String,
    pub mtu: u32,
}

impl Spec for RouteStatusSpec {
    const TYPE: &'static str = "RouteStatuses.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `LinkStatuses.net.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatusSpec {
    pub index: u32,
    pub r#type: String,
    pub kind: String,
    pub link_index: u32,
    pub master_index: u32,
    pub flags: u32,
    pub hardware_addr: String,
    pub broadcast_addr: String,
    pub mtu: u32,
    pub operational_state: String,
    pub vlan_id: u32,
}

impl Spec for LinkStatusSpec {
    const TYPE: &'static str = "LinkStatuses.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `HostnameStatuses.net.talos.dev`.
#[derive(Debug, Serialize, Deserialize)]
pub struct HostnameStatusSpec {
    pub hostname: String,
    pub domainname: String,
}

impl Spec for HostnameStatusSpec {
    const TYPE: &'static str = "HostnameStatuses.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `ResolverStatuses.net.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolverStatusSpec {
    pub dns_servers: Vec<String>,
    pub search_domains: Vec<String>,
}

impl Spec for ResolverStatusSpec {
    const TYPE: &'static str = "ResolverStatuses.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `NodeAddresses.net.talos.dev`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddressSpec {
    pub addresses: Vec<String>,
    pub sort_algorithm: String,
}

impl Spec for NodeAddressSpec {
    const TYPE: &'static str = "NodeAddresses.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `NetworkStatuses.net.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatusSpec {
    pub address_ready: bool,
    pub connectivity_ready: bool,
    pub hostname_ready: bool,
    pub etc_files_ready: bool,
}

impl Spec for NetworkStatusSpec {
    const TYPE: &'static str = "NetworkStatuses.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// Follows networkd at `socket` for as long as machined runs.
pub async fn run(socket: PathBuf, state: Arc<State>) {
    loop {
        let mut client = NetworkServiceClient::new(crate::local_socket::channel(&socket));
        if let Ok(reply) = client.watch_status(()).await {
            let mut stream = reply.into_inner();
            while let Ok(Some(status)) = stream.message().await {
                if let Err(error) = publish(&state, &status) {
                    tracing::error!(%error, "cannot publish the network status");
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Writes `status` as the five status kinds, destroying what it no longer holds.
pub fn publish(state: &State, status: &NetworkStatus) -> Result<(), StateError> {
    let addresses = status.addresses.iter().map(|a| {
        let spec = AddressStatusSpec {
            address: a.address.clone(),
            link_index: a.link_index,
            link_name: a.link_name.clone(),
            family: a.family.clone(),
            scope: a.scope.clone(),
            flags: a.flags,
        };
        (format!("{}/{}", a.link_name, a.address), spec)
    });
    replace(state, ADDRESS_OWNER, addresses)?;
    let links = status.links.iter().map(|l| {
        let spec = LinkStatusSpec {
            index: l.index,
            r#type: l.r#type.clone(),
            kind: l.kind.clone(),
            link_index: l.link_index,
            master_index: l.master_index,
            flags: l.flags,
            hardware_addr: l.hardware_addr.clone(),
            broadcast_addr: l.broadcast_addr.clone(),
            mtu: l.mtu,
            operational_state: l.operational_state.clone(),
            vlan_id: l.vlan_id,
        };
        (l.name.clone(), spec)
    });
    replace(state, LINK_OWNER, links)?;
    let routes = status.routes.iter().map(|r| {
        let id = format!(
            "{}/{}/{}/{}",
            r.family, r.gateway, r.destination, r.priority
        );
        let spec = RouteStatusSpec {
            family: r.family.clone(),
            dst: r.destination.clone(),
            src: r.source.clone(),
            gateway: r.gateway.clone(),
            out_link_index: r.out_link_index,
            out_link_name: r.out_link_name.clone(),
            table: r.table,
            priority: r.priority,
            scope: r.scope.clone(),
            r#type: r.r#type.clone(),
            protocol: r.protocol.clone(),
            mtu: r.mtu,
        };
        (id, spec)
    });
    replace(state, ROUTE_OWNER, routes)?;
    let hostname = status.hostname.clone().unwrap_or_default();
    let hostname = HostnameStatusSpec {
        hostname: hostname.hostname,
        domainname: hostname.domainname,
    };
    state.write_spec(HOSTNAME_OWNER, "hostname", &hostname)?;
    let resolvers = status.resolvers.clone().unwrap_or_default();
    let resolvers = ResolverStatusSpec {
        dns_servers: resolvers.dns_servers,
        search_domains: resolvers.search_domains,
    };
    state.write_spec(RESOLVER_OWNER, "resolvers", &resolvers)?;
    Ok(())
}

/// Writes `items` of `S`'s kind as `owner` and destroys the owner's others.
fn replace<S: Spec>(
    state: &State,
    owner: &str,
    items: impl Iterator<Item = (String, S)>,
) -> Result<(), StateError> {
    let mut ids = Vec::new();
    for (id, spec) in items {
        state.write_spec(owner, &id, &spec)?;
        ids.push(id);
    }
    let kind = Kind::of::<S>();
    for resource in state.list(&kind) {
        let id = &resource.metadata.id;
        if resource.metadata.owner == owner && !ids.contains(id) {
            state.destroy(owner, &kind, id)?;
        }
    }
    Ok(())
}

fn decode<T: for<'de> Deserialize<'de>>(resource: &resources::Resource) -> Result<T, String> {
    serde_norway::from_str(&resource.yaml_spec).map_err(|e| {
        format!(
            "decoding {}/{}: {e}",
            resource.metadata.kind, resource.metadata.id
        )
    })
}

/// `AddressStatuses` → `NodeAddresses` `current` and `default`.
pub struct NodeAddressController;

impl Controller for NodeAddressController {
    fn name(&self) -> &'static str {
        "network.NodeAddressController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![Kind::of::<AddressStatusSpec>()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<NodeAddressSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let mut current = Vec::new();
            for resource in context.state().list(&Kind::of::<AddressStatusSpec>()) {
                let address: AddressStatusSpec = decode(&resource)?;
                if address.scope == "global" && address.link_name != "lo" {
                    current.push(address);
                }
            }
            current.sort_by(|a, b| {
                (a.family != "inet4", &a.address).cmp(&(b.family != "inet4", &b.address))
            });
            let current: Vec<String> = current.into_iter().map(|a| a.address).collect();
            let default = current.first().cloned().into_iter().collect();
            for (id, addresses) in [("current", current), ("default", default)] {
                let spec = NodeAddressSpec {
                    addresses,
                    sort_algorithm: "v1".into(),
                };
                context.write(id, &spec).map_err(|e| e.to_string())?;
            }
            Ok(Requeue::Never)
        })
    }
}

/// Node addresses, routes, hostname and the `hosts` and `resolv.conf` files →
/// `NetworkStatuses/status`.
pub struct NetworkStatusController {
    /// `hosts` and `resolv.conf`.
    pub etc_files: [PathBuf; 2],
}

impl Controller for NetworkStatusController {
    fn name(&self) -> &'static str {
        "network.StatusController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![
            Kind::of::<NodeAddressSpec>(),
            Kind::of::<RouteStatusSpec>(),
            Kind::of::<HostnameStatusSpec>(),
        ]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<NetworkStatusSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let state = context.state();
            let address_ready = match state.get(&Kind::of::<NodeAddressSpec>(), "current") {
                Some(current) => !decode::<NodeAddressSpec>(&current)?.addresses.is_empty(),
                None => false,
            };
            let mut connectivity_ready = false;
            for route in state.list(&Kind::of::<RouteStatusSpec>()) {
                let route: RouteStatusSpec = decode(&route)?;
                connectivity_ready |= route.r#type == "unicast"
                    && (route.dst.is_empty() || route.dst.ends_with("/0"));
            }
            let hostname_ready = match state.get(&Kind::of::<HostnameStatusSpec>(), "hostname") {
                Some(hostname) => !decode::<HostnameStatusSpec>(&hostname)?.hostname.is_empty(),
                None => false,
            };
            let etc_files_ready = self.etc_files.iter().all(|file| file.exists());
            let spec = NetworkStatusSpec {
                address_ready,
                connectivity_ready,
                hostname_ready,
                etc_files_ready,
            };
            context.write("status", &spec).map_err(|e| e.to_string())?;
            Ok(if etc_files_ready {
                Requeue::Never
            } else {
                Requeue::After(ETC_FILES_RECHECK)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proto::talosrs::networkd::{AddressStatus, HostnameStatus, LinkStatus, RouteStatus};
    use resources::{EventKind, Runtime, WatchOptions};

    use super::*;
    use crate::controllers::test_inputs::settle;

    fn address(address: &str, link: &str, family: &str, scope: &str) -> AddressStatus {
        AddressStatus {
            address: address.into(),
            link_name: link.into(),
            family: family.into(),
            scope: scope.into(),
            ..AddressStatus::default()
        }
    }

    fn spec(state: &State, kind: &Kind, id: &str) -> String {
        state.get(kind, id).unwrap().yaml_spec.clone()
    }

    #[test]
    fn a_status_is_published_with_upstreams_ids_and_owners_and_stale_ones_go() {
        let state = State::new();
        let mut status = NetworkStatus {
            links: vec![LinkStatus {
                name: "eth0".into(),
                index: 2,
                r#type: "ether".into(),
                operational_state: "up".into(),
                ..LinkStatus::default()
            }],
            addresses: vec![
                address("10.5.0.2/24", "eth0", "inet4", "global"),
                address("10.5.0.3/24", "eth0", "inet4", "global"),
            ],
            routes: vec![RouteStatus {
                family: "inet4".into(),
                gateway: "10.5.0.1".into(),
                priority: 1024,
                r#type: "unicast".into(),
                ..RouteStatus::default()
            }],
            hostname: Some(HostnameStatus {
                hostname: "cp-1".into(),
                domainname: "example.org".into(),
            }),
            ..NetworkStatus::default()
        };
        publish(&state, &status).unwrap();
        let addresses = Kind::of::<AddressStatusSpec>();
        let first = state.get(&addresses, "eth0/10.5.0.2/24").unwrap();
        assert_eq!(first.metadata.owner, "network.AddressStatusController");
        assert_eq!(
            first.yaml_spec,
            "address: 10.5.0.2/24\nlinkIndex: 0\nlinkName: eth0\nfamily: inet4\nscope: global\n\
             flags: 0\n"
        );
        let route = state
            .get(&Kind::of::<RouteStatusSpec>(), "inet4/10.5.0.1//1024")
            .unwrap();
        assert_eq!(route.metadata.owner, "network.RouteStatusController");
        let link = state.get(&Kind::of::<LinkStatusSpec>(), "eth0").unwrap();
        assert_eq!(link.metadata.owner, "network.LinkStatusController");
        assert!(link.yaml_spec.contains("operationalState: up"));
        assert_eq!(
            spec(&state, &Kind::of::<HostnameStatusSpec>(), "hostname"),
            "hostname: cp-1\ndomainname: example.org\n"
        );
        assert_eq!(
            spec(&state, &Kind::of::<ResolverStatusSpec>(), "resolvers"),
            "dnsServers: []\nsearchDomains: []\n"
        );

        // The same status again changes nothing; an address that left is destroyed.
        let mut watch = state.watch(&addresses, &WatchOptions::default());
        publish(&state, &status).unwrap();
        status.addresses.remove(0);
        publish(&state, &status).unwrap();
        let event = watch.try_next().unwrap();
        assert_eq!(event.kind, EventKind::Destroyed);
        assert_eq!(event.resource.metadata.id, "eth0/10.5.0.2/24");
        assert!(watch.try_next().is_none());
        assert_eq!(state.list(&addresses).len(), 1);
        assert_eq!(
            state
                .get(&addresses, "eth0/10.5.0.3/24")
                .unwrap()
                .metadata
                .version,
            1
        );
    }

    #[tokio::test]
    async fn node_addresses_and_the_network_status_follow_the_statuses() {
        let files = tempfile::tempdir().unwrap();
        let etc_files = [files.path().join("hosts"), files.path().join("resolv.conf")];
        let state = Arc::new(State::new());
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(NodeAddressController);
        runtime.register(NetworkStatusController {
            etc_files: etc_files.clone(),
        });
        runtime.start();
        settle().await;
        let node_addresses = Kind::of::<NodeAddressSpec>();
        let status = Kind::of::<NetworkStatusSpec>();
        assert_eq!(
            spec(&state, &node_addresses, "default"),
            "addresses: []\nsortAlgorithm: v1\n"
        );
        assert_eq!(
            spec(&state, &status, "status"),
            "addressReady: false\nconnectivityReady: false\nhostnameReady: false\n\
             etcFilesReady: false\n"
        );

        let mut network = NetworkStatus {
            addresses: vec![
                address("127.0.0.1/8", "lo", "inet4", "host"),
                address("fd00::2/64", "eth0", "inet6", "global"),
                address("fe80::1/64", "eth0", "inet6", "link"),
                address("10.5.0.3/24", "eth1", "inet4", "global"),
                address("10.5.0.2/24", "eth0", "inet4", "global"),
            ],
            routes: vec![RouteStatus {
                family: "inet4".into(),
                destination: "10.5.0.0/24".into(),
                r#type: "unicast".into(),
                ..RouteStatus::default()
            }],
            hostname: Some(HostnameStatus {
                hostname: "cp-1".into(),
                domainname: String::new(),
            }),
            ..NetworkStatus::default()
        };
        publish(&state, &network).unwrap();
        settle().await;
        assert_eq!(
            spec(&state, &node_addresses, "current"),
            "addresses:\n- 10.5.0.2/24\n- 10.5.0.3/24\n- fd00::2/64\nsortAlgorithm: v1\n"
        );
        assert_eq!(
            spec(&state, &node_addresses, "default"),
            "addresses:\n- 10.5.0.2/24\nsortAlgorithm: v1\n"
        );
        let owner = state.get(&node_addresses, "current").unwrap();
        assert_eq!(owner.metadata.owner, "network.NodeAddressController");
        // A route to one network only is no connectivity.
        assert_eq!(
            spec(&state, &status, "status"),
            "addressReady: true\nconnectivityReady: false\nhostnameReady: true\n\
             etcFilesReady: false\n"
        );

        // A default route, and the files networkd writes (noticed without a state change).
        network.routes.push(RouteStatus {
            family: "inet4".into(),
            gateway: "10.5.0.1".into(),
            r#type: "unicast".into(),
            ..RouteStatus::default()
        });
        publish(&state, &network).unwrap();
        for file in &etc_files {
            std::fs::write(file, "").unwrap();
        }
        tokio::time::sleep(ETC_FILES_RECHECK).await;
        settle().await;
        let ready = state.get(&status, "status").unwrap();
        assert_eq!(
            ready.yaml_spec,
            "addressReady: true\nconnectivityReady: true\nhostnameReady: true\netcFilesReady: true\n"
        );
        assert_eq!(ready.metadata.owner, "network.StatusController");
    }
}
