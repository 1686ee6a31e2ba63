//! apid on one node: calls relayed to machined, authorization, routing refusals, maintenance
//! mode, nodes without a client certificate, and the limits on connections.

mod support;

use std::time::{Duration, Instant};

use proto::machine::machine_service_client::MachineServiceClient;
use proto::machine::{LogsRequest, RebootRequest};
use support::machined::{LOG_LINES, Machined};
use support::{
    Pki, RunningApid, channel, client_tls, config, free_port, ip, machine_client, path, temp_dir,
    tls_connect, with_metadata,
};
use tokio::io::AsyncReadExt as _;
use tonic::Code;

struct Node {
    pki: Pki,
    machined: Machined,
    apid: RunningApid,
    _dir: tempfile::TempDir,
}

/// One node at `address`: machined stand-in named `local`, apid with the given settings.
async fn node(address: &str, forwarding: bool, tweak: impl FnOnce(&mut apid::Config)) -> Node {
    let dir = temp_dir();
    let pki = Pki::new();
    let address = ip(address);
    pki.write_tls_dir(&path(&dir, "tls"), address, forwarding);
    let machined = Machined::start(&path(&dir, "machine.sock"), "local");
    let port = free_port(&[address]);
    let mut config = config(address, port, &path(&dir, "tls"), &machined.socket);
    tweak(&mut config);
    let apid = RunningApid::start(config).await;
    Node {
        pki,
        machined,
        apid,
        _dir: dir,
    }
}

#[tokio::test]
async fn version_is_relayed_with_roles_and_without_routing_keys() {
    let node = node("127.0.10.2", true, |_| {}).await;
    let admin = node.pki.client(&["os:admin"]);
    let mut client = machine_client(node.apid.addr, &node.pki.ca_crt, Some(&admin)).await;

    let mut request = with_metadata((), "x-trace", &["abc"]);
    request
        .metadata_mut()
        .insert("talos-role", "os:etcd:backup".parse().expect("ascii"));
    let reply = client.version(request).await.expect("Version").into_inner();
    assert_eq!(reply.messages.len(), 1);
    assert_eq!(
        reply.messages[0].version.as_ref().map(|v| v.tag.as_str()),
        Some("local")
    );
    assert_eq!(
        reply.messages[0].metadata, None,
        "one-to-one adds no metadata"
    );

    // machined sees the caller's certificate roles (a client's own talos-role is ignored),
    // the original authority as proxyfrom, and the caller's other metadata.
    assert_eq!(node.machined.last_values("talos-role"), ["os:admin"]);
    assert_eq!(
        node.machined.last_values("proxyfrom"),
        [node.apid.addr.to_string()]
    );
    assert_eq!(node.machined.last_values("x-trace"), ["abc"]);
    assert!(node.machined.last_values("node").is_empty());
}

#[tokio::test]
async fn statuses_and_streams_pass_through() {
    let node = node("127.0.11.2", true, |_| {}).await;
    let admin = node.pki.client(&["os:admin"]);
    let mut client = machine_client(node.apid.addr, &node.pki.ca_crt, Some(&admin)).await;

    let status = client
        .memory(())
        .await
        .expect_err("the stand-in has no Memory");
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(
        status.message(),
        "/machine.MachineService/Memory is not implemented"
    );

    let mut logs = client
        .logs(LogsRequest {
            id: "apid".into(),
            ..Default::default()
        })
        .await
        .expect("Logs")
        .into_inner();
    let mut lines = Vec::new();
    while let Some(message) = logs.message().await.expect("log message") {
        assert_eq!(message.metadata, None);
        lines.push(String::from_utf8(message.bytes).expect("text"));
    }
    let expected: Vec<String> = (0..LOG_LINES)
        .map(|i| format!("local line {i}\n"))
        .collect();
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn reader_cannot_reboot_but_operator_can() {
    let node = node("127.0.12.2", true, |_| {}).await;
    let reader = node.pki.client(&["os:reader"]);
    let mut client = machine_client(node.apid.addr, &node.pki.ca_crt, Some(&reader)).await;
    client.version(()).await.expect("reader may call Version");
    let status = client
        .reboot(RebootRequest::default())
        .await
        .expect_err("reader must not reboot");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "not authorized");
    assert!(
        node.machined
            .calls()
            .iter()
            .all(|(method, _)| !method.ends_with("/Reboot")),
        "a refused call must not reach machined"
    );

    let operator = node.pki.client(&["os:operator", "team:unknown"]);
    let mut client = machine_client(node.apid.addr, &node.pki.ca_crt, Some(&operator)).await;
    let reply = client
        .reboot(RebootRequest::default())
        .await
        .expect("operator reboots");
    assert_eq!(reply.into_inner().messages[0].actor_id, "reboot-actor");
    // Only known roles are forwarded; a string that is no role is dropped.
    assert_eq!(node.machined.last_values("talos-role"), ["os:operator"]);

    // An impersonator without talos-role keeps its own (insufficient) role.
    let impersonator = node.pki.client(&["os:impersonator"]);
    let mut client = machine_client(node.apid.addr, &node.pki.ca_crt, Some(&impersonator)).await;
    let status = client
        .version(())
        .await
        .expect_err("impersonator alone reads nothing");
    assert_eq!(status.code(), Code::PermissionDenied);
    // With talos-role it acts as those roles.
    let request = with_metadata((), "talos-role", &["os:reader"]);
    client.version(request).await.expect("impersonated reader");
    assert_eq!(node.machined.last_values("talos-role"), ["os:reader"]);
}

