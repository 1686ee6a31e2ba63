//! Scaleway: `http://169.254.42.42/conf?format=json` (id, hostname, `commercial_type`,
//! `public_ip`, `public_ips_v4`, `public_ips_v6` or the older `ipv6`, `location.zone_id`) and
//! `/user_data/cloud-init`, which the service serves only to a client whose source port is
//! below 1024 (asked from a random port of 100 to 611, as upstream does).
//!
//! As upstream: DHCP on eth0 when the instance has a public IPv4 address; the IPv6 address
//! (`ipv6`, else the first of `public_ips_v6`) static on eth0 with its gateway as the default
//! route; the public addresses are the external IPs; the region is the zone without its
//! number (`fr-par-2` → `fr-par`; the legacy `par1` and `ams1` are `fr-par-1` and
//! `nl-ams-1`); provider id `scaleway://instance/ZONE/ID`. Limit: upstream's link-scope route
//! to 169.254.42.42 is not added (a route here always has a gateway).

use serde::Deserialize;

use super::netconfig::{Address, NetworkConfig, Route, netmask};
use super::{Instance, MAX_USER_DATA, address, body_of, get_required, http, json, problem, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "scaleway";

/// Where Scaleway serves its metadata.
pub const METADATA_BASE: &str = "http://169.254.42.42";

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let metadata = get_required(PLATFORM, &format!("{base}/conf?format=json"), &[])?;
    let mut instance = parse(&metadata)?;
    let url = format!("{base}/user_data/cloud-init");
    let response = http::request_from_privileged_port("GET", &url, &[], MAX_USER_DATA)
        .map_err(|e| problem(PLATFORM, e))?;
    instance.user_data = body_of(PLATFORM, &url, response)?.filter(|data| !data.is_empty());
    Ok(instance)
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    id: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    commercial_type: String,
    #[serde(default)]
    public_ip: Option<PublicIp>,
    #[serde(default)]
    public_ips_v4: Option<Vec<PublicIp>>,
    #[serde(default)]
    public_ips_v6: Option<Vec<PublicIp>>,
    #[serde(default)]
    ipv6: Option<PublicIp>,
    #[serde(default)]
    location: Location,
}

/// An address as the document gives it (`family` `inet` or `inet6`).
#[derive(Deserialize, Default, Clone)]
struct PublicIp {
    #[serde(default)]
    address: String,
    #[serde(default)]
    family: String,
    #[serde(default)]
    netmask: String,
    #[serde(default)]
    gateway: String,
}

#[derive(Deserialize, Default)]
struct Location {
    #[serde(default)]
    zone_id: String,
}

/// `conf?format=json` → the instance.
pub fn parse(raw: &[u8]) -> Result<Instance, MachinedError> {
    let document: Document = json(PLATFORM, "conf", raw)?;
    let mut network = NetworkConfig::default();
    if let Some(public) = &document.public_ip
        && public.family == "inet"
        && !public.address.trim().is_empty()
    {
        network
            .external_ips
            .push(address(PLATFORM, "public_ip.address", &public.address)?);
    }
    let public_v4 = document.public_ips_v4.unwrap_or_default();
    if !public_v4.is_empty() {
        network.dhcp.push("eth0".into());
    }
    let public_v6 = document.public_ips_v6.unwrap_or_default();
    let legacy = document.ipv6.unwrap_or_default();
    if !legacy.address.trim().is_empty() || !public_v6.is_empty() {
        let complete = |ip: &PublicIp| {
            [&ip.address, &ip.netmask, &ip.gateway]
                .iter()
                .all(|field| !field.trim().is_empty())
        };
        let v6 = match public_v6.first() {
            _ if complete(&legacy) => legacy,
            Some(first) => first.clone(),
            None => {
                return Err(problem(
                    PLATFORM,
                    "conf: ipv6 lacks its address, netmask or gateway, and public_ips_v6 is empty",
                ));
            }
        };
        let ip = address(PLATFORM, "ipv6 address", &v6.address)?;
        network.addresses.push(Address {
            link: "eth0".into(),
            address: ip,
            prefix: netmask(PLATFORM, "ipv6 netmask", &v6.netmask)?,
        });
        network.routes.push(Route {
            link: "eth0".into(),
            destination: None,
            gateway: address(PLATFORM, "ipv6 gateway", &v6.gateway)?,
        });
        network.external_ips.push(ip);
    }
    let id = value(PLATFORM, "id", &document.id)?;
    if id.is_empty() {
        return Err(problem(PLATFORM, "conf: no id"));
    }
    let zone = zone(&value(
        PLATFORM,
        "location.zone_id",
        &document.location.zone_id,
    )?)?;
    let region = zone[..zone.len() - 2].to_string();
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &document.hostname)?,
        region,
        instance_type: value(PLATFORM, "commercial_type", &document.commercial_type)?,
        provider_id: format!("scaleway://instance/{zone}/{id}"),
        zone,
        instance_id: id,
        ..PlatformMetadataSpec::default()
    };
    Ok(Instance {
        metadata,
        network: network.bounded(PLATFORM)?,
        ..Instance::default()
    })
}

