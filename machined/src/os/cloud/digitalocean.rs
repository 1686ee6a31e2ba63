//! DigitalOcean: `/metadata/v1.json` (droplet id, hostname, region, tags, interfaces with
//! their public and private addresses, DNS) and `/metadata/v1/user-data`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::netconfig::{Address, NetworkConfig, Route, netmask};
use super::{Instance, MAX_USER_DATA, address, get, get_required, json, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "digital-ocean";

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let document = get_required(PLATFORM, &format!("{base}/metadata/v1.json"), &[])?;
    let mut instance = parse(&document)?;
    instance.user_data = get(
        PLATFORM,
        &format!("{base}/metadata/v1/user-data"),
        &[],
        MAX_USER_DATA,
    )?;
    Ok(instance)
}

#[derive(Deserialize)]
struct Document {
    droplet_id: u64,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    dns: Dns,
    #[serde(default)]
    interfaces: BTreeMap<String, Vec<Interface>>,
}

#[derive(Deserialize, Default)]
struct Dns {
    #[serde(default)]
    nameservers: Vec<String>,
}

#[derive(Deserialize)]
struct Interface {
    #[serde(default)]
    mac: String,
    ipv4: Option<V4>,
    ipv6: Option<V6>,
    anchor_ipv4: Option<V4>,
}

#[derive(Deserialize)]
struct V4 {
    ip_address: String,
    netmask: String,
    #[serde(default)]
    gateway: String,
}

#[derive(Deserialize)]
struct V6 {
    ip_address: String,
    cidr: u8,
    #[serde(default)]
    gateway: String,
}

/// `v1.json` → the instance. Public addresses are also the instance's external IPs.
pub fn parse(raw: &[u8]) -> Result<Instance, MachinedError> {
    let document: Document = json(PLATFORM, "v1.json", raw)?;
    let mut network = NetworkConfig::default();
    for (kind, interfaces) in &document.interfaces {
        let public = kind == "public";
        for interface in interfaces {
            let link = value(PLATFORM, "interface mac", &interface.mac)?;
            let mut entries = Vec::new();
            if let Some(v4) = &interface.ipv4 {
                let ip = address(PLATFORM, "ipv4", &v4.ip_address)?;
                entries.push((
                    ip,
                    netmask(PLATFORM, "netmask", &v4.netmask)?,
                    &v4.gateway,
                    public,
                ));
            }
            if let Some(v6) = &interface.ipv6 {
                let ip = address(PLATFORM, "ipv6", &v6.ip_address)?;
                entries.push((ip, v6.cidr.min(128), &v6.gateway, public));
            }
            // The anchor address (for a reserved IP) has no route or external face of its own.
            if let Some(anchor) = &interface.anchor_ipv4 {
                let ip = address(PLATFORM, "anchor_ipv4", &anchor.ip_address)?;
                entries.push((
                    ip,
                    netmask(PLATFORM, "netmask", &anchor.netmask)?,
                    &anchor.gateway,
                    false,
                ));
            }
            for (ip, prefix, gateway, external) in entries {
                network.addresses.push(Address {
                    link: link.clone(),
                    address: ip,
                    prefix,
                });
                if external {
                    network.external_ips.push(ip);
                    if !gateway.is_empty() {
                        network.routes.push(Route {
                            link: link.clone(),
                            destination: None,
                            gateway: address(PLATFORM, "gateway", gateway)?,
                        });
                    }
                }
            }
        }
    }
    for server in &document.dns.nameservers {
        network
            .resolvers
            .push(address(PLATFORM, "nameserver", server)?);
    }
    let mut tags = BTreeMap::new();
    for tag in &document.tags {
        tags.insert(value(PLATFORM, "tag", tag)?, String::new());
    }
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &document.hostname)?,
        region: value(PLATFORM, "region", &document.region)?,
        instance_id: document.droplet_id.to_string(),
        provider_id: format!("digitalocean://{}", document.droplet_id),
        tags,
        ..PlatformMetadataSpec::default()
    };
    Ok(Instance {
        metadata,
        network: network.bounded(PLATFORM)?,
        user_data: None,
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("testdata/digitalocean.json");

    #[test]
    fn the_document_gives_the_droplet_and_its_network() {
        let instance = parse(FIXTURE).unwrap();
        let m = &instance.metadata;
        assert_eq!(
            (m.instance_id.as_str(), m.provider_id.as_str()),
            ("2756294", "digitalocean://2756294")
        );
        assert_eq!((m.hostname.as_str(), m.region.as_str()), ("node-1", "nyc3"));
        assert_eq!(m.tags.len(), 2);
        let n = &instance.network;
        assert_eq!(n.addresses.len(), 4, "{n}");
        assert_eq!(n.external_ips.len(), 2);
        assert_eq!(n.routes.len(), 2);
        assert_eq!(n.resolvers.len(), 2);
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        assert!(
            parse(b"{\"hostname\":\"x\"}")
                .unwrap_err()
                .to_string()
                .contains("missing field `droplet_id`")
        );
        assert!(
            parse(b"{\"droplet_id\":-1}")
                .unwrap_err()
                .to_string()
                .contains("v1.json")
        );
        let bad = br#"{"droplet_id":1,"interfaces":{"public":[{"mac":"m","ipv4":{"ip_address":"1.2.3.4","netmask":"255.0.255.0"}}]}}"#;
        assert!(
            parse(bad)
                .unwrap_err()
                .to_string()
                .contains("not a contiguous netmask")
        );
    }

    #[test]
    fn fetch_reads_the_document_and_user_data() {
        let answers = table(&[("GET /metadata/v1.json", FIXTURE)]);
        let (base, _) = serve(answers, Vec::new());
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.instance_id, "2756294");
        assert_eq!(instance.user_data, None, "no user data: 404");
    }
}
