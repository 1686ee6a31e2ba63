//! `talosctl cluster create docker` end to end: real containers of the project's image
//! (`cargo xtask docker-image`, run by `scripts/test.sh`) on private Docker networks the tests
//! create (10.250.N.0/24), destroyed by a guard even when a test fails.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::PathBuf;
use std::process::{Command, Output};

use tests::{binary, eventually, failure, success};

/// A cluster made by `talosctl cluster create docker`, destroyed when dropped.
struct DockerCluster {
    name: String,
    subnet_prefix: String,
    home: tempfile::TempDir,
}

impl DockerCluster {
    fn create(name: &str, block: u8, controlplanes: u32, workers: u32) -> (DockerCluster, Output) {
        let cluster = DockerCluster {
            name: name.to_string(),
            subnet_prefix: format!("10.250.{block}"),
            home: tempfile::tempdir().unwrap(),
        };
        // A leftover of an earlier, killed run would make the name taken.
        let _ = cluster.destroy();
        let subnet = format!("{}.0/24", cluster.subnet_prefix);
        let (cps, wks) = (controlplanes.to_string(), workers.to_string());
        let output = cluster.talosctl(&[
            "cluster",
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

    fn talosctl(&self, args: &[&str]) -> Output {
        let state = self.home.path().join("clusters");
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(self.talosconfig())
            .args(["cluster", "--name", &self.name, "--state"])
            .arg(&state)
            .args(args.iter().skip(1))
            .output()
            .unwrap_or_else(|error| panic!("running talosctl: {error}"))
    }

    /// talosctl for a node command (not `cluster …`).
    fn node_command(&self, args: &[&str]) -> Output {
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(self.talosconfig())
            .args(args)
            .output()
            .unwrap()
    }

    fn talosconfig(&self) -> PathBuf {
        self.home.path().join("config")
    }

    fn ip(&self, host: u8) -> String {
        format!("{}.{host}", self.subnet_prefix)
    }

    fn destroy(&self) -> Output {
        self.talosctl(&["cluster", "destroy"])
    }

    fn health(&self, control_planes: &[u8], workers: &[u8]) -> Output {
        let list = |hosts: &[u8]| {
            hosts
                .iter()
                .map(|h| self.ip(*h))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut args = vec![
            "health".to_string(),
            "-n".into(),
            self.ip(control_planes[0]),
            "--control-plane-nodes".into(),
            list(control_planes),
            "--wait-timeout".into(),
            "2m".into(),
        ];
        if !workers.is_empty() {
            args.extend(["--worker-nodes".into(), list(workers)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.node_command(&args)
    }

    /// `etcd alarm disarm` is a raft proposal: it commits only with a quorum of members.
    fn etcd_write(&self, host: u8) -> Output {
        self.node_command(&["-n", &self.ip(host), "etcd", "alarm", "disarm"])
    }
}

impl Drop for DockerCluster {
    fn drop(&mut self) {
        let _ = self.destroy();
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
    let (cluster, output) = DockerCluster::create(name, 1, 3, 1);
    let out = success(output);
    assert!(out.contains(&format!("cluster {name} is healthy")), "{out}");
    assert!(
        out.contains("waiting for kubelet to be healthy: SKIPPED"),
        "{out}"
    );

    let members = success(cluster.node_command(&["-n", &cluster.ip(2), "etcd", "members"]));
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
        let logs = success(cluster.node_command(&["-n", &cluster.ip(host), "logs", "trustd"]));
        assert!(
            !logs.contains('\u{1b}'),
            "terminal colour codes in a log: {logs}"
        );
        logs.contains("signed a node certificate") && logs.contains(&format!("{name}-worker-1"))
    });
    assert!(signed, "no trustd signed the worker's certificate");

    let show = success(cluster.talosctl(&["cluster", "show"]));
    assert!(show.contains(&format!("{name}-worker-1")), "{show}");
    assert!(show.contains("10.250.1.5"), "{show}");

    // One control plane killed: the other two keep quorum; started again, it rejoins.
    let second = format!("{name}-controlplane-2");
    docker(&["kill", &second]);
    success(cluster.etcd_write(2));
    docker(&["start", &second]);
    success(cluster.health(&[2, 3, 4], &[5]));

    // One member cut off the network: the others keep quorum; reconnected, it is healthy again.
    let third = format!("{name}-controlplane-3");
    docker(&["network", "disconnect", name, &third]);
    success(cluster.etcd_write(2));
    docker(&["network", "connect", "--ip", &cluster.ip(4), name, &third]);
    success(cluster.health(&[2, 3, 4], &[5]));

    // Two of three gone: no quorum, the write fails instead of hanging.
    docker(&["kill", &second, &third]);
    failure(cluster.etcd_write(2));

    let out = success(cluster.destroy());
    assert!(out.contains(&format!("destroyed cluster {name}")), "{out}");
    assert_eq!(leftovers(name), "");
    assert!(!cluster.home.path().join("clusters").join(name).exists());
    let again = success(cluster.destroy());
    assert!(again.contains("nothing to destroy"), "{again}");
}

#[test]
fn bad_input_is_refused_before_anything_is_made() {
    let name = "trs-docker-b";
    let cluster = DockerCluster {
        name: name.into(),
        subnet_prefix: "10.250.2".into(),
        home: tempfile::tempdir().unwrap(),
    };
    let refused = |args: &[&str], expected: &str| {
        let mut all = vec!["cluster", "create", "docker"];
        all.extend(args);
        let error = failure(cluster.talosctl(&all));
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

    // A name in use: the first cluster stays untouched.
    let (first, output) = DockerCluster::create(name, 2, 1, 0);
    success(output);
    let error = failure(first.talosctl(&["cluster", "create", "docker", "--workers", "0"]));
    assert!(error.contains("already exists"), "{error}");
    eventually("the first cluster to still answer", || {
        first
            .node_command(&["-n", &first.ip(2), "version"])
            .status
            .success()
    });
    // Reboot is refused in container mode, as upstream.
    let error = failure(first.node_command(&["-n", &first.ip(2), "reboot"]));
    assert!(error.contains("not supported in container mode"), "{error}");
    success(first.destroy());
    assert_eq!(leftovers(name), "");
}
