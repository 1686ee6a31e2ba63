//! The network a provider describes (addresses, routes, resolvers, external IPs), and
//! cloud-init's `network-config` in its two versions, which nocloud, hcloud and vmware use:
//! version 1 (a list of `physical`, `nameserver` and `route` entries, subnets with
//! `static`/`static6`/`dhcp`) and version 2 (netplan: `ethernets` with `addresses`,
//! `gateway4`/`gateway6`, `routes` and `nameservers`), either at the top or under `network:`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use super::{address, problem, yaml};
use crate::error::MachinedError;

/// Most entries of one kind accepted from a provider.
const MAX_ENTRIES: usize = 64;

/// A static address on a link (a name such as `eth0`, or a MAC address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub link: String,
    pub address: IpAddr,
    pub prefix: u8,
}

/// A route through `gateway`; no destination is the default route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub link: String,
    pub destination: Option<(IpAddr, u8)>,
    pub gateway: IpAddr,
}

/// A bond the provider asks for: its members by MAC address, each with the name to use when
/// no link has that address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bond {
    pub name: String,
    /// The kernel's mode name (`802.3ad`, `active-backup`, …).
    pub mode: String,
    /// (MAC address, fallback link name) of each member.
    pub members: Vec<(String, String)>,
}

/// What the provider says about the instance's network.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub resolvers: Vec<IpAddr>,
    /// Public addresses the provider maps to the instance (not on any link).
    pub external_ips: Vec<IpAddr>,
    /// Links the provider leaves to DHCP.
    pub dhcp: Vec<String>,
    /// Bonds to create (the addresses and routes name them as links).
    pub bonds: Vec<Bond>,
}

impl NetworkConfig {
    /// Refuses more than [`MAX_ENTRIES`] of anything.
    pub fn bounded(self, platform: &'static str) -> Result<Self, MachinedError> {
        self.check(platform)?;
        Ok(self)
    }

    /// [`NetworkConfig::bounded`] in place: an error when there is more than [`MAX_ENTRIES`]
    /// of anything or a prefix too long for its address.
    pub fn check(&self, platform: &'static str) -> Result<(), MachinedError> {
        let counts = [
            self.addresses.len(),
            self.routes.len(),
            self.resolvers.len(),
            self.external_ips.len(),
            self.dhcp.len(),
            self.bonds.len(),
            self.bonds.iter().map(|b| b.members.len()).sum(),
        ];
        if counts.iter().any(|n| *n > MAX_ENTRIES) {
            return Err(problem(
                platform,
                format!("the network config has more than {MAX_ENTRIES} entries of a kind"),
            ));
        }
        let prefixes = self
            .addresses
            .iter()
            .map(|a| (a.address, a.prefix))
            .chain(self.routes.iter().filter_map(|r| r.destination));
        for (ip, prefix) in prefixes {
            if prefix > if ip.is_ipv4() { 32 } else { 128 } {
                return Err(problem(
                    platform,
                    format!("the network config gives {ip} a prefix of {prefix}"),
                ));
            }
        }
        Ok(())
    }
}

