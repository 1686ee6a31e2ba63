//! The network documents (`LinkConfig`, `BridgeConfig`, `DummyLinkConfig`,
//! `BlackholeRouteConfig`, `StaticHostConfig`, `ResolverConfig`) applied by networkd on a node
//! that owns its network namespace: the kernel state is read back with `ip -j`, a changed
//! document applies live (`apply-config --mode no-reboot`), and a removed one takes away what it
//! made.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::process::Output;

use serde_json::Value;
use tests::{Cluster, NetworkNamespace, Node, binary, eventually, success};

const NODE: &str = "127.54.0.2";

fn talosctl(namespace: &NetworkNamespace, cluster: &Cluster, args: &[&str]) -> Output {
    namespace
        .command(binary("talosctl"))
        .arg("--talosconfig")
        .arg(cluster.talosconfig())
        .args(["-e", NODE, "-n", NODE])
        .args(args)
        .output()
        .unwrap()
}

/// `ip -j ARGS` in the namespace, decoded (an empty array when the object does not exist).
fn ip_json(namespace: &NetworkNamespace, args: &[&str]) -> Vec<Value> {
    let output = namespace
        .command("ip")
        .arg("-j")
        .args(args)
        .output()
        .unwrap();
    if !output.status.success() {
        return Vec::new();
    }
    serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap_or_default()
}

/// The IPv4 `local/prefixlen` addresses of `link`.
fn addresses(namespace: &NetworkNamespace, link: &str) -> Vec<String> {
    ip_json(namespace, &["-4", "addr", "show", "dev", link])
        .iter()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect()
}

/// One field of `link` (`Value::Null` when the link does not exist).
fn link_field(namespace: &NetworkNamespace, link: &str, field: &str) -> Value {
    ip_json(namespace, &["link", "show", "dev", link])
        .first()
        .map(|l| l[field].clone())
        .unwrap_or(Value::Null)
}

/// The control-plane config followed by `documents`.
fn config_with(cluster: &Cluster, documents: &str) -> String {
    format!(
        "{}\n---\n{documents}",
        cluster.controlplane_config().trim_end()
    )
}

const LINK_1400: &str = "apiVersion: v1alpha1
kind: LinkConfig
name: tn0
mtu: 1400
addresses: [{address: 10.54.0.2/24}]
routes: [{destination: 10.55.0.0/24, gateway: 10.54.0.1}]
";

const LINK_1300: &str = "apiVersion: v1alpha1
kind: LinkConfig
name: tn0
mtu: 1300
addresses: [{address: 10.54.0.3/24}]
routes: [{destination: 10.55.0.0/24, gateway: 10.54.0.1}]
";

const OTHERS: &str = "---
apiVersion: v1alpha1
kind: VLANConfig
name: tn0.54
vlanID: 54
parent: tn0
addresses: [{address: 10.59.0.2/24}]
---
apiVersion: v1alpha1
kind: BridgeConfig
name: br54
links: [tn2]
addresses: [{address: 10.56.0.2/24}]
---
apiVersion: v1alpha1
kind: DummyLinkConfig
name: dummy54
addresses: [{address: 10.57.0.1/32}]
---
apiVersion: v1alpha1
kind: BlackholeRouteConfig
name: 10.58.0.0/24
---
apiVersion: v1alpha1
kind: StaticHostConfig
name: 10.54.0.9
hostnames: [db54]
---
apiVersion: v1alpha1
kind: ResolverConfig
nameservers: [{address: 10.54.0.53}]
searchDomains: {domains: [docs.example]}
";

fn apply(namespace: &NetworkNamespace, cluster: &Cluster, name: &str, config: &str) {
    let file = cluster.dir.path().join(name);
    std::fs::write(&file, config).unwrap();
    let file = file.to_string_lossy().into_owned();
    success(talosctl(
        namespace,
        cluster,
        &["apply-config", "--mode", "no-reboot", "-f", &file],
    ));
}

