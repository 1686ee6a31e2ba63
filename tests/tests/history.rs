//! What a node remembers, read as upstream's talosctl reads it, against a dev node:
//! `events --tail/--since/--duration` pick from the event history and go on with live events;
//! `dmesg --follow --tail` shows only kernel records written after it started, `dmesg` all of
//! them; a service's log keeps its earlier lines, in order, across a restart, and `logs -f`
//! opened before the restart goes on with the new process's lines. Loopback block
//! 127.87.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::{Cluster, binary, eventually, failure, success};

const BLOCK: u8 = 87;

/// A running talosctl whose stdout lines arrive on a channel.
struct Streaming {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Streaming {
    fn start(cluster: &Cluster, args: &[&str]) -> Streaming {
        let node = cluster.nodes[0].address.to_string();
        let mut child = Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(cluster.talosconfig())
            .args(["-e", &node, "-n", &node])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Streaming {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one contains `text`; panics with what came after 20 s.
    fn until(&mut self, text: &str) -> &[String] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.seen.iter().any(|line| line.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {text:?} in 20 s: {:#?}", self.seen),
            }
        }
        &self.seen
    }

    /// Every line that arrives within `quiet` of the last.
    fn settle(&mut self, quiet: Duration) -> &[String] {
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            self.seen.push(line);
        }
        &self.seen
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The event ids of an events table (its second column), header left out.
fn event_ids(rows: &[String]) -> Vec<String> {
    rows.iter()
        .skip(1)
        .filter_map(|row| row.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

fn restart_timed(cluster: &Cluster) {
    let node = cluster.nodes[0].address.to_string();
    success(cluster.talosctl(&["-n", &node, "restart", "timed"]));
    eventually("timed running again", || {
        let output = cluster.talosctl(&["-n", &node, "service", "timed"]);
        String::from_utf8_lossy(&output.stdout).contains("Running")
    });
}

#[test]
fn events_dmesg_and_logs_read_their_history_as_upstream() {
    let cluster = Cluster::start(BLOCK, 1);
    let node = cluster.nodes[0].address.to_string();

    // The whole history, then the events after one of them, which go on live.
    let mut everything = Streaming::start(&cluster, &["events", "--tail", "-1"]);
    let history = everything.settle(Duration::from_secs(2)).to_vec();
    let ids = event_ids(&history);
    assert!(ids.len() >= 10, "the boot's events: {history:#?}");
    let middle = ids.len() / 2;
    let mut since = Streaming::start(&cluster, &["events", "--since", &ids[middle]]);
    let after = event_ids(since.settle(Duration::from_secs(2)));
    // The node may still be logging its boot's events: the history comes first, in order.
    let expected = &ids[middle + 1..];
    assert!(
        after.len() >= expected.len() && after[..expected.len()] == *expected,
        "--since {}: {after:#?}",
        ids[middle]
    );

    // --duration: only what happened in the last seconds (the restart), not the boot.
    std::thread::sleep(Duration::from_secs(3));
    restart_timed(&cluster);
    let mut recent = Streaming::start(&cluster, &["events", "--duration", "2s"]);
    let recent = recent.settle(Duration::from_secs(2)).to_vec();
    assert!(
        recent
            .iter()
            .any(|row| row.contains("ServiceStateEvent") && row.contains("timed")),
        "{recent:#?}"
    );
    assert!(
        event_ids(&recent).iter().all(|id| !ids.contains(id)),
        "--duration 2s showed boot events: {recent:#?}"
    );
    // The streams opened before the restart saw it live.
    for stream in [&mut everything, &mut since] {
        stream.until("timed");
    }

    let error =
        failure(cluster.talosctl(&["-n", &node, "events", "--tail", "3", "--since", &ids[0]]));
    assert!(error.contains("only one of"), "{error}");

    // dmesg: --tail leaves out what was there before it started.
    let marker = |what: &str| format!("talos-rs history test {} {what}", std::process::id());
    let write_kmsg = |text: &str| {
        let mut kmsg = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .unwrap();
        // Ended by a newline: a record without one stays open for a continuation, unseen by
        // readers until the next record is logged.
        kmsg.write_all(format!("{text}\n").as_bytes()).unwrap();
    };
    write_kmsg(&marker("before"));
    let mut following = Streaming::start(&cluster, &["dmesg", "--follow", "--tail"]);
    std::thread::sleep(Duration::from_secs(2));
    write_kmsg(&marker("after"));
    let followed = following.until(&marker("after")).to_vec();
    assert!(
        !followed.iter().any(|line| line.contains(&marker("before"))),
        "--tail showed an old record: {followed:#?}"
    );
    let whole = success(cluster.talosctl(&["-n", &node, "dmesg"]));
    let before = whole
        .find(&marker("before"))
        .expect("dmesg holds the old record");
    let after = whole
        .find(&marker("after"))
        .expect("dmesg holds the new record");
    assert!(before < after, "dmesg keeps the kernel's order");

    // A service's log across its restart: the earlier lines first, unchanged, then the new
    // process's; a follower from before the restart sees the new process start.
    let earlier = success(cluster.talosctl(&["-n", &node, "logs", "timed"]));
    let earlier: Vec<&str> = earlier.lines().collect();
    assert!(!earlier.is_empty(), "timed logged nothing");
    let mut follower = Streaming::start(&cluster, &["logs", "-f", "--tail", "0", "timed"]);
    std::thread::sleep(Duration::from_secs(1));
    restart_timed(&cluster);
    eventually("the follower sees timed's new process", || {
        follower.settle(Duration::from_millis(200));
        !follower.seen.is_empty()
    });
    let later = success(cluster.talosctl(&["-n", &node, "logs", "timed"]));
    let later: Vec<&str> = later.lines().collect();
    assert!(
        later.len() > earlier.len() && later[..earlier.len()] == earlier[..],
        "the earlier lines kept their place, the new ones follow: {earlier:#?}\n{later:#?}"
    );
    let added = &later[earlier.len()..];
    for line in &follower.seen {
        assert!(
            added.contains(&line.as_str()),
            "followed {line:?}, not among the new lines {added:#?}"
        );
    }
}
