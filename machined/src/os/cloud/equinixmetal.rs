//! Equinix Metal: `https://metadata.platformequinix.com/metadata` (JSON: id, hostname, plan,
//! metro, facility, `network.bonding.mode`, `network.interfaces` with their bond,
//! `network.addresses`, `private_subnets`, `bgp_neighbors`) and `/userdata`.
//!
//! As upstream: the interfaces that name a bond become its members (found by MAC address,
//! else by the name the document gives), with the document's bonding mode; the enabled
//! management addresses go on the first bond; a public one is an external IP and its gateway
//! a default route, a private one's gateway the route to each private subnet and to each IPv4
//! BGP peer; the region is the metro, the zone the facility, the instance type the plan;
//! provider id `equinixmetal://ID`. The service is https only: its certificate must chain to
//! one of Mozilla's roots ([`super::http`]).

use std::net::IpAddr;

use serde::Deserialize;

use super::netconfig::{Address, Bond, NetworkConfig, Route, cidr};
use super::{Instance, MAX_USER_DATA, address, get, get_required, json, problem, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "equinixMetal";

/// Where Equinix Metal serves its metadata.
pub const METADATA_BASE: &str = "https://metadata.platformequinix.com";

/// Reads the metadata service at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let metadata = get_required(PLATFORM, &format!("{base}/metadata"), &[])?;
    let mut instance = parse(&metadata)?;
    instance.user_data = get(PLATFORM, &format!("{base}/userdata"), &[], MAX_USER_DATA)?
        .filter(|data| !data.is_empty());
    Ok(instance)
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    id: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    metro: String,
    #[serde(default)]
    facility: String,
    #[serde(default)]
    network: Network,
    #[serde(default)]
    bgp_neighbors: Vec<BgpNeighbor>,
    #[serde(default)]
    private_subnets: Vec<String>,
}

#[derive(Deserialize, Default)]
struct Network {
    #[serde(default)]
    bonding: Bonding,
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    addresses: Vec<NetworkAddress>,
}

#[derive(Deserialize, Default)]
struct Bonding {
    #[serde(default)]
    mode: u8,
}

#[derive(Deserialize)]
struct Interface {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    bond: String,
}

#[derive(Deserialize)]
struct NetworkAddress {
    #[serde(default)]
    public: bool,
    #[serde(default)]
    management: bool,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    cidr: u8,
    #[serde(default)]
    address: String,
    #[serde(default)]
    gateway: String,
}

#[derive(Deserialize)]
struct BgpNeighbor {
    #[serde(default)]
    address_family: u8,
    #[serde(default)]
    peer_ips: Vec<String>,
}

/// The kernel's name of bonding mode `mode` (the numbers of `/proc/net/bonding`).
fn bond_mode(mode: u8) -> Result<&'static str, MachinedError> {
    const MODES: [&str; 7] = [
        "balance-rr",
        "active-backup",
        "balance-xor",
        "broadcast",
        "802.3ad",
        "balance-tlb",
        "balance-alb",
    ];
    MODES.get(usize::from(mode)).copied().ok_or_else(|| {
        problem(
            PLATFORM,
            format!("network.bonding.mode: {mode} is not a bonding mode (0 to 6)"),
        )
    })
}

/// A link name or MAC address from the document.
fn link_name(what: &str, raw: &str) -> Result<String, MachinedError> {
    let name = value(PLATFORM, what, raw)?;
    if name.len() > 15 || name.contains(['/', ' ']) {
        return Err(problem(
            PLATFORM,
            format!("{what}: {name:?} is not a link name"),
        ));
    }
    Ok(name)
}

