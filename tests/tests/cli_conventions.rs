//! Upstream talosctl's conventions against real dev-mode nodes (loopback block 58): `version
//! --json`, `diskfree`, and how failures of nodes that cannot be reached read.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use tests::{Cluster, failure, success};

#[test]
fn version_json_diskfree_and_node_errors_read_as_upstreams() {
    let cluster = Cluster::start(58, 2);
    let n2 = cluster.nodes[0].address.to_string();
    let n3 = cluster.nodes[1].address.to_string();
    // Nothing runs on this address: apid's dial to it is refused.
    let absent = "127.58.0.9";

    // One protojson line per node, nothing else.
    let json = success(cluster.talosctl(&["-n", &format!("{n2},{n3}"), "version", "--json"]));
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{json}");
    let mut hosts: Vec<&str> = lines
        .iter()
        .map(|line| line["metadata"]["hostname"].as_str().unwrap())
        .collect();
    hosts.sort_unstable();
    assert_eq!(hosts, [n2.as_str(), n3.as_str()]);
    for line in &lines {
        assert_eq!(line["version"]["tag"], "v1.13.0", "{json}");
        assert_eq!(line["features"]["rbac"], true, "{json}");
    }

    // The node's mounts in upstream's columns.
    let df = success(cluster.talosctl(&["-n", &n2, "df"]));
    let header: Vec<&str> = df.lines().next().unwrap().split("   ").collect();
    assert_eq!(header[0], "NODE", "{df}");
    assert!(
        df.lines()
            .next()
            .unwrap()
            .ends_with("AVAILABLE   USAGE   MOUNT POINT"),
        "{df}"
    );
    for row in df.lines().skip(1) {
        assert!(row.starts_with(&n2), "{df}");
    }

    // An unreachable node, alone and among others: Go's gRPC wording, the node named.
    let alone = failure(cluster.talosctl(&["-n", absent, "memory"]));
    assert!(
        alone.starts_with(&format!(
            "error from node {absent}: rpc error: code = Unavailable desc = "
        )),
        "{alone}"
    );
    let output = cluster.talosctl(&["-n", &format!("{n2},{absent}"), "memory"]);
    assert!(!output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stdout.lines().any(|l| l.starts_with(&n2)), "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "error from node {absent}: rpc error: code = Unavailable desc = "
        )),
        "{stderr}"
    );
}
