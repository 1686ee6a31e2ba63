//! UpCloud: `/metadata/v1.json` (hostname, instance id, region, network interfaces with
//! their addresses, DNS servers, tags) and `/metadata/v1/user_data`.
//!
//! Interface `index` n is `eth{n-1}`: DHCP when an address says `dhcp`, else its address
//! with the prefix of its `network` and its gateway as the default route; floating addresses
//! and those of `public` interfaces are the instance's external IPs.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::netconfig::{Address, NetworkConfig, Route, cidr};
use super::{Instance, MAX_USER_DATA, address, get, get_required, json, problem, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "upcloud";
/// Highest interface index accepted.
const MAX_INDEX: u32 = 64;

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let metadata = get_required(PLATFORM, &format!("{base}/metadata/v1.json"), &[])?;
    let mut instance = parse(&metadata)?;
    instance.user_data = get(
        PLATFORM,
        &format!("{base}/metadata/v1/user_data"),
        &[],
        MAX_USER_DATA,
    )?
    .filter(|data| !data.is_empty());
    Ok(instance)
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    hostname: String,
    instance_id: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    network: Network,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize, Default)]
struct Network {
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    dns: Vec<String>,
}

#[derive(Deserialize)]
struct Interface {
    index: u32,
    #[serde(default)]
    ip_addresses: Vec<IpAddress>,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct IpAddress {
    address: String,
    #[serde(default)]
    dhcp: bool,
    #[serde(default)]
    floating: bool,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    network: String,
}

/// `v1.json` → the instance.
pub fn parse(raw: &[u8]) -> Result<Instance, MachinedError> {
    let document: Document = json(PLATFORM, "v1.json", raw)?;
    let mut network = NetworkConfig::default();
    for interface in &document.network.interfaces {
        if !(1..=MAX_INDEX).contains(&interface.index) {
            return Err(problem(
                PLATFORM,
                format!(
                    "interface index {} is not within 1..={MAX_INDEX}",
                    interface.index
                ),
            ));
        }
        let link = format!("eth{}", interface.index - 1);
        for ip in &interface.ip_addresses {
            let address_ip = address(PLATFORM, "ip_addresses.address", &ip.address)?;
            if ip.floating || interface.kind == "public" {
                network.external_ips.push(address_ip);
            }
            if ip.floating {
                continue;
            }
            if ip.dhcp {
                if !network.dhcp.contains(&link) {
                    network.dhcp.push(link.clone());
                }
                continue;
            }
            let (_, prefix) = cidr(PLATFORM, "ip_addresses.network", &ip.network)?;
            network.addresses.push(Address {
                link: link.clone(),
                address: address_ip,
                prefix,
            });
            if !ip.gateway.trim().is_empty() {
                network.routes.push(Route {
                    link: link.clone(),
                    destination: None,
                    gateway: address(PLATFORM, "ip_addresses.gateway", &ip.gateway)?,
                });
            }
        }
    }
    for server in &document.network.dns {
        let server = address(PLATFORM, "network.dns", server)?;
        if !network.resolvers.contains(&server) {
            network.resolvers.push(server);
        }
    }
    let mut tags = BTreeMap::new();
    for tag in &document.tags {
        tags.insert(value(PLATFORM, "tag", tag)?, String::new());
    }
    let instance_id = value(PLATFORM, "instance_id", &document.instance_id)?;
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &document.hostname)?,
        region: value(PLATFORM, "region", &document.region)?,
        provider_id: format!("upcloud://{instance_id}"),
        instance_id,
        tags,
        ..PlatformMetadataSpec::default()
    };
    Ok(Instance {
        metadata,
        network: network.bounded(PLATFORM)?,
        ..Instance::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    const METADATA: &[u8] = include_bytes!("testdata/upcloud.json");

    #[test]
    fn the_document_gives_the_instance_and_its_network() {
        let instance = parse(METADATA).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.hostname, "talos-upcloud-1");
        assert_eq!(m.instance_id, "00a1b2c3-d4e5-4f60-8a7b-8c9d0e1f2a3b");
        assert_eq!(
            m.provider_id,
            "upcloud://00a1b2c3-d4e5-4f60-8a7b-8c9d0e1f2a3b"
        );
        assert_eq!(m.region, "fi-hel1");
        assert!(m.tags.contains_key("talos"));
        let n = &instance.network;
        assert_eq!(n.dhcp, ["eth0"]);
        assert_eq!(n.addresses.len(), 1);
        assert_eq!(
            (
                n.addresses[0].link.as_str(),
                n.addresses[0].address.to_string(),
                n.addresses[0].prefix
            ),
            ("eth1", "10.6.3.27".to_string(), 22)
        );
        assert_eq!(n.routes[0].gateway.to_string(), "10.6.0.1");
        let external: Vec<String> = n.external_ips.iter().map(ToString::to_string).collect();
        assert_eq!(
            external,
            ["198.51.100.17", "2001:db8:2000:10::1f", "198.51.100.99"]
        );
        let resolvers: Vec<String> = n.resolvers.iter().map(ToString::to_string).collect();
        assert_eq!(resolvers, ["198.51.100.9", "198.51.100.10"]);
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        let error = parse(br#"{"instance_id":"a","network":{"interfaces":[{"index":0}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("interface index 0"), "{error}");
        let error = parse(br#"{"instance_id":"a","network":{"interfaces":[{"index":1,"ip_addresses":[{"address":"10.0.0.2","network":"10.0.0.0/40"}]}]}}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("prefix longer than 32"), "{error}");
        let error = parse(b"{}").unwrap_err().to_string();
        assert!(error.contains("missing field `instance_id`"), "{error}");
    }

    #[test]
    fn fetch_reads_the_document_and_user_data() {
        let (base, _) = serve(
            table(&[
                ("GET /metadata/v1.json", METADATA),
                ("GET /metadata/v1/user_data", b"version: v1alpha1\n"),
            ]),
            Vec::new(),
        );
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.region, "fi-hel1");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
    }
}
