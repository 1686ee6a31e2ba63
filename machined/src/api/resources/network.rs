//! networkd's status as upstream's network status resources (namespace `network`): ids and YAML
//! specs in upstream's field names. No `proto_spec`: talos-rs does not carry upstream's
//! resource-definition protos.

use proto::talosrs::networkd::NetworkStatus;
use serde::Serialize;

use super::catalog::{
    ADDRESS_STATUS_TYPE, HOSTNAME_STATUS_TYPE, LINK_STATUS_TYPE, NETWORK_STATUS_TYPE,
    NODE_ADDRESS_TYPE, RESOLVER_STATUS_TYPE, ROUTE_STATUS_TYPE,
};
use crate::error::MachinedError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AddressSpec<'a> {
    address: &'a str,
    link_index: u32,
    link_name: &'a str,
    family: &'a str,
    scope: &'a str,
    flags: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteSpec<'a> {
    family: &'a str,
    dst: &'a str,
    src: &'a str,
    gateway: &'a str,
    out_link_index: u32,
    out_link_name: &'a str,
    table: u32,
    priority: u32,
    scope: &'a str,
    r#type: &'a str,
    protocol: &'a str,
    mtu: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LinkSpec<'a> {
    index: u32,
    r#type: &'a str,
    kind: &'a str,
    link_index: u32,
    master_index: u32,
    flags: u32,
    hardware_addr: &'a str,
    broadcast_addr: &'a str,
    mtu: u32,
    operational_state: &'a str,
    vlan_id: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HostnameSpec<'a> {
    hostname: &'a str,
    domainname: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResolverSpec<'a> {
    dns_servers: &'a [String],
    search_domains: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeAddressSpec<'a> {
    addresses: Vec<&'a str>,
    sort_algorithm: &'a str,
}

/// `NetworkStatuses.net.talos.dev/status`: whether the node has an address, a default route,
/// a hostname, and its `hosts` and `resolv.conf` files.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NetworkStatusSpec {
    address_ready: bool,
    connectivity_ready: bool,
    hostname_ready: bool,
    etc_files_ready: bool,
}

impl NetworkStatusSpec {
    fn of(status: &NetworkStatus, etc_files_ready: bool) -> Self {
        let current = node_addresses(status)
            .into_iter()
            .find(|(id, _)| *id == "current")
            .map(|(_, addresses)| addresses)
            .unwrap_or_default();
        NetworkStatusSpec {
            address_ready: !current.is_empty(),
            connectivity_ready: status.routes.iter().any(|r| r.destination.ends_with("/0")),
            hostname_ready: status
                .hostname
                .as_ref()
                .is_some_and(|h| !h.hostname.is_empty()),
            etc_files_ready,
        }
    }
}

/// upstream's node addresses: `current`, the node's global-scope addresses (IPv4 first, then by
/// address), and `default`, the first of them. (Upstream's `accumulative` and filtered sets are
/// not served: talos-rs keeps no history of addresses and has no filters.)
fn node_addresses(status: &NetworkStatus) -> Vec<(&'static str, Vec<&str>)> {
    let mut current: Vec<&proto::talosrs::networkd::AddressStatus> = status
        .addresses
        .iter()
        .filter(|a| a.scope == "global" && a.link_name != "lo")
        .collect();
    current.sort_by_key(|a| (a.family != "inet4", a.address.clone()));
    let current: Vec<&str> = current.iter().map(|a| a.address.as_str()).collect();
    let default = current.first().map(|a| vec![*a]).unwrap_or_default();
    vec![("current", current), ("default", default)]
}

