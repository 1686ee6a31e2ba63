//! The network multi-document kinds: every field decodes and is written back, unknown fields
//! are decode errors, each kind's rules are reported by validation, named kinds are unique.

mod documents_support;

use documents_support::*;
use machineconfig::documents::{BondMode, Document, FailOverMac, PortRange, RoutingTable};

const GROUP: &str = "network";

/// (fixture, kinds in it, name of its first document when the kind is named).
const FIXTURES: &[(&str, &[&str], Option<&str>)] = &[
    ("static_host.yaml", &["StaticHostConfig"], Some("10.5.0.20")),
    ("link.yaml", &["LinkConfig"], Some("enp3s0")),
    ("link_alias.yaml", &["LinkAliasConfig"], Some("uplink")),
    ("dummy.yaml", &["DummyLinkConfig"], Some("lb0")),
    ("bond.yaml", &["BondConfig"], Some("agg0")),
    ("bridge.yaml", &["BridgeConfig"], Some("br-lab")),
    ("vlan.yaml", &["VLANConfig"], Some("storage.42")),
    ("vrf.yaml", &["VRFConfig"], Some("vrf-mgmt")),
    ("veth.yaml", &["VethConfig"], Some("vpair-a")),
    ("wireguard.yaml", &["WireguardConfig"], Some("wg-site")),
    ("ethernet.yaml", &["EthernetConfig"], Some("enp3s0")),
    ("dhcp4.yaml", &["DHCPv4Config"], Some("enp3s0")),
    ("dhcp6.yaml", &["DHCPv6Config"], Some("enp3s0")),
    ("layer2_vip.yaml", &["Layer2VIPConfig"], Some("10.20.0.100")),
    ("hcloud_vip.yaml", &["HCloudVIPConfig"], Some("10.20.0.101")),
    (
        "blackhole_route.yaml",
        &["BlackholeRouteConfig"],
        Some("198.18.0.0/15"),
    ),
    ("routing_rule.yaml", &["RoutingRuleConfig"], Some("1200")),
    (
        "network_rule.yaml",
        &["NetworkRuleConfig"],
        Some("web-ingress"),
    ),
    ("default_action.yaml", &["NetworkDefaultActionConfig"], None),
    (
        "kubespan.yaml",
        &[
            "KubeSpanConfig",
            "DiscoveryServiceConfig",
            "DiscoveryIdentityConfig",
        ],
        None,
    ),
    (
        "kubespan_endpoints.yaml",
        &["KubeSpanEndpointsConfig"],
        None,
    ),
    (
        "tcp_probe.yaml",
        &["TCPProbeConfig"],
        Some("upstream-proxy"),
    ),
    ("http_probe.yaml", &["HTTPProbeConfig"], Some("portal")),
    (
        "bgp.yaml",
        &["BGPInstanceConfig", "BGPInstanceConfig"],
        Some("fabric"),
    ),
];

fn text(file: &str) -> String {
    fixture(GROUP, file)
}

#[test]
fn every_fixture_round_trips_and_validates() {
    for (file, kinds, name) in FIXTURES {
        let config = assert_round_trip(&text(file), kinds);
        assert_eq!(config.documents[0].name(), *name, "{file}");
        assert_valid(&config);
    }
}

#[test]
fn all_network_documents_validate_together() {
    let stream: Vec<String> = FIXTURES.iter().map(|(file, _, _)| text(file)).collect();
    let stream = stream.join("---\n");
    let kinds: Vec<&str> = FIXTURES
        .iter()
        .flat_map(|(_, kinds, _)| kinds.iter().copied())
        .collect();
    let config = assert_round_trip(&stream, &kinds);
    assert_valid(&config);
}

#[test]
fn unknown_top_level_fields_are_decode_errors() {
    for (file, _, _) in FIXTURES {
        assert_unknown_field(&text(file), "kind:", "bogusField: 1", "bogusField");
    }
}

