//! `RoutingRuleConfig` and `BlackholeRouteConfig` documents applied by networkd on a node that
//! owns its network namespace: the rules show in `ip rule` (IPv4 and IPv6, with protocol
//! `static`) and the route in `ip route show type blackhole`, a changed document applies live,
//! a removed one takes its rules away, and a bad document is refused with the kernel state and
//! the config as they were. Loopback block 127.82.0.0/16 (the node is 127.82.0.3 inside the
//! namespace).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::process::Output;

use serde_json::Value;
use tests::{Cluster, NetworkNamespace, Node, binary, eventually, failure, success};

const BLOCK: u8 = 82;
const NODE: &str = "127.82.0.3";

const RULES: &str = "apiVersion: v1alpha1
kind: RoutingRuleConfig
name: \"1200\"
src: 10.82.0.0/24
dst: 10.83.0.0/16
table: 120
iifName: tr0
fwMark: 16
fwMask: 255
---
apiVersion: v1alpha1
kind: RoutingRuleConfig
name: \"1300\"
dst: fd82::/16
action: prohibit
---
apiVersion: v1alpha1
kind: RoutingRuleConfig
name: \"1400\"
table: 140
---
apiVersion: v1alpha1
kind: BlackholeRouteConfig
name: 10.84.0.0/24
metric: 7
";

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

fn apply(namespace: &NetworkNamespace, cluster: &Cluster, documents: &str) -> Output {
    let config = format!(
        "{}\n---\n{documents}",
        cluster.controlplane_config().trim_end()
    );
    let file = cluster.dir.path().join("apply.yaml");
    std::fs::write(&file, config).unwrap();
    let file = file.to_string_lossy().into_owned();
    talosctl(
        namespace,
        cluster,
        &["apply-config", "--mode", "no-reboot", "-f", &file],
    )
}

/// `ip -j ARGS` in the namespace, decoded.
fn ip_json(namespace: &NetworkNamespace, args: &[&str]) -> Vec<Value> {
    let output = namespace
        .command("ip")
        .arg("-j")
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap_or_default()
}

/// The rules of `family` (`-4`, `-6`) at `priority`.
fn rules_at(namespace: &NetworkNamespace, family: &str, priority: u64) -> Vec<Value> {
    ip_json(namespace, &[family, "rule", "show"])
        .into_iter()
        .filter(|rule| rule["priority"] == priority)
        .collect()
}

fn blackholes(namespace: &NetworkNamespace) -> Vec<(String, u64)> {
    ip_json(namespace, &["route", "show", "type", "blackhole"])
        .iter()
        .map(|r| {
            (
                r["dst"].as_str().unwrap_or("").to_string(),
                r["metric"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn routing_rules_and_blackhole_routes_are_applied_changed_and_removed_live() {
    let namespace = NetworkNamespace::new("rules");
    namespace.run(&[
        "ip", "link", "add", "tr0", "type", "veth", "peer", "name", "tr1",
    ]);
    let cluster = Cluster::generate(BLOCK);
    let node = Node::start_in(
        &namespace,
        NODE.parse::<Ipv4Addr>().unwrap(),
        cluster.dir.path().join("node"),
        Some(&format!(
            "{}\n---\n{RULES}",
            cluster.controlplane_config().trim_end()
        )),
        &["--manage-network"],
    );
    eventually("the node in its namespace", || {
        talosctl(&namespace, &cluster, &["version"])
            .status
            .success()
    });

    eventually("rule 1200", || !rules_at(&namespace, "-4", 1200).is_empty());
    let rule = &rules_at(&namespace, "-4", 1200)[0];
    for (field, value) in [
        ("src", "10.82.0.0"),
        ("dst", "10.83.0.0"),
        ("iif", "tr0"),
        ("fwmark", "0x10"),
        ("fwmask", "0xff"),
        ("table", "120"),
        ("protocol", "static"),
    ] {
        assert_eq!(rule[field], value, "{field} of {rule}");
    }
    assert_eq!(
        (rule["srclen"].as_u64(), rule["dstlen"].as_u64()),
        (Some(24), Some(16))
    );
    eventually("rule 1300 (IPv6 only) and 1400 (both families)", || {
        let prohibit = rules_at(&namespace, "-6", 1300);
        prohibit.len() == 1
            && prohibit[0]["action"] == "prohibit"
            && prohibit[0]["dst"] == "fd82::"
            && rules_at(&namespace, "-4", 1300).is_empty()
            && rules_at(&namespace, "-4", 1400)
                .iter()
                .any(|r| r["table"] == "140")
            && rules_at(&namespace, "-6", 1400)
                .iter()
                .any(|r| r["table"] == "140")
    });
    eventually("the blackhole route", || {
        blackholes(&namespace).contains(&("10.84.0.0/24".to_string(), 7))
    });

    // Changed live: rule 1200 looks another table up, 1400 is gone, the route's metric moves.
    let changed = RULES
        .replace("table: 120", "table: 121")
        .replace("metric: 7", "metric: 9")
        .replace(
            "---\napiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: \"1400\"\ntable: 140\n",
            "",
        );
    assert!(!changed.contains("1400"), "{changed}");
    let applied = apply(&namespace, &cluster, &changed);
    let warnings = String::from_utf8_lossy(&applied.stderr).into_owned();
    success(applied);
    assert!(
        !warnings.contains("RoutingRuleConfig"),
        "reported as not applied: {warnings}"
    );
    eventually("the changed rule and route", || {
        let rule = rules_at(&namespace, "-4", 1200);
        rule.len() == 1
            && rule[0]["table"] == "121"
            && rules_at(&namespace, "-4", 1400).is_empty()
            && rules_at(&namespace, "-6", 1400).is_empty()
            && blackholes(&namespace) == [("10.84.0.0/24".to_string(), 9)]
    });

    // Bad documents are refused; nothing changes.
    let persisted = node.persisted_config();
    for (bad, path, message) in [
        (
            changed.replace("dst: 10.83.0.0/16", "dst: fd83::/16"),
            "RoutingRuleConfig \"1200\".dst",
            "same address family",
        ),
        (
            changed.replace("name: \"1300\"", "name: \"32766\""),
            "RoutingRuleConfig \"32766\".name",
            "reserved",
        ),
        (
            changed
                .replace("table: 121\n", "")
                .replace("fwMark: 16\n", "fwMark: 16\naction: unicast\n"),
            "RoutingRuleConfig \"1200\".table",
            "table is required",
        ),
        (
            changed.replace("name: 10.84.0.0/24", "name: 10.84.0.0/99"),
            "BlackholeRouteConfig \"10.84.0.0/99\".name",
            "CIDR",
        ),
    ] {
        let error = failure(apply(&namespace, &cluster, &bad));
        assert!(
            error.contains(path) && error.contains(message),
            "{path}: {error}"
        );
    }
    assert_eq!(node.persisted_config(), persisted);
    let rule = rules_at(&namespace, "-4", 1200);
    assert_eq!((rule.len(), &rule[0]["table"]), (1, &Value::from("121")));

    // Removed: the rules and the route go, the kernel's own rules stay.
    success(apply(&namespace, &cluster, ""));
    eventually("the rules and the route gone", || {
        rules_at(&namespace, "-4", 1200).is_empty()
            && rules_at(&namespace, "-6", 1300).is_empty()
            && blackholes(&namespace).is_empty()
    });
    assert_eq!(rules_at(&namespace, "-4", 32766).len(), 1);
    drop(node);
}
