//! Hetzner Cloud: `/hetzner/v1/metadata` (YAML: hostname, instance-id, region,
//! availability-zone, public-ipv4), `/hetzner/v1/metadata/network-config` (cloud-init network
//! config version 1) and `/hetzner/v1/userdata`.

use serde::Deserialize;

use super::netconfig::{self, NetworkConfig};
use super::{
    Instance, MAX_DOCUMENT, MAX_USER_DATA, address, get, get_required, problem, value, yaml,
};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "hcloud";

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let metadata = get_required(PLATFORM, &format!("{base}/hetzner/v1/metadata"), &[])?;
    let network = get(
        PLATFORM,
        &format!("{base}/hetzner/v1/metadata/network-config"),
        &[],
        MAX_DOCUMENT,
    )?;
    let mut instance = parse(&metadata, network.as_deref())?;
    instance.user_data = get(
        PLATFORM,
        &format!("{base}/hetzner/v1/userdata"),
        &[],
        MAX_USER_DATA,
    )?;
    Ok(instance)
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Metadata {
    instance_id: serde_norway::Value,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    availability_zone: String,
    #[serde(default)]
    public_ipv4: String,
}

/// The metadata YAML and the network config → the instance.
pub fn parse(metadata: &[u8], network: Option<&[u8]>) -> Result<Instance, MachinedError> {
    let document: Metadata = yaml(PLATFORM, "metadata", metadata)?;
    let instance_id = match &document.instance_id {
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::String(s) => value(PLATFORM, "instance-id", s)?,
        _ => {
            return Err(problem(
                PLATFORM,
                "metadata: instance-id is not a number or a string",
            ));
        }
    };
    let mut config = match network {
        Some(raw) => netconfig::parse(PLATFORM, raw)?,
        None => NetworkConfig::default(),
    };
    if !document.public_ipv4.is_empty() {
        config
            .external_ips
            .push(address(PLATFORM, "public-ipv4", &document.public_ipv4)?);
    }
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &document.hostname)?,
        region: value(PLATFORM, "region", &document.region)?,
        zone: value(PLATFORM, "availability-zone", &document.availability_zone)?,
        provider_id: format!("hcloud://{instance_id}"),
        instance_id,
        ..PlatformMetadataSpec::default()
    };
    Ok(Instance {
        metadata,
        network: config.bounded(PLATFORM)?,
        user_data: None,
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    const METADATA: &[u8] = include_bytes!("testdata/hcloud-metadata.yaml");
    const NETWORK: &[u8] = include_bytes!("testdata/hcloud-network-config.yaml");

    #[test]
    fn metadata_and_network_config_give_the_instance() {
        let instance = parse(METADATA, Some(NETWORK)).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.instance_id, "12345678");
        assert_eq!(m.provider_id, "hcloud://12345678");
        assert_eq!(
            (m.region.as_str(), m.zone.as_str()),
            ("eu-central", "fsn1-dc14")
        );
        assert_eq!(m.hostname, "node-1");
        assert_eq!(
            instance.network.external_ips,
            vec!["203.0.113.40".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(instance.network.dhcp, vec!["eth0".to_string()]);
        assert_eq!(
            instance.network.addresses[0].address,
            "2001:db8:1:2::1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            instance.network.routes[0].gateway,
            "fe80::1".parse::<std::net::IpAddr>().unwrap()
        );
    }

    #[test]
    fn bad_metadata_is_a_clear_error() {
        assert!(
            parse(b"hostname: a\n", None)
                .unwrap_err()
                .to_string()
                .contains("missing field `instance-id`")
        );
        assert!(
            parse(b"instance-id: [1]\n", None)
                .unwrap_err()
                .to_string()
                .contains("not a number or a string")
        );
        assert!(
            parse(b"instance-id: 1\npublic-ipv4: x\n", None)
                .unwrap_err()
                .to_string()
                .contains("not an IP address")
        );
    }

    #[test]
    fn fetch_reads_metadata_network_config_and_user_data() {
        let answers = table(&[
            ("GET /hetzner/v1/metadata", METADATA),
            ("GET /hetzner/v1/metadata/network-config", NETWORK),
            ("GET /hetzner/v1/userdata", b"version: v1alpha1\n"),
        ]);
        let (base, _) = serve(answers, Vec::new());
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.instance_id, "12345678");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
    }
}