#[test]
fn unknown_nested_fields_are_decode_errors() {
    let link = text("link.yaml");
    assert_unknown_field(
        &link,
        "routePriority:",
        "    priority: 1",
        "addresses[0].priority",
    );
    assert_unknown_field(&link, "    table: 120", "    tables: 1", "routes[0].tables");
    let veth = text("veth.yaml");
    assert_unknown_field(&veth, "  name: vpair-b", "  mtuu: 1", "peer.mtuu");
    let bridge = text("bridge.yaml");
    assert_unknown_field(&bridge, "  enabled: true", "  priority: 1", "stp.priority");
    let wireguard = text("wireguard.yaml");
    assert_unknown_field(
        &wireguard,
        "endpoint:",
        "    keepalive: 5s",
        "peers[0].keepalive",
    );
    let ethernet = text("ethernet.yaml");
    assert_unknown_field(&ethernet, "  rx-mini:", "  rx_mini: 1", "rings.rx_mini");
    let bgp = text("bgp.yaml");
    assert_unknown_field(
        &bgp,
        "holdTime:",
        "    keepalive: 30s",
        "neighbors[0].keepalive",
    );
    let rule = text("network_rule.yaml");
    assert_unknown_field(&rule, "except:", "    only: 10.0.0.0/8", "ingress[0].only");
    let kubespan = text("kubespan.yaml");
    assert_unknown_field(&kubespan, "filters:", "  exclude: []", "filters.exclude");
}

#[test]
fn closed_sets_refuse_other_values() {
    let cases = [
        (
            "bond.yaml",
            "bondMode: active-backup",
            "bondMode: lacp",
            "bondMode",
        ),
        (
            "bond.yaml",
            "xmitHashPolicy: layer3+4",
            "xmitHashPolicy: l34",
            "xmitHashPolicy",
        ),
        (
            "vlan.yaml",
            "vlanMode: 802.1ad",
            "vlanMode: qinq",
            "vlanMode",
        ),
        ("vrf.yaml", "table: 77", "table: 300", "table"),
        (
            "link.yaml",
            "table: main",
            "table: primary",
            "routes[1].table",
        ),
        (
            "dhcp4.yaml",
            "clientIdentifier: duid",
            "clientIdentifier: uuid",
            "clientIdentifier",
        ),
        (
            "network_rule.yaml",
            "protocol: tcp",
            "protocol: sctp",
            "portSelector.protocol",
        ),
        (
            "network_rule.yaml",
            "- 8000-8099",
            "- 8000..8099",
            "portSelector.ports[1]",
        ),
        (
            "default_action.yaml",
            "ingress: block",
            "ingress: drop",
            "ingress",
        ),
        ("ethernet.yaml", "- magic", "- magik", "wakeOnLan[0]"),
        (
            "routing_rule.yaml",
            "action: unicast",
            "action: drop",
            "action",
        ),
        (
            "wireguard.yaml",
            "25s",
            "25 seconds",
            "peers[0].persistentKeepaliveInterval",
        ),
    ];
    for (file, from, to, path) in cases {
        let (line, reported, message) = decode_error(&edit(&text(file), from, to));
        assert!(line.is_some(), "{file}: {message}");
        assert_eq!(reported, path, "{file}: {message}");
    }
}

#[test]
fn typed_values_decode_as_written() {
    let config = assert_round_trip(&text("bond.yaml"), &["BondConfig"]);
    let Document::Bond(bond) = &config.documents[0] else {
        panic!("not a bond: {:?}", config.documents[0]);
    };
    assert_eq!(bond.bond_mode, Some(BondMode::ActiveBackup));
    assert_eq!(bond.links, ["ens1f0", "ens1f1"]);
    assert_eq!(bond.mtu, Some(9000));

    let config = assert_round_trip(&text("link.yaml"), &["LinkConfig"]);
    let Document::Link(link) = &config.documents[0] else {
        panic!("not a link");
    };
    assert_eq!(link.routes[0].table, Some(RoutingTable::Id(120)));
    assert_eq!(link.routes[1].table, Some(RoutingTable::Main));

    let config = assert_round_trip(&text("network_rule.yaml"), &["NetworkRuleConfig"]);
    let Document::NetworkRule(rule) = &config.documents[0] else {
        panic!("not a rule");
    };
    assert_eq!(
        rule.port_selector.ports,
        [
            PortRange { lo: 443, hi: 443 },
            PortRange { lo: 8000, hi: 8099 }
        ]
    );
    // A table written as text reads the same as one written as a number.
    let quoted = edit(&text("vrf.yaml"), "table: 77\nup", "table: \"77\"\nup");
    let config = machineconfig::Config::from_yaml(&quoted).expect("decodes");
    let Document::Vrf(vrf) = &config.documents[0] else {
        panic!("not a vrf");
    };
    assert_eq!(vrf.table, Some(RoutingTable::Id(77)));
}

