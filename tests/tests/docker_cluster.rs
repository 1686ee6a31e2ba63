//! `talosctl cluster create docker` end to end: real containers of the project's image
//! (`cargo xtask docker-image`, run by `scripts/test.sh`) on private Docker networks the tests
//! create (10.250.N.0/24), destroyed by a guard even when a test fails.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::process::{Command, Output};

use tests::{LocalCluster, eventually, failure, success};

/// A Docker cluster on 10.250.`block`.0/24.
struct DockerCluster {
    cluster: LocalCluster,
    block: u8,
}

impl DockerCluster {
    fn create(name: &str, block: u8, controlplanes: u32, workers: u32) -> (DockerCluster, Output) {
        let cluster = DockerCluster {
            cluster: LocalCluster::new(name),
            block,
        };
        let subnet = format!("10.250.{block}.0/24");
        let (cps, wks) = (controlplanes.to_string(), workers.to_string());
        let output = cluster.cluster.cluster(&[
            "create",
            "docker",
            "--controlplanes",
            &cps,
            "--workers",
            &wks,
            "--subnet",
            &subnet,
            "--memory-controlplanes",
            "512MiB",
            "--memory-workers",
            "512MiB",
            "--wait-timeout",
            "3m",
        ]);
        (cluster, output)
    }

    fn ip(&self, host: u8) -> String {
        format!("10.250.{}.{host}", self.block)
    }

    fn health(&self) -> Output {
        let cps: Vec<String> = (2..=4).map(|h| self.ip(h)).collect();
        self.cluster.health(&cps, &[self.ip(5)])
    }

    /// `etcd alarm disarm` is a raft proposal: it commits only with a quorum of members.
    fn etcd_write(&self, host: u8) -> Output {
        self.cluster
            .talosctl(&["-n", &self.ip(host), "etcd", "alarm", "disarm"])
    }
}

fn docker(args: &[&str]) -> String {
    success(Command::new("docker").args(args).output().unwrap())
}

/// What Docker still holds with the cluster's label.
fn leftovers(name: &str) -> String {
    let filter = format!("label=talos.cluster.name={name}");
    [
        docker(&["ps", "--all", "--quiet", "--filter", &filter]),
        docker(&["volume", "ls", "--quiet", "--filter", &filter]),
        docker(&["network", "ls", "--quiet", "--filter", &filter]),
    ]
    .concat()
}

#[test]
fn three_control_planes_and_a_worker_stay_healthy_through_lost_members() {
    let name = "trs-docker-a";
    let (docker_cluster, output) = DockerCluster::create(name, 1, 3, 1);
    let cluster = &docker_cluster.cluster;
    let out = success(output);
    assert!(out.contains(&format!("cluster {name} is healthy")), "{out}");
    assert!(
        out.contains("waiting for kubelet to be healthy: SKIPPED"),
        "{out}"
    );

    let ip = |host| docker_cluster.ip(host);
    let members = success(cluster.talosctl(&["-n", &ip(2), "etcd", "members"]));
    for host in 1..=3 {
        assert!(
            members.contains(&format!("{name}-controlplane-{host}")),
            "{members}"
        );
    }
    assert!(
        !members.contains("true"),
        "a member is a learner: {members}"
    );

    // The worker's apid certificate was signed by a control plane's trustd.
    let signed = (2..=4).any(|host| {
        let logs = success(cluster.talosctl(&["-n", &ip(host), "logs", "trustd"]));
        assert!(
            !logs.contains('\u{1b}'),
            "terminal colour codes in a log: {logs}"
        );
        logs.contains("signed a node certificate") && logs.contains(&format!("{name}-worker-1"))
    });
    assert!(signed, "no trustd signed the worker's certificate");

    let show = success(cluster.cluster(&["show"]));
    assert!(show.contains(&format!("{name}-worker-1")), "{show}");
    assert!(show.contains("10.250.1.5"), "{show}");

    // One control plane killed: the other two keep quorum; started again, it rejoins.
    let second = format!("{name}-controlplane-2");
    docker(&["kill", &second]);
    success(docker_cluster.etcd_write(2));
    docker(&["start", &second]);
    success(docker_cluster.health());

    // One member cut off the network: the others keep quorum; reconnected, it is healthy again.
    let third = format!("{name}-controlplane-3");
    docker(&["network", "disconnect", name, &third]);
    success(docker_cluster.etcd_write(2));
    docker(&["network", "connect", "--ip", &ip(4), name, &third]);
    success(docker_cluster.health());

    // Two of three gone: no quorum, the write fails instead of hanging.
    docker(&["kill", &second, &third]);
    failure(docker_cluster.etcd_write(2));

    let out = success(cluster.destroy());
    assert!(out.contains(&format!("destroyed cluster {name}")), "{out}");
    assert_eq!(leftovers(name), "");
    assert!(!cluster.state_root().join(name).exists());
    let again = success(cluster.destroy());
    assert!(again.contains("nothing to destroy"), "{again}");
}

#[test]
fn bad_input_is_refused_before_anything_is_made() {
    let name = "trs-docker-b";
    let cluster = LocalCluster::new(name);
    let refused = |args: &[&str], expected: &str| {
        let mut all = vec!["create", "docker"];
        all.extend(args);
        let error = failure(cluster.cluster(&all));
        assert!(error.contains(expected), "{args:?}: {error}");
        assert_eq!(leftovers(name), "", "{args:?} left something behind");
    };
    refused(&["--controlplanes", "0"], "at least one control plane");
    refused(
        &["--subnet", "10.250.2.0/30", "--workers", "2"],
        "too small for a gateway and 3 nodes",
    );
    refused(
        &["--image", "talos-rs/missing:v0"],
        "cargo xtask docker-image",
    );
    refused(&["--config-patch", "machine: [unclosed"], "patch");
    drop(cluster);

    // A name in use: the first cluster stays untouched.
    let (first, output) = DockerCluster::create(name, 2, 1, 0);
    success(output);
    let error = failure(
        first
            .cluster
            .cluster(&["create", "docker", "--workers", "0"]),
    );
    assert!(error.contains("already exists"), "{error}");
    eventually("the first cluster to still answer", || {
        first
            .cluster
            .talosctl(&["-n", &first.ip(2), "version"])
            .status
            .success()
    });
    // Reboot is refused in container mode, as upstream.
    let error = failure(first.cluster.talosctl(&["-n", &first.ip(2), "reboot"]));
    assert!(error.contains("not supported in container mode"), "{error}");
    success(first.cluster.destroy());
    assert_eq!(leftovers(name), "");
}
