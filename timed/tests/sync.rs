//! timed against a real chronyd on loopback: the real binary in measure-only mode (the host
//! clock is never changed), queried over its Unix socket.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant, SystemTime};

use proto::talosrs::timed::{ConfigureRequest, SyncStatus};
use proto::time::TimeRequest;
use support::{Chrony, Silent, Timed};

const FAST: &[&str] = &["--poll-interval", "0.2", "--query-timeout", "0.3"];

/// Follows WatchStatus until `done` holds (at most 10 s).
async fn wait_for(timed: &Timed, done: impl Fn(&SyncStatus) -> bool) -> SyncStatus {
    let mut client = timed.timed().await;
    let mut stream = client.watch_status(()).await.unwrap().into_inner();
    let deadline = Duration::from_secs(10);
    tokio::time::timeout(deadline, async {
        loop {
            let status = stream.message().await.unwrap().expect("stream ended");
            if done(&status) {
                return status;
            }
        }
    })
    .await
    .expect("status not reached in 10 s")
}

fn nanos(duration: Option<prost_types::Duration>) -> i64 {
    let d = duration.unwrap();
    d.seconds * 1_000_000_000 + i64::from(d.nanos)
}

fn system_time(ts: Option<prost_types::Timestamp>) -> SystemTime {
    SystemTime::try_from(ts.unwrap()).unwrap()
}

fn apart(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).unwrap_or_else(|e| e.duration())
}

fn args<'a>(server: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--server", server];
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn syncs_with_local_chrony_and_reports_status() {
    let chrony = Chrony::start();
    let timed = Timed::start(&args(&chrony.server, FAST)).await;
    wait_for(&timed, |s| s.synced).await;

    let status = timed.timed().await.status(()).await.unwrap().into_inner();
    assert!(status.synced);
    assert!(status.measure_only);
    assert!(!status.disabled);
    assert_eq!(status.server, chrony.server);
    assert_eq!(status.servers, vec![chrony.server.clone()]);
    assert_eq!(status.stratum, 8);
    assert_eq!(status.error, "");
    let offset = nanos(status.offset);
    assert!(offset.abs() < 1_000_000_000, "offset {offset} ns");
    let delay = nanos(status.delay);
    assert!((0..1_000_000_000).contains(&delay), "delay {delay} ns");
    assert!(apart(system_time(status.last_sync), SystemTime::now()) < Duration::from_secs(5));

    // Polls go on: last_sync moves forward.
    let first = status.last_sync;
    let later = wait_for(&timed, |s| s.last_sync != first).await;
    assert!(later.synced);
}

