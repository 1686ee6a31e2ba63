//! AWS EC2 (IMDSv2): a session token from `PUT /latest/api/token` (header
//! `X-aws-ec2-metadata-token-ttl-seconds`), then `GET /latest/meta-data/<key>` and
//! `/latest/user-data` with the token in `X-aws-ec2-metadata-token`. Each key is one small text
//! value; a key the instance lacks answers 404.

use std::collections::BTreeMap;

use super::netconfig::NetworkConfig;
use super::{Instance, MAX_USER_DATA, address, get, problem, value, value_of};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "aws";
/// Lifetime asked for the session token (seconds; IMDS allows up to six hours).
const TOKEN_TTL: &str = "21600";

/// The meta-data keys read.
pub const KEYS: &[&str] = &[
    "hostname",
    "instance-id",
    "instance-type",
    "instance-life-cycle",
    "local-hostname",
    "public-hostname",
    "placement/region",
    "placement/availability-zone",
    "public-ipv4",
    "ipv6",
];

/// Asks IMDSv2 at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let url = format!("{base}/latest/api/token");
    let answer = super::http::request(
        "PUT",
        &url,
        &[("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL)],
        4096,
    )
    .map_err(|e| problem(PLATFORM, e))?;
    if answer.status != 200 {
        return Err(problem(
            PLATFORM,
            format!(
                "{url}: no IMDSv2 token (the service answered {})",
                answer.status
            ),
        ));
    }
    let token = value_of(PLATFORM, "the IMDSv2 token", &answer.body)?;
    let headers = [("X-aws-ec2-metadata-token", token.as_str())];
    let mut values = BTreeMap::new();
    for key in KEYS {
        let url = format!("{base}/latest/meta-data/{key}");
        if let Some(body) = get(PLATFORM, &url, &headers, 4096)? {
            values.insert(*key, body);
        }
    }
    let mut tags = BTreeMap::new();
    // Instance tags, when the instance allows them in its metadata (else 404).
    if let Some(keys) = get(
        PLATFORM,
        &format!("{base}/latest/meta-data/tags/instance"),
        &headers,
        64 << 10,
    )? {
        let keys = value_list(&keys)?;
        for key in keys.iter().take(MAX_TAGS) {
            // A tag key may hold characters that are not a URL path's: skip those.
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:+=@".contains(c))
            {
                continue;
            }
            let url = format!("{base}/latest/meta-data/tags/instance/{key}");
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
    )?;
    Ok(instance)
}

/// Most instance tags read (AWS allows 50 per resource).
const MAX_TAGS: usize = 50;

/// A listing: one value per line.
fn value_list(raw: &[u8]) -> Result<Vec<String>, MachinedError> {
    let text =
        std::str::from_utf8(raw).map_err(|_| problem(PLATFORM, "tags/instance: not UTF-8 text"))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| value(PLATFORM, "tag key", line))
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
    let zone = text("placement/availability-zone")?;
    let mut network = NetworkConfig::default();
    for key in ["public-ipv4", "ipv6"] {
        let ip = text(key)?;
        if !ip.is_empty() {
            network.external_ips.push(address(PLATFORM, key, &ip)?);
        }
    }
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: text("hostname")?,
        region: text("placement/region")?,
        provider_id: format!("aws:///{zone}/{instance_id}"),
        zone,
        instance_type: text("instance-type")?,
        instance_id,
        spot: text("instance-life-cycle")? == "spot",
        internal_dns: text("local-hostname")?,
        external_dns: text("public-hostname")?,
        tags: BTreeMap::new(),
    };
    Ok(Instance {
        metadata,
        network,
        user_data: None,
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    fn fixture() -> BTreeMap<&'static str, Vec<u8>> {
        [
            ("hostname", "ip-10-0-1-23.eu-west-1.compute.internal"),
            ("instance-id", "i-0abc1234def567890"),
            ("instance-type", "t3.medium"),
            ("instance-life-cycle", "spot"),
            ("local-hostname", "ip-10-0-1-23.eu-west-1.compute.internal"),
            (
                "public-hostname",
                "ec2-203-0-113-7.eu-west-1.compute.amazonaws.com",
            ),
            ("placement/region", "eu-west-1"),
            ("placement/availability-zone", "eu-west-1b"),
            ("public-ipv4", "203.0.113.7"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.as_bytes().to_vec()))
        .collect()
    }

    #[test]
    fn meta_data_gives_upstreams_fields() {
        let instance = parse(&fixture()).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.provider_id, "aws:///eu-west-1b/i-0abc1234def567890");
        assert_eq!(
            (m.region.as_str(), m.zone.as_str(), m.instance_type.as_str()),
            ("eu-west-1", "eu-west-1b", "t3.medium")
        );
        assert!(m.spot);
        assert_eq!(
            m.external_dns,
            "ec2-203-0-113-7.eu-west-1.compute.amazonaws.com"
        );
        assert_eq!(
            instance.network.external_ips,
            vec!["203.0.113.7".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    #[test]
    fn bad_meta_data_is_a_clear_error() {
        let mut values = fixture();
        values.insert("public-ipv4", b"not-an-ip".to_vec());
        assert!(
            parse(&values)
                .unwrap_err()
                .to_string()
                .contains("public-ipv4: \"not-an-ip\" is not an IP address")
        );
        values.insert("public-ipv4", b"203.0.113.7".to_vec());
        values.insert("hostname", b"a\x1b[2Jb".to_vec());
        assert!(
            parse(&values)
                .unwrap_err()
                .to_string()
                .contains("control characters")
        );
        values.insert("hostname", vec![b'a'; 1000]);
        assert!(
            parse(&values)
                .unwrap_err()
                .to_string()
                .contains("longer than")
        );
        values.insert("hostname", vec![0xff, 0xfe]);
        assert!(
            parse(&values)
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
        values.remove("instance-id");
        assert!(
            parse(&values)
                .unwrap_err()
                .to_string()
                .contains("no instance-id")
        );
    }

    #[test]
    fn fetch_puts_for_a_token_and_sends_it_with_every_get() {
        let mut answers = table(&[
            ("PUT /latest/api/token", b"AQAEAtoken=="),
            ("GET /latest/user-data", b"version: v1alpha1\n"),
        ]);
        for (key, body) in fixture() {
            answers.insert(format!("GET /latest/meta-data/{key}"), (200, body));
        }
        answers.insert(
            "GET /latest/meta-data/tags/instance".into(),
            (200, b"Name\nteam\nbad key/x\n".to_vec()),
        );
        answers.insert(
            "GET /latest/meta-data/tags/instance/Name".into(),
            (200, b"node-1".to_vec()),
        );
        answers.insert(
            "GET /latest/meta-data/tags/instance/team".into(),
            (200, b"k8s".to_vec()),
        );
        let required = vec![
            ("PUT ", "X-aws-ec2-metadata-token-ttl-seconds: 21600"),
            ("GET ", "X-aws-ec2-metadata-token: AQAEAtoken=="),
        ];
        let (base, seen) = serve(answers.clone(), required);
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.instance_id, "i-0abc1234def567890");
        assert_eq!(
            instance.metadata.hostname,
            "ip-10-0-1-23.eu-west-1.compute.internal"
        );
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        assert!(seen.lock().unwrap()[0].starts_with("PUT /latest/api/token"));
        let tags: Vec<_> = instance
            .metadata
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(tags, ["Name=node-1", "team=k8s"]);

        // IMDSv1 only (no token endpoint): a clear error.
        answers.remove("PUT /latest/api/token");
        let (base, _) = serve(answers, Vec::new());
        let error = fetch(&base).unwrap_err().to_string();
        assert!(
            error.contains("no IMDSv2 token (the service answered 404)"),
            "{error}"
        );
    }
}
