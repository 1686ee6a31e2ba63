//! Cloud providers' metadata services (reference §7.3): what each says about the instance
//! (hostname, ids, type, region and zone, addresses, routes, resolvers, external IPs) and
//! its user data, the machine config.
//!
//! Each provider has a module with a pure parser (the documents' bytes → [`Instance`]) and a
//! fetcher over HTTP ([`super::http`]; https for equinixMetal) that takes the service's base
//! URL, so that tests point it at a server of their own on loopback. Everything a provider
//! answers is treated as
//! hostile: every document is bounded ([`MAX_DOCUMENT`], [`MAX_USER_DATA`]), every value is
//! checked (length, control characters, addresses), and nothing panics.
//!
//! OpenNebula has no metadata service: its parser reads the `context.sh` of a local volume
//! ([`opennebula`], [`shellvars`]).
//!
//! The network a provider describes becomes the `machine.network` networkd applies while the
//! config has none ([`netconfig::NetworkConfig::machine_network`]).
//!
//! Limits: user data must be a plain machine config (no gzip, no MIME multipart, no
//! `#include`); external IPs are only reported.

pub mod akamai;
pub mod alibabacloud;
pub mod aws;
pub mod azure;
pub mod cloudstack;
pub mod digitalocean;
pub mod equinixmetal;
pub mod exoscale;
pub mod gcp;
pub mod hcloud;
#[cfg(test)]
mod hostile;
pub mod netconfig;
pub mod opennebula;
pub mod openstack;
pub mod oracle;
pub mod scaleway;
pub mod shellvars;
pub mod upcloud;
pub mod vultr;

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::http;
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

/// Where most providers here serve their metadata (link-local, plain HTTP); scaleway,
/// alibabacloud, cloudstack and equinixMetal serve theirs elsewhere ([`Provider::service`]).
pub const METADATA_BASE: &str = "http://169.254.169.254";
/// Largest metadata document accepted.
const MAX_DOCUMENT: u64 = 1 << 20;
/// Largest user data accepted (a machine config is a few tens of KiB).
pub const MAX_USER_DATA: u64 = 4 << 20;
/// Longest single value (hostname, id, type, …) accepted.
const MAX_VALUE: usize = 253;

/// What a provider says about the instance.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Instance {
    pub metadata: PlatformMetadataSpec,
    pub network: netconfig::NetworkConfig,
    /// The user data, when the instance has any.
    pub user_data: Option<Vec<u8>>,
    /// What the fetch has to say besides (e.g. a failed report to the provider), for the log.
    pub notes: Vec<String>,
}

/// The platforms with a metadata service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Aws,
    Azure,
    Gcp,
    OpenStack,
    Hcloud,
    DigitalOcean,
    Vultr,
    UpCloud,
    Oracle,
    Exoscale,
    Akamai,
    AlibabaCloud,
    CloudStack,
    Scaleway,
    EquinixMetal,
}

impl Provider {
    /// The provider of `talos.platform=NAME`, if NAME has a metadata service here.
    pub fn from_name(name: &str) -> Option<Provider> {
        Some(match name {
            "aws" => Provider::Aws,
            "azure" => Provider::Azure,
            "gcp" => Provider::Gcp,
            "openstack" => Provider::OpenStack,
            "hcloud" => Provider::Hcloud,
            "digital-ocean" => Provider::DigitalOcean,
            "vultr" => Provider::Vultr,
            "upcloud" => Provider::UpCloud,
            "oracle" => Provider::Oracle,
            "exoscale" => Provider::Exoscale,
            "akamai" => Provider::Akamai,
            "alibabacloud" => Provider::AlibabaCloud,
            "cloudstack" => Provider::CloudStack,
            "scaleway" => Provider::Scaleway,
            "equinixMetal" => Provider::EquinixMetal,
            _ => return None,
        })
    }

