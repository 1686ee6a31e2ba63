//! A node's life: maintenance mode until a config arrives, try mode reverting, reboot, reset.

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
        "5s",
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

    // Staging a config meanwhile keeps the revert pending (an audit finding: it was lost).
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

/// Peak resident memory of a process, from /proc (KiB).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn maintenance_mode_survives_hostile_requests_and_serves_readers_only() {
    let mut cluster = Cluster::start(34, 1);
    let address = std::net::Ipv4Addr::new(127, 34, 0, 3);
    let node = Node::start(address, cluster.dir.path().join("maintenance"), None);
    cluster.nodes.push(node);
    let ip = address.to_string();
    let insecure = |args: &[&str]| {
        let mut all = vec!["-e", ip.as_str(), "-n", ip.as_str()];
        all.extend_from_slice(args);
        cluster.talosctl_via(&cluster.nodes[1], &all)
    };
    eventually("maintenance API", || {
        insecure(&["version", "--insecure"]).status.success()
    });
    let machined = cluster.nodes[1].machined_pid().unwrap();
    let peak_before = peak_rss_kib(machined);

    // The audit's alias bomb: 120 KB that decode into 400 million nodes.
    let n = 20_000;
    let bomb = cluster.dir.path().join("bomb.yaml");
    let text = format!(
        "version: v1alpha1\ndebug: &a [{}1]\npersist: [{}*a]\n",
        "1,".repeat(n),
        "*a,".repeat(n)
    );
    std::fs::write(&bomb, text).unwrap();
    let refused = insecure(&["apply-config", "--insecure", "-f", bomb.to_str().unwrap()]);
    let err = tests::failure(refused);
    assert!(err.contains("code = InvalidArgument"), "{err}");
    assert!(err.contains("YAML aliases"), "{err}");
    let grown_mib = (peak_rss_kib(machined) - peak_before) / 1024;
    assert!(
        grown_mib < 100,
        "machined's peak memory grew {grown_mib} MiB"
    );

    // A key that reads like a line number is quoted as written.
    let odd = cluster.dir.path().join("odd.yaml");
    let controlplane =
        std::fs::read_to_string(cluster.dir.path().join("controlplane.yaml")).unwrap();
    std::fs::write(
        &odd,
        format!("{controlplane}\n---\napiVersion: v1alpha1\nkind: HostnameConfig\n\"line 18446744073709551615\": x\n"),
    )
    .unwrap();
    let err = tests::failure(insecure(&[
        "apply-config",
        "--insecure",
        "-f",
        odd.to_str().unwrap(),
    ]));
    assert!(err.contains("code = InvalidArgument"), "{err}");
    assert!(err.contains("line 18446744073709551615"), "{err}");

    // Still answering; readers may read versions and the kernel log, not files.
    success(insecure(&["version", "--insecure"]));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dmesg, read) = runtime.block_on(async {
        let endpoint = apiclient::Endpoint::parse(&ip).unwrap();
        let client = apiclient::Client::insecure(&endpoint).await.unwrap();
        let mut machine = client.machine();
        let dmesg = machine
            .dmesg(proto::machine::DmesgRequest::default())
            .await
            .map(|_| ());
        let read = match machine
            .read(proto::machine::ReadRequest {
                path: "/proc/cmdline".into(),
            })
            .await
        {
            Ok(mut stream) => stream.get_mut().message().await.map(|_| ()),
            Err(status) => Err(status),
        };
        (dmesg, read)
    });
    dmesg.unwrap();
    assert_eq!(
        read.unwrap_err().code(),
        tonic::Code::PermissionDenied,
        "Read without a certificate"
    );
    assert!(cluster.nodes[1].persisted_config().is_empty());
}

/// The voting etcd members `etcd members` lists through node `via` (none when it fails).
fn voting_members(cluster: &Cluster, via: usize) -> usize {
    let ip = cluster.nodes[via].address.to_string();
    let output = cluster.talosctl_via(&cluster.nodes[via], &["-n", &ip, "etcd", "members"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter(|line| line.trim_end().ends_with("false"))
        .count()
}

/// Waits up to `seconds` for `attempt`.
fn within(seconds: u64, what: &str, mut attempt: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !attempt() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn a_graceful_reset_leaves_etcd_and_returns_the_node_to_maintenance_mode() {
    let cluster = Cluster::start(52, 3);
    let ips: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.address.to_string())
        .collect();
    success(cluster.talosctl(&["-n", &ips[0], "bootstrap"]));
    within(120, "three voting members", || {
        voting_members(&cluster, 0) == 3
    });

    // Bad input changes nothing.
    let refused = tests::failure(cluster.talosctl(&[
        "-n",
        &ips[2],
        "reset",
        "--system-labels-to-wipe",
        "BOOT",
    ]));
    assert!(
        refused.contains("unknown system partition label \"BOOT\""),
        "{refused}"
    );
    assert_eq!(voting_members(&cluster, 0), 3);

    let reset = success(cluster.talosctl(&["-n", &ips[2], "reset", "--reboot"]));
    assert!(reset.contains("reset"), "{reset}");
    // The member is gone, the other two keep quorum (a write goes through).
    within(60, "two voting members", || {
        voting_members(&cluster, 0) == 2
    });
    assert_eq!(voting_members(&cluster, 1), 2);
    // The node came back with nothing: maintenance mode, no config, no etcd data.
    let node = &cluster.nodes[2];
    within(60, "maintenance mode", || {
        cluster
            .talosctl_via(
                node,
                &["-e", &ips[2], "-n", &ips[2], "version", "--insecure"],
            )
            .status
            .success()
    });
    assert!(node.persisted_config().is_empty());
    assert!(!node.state_dir.join("var/lib/etcd").exists());
    let members = success(cluster.talosctl(&["-n", &ips[0], "etcd", "members"]));
    assert!(!members.contains(&ips[2]), "{members}");
}

#[test]
fn a_graceful_reset_of_the_last_etcd_member_is_refused() {
    let cluster = Cluster::start(53, 1);
    let ip = cluster.nodes[0].address.to_string();
    success(cluster.talosctl(&["-n", &ip, "bootstrap"]));
    within(60, "one voting member", || voting_members(&cluster, 0) == 1);
    let refused = tests::failure(cluster.talosctl(&["-n", &ip, "reset"]));
    assert!(refused.contains("last etcd member"), "{refused}");
    assert!(!cluster.nodes[0].persisted_config().is_empty());
    success(cluster.talosctl(&["-n", &ip, "version"]));
}