#[test]
fn names_are_read_in_any_case_and_written_in_upstream_spelling() {
    let bond = text("bond.yaml");
    let shouting = edit(&bond, "bondMode: active-backup", "bondMode: Active-Backup");
    let shouting = edit(&shouting, "failOverMac: follow", "failOverMac: 2");
    let config = machineconfig::Config::from_yaml(&shouting).expect("decodes");
    let Document::Bond(decoded) = &config.documents[0] else {
        panic!("not a bond");
    };
    assert_eq!(decoded.bond_mode, Some(BondMode::ActiveBackup));
    assert_eq!(decoded.fail_over_mac, Some(FailOverMac::Follow));
    let written = config.to_yaml().expect("encodes");
    assert!(written.contains("bondMode: active-backup"), "{written}");
    assert!(written.contains("failOverMac: follow"), "{written}");
    let (_, path, message) = decode_error(&edit(&bond, "failOverMac: follow", "failOverMac: 3"));
    assert_eq!(path, "failOverMac");
    assert!(message.contains("none, active, follow"), "{message}");
    let rule = edit(&text("network_rule.yaml"), "protocol: tcp", "protocol: TCP");
    warnings(&rule);
    let link = edit(&text("link.yaml"), "table: main", "table: MAIN");
    warnings(&link);
}

#[test]
fn named_kinds_refuse_a_second_document_with_the_same_name() {
    for (file, kinds, name) in FIXTURES {
        if name.is_some() {
            let first = text(file);
            let first = first.split("---\n").next().expect("one document");
            assert_duplicate_refused(first, kinds[0]);
        }
    }
    // Singletons too.
    let action = text("default_action.yaml");
    assert!(machineconfig::Config::from_yaml(&format!("{action}---\n{action}")).is_err());
}

#[test]
fn named_kinds_need_a_name() {
    for (file, kinds, name) in FIXTURES {
        if let Some(name) = name {
            let first = text(file);
            let first = first.split("---\n").next().expect("one document");
            let line = format!("name: {name}\n");
            let quoted = format!("name: {name:?}\n");
            let from = if first.contains(&line) { line } else { quoted };
            let issues = validation_errors(&edit(first, &from, ""));
            assert_issue(&issues, &format!("{}.name", kinds[0]), "required");
        }
    }
}

#[test]
fn link_addresses_and_routes_are_checked() {
    let link = text("link.yaml");
    let issues = validation_errors(&edit(&link, "10.20.0.7/24", "10.20.0.7"));
    assert_issue(
        &issues,
        "LinkConfig \"enp3s0\".addresses[0].address",
        "CIDR",
    );
    let issues = validation_errors(&edit(&link, "address: fd42:10::7/64", "address: 0.0.0.0/0"));
    assert_issue(
        &issues,
        "LinkConfig \"enp3s0\".addresses[1].address",
        "unspecified",
    );
    let issues = validation_errors(&edit(&link, "gateway: 10.20.0.1", "gateway: 0.0.0.0"));
    assert_issue(
        &issues,
        "LinkConfig \"enp3s0\".routes[0].gateway",
        "unspecified",
    );
    let issues = validation_errors(&edit(&link, "source: 10.20.0.7", "source: ten"));
    assert_issue(
        &issues,
        "LinkConfig \"enp3s0\".routes[0].source",
        "IP address",
    );
    let issues = validation_errors(&edit(&link, "172.16.0.0/12", "0.0.0.0/0"));
    assert_issue(
        &issues,
        "LinkConfig \"enp3s0\".routes[0].destination",
        "default route",
    );
}

