//! The network of a node that owns its network namespace (`--manage-network`): networkd applies
//! `machine.network`, changes apply live, the network resources answer `talosctl get`, and
//! `talosctl get -w` follows addresses changed in the kernel.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::process::{Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

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

/// Reads `child`'s stdout lines on a thread, each with when it arrived.
fn timed_lines(child: &mut std::process::Child) -> Receiver<(Instant, String)> {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    receiver
}

/// The first line from `lines` within 10 s that starts with `mark` and names `id`.
fn line_of(lines: &Receiver<(Instant, String)>, mark: &str, id: &str) -> (Instant, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, line) = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {mark:?} line for {id} within 10 s"));
        if line.starts_with(mark) && line.contains(id) {
            return (at, line);
        }
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// The network status resources live in the state and follow the kernel: `talosctl get -w
/// addresses` (through apid) shows an address added and removed by hand, and how long that
/// took is measured.
#[test]
fn talosctl_get_watch_follows_addresses_added_and_removed_in_the_kernel() {
    const ROUNDS: usize = 100;
    let namespace = NetworkNamespace::new("netwatch");
    namespace.run(&[
        "ip", "link", "add", "tn0", "type", "veth", "peer", "name", "tn1",
    ]);
    namespace.run(&["ip", "link", "set", "tn1", "up"]);
    let cluster = Cluster::generate(93);
    let config = config_with_address(&cluster, "10.77.0.2/24");
    let node = Node::start_in(
        &namespace,
        Ipv4Addr::new(127, 93, 0, 2),
        cluster.dir.path().join("node"),
        Some(&config),
        &["--manage-network"],
    );
    let talosctl = |args: &[&str]| {
        let mut command = namespace.command(binary("talosctl"));
        command
            .arg("--talosconfig")
            .arg(cluster.talosconfig())
            .args(["-e", "127.93.0.2", "-n", "127.93.0.2"])
            .args(args);
        command
    };
    eventually("the node's address as a resource", || {
        let listed = talosctl(&["get", "addresses"]).output().unwrap();
        String::from_utf8_lossy(&listed.stdout).contains("tn0/10.77.0.2/24")
    });

    let mut watcher = talosctl(&["get", "addresses", "-w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = timed_lines(&mut watcher);
    line_of(&lines, "+", "tn0/10.77.0.2/24");

    // networkd owns tn0's addresses; tn1's are nobody's, so they stay as the test sets them.
    // One `ip -batch -` takes the changes line by line, so no process start is timed.
    let mut ip = namespace
        .command("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut commands = ip.stdin.take().unwrap();
    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        let address = format!("10.93.{}.{}/32", round / 200, round % 200 + 1);
        let id = format!("tn1/{address}");
        for (verb, mark) in [("add", "+"), ("del", "-")] {
            let sent = Instant::now();
            writeln!(commands, "addr {verb} {address} dev tn1").unwrap();
            commands.flush().unwrap();
            let (seen, line) = line_of(&lines, mark, &id);
            assert!(line.contains("AddressStatus"), "{line}");
            latencies.push(seen.saturating_duration_since(sent));
        }
    }
    drop(commands);
    assert!(ip.wait().unwrap().success(), "ip -batch failed");
    let _ = watcher.kill();
    let _ = watcher.wait();

    // The node addresses and the network status are in the state too.
    let current = talosctl(&["get", "nodeaddresses", "current", "-o", "yaml"])
        .output()
        .unwrap();
    let current = success(current);
    assert!(
        current.contains("- 10.77.0.2/24") && current.contains("network.NodeAddressController"),
        "{current}"
    );

    latencies.sort();
    println!(
        "address change (ip -batch) -> talosctl get -w line through apid, {} changes: \
         p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        latencies[latencies.len() - 1],
    );
    assert!(
        percentile(&latencies, 99) < Duration::from_secs(1),
        "{latencies:?}"
    );
    drop(node);
}
