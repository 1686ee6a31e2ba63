//! The kernel log shipped as upstream's JSON lines: a dev node started with
//! `--kernel-log-destination` (what `talos.logging.kernel=` is in OS mode) sends the records the
//! test writes to `/dev/kmsg` (as root) to a TCP sink, and a `KmsgLogConfig` document adds a
//! UDP sink live. Loopback block 127.57.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tests::{Cluster, NodeKind, eventually, success};

const SINK: &str = "127.57.0.1";

type Lines = Arc<Mutex<Vec<serde_json::Value>>>;

/// Collects the JSON lines of every connection to `listener`.
fn tcp_sink(listener: TcpListener) -> Lines {
    let lines = Lines::default();
    let collected = Arc::clone(&lines);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let collected = Arc::clone(&collected);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    let value = serde_json::from_str(&line).expect("a JSON line");
                    collected.lock().unwrap().push(value);
                }
            });
        }
    });
    lines
}

fn udp_sink(socket: UdpSocket) -> Lines {
    let lines = Lines::default();
    let collected = Arc::clone(&lines);
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buffer) {
            let value = serde_json::from_slice(&buffer[..n]).expect("a JSON datagram");
            collected.lock().unwrap().push(value);
        }
    });
    lines
}

/// Logs `text` as a user.info kernel record (needs root).
fn log_to_kernel(text: &str) {
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .expect("writing /dev/kmsg needs root");
    kmsg.write_all(format!("<14>{text}\n").as_bytes()).unwrap();
}

fn find(lines: &Lines, text: &str) -> Option<serde_json::Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .find(|line| line["msg"] == text)
        .cloned()
}

#[test]
fn kernel_records_arrive_as_json_lines_from_the_flag_and_from_a_kmsg_log_config() {
    let listener = TcpListener::bind((SINK, 0)).unwrap();
    let tcp_url = format!("tcp://{}", listener.local_addr().unwrap());
    let tcp = tcp_sink(listener);
    let mut cluster = Cluster::generate(57);
    cluster.add_node(
        NodeKind::ControlPlane,
        2,
        &["--kernel-log-destination", &tcp_url],
    );
    cluster.wait_until_answering(&cluster.nodes[0]);
    let node = cluster.nodes[0].address.to_string();

    let marker = format!("talos-rs kernel log test {} tcp", std::process::id());
    log_to_kernel(&marker);
    eventually("the record over TCP", || find(&tcp, &marker).is_some());
    let line = find(&tcp, &marker).unwrap();
    assert_eq!(line["facility"], "user", "{line}");
    assert_eq!(line["priority"], "info", "{line}");
    assert_eq!(line["talos-level"], "info", "{line}");
    assert!(line["seq"].is_u64() && line["clock"].is_u64(), "{line}");
    assert!(line["talos-time"].is_string(), "{line}");
    assert!(line.get("talos-service").is_none(), "{line}");

    // A KmsgLogConfig document adds a destination while the node runs.
    let udp = UdpSocket::bind((SINK, 0)).unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let udp_url = format!("udp://{}", udp.local_addr().unwrap());
    let udp = udp_sink(udp);
    let config = format!(
        "{}\n---\napiVersion: v1alpha1\nkind: KmsgLogConfig\nname: test-sink\nurl: {udp_url}\n",
        cluster.controlplane_config().trim_end()
    );
    let file = cluster.dir.path().join("kmsg.yaml");
    std::fs::write(&file, config).unwrap();
    let applied = cluster.talosctl(&[
        "-n",
        &node,
        "apply-config",
        "--mode",
        "no-reboot",
        "-f",
        &file.to_string_lossy(),
    ]);
    let warnings = String::from_utf8_lossy(&applied.stderr).into_owned();
    success(applied);
    assert!(
        !warnings.contains("KmsgLogConfig"),
        "reported as not applied: {warnings}"
    );
    let marker = format!("talos-rs kernel log test {} udp", std::process::id());
    eventually("the record over UDP", || {
        log_to_kernel(&marker);
        find(&udp, &marker).is_some()
    });
    let line = find(&udp, &marker).unwrap();
    assert_eq!(line["facility"], "user", "{line}");
}
