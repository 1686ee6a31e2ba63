//! A node's life: maintenance mode until a config arrives, try mode reverting, reboot.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use tests::{Cluster, Node, eventually, success};

#[test]
fn a_node_without_config_takes_one_in_maintenance_mode() {
    let mut cluster = Cluster::start(28, 1);
    let address = std::net::Ipv4Addr::new(127, 28, 0, 3);
    let node = Node::start(address, cluster.dir.path().join("maintenance"), None);
    cluster.nodes.push(node);
    let ip = address.to_string();
    let config = cluster.dir.path().join("controlplane.yaml");
    let insecure = |args: &[&str]| {
        let mut all = vec!["-e", ip.as_str(), "-n", ip.as_str()];
        all.extend_from_slice(args);
        cluster.talosctl_via(&cluster.nodes[1], &all)
    };

    // Maintenance: TLS without client certificates, readers only.
    eventually("maintenance API", || {
        insecure(&["version", "--insecure"]).status.success()
    });
    let version = success(insecure(&["version", "--insecure"]));
    assert!(!version.contains("Enabled:     RBAC"), "{version}");
    assert!(cluster.nodes[1].persisted_config().is_empty());

    let applied = success(insecure(&[
        "apply-config",
        "--insecure",
        "-f",
        config.to_str().unwrap(),
    ]));
    assert!(
        applied.contains("Applied configuration without a reboot"),
        "{applied}"
    );
    assert!(!cluster.nodes[1].persisted_config().is_empty());

    // Out of maintenance: mutual TLS with the cluster's credentials, through the first node.
    eventually("normal API", || {
        cluster.talosctl(&["-n", &ip, "version"]).status.success()
    });
    let version = success(cluster.talosctl(&["-n", &ip, "version"]));
    assert!(version.contains("Enabled:     RBAC"), "{version}");
}

#[test]
fn try_mode_reverts_and_reboot_keeps_the_persisted_config() {
    let cluster = Cluster::start(29, 2);
    let ip = cluster.nodes[1].address.to_string();
    let file = cluster.dir.path().join("controlplane.yaml");
    let file = file.to_str().unwrap();
    let staged = "machine:\n  env:\n    STAGED: yes";
    let out = success(cluster.talosctl(&[
        "-n",
        &ip,
        "apply-config",
        "-f",
        file,
        "-p",
        staged,
        "--mode",
        "staged",
    ]));
    assert!(out.contains("Staged configuration"), "{out}");
    assert!(cluster.nodes[1].persisted_config().contains("STAGED"));

    let tried = "machine:\n  certSANs: [tried.example.org]";
    let out = success(cluster.talosctl(&[
        "-n",
        &ip,
        "apply-config",
        "-f",
        file,
        "-p",
        tried,
        "--mode",
        "try",
        "--timeout",
        "2s",
    ]));
    assert!(out.contains("will be reverted in"), "{out}");
    // Try mode does not persist.
    assert!(
        !cluster.nodes[1]
            .persisted_config()
            .contains("tried.example.org")
    );
    let diff_against_active = || {
        success(cluster.talosctl(&[
            "-n",
            &ip,
            "apply-config",
            "-f",
            file,
            "-p",
            staged,
            "--dry-run",
        ]))
    };
    assert!(diff_against_active().contains("tried.example.org"));
    eventually("try mode to revert", || {
        !diff_against_active().contains("tried.example.org")
    });

    let machined_before = cluster.nodes[1].machined_pid();
    let out = success(cluster.talosctl(&["-n", &ip, "reboot"]));
    assert!(out.contains("reboot requested"), "{out}");
    // machined stops its services, then re-executes itself (same pid) and comes back.
    eventually("the reboot", || {
        cluster.nodes[1].logs().contains("rebooting")
    });
    eventually("the node to come back", || {
        cluster.talosctl(&["-n", &ip, "version"]).status.success()
    });
    assert_eq!(cluster.nodes[1].machined_pid(), machined_before);
    // The staged config is the one in force after the reboot.
    let patched =
        success(cluster.talosctl(&["-n", &ip, "patch", "mc", "-p", "machine: {}", "--dry-run"]));
    assert!(patched.contains("No changes"), "{patched}");
    assert!(cluster.nodes[1].persisted_config().contains("STAGED"));
}