/// A zone as Scaleway writes it: `ll-lll-N` (N from 1 to 9), or a legacy name.
fn zone(raw: &str) -> Result<String, MachinedError> {
    let zone = match raw {
        "par1" => "fr-par-1",
        "ams1" => "nl-ams-1",
        other => other,
    };
    let bytes = zone.as_bytes();
    let well_formed = bytes.len() == 8
        && bytes[..2].iter().all(u8::is_ascii_lowercase)
        && bytes[2] == b'-'
        && bytes[3..6].iter().all(u8::is_ascii_lowercase)
        && bytes[6] == b'-'
        && (b'1'..=b'9').contains(&bytes[7]);
    if !well_formed {
        return Err(problem(
            PLATFORM,
            format!("location.zone_id: {raw:?} is not a zone such as fr-par-1"),
        ));
    }
    Ok(zone.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve_at, table};
    use super::*;

    const METADATA: &[u8] = include_bytes!("testdata/scaleway.json");

    #[test]
    fn the_document_gives_the_instance_and_its_network() {
        let instance = parse(METADATA).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.platform, "scaleway");
        assert_eq!(m.hostname, "talos-scw-1");
        assert_eq!(m.instance_id, "7c0e5a1b-2d3f-4a6b-9c8d-0e1f2a3b4c5d");
        assert_eq!(m.instance_type, "PRO2-S");
        assert_eq!((m.region.as_str(), m.zone.as_str()), ("nl-ams", "nl-ams-2"));
        assert_eq!(
            m.provider_id,
            "scaleway://instance/nl-ams-2/7c0e5a1b-2d3f-4a6b-9c8d-0e1f2a3b4c5d"
        );
        let n = &instance.network;
        assert_eq!(n.dhcp, ["eth0"]);
        assert_eq!(
            (n.addresses[0].address.to_string(), n.addresses[0].prefix),
            ("2001:db8:42:7::1".to_string(), 64)
        );
        assert_eq!(n.routes[0].gateway.to_string(), "fe80::dc00:ff:fe00:1");
        let external: Vec<String> = n.external_ips.iter().map(ToString::to_string).collect();
        assert_eq!(external, ["203.0.113.77", "2001:db8:42:7::1"]);
    }

    #[test]
    fn the_legacy_ipv6_field_and_zone_names_are_read() {
        let document = br#"{"id":"i","location":{"zone_id":"par1"},
            "ipv6":{"address":"2001:db8::5","netmask":"64","gateway":"2001:db8::"}}"#;
        let instance = parse(document).unwrap();
        assert_eq!(instance.metadata.zone, "fr-par-1");
        assert_eq!(instance.metadata.region, "fr-par");
        assert!(instance.network.dhcp.is_empty());
        assert_eq!(instance.network.routes[0].gateway.to_string(), "2001:db8::");
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        let cases: [(&[u8], &str); 6] = [
            (br#"{"id":"i","location":{"zone_id":"moon-1"}}"#, "not a zone"),
            (br#"{"location":{"zone_id":"fr-par-1"}}"#, "no id"),
            (
                br#"{"id":"i","location":{"zone_id":"fr-par-1"},"ipv6":{"address":"2001:db8::5"}}"#,
                "ipv6 lacks its address, netmask or gateway",
            ),
            (
                br#"{"id":"i","location":{"zone_id":"fr-par-1"},"public_ips_v6":[{"address":"x","netmask":"64","gateway":"fe80::1"}]}"#,
                "not an IP address",
            ),
            (br#"{"id":7}"#, "conf: invalid type"),
            (
                br#"{"id":"i","hostname":"a\u0007","location":{"zone_id":"fr-par-1"}}"#,
                "control characters",
            ),
        ];
        for (document, expected) in cases {
            let error = parse(document).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn fetch_asks_for_the_user_data_from_a_privileged_port() {
        let answers = table(&[
            ("GET /conf?format=json", METADATA),
            ("GET /user_data/cloud-init", b"version: v1alpha1\n"),
        ]);
        let (base, seen) = serve_at("127.80.0.3:0", answers, Vec::new(), &["GET /user_data/"]);
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.zone, "nl-ams-2");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
        // From an ordinary port the service refuses, and so would the node.
        let refused = super::super::get(
            PLATFORM,
            &format!("{base}/user_data/cloud-init"),
            &[],
            MAX_USER_DATA,
        )
        .unwrap_err()
        .to_string();
        assert!(refused.contains("answered 403"), "{refused}");
        // No user data: none.
        let (base, _) = serve_at(
            "127.80.0.3:0",
            table(&[("GET /conf?format=json", METADATA)]),
            Vec::new(),
            &["GET /user_data/"],
        );
        assert_eq!(fetch(&base).unwrap().user_data, None);
        // An oversized document is refused before it is parsed.
        let huge = vec![b' '; 2 << 20];
        let (base, _) = serve_at(
            "127.80.0.3:0",
            table(&[("GET /conf?format=json", &huge)]),
            Vec::new(),
            &[],
        );
        let error = fetch(&base).unwrap_err().to_string();
        assert!(error.contains("larger than 1048576 bytes"), "{error}");
    }
}