/// `metadata` → the instance.
pub fn parse(raw: &[u8]) -> Result<Instance, MachinedError> {
    let document: Document = json(PLATFORM, "metadata", raw)?;
    let mut network = NetworkConfig::default();
    let mode = bond_mode(document.network.bonding.mode)?;
    for interface in &document.network.interfaces {
        if interface.bond.is_empty() {
            continue;
        }
        let bond = link_name("network.interfaces[].bond", &interface.bond)?;
        let member = (
            value(PLATFORM, "network.interfaces[].mac", &interface.mac)?,
            link_name("network.interfaces[].name", &interface.name)?,
        );
        match network.bonds.iter_mut().find(|b| b.name == bond) {
            Some(existing) => existing.members.push(member),
            None => network.bonds.push(Bond {
                name: bond,
                mode: mode.into(),
                members: vec![member],
            }),
        }
        // Bounded before the document can grow the list further.
        network.check(PLATFORM)?;
    }
    network.bonds.sort_by(|a, b| a.name.cmp(&b.name));
    let first_bond = document
        .network
        .interfaces
        .iter()
        .find(|i| !i.bond.is_empty())
        .map(|i| i.bond.trim().to_string())
        .unwrap_or_default();
    let subnets = document
        .private_subnets
        .iter()
        .map(|subnet| cidr(PLATFORM, "private_subnets", subnet))
        .collect::<Result<Vec<_>, _>>()?;
    let mut private_gateway: Option<IpAddr> = None;
    let managed = document
        .network
        .addresses
        .iter()
        .filter(|a| a.enabled && a.management);
    for entry in managed {
        let ip = address(PLATFORM, "network.addresses[].address", &entry.address)?;
        network.addresses.push(Address {
            link: first_bond.clone(),
            address: ip,
            prefix: entry.cidr,
        });
        let gateway = address(PLATFORM, "network.addresses[].gateway", &entry.gateway)?;
        if entry.public {
            network.external_ips.push(ip);
            network.routes.push(Route {
                link: first_bond.clone(),
                destination: None,
                gateway,
            });
        } else {
            for subnet in &subnets {
                private_gateway = Some(gateway);
                network.routes.push(Route {
                    link: first_bond.clone(),
                    destination: Some(*subnet),
                    gateway,
                });
            }
        }
        network.check(PLATFORM)?;
    }
    let peers = document
        .bgp_neighbors
        .iter()
        .filter(|n| n.address_family == 4)
        .flat_map(|n| &n.peer_ips);
    for peer in peers {
        let peer = address(PLATFORM, "bgp_neighbors[].peer_ips", peer)?;
        let Some(gateway) = private_gateway else {
            break;
        };
        network.routes.push(Route {
            link: first_bond.clone(),
            destination: Some((peer, 32)),
            gateway,
        });
        network.check(PLATFORM)?;
    }
    let id = value(PLATFORM, "id", &document.id)?;
    if id.is_empty() {
        return Err(problem(PLATFORM, "metadata: no id"));
    }
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &document.hostname)?,
        region: value(PLATFORM, "metro", &document.metro)?,
        zone: value(PLATFORM, "facility", &document.facility)?,
        instance_type: value(PLATFORM, "plan", &document.plan)?,
        provider_id: format!("equinixmetal://{id}"),
        instance_id: id,
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
    use std::collections::BTreeMap;

    use super::super::testserver::{serve_at, table};
    use super::*;

    const METADATA: &[u8] = include_bytes!("testdata/equinixmetal.json");

    #[test]
    fn the_document_gives_the_instance_its_bond_addresses_and_routes() {
        let instance = parse(METADATA).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.platform, "equinixMetal");
        assert_eq!(m.hostname, "talos-em-1");
        assert_eq!(m.instance_id, "5d8e2f4a-1b3c-4e6f-8a9b-0c1d2e3f4a5b");
        assert_eq!(
            m.provider_id,
            "equinixmetal://5d8e2f4a-1b3c-4e6f-8a9b-0c1d2e3f4a5b"
        );
        assert_eq!((m.region.as_str(), m.zone.as_str()), ("am", "am6"));
        assert_eq!(m.instance_type, "m3.small.x86");
        let n = &instance.network;
        assert_eq!(
            n.bonds,
            [Bond {
                name: "bond0".into(),
                mode: "802.3ad".into(),
                members: vec![
                    ("b4:96:91:0a:0b:10".into(), "eth0".into()),
                    ("b4:96:91:0a:0b:11".into(), "eth1".into()),
                ],
            }]
        );
        // The unmanaged address is left out.
        let addresses: Vec<String> = n
            .addresses
            .iter()
            .map(|a| format!("{}/{} on {}", a.address, a.prefix, a.link))
            .collect();
        assert_eq!(
            addresses,
            [
                "198.51.100.11/31 on bond0",
                "2001:db8:e0::1/127 on bond0",
                "10.70.12.5/31 on bond0"
            ]
        );
        let routes: Vec<String> = n
            .routes
            .iter()
            .map(|r| match r.destination {
                Some((ip, prefix)) => format!("{ip}/{prefix} via {}", r.gateway),
                None => format!("default via {}", r.gateway),
            })
            .collect();
        assert_eq!(
            routes,
            [
                "default via 198.51.100.10",
                "default via 2001:db8:e0::",
                "10.0.0.0/8 via 10.70.12.4",
                "169.254.255.1/32 via 10.70.12.4",
                "169.254.255.2/32 via 10.70.12.4",
            ]
        );
        let external: Vec<String> = n.external_ips.iter().map(ToString::to_string).collect();
        assert_eq!(external, ["198.51.100.11", "2001:db8:e0::1"]);
    }

    #[test]
    fn the_bond_becomes_machine_network_with_members_found_by_mac() {
        let network = parse(METADATA).unwrap().network;
        let links = BTreeMap::from([("b4:96:91:0a:0b:10".to_string(), "enp1s0f0".to_string())]);
        let (machine, missing) = network.machine_network(&links);
        assert!(missing.is_empty(), "{missing:?}");
        let bond = machine
            .interfaces
            .iter()
            .find(|d| d.interface.as_deref() == Some("bond0"))
            .unwrap();
        let settings = bond.bond.as_ref().unwrap();
        // One member found by its address, the other by the document's name.
        assert_eq!(settings.interfaces, ["enp1s0f0", "eth1"]);
        assert_eq!(settings.mode, "802.3ad");
        assert_eq!(settings.miimon, Some(100));
        assert_eq!(bond.addresses.len(), 3);
        assert_eq!(bond.routes.len(), 5);
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        let cases: [(&[u8], &str); 6] = [
            (
                br#"{"id":"i","network":{"bonding":{"mode":9}}}"#,
                "9 is not a bonding mode",
            ),
            (
                br#"{"id":"i","network":{"bonding":{"mode":"4"}}}"#,
                "metadata: invalid type",
            ),
            (
                br#"{"id":"i","network":{"addresses":[{"enabled":true,"management":true,"address":"x"}]}}"#,
                "network.addresses[].address",
            ),
            (
                br#"{"id":"i","network":{"interfaces":[{"name":"a/b","mac":"m","bond":"bond0"}]}}"#,
                "not a link name",
            ),
            (br#"{"id":"i","private_subnets":["10.0.0.0/33"]}"#, "prefix longer"),
            (br#"{"hostname":"h"}"#, "no id"),
        ];
        for (document, expected) in cases {
            let error = parse(document).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
        let many: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"name":"e{i}","mac":"m{i}","bond":"bond0"}}"#))
            .collect();
        let document = format!(
            r#"{{"id":"i","network":{{"interfaces":[{}]}}}}"#,
            many.join(",")
        );
        let error = parse(document.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("more than 64 entries"), "{error}");
    }

    #[test]
    fn fetch_reads_the_metadata_and_user_data() {
        let answers = table(&[
            ("GET /metadata", METADATA),
            ("GET /userdata", b"version: v1alpha1\n"),
        ]);
        let (base, _) = serve_at("127.80.0.4:0", answers, Vec::new(), &[]);
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.zone, "am6");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        // No metadata is an error; oversized user data too.
        let huge = vec![b'#'; (MAX_USER_DATA + 1) as usize];
        let answers = table(&[("GET /userdata", &huge)]);
        let (base, _) = serve_at("127.80.0.4:0", answers, Vec::new(), &[]);
        let error = fetch(&base).unwrap_err().to_string();
        assert!(error.contains("/metadata: not found (404)"), "{error}");
        let answers = table(&[("GET /metadata", METADATA), ("GET /userdata", &huge)]);
        let (base, _) = serve_at("127.80.0.4:0", answers, Vec::new(), &[]);
        let error = fetch(&base).unwrap_err().to_string();
        assert!(error.contains("larger than 4194304 bytes"), "{error}");
    }
}