impl NetworkConfig {
    /// Nothing to apply (external IPs are never on a link).
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
            && self.routes.is_empty()
            && self.resolvers.is_empty()
            && self.dhcp.is_empty()
            && self.bonds.is_empty()
    }

    /// The `machine.network` that applies this network through networkd. A link given by MAC
    /// address is looked up in `links` (MAC in lower case → link name); the links not found
    /// are returned beside, and their settings left out.
    pub fn machine_network(
        &self,
        links: &BTreeMap<String, String>,
    ) -> (machineconfig::v1alpha1::NetworkConfig, Vec<String>) {
        use machineconfig::v1alpha1::{
            Bond as MachineBond, Device, NetworkConfig as MachineNetwork, Route as MachineRoute,
        };
        let mut devices: BTreeMap<String, Device> = BTreeMap::new();
        let mut missing = Vec::new();
        let mut resolve = |link: &str| -> Option<String> {
            let looks_like_mac =
                link.len() == 17 && link.bytes().filter(|b| *b == b':').count() == 5;
            let name = if looks_like_mac {
                links.get(&link.to_ascii_lowercase()).cloned()
            } else if link.is_empty() {
                None
            } else {
                Some(link.to_string())
            };
            if name.is_none() && !missing.iter().any(|m| m == link) {
                missing.push(link.to_string());
            }
            name
        };
        fn device(devices: &mut BTreeMap<String, Device>, name: String) -> &mut Device {
            devices.entry(name.clone()).or_insert_with(|| Device {
                interface: Some(name),
                ..Device::default()
            })
        }
        for bond in &self.bonds {
            let interfaces = bond
                .members
                .iter()
                .map(|(mac, name)| {
                    links
                        .get(&mac.to_ascii_lowercase())
                        .cloned()
                        .unwrap_or_else(|| name.clone())
                })
                .collect();
            // As upstream: MII monitoring every 100 ms, 200 ms delays, layer 3+4 hashing.
            device(&mut devices, bond.name.clone()).bond = Some(MachineBond {
                interfaces,
                mode: bond.mode.clone(),
                xmit_hash_policy: Some("layer3+4".into()),
                miimon: Some(100),
                updelay: Some(200),
                downdelay: Some(200),
                ..MachineBond::default()
            });
        }
        for address in &self.addresses {
            if let Some(name) = resolve(&address.link) {
                device(&mut devices, name)
                    .addresses
                    .push(format!("{}/{}", address.address, address.prefix));
            }
        }
        for route in &self.routes {
            if let Some(name) = resolve(&route.link) {
                let network = match route.destination {
                    Some((ip, prefix)) => format!("{ip}/{prefix}"),
                    None if route.gateway.is_ipv4() => "0.0.0.0/0".to_string(),
                    None => "::/0".to_string(),
                };
                device(&mut devices, name).routes.push(MachineRoute {
                    network,
                    gateway: Some(route.gateway.to_string()),
                    ..MachineRoute::default()
                });
            }
        }
        for link in &self.dhcp {
            if let Some(name) = resolve(link) {
                device(&mut devices, name).dhcp = Some(true);
            }
        }
        let network = MachineNetwork {
            interfaces: devices.into_values().collect(),
            nameservers: self.resolvers.iter().map(ToString::to_string).collect(),
            ..MachineNetwork::default()
        };
        (network, missing)
    }
}

impl fmt::Display for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |items: Vec<String>| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(", ")
            }
        };
        let addresses = self
            .addresses
            .iter()
            .map(|a| format!("{}/{} on {}", a.address, a.prefix, a.link))
            .collect();
        let routes = self
            .routes
            .iter()
            .map(|r| match r.destination {
                Some((dst, prefix)) => format!("{dst}/{prefix} via {} on {}", r.gateway, r.link),
                None => format!("default via {} on {}", r.gateway, r.link),
            })
            .collect();
        let ips = |list: &[IpAddr]| list.iter().map(ToString::to_string).collect();
        write!(
            f,
            "addresses {}; routes {}; resolvers {}; external IPs {}; DHCP on {}",
            join(addresses),
            join(routes),
            join(ips(&self.resolvers)),
            join(ips(&self.external_ips)),
            join(self.dhcp.clone()),
        )?;
        for bond in &self.bonds {
            let members: Vec<&str> = bond.members.iter().map(|(mac, _)| mac.as_str()).collect();
            write!(
                f,
                "; bond {} ({}) of {}",
                bond.name,
                bond.mode,
                members.join(", ")
            )?;
        }
        Ok(())
    }
}

/// `a.b.c.d/nn` (or an address alone, a host route's /32 or /128) → address and prefix.
pub fn cidr(platform: &'static str, what: &str, raw: &str) -> Result<(IpAddr, u8), MachinedError> {
    let (ip, prefix) = match raw.trim().split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (raw.trim(), None),
    };
    let ip = address(platform, what, ip)?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(prefix) => match prefix.parse::<u8>() {
            Ok(prefix) if prefix <= max => prefix,
            Ok(_) => {
                return Err(problem(
                    platform,
                    format!("{what}: {raw:?} has a prefix longer than {max}"),
                ));
            }
            // `/255.255.255.0`
            Err(_) => netmask(platform, what, prefix)?,
        },
    };
    Ok((ip, prefix))
}

