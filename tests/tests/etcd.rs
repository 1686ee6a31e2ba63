//! etcd across three dev-mode control planes with the real etcd: bootstrap one, the others join
//! on their own; membership, etcdctl with the node-issued PKI, a stopped member, leave and
//! remove-member with rejoining, snapshots and who may take them.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::process::Command;
use std::time::{Duration, Instant};

use tests::{Cluster, Node, NodeKind, failure, success};

fn ip(node: &Node) -> String {
    node.address.to_string()
}

/// Retries for up to `seconds` until `attempt` holds.
fn within(seconds: u64, what: &str, mut attempt: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !attempt() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The `etcd members` rows seen through `via` (learners excluded).
fn voting_members(cluster: &Cluster, via: &Node) -> Vec<String> {
    let output = cluster.talosctl_via(via, &["-n", &ip(via), "etcd", "members"]);
    if !output.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter(|l| l.trim_end().ends_with("false"))
        .map(String::from)
        .collect()
}

/// etcdctl against `node`'s client URL with its admin certificate.
fn etcdctl(node: &Node, args: &[&str]) -> std::process::Output {
    let pki = node.state_dir.join("system/secrets/etcd");
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=https://{}:2379", node.address))
        .arg(format!("--cacert={}", pki.join("ca.crt").display()))
        .arg(format!("--cert={}", pki.join("admin.crt").display()))
        .arg(format!("--key={}", pki.join("admin.key").display()))
        .args(args)
        .output()
        .expect("etcdctl runs")
}

#[test]
fn three_control_planes_form_an_etcd_cluster_and_manage_it() {
    let mut cluster = Cluster::generate(37);
    for octet in 2..=4 {
        cluster.add_node(NodeKind::ControlPlane, octet, &[]);
    }
    for node in &cluster.nodes {
        cluster.wait_until_answering(node);
    }
    let first = &cluster.nodes[0];
    success(cluster.talosctl(&["-n", &ip(first), "bootstrap"]));
    within(90, "three voting members", || {
        voting_members(&cluster, first).len() == 3
    });

    // The Kubernetes side: manifests and kubelet configuration written, the kubelet waiting for
    // an image this machine cannot have, and saying so.
    let manifests = first.state_dir.join("etc/kubernetes/manifests");
    assert!(manifests.join("talos-kube-apiserver.yaml").exists());
    assert!(first.state_dir.join("etc/kubernetes/kubelet.yaml").exists());
    // The same as resources, written by their controller.
    let pods = success(cluster.talosctl(&["-n", &ip(first), "get", "staticpods"]));
    for pod in [
        "talos-kube-apiserver",
        "talos-kube-controller-manager",
        "talos-kube-scheduler",
    ] {
        assert!(pods.contains(pod), "{pods}");
    }
    let kubelet_spec = success(cluster.talosctl(&["-n", &ip(first), "get", "kubeletspec"]));
    assert!(
        kubelet_spec.contains("ghcr.io/siderolabs/kubelet"),
        "{kubelet_spec}"
    );
    let kubelet = success(cluster.talosctl(&["-n", &ip(first), "service", "kubelet"]));
    assert!(
        kubelet.contains("ghcr.io/siderolabs/kubelet") && kubelet.contains("is not available"),
        "{kubelet}"
    );

    // A second bootstrap is refused, on the bootstrapped node and on a joined one.
    for node in &cluster.nodes[..2] {
        let refused = failure(cluster.talosctl(&["-n", &ip(node), "bootstrap"]));
        assert!(refused.contains("AlreadyExists"), "{refused}");
    }

    // etcdctl with the node-issued client certificate reads what another member wrote.
    let (a, b) = (&cluster.nodes[1], &cluster.nodes[2]);
    success(etcdctl(a, &["put", "/talos-rs/test", "hello"]));
    let read = success(etcdctl(b, &["get", "/talos-rs/test", "--print-value-only"]));
    assert_eq!(read.trim(), "hello");

    // Snapshots: a file etcdctl accepts; a reader may not take one, os:etcd:backup may.
    let snapshot = cluster.dir.path().join("db.snapshot");
    let snapshot_arg = snapshot.to_string_lossy().into_owned();
    success(cluster.talosctl(&["-n", &ip(first), "etcd", "snapshot", &snapshot_arg]));
    let status = success(etcdctl(
        first,
        &["snapshot", "status", &snapshot_arg, "-w", "json"],
    ));
    assert!(status.contains("totalKey"), "{status}");
    for (role, allowed) in [("os:reader", false), ("os:etcd:backup", true)] {
        let config = cluster.dir.path().join(format!("{role}.talosconfig"));
        success(cluster.talosctl(&[
            "-n",
            &ip(first),
            "config",
            "new",
            "--roles",
            role,
            &config.to_string_lossy(),
        ]));
        let output = Command::new(tests::binary("talosctl"))
            .arg("--talosconfig")
            .arg(&config)
            .args(["-e", &ip(first), "-n", &ip(first), "etcd", "snapshot"])
            .arg(cluster.dir.path().join(format!("{role}.snapshot")))
            .output()
            .unwrap();
        if allowed {
            success(output);
        } else {
            assert!(failure(output).contains("PermissionDenied"));
        }
    }

    // The admin kubeconfig, signed by the cluster CA, written where asked.
    let kubeconfig = cluster.dir.path().join("kubeconfig");
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();
    success(cluster.talosctl(&["-n", &ip(first), "kubeconfig", &kubeconfig_arg]));
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        written.contains("server: https://127.37.0.2:6443"),
        "{written}"
    );
    assert!(written.contains("client-certificate-data"), "{written}");

    // One member stopped: writes still succeed, two members report status.
    cluster.nodes[2].stop();
    success(etcdctl(
        &cluster.nodes[0],
        &["put", "/talos-rs/quorum", "two of three"],
    ));
    let both = format!("{},{}", ip(&cluster.nodes[0]), ip(&cluster.nodes[1]));
    let status = success(cluster.talosctl(&["-n", &both, "etcd", "status"]));
    assert_eq!(status.lines().count(), 3, "{status}");

    // remove-member of the stopped node; with its etcd data gone it joins again as new.
    let members = voting_members(&cluster, &cluster.nodes[0]);
    let gone = members.iter().find(|l| l.contains("127.37.0.4")).unwrap();
    let gone_id = gone.split_whitespace().nth(1).unwrap().to_string();
    success(cluster.talosctl(&[
        "-n",
        &ip(&cluster.nodes[0]),
        "etcd",
        "remove-member",
        &gone_id,
    ]));
    within(20, "two members", || {
        voting_members(&cluster, &cluster.nodes[0]).len() == 2
    });
    std::fs::remove_dir_all(cluster.nodes[2].state_dir.join("var/lib/etcd")).unwrap();
    cluster.nodes[2].boot();
    within(90, "the removed node to join again", || {
        voting_members(&cluster, &cluster.nodes[0]).len() == 3
    });

    // leave: the member goes; after a reboot the node joins again.
    // etcd refuses to reconfigure until the rejoined member has been connected a few seconds.
    let leaver = ip(&cluster.nodes[1]);
    let mut refusal = String::new();
    within(60, "leave to be accepted", || {
        let output = cluster.talosctl(&["-n", &leaver, "etcd", "leave"]);
        refusal = String::from_utf8_lossy(&output.stderr).into_owned();
        eprintln!("leave: {refusal}");
        output.status.success()
    });
    within(20, "two members after leave", || {
        voting_members(&cluster, &cluster.nodes[0]).len() == 2
    });
    success(cluster.talosctl(&["-n", &leaver, "reboot", "--wait=false"]));
    within(90, "the node that left to join again", || {
        voting_members(&cluster, &cluster.nodes[0]).len() == 3
    });

    // The whole cluster checks out: APIs, etcd, services.
    let all = format!(
        "{},{},{}",
        ip(&cluster.nodes[0]),
        leaver,
        ip(&cluster.nodes[2])
    );
    let health = success(cluster.talosctl(&[
        "health",
        "--control-plane-nodes",
        &all,
        "--wait-timeout",
        "60s",
    ]));
    assert!(
        health.contains("waiting for etcd members to be consistent across nodes: OK"),
        "{health}"
    );
}