/// `(id, YAML spec)` of every resource of `resource_type` in `status` (`etc_files_ready`: the
/// `hosts` and `resolv.conf` files exist).
pub fn resources(
    resource_type: &str,
    status: &NetworkStatus,
    etc_files_ready: bool,
) -> Result<Vec<(String, String)>, MachinedError> {
    let items = match resource_type {
        ADDRESS_STATUS_TYPE => status
            .addresses
            .iter()
            .map(|a| {
                let spec = AddressSpec {
                    address: &a.address,
                    link_index: a.link_index,
                    link_name: &a.link_name,
                    family: &a.family,
                    scope: &a.scope,
                    flags: a.flags,
                };
                Ok((format!("{}/{}", a.link_name, a.address), yaml(&spec)?))
            })
            .collect::<Result<Vec<_>, MachinedError>>()?,
        ROUTE_STATUS_TYPE => status
            .routes
            .iter()
            .map(|r| {
                let spec = RouteSpec {
                    family: &r.family,
                    dst: &r.destination,
                    src: &r.source,
                    gateway: &r.gateway,
                    out_link_index: r.out_link_index,
                    out_link_name: &r.out_link_name,
                    table: r.table,
                    priority: r.priority,
                    scope: &r.scope,
                    r#type: &r.r#type,
                    protocol: &r.protocol,
                    mtu: r.mtu,
                };
                let id = format!(
                    "{}/{}/{}/{}",
                    r.family, r.gateway, r.destination, r.priority
                );
                Ok((id, yaml(&spec)?))
            })
            .collect::<Result<Vec<_>, MachinedError>>()?,
        LINK_STATUS_TYPE => status
            .links
            .iter()
            .map(|l| {
                let spec = LinkSpec {
                    index: l.index,
                    r#type: &l.r#type,
                    kind: &l.kind,
                    link_index: l.link_index,
                    master_index: l.master_index,
                    flags: l.flags,
                    hardware_addr: &l.hardware_addr,
                    broadcast_addr: &l.broadcast_addr,
                    mtu: l.mtu,
                    operational_state: &l.operational_state,
                    vlan_id: l.vlan_id,
                };
                Ok((l.name.clone(), yaml(&spec)?))
            })
            .collect::<Result<Vec<_>, MachinedError>>()?,
        HOSTNAME_STATUS_TYPE => {
            let hostname = status.hostname.clone().unwrap_or_default();
            let spec = HostnameSpec {
                hostname: &hostname.hostname,
                domainname: &hostname.domainname,
            };
            vec![("hostname".to_string(), yaml(&spec)?)]
        }
        RESOLVER_STATUS_TYPE => {
            let resolvers = status.resolvers.clone().unwrap_or_default();
            let spec = ResolverSpec {
                dns_servers: &resolvers.dns_servers,
                search_domains: &resolvers.search_domains,
            };
            vec![("resolvers".to_string(), yaml(&spec)?)]
        }
        NETWORK_STATUS_TYPE => vec![(
            "status".to_string(),
            yaml(&NetworkStatusSpec::of(status, etc_files_ready))?,
        )],
        NODE_ADDRESS_TYPE => node_addresses(status)
            .into_iter()
            .map(|(id, addresses)| {
                let spec = NodeAddressSpec {
                    addresses,
                    sort_algorithm: "v1",
                };
                Ok((id.to_string(), yaml(&spec)?))
            })
            .collect::<Result<Vec<_>, MachinedError>>()?,
        other => {
            return Err(MachinedError::NotFound(format!(
                "resource type {other:?} is not a network status"
            )));
        }
    };
    Ok(items)
}

fn yaml<T: Serialize>(spec: &T) -> Result<String, MachinedError> {
    serde_norway::to_string(spec)
        .map_err(|e| MachinedError::InvalidArgument(format!("encoding a resource: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proto::talosrs::networkd::{AddressStatus, HostnameStatus, RouteStatus};

    use super::*;

    #[test]
    fn node_addresses_are_the_global_ones_ipv4_first() {
        let address = |address: &str, link: &str, family: &str, scope: &str| AddressStatus {
            address: address.into(),
            link_name: link.into(),
            family: family.into(),
            scope: scope.into(),
            ..AddressStatus::default()
        };
        let status = NetworkStatus {
            addresses: vec![
                address("127.0.0.1/8", "lo", "inet4", "host"),
                address("fd00::2/64", "eth0", "inet6", "global"),
                address("fe80::1/64", "eth0", "inet6", "link"),
                address("10.5.0.3/24", "eth1", "inet4", "global"),
                address("10.5.0.2/24", "eth0", "inet4", "global"),
            ],
            ..NetworkStatus::default()
        };
        let found = resources(NODE_ADDRESS_TYPE, &status, false).expect("node addresses");
        assert_eq!(
            found,
            [
                (
                    "current".to_string(),
                    "addresses:\n- 10.5.0.2/24\n- 10.5.0.3/24\n- fd00::2/64\nsortAlgorithm: v1\n"
                        .to_string()
                ),
                (
                    "default".to_string(),
                    "addresses:\n- 10.5.0.2/24\nsortAlgorithm: v1\n".to_string()
                ),
            ]
        );
        let empty = resources(NODE_ADDRESS_TYPE, &NetworkStatus::default(), false).expect("none");
        assert_eq!(empty[1].1, "addresses: []\nsortAlgorithm: v1\n");
    }

    #[test]
    fn the_network_status_says_what_is_ready() {
        let nothing = resources(NETWORK_STATUS_TYPE, &NetworkStatus::default(), false).unwrap();
        assert_eq!(
            nothing,
            [(
                "status".to_string(),
                "addressReady: false\nconnectivityReady: false\nhostnameReady: false\n\
                 etcFilesReady: false\n"
                    .to_string()
            )]
        );
        let status = NetworkStatus {
            addresses: vec![AddressStatus {
                address: "10.5.0.2/24".into(),
                link_name: "eth0".into(),
                family: "inet4".into(),
                scope: "global".into(),
                ..AddressStatus::default()
            }],
            routes: vec![RouteStatus {
                destination: "0.0.0.0/0".into(),
                gateway: "10.5.0.1".into(),
                ..RouteStatus::default()
            }],
            hostname: Some(HostnameStatus {
                hostname: "cp-1".into(),
                domainname: String::new(),
            }),
            ..NetworkStatus::default()
        };
        let ready = resources(NETWORK_STATUS_TYPE, &status, true).unwrap();
        assert_eq!(
            ready[0].1,
            "addressReady: true\nconnectivityReady: true\nhostnameReady: true\netcFilesReady: true\n"
        );
        // A route to one network only is no connectivity.
        let local = NetworkStatus {
            routes: vec![RouteStatus {
                destination: "10.5.0.0/24".into(),
                ..RouteStatus::default()
            }],
            ..status
        };
        let local = resources(NETWORK_STATUS_TYPE, &local, true).unwrap();
        assert!(local[0].1.contains("connectivityReady: false"));
    }
}
