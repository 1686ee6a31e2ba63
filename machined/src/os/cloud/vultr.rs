//! Vultr: `/v1.json` (hostname, `instance-v2-id`, `region.regioncode`, interfaces with their
//! network type, MAC and IPv4/IPv6) and `/latest/user-data`.
//!
//! Interface n is `ethN`: a static IPv4 address with its netmask and gateway (the default
//! route) when the document gives one, else DHCP; public addresses (IPv4 and IPv6) are the
//! instance's external IPs. Limit: the private network's MTU of 1450 is not applied.

use serde::Deserialize;

use super::netconfig::{Address, NetworkConfig, Route, netmask};
use super::{Instance, MAX_USER_DATA, address, get, get_required, json, problem, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "vultr";

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let metadata = get_required(PLATFORM, &format!("{base}/v1.json"), &[])?;
    let mut instance = parse(&metadata)?;
    instance.user_data = get(
        PLATFORM,
        &format!("{base}/latest/user-data"),
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
    #[serde(rename = "instance-v2-id", default)]
    instance_v2_id: String,
    #[serde(default)]
    region: Region,
    #[serde(default)]
    interfaces: Vec<Interface>,
}

#[derive(Deserialize, Default)]
struct Region {
    #[serde(default)]
    regioncode: String,
}

#[derive(Deserialize)]
struct Interface {
    #[serde(default)]
    ipv4: Option<V4>,
    #[serde(default)]
    ipv6: Option<V6>,
    #[serde(rename = "network-type", default)]
    network_type: String,
}

#[derive(Deserialize)]
struct V4 {
    #[serde(default)]
    address: String,
    #[serde(default)]
    netmask: String,
    #[serde(default)]
    gateway: String,
}

#[derive(Deserialize)]
struct V6 {
    #[serde(default)]
    address: String,
}

/// `v1.json` → the instance.
pub fn parse(raw: &[u8]) -> Result<Instance, MachinedError> {
    let document: Document = json(PLATFORM, "v1.json", raw)?;
    let mut network = NetworkConfig::default();
    for (index, interface) in document.interfaces.iter().enumerate() {
        let link = format!("eth{index}");
        let public = interface.network_type == "public";
        match &interface.ipv4 {
            Some(v4) if !v4.address.trim().is_empty() => {
                let ip = address(PLATFORM, "ipv4 address", &v4.address)?;
                network.addresses.push(Address {
                    link: link.clone(),
                    address: ip,
                    prefix: netmask(PLATFORM, "ipv4 netmask", &v4.netmask)?,
                });
                if !v4.gateway.trim().is_empty() {
                    network.routes.push(Route {
                        link: link.clone(),
                        destination: None,
                        gateway: address(PLATFORM, "ipv4 gateway", &v4.gateway)?,
                    });
                }
                if public {
                    network.external_ips.push(ip);
                }
            }
            _ => network.dhcp.push(link.clone()),
        }
        if let Some(v6) = &interface.ipv6
            && public
            && !v6.address.trim().is_empty()
        {
            network
                .external_ips
                .push(address(PLATFORM, "ipv6 address", &v6.address)?);
        }
    }
    let instance_id = value(PLATFORM, "instance-v2-id", &document.instance_v2_id)?;
    if instance_id.is_empty() {
        return Err(problem(PLATFORM, "v1.json: no instance-v2-id"));
    }
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &document.hostname)?,
        region: value(PLATFORM, "region.regioncode", &document.region.regioncode)?,
        provider_id: format!("vultr://{instance_id}"),
        instance_id,
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

    const METADATA: &[u8] = include_bytes!("testdata/vultr.json");

    #[test]
    fn the_document_gives_the_instance_and_its_network() {
        let instance = parse(METADATA).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.hostname, "talos-vultr-1");
        assert_eq!(m.instance_id, "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f");
        assert_eq!(
            m.provider_id,
            "vultr://4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
        );
        assert_eq!(m.region, "AMS");
        let n = &instance.network;
        assert_eq!(n.addresses.len(), 1);
        assert_eq!(
            (
                n.addresses[0].link.as_str(),
                n.addresses[0].address.to_string(),
                n.addresses[0].prefix
            ),
            ("eth0", "203.0.113.50".to_string(), 23)
        );
        assert_eq!(n.routes[0].gateway.to_string(), "203.0.112.1");
        assert_eq!(n.dhcp, ["eth1"]);
        let external: Vec<String> = n.external_ips.iter().map(ToString::to_string).collect();
        assert_eq!(
            external,
            ["203.0.113.50", "2001:db8:4000:1234:5400:4ff:fe12:3456"]
        );
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        let error =
            parse(br#"{"interfaces":[{"ipv4":{"address":"1.2.3.4","netmask":"255.0.255.0"}}]}"#)
                .unwrap_err()
                .to_string();
        assert!(error.contains("not a contiguous netmask"), "{error}");
        let error = parse(br#"{"hostname":"a\nb","instance-v2-id":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("control characters"), "{error}");
        let error = parse(b"{}").unwrap_err().to_string();
        assert!(error.contains("no instance-v2-id"), "{error}");
    }

    #[test]
    fn fetch_reads_the_document_and_user_data() {
        let (base, _) = serve(
            table(&[
                ("GET /v1.json", METADATA),
                ("GET /latest/user-data", b"version: v1alpha1\n"),
            ]),
            Vec::new(),
        );
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.hostname, "talos-vultr-1");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
    }
}