#[tokio::test]
async fn node_with_two_values_is_invalid() {
    let node = node("127.0.13.2", true, |_| {}).await;
    let admin = node.pki.client(&["os:admin"]);
    let mut client = machine_client(node.apid.addr, &node.pki.ca_crt, Some(&admin)).await;
    let request = with_metadata((), "node", &["127.0.13.3", "127.0.13.4"]);
    let status = client.version(request).await.expect_err("two node values");
    assert_eq!(status.code(), Code::InvalidArgument);

    let request = with_metadata((), "node", &["127.0.13.3:50000"]);
    let status = client.version(request).await.expect_err("target with port");
    assert_eq!(status.code(), Code::Internal);
}

#[tokio::test]
async fn maintenance_mode_serves_readers_without_client_certificates() {
    let node = node("127.0.14.2", false, |config| config.maintenance = true).await;
    let mut client = machine_client(node.apid.addr, &node.pki.ca_crt, None).await;
    let reply = client
        .version(())
        .await
        .expect("Version without client certificate");
    assert_eq!(
        reply.into_inner().messages[0]
            .version
            .as_ref()
            .map(|v| v.tag.as_str()),
        Some("local")
    );
    assert_eq!(node.machined.last_values("talos-role"), ["os:reader"]);

    // Routing is disabled: node metadata is ignored.
    let request = with_metadata((), "node", &["127.0.14.99"]);
    client.version(request).await.expect("served locally");

    let status = client
        .reboot(RebootRequest::default())
        .await
        .expect_err("maintenance callers are readers");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "not authorized");
}

#[tokio::test]
async fn nodes_without_client_certificate_serve_only_themselves() {
    let node = node("127.0.15.2", false, |config| {
        config.local_names = vec!["127.0.15.2".into(), "worker-1".into()];
    })
    .await;
    let admin = node.pki.client(&["os:admin"]);
    let mut client = machine_client(node.apid.addr, &node.pki.ca_crt, Some(&admin)).await;

    let request = with_metadata((), "nodes", &["worker-1"]);
    let reply = client
        .version(request)
        .await
        .expect("own name is local")
        .into_inner();
    assert_eq!(
        reply.messages[0].metadata, None,
        "served locally, not fanned out"
    );

    let request = with_metadata((), "node", &["127.0.15.2"]);
    client.version(request).await.expect("own address is local");

    let request = with_metadata((), "node", &["127.0.15.3"]);
    let status = client.version(request).await.expect_err("cannot forward");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "no request forwarding");
}

#[tokio::test]
async fn machined_down_is_unavailable() {
    let dir = temp_dir();
    let pki = Pki::new();
    let address = ip("127.0.16.2");
    pki.write_tls_dir(&path(&dir, "tls"), address, false);
    let port = free_port(&[address]);
    let missing = path(&dir, "no-machined.sock");
    let apid = RunningApid::start(config(address, port, &path(&dir, "tls"), &missing)).await;
    let admin = pki.client(&["os:admin"]);
    let mut client = machine_client(apid.addr, &pki.ca_crt, Some(&admin)).await;
    let status = client
        .version(())
        .await
        .expect_err("nothing listens on the socket");
    assert_eq!(status.code(), Code::Unavailable);
    // The socket's path stays in apid's log (an audit finding: it reached callers).
    assert_eq!(
        status.message(),
        "connection error: machined is unavailable"
    );

    // Once machined is there, the next call reaches it.
    let _machined = Machined::start(&missing, "late");
    let reply = client
        .version(())
        .await
        .expect("machined is up")
        .into_inner();
    assert_eq!(
        reply.messages[0].version.as_ref().map(|v| v.tag.as_str()),
        Some("late")
    );
}

