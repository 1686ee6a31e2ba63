//! The network documents merged into the plan, as upstream merges them with `machine.network`:
//! `LinkConfig`, `DummyLinkConfig`, `VLANConfig`, `BondConfig` and `BridgeConfig` become links
//! with their MTU, addresses and routes (a setting a document gives wins over the v1alpha1
//! setting of the same link; addresses and routes are united), `BlackholeRouteConfig` a
//! blackhole route, `RoutingRuleConfig` policy routing rules ([`super::rules`]), `StaticHostConfig` hosts entries, `ResolverConfig` nameservers and search
//! domains, `HostnameConfig` the hostname.
//!
//! Settings of these kinds networkd does not implement (hardware addresses, the multicast flag,
//! routing tables other than main, address route priorities, 802.1ad VLANs, bond options the
//! v1alpha1 bond lacks, DNS transports) and the other kinds are listed as ignored.

use std::net::IpAddr;

use ipnet::IpNet;
use machineconfig::documents::{
    AddressConfig, BlackholeRouteConfig, BondConfig, Document, RouteConfig, RoutingTable,
    VlanProtocol,
};
use machineconfig::v1alpha1::{Bond, Route};

use super::{Builder, DEFAULT_ROUTE_METRIC, LinkKind, RoutePlan};

/// The YAML path of problems that belong to no single document.
pub(super) const ROOT: &str = "documents";

/// What the documents say beyond links and routes; [`super::Plan::build`] weighs it against
/// `machine.network`.
#[derive(Debug, Default)]
pub(super) struct Settings {
    /// `HostnameConfig.hostname`.
    pub hostname: Option<String>,
    /// `ResolverConfig.nameservers[].address`.
    pub nameservers: Vec<String>,
    /// `ResolverConfig.searchDomains.domains`.
    pub search_domains: Vec<String>,
    /// `ResolverConfig.searchDomains.disableDefault`.
    pub disable_search_domain: bool,
    /// `StaticHostConfig` entries.
    pub hosts: Vec<(IpAddr, Vec<String>)>,
}

/// The settings every link document carries.
struct Common<'a> {
    up: Option<bool>,
    mtu: Option<u32>,
    addresses: &'a [AddressConfig],
    routes: &'a [RouteConfig],
    multicast: Option<bool>,
}

macro_rules! common {
    ($document:expr) => {
        Common {
            up: $document.up,
            mtu: $document.mtu,
            addresses: &$document.addresses,
            routes: &$document.routes,
            multicast: $document.multicast,
        }
    };
}

