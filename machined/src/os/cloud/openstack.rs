//! OpenStack's metadata service: `openstack/latest/meta_data.json` (uuid, hostname,
//! availability zone), `openstack/latest/network_data.json` (links, networks with static
//! addresses and routes, DNS services) and `openstack/latest/user_data`; the instance type and
//! public IPv4 come from the EC2-compatible `latest/meta-data/` keys when the cloud serves them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::netconfig::{Address, NetworkConfig, Route, cidr, netmask};
use super::{
    Instance, MAX_DOCUMENT, MAX_USER_DATA, address, get, get_required, json, problem, value,
    value_of,
};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "openstack";

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let meta = get_required(
        PLATFORM,
        &format!("{base}/openstack/latest/meta_data.json"),
        &[],
    )?;
    let network = get(
        PLATFORM,
        &format!("{base}/openstack/latest/network_data.json"),
        &[],
        MAX_DOCUMENT,
    )?;
    let instance_type = get(
        PLATFORM,
        &format!("{base}/latest/meta-data/instance-type"),
        &[],
        4096,
    )?;
    let public_ipv4 = get(
        PLATFORM,
        &format!("{base}/latest/meta-data/public-ipv4"),
        &[],
        4096,
    )?;
    let mut instance = parse(
        &meta,
        network.as_deref(),
        instance_type.as_deref(),
        public_ipv4.as_deref(),
    )?;
    instance.user_data = get(
        PLATFORM,
        &format!("{base}/openstack/latest/user_data"),
        &[],
        MAX_USER_DATA,
    )?;
    Ok(instance)
}

#[derive(Deserialize)]
struct MetaData {
    uuid: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    availability_zone: String,
    #[serde(default)]
    meta: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct NetworkData {
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    networks: Vec<Network>,
    #[serde(default)]
    services: Vec<Service>,
}

#[derive(Deserialize)]
struct Link {
    id: String,
    #[serde(default)]
    ethernet_mac_address: String,
}

#[derive(Deserialize)]
struct Network {
    link: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    ip_address: String,
    #[serde(default)]
    netmask: String,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    routes: Vec<NetRoute>,
}

#[derive(Deserialize)]
struct NetRoute {
    network: String,
    netmask: String,
    gateway: String,
}

#[derive(Deserialize)]
struct Service {
    #[serde(rename = "type")]
    kind: String,
    address: String,
}

/// `meta_data.json`, `network_data.json` and the EC2-style values → the instance.
pub fn parse(
    meta: &[u8],
    network: Option<&[u8]>,
    instance_type: Option<&[u8]>,
    public_ipv4: Option<&[u8]>,
) -> Result<Instance, MachinedError> {
    let meta: MetaData = json(PLATFORM, "meta_data.json", meta)?;
    let uuid = value(PLATFORM, "uuid", &meta.uuid)?;
    let mut config = match network {
        Some(raw) => network_config(&json(PLATFORM, "network_data.json", raw)?)?,
        None => NetworkConfig::default(),
    };
    if let Some(raw) = public_ipv4 {
        let ip = value_of(PLATFORM, "public-ipv4", raw)?;
        if !ip.is_empty() {
            config
                .external_ips
                .push(address(PLATFORM, "public-ipv4", &ip)?);
        }
    }
    let mut tags = BTreeMap::new();
    for (key, tag) in meta.meta.iter().take(64) {
        if let serde_json::Value::String(text) = tag {
            tags.insert(
                value(PLATFORM, "meta key", key)?,
                value(PLATFORM, key, text)?,
            );
        }
    }
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &meta.hostname)?,
        zone: value(PLATFORM, "availability_zone", &meta.availability_zone)?,
        instance_type: match instance_type {
            Some(raw) => value_of(PLATFORM, "instance-type", raw)?,
            None => String::new(),
        },
        provider_id: format!("openstack:///{uuid}"),
        instance_id: uuid,
        tags,
        ..PlatformMetadataSpec::default()
    };
    Ok(Instance {
        metadata,
        network: config.bounded(PLATFORM)?,
        user_data: None,
        notes: Vec::new(),
    })
}