    /// Upstream's platform name.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Gcp => "gcp",
            Provider::OpenStack => "openstack",
            Provider::Hcloud => "hcloud",
            Provider::DigitalOcean => "digital-ocean",
            Provider::Vultr => "vultr",
            Provider::UpCloud => "upcloud",
            Provider::Oracle => "oracle",
            Provider::Exoscale => "exoscale",
            Provider::Akamai => "akamai",
            Provider::AlibabaCloud => "alibabacloud",
            Provider::CloudStack => "cloudstack",
            Provider::Scaleway => "scaleway",
            Provider::EquinixMetal => "equinixMetal",
        }
    }

    /// Where the provider's metadata service is, given `base` ([`METADATA_BASE`] in the
    /// image, a test's server otherwise): `base`, except that scaleway, alibabacloud,
    /// cloudstack and equinixMetal serve theirs at [`scaleway::METADATA_BASE`],
    /// [`alibabacloud::METADATA_BASE`], [`cloudstack::DATA_SERVER`] and
    /// [`equinixmetal::METADATA_BASE`].
    pub fn service(self, base: &str) -> &str {
        let base = base.trim_end_matches('/');
        match self {
            _ if base != METADATA_BASE => base,
            Provider::CloudStack => cloudstack::DATA_SERVER,
            Provider::Scaleway => scaleway::METADATA_BASE,
            Provider::AlibabaCloud => alibabacloud::METADATA_BASE,
            Provider::EquinixMetal => equinixmetal::METADATA_BASE,
            _ => base,
        }
    }

    /// Asks the metadata service at [`Provider::service`] of `base` once. Azure's wire
    /// server is [`azure::WIRE_SERVER`] beside the real metadata service, and `base` itself
    /// beside any other (a mock serves both).
    pub fn fetch(self, base: &str) -> Result<Instance, MachinedError> {
        let base = self.service(base);
        match self {
            Provider::Aws => aws::fetch(base),
            Provider::Azure if base == METADATA_BASE => azure::fetch(base, azure::WIRE_SERVER),
            Provider::Azure => azure::fetch(base, base),
            Provider::Gcp => gcp::fetch(base),
            Provider::OpenStack => openstack::fetch(base),
            Provider::Hcloud => hcloud::fetch(base),
            Provider::DigitalOcean => digitalocean::fetch(base),
            Provider::Vultr => vultr::fetch(base),
            Provider::UpCloud => upcloud::fetch(base),
            Provider::Oracle => oracle::fetch(base),
            Provider::Exoscale => exoscale::fetch(base),
            Provider::Akamai => akamai::fetch(base),
            Provider::AlibabaCloud => alibabacloud::fetch(base),
            Provider::CloudStack => cloudstack::fetch(base),
            Provider::Scaleway => scaleway::fetch(base),
            Provider::EquinixMetal => equinixmetal::fetch(base),
        }
    }
}

/// `what` of `platform` given as base64 (whitespace allowed), bounded by [`MAX_USER_DATA`];
/// empty text is `None`.
fn decode_base64(
    platform: &'static str,
    what: &str,
    text: &[u8],
) -> Result<Option<Vec<u8>>, MachinedError> {
    use base64::Engine as _;
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Ok(None);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| problem(platform, format!("{what}: not base64: {e}")))?;
    if bytes.len() as u64 > MAX_USER_DATA {
        return Err(problem(
            platform,
            format!("{what}: larger than {MAX_USER_DATA} bytes"),
        ));
    }
    Ok(Some(bytes))
}

/// A failure of `platform` in words.
fn problem(platform: &'static str, problem: impl Into<String>) -> MachinedError {
    MachinedError::Platform {
        platform,
        problem: problem.into(),
    }
}

/// GET `url`: the body of a 200, `None` for a 404 (the key or the user data does not exist).
fn get(
    platform: &'static str,
    url: &str,
    headers: &[(&str, &str)],
    max: u64,
) -> Result<Option<Vec<u8>>, MachinedError> {
    let response = http::request("GET", url, headers, max).map_err(|e| problem(platform, e))?;
    body_of(platform, url, response)
}

