//! Alibaba Cloud ECS: the instance metadata service at [`METADATA_BASE`] in its security
//! hardening mode: a token from `PUT /latest/api/token` (header
//! `X-aliyun-ecs-metadata-token-ttl-seconds`), then, with the token in
//! `X-aliyun-ecs-metadata-token`, `GET /latest/meta-data/<key>` (one text value each; a key
//! the instance lacks answers 404) and `/latest/user-data`.
//!
//! As upstream: `hostname`, `instance-id`, `instance/instance-type`, `region-id`, `zone-id`;
//! `public-ipv4` (else the elastic IP, `eipv4`) is the external IP; `dns-conf/nameservers`
//! (separated by white space) are the resolvers; the instance's tags (`tags/instance/`, one
//! key a line) its tags; eth0 is left to DHCP; provider id `REGION.ID`.
//!
//! Limits: the NTP servers the service names (`ntp-conf/ntp-servers`) are not read; DHCP is
//! not told IPv4 from IPv6.

use std::collections::BTreeMap;

use super::netconfig::NetworkConfig;
use super::{Instance, MAX_USER_DATA, address, get, problem, value, value_of};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "alibabacloud";
/// Where ECS serves its metadata (plain HTTP, inside the instance's VPC).
pub const METADATA_BASE: &str = "http://100.100.100.200";
/// Lifetime asked for the token (seconds; the service allows up to six hours).
const TOKEN_TTL: &str = "21600";
/// Most instance tags read (ECS allows 20 per instance).
const MAX_TAGS: usize = 20;

/// The meta-data keys read.
pub const KEYS: &[&str] = &[
    "hostname",
    "instance-id",
    "instance/instance-type",
    "region-id",
    "zone-id",
    "public-ipv4",
    "eipv4",
    "dns-conf/nameservers",
];

/// Asks the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let url = format!("{base}/latest/api/token");
    let answer = super::http::request(
        "PUT",
        &url,
        &[("X-aliyun-ecs-metadata-token-ttl-seconds", TOKEN_TTL)],
        4096,
    )
    .map_err(|e| problem(PLATFORM, e))?;
    if answer.status != 200 {
        return Err(problem(
            PLATFORM,
            format!("{url}: no token (the service answered {})", answer.status),
        ));
    }
    let token = value_of(PLATFORM, "the metadata token", &answer.body)?;
    if token.is_empty() {
        return Err(problem(PLATFORM, format!("{url}: an empty token")));
    }
    let headers = [("X-aliyun-ecs-metadata-token", token.as_str())];
    let mut values = BTreeMap::new();
    for key in KEYS {
        let url = format!("{base}/latest/meta-data/{key}");
        if let Some(body) = get(PLATFORM, &url, &headers, 4096)? {
            values.insert(*key, body);
        }
    }
    let mut tags = BTreeMap::new();
    let listing = format!("{base}/latest/meta-data/tags/instance/");
    if let Some(keys) = get(PLATFORM, &listing, &headers, 64 << 10)? {
        for key in tag_keys(&keys)?.iter().take(MAX_TAGS) {
            let url = format!("{listing}{key}");
            if let Some(tag) = get(PLATFORM, &url, &headers, 4096)? {
                tags.insert(key.clone(), value_of(PLATFORM, key, &tag)?);
            }
        }
    }
    let mut instance = parse(&values)?;
    instance.metadata.tags = tags;
    instance.user_data = get(
        PLATFORM,
        &format!("{base}/latest/user-data"),
        &headers,
        MAX_USER_DATA,
    )?
    .filter(|data| !data.is_empty());
    Ok(instance)
}

