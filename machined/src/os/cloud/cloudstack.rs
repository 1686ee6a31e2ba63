//! CloudStack: the data server on the virtual router (`http://data-server.`, a name the DHCP
//! server's resolver answers) serves `/latest/meta-data/<key>` (one text value per key:
//! `local-hostname`, `instance-id`, `service-offering`, `availability-zone`, `public-ipv4`; a
//! missing key answers 404) and `/latest/user-data`. As upstream: the zone is also the region,
//! the instance type is the service offering's first word in lower case, the public IPv4 is
//! an external IP, and the network is left as it is (DHCP); provider id `cloudstack://ID`.

use std::collections::BTreeMap;

use super::netconfig::NetworkConfig;
use super::{Instance, address, fetch_cloudstack_style, problem, value_of};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "cloudstack";

/// The data server as upstream names it.
pub const DATA_SERVER: &str = "http://data-server.";

/// Reads the data server at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    fetch_cloudstack_style(PLATFORM, &format!("{base}/latest"), parse)
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
    let mut network = NetworkConfig::default();
    let public = text("public-ipv4")?;
    if !public.is_empty() {
        network
            .external_ips
            .push(address(PLATFORM, "public-ipv4", &public)?);
    }
    let offering = text("service-offering")?;
    let zone = text("availability-zone")?;
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: text("local-hostname")?,
        region: zone.clone(),
        zone,
        instance_type: offering
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_lowercase(),
        provider_id: format!("cloudstack://{instance_id}"),
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
    use super::super::testserver::{serve_at, table};
    use super::*;

    /// The fixture's meta-data: key → value, as the data server serves them.
    const FIXTURE: [(&str, &[u8]); 5] = [
        (
            "local-hostname",
            include_bytes!("testdata/cloudstack/local-hostname"),
        ),
        (
            "instance-id",
            include_bytes!("testdata/cloudstack/instance-id"),
        ),
        (
            "service-offering",
            include_bytes!("testdata/cloudstack/service-offering"),
        ),
        (
            "availability-zone",
            include_bytes!("testdata/cloudstack/availability-zone"),
        ),
        (
            "public-ipv4",
            include_bytes!("testdata/cloudstack/public-ipv4"),
        ),
    ];

    #[test]
    fn the_meta_data_gives_the_instance() {
        let values: BTreeMap<&str, Vec<u8>> = FIXTURE
            .iter()
            .map(|(key, body)| (*key, body.to_vec()))
            .collect();
        let instance = parse(&values).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.platform, "cloudstack");
        assert_eq!(m.hostname, "talos-cs-1.cloud.example");
        assert_eq!(m.instance_id, "6a1f0c2e-93b4-4d1e-a7c5-2f8e9b0d4c31");
        assert_eq!(
            m.provider_id,
            "cloudstack://6a1f0c2e-93b4-4d1e-a7c5-2f8e9b0d4c31"
        );
        assert_eq!(m.instance_type, "medium");
        assert_eq!(
            (m.region.as_str(), m.zone.as_str()),
            ("zone-ams-1", "zone-ams-1")
        );
        assert_eq!(
            instance.network.external_ips[0].to_string(),
            "198.51.100.23"
        );
        assert!(instance.network.is_empty());
    }

    #[test]
    fn bad_meta_data_is_a_clear_error() {
        let error = parse(&BTreeMap::new()).unwrap_err().to_string();
        assert!(
            error.contains("cloudstack") && error.contains("no instance-id"),
            "{error}"
        );
        let values = BTreeMap::from([
            ("instance-id", b"i".to_vec()),
            ("public-ipv4", b"198.51.100".to_vec()),
        ]);
        let error = parse(&values).unwrap_err().to_string();
        assert!(
            error.contains("public-ipv4") && error.contains("not an IP address"),
            "{error}"
        );
        let values = BTreeMap::from([("instance-id", vec![0xff, 0xfe])]);
        let error = parse(&values).unwrap_err().to_string();
        assert!(error.contains("not UTF-8"), "{error}");
        let values = BTreeMap::from([
            ("instance-id", b"i".to_vec()),
            ("local-hostname", vec![b'h'; 300]),
        ]);
        let error = parse(&values).unwrap_err().to_string();
        assert!(error.contains("local-hostname: longer than"), "{error}");
    }

    #[test]
    fn fetch_reads_each_key_and_the_user_data() {
        let paths: Vec<String> = FIXTURE
            .iter()
            .map(|(key, _)| format!("GET /latest/meta-data/{key}"))
            .collect();
        let mut pairs: Vec<(&str, &[u8])> = paths
            .iter()
            .zip(FIXTURE)
            .map(|(path, (_, body))| (path.as_str(), body))
            .collect();
        pairs.push(("GET /latest/user-data", b"version: v1alpha1\n"));
        let (base, seen) = serve_at("127.80.0.1:0", table(&pairs), Vec::new(), &[]);
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.instance_type, "medium");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        assert_eq!(
            seen.lock().unwrap().len(),
            super::super::CLOUDSTACK_STYLE_KEYS.len() + 1
        );
        // No user data: none, not an error.
        let (base, _) = serve_at("127.80.0.1:0", table(&pairs[..5]), Vec::new(), &[]);
        assert_eq!(fetch(&base).unwrap().user_data, None);
        // A value larger than a value can be is refused.
        let huge = vec![b'a'; 8192];
        pairs[0].1 = &huge;
        let (base, _) = serve_at("127.80.0.1:0", table(&pairs), Vec::new(), &[]);
        let error = fetch(&base).unwrap_err().to_string();
        assert!(error.contains("larger than 4096 bytes"), "{error}");
    }
}
