//! Two (or three) apid instances on loopback addresses sharing one port: one-to-one
//! forwarding and one-to-many aggregation of replies and streams.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;

use proto::machine::{LogsRequest, RebootRequest};
use support::machined::{LOG_LINES, Machined};
use support::{
    Pki, RunningApid, config, free_port, ip, machine_client, path, temp_dir, with_metadata,
};
use tonic::Code;

struct Node {
    ip: IpAddr,
    machined: Machined,
    apid: RunningApid,
}

struct Cluster {
    pki: Pki,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// Nodes at `addresses` (all with forwarding certificates), machined stand-ins named
/// `node-0`, `node-1`, ...
async fn cluster(addresses: &[&str]) -> Cluster {
    let dir = temp_dir();
    let pki = Pki::new();
    let ips: Vec<IpAddr> = addresses.iter().map(|a| ip(a)).collect();
    let port = free_port(&ips);
    let mut nodes = Vec::new();
    for (index, ip) in ips.into_iter().enumerate() {
        let tls = path(&dir, &format!("tls-{index}"));
        pki.write_tls_dir(&tls, ip, true);
        let machined = Machined::start(
            &path(&dir, &format!("m{index}.sock")),
            &format!("node-{index}"),
        );
        let apid = RunningApid::start(config(ip, port, &tls, &machined.socket)).await;
        nodes.push(Node { ip, machined, apid });
    }
    Cluster {
        pki,
        nodes,
        _dir: dir,
    }
}

#[tokio::test]
async fn node_metadata_forwards_to_the_other_apid() {
    let cluster = cluster(&["127.0.20.2", "127.0.20.3"]).await;
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let reader = cluster.pki.client(&["os:reader"]);
    let mut client = machine_client(a.apid.addr, &cluster.pki.ca_crt, Some(&reader)).await;

    let target = b.ip.to_string();
    let reply = client
        .version(with_metadata((), "node", &[&target]))
        .await
        .expect("forwarded Version")
        .into_inner();
    assert_eq!(reply.messages.len(), 1);
    assert_eq!(
        reply.messages[0].version.as_ref().map(|v| v.tag.as_str()),
        Some("node-1")
    );
    assert_eq!(
        reply.messages[0].metadata, None,
        "one-to-one is transparent"
    );
    assert!(
        a.machined.calls().is_empty(),
        "A's machined is not involved"
    );
    // B trusted A's impersonator certificate and used the original caller's roles.
    assert_eq!(b.machined.last_values("talos-role"), ["os:reader"]);
    assert_eq!(b.machined.last_values("proxyfrom").len(), 1);
    assert!(b.machined.last_values("node").is_empty());

    // The caller's roles still apply on the way.
    let status = client
        .reboot(with_metadata(RebootRequest::default(), "node", &[&target]))
        .await
        .expect_err("reader cannot reboot B");
    assert_eq!(status.code(), Code::PermissionDenied);

    // Streams are relayed too.
    let mut logs = client
        .logs(with_metadata(LogsRequest::default(), "node", &[&target]))
        .await
        .expect("forwarded Logs")
        .into_inner();
    let mut count = 0;
    while let Some(message) = logs.message().await.expect("log line") {
        assert!(String::from_utf8_lossy(&message.bytes).starts_with("node-1 line"));
        count += 1;
    }
    assert_eq!(count, LOG_LINES);
}

#[tokio::test]
async fn nodes_metadata_aggregates_replies_with_hostnames() {
    let Cluster {
        pki,
        mut nodes,
        _dir,
    } = cluster(&["127.0.21.2", "127.0.21.3"]).await;
    let b = nodes.pop().expect("B");
    let a = &nodes[0];
    let admin = pki.client(&["os:admin"]);
    let mut client = machine_client(a.apid.addr, &pki.ca_crt, Some(&admin)).await;
    let targets = [a.ip.to_string(), b.ip.to_string()];
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();

    let reply = client
        .version(with_metadata((), "nodes", &targets))
        .await
        .expect("fan-out Version")
        .into_inner();
    let by_host: BTreeMap<String, String> = reply
        .messages
        .iter()
        .map(|m| {
            let metadata = m.metadata.clone().expect("metadata stamped");
            assert_eq!(metadata.error, "");
            (metadata.hostname, m.version.clone().expect("version").tag)
        })
        .collect();
    assert_eq!(reply.messages.len(), 2);
    assert_eq!(by_host.get(targets[0]).map(String::as_str), Some("node-0"));
    assert_eq!(by_host.get(targets[1]).map(String::as_str), Some("node-1"));
    // A's own machined was reached through A's apid again (proxyfrom breaks the loop).
    assert_eq!(a.machined.last_values("talos-role"), ["os:admin"]);

    // nodes=[A, B] with B stopped: A answers, B contributes an error element.
    b.apid.stop().await;
    let reply = client
        .version(with_metadata((), "nodes", &targets))
        .await
        .expect("the call succeeds even when a node fails")
        .into_inner();
    assert_eq!(reply.messages.len(), 2);
    let a_reply = &reply.messages[0];
    assert_eq!(
        a_reply.metadata.as_ref().map(|m| m.hostname.as_str()),
        Some(targets[0])
    );
    assert_eq!(
        a_reply.version.as_ref().map(|v| v.tag.as_str()),
        Some("node-0")
    );
    let b_reply = reply.messages[1]
        .metadata
        .clone()
        .expect("failure metadata");
    assert_eq!(b_reply.hostname, targets[1]);
    // Refused, timed out or reset: callers are told the same (no oracle for readers).
    assert!(
        b_reply
            .error
            .starts_with("rpc error: code = Unavailable desc = connection error: ")
            && b_reply.error.ends_with(" is unavailable"),
        "{}",
        b_reply.error
    );
    assert_eq!(
        b_reply.status.map(|s| s.code),
        Some(Code::Unavailable as i32)
    );
    assert!(reply.messages[1].version.is_none());
}

#[tokio::test]
async fn nodes_metadata_interleaves_streams() {
    // The third address has no apid at all.
    let cluster = cluster(&["127.0.22.2", "127.0.22.3"]).await;
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let admin = cluster.pki.client(&["os:admin"]);
    let mut client = machine_client(a.apid.addr, &cluster.pki.ca_crt, Some(&admin)).await;
    let targets = [a.ip.to_string(), b.ip.to_string(), "127.0.22.4".to_owned()];
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();

    let mut logs = client
        .logs(with_metadata(LogsRequest::default(), "nodes", &targets))
        .await
        .expect("fan-out Logs")
        .into_inner();
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    while let Some(message) = logs.message().await.expect("stream message") {
        let metadata = message.metadata.expect("every message is stamped");
        if metadata.error.is_empty() {
            let line = String::from_utf8(message.bytes).expect("text");
            lines.entry(metadata.hostname).or_default().push(line);
        } else {
            assert!(message.bytes.is_empty(), "a failure carries only metadata");
            failures.push((metadata.hostname, metadata.status.map(|s| s.code)));
        }
    }
    for (index, target) in targets[..2].iter().enumerate() {
        let expected: Vec<String> = (0..LOG_LINES)
            .map(|line| format!("node-{index} line {line}\n"))
            .collect();
        assert_eq!(lines.get(*target), Some(&expected), "lines of {target}");
    }
    assert_eq!(
        failures,
        [("127.0.22.4".to_owned(), Some(Code::Unavailable as i32))]
    );
}

#[tokio::test]
async fn nodes_metadata_is_refused_outside_the_classic_services() {
    let cluster = cluster(&["127.0.23.2"]).await;
    let admin = cluster.pki.client(&["os:admin"]);
    let channel = support::channel(
        cluster.nodes[0].apid.addr,
        support::client_tls(&cluster.pki.ca_crt, Some(&admin)),
    )
    .await
    .expect("connects");
    let mut state = proto::cosi::resource::state_client::StateClient::new(channel);
    let request = with_metadata(
        proto::cosi::resource::GetRequest::default(),
        "nodes",
        &["127.0.23.2"],
    );
    let status = state
        .get(request)
        .await
        .expect_err("no one-to-many for COSI");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "one-2-many proxying is not supported");
}
