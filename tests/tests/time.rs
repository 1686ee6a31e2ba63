//! Time sync through machined: timed keeps `machine.time.servers` in view (a real chronyd on
//! loopback), `talosctl time` reports it, and trustd waits for sync, at most the boot timeout.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::time::{Duration, Instant};

use tests::{Chrony, Cluster, NodeKind, eventually, free_udp_port, success};

/// Generates a cluster whose control-plane config names `servers` (and `boot_timeout`).
fn cluster_with_time(block: u8, servers: &[String], boot_timeout: Option<&str>) -> Cluster {
    let cluster = Cluster::generate(block);
    let mut config = machineconfig::Config::from_yaml(&cluster.controlplane_config()).unwrap();
    let machine = config.v1alpha1.as_mut().unwrap().machine.as_mut().unwrap();
    let time = machine.time.get_or_insert_with(Default::default);
    time.servers = servers.to_vec();
    time.boot_timeout = boot_timeout.map(|t| machineconfig::GoDuration::parse(t).unwrap());
    let path = cluster.dir.path().join("controlplane.yaml");
    std::fs::write(path, config.to_yaml().unwrap()).unwrap();
    cluster
}

#[test]
fn a_node_syncs_with_its_configured_server_and_talosctl_time_reports_it() {
    let chrony = Chrony::start();
    let mut cluster = cluster_with_time(34, std::slice::from_ref(&chrony.server), None);
    let cp = cluster.add_node(NodeKind::ControlPlane, 2, &[]);
    let node = &cluster.nodes[cp];
    cluster.wait_until_answering(node);
    let ip = node.address.to_string();

    eventually("timed to report sync", || {
        let status = success(cluster.talosctl(&["-n", &ip, "service", "timed"]));
        status
            .lines()
            .any(|l| l.starts_with("HEALTH") && l.ends_with("OK"))
    });
    let time = success(cluster.talosctl(&["-n", &ip, "time"]));
    let lines: Vec<&str> = time.lines().collect();
    assert!(
        lines[0].starts_with("NODE") && lines[0].contains("NTP-SERVER-TIME"),
        "{time}"
    );
    assert!(
        lines[1].starts_with(&ip) && lines[1].contains(&chrony.server) && lines[1].contains("UTC"),
        "{time}"
    );
    // TimeCheck asks the given server.
    let v6 = format!("[::1]:{}", chrony.port);
    let checked = success(cluster.talosctl(&["-n", &ip, "time", "--check", &v6]));
    assert!(checked.contains(&v6), "{checked}");
}

#[test]
fn trustd_waits_for_time_sync_at_most_the_boot_timeout() {
    // Nothing answers on this port: time never syncs.
    let silent = format!("127.0.0.1:{}", free_udp_port());
    let mut cluster = cluster_with_time(35, &[silent], Some("6s"));
    let started = Instant::now();
    let cp = cluster.add_node(NodeKind::ControlPlane, 2, &[]);
    let node = &cluster.nodes[cp];
    cluster.wait_until_answering(node);
    let ip = node.address.to_string();

    let services = success(cluster.talosctl(&["-n", &ip, "services"]));
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "too slow to check"
    );
    assert!(
        !services.contains("trustd"),
        "trustd started unsynced: {services}"
    );
    let timed = success(cluster.talosctl(&["-n", &ip, "service", "timed"]));
    assert!(
        !timed
            .lines()
            .any(|l| l.starts_with("HEALTH") && l.ends_with("OK")),
        "{timed}"
    );

    eventually("trustd after the boot timeout", || {
        success(cluster.talosctl(&["-n", &ip, "services"])).contains("trustd")
    });
    assert!(started.elapsed() >= Duration::from_secs(6));
    let log = std::fs::read_to_string(node.state_dir.join("machined.log")).unwrap();
    assert!(log.contains("boot timeout"), "{log}");
}
