//! Google Compute Engine: one recursive read of `computeMetadata/v1/` (instance and project,
//! JSON) with `Metadata-Flavor: Google`, which the server must echo (an answer without it
//! did not come from the metadata server). The user data is the instance attribute
//! `user-data`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::netconfig::NetworkConfig;
use super::{Instance, MAX_USER_DATA, address, json, problem, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "gcp";
const FLAVOR: (&str, &str) = ("Metadata-Flavor", "Google");

/// Reads the metadata server at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let url = format!("{base}/computeMetadata/v1/?recursive=true&alt=json");
    let answer = super::http::request("GET", &url, &[FLAVOR], MAX_USER_DATA + (1 << 20))
        .map_err(|e| problem(PLATFORM, e))?;
    if answer.status != 200 {
        return Err(problem(
            PLATFORM,
            format!("{url}: the metadata server answered {}", answer.status),
        ));
    }
    if answer.header("metadata-flavor") != Some("Google") {
        return Err(problem(
            PLATFORM,
            format!("{url}: the answer lacks `Metadata-Flavor: Google`; not the metadata server"),
        ));
    }
    parse(&answer.body)
}

#[derive(Deserialize)]
struct Document {
    instance: GceInstance,
    #[serde(default)]
    project: Project,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Project {
    #[serde(default)]
    project_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GceInstance {
    id: serde_json::Value,
    #[serde(default)]
    name: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    machine_type: String,
    #[serde(default)]
    scheduling: Scheduling,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    network_interfaces: Vec<Interface>,
}

#[derive(Deserialize, Default)]
struct Scheduling {
    #[serde(default)]
    preemptible: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Interface {
    #[serde(default)]
    access_configs: Vec<AccessConfig>,
    #[serde(default)]
    ipv6_access_configs: Vec<AccessConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessConfig {
    #[serde(default)]
    external_ip: String,
    #[serde(default)]
    external_ipv6: String,
}

/// The last segment of `projects/123/zones/europe-west1-b`.
fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The recursive metadata document → the instance.
pub fn parse(raw: &[u8]) -> Result<Instance, MachinedError> {
    let document: Document = json(PLATFORM, "the metadata", raw)?;
    let gce = document.instance;
    let instance_id = match &gce.id {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => value(PLATFORM, "instance id", s)?,
        other => {
            return Err(problem(
                PLATFORM,
                format!("instance id: {other} is not an id"),
            ));
        }
    };
    let name = value(PLATFORM, "instance name", &gce.name)?;
    let zone = value(PLATFORM, "zone", last_segment(&gce.zone))?;
    let region = zone
        .rsplit_once('-')
        .map(|(region, _)| region.to_string())
        .unwrap_or_default();
    let project = value(PLATFORM, "project id", &document.project.project_id)?;
    let mut network = NetworkConfig::default();
    for interface in &gce.network_interfaces {
        for access in interface
            .access_configs
            .iter()
            .chain(&interface.ipv6_access_configs)
        {
            for ip in [&access.external_ip, &access.external_ipv6] {
                if !ip.is_empty() {
                    network
                        .external_ips
                        .push(address(PLATFORM, "external IP", ip)?);
                }
            }
        }
    }
    let mut tags = BTreeMap::new();
    for tag in &gce.tags {
        tags.insert(value(PLATFORM, "tag", tag)?, String::new());
    }
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &gce.hostname)?,
        provider_id: format!("gce://{project}/{zone}/{name}"),
        region,
        zone,
        instance_type: value(PLATFORM, "machine type", last_segment(&gce.machine_type))?,
        instance_id,
        spot: gce.scheduling.preemptible.eq_ignore_ascii_case("true"),
        tags,
        ..PlatformMetadataSpec::default()
    };
    let user_data = gce
        .attributes
        .get("user-data")
        .map(|s| s.as_bytes().to_vec());
    Ok(Instance {
        metadata,
        network: network.bounded(PLATFORM)?,
        user_data,
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("testdata/gcp.json");

    #[test]
    fn the_recursive_document_gives_upstreams_fields() {
        let instance = parse(FIXTURE).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.instance_id, "4520031799277581759");
        assert_eq!(m.provider_id, "gce://my-project-1234/europe-west1-b/node-1");
        assert_eq!(
            (m.region.as_str(), m.zone.as_str()),
            ("europe-west1", "europe-west1-b")
        );
        assert_eq!(m.instance_type, "e2-standard-2");
        assert!(m.spot);
        assert_eq!(m.tags.keys().collect::<Vec<_>>(), ["http-server", "talos"]);
        assert_eq!(
            instance.network.external_ips,
            vec!["203.0.113.20".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        assert!(
            parse(b"{}")
                .unwrap_err()
                .to_string()
                .contains("missing field `instance`")
        );
        assert!(
            parse(b"{\"instance\":{\"id\":[1]}}")
                .unwrap_err()
                .to_string()
                .contains("is not an id")
        );
        assert!(
            parse(&FIXTURE[..FIXTURE.len() / 2])
                .unwrap_err()
                .to_string()
                .starts_with("gcp: the metadata:")
        );
    }

    #[test]
    fn fetch_sends_the_flavor_header_and_wants_it_back() {
        let answers = table(&[("GET /computeMetadata/v1/?recursive=true&alt=json", FIXTURE)]);
        let (base, seen) = serve(answers, vec![("GET ", "Metadata-Flavor: Google")]);
        let instance = fetch(&base).unwrap();
        assert_eq!(
            instance.metadata.hostname,
            "node-1.europe-west1-b.c.my-project-1234.internal"
        );
        assert!(seen.lock().unwrap()[0].contains("Metadata-Flavor: Google\r\n"));

        // Something else answering on the address (no flavor in the answer).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            let (mut c, _) = listener.accept().unwrap();
            let _ = c.read(&mut [0u8; 1024]);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        });
        assert!(
            fetch(&base)
                .unwrap_err()
                .to_string()
                .contains("lacks `Metadata-Flavor: Google`")
        );
    }
}