/// `network_data.json` → addresses (on the link's MAC), routes and resolvers.
fn network_config(data: &NetworkData) -> Result<NetworkConfig, MachinedError> {
    let macs: BTreeMap<&str, &str> = data
        .links
        .iter()
        .map(|l| (l.id.as_str(), l.ethernet_mac_address.as_str()))
        .collect();
    let mut config = NetworkConfig::default();
    for network in &data.networks {
        let link = match macs.get(network.link.as_str()) {
            Some(mac) if !mac.is_empty() => (*mac).to_string(),
            _ => network.link.clone(),
        };
        match network.kind.as_str() {
            "ipv4" | "ipv6" => {
                let (ip, mut prefix) = cidr(PLATFORM, "ip_address", &network.ip_address)?;
                if !network.netmask.is_empty() {
                    prefix = netmask(PLATFORM, "netmask", &network.netmask)?;
                }
                config.addresses.push(Address {
                    link: link.clone(),
                    address: ip,
                    prefix,
                });
                if !network.gateway.is_empty() {
                    config.routes.push(Route {
                        link: link.clone(),
                        destination: None,
                        gateway: address(PLATFORM, "gateway", &network.gateway)?,
                    });
                }
                for route in &network.routes {
                    let destination = address(PLATFORM, "route network", &route.network)?;
                    let prefix = netmask(PLATFORM, "route netmask", &route.netmask)?;
                    let gateway = address(PLATFORM, "route gateway", &route.gateway)?;
                    let route = Route {
                        link: link.clone(),
                        destination: (prefix != 0).then_some((destination, prefix)),
                        gateway,
                    };
                    if !config.routes.contains(&route) {
                        config.routes.push(route);
                    }
                }
            }
            "ipv4_dhcp"
            | "ipv6_dhcp"
            | "ipv6_slaac"
            | "ipv6_dhcpv6-stateless"
            | "ipv6_dhcpv6-stateful" => {
                if !config.dhcp.contains(&link) {
                    config.dhcp.push(link);
                }
            }
            other => {
                return Err(problem(
                    PLATFORM,
                    format!("network_data.json: network type {other:?}"),
                ));
            }
        }
    }
    for service in &data.services {
        if service.kind == "dns" {
            config
                .resolvers
                .push(address(PLATFORM, "dns service", &service.address)?);
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    const META: &[u8] = include_bytes!("testdata/openstack-meta_data.json");
    const NETWORK: &[u8] = include_bytes!("testdata/openstack-network_data.json");

    #[test]
    fn meta_and_network_data_give_the_instance_and_its_network() {
        let instance = parse(
            META,
            Some(NETWORK),
            Some(b"m1.small"),
            Some(b"203.0.113.30"),
        )
        .unwrap();
        let m = &instance.metadata;
        assert_eq!(m.instance_id, "83679162-1378-4288-a2d4-70e13ec132aa");
        assert_eq!(
            m.provider_id,
            "openstack:///83679162-1378-4288-a2d4-70e13ec132aa"
        );
        assert_eq!(
            (
                m.hostname.as_str(),
                m.zone.as_str(),
                m.instance_type.as_str()
            ),
            ("node-1", "nova", "m1.small")
        );
        assert_eq!(m.tags.get("role").map(String::as_str), Some("worker"));
        let n = &instance.network;
        assert_eq!(
            n.addresses[0],
            Address {
                link: "fa:16:3e:00:00:01".into(),
                address: "192.0.2.20".parse().unwrap(),
                prefix: 24
            }
        );
        assert_eq!(n.addresses[1].prefix, 64);
        assert_eq!(n.routes.len(), 3, "{n}");
        assert_eq!(n.routes[0].destination, None);
        assert_eq!(
            n.resolvers,
            vec!["192.0.2.53".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(n.dhcp, vec!["fa:16:3e:00:00:02".to_string()]);
        assert_eq!(n.external_ips.len(), 1);
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        let error = |meta: &[u8], network: &[u8]| {
            parse(meta, Some(network), None, None)
                .unwrap_err()
                .to_string()
        };
        assert!(
            error(b"{\"hostname\":\"a\"}", NETWORK)
                .contains("meta_data.json: missing field `uuid`")
        );
        assert!(
            error(
                META,
                b"{\"networks\":[{\"link\":\"x\",\"type\":\"ipv4\",\"ip_address\":\"1.2.3\"}]}"
            )
            .contains("is not an IP address")
        );
        assert!(
            error(META, b"{\"networks\":[{\"link\":\"x\",\"type\":\"ipv9\"}]}")
                .contains("network type \"ipv9\"")
        );
    }

    #[test]
    fn fetch_reads_the_openstack_documents_and_user_data() {
        let answers = table(&[
            ("GET /openstack/latest/meta_data.json", META),
            ("GET /openstack/latest/network_data.json", NETWORK),
            ("GET /openstack/latest/user_data", b"version: v1alpha1\n"),
        ]);
        let (base, _) = serve(answers, Vec::new());
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.hostname, "node-1");
        assert_eq!(instance.metadata.instance_type, "");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        assert_eq!(instance.network.addresses.len(), 2);
    }
}