#[test]
fn dummy_and_bridge_check_the_hardware_address() {
    let issues = validation_errors(&edit(
        &text("dummy.yaml"),
        "0e:2a:11:00:00:05",
        "0e:2a:11:00:00:0",
    ));
    assert_issue(
        &issues,
        "DummyLinkConfig \"lb0\".hardwareAddr",
        "hardware address",
    );
    let issues = validation_errors(&edit(&text("bridge.yaml"), "0e:2a:11:00:00:07", "zz:2a"));
    assert_issue(
        &issues,
        "BridgeConfig \"br-lab\".hardwareAddr",
        "hardware address",
    );
    warnings(&edit(&text("dummy.yaml"), "0e:2a:11:00:00:05", "\"\""));
    let issues = validation_errors(&edit(&text("bridge.yaml"), "10.40.0.7/24", "10.40.0.7/33"));
    assert_issue(
        &issues,
        "BridgeConfig \"br-lab\".addresses[0].address",
        "CIDR",
    );
}

#[test]
fn link_alias_rules() {
    let alias = text("link_alias.yaml");
    let issues = validation_errors(&edit(&alias, "name: uplink", "name: net%s"));
    assert_issue(&issues, "LinkAliasConfig \"net%s\".name", "%d");
    warnings(&edit(&alias, "name: uplink", "name: net%d"));
    let without = alias.lines().take(3).collect::<Vec<_>>().join("\n") + "\n";
    let issues = validation_errors(&without);
    assert_issue(
        &issues,
        "LinkAliasConfig \"uplink\".selector.match",
        "required",
    );
}

#[test]
fn bond_rules() {
    let bond = text("bond.yaml");
    let path = "BondConfig \"agg0\"";
    let issues = validation_errors(&edit(&bond, "bondMode: active-backup\n", ""));
    assert_issue(&issues, &format!("{path}.bondMode"), "required");
    let issues = validation_errors(&edit(&bond, "links:\n  - ens1f0\n  - ens1f1\n", ""));
    assert_issue(&issues, &format!("{path}.links"), "at least one");
    assert_issue(
        &issues,
        &format!("{path}.primary"),
        "not one of the bond's links",
    );
    let issues = validation_errors(&edit(&bond, "primary: ens1f0", "primary: ens9"));
    assert_issue(&issues, &format!("{path}.primary"), "\"ens9\"");
    let issues = validation_errors(&edit(
        &bond,
        "bondMode: active-backup",
        "bondMode: balance-xor",
    ));
    assert_issue(&issues, &format!("{path}.primary"), "balance-xor");
    let issues = validation_errors(&edit(&bond, "- 10.30.0.1", "- 10.30.0"));
    assert_issue(&issues, &format!("{path}.arpIpTargets[0]"), "IP address");
    // 802.3ad without the MII timers warns; primaryReselect without primary warns.
    let lacp = edit(&bond, "bondMode: active-backup", "bondMode: 802.3ad");
    let lacp = edit(&lacp, "miimon: 100\n", "");
    let lacp = edit(&lacp, "primary: ens1f0\n", "");
    let found = warnings(&lacp);
    assert_issue(&found, &format!("{path}.miimon"), "802.3ad");
    let found = warnings(&edit(&bond, "primary: ens1f0\n", ""));
    assert_issue(&found, &format!("{path}.primaryReselect"), "primary");
}

#[test]
fn vlan_rules() {
    let vlan = text("vlan.yaml");
    let issues = validation_errors(&edit(&vlan, "vlanID: 42", "vlanID: 4095"));
    assert_issue(&issues, "VLANConfig \"storage.42\".vlanID", "4094");
    let issues = validation_errors(&edit(&vlan, "vlanID: 42\n", ""));
    assert_issue(&issues, "VLANConfig \"storage.42\".vlanID", "required");
    let issues = validation_errors(&edit(&vlan, "parent: enp3s0\n", ""));
    assert_issue(&issues, "VLANConfig \"storage.42\".parent", "required");
}

