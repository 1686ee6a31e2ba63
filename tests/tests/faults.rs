//! Faults a node must survive with nothing lost: each daemon killed in turn, and a full STATE
//! partition under an apply. Recovery times are printed; `cargo xtask faults` runs these with the
//! power cut of a VM in the middle of an apply (tests/tests/image.rs, ignored in CI for time).
//! etcd losing one of three members is in tests/tests/etcd.rs.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::process::Command;
use std::time::Instant;

use tests::{Cluster, eventually, failure, success};

/// The PID of a running service, from `talosctl containers`.
fn service_pid(cluster: &Cluster, node: &str, id: &str) -> Option<i32> {
    let output = cluster.talosctl(&["-n", node, "containers"]);
    let listing = String::from_utf8_lossy(&output.stdout).into_owned();
    listing.lines().find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        (columns.get(2) == Some(&id))
            .then(|| {
                columns
                    .iter()
                    .find_map(|c| c.parse().ok().filter(|p| *p > 1))
            })
            .flatten()
    })
}

/// Whether `id` is Running (and healthy, where it has a health check) per `talosctl service`.
fn running(cluster: &Cluster, node: &str, id: &str) -> bool {
    let output = cluster.talosctl(&["-n", node, "service", id]);
    let text = String::from_utf8_lossy(&output.stdout);
    output.status.success()
        && text
            .lines()
            .any(|l| l.starts_with("STATE") && l.contains("Running"))
        && !text
            .lines()
            .any(|l| l.starts_with("HEALTH") && l.contains("Fail"))
}

#[test]
fn every_daemon_killed_in_turn_comes_back_and_nothing_is_lost() {
    let cluster = Cluster::start(38, 1);
    let node = cluster.nodes[0].address.to_string();
    success(cluster.talosctl(&["-n", &node, "bootstrap"]));
    eventually("etcd running", || running(&cluster, &node, "etcd"));
    let config = cluster.nodes[0].persisted_config();

    let mut figures = Vec::new();
    for id in ["apid", "trustd", "timed", "etcd"] {
        let pid = service_pid(&cluster, &node, id).unwrap_or_else(|| panic!("no {id} process"));
        let killed = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        eventually(&format!("{id} back"), || {
            service_pid(&cluster, &node, id).is_some_and(|new| new != pid)
                && running(&cluster, &node, id)
        });
        figures.push((id, killed.elapsed()));
    }
    // The node still does what it did: configured, etcd serving, nothing lost.
    assert_eq!(cluster.nodes[0].persisted_config(), config);
    let members = success(cluster.talosctl(&["-n", &node, "etcd", "members"]));
    assert_eq!(members.lines().count(), 2, "{members}");
    println!("recovery after SIGKILL (dev mode; includes the restart back-off and health check):");
    for (id, time) in figures {
        println!("  {id:<7} {time:.2?}");
    }
}

/// A tmpfs mounted over a directory for the life of a test.
struct SmallMount(std::path::PathBuf);

impl SmallMount {
    fn new(dir: &std::path::Path, size: &str) -> SmallMount {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs (needs root)");
        SmallMount(dir.to_path_buf())
    }
}

impl Drop for SmallMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_state_partition_refuses_an_apply_and_keeps_the_old_config() {
    let mut cluster = Cluster::generate(39);
    // STATE on a small file system of its own, holding the config, then filled up.
    let state_dir = cluster.dir.path().join("node-2/system/state");
    let _mount = SmallMount::new(&state_dir, "256k");
    std::fs::write(state_dir.join("config.yaml"), cluster.controlplane_config()).unwrap();
    cluster.add_node(tests::NodeKind::ControlPlane, 2, &[]);
    cluster.wait_until_answering(&cluster.nodes[0]);
    let node = cluster.nodes[0].address.to_string();
    let before = cluster.nodes[0].persisted_config();
    let mut filler = std::fs::File::create(state_dir.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);

    let file = cluster.dir.path().join("controlplane.yaml");
    let file = file.to_str().unwrap();
    let patch = "machine:\n  env:\n    AFTER_FULL: yes";
    let apply = |extra: &[&str]| {
        let mut args = vec!["-n", &node, "apply-config", "-f", file, "-p", patch];
        args.extend_from_slice(extra);
        cluster.talosctl(&args)
    };
    let err = failure(apply(&[]));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(!err.contains(state_dir.to_str().unwrap()), "{err}");
    assert_eq!(cluster.nodes[0].persisted_config(), before);
    // The active config is the old one: a dry run of the same patch still shows it as a change.
    let diff = success(apply(&["--dry-run"]));
    assert!(diff.contains("+    AFTER_FULL"), "{diff}");
    // No temporary file was left behind, and once there is room the apply goes through.
    std::fs::remove_file(state_dir.join("filler")).unwrap();
    let mut leftovers: Vec<_> = std::fs::read_dir(&state_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    leftovers.sort();
    // The config and the node identity (`Identities` resource), written at boot.
    assert_eq!(
        leftovers,
        ["config.yaml", "node-identity.yaml"],
        "{leftovers:?}"
    );
    success(apply(&[]));
    assert!(cluster.nodes[0].persisted_config().contains("AFTER_FULL"));
    // The node stops before its STATE is unmounted.
    drop(cluster);
}