#[tokio::test]
async fn time_service_answers_time_and_time_check() {
    let chrony = Chrony::start();
    let silent = Silent::bind();
    let timed = Timed::start(&args(&chrony.server, FAST)).await;
    let mut time = timed.time().await;

    let reply = time.time(()).await.unwrap().into_inner();
    assert_eq!(reply.messages.len(), 1);
    let message = &reply.messages[0];
    assert_eq!(message.server, chrony.server);
    let local = system_time(message.localtime);
    let remote = system_time(message.remotetime);
    assert!(apart(local, remote) < Duration::from_secs(1));
    assert!(apart(local, SystemTime::now()) < Duration::from_secs(5));

    let checked = time
        .time_check(TimeRequest {
            server: chrony.server.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.messages[0].server, chrony.server);

    let bad = time
        .time_check(TimeRequest {
            server: "not a host".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    let dead = time
        .time_check(TimeRequest {
            server: silent.server.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(dead.code(), tonic::Code::Unavailable);
    assert!(
        dead.message().contains("did not answer"),
        "{}",
        dead.message()
    );
}

#[tokio::test]
async fn a_silent_server_gives_an_error_and_no_sync() {
    let silent = Silent::bind();
    let timed = Timed::start(&args(&silent.server, FAST)).await;
    let status = wait_for(&timed, |s| !s.error.is_empty()).await;
    assert!(!status.synced);
    assert_eq!(status.server, "");
    assert!(status.last_sync.is_none());
    assert!(status.error.contains(&silent.server), "{}", status.error);
    assert!(status.error.contains("did not answer"), "{}", status.error);
}

#[tokio::test]
async fn a_closed_port_gives_a_refused_error() {
    // Nothing listens there: the kernel answers ICMP port unreachable.
    let server = format!("127.0.0.1:{}", tests::free_udp_port());
    let timed = Timed::start(&args(&server, FAST)).await;
    let status = wait_for(&timed, |s| !s.error.is_empty()).await;
    assert!(!status.synced);
    assert!(
        status.error.to_lowercase().contains("refused"),
        "{}",
        status.error
    );
}

#[tokio::test]
async fn configure_switches_servers_live() {
    let chrony = Chrony::start();
    let silent = Silent::bind();
    let timed = Timed::start(&args(&silent.server, FAST)).await;
    wait_for(&timed, |s| !s.error.is_empty()).await;

    let mut client = timed.timed().await;
    client
        .configure(ConfigureRequest {
            servers: vec![chrony.server.clone()],
            disabled: false,
        })
        .await
        .unwrap();
    let status = wait_for(&timed, |s| s.synced).await;
    assert_eq!(status.server, chrony.server);
    assert_eq!(status.servers, vec![chrony.server.clone()]);
    assert_eq!(status.error, "");

    // Back to the silent server: the clock stays synced, the error says why polls fail.
    let switched = Instant::now();
    client
        .configure(ConfigureRequest {
            servers: vec![silent.server.clone()],
            disabled: false,
        })
        .await
        .unwrap();
    let status = wait_for(&timed, |s| !s.error.is_empty()).await;
    assert!(status.synced);
    assert!(status.error.contains(&silent.server), "{}", status.error);
    assert!(switched.elapsed() < Duration::from_secs(3));

    // Disabled: reported synced (the clock is trusted), no error.
    client
        .configure(ConfigureRequest {
            servers: vec![],
            disabled: true,
        })
        .await
        .unwrap();
    let status = wait_for(&timed, |s| s.disabled).await;
    assert!(status.synced);
    assert_eq!(status.error, "");
    assert_eq!(status.servers, vec!["time.cloudflare.com".to_string()]);

    let refused = client
        .configure(ConfigureRequest {
            servers: vec!["[::1".into()],
            disabled: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn servers_come_from_the_machine_config() {
    let chrony = Chrony::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "version: v1alpha1\nmachine:\n  time:\n    servers:\n      - {}\n    bootTimeout: 2m0s\n",
            chrony.server
        ),
    )
    .unwrap();
    let mut extra = vec!["--config", config.to_str().unwrap()];
    extra.extend_from_slice(FAST);
    let timed = Timed::start(&extra).await;
    let status = wait_for(&timed, |s| s.synced).await;
    assert_eq!(status.server, chrony.server);
}

#[tokio::test]
async fn sigterm_stops_timed_and_removes_its_socket() {
    let silent = Silent::bind();
    let mut timed = Timed::start(&args(&silent.server, FAST)).await;
    let socket = timed.socket();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(timed.pid()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = timed.wait().await;
    assert!(status.success(), "{status}");
    assert!(!socket.exists());
}

#[tokio::test]
async fn sigterm_stops_timed_while_a_client_watches_its_status() {
    let silent = Silent::bind();
    let mut timed = Timed::start(&args(&silent.server, FAST)).await;
    // machined keeps such a stream open for as long as timed runs.
    let mut client = timed.timed().await;
    let mut watch = client.watch_status(()).await.unwrap().into_inner();
    watch.message().await.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(timed.pid()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), timed.wait())
        .await
        .expect("timed still runs 5 s after SIGTERM with a watcher connected");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn ipv6_literals_and_host_names_are_queried() {
    let chrony = Chrony::start();
    let v6 = format!("[::1]:{}", chrony.port);
    let name = format!("localhost:{}", chrony.port);
    let timed = Timed::start(&args(&v6, FAST)).await;
    let status = wait_for(&timed, |s| s.synced).await;
    assert_eq!(status.server, v6);

    let mut time = timed.time().await;
    let reply = time.time(()).await.unwrap().into_inner();
    assert_eq!(reply.messages[0].server, v6);
    let checked = time
        .time_check(TimeRequest {
            server: name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.messages[0].server, name);
}
