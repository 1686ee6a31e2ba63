//! The network of a node that owns its network namespace (`--manage-network`): networkd applies
//! `machine.network`, changes apply live, and the network resources answer `talosctl get`.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::process::Output;

use tests::{Cluster, NetworkNamespace, Node, binary, eventually, success};

/// The control-plane config with `tn0` addressed `address` and a route through 10.77.0.1.
fn config_with_address(cluster: &Cluster, address: &str) -> String {
    let mut config = machineconfig::Config::from_yaml(&cluster.controlplane_config()).unwrap();
    let machine = config.v1alpha1.as_mut().unwrap().machine.as_mut().unwrap();
    let network: machineconfig::v1alpha1::NetworkConfig = serde_norway::from_str(&format!(
        "interfaces:\n  - interface: tn0\n    addresses: [{address}]\n    routes:\n      \
         - network: 10.78.0.0/24\n        gateway: 10.77.0.1\n"
    ))
    .unwrap();
    machine.network = Some(network);
    config.to_yaml().unwrap()
}

fn talosctl(namespace: &NetworkNamespace, cluster: &Cluster, args: &[&str]) -> Output {
    namespace
        .command(binary("talosctl"))
        .arg("--talosconfig")
        .arg(cluster.talosconfig())
        .args(["-e", "127.36.0.2", "-n", "127.36.0.2"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn networkd_applies_the_network_config_live_and_talosctl_get_shows_it() {
    let namespace = NetworkNamespace::new("network");
    namespace.run(&[
        "ip", "link", "add", "tn0", "type", "veth", "peer", "name", "tn1",
    ]);
    namespace.run(&["ip", "link", "set", "tn1", "up"]);
    let cluster = Cluster::generate(36);
    let config = config_with_address(&cluster, "10.77.0.2/24");
    let node = Node::start_in(
        &namespace,
        Ipv4Addr::new(127, 36, 0, 2),
        cluster.dir.path().join("node"),
        Some(&config),
        &["--manage-network"],
    );
    eventually("the node in its namespace", || {
        talosctl(&namespace, &cluster, &["version"])
            .status
            .success()
    });

    eventually("networkd to add the address", || {
        namespace
            .run(&["ip", "-o", "addr", "show", "dev", "tn0"])
            .contains("10.77.0.2/24")
    });
    let routes = namespace.run(&["ip", "route"]);
    assert!(
        routes.contains("10.78.0.0/24 via 10.77.0.1 dev tn0"),
        "{routes}"
    );

    let addresses = success(talosctl(&namespace, &cluster, &["get", "addresses"]));
    let header = addresses.lines().next().unwrap();
    assert!(
        header.contains("ADDRESS") && header.contains("LINK"),
        "{addresses}"
    );
    assert!(
        addresses
            .lines()
            .any(|l| l.contains("tn0/10.77.0.2/24") && l.contains("AddressStatus")),
        "{addresses}"
    );
    let route = success(talosctl(
        &namespace,
        &cluster,
        &["get", "routes", "-o", "yaml"],
    ));
    assert!(
        route.contains("dst: 10.78.0.0/24") && route.contains("gateway: 10.77.0.1"),
        "{route}"
    );
    // The address is up; the namespace has no default route.
    let status = success(talosctl(
        &namespace,
        &cluster,
        &["get", "netstatus", "-o", "yaml"],
    ));
    assert!(
        status.contains("id: status")
            && status.contains("addressReady: true")
            && status.contains("connectivityReady: false"),
        "{status}"
    );
    // A control plane publishes what its etcd member runs with.
    eventually("the etcd spec", || {
        let spec = talosctl(&namespace, &cluster, &["get", "etcdspec", "-o", "yaml"]);
        String::from_utf8_lossy(&spec.stdout).contains("- 127.36.0.2")
    });
    let definitions = success(talosctl(&namespace, &cluster, &["get", "rd"]));
    assert!(
        definitions.contains("addressstatuses.net.talos.dev"),
        "{definitions}"
    );

    // A changed config applies without a reboot; what left the config is removed.
    let changed = cluster.dir.path().join("changed.yaml");
    std::fs::write(&changed, config_with_address(&cluster, "10.77.0.3/24")).unwrap();
    let changed = changed.to_string_lossy().into_owned();
    success(talosctl(
        &namespace,
        &cluster,
        &["apply-config", "--mode", "no-reboot", "-f", &changed],
    ));
    eventually("the new address, without the old one", || {
        let shown = namespace.run(&["ip", "-o", "addr", "show", "dev", "tn0"]);
        shown.contains("10.77.0.3/24") && !shown.contains("10.77.0.2/24")
    });
    let json = success(talosctl(
        &namespace,
        &cluster,
        &["get", "addresses", "-o", "json"],
    ));
    assert!(json.contains("\"address\": \"10.77.0.3/24\""), "{json}");
    drop(node);
}
