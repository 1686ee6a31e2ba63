//! The desired network state ([`Plan`]) built from `machine.network`, the network documents
//! (`LinkConfig`, `BondConfig`, ... see [`documents`]) and the kernel `ip=` argument, and the
//! checks that refuse a configuration before anything is changed.

mod documents;
mod rules;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use machineconfig::documents::Document;
use machineconfig::v1alpha1::{Bond, Device, NetworkConfig, Route};
use machineconfig::{RuntimeMode, ValidationIssue};
use serde::{Deserialize, Serialize};

use crate::kernel_ip::{self, KernelIp};

pub use rules::{RuleAction, RulePlan};

/// Metric of routes whose config gives none (upstream's default).
pub const DEFAULT_ROUTE_METRIC: u32 = 1024;
/// The kernel's limit on link names (IFNAMSIZ - 1).
const MAX_LINK_NAME: usize = 15;
/// Where the YAML paths of `machine.network` start.
const ROOT: &str = "machine.network";

/// A link networkd creates, with the settings that cannot change without recreating it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LinkKind {
    /// An 802.1Q VLAN on `parent`.
    Vlan { parent: String, id: u16 },
    /// A bond; the member lists are cleared (members are [`LinkPlan::master`] of other links).
    Bond(Box<Bond>),
    /// A bridge.
    Bridge { stp: bool, vlan_filtering: bool },
    /// A dummy link.
    Dummy,
}

impl LinkKind {
    /// The kernel's name of the kind (`vlan`, `bond`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            LinkKind::Vlan { .. } => "vlan",
            LinkKind::Bond(_) => "bond",
            LinkKind::Bridge { .. } => "bridge",
            LinkKind::Dummy => "dummy",
        }
    }
}

/// What networkd wants of one link.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkPlan {
    /// Create the link (absent: the link exists on its own, e.g. a NIC).
    pub create: Option<LinkKind>,
    /// MTU to set.
    pub mtu: Option<u32>,
    /// Bond or bridge to enslave the link to.
    pub master: Option<String>,
    /// Keep the link down (`LinkConfig` `up: false`); links are brought up otherwise.
    pub down: bool,
}

/// A static or DHCP route.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoutePlan {
    /// Output link.
    pub link: String,
    /// Destination (`0.0.0.0/0` or `::/0` for the default route).
    pub destination: IpNet,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Preferred source.
    pub source: Option<IpAddr>,
    /// Metric.
    pub metric: u32,
    /// Route MTU.
    pub mtu: Option<u32>,
    /// A blackhole route (`BlackholeRouteConfig`): no link, packets to it are dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blackhole: bool,
}

impl std::fmt::Display for RoutePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.blackhole {
            return write!(f, "blackhole {} metric {}", self.destination, self.metric);
        }
        write!(f, "{} dev {}", self.destination, self.link)?;
        if let Some(gateway) = self.gateway {
            write!(f, " via {gateway}")?;
        }
        write!(f, " metric {}", self.metric)
    }
}

/// An address on a link.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AddressPlan {
    pub link: String,
    pub address: IpNet,
}

impl std::fmt::Display for AddressPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.link, self.address)
    }
}

/// DHCPv4 on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpPlan {
    /// Metric of the default route learned from the lease.
    pub route_metric: u32,
}

/// Hostname split into host and domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hostname {
    pub host: String,
    pub domain: String,
}

impl Hostname {
    fn parse(fqdn: &str) -> Self {
        match fqdn.split_once('.') {
            Some((host, domain)) => Hostname {
                host: host.to_string(),
                domain: domain.to_string(),
            },
            None => Hostname {
                host: fqdn.to_string(),
                domain: String::new(),
            },
        }
    }

    /// `host.domain`, or `host` without a domain.
    pub fn fqdn(&self) -> String {
        if self.domain.is_empty() {
            self.host.clone()
        } else {
            format!("{}.{}", self.host, self.domain)
        }
    }
}

/// The whole desired state. Links named `""` stand for "the first physical link" (a kernel
/// `ip=` without a device) until the engine resolves them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub hostname: Option<Hostname>,
    pub links: BTreeMap<String, LinkPlan>,
    pub addresses: Vec<AddressPlan>,
    pub routes: Vec<RoutePlan>,
    /// Policy routing rules (`RoutingRuleConfig`).
    pub rules: Vec<RulePlan>,
    pub nameservers: Vec<IpAddr>,
    pub search_domains: Vec<String>,
    pub hosts: Vec<(IpAddr, Vec<String>)>,
    pub dhcp: BTreeMap<String, DhcpPlan>,
    /// Settings networkd does not implement and left alone, with their YAML paths.
    pub ignored: Vec<String>,
}