#[test]
fn network_documents_are_applied_changed_and_removed_live() {
    let namespace = NetworkNamespace::new("netdocs");
    for (end, peer) in [("tn0", "tn1"), ("tn2", "tn3")] {
        namespace.run(&[
            "ip", "link", "add", end, "type", "veth", "peer", "name", peer,
        ]);
        namespace.run(&["ip", "link", "set", peer, "up"]);
    }
    let original_mtu = link_field(&namespace, "tn0", "mtu");
    // This kernel may lack dummy and VLAN links (CONFIG_DUMMY, CONFIG_VLAN_8021Q); networkd
    // then reports the link and applies the rest.
    let supported = |kind: &[&str]| {
        let made = namespace
            .command("ip")
            .args(["link", "add"])
            .args(kind)
            .output()
            .unwrap()
            .status
            .success();
        if made {
            namespace.run(&["ip", "link", "del", "probe54"]);
        }
        made
    };
    let dummy_supported = supported(&["probe54", "type", "dummy"]);
    let vlan_supported = supported(&["link", "tn1", "name", "probe54", "type", "vlan", "id", "5"]);

    let cluster = Cluster::generate(54);
    let node = Node::start_in(
        &namespace,
        NODE.parse::<Ipv4Addr>().unwrap(),
        cluster.dir.path().join("node"),
        Some(&config_with(&cluster, &format!("{LINK_1400}{OTHERS}"))),
        &["--manage-network"],
    );
    eventually("the node in its namespace", || {
        talosctl(&namespace, &cluster, &["version"])
            .status
            .success()
    });

    // LinkConfig: MTU, address and route on an existing link, brought up.
    eventually("LinkConfig applied to tn0", || {
        link_field(&namespace, "tn0", "mtu") == 1400
            && addresses(&namespace, "tn0").contains(&"10.54.0.2/24".to_string())
    });
    let flags = link_field(&namespace, "tn0", "flags");
    assert!(
        flags.as_array().unwrap().contains(&Value::from("UP")),
        "{flags}"
    );
    let eventually_route = || {
        eventually("the LinkConfig route", || {
            ip_json(&namespace, &["route", "show", "10.55.0.0/24"])
                .iter()
                .any(|r| r["gateway"] == "10.54.0.1" && r["dev"] == "tn0")
        })
    };
    eventually_route();
    // BridgeConfig: the bridge, its member and its address.
    eventually("BridgeConfig applied", || {
        link_field(&namespace, "tn2", "master") == "br54"
            && addresses(&namespace, "br54").contains(&"10.56.0.2/24".to_string())
    });
    // BlackholeRouteConfig.
    eventually("the blackhole route", || {
        ip_json(&namespace, &["route", "show", "type", "blackhole"])
            .iter()
            .any(|r| r["dst"] == "10.58.0.0/24")
    });
    // DummyLinkConfig, where the kernel has dummy links.
    if dummy_supported {
        eventually("the dummy link and its address", || {
            addresses(&namespace, "dummy54").contains(&"10.57.0.1/32".to_string())
        });
    } else {
        assert_eq!(link_field(&namespace, "dummy54", "ifname"), Value::Null);
        eprintln!("this kernel has no dummy links: DummyLinkConfig checked as far as the refusal");
    }
    // VLANConfig, where the kernel has VLANs.
    if vlan_supported {
        eventually("the VLAN and its address", || {
            ip_json(&namespace, &["-d", "link", "show", "dev", "tn0.54"])
                .first()
                .is_some_and(|l| l["linkinfo"]["info_data"]["id"] == 54)
                && addresses(&namespace, "tn0.54").contains(&"10.59.0.2/24".to_string())
        });
    } else {
        assert_eq!(link_field(&namespace, "tn0.54", "ifname"), Value::Null);
        eprintln!("this kernel has no VLAN links: VLANConfig checked as far as the refusal");
    }
    // StaticHostConfig and ResolverConfig: the files networkd writes.
    let hosts_file = node.state_dir.join("system/etc/hosts");
    let resolv_file = node.state_dir.join("system/resolved/resolv.conf");
    eventually("hosts and resolv.conf written", || {
        let hosts = std::fs::read_to_string(&hosts_file).unwrap_or_default();
        let resolv = std::fs::read_to_string(&resolv_file).unwrap_or_default();
        hosts
            .lines()
            .any(|l| l.starts_with("10.54.0.9") && l.contains("db54"))
            && resolv.contains("nameserver 10.54.0.53")
            && resolv.contains("docs.example")
    });

    // A changed LinkConfig applies live; the documents left out take away what they made.
    apply(
        &namespace,
        &cluster,
        "changed.yaml",
        &config_with(&cluster, LINK_1300),
    );
    eventually("the new MTU and address, without the old address", || {
        let shown = addresses(&namespace, "tn0");
        link_field(&namespace, "tn0", "mtu") == 1300
            && shown.contains(&"10.54.0.3/24".to_string())
            && !shown.contains(&"10.54.0.2/24".to_string())
    });
    eventually_route();
    eventually(
        "the bridge, the blackhole route and the hosts entry gone",
        || {
            let hosts = std::fs::read_to_string(&hosts_file).unwrap_or_default();
            link_field(&namespace, "br54", "ifname") == Value::Null
                && link_field(&namespace, "tn2", "master") == Value::Null
                && ip_json(&namespace, &["route", "show", "type", "blackhole"]).is_empty()
                && !hosts.contains("db54")
        },
    );
    let resolv = std::fs::read_to_string(&resolv_file).unwrap();
    assert!(!resolv.contains("10.54.0.53"), "{resolv}");

    // Without the LinkConfig the MTU is restored and its address and route are removed.
    apply(
        &namespace,
        &cluster,
        "none.yaml",
        &config_with(&cluster, ""),
    );
    eventually("tn0 as it was", || {
        link_field(&namespace, "tn0", "mtu") == original_mtu
            && addresses(&namespace, "tn0").is_empty()
            && ip_json(&namespace, &["route", "show", "10.55.0.0/24"]).is_empty()
    });
    drop(node);
}
