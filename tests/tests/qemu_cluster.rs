//! `talosctl cluster create qemu` end to end: one control plane and one worker as VMs of the OS
//! image (`cargo xtask image`, run by `scripts/test.sh`) on a bridge inside a network namespace
//! the command creates, configured in maintenance mode, bootstrapped and health-checked; then
//! `cluster destroy` leaves no VM, port helper, namespace or disk; the `iso` preset installs a
//! node from the ISO to its blank disk. Needs root and QEMU.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::Path;

use tests::{LocalCluster, failure, success};

/// One cluster at a time: two TCG clusters at once would starve each other on 2 cores.
fn one_cluster() -> std::sync::MutexGuard<'static, ()> {
    static CLUSTERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CLUSTERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn image_dir() -> &'static Path {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../_out/image"));
    assert!(
        dir.join("disk.qcow2").exists(),
        "{} has no image: run `cargo xtask image` first",
        dir.display()
    );
    dir
}

/// A process that exists and is not a zombie waiting for its parent.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

fn namespaces() -> String {
    String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

#[test]
fn one_control_plane_and_a_worker_boot_configure_and_go_away() {
    let _slot = one_cluster();
    let name = "trs-qemu";
    let image = image_dir();
    let cluster = LocalCluster::new(name);
    let path = |file: &str| image.join(file).display().to_string();
    let (kernel, initrd, disk) = (path("vmlinuz"), path("initramfs.img"), path("disk.qcow2"));
    let out = success(cluster.cluster(&[
        "create",
        "qemu",
        "--controlplanes",
        "1",
        "--workers",
        "1",
        "--memory-controlplanes",
        "1GiB",
        "--memory-workers",
        "1GiB",
        "--vmlinuz-path",
        &kernel,
        "--initrd-path",
        &initrd,
        "--disk-image-path",
        &disk,
        "--wait-timeout",
        "6m",
    ]));
    assert!(out.contains(&format!("cluster {name} is healthy")), "{out}");
    assert!(out.contains("trs-qemu-worker-1: config applied"), "{out}");

    let state_file = cluster.state_root().join(name).join("state.yaml");
    let state = std::fs::read_to_string(&state_file).unwrap();
    let pids: Vec<u32> = state
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pid: "))
        .chain(state.lines().filter_map(|l| l.strip_prefix("helper_pid: ")))
        .map(|pid| pid.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "two VMs and the port helper: {state}");
    assert!(pids.iter().all(|pid| alive(*pid)), "{state}");

    // The worker answers through the control plane's apid, with a certificate from trustd.
    let version = success(cluster.talosctl(&["-n", "10.5.0.3", "version"]));
    assert!(version.contains("10.5.0.3"), "{version}");
    let show = success(cluster.cluster(&["show"]));
    assert!(show.contains("qemu") && show.contains("10.5.0.3"), "{show}");
    // A second cluster of that name is refused while this one exists.
    let error = failure(cluster.cluster(&["create", "qemu", "--vmlinuz-path", &kernel]));
    assert!(error.contains("already exists"), "{error}");

    let out = success(cluster.destroy());
    assert!(out.contains(&format!("destroyed cluster {name}")), "{out}");
    assert!(pids.iter().all(|pid| !alive(*pid)), "a process is left");
    assert!(!namespaces().contains(&format!("talos-{name}")));
    assert!(!cluster.state_root().join(name).exists(), "disks are left");
    let again = success(cluster.destroy());
    assert!(again.contains("nothing to destroy"), "{again}");
}

#[test]
fn extra_kernel_arguments_with_the_iso_preset_are_refused_before_anything_is_made() {
    let _slot = one_cluster();
    let name = "trs-iso-args";
    let image = image_dir();
    let cluster = LocalCluster::new(name);
    let path = |file: &str| image.join(file).display().to_string();
    // Extra kernel arguments cannot reach the ISO's fixed command line: refused, nothing made.
    let error = failure(cluster.cluster(&[
        "create",
        "qemu",
        "--presets",
        "iso",
        "--iso-path",
        &path("talos-rs.iso"),
        "--vmlinuz-path",
        &path("vmlinuz"),
        "--initrd-path",
        &path("initramfs.img"),
        "--disk-image-path",
        &path("disk.qcow2"),
        "--extra-boot-kernel-args",
        "console=ttyS0",
    ]));
    assert!(error.contains("machine.install.extraKernelArgs"), "{error}");
    assert!(!cluster.state_root().join(name).exists());
}

#[test]
#[ignore = "an ISO boot, an install and a reboot under TCG (minutes): `cargo xtask test-clusters` runs it; CI covers installing from the ISO in install.rs"]
fn the_iso_preset_installs_each_node_to_its_blank_disk() {
    let _slot = one_cluster();
    let name = "trs-iso";
    let image = image_dir();
    let cluster = LocalCluster::new(name);
    let path = |file: &str| image.join(file).display().to_string();
    let out = success(cluster.cluster(&[
        "create",
        "qemu",
        "--presets",
        "iso",
        "--controlplanes",
        "1",
        "--workers",
        "0",
        "--memory-controlplanes",
        "1GiB",
        "--vmlinuz-path",
        &path("vmlinuz"),
        "--initrd-path",
        &path("initramfs.img"),
        "--disk-image-path",
        &path("disk.qcow2"),
        "--iso-path",
        &path("talos-rs.iso"),
        "--wait-timeout",
        "6m",
    ]));
    assert!(out.contains(&format!("cluster {name} is healthy")), "{out}");
    // The node runs from the disk it installed: STATE is a partition of /dev/vda.
    let mounts = success(cluster.talosctl(&["-n", "10.5.0.2", "read", "/proc/mounts"]));
    assert!(mounts.contains("/dev/vda5 /system/state xfs"), "{mounts}");
    let console = std::fs::read_to_string(
        cluster
            .state_root()
            .join(name)
            .join(format!("{name}-controlplane-1/console.log")),
    )
    .unwrap();
    assert!(console.contains("(DHCP from 10.5.0.1)"), "{console}");
    success(cluster.destroy());
    assert!(!cluster.state_root().join(name).exists());
}