#[test]
fn vrf_needs_a_table_of_its_own() {
    let vrf = text("vrf.yaml");
    for table in ["main", "local", "default", "unspec", "254"] {
        let issues =
            validation_errors(&edit(&vrf, "table: 77\nup", &format!("table: {table}\nup")));
        assert_issue(&issues, "VRFConfig \"vrf-mgmt\".table", "reserved");
    }
    let issues = validation_errors(&edit(&vrf, "table: 77\nup", "up"));
    assert_issue(
        &issues,
        "VRFConfig \"vrf-mgmt\".table",
        "reserved table unspec",
    );
}

#[test]
fn veth_rules() {
    let veth = text("veth.yaml");
    let issues = validation_errors(&edit(&veth, "name: vpair-b", "name: vpair-a"));
    assert_issue(&issues, "VethConfig \"vpair-a\".peer.name", "different");
    let issues = validation_errors(&edit(&veth, "name: vpair-b", "name: a-very-long-peer-name"));
    assert_issue(&issues, "VethConfig \"vpair-a\".peer.name", "15 bytes");
    let issues = validation_errors(&edit(&veth, "name: vpair-a", "name: \"vpair/a\""));
    assert_issue(&issues, "VethConfig \"vpair/a\".name", "'/'");
    let issues = validation_errors(&edit(&veth, "169.254.10.2/30", "169.254.10.2/40"));
    assert_issue(
        &issues,
        "VethConfig \"vpair-a\".peer.addresses[0].address",
        "CIDR",
    );
}

#[test]
fn wireguard_rules() {
    let wg = text("wireguard.yaml");
    let path = "WireguardConfig \"wg-site\"";
    let issues = validation_errors(&edit(
        &wg,
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
        "short",
    ));
    assert_issue(&issues, &format!("{path}.privateKey"), "WireGuard key");
    let issues = validation_errors(&edit(
        &wg,
        "privateKey: QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n",
        "",
    ));
    assert_issue(&issues, &format!("{path}.privateKey"), "required");
    let issues = validation_errors(&edit(&wg, "listenPort: 51821", "listenPort: 70000"));
    assert_issue(&issues, &format!("{path}.listenPort"), "65535");
    let issues = validation_errors(&edit(
        &wg,
        "publicKey: QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=",
        "publicKey: \"\"",
    ));
    assert_issue(&issues, &format!("{path}.peers[0].publicKey"), "required");
    let issues = validation_errors(&edit(
        &wg,
        "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M=",
        "bad!",
    ));
    assert_issue(
        &issues,
        &format!("{path}.peers[0].presharedKey"),
        "WireGuard key",
    );
    let issues = validation_errors(&edit(&wg, "203.0.113.9:51821", "203.0.113.9"));
    assert_issue(
        &issues,
        &format!("{path}.peers[0].endpoint"),
        "address:port",
    );
    let issues = validation_errors(&edit(&wg, "10.200.0.0/16", "10.200.0.0"));
    assert_issue(&issues, &format!("{path}.peers[0].allowedIPs[0]"), "CIDR");
}