/// What a plan is built from: the inputs of an Apply, kept in the ownership record so that a
/// restarted networkd resumes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inputs {
    /// `machine.network` as YAML (empty: no settings).
    pub network_yaml: String,
    /// The kernel `ip=` argument (empty: none).
    pub kernel_ip: String,
    /// The network documents as a YAML stream (empty: none).
    #[serde(default)]
    pub documents_yaml: String,
}

impl Plan {
    /// Decodes the inputs (any may be empty) and builds the plan, or returns every problem
    /// found.
    pub fn from_inputs(inputs: &Inputs) -> Result<Plan, Vec<ValidationIssue>> {
        let Inputs {
            network_yaml,
            kernel_ip,
            documents_yaml,
        } = inputs;
        let network = if network_yaml.trim().is_empty() {
            NetworkConfig::default()
        } else {
            serde_norway::from_str::<Option<NetworkConfig>>(network_yaml)
                .map_err(|err| {
                    vec![ValidationIssue {
                        path: ROOT.to_string(),
                        message: err.to_string(),
                    }]
                })?
                .unwrap_or_default()
        };
        let kernel = if kernel_ip.trim().is_empty() {
            None
        } else {
            Some(kernel_ip::parse(kernel_ip.trim()).map_err(|issue| vec![issue])?)
        };
        let documents = if documents_yaml.trim().is_empty() {
            Vec::new()
        } else {
            machineconfig::Config::from_yaml(documents_yaml)
                .map_err(|err| vec![issue(documents::ROOT, err.to_string())])?
                .documents
        };
        Plan::build(&network, &documents, kernel.as_ref())
    }

    /// Builds the plan from decoded inputs, or returns every problem found. A setting a
    /// document gives wins over the same setting of `network` (as upstream layers them);
    /// addresses and routes of both are united.
    pub fn build(
        network: &NetworkConfig,
        documents: &[Document],
        kernel: Option<&KernelIp>,
    ) -> Result<Plan, Vec<ValidationIssue>> {
        let mut errors = match network.validate(None) {
            Ok(_) => Vec::new(),
            Err(machineconfig::ConfigError::Invalid { errors }) => errors,
            Err(other) => vec![issue(ROOT, other.to_string())],
        };
        let only_documents = machineconfig::Config {
            v1alpha1: None,
            documents: documents.to_vec(),
        };
        // The mode matters to the v1alpha1 checks only, which do not run here.
        match only_documents.validate(RuntimeMode::Metal, false) {
            Ok(_) => {}
            Err(machineconfig::ConfigError::Invalid { errors: found }) => errors.extend(found),
            Err(other) => errors.push(issue(documents::ROOT, other.to_string())),
        }
        let mut plan = Plan::default();
        if let Some(kernel) = kernel {
            plan.add_kernel_ip(kernel);
        }
        let mut builder = Builder {
            plan: &mut plan,
            errors: &mut errors,
            named_at: BTreeMap::new(),
        };
        for (i, device) in network.interfaces.iter().enumerate() {
            builder.device(&format!("{ROOT}.interfaces[{i}]"), device);
        }
        let settings = builder.documents(documents);
        builder.check_masters(network);
        if let Some(hostname) = network.hostname.as_ref().or(settings.hostname.as_ref()) {
            plan.hostname = Some(Hostname::parse(hostname));
        }
        let nameservers = if settings.nameservers.is_empty() {
            &network.nameservers
        } else {
            &settings.nameservers
        };
        if !nameservers.is_empty() {
            plan.nameservers = nameservers.iter().filter_map(|s| s.parse().ok()).collect();
        }
        if settings.search_domains.is_empty() {
            plan.search_domains.clone_from(&network.search_domains);
        } else {
            plan.search_domains = settings.search_domains;
        }
        if network.disable_search_domain != Some(true)
            && !settings.disable_search_domain
            && let Some(hostname) = &plan.hostname
            && !hostname.domain.is_empty()
            && !plan.search_domains.contains(&hostname.domain)
        {
            plan.search_domains.insert(0, hostname.domain.clone());
        }
        for entry in &network.extra_host_entries {
            if let Ok(ip) = entry.ip.parse() {
                plan.hosts.push((ip, entry.aliases.clone()));
            }
        }
        plan.hosts.extend(settings.hosts);
        if network
            .kubespan
            .as_ref()
            .is_some_and(|k| k.enabled == Some(true))
        {
            plan.ignored.push(format!("{ROOT}.kubespan"));
        }
        plan.addresses.sort();
        plan.addresses.dedup();
        plan.routes.sort();
        plan.routes.dedup();
        plan.rules.sort();
        if errors.is_empty() {
            Ok(plan)
        } else {
            errors.dedup();
            Err(errors)
        }
    }

