//! Exoscale: `/1.0/meta-data/<key>` (one text value per key: `local-hostname`,
//! `instance-id`, `service-offering`, `availability-zone`, `public-ipv4`; a missing key
//! answers 404) and `/1.0/user-data`. The zone (e.g. `ch-gva-2`) is also the region; eth0
//! is left to DHCP; provider id `exoscale://ID`.

use std::collections::BTreeMap;

use super::netconfig::NetworkConfig;
use super::{Instance, address, fetch_cloudstack_style, problem, value_of};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "exoscale";

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    fetch_cloudstack_style(PLATFORM, &format!("{base}/1.0"), parse)
}

/// The meta-data values (key → body) → the instance.
pub fn parse(values: &BTreeMap<&str, Vec<u8>>) -> Result<Instance, MachinedError> {
    let text = |key: &str| -> Result<String, MachinedError> {
        values
            .get(key)
            .map_or(Ok(String::new()), |raw| value_of(PLATFORM, key, raw))
    };
    let instance_id = text("instance-id")?;
    if instance_id.is_empty() {
        return Err(problem(PLATFORM, "the meta-data has no instance-id"));
    }
    let mut network = NetworkConfig {
        dhcp: vec!["eth0".into()],
        ..NetworkConfig::default()
    };
    let public = text("public-ipv4")?;
    if !public.is_empty() {
        network
            .external_ips
            .push(address(PLATFORM, "public-ipv4", &public)?);
    }
    let zone = text("availability-zone")?;
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: text("local-hostname")?,
        region: zone.clone(),
        zone,
        instance_type: text("service-offering")?,
        provider_id: format!("exoscale://{instance_id}"),
        instance_id,
        ..PlatformMetadataSpec::default()
    };
    Ok(Instance {
        metadata,
        network,
        ..Instance::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    #[test]
    fn fetch_reads_each_key_and_the_user_data() {
        let (base, seen) = serve(
            table(&[
                ("GET /1.0/meta-data/local-hostname", b"talos-exo-1\n"),
                (
                    "GET /1.0/meta-data/instance-id",
                    b"2f3e4d5c-6b7a-4980-8a1b-2c3d4e5f6a7b",
                ),
                ("GET /1.0/meta-data/service-offering", b"standard.medium"),
                ("GET /1.0/meta-data/availability-zone", b"ch-gva-2"),
                ("GET /1.0/meta-data/public-ipv4", b"194.182.160.10"),
                ("GET /1.0/user-data", b"version: v1alpha1\n"),
            ]),
            Vec::new(),
        );
        let instance = fetch(&base).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.hostname, "talos-exo-1");
        assert_eq!(
            m.provider_id,
            "exoscale://2f3e4d5c-6b7a-4980-8a1b-2c3d4e5f6a7b"
        );
        assert_eq!(
            (m.region.as_str(), m.zone.as_str()),
            ("ch-gva-2", "ch-gva-2")
        );
        assert_eq!(m.instance_type, "standard.medium");
        assert_eq!(instance.network.dhcp, ["eth0"]);
        assert_eq!(
            instance.network.external_ips[0].to_string(),
            "194.182.160.10"
        );
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        assert_eq!(
            seen.lock().unwrap().len(),
            super::super::CLOUDSTACK_STYLE_KEYS.len() + 1
        );
    }

    #[test]
    fn bad_meta_data_is_a_clear_error() {
        let error = parse(&BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("no instance-id"), "{error}");
        let values = BTreeMap::from([
            ("instance-id", b"i".to_vec()),
            ("public-ipv4", b"300.1.1.1".to_vec()),
        ]);
        let error = parse(&values).unwrap_err().to_string();
        assert!(error.contains("not an IP address"), "{error}");
        let values = BTreeMap::from([("instance-id", b"i\x1b[2J".to_vec())]);
        let error = parse(&values).unwrap_err().to_string();
        assert!(error.contains("control characters"), "{error}");
    }
}
