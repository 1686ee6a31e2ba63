//! `talosctl reboot` and `shutdown` wait for the action by default: a dev-mode node reboots
//! (machined restarts its process tree) and answers again before talosctl returns; a shutdown
//! returns once the node has stopped its services. Loopback block 127.40.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use tests::{Cluster, eventually, failure, success};

#[test]
fn reboot_and_shutdown_wait_for_the_node() {
    let cluster = Cluster::start(40, 2);
    let n3 = cluster.nodes[1].address.to_string();

    // Through the first node's apid: the stream to .3 breaks, talosctl waits for .3 to come back.
    let out = success(cluster.talosctl(&["-n", &n3, "reboot"]));
    assert!(out.starts_with(&format!("watching nodes: [{n3}]")), "{out}");
    assert!(out.contains(&format!("* {n3}: reboot requested")), "{out}");
    assert!(out.contains(&format!("* {n3}: reboot: START")), "{out}");
    assert!(
        out.contains(&format!(
            "* {n3}: connection lost, waiting for the node to come back"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("* {n3}: post check passed")), "{out}");
    assert!(cluster.nodes[1].logs().contains("rebooting"));
    // Back already: no retries needed.
    success(cluster.talosctl(&["-n", &n3, "version"]));

    // Through the node's own apid: the connection itself goes away and is dialled again.
    let out = success(cluster.talosctl_via(&cluster.nodes[1], &["-n", &n3, "reboot"]));
    assert!(out.contains(&format!("* {n3}: post check passed")), "{out}");
    success(cluster.talosctl_via(&cluster.nodes[1], &["-n", &n3, "version"]));

    // A timeout fails the command; without --wait only the request is printed.
    let err = failure(cluster.talosctl(&["-n", &n3, "reboot", "--timeout", "1ms"]));
    assert!(
        err.contains(&format!("error from node {n3}: reboot failed: timed out")),
        "{err}"
    );
    let restarts = || {
        cluster.nodes[1]
            .logs()
            .matches("starting machined again")
            .count()
    };
    eventually("the third reboot", || restarts() == 3);
    cluster.wait_until_answering(&cluster.nodes[1]);
    let out = success(cluster.talosctl(&["-n", &n3, "reboot", "--wait=false"]));
    assert!(
        out.starts_with(&format!("{n3}: reboot requested (actor id ")),
        "{out}"
    );
    eventually("the fourth reboot", || restarts() == 4);
    cluster.wait_until_answering(&cluster.nodes[1]);

    let out = success(cluster.talosctl(&["-n", &n3, "shutdown"]));
    assert!(out.contains(&format!("* {n3}: shutdown: START")), "{out}");
    assert!(
        out.contains(&format!("* {n3}: stopAllServices: START"))
            || out.contains(&format!("* {n3}: node stopped answering")),
        "{out}"
    );
    failure(cluster.talosctl(&["-n", &n3, "version"]));
    // The other node is untouched.
    success(cluster.talosctl(&["-n", &cluster.nodes[0].address.to_string(), "version"]));
}