/// The tag keys of a listing (white-space separated, a trailing `/` each at most); keys with
/// characters that are not a URL path's are skipped.
fn tag_keys(raw: &[u8]) -> Result<Vec<String>, MachinedError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| problem(PLATFORM, "tags/instance/: not UTF-8 text"))?;
    text.split_whitespace()
        .map(|key| key.trim_end_matches('/'))
        .filter(|key| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:+=@".contains(c))
        })
        .map(|key| value(PLATFORM, "tag key", key))
        .collect()
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
    let public = match text("public-ipv4")? {
        empty if empty.is_empty() => text("eipv4")?,
        public => public,
    };
    if !public.is_empty() {
        network
            .external_ips
            .push(address(PLATFORM, "public-ipv4", &public)?);
    }
    if let Some(raw) = values.get("dns-conf/nameservers") {
        let servers = std::str::from_utf8(raw)
            .map_err(|_| problem(PLATFORM, "dns-conf/nameservers: not UTF-8 text"))?;
        for server in servers.split_whitespace() {
            network
                .resolvers
                .push(address(PLATFORM, "dns-conf/nameservers", server)?);
        }
    }
    let region = text("region-id")?;
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: text("hostname")?,
        provider_id: format!("{region}.{instance_id}"),
        region,
        zone: text("zone-id")?,
        instance_type: text("instance/instance-type")?,
        instance_id,
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

    /// Values as the service documents them.
    fn fixture() -> BTreeMap<&'static str, Vec<u8>> {
        [
            ("hostname", "iZbp1talosrs0node1Z"),
            ("instance-id", "i-bp1talosrs0node1"),
            ("instance/instance-type", "ecs.g6.large"),
            ("region-id", "cn-hangzhou"),
            ("zone-id", "cn-hangzhou-i"),
            ("eipv4", "203.0.113.50"),
            ("dns-conf/nameservers", "100.100.2.136\n100.100.2.138"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.as_bytes().to_vec()))
        .collect()
    }

    #[test]
    fn meta_data_gives_upstreams_fields() {
        let instance = parse(&fixture()).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.platform, "alibabacloud");
        assert_eq!(m.provider_id, "cn-hangzhou.i-bp1talosrs0node1");
        assert_eq!(
            (
                m.hostname.as_str(),
                m.region.as_str(),
                m.zone.as_str(),
                m.instance_type.as_str()
            ),
            (
                "iZbp1talosrs0node1Z",
                "cn-hangzhou",
                "cn-hangzhou-i",
                "ecs.g6.large"
            )
        );
        let n = &instance.network;
        // No public-ipv4: the elastic IP is the external one.
        assert_eq!(
            n.external_ips,
            ["203.0.113.50".parse::<std::net::IpAddr>().unwrap()]
        );
        let resolvers: Vec<String> = n.resolvers.iter().map(ToString::to_string).collect();
        assert_eq!(resolvers, ["100.100.2.136", "100.100.2.138"]);
        assert_eq!(n.dhcp, ["eth0"]);
        let mut values = fixture();
        values.insert("public-ipv4", b"198.51.100.9".to_vec());
        assert_eq!(
            parse(&values).unwrap().network.external_ips,
            ["198.51.100.9".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    #[test]
    fn bad_meta_data_is_a_clear_error() {
        let error = |values: &BTreeMap<&str, Vec<u8>>| parse(values).unwrap_err().to_string();
        let mut values = fixture();
        values.insert("dns-conf/nameservers", b"100.100.2.136 resolver".to_vec());
        assert!(
            error(&values).contains("dns-conf/nameservers: \"resolver\" is not an IP address"),
            "{}",
            error(&values)
        );
        let mut values = fixture();
        values.insert("dns-conf/nameservers", "1.1.1.1 ".repeat(65).into_bytes());
        assert!(
            error(&values).contains("more than 64"),
            "{}",
            error(&values)
        );
        let mut values = fixture();
        values.insert("hostname", b"a\x1b[2Jb".to_vec());
        assert!(error(&values).contains("control characters"));
        values.remove("instance-id");
        assert!(error(&values).contains("no instance-id"));
    }

    #[test]
    fn fetch_puts_for_a_token_and_sends_it_with_every_get() {
        let mut answers = table(&[
            ("PUT /latest/api/token", b"AAAAAtalosrs-token"),
            ("GET /latest/user-data", b"version: v1alpha1\n"),
            (
                "GET /latest/meta-data/tags/instance/",
                b"team\nenv/\nbad key/x\n",
            ),
            ("GET /latest/meta-data/tags/instance/team", b"k8s"),
            ("GET /latest/meta-data/tags/instance/env", b"test"),
        ]);
        for (key, body) in fixture() {
            answers.insert(format!("GET /latest/meta-data/{key}"), (200, body));
        }
        let required = vec![
            ("PUT ", "X-aliyun-ecs-metadata-token-ttl-seconds: 21600"),
            ("GET ", "X-aliyun-ecs-metadata-token: AAAAAtalosrs-token"),
        ];
        let (base, seen) = serve(answers.clone(), required);
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.instance_id, "i-bp1talosrs0node1");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        let tags: Vec<String> = instance
            .metadata
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(tags, ["env=test", "team=k8s"]);
        assert!(seen.lock().unwrap()[0].starts_with("PUT /latest/api/token"));

        // Without user data (404) and tags: the instance alone.
        answers.remove("GET /latest/user-data");
        answers.remove("GET /latest/meta-data/tags/instance/");
        let (base, _) = serve(answers.clone(), Vec::new());
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.user_data, None);
        assert!(instance.metadata.tags.is_empty());

        // Normal mode only (no token endpoint): a clear error.
        answers.remove("PUT /latest/api/token");
        let (base, _) = serve(answers, Vec::new());
        let error = fetch(&base).unwrap_err().to_string();
        assert!(
            error.contains("no token (the service answered 404)"),
            "{error}"
        );
    }
}