/// The body of a 200 from `url`, `None` for a 404, else an error naming the status.
fn body_of(
    platform: &'static str,
    url: &str,
    response: http::Response,
) -> Result<Option<Vec<u8>>, MachinedError> {
    match response.status {
        200 => Ok(Some(response.body)),
        404 => Ok(None),
        status => Err(problem(
            platform,
            format!("{url}: the metadata service answered {status}"),
        )),
    }
}

/// GET `url` that must exist.
fn get_required(
    platform: &'static str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Vec<u8>, MachinedError> {
    get(platform, url, headers, MAX_DOCUMENT)?
        .ok_or_else(|| problem(platform, format!("{url}: not found (404)")))
}

/// The meta-data keys of a CloudStack-style service (CloudStack, Exoscale): one text value
/// each, a missing key answering 404.
const CLOUDSTACK_STYLE_KEYS: &[&str] = &[
    "local-hostname",
    "instance-id",
    "service-offering",
    "availability-zone",
    "public-ipv4",
];

/// A CloudStack-style service under `root`: `root/meta-data/<key>` for each of
/// [`CLOUDSTACK_STYLE_KEYS`], made into the instance by `parse`, then `root/user-data` (empty:
/// none).
fn fetch_cloudstack_style(
    platform: &'static str,
    root: &str,
    parse: impl FnOnce(&BTreeMap<&str, Vec<u8>>) -> Result<Instance, MachinedError>,
) -> Result<Instance, MachinedError> {
    let values = get_values(
        platform,
        &format!("{root}/meta-data"),
        CLOUDSTACK_STYLE_KEYS,
    )?;
    let mut instance = parse(&values)?;
    instance.user_data = get(platform, &format!("{root}/user-data"), &[], MAX_USER_DATA)?
        .filter(|data| !data.is_empty());
    Ok(instance)
}

/// Each of `keys` under `prefix` (`PREFIX/KEY`, one short text value each), those that exist.
fn get_values<'k>(
    platform: &'static str,
    prefix: &str,
    keys: &[&'k str],
) -> Result<BTreeMap<&'k str, Vec<u8>>, MachinedError> {
    let mut values = BTreeMap::new();
    for key in keys {
        if let Some(body) = get(platform, &format!("{prefix}/{key}"), &[], 4096)? {
            values.insert(*key, body);
        }
    }
    Ok(values)
}

