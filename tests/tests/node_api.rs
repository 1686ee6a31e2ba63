//! The node API in dev mode: three control planes on loopback addresses, managed with the real
//! talosctl through one node's apid, as a person manages Talos nodes.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{Cluster, binary, failure, success};

fn node(cluster: &Cluster, i: usize) -> String {
    cluster.nodes[i].address.to_string()
}

#[test]
fn one_endpoint_reaches_every_node_one_by_one_and_together() {
    let cluster = Cluster::start(21, 3);
    let (n2, n3, n4) = (node(&cluster, 0), node(&cluster, 1), node(&cluster, 2));

    let version = success(cluster.talosctl(&["-n", &n3, "version"]));
    assert!(version.contains(&format!("NODE:        {n3}")), "{version}");
    assert!(version.contains("Tag:         v1.13.0"), "{version}");

    // trustd starts once timed reports sync (sync is off here: at once).
    let both = format!("{n3},{n4}");
    tests::eventually("trustd on both nodes", || {
        let services = success(cluster.talosctl(&["-n", &both, "services"]));
        services.matches("trustd").count() == 2
    });
    let services = success(cluster.talosctl(&["-n", &both, "services"]));
    let rows: Vec<&str> = services.lines().skip(1).collect();
    assert_eq!(rows.len(), 8, "{services}");
    for node in [&n3, &n4] {
        let row = |service: &str| {
            rows.iter()
                .find(|r| {
                    r.starts_with(node.as_str()) && r.split_whitespace().nth(1) == Some(service)
                })
                .unwrap_or_else(|| panic!("no {service} on {node}: {services}"))
        };
        for service in ["timed", "apid", "trustd"] {
            assert!(row(service).contains("Running"), "{services}");
        }
        // No kubelet image can be had here: the service says so instead of running.
        assert!(!row("kubelet").contains("Running"), "{services}");
    }

    let memory = success(cluster.talosctl(&["-n", &format!("{n2},{n3},{n4}"), "memory"]));
    for n in [&n2, &n3, &n4] {
        assert!(
            memory.lines().any(|l| l.starts_with(n.as_str())),
            "{memory}"
        );
    }
    let cmdline = success(cluster.talosctl(&["-n", &n4, "read", "/proc/cmdline"]));
    assert_eq!(cmdline, std::fs::read_to_string("/proc/cmdline").unwrap());

    // A reader's talosconfig from GenerateClientConfiguration reads but cannot reboot.
    let path = cluster.dir.path().join("reader-talosconfig");
    let path_arg = path.to_str().unwrap();
    success(cluster.talosctl(&["-n", &n2, "config", "new", path_arg, "--roles", "os:reader"]));
    let reader = |args: &[&str]| {
        Command::new(binary("talosctl"))
            .args(["--talosconfig", path_arg, "-n", &n3])
            .args(args)
            .output()
            .unwrap()
    };
    let info = success(reader(&["config", "info"]));
    assert!(
        info.contains("os:reader") && info.contains("reader@test"),
        "{info}"
    );
    success(reader(&["services"]));
    assert!(failure(reader(&["reboot"])).contains("PermissionDenied"));
}

#[test]
fn a_stopped_node_fails_alone() {
    let mut cluster = Cluster::start(22, 3);
    let (n3, n4) = (node(&cluster, 1), node(&cluster, 2));
    cluster.nodes[2].stop();
    let output = cluster.talosctl(&["-n", &format!("{n3},{n4}"), "services"]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = failure(output);
    assert!(stdout.lines().any(|l| l.starts_with(&n3)), "{stdout}");
    assert!(!stdout.contains(&n4), "{stdout}");
    assert!(
        stderr.contains(&format!("error from node {n4}")),
        "{stderr}"
    );
}

#[test]
fn a_killed_service_is_restarted_and_the_restart_is_in_events() {
    let cluster = Cluster::start(23, 2);
    let n3 = node(&cluster, 1);
    let containers = success(cluster.talosctl(&["-n", &n3, "containers"]));
    let pid: i32 = containers
        .lines()
        .find(|l| l.contains("apid"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.parse().ok().filter(|p| *p > 1))
        })
        .unwrap_or_else(|| panic!("no apid pid in {containers}"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let output = cluster.talosctl(&["-n", &n3, "service", "apid"]);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success()
            && text.contains("SIGKILL")
            && text
                .lines()
                .any(|l| l.starts_with("STATE") && l.contains("Running"))
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "apid did not come back: {text}\n{}",
            cluster.nodes[1].logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        detail.contains("Process exited: signal SIGKILL"),
        "{detail}"
    );

    // `events` follows forever: read what it prints in a few seconds.
    let mut events = Command::new(binary("talosctl"))
        .arg("--talosconfig")
        .arg(cluster.talosconfig())
        .args([
            "-e",
            &node(&cluster, 0),
            "-n",
            &n3,
            "events",
            "--tail",
            "-1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    events.kill().unwrap();
    let output = events.wait_with_output().unwrap();
    let events = String::from_utf8_lossy(&output.stdout);
    let restarts = events
        .lines()
        .filter(|l| {
            l.contains("ServiceStateEvent") && l.contains("apid") && l.contains("started with PID")
        })
        .count();
    assert!(restarts >= 2, "{events}");
    assert!(events.contains("SIGKILL"), "{events}");
}
