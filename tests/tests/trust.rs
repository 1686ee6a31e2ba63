//! trustd and certificate rotation: workers join through a control plane's trustd, wrong tokens
//! are refused, a worker waits for trustd, and certificates rotate under open streams.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{Cluster, Node, NodeKind, binary, eventually, success};

fn ip(node: &Node) -> String {
    node.address.to_string()
}

fn answers(cluster: &Cluster, via: &Node, target: &Node) -> bool {
    cluster
        .talosctl_via(via, &["-n", &ip(target), "version"])
        .status
        .success()
}

#[test]
fn a_worker_joins_with_a_trustd_issued_certificate_and_a_wrong_token_is_refused() {
    let mut cluster = Cluster::generate(31);
    let cp = cluster.add_node(NodeKind::ControlPlane, 2, &[]);
    cluster.wait_until_answering(&cluster.nodes[cp]);
    let worker = cluster.add_node(NodeKind::Worker, 5, &[]);
    let (cp, worker) = (&cluster.nodes[cp], &cluster.nodes[worker]);

    eventually("the worker to serve its API", || {
        answers(&cluster, worker, worker)
    });
    // Through the control plane's apid, which forwards with its os:impersonator certificate.
    let version = success(cluster.talosctl_via(cp, &["-n", &ip(worker), "version"]));
    assert!(version.contains("Tag:"), "{version}");

    // The worker's serving certificate was signed by the cluster CA through trustd; the worker
    // holds no forwarding certificate and runs no trustd.
    let tls = worker.state_dir.join("system/secrets/apid");
    let crt = std::fs::read_to_string(tls.join("server.crt")).unwrap();
    let config: machineconfig::Config =
        machineconfig::Config::from_yaml(&cluster.worker_config()).unwrap();
    let ca = config
        .v1alpha1
        .unwrap()
        .machine
        .unwrap()
        .ca
        .unwrap()
        .crt
        .unwrap();
    pki::verify_signed_by(&crt, &ca).unwrap();
    assert!(!tls.join("client.crt").exists());
    let trustd_log = std::fs::read_to_string(cp.state_dir.join("var/log/trustd.log")).unwrap();
    assert!(
        trustd_log.contains("signed a node certificate"),
        "{trustd_log}"
    );
    let services = success(cluster.talosctl_via(worker, &["-n", &ip(worker), "services"]));
    assert!(!services.contains("trustd"), "{services}");
    let services = success(cluster.talosctl_via(cp, &["-n", &ip(cp), "service", "trustd"]));
    assert!(services.contains("Running"), "{services}");

    // A worker with the wrong token is refused and never serves.
    let wrong = cluster.worker_config().replace(
        &format!("token: {}", machine_token(&cluster)),
        "token: zzzzzz.zzzzzzzzzzzzzzzz",
    );
    assert_ne!(wrong, cluster.worker_config());
    let intruder = Node::start(
        std::net::Ipv4Addr::new(127, 31, 0, 6),
        cluster.dir.path().join("intruder"),
        Some(&wrong),
    );
    eventually("the refusal", || {
        std::fs::read_to_string(intruder.state_dir.join("machined.log"))
            .unwrap_or_default()
            .contains("invalid token")
    });
    assert!(!answers(&cluster, cp, &intruder));
    assert!(
        !intruder
            .state_dir
            .join("system/secrets/apid/server.crt")
            .exists()
    );
}

fn machine_token(cluster: &Cluster) -> String {
    let config = machineconfig::Config::from_yaml(&cluster.worker_config()).unwrap();
    config.v1alpha1.unwrap().machine.unwrap().token
}

#[test]
fn a_worker_keeps_asking_until_trustd_is_up() {
    let mut cluster = Cluster::generate(32);
    let worker = cluster.add_node(NodeKind::Worker, 5, &[]);
    std::thread::sleep(Duration::from_secs(3));
    let log = std::fs::read_to_string(cluster.nodes[worker].state_dir.join("machined.log"))
        .unwrap_or_default();
    assert!(log.contains("trustd at 127.32.0.2:50001"), "{log}");
    assert!(cluster.nodes[worker].serving_serial().is_none());

    let cp = cluster.add_node(NodeKind::ControlPlane, 2, &[]);
    cluster.wait_until_answering(&cluster.nodes[cp]);
    let (cp, worker) = (&cluster.nodes[cp], &cluster.nodes[worker]);
    eventually("the worker to get its certificate", || {
        answers(&cluster, cp, worker)
    });
}

#[test]
fn short_lived_certificates_rotate_under_an_open_stream() {
    let ttl = ["--certificate-ttl-seconds", "10"];
    let mut cluster = Cluster::generate(33);
    let cp = cluster.add_node(NodeKind::ControlPlane, 2, &ttl);
    cluster.wait_until_answering(&cluster.nodes[cp]);
    let worker = cluster.add_node(NodeKind::Worker, 5, &ttl);
    let (cp, worker) = (&cluster.nodes[cp], &cluster.nodes[worker]);
    eventually("the worker", || answers(&cluster, worker, worker));

    // Follow apid's log on one connection while its certificate is replaced: each rotation
    // shows up as a reload line on that very stream.
    let mut follow = Command::new(binary("talosctl"))
        .arg("--talosconfig")
        .arg(cluster.talosconfig())
        .args(["-e", &ip(cp), "-n", &ip(cp), "logs", "-f", "apid"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first_cp = cp.serving_serial().unwrap();
    let first_worker = worker.serving_serial().unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    let still_open = follow.try_wait().unwrap().is_none();
    let _ = follow.kill();
    let _ = follow.wait();
    let mut streamed = String::new();
    follow
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut streamed)
        .unwrap();
    assert!(still_open, "the logs -f stream ended: {streamed}");
    let reloads = streamed.matches("TLS certificates reloaded").count();
    assert!(
        reloads >= 2,
        "{reloads} reloads in {:?} of streaming:\n{streamed}",
        started.elapsed()
    );
    assert_ne!(cp.serving_serial().unwrap(), first_cp);
    assert_ne!(worker.serving_serial().unwrap(), first_worker);
    // New connections verify the new certificates.
    assert!(answers(&cluster, cp, worker));
}
