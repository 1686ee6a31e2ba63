//! `machine.logging.destinations`: a dev node ships its services' logs and machined's own as
//! JSON lines to sinks on loopback (TCP and UDP), goes on after the TCP sink restarts, and keeps
//! answering with a destination that is down. Loopback blocks 127.44.0.0/24 and 127.45.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tests::{Cluster, eventually, success};

const SINK: &str = "127.44.0.1";

/// A TCP sink collecting JSON lines until stopped.
struct TcpSink {
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl TcpSink {
    fn start(port: u16) -> TcpSink {
        let listener = TcpListener::bind((SINK, port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (collected, stopped) = (Arc::clone(&lines), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut readers = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                    readers.push(read_lines(
                        stream,
                        Arc::clone(&collected),
                        Arc::clone(&stopped),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            for reader in readers {
                let _ = reader.join();
            }
        });
        TcpSink { lines, stop, port }
    }

    /// Closes the listener and every connection.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn read_lines(
    stream: TcpStream,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) if line.ends_with('\n') => {
                    lines
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&line).expect("a JSON line"));
                    line.clear();
                }
                _ => {}
            }
        }
    })
}

/// Whether some collected line is from `service` and carries the test's tag.
fn has_line_from(lines: &Mutex<Vec<serde_json::Value>>, service: &str) -> bool {
    lines
        .lock()
        .unwrap()
        .iter()
        .any(|line| line["talos-service"] == service && line["test"] == "shipping")
}

/// SIGKILLs apid; machined starts it again (and it answers again).
fn restart_apid(cluster: &Cluster) {
    let pid = cluster.nodes[0].apid_pid().expect("apid runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("apid to be back", || {
        cluster.nodes[0].apid_pid().is_some_and(|new| new != pid)
    });
    cluster.wait_until_answering(&cluster.nodes[0]);
}

fn destinations_patch(endpoints: &[String]) -> String {
    let destinations: Vec<String> = endpoints
        .iter()
        .map(|e| {
            format!(
                r#"{{"endpoint":"{e}","format":"json_lines","extraTags":{{"test":"shipping"}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"machine":{{"logging":{{"destinations":[{}]}}}}}}"#,
        destinations.join(",")
    )
}

#[test]
fn services_and_machined_ship_json_lines_over_tcp_and_udp_through_a_sink_restart() {
    let cluster = Cluster::start(44, 1);
    let node = cluster.nodes[0].address.to_string();
    let tcp = TcpSink::start(0);
    let udp = UdpSocket::bind((SINK, 0)).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let udp_lines = Arc::new(Mutex::new(Vec::new()));
    {
        let (udp, lines) = (udp.try_clone().unwrap(), Arc::clone(&udp_lines));
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65536];
            loop {
                if let Ok(n) = udp.recv(&mut buffer) {
                    let line: serde_json::Value = serde_json::from_slice(&buffer[..n]).unwrap();
                    lines.lock().unwrap().push(line);
                }
            }
        });
    }
    let endpoints = [
        format!("tcp://{SINK}:{}", tcp.port),
        format!("udp://{SINK}:{}", udp.local_addr().unwrap().port()),
    ];
    success(cluster.talosctl(&[
        "-n",
        &node,
        "patch",
        "machineconfig",
        "--patch",
        &destinations_patch(&endpoints),
    ]));
    // A restarted daemon logs its start-up line.
    restart_apid(&cluster);
    eventually("apid and machined lines over TCP", || {
        has_line_from(&tcp.lines, "apid") && has_line_from(&tcp.lines, "machined")
    });
    eventually("apid lines over UDP", || has_line_from(&udp_lines, "apid"));
    let line = tcp.lines.lock().unwrap()[0].clone();
    for field in ["msg", "talos-level", "talos-service", "talos-time"] {
        assert!(line[field].is_string(), "{field} missing: {line}");
    }

    // The sink goes away and comes back on the same port: shipping resumes.
    let port = tcp.port;
    tcp.stop();
    restart_apid(&cluster);
    let tcp = TcpSink::start(port);
    restart_apid(&cluster);
    eventually("apid lines after the sink restarted", || {
        has_line_from(&tcp.lines, "apid")
    });
    tcp.stop();
}

#[test]
fn a_destination_that_is_down_disturbs_nothing() {
    let cluster = Cluster::start(45, 1);
    let node = cluster.nodes[0].address.to_string();
    // Nothing listens on port 9 of the sink address.
    let patch = destinations_patch(&[format!("tcp://{SINK}:9")]);
    success(cluster.talosctl(&["-n", &node, "patch", "machineconfig", "--patch", &patch]));
    eventually("machined to report the destination unreachable", || {
        cluster.nodes[0]
            .logs()
            .contains("log destination unreachable")
    });
    restart_apid(&cluster);
    let version = success(cluster.talosctl(&["-n", &node, "version"]));
    assert!(version.contains(&node), "{version}");
}
