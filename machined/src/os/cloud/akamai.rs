//! Akamai (Linode) Metadata Service: a token from `PUT /v1/token` (header
//! `Metadata-Token-Expiry-Seconds`), then with `Metadata-Token`: `GET /v1/instance` and
//! `/v1/network` (JSON, `Accept: application/json`) and `/v1/user-data` (base64).
//!
//! Hostname = the instance's label; eth0 is left to DHCP; public IPv4 addresses and the SLAAC
//! IPv6 address are the instance's external IPs; provider id `linode://ID`.

use serde::Deserialize;

use super::netconfig::{NetworkConfig, cidr};
use super::{Instance, MAX_DOCUMENT, MAX_USER_DATA, decode_base64, get, json, problem, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "akamai";
/// Lifetime asked for the token (seconds).
const TOKEN_TTL: &str = "3600";

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let url = format!("{base}/v1/token");
    let answer = super::http::request(
        "PUT",
        &url,
        &[("Metadata-Token-Expiry-Seconds", TOKEN_TTL)],
        4096,
    )
    .map_err(|e| problem(PLATFORM, e))?;
    if answer.status != 200 {
        return Err(problem(
            PLATFORM,
            format!("{url}: the metadata service answered {}", answer.status),
        ));
    }
    let token = super::value_of(PLATFORM, "token", &answer.body)?;
    let headers = [
        ("Metadata-Token", token.as_str()),
        ("Accept", "application/json"),
    ];
    let instance = get(
        PLATFORM,
        &format!("{base}/v1/instance"),
        &headers,
        MAX_DOCUMENT,
    )?
    .ok_or_else(|| problem(PLATFORM, "/v1/instance: not found (404)"))?;
    let network = get(
        PLATFORM,
        &format!("{base}/v1/network"),
        &headers,
        MAX_DOCUMENT,
    )?;
    let mut parsed = parse(&instance, network.as_deref())?;
    let user_data = get(
        PLATFORM,
        &format!("{base}/v1/user-data"),
        &[("Metadata-Token", token.as_str())],
        MAX_USER_DATA * 2,
    )?;
    parsed.user_data = match user_data {
        Some(text) => decode_base64(PLATFORM, "user-data", &text)?,
        None => None,
    };
    Ok(parsed)
}

#[derive(Deserialize)]
struct Document {
    id: u64,
    #[serde(default)]
    label: String,
    #[serde(default)]
    region: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct Network {
    #[serde(default)]
    ipv4: V4,
    #[serde(default)]
    ipv6: V6,
}

#[derive(Deserialize, Default)]
struct V4 {
    #[serde(default)]
    public: Vec<String>,
}

#[derive(Deserialize, Default)]
struct V6 {
    #[serde(default)]
    slaac: Option<String>,
}

/// The instance and network documents → the instance.
pub fn parse(raw: &[u8], network: Option<&[u8]>) -> Result<Instance, MachinedError> {
    let document: Document = json(PLATFORM, "instance", raw)?;
    let mut config = NetworkConfig {
        dhcp: vec!["eth0".into()],
        ..NetworkConfig::default()
    };
    if let Some(raw) = network {
        let network: Network = json(PLATFORM, "network", raw)?;
        let slaac = network.ipv6.slaac.iter();
        for entry in network.ipv4.public.iter().chain(slaac) {
            let (ip, _) = cidr(PLATFORM, "network address", entry)?;
            config.external_ips.push(ip);
        }
    }
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "label", &document.label)?,
        region: value(PLATFORM, "region", &document.region)?,
        instance_type: value(PLATFORM, "type", &document.kind)?,
        instance_id: document.id.to_string(),
        provider_id: format!("linode://{}", document.id),
        ..PlatformMetadataSpec::default()
    };
    Ok(Instance {
        metadata,
        network: config.bounded(PLATFORM)?,
        ..Instance::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    const INSTANCE: &[u8] = include_bytes!("testdata/akamai-instance.json");
    const NETWORK: &[u8] = include_bytes!("testdata/akamai-network.json");

    #[test]
    fn the_documents_give_the_instance_and_its_external_addresses() {
        let instance = parse(INSTANCE, Some(NETWORK)).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.hostname, "talos-akamai-1");
        assert_eq!(m.instance_id, "61234567");
        assert_eq!(m.provider_id, "linode://61234567");
        assert_eq!(m.region, "us-ord");
        assert_eq!(m.instance_type, "g6-standard-2");
        let external: Vec<String> = instance
            .network
            .external_ips
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            external,
            ["172.105.20.30", "2600:3c06::f03c:94ff:fe1e:4ba1"]
        );
        assert_eq!(instance.network.dhcp, ["eth0"]);
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        let error = parse(b"{}", None).unwrap_err().to_string();
        assert!(error.contains("missing field `id`"), "{error}");
        let error = parse(br#"{"id":1}"#, Some(br#"{"ipv4":{"public":["x/32"]}}"#))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not an IP address"), "{error}");
        let error = decode_base64(PLATFORM, "user-data", b"!!")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not base64"), "{error}");
    }

    #[test]
    fn fetch_takes_a_token_and_sends_it() {
        let (base, seen) = serve(
            table(&[
                ("PUT /v1/token", b"akamai-token-1"),
                ("GET /v1/instance", INSTANCE),
                ("GET /v1/network", NETWORK),
                ("GET /v1/user-data", b"dmVyc2lvbjogdjFhbHBoYTEK"),
            ]),
            vec![
                ("PUT /v1/token", "Metadata-Token-Expiry-Seconds: 3600"),
                ("GET /v1/", "Metadata-Token: akamai-token-1"),
            ],
        );
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.hostname, "talos-akamai-1");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        // The documents are asked for as JSON only (the service's default is plain text).
        for head in seen.lock().unwrap().iter() {
            let accepts: Vec<&str> = head
                .lines()
                .filter(|line| line.to_ascii_lowercase().starts_with("accept:"))
                .collect();
            if head.starts_with("GET /v1/instance") || head.starts_with("GET /v1/network") {
                assert_eq!(accepts, ["Accept: application/json"], "{head}");
            } else {
                assert_eq!(accepts, ["Accept: */*"], "{head}");
            }
        }
    }
}