    fn add_kernel_ip(&mut self, kernel: &KernelIp) {
        let link = kernel.device.clone().unwrap_or_default();
        self.links.entry(link.clone()).or_default();
        if let Some(address) = kernel.address {
            self.addresses.push(AddressPlan {
                link: link.clone(),
                address,
            });
        }
        if let Some(gateway) = kernel.gateway {
            self.routes.push(RoutePlan {
                link: link.clone(),
                destination: default_destination(gateway),
                gateway: Some(gateway),
                source: None,
                metric: DEFAULT_ROUTE_METRIC,
                mtu: None,
                blackhole: false,
            });
        }
        if kernel.dhcp {
            self.dhcp.insert(
                link,
                DhcpPlan {
                    route_metric: DEFAULT_ROUTE_METRIC,
                },
            );
        }
        if let Some(hostname) = &kernel.hostname {
            self.hostname = Some(Hostname::parse(hostname));
        }
        self.nameservers.extend(kernel.nameservers.iter().copied());
    }
}

fn issue(path: impl Into<String>, message: impl Into<String>) -> ValidationIssue {
    ValidationIssue {
        path: path.into(),
        message: message.into(),
    }
}

/// The default route's destination in the family of `gateway`.
fn default_destination(gateway: IpAddr) -> IpNet {
    match gateway {
        IpAddr::V4(_) => IpNet::new_assert(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => IpNet::new_assert(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

struct Builder<'a> {
    plan: &'a mut Plan,
    errors: &'a mut Vec<ValidationIssue>,
    /// Link name to the YAML path that configures it.
    named_at: BTreeMap<String, String>,
}

impl Builder<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(issue(path, message));
    }

    /// Whether `name` can be a kernel link name; reports it at `path` when not.
    fn valid_name(&mut self, name: &str, path: &str) -> bool {
        if name.len() > MAX_LINK_NAME {
            self.error(
                path,
                format!("link name {name:?} is longer than {MAX_LINK_NAME} characters"),
            );
            return false;
        }
        if name.is_empty() || name.contains(['/', ' ', ':']) || name == "." || name == ".." {
            self.error(path, format!("{name:?} is not a valid link name"));
            return false;
        }
        true
    }

    /// Claims `name` for the setting of `machine.network` at `path`; a second claim is an
    /// error.
    fn claim(&mut self, name: &str, path: &str) -> bool {
        if !self.valid_name(name, path) {
            return false;
        }
        if let Some(first) = self.named_at.get(name) {
            let first = first.clone();
            self.error(
                path,
                format!("link {name:?} is configured twice (first at {first})"),
            );
            return false;
        }
        self.named_at.insert(name.to_string(), path.to_string());
        true
    }

    fn device(&mut self, path: &str, device: &Device) {
        if device.device_selector.is_some() {
            self.plan.ignored.push(format!("{path}.deviceSelector"));
            return;
        }
        let Some(name) = device.interface.as_deref().filter(|n| !n.is_empty()) else {
            return; // machineconfig reported it
        };
        if !self.claim(name, &format!("{path}.interface")) {
            return;
        }
        if device.ignore == Some(true) {
            return;
        }
        // A `vip` is machined's (its VIP operator hands the held address to networkd).
        if device.wireguard.is_some() {
            self.plan.ignored.push(format!("{path}.wireguard"));
        }
        let create = if let Some(bond) = &device.bond {
            if !bond.device_selectors.is_empty() {
                self.plan
                    .ignored
                    .push(format!("{path}.bond.deviceSelectors"));
            }
            for (j, member) in bond.interfaces.iter().enumerate() {
                self.member(&format!("{path}.bond.interfaces[{j}]"), name, member);
            }
            let mut settings = bond.clone();
            settings.interfaces.clear();
            settings.device_selectors.clear();
            Some(LinkKind::Bond(Box::new(settings)))
        } else if let Some(bridge) = &device.bridge {
            for (j, member) in bridge.interfaces.iter().enumerate() {
                self.member(&format!("{path}.bridge.interfaces[{j}]"), name, member);
            }
            Some(LinkKind::Bridge {
                stp: bridge.stp.as_ref().and_then(|s| s.enabled) == Some(true),
                vlan_filtering: bridge.vlan.as_ref().and_then(|v| v.vlan_filtering) == Some(true),
            })
        } else if device.dummy == Some(true) {
            Some(LinkKind::Dummy)
        } else {
            None
        };
        let link = self.plan.links.entry(name.to_string()).or_default();
        link.create = create;
        if let Some(port) = &device.bridge_port
            && !port.master.is_empty()
        {
            link.master = Some(port.master.clone());
        }
        self.mtu(&format!("{path}.mtu"), name, device.mtu);
        self.addresses(path, name, &device.addresses, device.cidr.as_deref());
        self.routes(path, name, &device.routes);
        self.dhcp(name, device.dhcp, device.dhcp_options.as_ref());
        for (j, vlan) in device.vlans.iter().enumerate() {
            let vlan_path = format!("{path}.vlans[{j}]");
            if !(1..=4095).contains(&vlan.vlan_id) {
                continue; // machineconfig reported it
            }
            let vlan_name = format!("{name}.{}", vlan.vlan_id);
            if !self.claim(&vlan_name, &format!("{vlan_path}.vlanId")) {
                continue;
            }
            self.plan.links.insert(
                vlan_name.clone(),
                LinkPlan {
                    create: Some(LinkKind::Vlan {
                        parent: name.to_string(),
                        id: vlan.vlan_id,
                    }),
                    ..LinkPlan::default()
                },
            );
            self.mtu(&format!("{vlan_path}.mtu"), &vlan_name, vlan.mtu);
            self.addresses(
                &vlan_path,
                &vlan_name,
                &vlan.addresses,
                vlan.cidr.as_deref(),
            );
            self.routes(&vlan_path, &vlan_name, &vlan.routes);
            self.dhcp(&vlan_name, vlan.dhcp, vlan.dhcp_options.as_ref());
        }
    }

    /// `member` is enslaved to `master` by the setting at `path`.
    fn member(&mut self, path: &str, master: &str, member: &str) {
        if member == master {
            self.error(path, format!("link {master:?} cannot be its own member"));
            return;
        }
        if member.is_empty() || member.len() > MAX_LINK_NAME {
            self.error(path, format!("{member:?} is not a valid link name"));
            return;
        }
        self.plan
            .links
            .entry(member.to_string())
            .or_default()
            .master = Some(master.to_string());
    }

    fn mtu(&mut self, path: &str, link: &str, mtu: Option<u32>) {
        let Some(mtu) = mtu else { return };
        if !(68..=65535).contains(&mtu) {
            self.error(path, format!("MTU {mtu} is out of range (68 to 65535)"));
            return;
        }
        if let Some(plan) = self.plan.links.get_mut(link) {
            plan.mtu = Some(mtu);
        }
    }

    fn addresses(&mut self, path: &str, link: &str, addresses: &[String], cidr: Option<&str>) {
        let listed = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("{path}.addresses[{i}]"), a.as_str()));
        let legacy = cidr.map(|c| (format!("{path}.cidr"), c));
        for (field, text) in listed.chain(legacy) {
            self.address(field, link, text);
        }
    }

    /// Address `text` (CIDR or bare IP) of `link`, set at `field`.
    fn address(&mut self, field: String, link: &str, text: &str) {
        let address = match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => return, // machineconfig reported it
            },
        };
        let ip = address.addr();
        if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
            self.error(field, format!("{address} cannot be a link's address"));
            return;
        }
        self.plan.addresses.push(AddressPlan {
            link: link.to_string(),
            address,
        });
    }

    fn routes(&mut self, path: &str, link: &str, routes: &[Route]) {
        for (i, route) in routes.iter().enumerate() {
            self.route(&format!("{path}.routes[{i}]"), link, route);
        }
    }

    /// Route `route` out of `link`, set at `route_path`.
    fn route(&mut self, route_path: &str, link: &str, route: &Route) {
        let gateway = match route.gateway.as_deref().filter(|g| !g.is_empty()) {
            None => None,
            Some(text) => match text.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => return, // machineconfig reported it
            },
        };
        let destination = if route.network.is_empty() {
            match gateway {
                Some(gateway) => default_destination(gateway),
                None => {
                    self.error(
                        format!("{route_path}.gateway"),
                        "a default route (no network) needs a gateway",
                    );
                    return;
                }
            }
        } else {
            match route.network.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => return,
            }
        };
        if let Some(gateway) = gateway {
            if gateway.is_ipv4() != destination.addr().is_ipv4() {
                self.error(
                    format!("{route_path}.gateway"),
                    format!("gateway {gateway} is not of the family of {destination}"),
                );
                return;
            }
            if gateway.is_unspecified() || gateway.is_multicast() || is_broadcast(gateway) {
                self.error(
                    format!("{route_path}.gateway"),
                    format!("{gateway} cannot be a gateway"),
                );
                return;
            }
        }
        let source = route
            .source
            .as_deref()
            .and_then(|s| s.parse::<IpAddr>().ok());
        if let Some(source) = source
            && source.is_ipv4() != destination.addr().is_ipv4()
        {
            self.error(
                format!("{route_path}.source"),
                format!("source {source} is not of the family of {destination}"),
            );
            return;
        }
        if let Some(mtu) = route.mtu
            && !(68..=65535).contains(&mtu)
        {
            self.error(
                format!("{route_path}.mtu"),
                format!("MTU {mtu} is out of range (68 to 65535)"),
            );
            return;
        }
        self.plan.routes.push(RoutePlan {
            link: link.to_string(),
            destination,
            gateway,
            source,
            metric: route.metric.unwrap_or(DEFAULT_ROUTE_METRIC),
            mtu: route.mtu,
            blackhole: false,
        });
    }

    fn dhcp(
        &mut self,
        link: &str,
        dhcp: Option<bool>,
        options: Option<&machineconfig::v1alpha1::DhcpOptions>,
    ) {
        let ipv4 = options.and_then(|o| o.ipv4).unwrap_or(true);
        if dhcp == Some(true) && ipv4 {
            self.plan.dhcp.insert(
                link.to_string(),
                DhcpPlan {
                    route_metric: options
                        .and_then(|o| o.route_metric)
                        .unwrap_or(DEFAULT_ROUTE_METRIC),
                },
            );
        }
    }

    /// Every master named by a member or `bridgePort` must be a bond or bridge of the config.
    fn check_masters(&mut self, network: &NetworkConfig) {
        for (i, device) in network.interfaces.iter().enumerate() {
            let Some(port) = &device.bridge_port else {
                continue;
            };
            if port.master.is_empty() {
                continue;
            }
            let is_bridge = matches!(
                self.plan
                    .links
                    .get(&port.master)
                    .and_then(|l| l.create.as_ref()),
                Some(LinkKind::Bridge { .. })
            );
            if !is_bridge {
                self.error(
                    format!("{ROOT}.interfaces[{i}].bridgePort.master"),
                    format!("{:?} is not a bridge of this configuration", port.master),
                );
            }
        }
        let members: Vec<(String, String)> = self
            .plan
            .links
            .iter()
            .filter_map(|(name, link)| link.master.clone().map(|m| (name.clone(), m)))
            .collect();
        for (member, master) in members {
            if let Some(LinkKind::Vlan { .. }) =
                self.plan.links.get(&member).and_then(|l| l.create.as_ref())
            {
                let at = self.named_at.get(&member).cloned().unwrap_or_default();
                self.error(
                    at,
                    format!("VLAN {member:?} cannot be enslaved to {master:?}"),
                );
            }
        }
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs of `machine.network` YAML alone.
    pub(super) fn network(yaml: &str) -> Inputs {
        Inputs {
            network_yaml: yaml.to_string(),
            ..Inputs::default()
        }
    }

    fn errors(yaml: &str) -> Vec<String> {
        match Plan::from_inputs(&network(yaml)) {
            Ok(plan) => panic!("accepted: {plan:?}"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn builds_links_addresses_routes_and_vlans() {
        let plan = Plan::from_inputs(&network(
            r#"
hostname: node1.example.org
nameservers: [10.0.0.53]
interfaces:
  - interface: bond0
    bond: {mode: active-backup, interfaces: [eth1, eth2], miimon: 100}
    addresses: [10.0.0.2/24]
    routes:
      - {network: 10.9.0.0/16, gateway: 10.0.0.1, metric: 50}
      - {gateway: 10.0.0.1}
    vlans:
      - {vlanId: 100, addresses: [10.100.0.2/24], mtu: 1400}
  - interface: eth3
    dhcp: true
"#,
        ))
        .unwrap();
        assert_eq!(plan.links["eth1"].master.as_deref(), Some("bond0"));
        assert!(matches!(
            plan.links["bond0"].create,
            Some(LinkKind::Bond(_))
        ));
        assert_eq!(
            plan.links["bond0.100"].create,
            Some(LinkKind::Vlan {
                parent: "bond0".into(),
                id: 100
            })
        );
        assert_eq!(plan.links["bond0.100"].mtu, Some(1400));
        assert_eq!(plan.addresses.len(), 2);
        assert_eq!(plan.routes.len(), 2);
        assert!(
            plan.routes
                .iter()
                .any(|r| r.destination.prefix_len() == 0 && r.metric == DEFAULT_ROUTE_METRIC)
        );
        assert!(plan.dhcp.contains_key("eth3"));
        assert_eq!(plan.search_domains, vec!["example.org".to_string()]);
        assert_eq!(plan.hostname.unwrap().host, "node1");
    }

    #[test]
    fn refuses_with_yaml_paths() {
        let found = errors(
            r#"
interfaces:
  - interface: eth0
    addresses: [10.0.0.300/24]
    routes: [{network: 10.1.0.0/16, gateway: "fd00::1"}]
  - interface: eth0
  - interface: bond0
    bond: {mode: fastest}
    vlans: [{vlanId: 5000}]
"#,
        );
        let text = found.join("\n");
        assert!(
            text.contains("machine.network.interfaces[0].addresses[0]"),
            "{text}"
        );
        assert!(
            text.contains("machine.network.interfaces[0].routes[0].gateway"),
            "{text}"
        );
        assert!(
            text.contains(
                "machine.network.interfaces[1].interface: link \"eth0\" is configured twice"
            ),
            "{text}"
        );
        assert!(
            text.contains("machine.network.interfaces[2].bond.mode"),
            "{text}"
        );
        assert!(
            text.contains("machine.network.interfaces[2].vlans[0].vlanId"),
            "{text}"
        );
    }

    #[test]
    fn refuses_unknown_fields_and_bad_masters() {
        let text = errors("interfaces: [{interface: eth0, colour: red}]").join("\n");
        assert!(text.contains("colour"), "{text}");
        let text = errors("interfaces: [{interface: eth0, bridgePort: {master: br9}}]").join("\n");
        assert!(text.contains("interfaces[0].bridgePort.master"), "{text}");
    }

    #[test]
    fn lists_what_it_does_not_implement() {
        let plan = Plan::from_inputs(&network(
            "interfaces: [{deviceSelector: {driver: virtio_net}}, {interface: eth1, vip: {ip: 10.0.0.9}, wireguard: {privateKey: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=}}]",
        ))
        .unwrap();
        // The VIP is machined's operator's, not an ignored setting.
        assert_eq!(
            plan.ignored,
            vec![
                "machine.network.interfaces[0].deviceSelector".to_string(),
                "machine.network.interfaces[1].wireguard".to_string(),
            ]
        );
    }

    #[test]
    fn kernel_ip_adds_address_route_and_dns() {
        let plan = Plan::from_inputs(&Inputs {
            kernel_ip: "10.0.0.5::10.0.0.1:255.255.255.0:node7:eth0:off:10.0.0.53:10.0.0.54"
                .to_string(),
            ..Inputs::default()
        })
        .unwrap();
        assert_eq!(plan.addresses[0].address.to_string(), "10.0.0.5/24");
        assert_eq!(plan.routes[0].gateway, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(plan.nameservers.len(), 2);
        assert_eq!(plan.hostname.unwrap().host, "node7");
    }
}