impl Builder<'_> {
    /// Merges `documents` into the plan (after `machine.network`, so that their settings win)
    /// and returns the settings that are not links.
    pub(super) fn documents(&mut self, documents: &[Document]) -> Settings {
        let mut settings = Settings::default();
        for document in documents {
            let path = match document.name() {
                Some(name) => format!("{} {name:?}", document.kind()),
                None => document.kind().to_string(),
            };
            match document {
                Document::Link(link) => self.link(&path, &link.name, None, common!(link)),
                Document::DummyLink(dummy) => {
                    self.ignore_if(&path, "hardwareAddr", dummy.hardware_addr.is_some());
                    self.link(&path, &dummy.name, Some(LinkKind::Dummy), common!(dummy));
                }
                Document::Vlan(vlan) => {
                    let parent = vlan.parent.as_deref().filter(|p| !p.is_empty());
                    let (Some(parent), Some(id)) = (parent, vlan.vlan_id) else {
                        continue; // machineconfig reported it
                    };
                    self.ignore_if(
                        &path,
                        "vlanMode",
                        vlan.vlan_mode == Some(VlanProtocol::Ieee8021Ad),
                    );
                    let kind = LinkKind::Vlan {
                        parent: parent.to_string(),
                        id,
                    };
                    self.link(&path, &vlan.name, Some(kind), common!(vlan));
                }
                Document::Bond(bond) => {
                    for (field, set) in [
                        ("hardwareAddr", bond.hardware_addr.is_some()),
                        ("nsIp6Targets", !bond.ns_ip6_targets.is_empty()),
                        ("adLACPActive", bond.ad_lacp_active.is_some()),
                        ("missedMax", bond.missed_max.is_some()),
                        ("primary", bond.primary.is_some()),
                    ] {
                        self.ignore_if(&path, field, set);
                    }
                    for (j, member) in bond.links.iter().enumerate() {
                        self.member(&format!("{path}.links[{j}]"), &bond.name, member);
                    }
                    let kind = LinkKind::Bond(Box::new(v1alpha1_bond(bond)));
                    self.link(&path, &bond.name, Some(kind), common!(bond));
                }
                Document::Bridge(bridge) => {
                    self.ignore_if(&path, "hardwareAddr", bridge.hardware_addr.is_some());
                    for (j, member) in bridge.links.iter().enumerate() {
                        self.member(&format!("{path}.links[{j}]"), &bridge.name, member);
                    }
                    let kind = LinkKind::Bridge {
                        stp: bridge.stp.as_ref().and_then(|s| s.enabled) == Some(true),
                        vlan_filtering: bridge.vlan.as_ref().and_then(|v| v.filtering)
                            == Some(true),
                    };
                    self.link(&path, &bridge.name, Some(kind), common!(bridge));
                }
                Document::BlackholeRoute(route) => self.blackhole(route),
                Document::RoutingRule(rule) => self.routing_rule(rule),
                Document::StaticHost(host) => {
                    if let Ok(ip) = host.name.parse() {
                        settings.hosts.push((ip, host.hostnames.clone()));
                    }
                }
                Document::Resolver(resolver) => {
                    self.ignore_if(&path, "hostDNS", resolver.host_dns.is_some());
                    for (i, server) in resolver.nameservers.iter().enumerate() {
                        let other_transport =
                            server.protocol.is_some() || server.tls_server_name.is_some();
                        self.ignore_if(
                            &format!("{path}.nameservers[{i}]"),
                            "protocol",
                            other_transport,
                        );
                    }
                    settings.nameservers = resolver
                        .nameservers
                        .iter()
                        .map(|server| server.address.clone())
                        .collect();
                    if let Some(search) = &resolver.search_domains {
                        settings.search_domains.clone_from(&search.domains);
                        settings.disable_search_domain = search.disable_default == Some(true);
                    }
                }
                Document::Hostname(hostname) => settings.hostname.clone_from(&hostname.hostname),
                _ => self.plan.ignored.push(path),
            }
        }
        settings
    }

    /// Records `path.field` as ignored when `set`.
    fn ignore_if(&mut self, path: &str, field: &str, set: bool) {
        if set {
            self.plan.ignored.push(format!("{path}.{field}"));
        }
    }

    /// Link `name` of the document at `path`: created as `create` when given, with the common
    /// settings laid over what `machine.network` said of it.
    fn link(&mut self, path: &str, name: &str, create: Option<LinkKind>, common: Common<'_>) {
        if !self.valid_name(name, &format!("{path}.name")) {
            return;
        }
        self.named_at
            .entry(name.to_string())
            .or_insert_with(|| path.to_string());
        self.ignore_if(path, "multicast", common.multicast.is_some());
        let link = self.plan.links.entry(name.to_string()).or_default();
        if create.is_some() {
            link.create = create;
        }
        link.down = common.up == Some(false);
        self.mtu(&format!("{path}.mtu"), name, common.mtu);
        for (i, address) in common.addresses.iter().enumerate() {
            let at = format!("{path}.addresses[{i}]");
            self.ignore_if(&at, "routePriority", address.route_priority.is_some());
            self.address(format!("{at}.address"), name, &address.address);
        }
        for (i, route) in common.routes.iter().enumerate() {
            let at = format!("{path}.routes[{i}]");
            if route
                .table
                .is_some_and(|t| !matches!(t, RoutingTable::Main | RoutingTable::Unspec))
            {
                // Installing it in the main table instead would route what it should not.
                self.plan.ignored.push(format!("{at}.table"));
                continue;
            }
            let as_v1alpha1 = Route {
                network: route.destination.clone().unwrap_or_default(),
                gateway: route.gateway.clone(),
                source: route.source.clone(),
                metric: route.metric,
                mtu: route.mtu,
            };
            self.route(&at, name, &as_v1alpha1);
        }
    }

    fn blackhole(&mut self, route: &BlackholeRouteConfig) {
        let destination = match route.name.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => match route.name.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => return, // machineconfig reported it
            },
        };
        self.plan.routes.push(RoutePlan {
            link: String::new(),
            destination,
            gateway: None,
            source: None,
            metric: route.metric.unwrap_or(DEFAULT_ROUTE_METRIC),
            mtu: None,
            blackhole: true,
        });
    }
}