/// A single value: UTF-8, trimmed, at most [`MAX_VALUE`] bytes, no control characters.
fn value(platform: &'static str, what: &str, raw: &str) -> Result<String, MachinedError> {
    let text = raw.trim();
    if text.len() > MAX_VALUE {
        return Err(problem(
            platform,
            format!("{what}: longer than {MAX_VALUE} bytes"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(problem(
            platform,
            format!("{what}: {text:?} holds control characters"),
        ));
    }
    Ok(text.to_string())
}

/// [`value`] of bytes.
fn value_of(platform: &'static str, what: &str, raw: &[u8]) -> Result<String, MachinedError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| problem(platform, format!("{what}: not UTF-8 text")))?;
    value(platform, what, text)
}

/// An IP address.
fn address(platform: &'static str, what: &str, raw: &str) -> Result<IpAddr, MachinedError> {
    raw.trim()
        .parse()
        .map_err(|_| problem(platform, format!("{what}: {raw:?} is not an IP address")))
}

/// Decodes a JSON document.
fn json<T: serde::de::DeserializeOwned>(
    platform: &'static str,
    what: &str,
    raw: &[u8],
) -> Result<T, MachinedError> {
    serde_json::from_slice(raw).map_err(|e| problem(platform, format!("{what}: {e}")))
}

/// Decodes a YAML document.
fn yaml<T: serde::de::DeserializeOwned>(
    platform: &'static str,
    what: &str,
    raw: &[u8],
) -> Result<T, MachinedError> {
    serde_norway::from_slice(raw).map_err(|e| problem(platform, format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_provider_is_asked_where_it_serves_its_metadata() {
        let services: Vec<&str> = [
            "aws",
            "scaleway",
            "alibabacloud",
            "cloudstack",
            "equinixMetal",
        ]
        .iter()
        .map(|name| Provider::from_name(name).unwrap().service(METADATA_BASE))
        .collect();
        assert_eq!(
            services,
            [
                "http://169.254.169.254",
                "http://169.254.42.42",
                "http://100.100.100.200",
                "http://data-server.",
                "https://metadata.platformequinix.com"
            ]
        );
        // A test's server stands in for every one of them.
        let base = "http://127.80.0.9:8080/";
        assert_eq!(Provider::Scaleway.service(base), "http://127.80.0.9:8080");
        assert_eq!(Provider::EquinixMetal.name(), "equinixMetal");
        assert_eq!(Provider::from_name("opennebula"), None);
    }
}

#[cfg(test)]
pub(crate) mod testserver {
    //! A loopback HTTP server that answers from a table and records the requests it got.

    use std::collections::BTreeMap;
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// The requests seen (their heads, then their bodies), shared with the test.
    pub type Seen = Arc<Mutex<Vec<String>>>;

    /// Serves `answers` ("METHOD /path" → (status, body)) on 127.0.0.1. A request whose
    /// line starts with the first of a `required` pair must carry the second, a header line
    /// (compared without case), or it is answered 401.
    pub fn serve(
        answers: BTreeMap<String, (u16, Vec<u8>)>,
        required: Vec<(&'static str, &'static str)>,
    ) -> (String, Seen) {
        serve_at("127.0.0.1:0", answers, required, &[])
    }

    /// [`serve`] on `bind` (an address and port); a request whose line starts with one of
    /// `privileged` from a source port of 1024 or above is answered 403.
    pub fn serve_at(
        bind: &str,
        answers: BTreeMap<String, (u16, Vec<u8>)>,
        required: Vec<(&'static str, &'static str)>,
        privileged: &[&'static str],
    ) -> (String, Seen) {
        let listener = TcpListener::bind(bind).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let record = Arc::clone(&seen);
        let privileged = privileged.to_vec();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(mut connection) = connection else {
                    return;
                };
                let low_port = connection.peer_addr().is_ok_and(|peer| peer.port() < 1024);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && connection.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let mut head = String::from_utf8_lossy(&head).into_owned();
                let length = head
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length.min(1 << 20)];
                if connection.read_exact(&mut body).is_ok() {
                    head.push_str(&String::from_utf8_lossy(&body));
                }
                record.lock().unwrap().push(head.clone());
                let mut first = head.lines().next().unwrap_or_default().split(' ');
                let key = format!(
                    "{} {}",
                    first.next().unwrap_or_default(),
                    first.next().unwrap_or_default()
                );
                let lines: Vec<String> = head.lines().map(str::to_ascii_lowercase).collect();
                let allowed = required.iter().all(|(prefix, header)| {
                    !key.starts_with(prefix) || lines.contains(&header.to_ascii_lowercase())
                });
                let refused = !low_port && privileged.iter().any(|p| key.starts_with(p));
                let (status, body) = match answers.get(&key) {
                    Some(_) if refused => (403, Vec::new()),
                    Some(answer) if allowed => answer.clone(),
                    Some(_) => (401, Vec::new()),
                    None => (404, Vec::new()),
                };
                let head = format!(
                    "HTTP/1.0 {status} X\r\nContent-Length: {}\r\nMetadata-Flavor: Google\r\n\r\n",
                    body.len()
                );
                let _ = connection.write_all(head.as_bytes());
                let _ = connection.write_all(&body);
            }
        });
        (base, seen)
    }

    /// `answers` from pairs.
    pub fn table(pairs: &[(&str, &[u8])]) -> BTreeMap<String, (u16, Vec<u8>)> {
        pairs
            .iter()
            .map(|(key, body)| ((*key).to_string(), (200, body.to_vec())))
            .collect()
    }
}
