//! A shared VIP on three dev-mode control planes, each in a network namespace of its own
//! (`vip-n2/3/4-PID`) with `eth0` a veth whose peer sits on a bridge in `vip-br-PID` (the test
//! talks to the nodes from there, on 10.85.0.1). Nodes 2 and 3 ask for the VIP with a
//! `Layer2VIPConfig`, node 4 with `machine.network.interfaces[].vip`; a worker (`vip-w5-PID`)
//! has a `Layer2VIPConfig` too. Nobody holds the VIP before etcd runs; after bootstrap exactly
//! one control plane does (`ip -j addr`), it shows as an address, an operator address spec and
//! an operator spec, and its gratuitous ARP crosses the bridge (tcpdump). The holder stopped
//! gracefully gives it up and another takes it at once; the holder killed (every process of its
//! namespace SIGKILLed, its link gone) is replaced once its 60 s etcd lease runs out. A sampler
//! checks every 100 ms that no two nodes hold the VIP and that the worker never does. Bad VIPs
//! are refused by validation naming the field. Prints the failover times.
//! Loopback block 85 is reserved for it; all its traffic stays inside its namespaces.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{NetworkNamespace, Node, binary, failure, success};

const VIP: &str = "10.85.0.50";
const LAYER2_VIP: &str =
    "apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 10.85.0.50\nlink: eth0\n";
const INTERFACE_VIP: &str = "  network:\n    interfaces:\n      - interface: eth0\n        vip:\n          ip: 10.85.0.50\n";
/// The election lease's TTL (upstream's etcd session default).
const LEASE_TTL: Duration = Duration::from_secs(60);

fn node_address(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 85, 0, n)
}

/// The namespace of node `n` (`vip-<prefix><n>-PID`), its `eth0` on the bridge.
fn attach(bridge: &NetworkNamespace, prefix: &str, n: u8) -> NetworkNamespace {
    let namespace = NetworkNamespace::named(format!("vip-{prefix}{n}-{}", std::process::id()));
    let peer = format!("v{n}");
    bridge.run(&[
        "ip",
        "link",
        "add",
        &peer,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &namespace.name,
    ]);
    bridge.run(&["ip", "link", "set", &peer, "master", "br0", "up"]);
    namespace.run(&[
        "ip",
        "addr",
        "add",
        &format!("{}/24", node_address(n)),
        "dev",
        "eth0",
    ]);
    namespace.run(&["ip", "link", "set", "eth0", "up"]);
    namespace
}

