//! `talosctl dashboard` in a real terminal: tmux runs it against a dev-mode control plane (and a
//! second node that does not answer); the test reads the screen with `capture-pane`, switches
//! screens and nodes with the keys a person would press, quits with `q` and checks that the
//! process ended and the terminal left raw mode. Loopback block 127.51.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tests::{Cluster, binary, success};

/// The tmux server of this test only (`-L`), so no one else's sessions are touched.
const SOCKET: &str = "talos-rs-dashboard-test";
const SESSION: &str = "dashboard";

/// A detached tmux session; killed by name when dropped.
struct Tmux;

impl Tmux {
    fn run(args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", SOCKET])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs (apt-get install tmux)")
    }

    /// Starts `command` (a shell command line) in a 160×45 terminal. The command should not
    /// end while the test reads the screen: tmux may drop the last output of a pane whose
    /// process has exited.
    fn start(command: &str) -> Tmux {
        // A session left over from an interrupted run of this test.
        let _ = Self::run(&["kill-session", "-t", SESSION]);
        success(Self::run(&[
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-x",
            "160",
            "-y",
            "45",
            command,
        ]));
        Tmux
    }

    fn screen(&self) -> String {
        success(Self::run(&["capture-pane", "-p", "-t", SESSION]))
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        success(Self::run(&args));
    }

    /// The screen once it shows every one of `texts` (within 30 s).
    fn wait_for(&self, texts: &[&str]) -> String {
        self.wait_until(&format!("all of {texts:?}"), |screen| {
            texts.iter().all(|t| screen.contains(t))
        })
    }

    /// The screen once `check` accepts it (within 30 s).
    fn wait_until(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Self::run(&["kill-session", "-t", SESSION]);
    }
}

/// The server's tag as `talosctl version` prints it.
fn server_tag(cluster: &Cluster, node: &str) -> String {
    let output = success(cluster.talosctl(&["-n", node, "version"]));
    let server = output.split("Server:").nth(1).unwrap();
    server
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tag:"))
        .unwrap()
        .trim()
        .to_string()
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[test]
fn dashboard_shows_the_node_switches_screens_and_restores_the_terminal() {
    let cluster = Cluster::start(51, 1);
    let node = cluster.nodes[0].address.to_string();
    // Nothing listens here: the dashboard must show this node's error, not stop.
    let silent = "127.51.0.9";
    let tag = server_tag(&cluster, &node);

    let command = format!(
        "{talosctl} --talosconfig {config} -e {node} -n {node},{silent} dashboard \
         --update-interval 1s; s=$?; echo \"dashboard exited with $s; modes:$(stty -a | \
         tr ' ' '\\n' | grep -x -e '-*icanon' -e '-*echo' | tr '\\n' ' ')\"; \
         exec sleep 120",
        talosctl = quote(&binary("talosctl")),
        config = quote(&cluster.talosconfig()),
    );
    let tmux = Tmux::start(&command);

    // Summary: the header names the host and version; services and logs fill in.
    let summary = tmux.wait_for(&[
        "node-2",
        &format!("(Talos {tag})"),
        "apid",
        "Running",
        "[F1: Summary]",
        &format!("[{node} | {silent}]"),
        "CPU ",
        "Memory ",
    ]);
    assert!(summary.contains("HOSTNAME  node-2"), "{summary}");
    assert!(summary.contains(&format!("VERSION   {tag}")), "{summary}");
    // CPU usage needs two samples of the counters: it shows within a few intervals.
    tmux.wait_until("CPU and RAM usage in the header", |screen| {
        let header = screen.lines().next().unwrap_or_default();
        header.contains("%, RAM ") && header.trim_end().ends_with('%')
    });

    tmux.keys(&["F2"]);
    tmux.wait_for(&[
        "CPU usage",
        "Memory usage",
        "Load average",
        "Net RX",
        "PID      STATE  THREADS",
    ]);

    // A dev-mode node without --manage-network has no network resources: the tables stay
    // empty, as lists of nothing (no error: the state simply holds none).
    tmux.keys(&["F3"]);
    let network = tmux.wait_for(&[
        "Links (0)",
        "Addresses (0)",
        "Routes (0)",
        "LINK",
        "DESTINATION",
    ]);
    assert!(!network.contains("addresses, links, routes"), "{network}");

    // → moves to the silent node: its error is in the header, the UI goes on.
    tmux.keys(&["Right"]);
    tmux.wait_for(&[&format!("node {silent}  error:"), "(no hostname)"]);
    tmux.keys(&["Left", "F1"]);
    tmux.wait_for(&["HOSTNAME  node-2", &format!("node {node}")]);

    tmux.keys(&["q"]);
    // Raw mode is off again (`stty` shows canonical input and echo, `-icanon -echo` in raw
    // mode) and the alternate screen is gone with the dashboard on it.
    let after = tmux.wait_for(&["dashboard exited with 0; modes:icanon echo"]);
    assert!(!after.contains("[F1: Summary]"), "{after}");
    drop(tmux);
}