/// A netmask (`255.255.255.0`, `ffff:ffff::`) or a prefix length (`24`) → prefix length.
pub fn netmask(platform: &'static str, what: &str, raw: &str) -> Result<u8, MachinedError> {
    if let Ok(prefix) = raw.trim().parse::<u8>()
        && prefix <= 128
    {
        return Ok(prefix);
    }
    let bits: u128 = match address(platform, what, raw)? {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    };
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 {
        return Err(problem(
            platform,
            format!("{what}: {raw:?} is not a contiguous netmask"),
        ));
    }
    Ok(prefix as u8)
}

#[derive(Deserialize)]
struct Version {
    #[serde(default)]
    version: u8,
    network: Option<serde_norway::Value>,
}

/// A cloud-init `network-config` document (version 1 or 2).
pub fn parse(platform: &'static str, raw: &[u8]) -> Result<NetworkConfig, MachinedError> {
    let top: Version = yaml(platform, "network-config", raw)?;
    let document = match top.network {
        Some(inner) => serde_norway::to_string(&inner)
            .map_err(|e| problem(platform, format!("network-config: {e}")))?
            .into_bytes(),
        None => raw.to_vec(),
    };
    let version: Version = yaml(platform, "network-config", &document)?;
    match version.version {
        1 => v1(platform, &yaml(platform, "network-config v1", &document)?),
        2 => v2(platform, &yaml(platform, "network-config v2", &document)?),
        other => Err(problem(
            platform,
            format!("network-config: version {other} is not 1 or 2"),
        )),
    }?
    .bounded(platform)
}

/// Version 1.
#[derive(Deserialize)]
struct V1 {
    #[serde(default)]
    config: Vec<V1Entry>,
}

#[derive(Deserialize)]
struct V1Entry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    mac_address: String,
    #[serde(default)]
    subnets: Vec<V1Subnet>,
    /// `nameserver` entries: a list; `route` entries: none.
    #[serde(default)]
    address: Option<serde_norway::Value>,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    gateway: String,
}

#[derive(Deserialize)]
struct V1Subnet {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    netmask: String,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    dns_nameservers: Vec<String>,
    #[serde(default)]
    routes: Vec<V1Route>,
}

#[derive(Deserialize)]
struct V1Route {
    #[serde(default)]
    network: String,
    #[serde(default)]
    netmask: String,
    #[serde(default)]
    gateway: String,
}

/// Version 1 → the network config.
fn v1(platform: &'static str, document: &V1) -> Result<NetworkConfig, MachinedError> {
    let mut network = NetworkConfig::default();
    for entry in &document.config {
        let link = if entry.name.is_empty() {
            entry.mac_address.clone()
        } else {
            entry.name.clone()
        };
        match entry.kind.as_str() {
            "physical" | "bond" | "vlan" => {
                for subnet in &entry.subnets {
                    v1_subnet(platform, &mut network, &link, subnet)?;
                }
            }
            "nameserver" => {
                let list = match &entry.address {
                    Some(serde_norway::Value::Sequence(items)) => items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect(),
                    Some(serde_norway::Value::String(one)) => vec![one.clone()],
                    _ => Vec::new(),
                };
                for server in list {
                    network
                        .resolvers
                        .push(address(platform, "nameserver", &server)?);
                }
            }
            "route" => network.routes.push(Route {
                link: String::new(),
                destination: Some(cidr(platform, "route", &entry.destination)?),
                gateway: address(platform, "route gateway", &entry.gateway)?,
            }),
            _ => {}
        }
    }
    Ok(network)
}

fn v1_subnet(
    platform: &'static str,
    network: &mut NetworkConfig,
    link: &str,
    subnet: &V1Subnet,
) -> Result<(), MachinedError> {
    match subnet.kind.as_str() {
        "static" | "static6" => {
            let (ip, mut prefix) = cidr(platform, "subnet address", &subnet.address)?;
            if !subnet.netmask.is_empty() {
                prefix = netmask(platform, "subnet netmask", &subnet.netmask)?;
            }
            network.addresses.push(Address {
                link: link.to_string(),
                address: ip,
                prefix,
            });
            if !subnet.gateway.is_empty() {
                network.routes.push(Route {
                    link: link.to_string(),
                    destination: None,
                    gateway: address(platform, "subnet gateway", &subnet.gateway)?,
                });
            }
        }
        "dhcp" | "dhcp4" | "dhcp6" | "ipv6_dhcpv6-stateless" | "ipv6_slaac" => {
            if !network.dhcp.iter().any(|l| l == link) {
                network.dhcp.push(link.to_string());
            }
        }
        other => {
            return Err(problem(
                platform,
                format!("network-config: subnet type {other:?} of {link}"),
            ));
        }
    }
    for server in &subnet.dns_nameservers {
        network
            .resolvers
            .push(address(platform, "dns_nameservers", server)?);
    }
    for route in &subnet.routes {
        let (destination, mut prefix) = cidr(platform, "route network", &route.network)?;
        if !route.netmask.is_empty() {
            prefix = netmask(platform, "route netmask", &route.netmask)?;
        }
        network.routes.push(Route {
            link: link.to_string(),
            destination: Some((destination, prefix)),
            gateway: address(platform, "route gateway", &route.gateway)?,
        });
    }
    Ok(())
}