/// Whether `namespace`'s `eth0` has the VIP.
fn holds(namespace: &str) -> bool {
    let output = std::process::Command::new("ip")
        .args(["-n", namespace, "-j", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    let links: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
    links.iter().any(|link| {
        link["addr_info"]
            .as_array()
            .is_some_and(|infos| infos.iter().any(|i| i["local"] == VIP))
    })
}

/// Samples every 100 ms which of the live namespaces hold the VIP.
struct Sampler {
    live: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(usize, Vec<String>)>>,
}

impl Sampler {
    fn start(live: Vec<String>, never: String) -> Sampler {
        let live = Arc::new(Mutex::new(live));
        let stop = Arc::new(AtomicBool::new(false));
        let (live_in, stop_in) = (Arc::clone(&live), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let (mut samples, mut problems) = (0, Vec::new());
            while !stop_in.load(Ordering::SeqCst) {
                let names = live_in.lock().unwrap().clone();
                let holders: Vec<&String> = names.iter().filter(|n| holds(n)).collect();
                samples += 1;
                if holders.len() > 1 {
                    problems.push(format!("held by {holders:?} at once"));
                }
                if holders.contains(&&never) {
                    problems.push(format!("held by the worker {never}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (samples, problems)
        });
        Sampler {
            live,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling `namespace` (its node is gone).
    fn forget(&self, namespace: &str) {
        self.live.lock().unwrap().retain(|n| n != namespace);
    }

    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A process of the test's own, killed by PID when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Lan {
    bridge: NetworkNamespace,
    talosconfig: std::path::PathBuf,
}

impl Lan {
    fn talosctl(&self, node: Ipv4Addr, args: &[&str]) -> Output {
        let node = node.to_string();
        self.bridge
            .command(binary("talosctl"))
            .arg("--talosconfig")
            .arg(&self.talosconfig)
            .args(["-e", &node, "-n", &node])
            .args(args)
            .output()
            .unwrap()
    }

    fn answers(&self, node: Ipv4Addr) -> bool {
        self.talosctl(node, &["version"]).status.success()
    }
}

/// Waits up to `limit` for `attempt`; how long it took.
fn within(limit: Duration, what: &str, mut attempt: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !attempt() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// The one holder among `namespaces`, if exactly one holds the VIP.
fn single_holder(namespaces: &[&NetworkNamespace]) -> Option<usize> {
    let holders: Vec<usize> = (0..namespaces.len())
        .filter(|&i| holds(&namespaces[i].name))
        .collect();
    (holders.len() == 1).then(|| holders[0])
}

fn mac_of_eth0(namespace: &NetworkNamespace) -> String {
    let links: Vec<Value> =
        serde_json::from_str(&namespace.run(&["ip", "-j", "link", "show", "eth0"])).unwrap();
    links[0]["address"].as_str().unwrap().to_string()
}

/// The PID of `node`'s networkd (a child of machined, found by its state directory).
fn networkd_pid(node: &Node) -> Option<u32> {
    let marker = node.state_dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let mut args = cmdline.split(|b| *b == 0).map(String::from_utf8_lossy);
            let program = args.next()?;
            (program.ends_with("/networkd") && args.any(|a| a == marker)).then_some(pid)
        })
}

/// machined's lines about the VIP campaign of `node`, for failure messages.
fn campaign_log(node: &Node) -> String {
    let log = std::fs::read_to_string(node.state_dir.join("machined.log")).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("shared IP") || l.contains("campaign") || l.contains("leader"))
        .collect();
    format!("--- {} ---\n{}", node.address, lines.join("\n"))
}

#[test]
fn a_shared_vip_is_held_by_one_control_plane_and_fails_over() {
    let bridge = NetworkNamespace::named(format!("vip-br-{}", std::process::id()));
    bridge.run(&["ip", "link", "add", "br0", "type", "bridge"]);
    bridge.run(&["ip", "addr", "add", "10.85.0.1/24", "dev", "br0"]);
    bridge.run(&["ip", "link", "set", "br0", "up"]);
    let namespaces: Vec<NetworkNamespace> = (2..=4).map(|n| attach(&bridge, "n", n)).collect();
    let worker_namespace = attach(&bridge, "w", 5);
    let dir = tempfile::tempdir().unwrap();
    success(
        std::process::Command::new(binary("talosctl"))
            .args(["gen", "config", "vip", "https://10.85.0.2:6443"])
            // Plain YAML: the configs are edited as text below.
            .args(["--with-docs=false", "--with-examples=false", "-o"])
            .arg(dir.path())
            .output()
            .unwrap(),
    );
    let lan = Lan {
        bridge,
        talosconfig: dir.path().join("talosconfig"),
    };
    let controlplane = std::fs::read_to_string(dir.path().join("controlplane.yaml")).unwrap();
    let worker = std::fs::read_to_string(dir.path().join("worker.yaml")).unwrap();
    assert!(controlplane.contains("\n  network: {}\n"), "{controlplane}");
    let with_document = |config: &str| format!("{}\n---\n{LAYER2_VIP}", config.trim_end());
    let configs = [
        with_document(&controlplane),
        with_document(&controlplane),
        controlplane.replacen("\n  network: {}\n", &format!("\n{INTERFACE_VIP}"), 1),
    ];

    // The ARP capture on the bridge, from before anything can announce.
    let capture_file = dir.path().join("arp.txt");
    let capture = Spawned(
        lan.bridge
            .command("tcpdump")
            .args(["-i", "br0", "-n", "-t", "-l", "-e", "arp"])
            .stdout(std::fs::File::create(&capture_file).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump (scripts/setup.sh installs it)"),
    );

    let mut nodes: Vec<Node> = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        let n = u8::try_from(i).unwrap() + 2;
        nodes.push(Node::start_in(
            &namespaces[i],
            node_address(n),
            dir.path().join(format!("node-{n}")),
            Some(config),
            &["--manage-network"],
        ));
    }
    let worker_node = Node::start_in(
        &worker_namespace,
        node_address(5),
        dir.path().join("node-5"),
        Some(&with_document(&worker)),
        &["--manage-network"],
    );
    for node in &nodes {
        within(Duration::from_secs(60), "the node to answer", || {
            lan.answers(node.address)
        });
    }
    let names: Vec<&NetworkNamespace> = namespaces.iter().collect();
    let mut sampler_names: Vec<String> = names.iter().map(|n| n.name.clone()).collect();
    sampler_names.push(worker_namespace.name.clone());
    let sampler = Sampler::start(sampler_names, worker_namespace.name.clone());

    // Not before etcd runs.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        names.iter().all(|n| !holds(&n.name)),
        "a VIP before etcd runs"
    );
    success(lan.talosctl(nodes[0].address, &["bootstrap"]));
    let elected = within(Duration::from_secs(120), "one holder of the VIP", || {
        single_holder(&names).is_some()
    });
    println!("VIP held {} ms after bootstrap", elected.as_millis());
    // The others join etcd as learners and are promoted: wait for three voters, so that a
    // member may go.
    within(
        Duration::from_secs(120),
        "three voting etcd members",
        || {
            let output = lan.talosctl(nodes[0].address, &["etcd", "members"]);
            output.status.success()
                && String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .skip(1)
                    .filter(|l| l.trim_end().ends_with("false"))
                    .count()
                    == 3
        },
    );
    let holder = single_holder(&names).unwrap();
    let holder_address = nodes[holder].address;

    // The address as the API shows it.
    let addresses = success(lan.talosctl(holder_address, &["get", "addresses"]));
    assert!(addresses.contains("eth0/10.85.0.50/32"), "{addresses}");
    let spec = success(lan.talosctl(
        holder_address,
        &["get", "addressspecs", "eth0/10.85.0.50/32", "-o", "yaml"],
    ));
    for field in [
        "layer: operator",
        "announceWithARP: true",
        "flags: permanent",
    ] {
        assert!(spec.contains(field), "{field}: {spec}");
    }
    let other = nodes[(holder + 1) % 3].address;
    let operators = success(lan.talosctl(other, &["get", "operatorspecs", "-o", "yaml"]));
    assert!(
        operators.contains("id: vip/eth0/10.85.0.50") && operators.contains("ip: 10.85.0.50"),
        "{operators}"
    );
    let not_held = success(lan.talosctl(other, &["get", "addressspecs"]));
    assert!(!not_held.contains("10.85.0.50"), "{not_held}");

    // The gratuitous ARP from the holder's link crossed the bridge.
    let mac = mac_of_eth0(names[holder]);
    let announced = |line: &str| {
        line.starts_with(&format!("{mac} > ff:ff:ff:ff:ff:ff"))
            && (line.contains("Announcement 10.85.0.50")
                || (line.contains("Request who-has 10.85.0.50 ")
                    && line.contains("tell 10.85.0.50,")))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&capture_file)
        .unwrap_or_default()
        .lines()
        .any(announced)
    {
        assert!(
            Instant::now() < deadline,
            "no gratuitous ARP from {mac} on the bridge:\n{}\n--- networkd ---\n{}",
            std::fs::read_to_string(&capture_file).unwrap_or_default(),
            std::fs::read_to_string(nodes[holder].state_dir.join("var/log/networkd.log"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The worker has its operator spec, as upstream, but never campaigns (no etcd).
    within(Duration::from_secs(60), "the worker to answer", || {
        lan.answers(worker_node.address)
    });
    let worker_operators = success(lan.talosctl(worker_node.address, &["get", "operatorspecs"]));
    assert!(
        worker_operators.contains("vip/eth0/10.85.0.50"),
        "{worker_operators}"
    );

    // networkd killed on the holder: the supervisor restarts it, the restarted networkd drops
    // the address it no longer has an operator for, and the VIP operator hands it again.
    let networkd = networkd_pid(&nodes[holder]).expect("the holder's networkd");
    success(
        std::process::Command::new("kill")
            .args(["-9", &networkd.to_string()])
            .output()
            .unwrap(),
    );
    within(
        Duration::from_secs(30),
        "a new networkd on the holder",
        || networkd_pid(&nodes[holder]).is_some_and(|pid| pid != networkd),
    );
    let back = within(
        Duration::from_secs(30),
        "the VIP back on the holder",
        || single_holder(&names) == Some(holder),
    );
    println!(
        "the holder's networkd restarted: the VIP held again {} ms after the new networkd ran",
        back.as_millis()
    );

    // Stopped gracefully: the holder removes the address and gives its key up; another node
    // takes over without waiting for the lease.
    let stopped = Instant::now();
    let pid = nodes[holder].machined_pid().unwrap().to_string();
    success(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .output()
            .unwrap(),
    );
    let rest: Vec<&NetworkNamespace> = (0..3).filter(|&i| i != holder).map(|i| names[i]).collect();
    let deadline = Instant::now() + LEASE_TTL;
    while single_holder(&rest).is_none() {
        assert!(
            Instant::now() < deadline,
            "no new holder after a graceful stop:\n{}",
            nodes
                .iter()
                .map(campaign_log)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let graceful = stopped.elapsed();
    nodes[holder].stop();
    println!(
        "failover after the holder was stopped gracefully (SIGTERM → VIP on another node): {} ms; \
         the holder exited after {} ms",
        graceful.as_millis(),
        stopped.elapsed().as_millis()
    );
    assert!(!holds(&names[holder].name), "the stopped node kept the VIP");
    assert!(
        graceful < LEASE_TTL / 2,
        "the key was not given up: {graceful:?}"
    );

    // The stopped node comes back as a campaigner.
    nodes[holder].boot();
    let returning = nodes[holder].address;
    within(Duration::from_secs(90), "the returning node's etcd", || {
        lan.talosctl(returning, &["etcd", "status"])
            .status
            .success()
    });
    std::thread::sleep(Duration::from_secs(3));
    let holder = single_holder(&names).expect("one holder after the return");

    // Killed: every process of its namespace SIGKILLed and its link gone. Another node takes
    // over once the lease runs out.
    sampler.forget(&names[holder].name);
    let listed = std::process::Command::new("ip")
        .args(["netns", "pids", &names[holder].name])
        .output()
        .unwrap();
    let killed = Instant::now();
    for pid in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
    names[holder].run(&["ip", "link", "del", "eth0"]);
    let rest: Vec<&NetworkNamespace> = (0..3).filter(|&i| i != holder).map(|i| names[i]).collect();
    within(
        LEASE_TTL + Duration::from_secs(30),
        "a new holder after the holder was killed",
        || single_holder(&rest).is_some(),
    );
    println!(
        "failover after the holder was killed (SIGKILL → VIP on another node): {} ms (lease TTL {} s)",
        killed.elapsed().as_millis(),
        LEASE_TTL.as_secs()
    );

    // Bad VIPs are refused by validation, naming the field.
    let survivor = nodes[(holder + 1) % 3].address;
    let cases = [
        (
            with_document(&controlplane).replace("name: 10.85.0.50", "name: 10.85.0.0/24"),
            "Layer2VIPConfig \"10.85.0.0/24\".name",
        ),
        (
            controlplane.replacen(
                "\n  network: {}\n",
                &format!(
                    "\n{}",
                    INTERFACE_VIP.replace("ip: 10.85.0.50", "ip: not-an-ip")
                ),
                1,
            ),
            "machine.network.interfaces[0].vip.ip",
        ),
        (
            worker.replacen("\n  network: {}\n", &format!("\n{INTERFACE_VIP}"), 1),
            "machine.network.interfaces[0].vip",
        ),
    ];
    for (i, (config, field)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&file, config).unwrap();
        let file = file.to_string_lossy().into_owned();
        let refused = failure(
            std::process::Command::new(binary("talosctl"))
                .args(["validate", "-m", "metal", "-c", &file])
                .output()
                .unwrap(),
        );
        assert!(refused.contains(field), "{field}: {refused}");
    }
    let persisted = std::fs::read_to_string(dir.path().join(format!(
        "node-{}/system/state/config.yaml",
        survivor.octets()[3]
    )))
    .unwrap();
    let bad = dir.path().join("bad-0.yaml").to_string_lossy().into_owned();
    let refused = failure(lan.talosctl(
        survivor,
        &["apply-config", "--mode", "no-reboot", "-f", &bad],
    ));
    assert!(
        refused.contains("Layer2VIPConfig \"10.85.0.0/24\".name"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(format!(
            "node-{}/system/state/config.yaml",
            survivor.octets()[3]
        )),)
        .unwrap(),
        persisted
    );

    // A VIP moved through a cloud API is accepted, reported as not applied here, and has no
    // operator.
    let hcloud = controlplane.replacen(
        "\n  network: {}\n",
        &format!("\n{INTERFACE_VIP}          hcloud:\n            apiToken: not-a-real-token\n"),
        1,
    );
    let file = dir.path().join("hcloud.yaml");
    std::fs::write(&file, &hcloud).unwrap();
    let file = file.to_string_lossy().into_owned();
    let applied = lan.talosctl(
        survivor,
        &["apply-config", "--mode", "no-reboot", "-f", &file],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&applied.stdout),
        String::from_utf8_lossy(&applied.stderr)
    );
    success(applied);
    assert!(
        said.contains("machine.network.interfaces[0].vip: a VIP moved through a cloud provider's API is not supported here"),
        "{said}"
    );
    within(Duration::from_secs(30), "the operator spec gone", || {
        let listed = success(lan.talosctl(survivor, &["get", "operatorspecs"]));
        !listed.contains("vip/eth0")
    });

    let (samples, problems) = sampler.finish();
    println!("{samples} samples of the VIP's holders");
    assert!(samples > 100, "{samples} samples");
    assert!(problems.is_empty(), "{problems:?}");
    drop(capture);
    drop(worker_node);
    drop(nodes);
}
