//! Several nodes in maintenance mode (insecure TLS, one connection per node): `logs -f` follows
//! every node at once, each line prefixed with its node, and `--cert-fingerprint` pins each
//! node's server key. Loopback block 127.41.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::io::{BufRead as _, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use apiclient::SpkiFingerprint;
use tests::{Node, binary, eventually, failure, success};

fn talosctl(args: &[&str]) -> Command {
    let mut command = Command::new(binary("talosctl"));
    command
        .args(["--talosconfig", "/nonexistent/talosconfig"])
        .args(args)
        .env_remove("TALOSCONFIG");
    command
}

#[test]
fn insecure_logs_follow_every_node_and_fingerprints_pin_servers() {
    let dir = tempfile::tempdir().unwrap();
    let addresses = [Ipv4Addr::new(127, 41, 0, 2), Ipv4Addr::new(127, 41, 0, 3)];
    let nodes: Vec<Node> = addresses
        .iter()
        .map(|a| Node::start(*a, dir.path().join(a.to_string()), None))
        .collect();
    let [n2, n3] = addresses.map(|a| a.to_string());
    let both = format!("{n2},{n3}");
    for node in [&n2, &n3] {
        eventually("maintenance API", || {
            talosctl(&["-n", node, "version", "-i"])
                .output()
                .unwrap()
                .status
                .success()
        });
    }

    let mut follow = talosctl(&["-n", &both, "logs", "apid", "-f", "-i"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !(seen
        .iter()
        .any(|l: &String| l.starts_with(&format!("{n2}: ")))
        && seen.iter().any(|l| l.starts_with(&format!("{n3}: "))))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("not every node's log lines were followed: {seen:#?}"),
        }
    }
    // Still following: both streams are open.
    assert!(follow.try_wait().unwrap().is_none());
    follow.kill().unwrap();
    follow.wait().unwrap();

    // Pinning: the node's own key passes, another key fails with a clear error.
    let own = SpkiFingerprint::of_certificate(&nodes[0].serving_certificate().unwrap()).unwrap();
    let own = own.to_string();
    let version = success(
        talosctl(&["-n", &n2, "version", "-i", "--cert-fingerprint", &own])
            .output()
            .unwrap(),
    );
    assert!(version.contains("Server:"), "{version}");
    let other = "00".repeat(32);
    let err = failure(
        talosctl(&["-n", &n2, "version", "-i", "--cert-fingerprint", &other])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains(&format!(
            "server certificate fingerprint {own} does not match any of the accepted fingerprints"
        )),
        "{err}"
    );
    // Node .3 has a key of its own: pinning only .2's refuses it.
    let err = failure(
        talosctl(&["-n", &both, "memory", "-i", "--cert-fingerprint", &own])
            .output()
            .unwrap(),
    );
    assert!(err.contains(&n3) && err.contains("does not match"), "{err}");
    assert!(
        failure(
            talosctl(&["-n", &n2, "version", "--cert-fingerprint", &own])
                .output()
                .unwrap()
        )
        .contains("use it with --insecure")
    );
}