#[test]
fn dhcp_duid_rules() {
    for (file, kind) in [
        ("dhcp4.yaml", "DHCPv4Config"),
        ("dhcp6.yaml", "DHCPv6Config"),
    ] {
        let dhcp = text(file);
        let path = format!("{kind} \"enp3s0\".duidRaw");
        let issues = validation_errors(&edit(
            &dhcp,
            "clientIdentifier: duid",
            "clientIdentifier: mac",
        ));
        assert_issue(&issues, &path, "only used with clientIdentifier: duid");
        let without: String = dhcp
            .lines()
            .filter(|l| !l.starts_with("duidRaw"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_issue(&validation_errors(&without), &path, "needs duidRaw");
        let issues = validation_errors(&edit(&dhcp, "duidRaw: 00:0", "duidRaw: xx:0"));
        assert_issue(&issues, &path, "hardware address");
    }
}

#[test]
fn vip_rules() {
    let l2 = text("layer2_vip.yaml");
    let issues = validation_errors(&edit(&l2, "name: 10.20.0.100", "name: vip"));
    assert_issue(&issues, "Layer2VIPConfig \"vip\".name", "IP address");
    let issues = validation_errors(&edit(&l2, "link: enp3s0\n", ""));
    assert_issue(&issues, "Layer2VIPConfig \"10.20.0.100\".link", "required");
    let hcloud = text("hcloud_vip.yaml");
    let issues = validation_errors(&edit(&hcloud, "apiToken: hc-token-for-tests-only\n", ""));
    assert_issue(
        &issues,
        "HCloudVIPConfig \"10.20.0.101\".apiToken",
        "required",
    );
    // One address can not be a VIP of both kinds.
    let both = format!("{l2}---\n{}", edit(&hcloud, "10.20.0.101", "10.20.0.100"));
    let issues = validation_errors(&both);
    assert_issue(
        &issues,
        "HCloudVIPConfig \"10.20.0.100\"",
        "Layer2VIPConfig",
    );
}

#[test]
fn static_host_and_blackhole_names() {
    let host = text("static_host.yaml");
    let issues = validation_errors(&edit(&host, "name: 10.5.0.20", "name: registry"));
    assert_issue(&issues, "StaticHostConfig \"registry\".name", "IP address");
    let issues = validation_errors(&edit(
        &host,
        "hostnames:\n  - registry.lab.internal\n  - registry\n",
        "hostnames: []\n",
    ));
    assert_issue(
        &issues,
        "StaticHostConfig \"10.5.0.20\".hostnames",
        "at least one",
    );
    let hole = text("blackhole_route.yaml");
    let issues = validation_errors(&edit(&hole, "198.18.0.0/15", "198.18.0.0"));
    assert_issue(&issues, "BlackholeRouteConfig \"198.18.0.0\".name", "CIDR");
}

#[test]
fn routing_rule_rules() {
    let rule = text("routing_rule.yaml");
    for priority in ["0", "32500", "32766", "32767"] {
        let issues = validation_errors(&edit(&rule, "\"1200\"", &format!("\"{priority}\"")));
        assert_issue(
            &issues,
            &format!("RoutingRuleConfig \"{priority}\".name"),
            "reserved",
        );
    }
    let issues = validation_errors(&edit(&rule, "\"1200\"", "first"));
    assert_issue(&issues, "RoutingRuleConfig \"first\".name", "priority");
    let issues = validation_errors(&edit(&rule, "table: 120\n", ""));
    assert_issue(
        &issues,
        "RoutingRuleConfig \"1200\".table",
        "table is required",
    );
    let blackhole = edit(&edit(&rule, "table: 120\n", ""), "unicast", "blackhole");
    warnings(&blackhole);
    let issues = validation_errors(&edit(&rule, "fwMark: 16\n", ""));
    assert_issue(&issues, "RoutingRuleConfig \"1200\".fwMask", "fwMark");
    let issues = validation_errors(&edit(&rule, "src: 10.20.0.0/24", "src: 10.20.0.0/99"));
    assert_issue(&issues, "RoutingRuleConfig \"1200\".src", "CIDR");
    let issues = validation_errors(&edit(&rule, "dst: 172.16.0.0/12", "dst: fd00::/8"));
    assert_issue(
        &issues,
        "RoutingRuleConfig \"1200\".dst",
        "same address family",
    );
    let issues = validation_errors(&edit(&rule, "iifName: enp3s0", "iifName: a/b"));
    assert_issue(&issues, "RoutingRuleConfig \"1200\".iifName", "'/'");
    let issues = validation_errors(&edit(
        &rule,
        "oifName: storage.42",
        "oifName: far-too-long-name0",
    ));
    assert_issue(&issues, "RoutingRuleConfig \"1200\".oifName", "15 bytes");
}

#[test]
fn network_rule_rules() {
    let rule = text("network_rule.yaml");
    let path = "NetworkRuleConfig \"web-ingress\"";
    let issues = validation_errors(&edit(&rule, "- 8000-8099", "- 8099-8000"));
    assert_issue(
        &issues,
        &format!("{path}.portSelector.ports"),
        "ends before",
    );
    let issues = validation_errors(&edit(&rule, "- 443", "- 8050"));
    assert_issue(&issues, &format!("{path}.portSelector.ports"), "overlap");
    let issues = validation_errors(&edit(&rule, "- 443", "- 8000"));
    assert_issue(&issues, &format!("{path}.portSelector.ports"), "overlap");
    let issues = validation_errors(&edit(&rule, "    - 443\n    - 8000-8099\n", "    []\n"));
    assert_issue(
        &issues,
        &format!("{path}.portSelector.ports"),
        "at least one",
    );
    let issues = validation_errors(&edit(&rule, "subnet: 10.0.0.0/8", "subnet: everyone"));
    assert_issue(&issues, &format!("{path}.ingress[0].subnet"), "CIDR");
    let issues = validation_errors(&edit(&rule, "except: 10.66.0.0/16", "except: 10.66.0.0/"));
    assert_issue(&issues, &format!("{path}.ingress[0].except"), "CIDR");
}

#[test]
fn default_action_is_required() {
    let issues = validation_errors("apiVersion: v1alpha1\nkind: NetworkDefaultActionConfig\n");
    assert_issue(&issues, "NetworkDefaultActionConfig.ingress", "required");
}

#[test]
fn kubespan_rules() {
    let kubespan = text("kubespan.yaml");
    let issues = validation_errors(&edit(&kubespan, "mtu: 1380", "mtu: 1200"));
    assert_issue(&issues, "KubeSpanConfig.mtu", "1280");
    let issues = validation_errors(&edit(
        &kubespan,
        "\"!192.168.0.0/16\"",
        "\"!192.168.0.0/33\"",
    ));
    assert_issue(&issues, "KubeSpanConfig.filters.endpoints[1]", "subnet");
    let issues = validation_errors(&edit(&kubespan, "10.244.8.0/24", "10.244.8.0/"));
    assert_issue(
        &issues,
        "KubeSpanConfig.filters.excludeAdvertisedNetworks[0]",
        "CIDR",
    );
    let both = format!("machine:\n  network:\n    kubespan:\n      enabled: true\n---\n{kubespan}");
    let issues = validation_errors(&both);
    assert_issue(&issues, "KubeSpanConfig", "machine.network.kubespan");
    // Turned on, KubeSpan needs discovery: a document, or cluster.discovery in v1alpha1.
    let alone = kubespan.split("---\n").next().expect("first document");
    assert_issue(
        &validation_errors(alone),
        "KubeSpanConfig.enabled",
        "discovery",
    );
    warnings(&edit(alone, "enabled: true", "enabled: false"));
    let legacy = "cluster:\n  discovery:\n    enabled: true\n---\n";
    let issues = validation_errors(&format!("{legacy}{alone}"));
    assert!(
        !issues.iter().any(|i| i.path == "KubeSpanConfig.enabled"),
        "{issues:#?}"
    );
    let endpoints = text("kubespan_endpoints.yaml");
    let issues = validation_errors(&edit(&endpoints, "203.0.113.20:51820", "203.0.113.20"));
    assert_issue(
        &issues,
        "KubeSpanEndpointsConfig.extraAnnouncedEndpoints[0]",
        "address:port",
    );
}

#[test]
fn probe_rules() {
    let tcp = text("tcp_probe.yaml");
    let issues = validation_errors(&edit(&tcp, "endpoint: proxy.lab.internal:3128\n", ""));
    assert_issue(
        &issues,
        "TCPProbeConfig \"upstream-proxy\".endpoint",
        "required",
    );
    let issues = validation_errors(&edit(&tcp, "failureThreshold: 3", "failureThreshold: -1"));
    assert_issue(
        &issues,
        "TCPProbeConfig \"upstream-proxy\".failureThreshold",
        "negative",
    );
    let http = text("http_probe.yaml");
    let issues = validation_errors(&edit(&http, "https://portal", "ftp://portal"));
    assert_issue(&issues, "HTTPProbeConfig \"portal\".url", "http or https");
    let issues = validation_errors(&edit(
        &http,
        "url: https://portal.lab.internal/healthz\n",
        "",
    ));
    assert_issue(&issues, "HTTPProbeConfig \"portal\".url", "required");
}

#[test]
fn bgp_rules() {
    let bgp = text("bgp.yaml");
    let path = "BGPInstanceConfig \"fabric\"";
    let issues = validation_errors(&edit(&bgp, "localASN: 64512\nrouterID", "routerID"));
    assert_issue(&issues, &format!("{path}.localASN"), "required");
    let issues = validation_errors(&edit(&bgp, "routerID: 10.20.0.7", "routerID: fd42::7"));
    assert_issue(&issues, &format!("{path}.routerID"), "IPv4");
    let issues = validation_errors(&edit(&bgp, "  - link: ens1f1", "  - address: 10.20.0.1"));
    assert_issue(&issues, &format!("{path}.neighbors[1]"), "twice");
    let issues = validation_errors(&edit(
        &bgp,
        "  - link: ens1f1",
        "  - link: ens1f1\n    address: 10.9.9.9",
    ));
    assert_issue(&issues, &format!("{path}.neighbors[1]"), "exactly one");
    let issues = validation_errors(&edit(&bgp, "bgpInstance: edge", "bgpInstance: fabric"));
    assert_issue(
        &issues,
        &format!("{path}.importRoutes[0].bgpInstance"),
        "itself",
    );
    let issues = validation_errors(&edit(&bgp, "10.250.0.0/16", "10.250.0.1/16"));
    assert_issue(
        &issues,
        &format!("{path}.importRoutes[0].prefixes[0]"),
        "host bits",
    );
    let issues = validation_errors(&edit(&bgp, "fd42:250::/48", "10.250.128.0/17"));
    assert_issue(
        &issues,
        &format!("{path}.importRoutes[0].prefixes[1]"),
        "overlaps",
    );
    let second_import =
        "  - bgpInstance: edge\n    prefixes:\n      - 10.250.0.0/16\n      - fd42:250::/48\n";
    let doubled = edit(
        &bgp,
        second_import,
        &format!("{second_import}  - bgpInstance: edge\n    prefixes:\n      - 10.250.1.0/24\n"),
    );
    let issues = validation_errors(&doubled);
    assert_issue(
        &issues,
        &format!("{path}.importRoutes[1].bgpInstance"),
        "twice",
    );
    assert_issue(
        &issues,
        &format!("{path}.importRoutes[1].prefixes[0]"),
        "importRoutes[0]",
    );
    // BFD is refused on an instance bound to a VRF.
    let vrf_bfd = edit(&bgp, "name: edge\n", "name: edge\nvrf: vrf-mgmt\n");
    let issues = validation_errors(&vrf_bfd);
    assert_issue(
        &issues,
        "BGPInstanceConfig \"edge\".neighbors[0].bfd",
        "VRF",
    );
    // No neighbors is only a warning.
    let lonely = "apiVersion: v1alpha1\nkind: BGPInstanceConfig\nname: lonely\nlocalASN: 65000\n";
    assert_issue(
        &warnings(lonely),
        "BGPInstanceConfig \"lonely\".neighbors",
        "no neighbors",
    );
}

#[test]
fn a_link_is_configured_by_one_document() {
    let link = text("link.yaml");
    let bond = edit(&text("bond.yaml"), "name: agg0", "name: enp3s0");
    let issues = validation_errors(&format!("{link}---\n{bond}"));
    assert_issue(&issues, "BondConfig \"enp3s0\"", "LinkConfig \"enp3s0\"");
    let veth = edit(&text("veth.yaml"), "name: vpair-b", "name: enp3s0");
    let issues = validation_errors(&format!("{link}---\n{veth}"));
    assert_issue(&issues, "VethConfig \"vpair-a\"", "LinkConfig \"enp3s0\"");
    // Kinds that configure other aspects of a link (DHCP, ethtool) do not conflict.
    let others = format!(
        "{link}---\n{}---\n{}",
        text("dhcp4.yaml"),
        text("ethernet.yaml")
    );
    warnings(&others);
}