#[tokio::test]
async fn a_connection_beyond_the_cap_is_closed_until_one_is_freed() {
    let node = node("127.0.17.2", true, |config| config.max_connections = 2).await;
    let tls = client_tls(&node.pki.ca_crt, Some(&node.pki.client(&["os:reader"])));
    let connect = || async {
        MachineServiceClient::new(
            channel(node.apid.addr, tls.clone())
                .await
                .expect("connects"),
        )
    };
    let mut first = connect().await;
    let mut second = connect().await;
    first.version(()).await.expect("first connection served");
    second.version(()).await.expect("second connection served");

    let third = tls_connect(node.apid.addr, tls.clone()).await;
    assert!(third.is_err(), "a third connection must be closed at once");

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(stream) = tls_connect(node.apid.addr, tls.clone()).await {
            drop(stream);
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second
        .version(())
        .await
        .expect("the open connection still served");
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_a_followed_log_is_not() {
    let node = node("127.0.18.2", true, |config| config.idle_timeout_seconds = 1).await;
    let tls = client_tls(&node.pki.ca_crt, Some(&node.pki.client(&["os:reader"])));

    // A client that connects and never calls: closed once the idle timeout passes.
    let opened = Instant::now();
    let mut idle = tls_connect(node.apid.addr, tls.clone())
        .await
        .expect("connects");
    let mut received = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(20), idle.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "an idle connection stayed open for 20 s");
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the idle timeout",
        opened.elapsed()
    );

    // A followed log is a call in flight: its connection outlives the idle timeout threefold.
    let mut client = machine_client(
        node.apid.addr,
        &node.pki.ca_crt,
        Some(&node.pki.client(&["os:reader"])),
    )
    .await;
    let mut logs = client
        .logs(LogsRequest {
            id: "apid".into(),
            follow: true,
            ..Default::default()
        })
        .await
        .expect("Logs")
        .into_inner();
    let following = Instant::now();
    let mut lines = 0;
    while following.elapsed() < Duration::from_secs(3) {
        let message = logs.message().await.expect("the stream goes on");
        assert!(
            message.is_some(),
            "the followed log ended after {lines} lines"
        );
        lines += 1;
    }
    assert!(lines > LOG_LINES + 20, "{lines} lines in 3 s");
}

#[tokio::test]
async fn a_stopping_apid_lets_calls_in_flight_finish_and_cuts_endless_streams() {
    let node = node("127.0.19.2", true, |_| {}).await;
    let mut follower = machine_client(
        node.apid.addr,
        &node.pki.ca_crt,
        Some(&node.pki.client(&["os:reader"])),
    )
    .await;
    let mut logs = follower
        .logs(LogsRequest {
            id: "apid".into(),
            follow: true,
            ..Default::default()
        })
        .await
        .expect("Logs")
        .into_inner();
    logs.message().await.expect("the followed log runs");
    let mut operator = machine_client(
        node.apid.addr,
        &node.pki.ca_crt,
        Some(&node.pki.client(&["os:operator"])),
    )
    .await;
    let reboot = tokio::spawn(async move { operator.reboot(RebootRequest::default()).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node
        .machined
        .calls()
        .iter()
        .any(|(m, _)| m.ends_with("/Reboot"))
    {
        assert!(Instant::now() < deadline, "Reboot never reached machined");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // apid stops while machined is still answering (it takes REBOOT_REPLY_DELAY).
    let Node { apid, machined, .. } = node;
    tokio::time::timeout(Duration::from_secs(10), apid.stop())
        .await
        .expect("apid stops although a log is followed");
    let reply = reboot
        .await
        .expect("task")
        .expect("the reply machined sent while apid stopped reaches the client");
    assert_eq!(reply.into_inner().messages[0].actor_id, "reboot-actor");
    let cut = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = logs.message().await {}
    })
    .await;
    assert!(cut.is_ok(), "the followed log outlived apid");
    drop(machined);
}