/// Version 2 (netplan).
#[derive(Deserialize)]
struct V2 {
    #[serde(default)]
    ethernets: BTreeMap<String, V2Ethernet>,
}

#[derive(Deserialize)]
struct V2Ethernet {
    #[serde(default, rename = "match")]
    matching: V2Match,
    #[serde(default, rename = "set-name")]
    set_name: String,
    #[serde(default)]
    dhcp4: bool,
    #[serde(default)]
    dhcp6: bool,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    gateway4: String,
    #[serde(default)]
    gateway6: String,
    #[serde(default)]
    nameservers: V2Nameservers,
    #[serde(default)]
    routes: Vec<V2Route>,
}

#[derive(Deserialize, Default)]
struct V2Match {
    #[serde(default)]
    macaddress: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
struct V2Nameservers {
    #[serde(default)]
    addresses: Vec<String>,
}

#[derive(Deserialize)]
struct V2Route {
    to: String,
    via: String,
}

/// Version 2 → the network config; a link is named by `set-name`, its `match`, or its key.
fn v2(platform: &'static str, document: &V2) -> Result<NetworkConfig, MachinedError> {
    let mut network = NetworkConfig::default();
    for (key, ethernet) in &document.ethernets {
        let link = [
            &ethernet.set_name,
            &ethernet.matching.name,
            &ethernet.matching.macaddress,
        ]
        .into_iter()
        .find(|name| !name.is_empty())
        .unwrap_or(key)
        .clone();
        if ethernet.dhcp4 || ethernet.dhcp6 {
            network.dhcp.push(link.clone());
        }
        for raw in &ethernet.addresses {
            let (ip, prefix) = cidr(platform, "addresses", raw)?;
            network.addresses.push(Address {
                link: link.clone(),
                address: ip,
                prefix,
            });
        }
        for gateway in [&ethernet.gateway4, &ethernet.gateway6] {
            if !gateway.is_empty() {
                network.routes.push(Route {
                    link: link.clone(),
                    destination: None,
                    gateway: address(platform, "gateway", gateway)?,
                });
            }
        }
        for route in &ethernet.routes {
            let destination = match route.to.as_str() {
                "default" | "0.0.0.0/0" | "::/0" => None,
                to => Some(cidr(platform, "route to", to)?),
            };
            network.routes.push(Route {
                link: link.clone(),
                destination,
                gateway: address(platform, "route via", &route.via)?,
            });
        }
        for server in &ethernet.nameservers.addresses {
            network
                .resolvers
                .push(address(platform, "nameservers", server)?);
        }
    }
    Ok(network)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_gives_static_addresses_gateways_routes_and_resolvers() {
        let network = parse("nocloud", include_bytes!("testdata/network-config-v1.yaml")).unwrap();
        assert_eq!(
            network.addresses,
            vec![Address {
                link: "eth0".into(),
                address: "192.0.2.10".parse().unwrap(),
                prefix: 24,
            }]
        );
        assert_eq!(
            network.routes,
            vec![
                Route {
                    link: "eth0".into(),
                    destination: None,
                    gateway: "192.0.2.1".parse().unwrap(),
                },
                Route {
                    link: "eth0".into(),
                    destination: Some(("198.51.100.0".parse().unwrap(), 24)),
                    gateway: "192.0.2.254".parse().unwrap(),
                },
            ]
        );
        assert_eq!(
            network.resolvers,
            vec![
                "192.0.2.53".parse::<IpAddr>().unwrap(),
                "2001:db8::53".parse().unwrap()
            ]
        );
        assert_eq!(network.dhcp, vec!["eth1".to_string()]);
    }

    #[test]
    fn version_2_under_network_names_links_by_set_name_match_or_key() {
        let network = parse("nocloud", include_bytes!("testdata/network-config-v2.yaml")).unwrap();
        assert_eq!(network.addresses.len(), 2);
        assert_eq!(network.addresses[0].link, "ext0");
        assert_eq!(
            network.addresses[1].address,
            "2001:db8::10".parse::<IpAddr>().unwrap()
        );
        assert_eq!(network.addresses[1].prefix, 64);
        assert_eq!(network.routes.len(), 3);
        assert_eq!(
            network.routes[2].destination,
            Some(("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(network.resolvers.len(), 1);
        assert_eq!(network.dhcp, vec!["52:54:00:00:00:02".to_string()]);
        assert!(
            network
                .to_string()
                .contains("default via 192.0.2.1 on ext0")
        );
    }

    #[test]
    fn bad_network_configs_are_clear_errors() {
        let error = |raw: &str| parse("nocloud", raw.as_bytes()).unwrap_err().to_string();
        assert!(error("version: 3\n").contains("version 3 is not 1 or 2"));
        assert!(
            error("version: 2\nethernets:\n  eth0:\n    addresses: [300.1.1.1/24]\n")
                .contains("\"300.1.1.1\" is not an IP address")
        );
        assert!(error("version: 1\nconfig:\n- type: physical\n  name: eth0\n  subnets:\n  - type: static\n    address: 192.0.2.1\n    netmask: 255.0.255.0\n")
            .contains("not a contiguous netmask"));
        assert!(error("[not, a, mapping").contains("network-config"));
        assert!(error("version: 1\nconfig:\n- type: physical\n  name: eth0\n  subnets:\n  - type: static\n    address: 192.0.2.1\n    netmask: \"100\"\n")
            .contains("gives 192.0.2.1 a prefix of 100"));
        let many: String = (0..100)
            .map(|i| format!("      - 10.0.0.{}/32\n", i % 250))
            .collect();
        assert!(
            error(&format!(
                "version: 2\nethernets:\n  eth0:\n    addresses:\n{many}"
            ))
            .contains("more than 64")
        );
    }

    #[test]
    fn a_network_config_becomes_machine_network_with_links_found_by_mac() {
        let network = parse("nocloud", include_bytes!("testdata/network-config-v2.yaml")).unwrap();
        let links = BTreeMap::from([("52:54:00:00:00:02".to_string(), "eth1".to_string())]);
        let (machine, missing) = network.machine_network(&links);
        assert_eq!(missing, Vec::<String>::new());
        let yaml = serde_norway::to_string(&machine).unwrap();
        assert_eq!(
            yaml,
            "interfaces:\n\
             - interface: eth1\n  dhcp: true\n\
             - interface: ext0\n  addresses:\n  - 192.0.2.10/24\n  - 2001:db8::10/64\n  routes:\n\
             \x20 - network: 0.0.0.0/0\n    gateway: 192.0.2.1\n\
             \x20 - network: ::/0\n    gateway: 2001:db8::1\n\
             \x20 - network: 10.0.0.0/8\n    gateway: 192.0.2.254\n\
             nameservers:\n- 192.0.2.53\n"
        );
        let (machine, missing) = network.machine_network(&BTreeMap::new());
        assert_eq!(missing, ["52:54:00:00:00:02"]);
        assert_eq!(machine.interfaces.len(), 1);
    }

    #[test]
    fn netmasks_and_prefixes() {
        assert_eq!(netmask("t", "m", "255.255.255.0").unwrap(), 24);
        assert_eq!(netmask("t", "m", "ffff:ffff:ffff:ffff::").unwrap(), 64);
        assert_eq!(netmask("t", "m", "20").unwrap(), 20);
        assert_eq!(cidr("t", "a", "192.0.2.1/255.255.0.0").unwrap().1, 16);
        assert_eq!(cidr("t", "a", "2001:db8::1").unwrap().1, 128);
        assert!(cidr("t", "a", "192.0.2.1/33").is_err());
    }
}