/// The bonding options of a `BondConfig` in the v1alpha1 form networkd creates bonds from.
fn v1alpha1_bond(bond: &BondConfig) -> Bond {
    let text = |value: Option<&'static str>| value.map(str::to_string);
    Bond {
        mode: bond
            .bond_mode
            .map(|m| m.as_str())
            .unwrap_or_default()
            .to_string(),
        xmit_hash_policy: text(bond.xmit_hash_policy.map(|v| v.as_str())),
        lacp_rate: text(bond.lacp_rate.map(|v| v.as_str())),
        arp_validate: text(bond.arp_validate.map(|v| v.as_str())),
        arp_all_targets: text(bond.arp_all_targets.map(|v| v.as_str())),
        primary_reselect: text(bond.primary_reselect.map(|v| v.as_str())),
        fail_over_mac: text(bond.fail_over_mac.map(|v| v.as_str())),
        ad_select: text(bond.ad_select.map(|v| v.as_str())),
        arp_ip_target: bond.arp_ip_targets.clone(),
        miimon: bond.mii_mon,
        updelay: bond.up_delay,
        downdelay: bond.down_delay,
        arp_interval: bond.arp_interval,
        resend_igmp: bond.resend_igmp,
        min_links: bond.min_links,
        lp_interval: bond.lp_interval,
        packets_per_slave: bond.packets_per_slave,
        num_peer_notif: bond.num_peer_notif,
        tlb_dynamic_lb: bond.tlb_logical_lb,
        all_slaves_active: bond.all_slaves_active,
        use_carrier: bond.use_carrier,
        ad_actor_sys_prio: bond.ad_actor_sys_prio,
        ad_user_port_key: bond.ad_user_port_key,
        peer_notify_delay: bond.peer_notif_delay,
        ..Bond::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Hostname, Inputs, Plan};
    use super::*;

    fn plan(network_yaml: &str, documents_yaml: &str) -> Result<Plan, Vec<String>> {
        Plan::from_inputs(&Inputs {
            network_yaml: network_yaml.to_string(),
            kernel_ip: String::new(),
            documents_yaml: documents_yaml.to_string(),
        })
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    const DOCUMENTS: &str = r#"
apiVersion: v1alpha1
kind: LinkConfig
name: eth0
mtu: 9000
addresses: [{address: 10.0.1.2/24}]
routes: [{destination: 10.8.0.0/16, gateway: 10.0.1.1, metric: 20}]
---
apiVersion: v1alpha1
kind: DummyLinkConfig
name: dummy0
up: false
addresses: [{address: 192.0.2.1/32}]
---
apiVersion: v1alpha1
kind: VLANConfig
name: eth0.42
vlanID: 42
parent: eth0
---
apiVersion: v1alpha1
kind: BondConfig
name: bond1
links: [eth2, eth3]
bondMode: 802.3ad
miimon: 100
updelay: 200
downdelay: 200
xmitHashPolicy: layer3+4
---
apiVersion: v1alpha1
kind: BridgeConfig
name: br1
links: [eth4]
stp: {enabled: true}
---
apiVersion: v1alpha1
kind: BlackholeRouteConfig
name: 198.51.100.0/24
metric: 7
---
apiVersion: v1alpha1
kind: StaticHostConfig
name: 10.0.1.50
hostnames: [db, db.internal]
---
apiVersion: v1alpha1
kind: ResolverConfig
nameservers: [{address: 10.0.1.53}]
searchDomains: {domains: [corp.example]}
---
apiVersion: v1alpha1
kind: HostnameConfig
auto: off
hostname: node9.example.org
"#;

    #[test]
    fn documents_merge_with_machine_network_and_win_where_both_set() {
        let plan = plan(
            "nameservers: [10.0.0.53]\ninterfaces:\n  - interface: eth0\n    mtu: 1500\n    \
             addresses: [10.0.0.2/24]\n",
            DOCUMENTS,
        )
        .unwrap();
        let eth0 = &plan.links["eth0"];
        assert_eq!(
            (eth0.mtu, eth0.create.as_ref(), eth0.down),
            (Some(9000), None, false)
        );
        let on = |link: &str| {
            plan.addresses
                .iter()
                .filter(|a| a.link == link)
                .map(|a| a.address.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(on("eth0"), ["10.0.0.2/24", "10.0.1.2/24"]);
        assert_eq!(on("dummy0"), ["192.0.2.1/32"]);
        assert_eq!(plan.links["dummy0"].create, Some(LinkKind::Dummy));
        assert!(plan.links["dummy0"].down);
        assert_eq!(
            plan.links["eth0.42"].create,
            Some(LinkKind::Vlan {
                parent: "eth0".into(),
                id: 42
            })
        );
        let Some(LinkKind::Bond(bond)) = &plan.links["bond1"].create else {
            panic!("bond1 is not a bond: {:?}", plan.links["bond1"]);
        };
        assert_eq!(
            (
                bond.mode.as_str(),
                bond.miimon,
                bond.xmit_hash_policy.as_deref()
            ),
            ("802.3ad", Some(100), Some("layer3+4"))
        );
        assert_eq!(plan.links["eth3"].master.as_deref(), Some("bond1"));
        assert_eq!(plan.links["eth4"].master.as_deref(), Some("br1"));
        assert_eq!(
            plan.links["br1"].create,
            Some(LinkKind::Bridge {
                stp: true,
                vlan_filtering: false
            })
        );
        let routes: Vec<String> = plan.routes.iter().map(ToString::to_string).collect();
        assert_eq!(
            routes,
            [
                "blackhole 198.51.100.0/24 metric 7",
                "10.8.0.0/16 dev eth0 via 10.0.1.1 metric 20",
            ]
        );
        assert!(plan.routes[0].blackhole);
        assert_eq!(
            plan.hosts,
            [(
                "10.0.1.50".parse().unwrap(),
                vec!["db".to_string(), "db.internal".to_string()]
            )]
        );
        // ResolverConfig's servers replace machine.network's; HostnameConfig's domain leads
        // the search list.
        assert_eq!(plan.nameservers, ["10.0.1.53".parse::<IpAddr>().unwrap()]);
        assert_eq!(plan.search_domains, ["example.org", "corp.example"]);
        assert_eq!(
            plan.hostname,
            Some(Hostname {
                host: "node9".into(),
                domain: "example.org".into()
            })
        );
        assert!(plan.ignored.is_empty(), "{:?}", plan.ignored);
    }

    #[test]
    fn machine_network_applies_where_documents_are_silent() {
        let plan = plan(
            "interfaces:\n  - interface: eth0\n    mtu: 1500\n",
            "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\naddresses: [{address: 10.0.1.2/24}]\n",
        )
        .unwrap();
        assert_eq!(plan.links["eth0"].mtu, Some(1500));
        assert_eq!(plan.addresses.len(), 1);
    }

    #[test]
    fn a_bridge_document_can_be_a_bridge_port_master() {
        let plan = plan(
            "interfaces:\n  - interface: eth5\n    bridgePort: {master: br1}\n",
            "apiVersion: v1alpha1\nkind: BridgeConfig\nname: br1\n",
        )
        .unwrap();
        assert_eq!(plan.links["eth5"].master.as_deref(), Some("br1"));
    }

    #[test]
    fn refuses_documents_with_their_paths() {
        let errors = plan(
            "",
            r#"apiVersion: v1alpha1
kind: LinkConfig
name: eth0
routes: [{destination: 10.9.0.0/16, gateway: "fd00::1"}]
---
apiVersion: v1alpha1
kind: DummyLinkConfig
name: a-very-long-link-name
---
apiVersion: v1alpha1
kind: VLANConfig
name: vlan9
vlanID: 9
---
apiVersion: v1alpha1
kind: LinkConfig
name: eth1
mtu: 20
"#,
        )
        .unwrap_err()
        .join("\n");
        for expected in [
            "LinkConfig \"eth0\".routes[0].gateway: gateway fd00::1 is not of the family",
            "DummyLinkConfig \"a-very-long-link-name\".name: link name",
            "VLANConfig \"vlan9\".parent",
            "LinkConfig \"eth1\".mtu: MTU 20 is out of range",
        ] {
            assert!(errors.contains(expected), "{expected:?} not in:\n{errors}");
        }
        let undecodable = plan(
            "",
            "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\ncolour: red\n",
        )
        .unwrap_err()
        .join("\n");
        assert!(
            undecodable.starts_with("documents: ") && undecodable.contains("colour"),
            "{undecodable}"
        );
    }

    #[test]
    fn lists_what_it_does_not_apply() {
        let plan = plan(
            "",
            r#"apiVersion: v1alpha1
kind: LinkConfig
name: eth0
addresses: [{address: 10.0.1.2/24, routePriority: 5}]
routes: [{destination: 10.7.0.0/16, gateway: 10.0.1.1, table: 100}]
---
apiVersion: v1alpha1
kind: LinkAliasConfig
name: net0
selector: {match: "true"}
"#,
        )
        .unwrap();
        assert_eq!(
            plan.ignored,
            [
                "LinkConfig \"eth0\".addresses[0].routePriority",
                "LinkConfig \"eth0\".routes[0].table",
                "LinkAliasConfig \"net0\"",
            ]
        );
        assert!(plan.routes.is_empty());
        assert_eq!(plan.addresses.len(), 1);
    }
}
