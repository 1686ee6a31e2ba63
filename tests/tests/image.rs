//! The OS image booted in QEMU (TCG on these machines): the ISO boots into maintenance mode;
//! a nocloud `cidata` volume configures a node by itself, and so does a metal node with
//! `talos.config=http://…` (answered by a host command through QEMU's guestfwd);
//! the disk image boots by itself into maintenance mode, takes a generated config over `apply-config --insecure`, answers over
//! mutual TLS (its sysctl and sysfs settings applied, a missing sysctl reported, its hardware
//! watchdog fed), and comes back configured after a reboot; a kernel command line without the
//! hardening options makes machined refuse to boot; the image holds no shell or interpreter;
//! an upgrade boots the other slot once and commits it when healthy, a rollback goes back, and
//! a release that cannot boot falls back to the previous slot by itself.
//!
//! The image comes from `cargo xtask image` (run by `scripts/test.sh` first); these tests fail
//! with that hint when `_out/image` is missing.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use qemu::{Boot, HostService, UserNet, Vm, VmConfig};
use tests::{binary, image_dir, one_vm, run_bounded, run_bounded_with_input, success};

const API_READY: &str = "machined: apid answering on";
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

struct Talosctl {
    talosconfig: PathBuf,
    port: u16,
}

impl Talosctl {
    /// Maintenance mode: no client certificate, the node is the endpoint.
    fn insecure(&self, args: &[&str]) -> Output {
        let node = format!("127.0.0.1:{}", self.port);
        run_bounded(
            Command::new(binary("talosctl"))
                .args(["--talosconfig", "/nonexistent", "-n", &node])
                .args(args)
                .arg("--insecure"),
            Duration::from_secs(20),
        )
    }

    /// Mutual TLS with the generated talosconfig, through the forwarded port.
    fn secure(&self, args: &[&str]) -> Output {
        self.secure_within(args, Duration::from_secs(20))
    }

    fn secure_within(&self, args: &[&str], timeout: Duration) -> Output {
        self.secure_with_input(args, None, timeout)
    }

    fn secure_with_input(&self, args: &[&str], input: Option<&[u8]>, timeout: Duration) -> Output {
        let endpoint = format!("127.0.0.1:{}", self.port);
        run_bounded_with_input(
            Command::new(binary("talosctl"))
                .arg("--talosconfig")
                .arg(&self.talosconfig)
                .args(["-e", &endpoint, "-n", "10.0.2.15"])
                .args(args),
            input,
            timeout,
        )
    }
}

fn eventually(what: &str, vm: &Vm, mut attempt: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match attempt() {
            Ok(()) => return,
            Err(error) if Instant::now() > deadline => {
                panic!("{what}: {error}\nconsole:\n{}", vm.console_text())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Ok when `talosctl services` shows each of `ids` running and healthy.
fn services_up(talosctl: &Talosctl, ids: &[&str]) -> Result<(), String> {
    let out = ok(talosctl.secure(&["services"]))?;
    let up = |id: &str| {
        out.lines().any(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            columns.get(1) == Some(&id) && columns.contains(&"Running") && columns.contains(&"OK")
        })
    };
    ids.iter().all(|id| up(id)).then_some(()).ok_or(out)
}

/// The PID `talosctl containers` shows for a running container `id`.
fn container_pid(containers: &str, id: &str) -> Option<u32> {
    containers.lines().find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        // NODE NAMESPACE ID IMAGE PID STATUS
        (columns.get(2) == Some(&id) && columns.last() == Some(&"RUNNING"))
            .then(|| columns.get(4)?.parse().ok())
            .flatten()
    })
}

/// `talosctl gen config <cluster>` for a node at QEMU's guest address, written into `dir`.
fn gen_config(dir: &Path, cluster: &str) {
    success(
        Command::new(binary("talosctl"))
            .args([
                "gen",
                "config",
                cluster,
                "https://10.0.2.15:6443",
                "--output-dir",
            ])
            .arg(dir)
            .output()
            .unwrap(),
    );
}

fn ok(output: Output) -> Result<String, String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A copy-on-write disk over the built image, in `dir`.
fn overlay_disk(image: &Path, dir: &Path) -> PathBuf {
    let disk = dir.join("disk.qcow2");
    success(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(image.join("disk.qcow2").canonicalize().unwrap())
            .arg(&disk)
            .output()
            .unwrap(),
    );
    disk
}

/// A VM booting `disk`, its files in `dir/name`.
fn disk_vm(name: &str, image: &Path, dir: &Path, disk: &Path) -> VmConfig {
    VmConfig {
        name: name.into(),
        out_dir: dir.into(),
        boot: Boot::Disk,
        disk: Some(disk.into()),
        probe_kernel: image.join("vmlinuz"),
        memory_mib: 1024,
        api_port: 0,
        network: UserNet::DEFAULT,
        host_services: Vec::new(),
    }
}

/// Where [`partitioned_user_disk`] writes a marker, between the ends a fast wipe zeroes.
const USER_DISK_MARKER_AT: u64 = 32 << 20;
const USER_DISK_MARKER: &[u8] = b"talos-rs user data";

/// A 64 MiB raw disk with a GPT of one partition and [`USER_DISK_MARKER`] in its middle.
fn partitioned_user_disk(dir: &Path) -> PathBuf {
    use std::io::{Seek as _, SeekFrom, Write as _};
    let path = dir.join("user-disk.raw");
    let mut file = std::fs::File::create(&path).unwrap();
    file.set_len(64 << 20).unwrap();
    file.seek(SeekFrom::Start(USER_DISK_MARKER_AT)).unwrap();
    file.write_all(USER_DISK_MARKER).unwrap();
    drop(file);
    success(
        Command::new("sgdisk")
            .args(["--new=1:2048:+16M", "--change-name=1:data"])
            .arg(&path)
            .output()
            .unwrap(),
    );
    path
}

/// The bytes of `path` at `offset`, `len` of them.
fn bytes_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut bytes = vec![0; len];
    file.read_exact(&mut bytes).unwrap();
    bytes
}

/// `talosctl wipe disk`: the system disk is refused; a fast wipe of the user disk zeroes its
/// partition tables (both GPT headers) and leaves the middle; a wipe with zeroes takes all.
fn user_disk_wiped_and_system_disk_refused(talosctl: &Talosctl, user_disk: &Path) {
    let size = std::fs::metadata(user_disk).unwrap().len();
    let gpt_signature = b"EFI PART";
    assert_eq!(bytes_at(user_disk, 512, 8), gpt_signature);
    assert_eq!(bytes_at(user_disk, size - 512, 8), gpt_signature);
    let disks = success(talosctl.secure(&["get", "disks"]));
    let vdb = disks
        .lines()
        .find(|row| row.split_whitespace().nth(3) == Some("vdb"))
        .unwrap_or_else(|| panic!("no vdb: {disks}"));
    assert!(vdb.contains("67 MB") && vdb.contains("virtio"), "{disks}");

    let refused = talosctl.secure(&["wipe", "disk", "vda5"]);
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && error.contains("vda5 is the system disk"),
        "{error}"
    );
    let refused = talosctl.secure(&["wipe", "disk", "nosuch"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no block device nosuch"),
        "{refused:?}"
    );

    success(talosctl.secure(&["wipe", "disk", "vdb"]));
    assert_eq!(bytes_at(user_disk, 512, 8), [0; 8], "primary GPT left");
    assert_eq!(
        bytes_at(user_disk, size - 512, 8),
        [0; 8],
        "backup GPT left"
    );
    assert_eq!(
        bytes_at(user_disk, USER_DISK_MARKER_AT, USER_DISK_MARKER.len()),
        USER_DISK_MARKER,
        "a fast wipe zeroes only the ends"
    );
    success(talosctl.secure(&["wipe", "disk", "vdb", "--method", "ZEROES"]));
    assert_eq!(
        bytes_at(user_disk, USER_DISK_MARKER_AT, USER_DISK_MARKER.len()),
        vec![0; USER_DISK_MARKER.len()],
        "zeroes wipe the whole disk"
    );
}

#[test]
fn disk_image_boots_to_maintenance_takes_a_config_and_keeps_it_across_a_reboot() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    // The config first: its certificates must be older than the guest's clock, which starts
    // from the RTC's whole second.
    gen_config(work.path(), "image-test");
    let disk = overlay_disk(&image, work.path());
    let user_disk = partitioned_user_disk(work.path());
    let extras = qemu::Extras {
        raw_disks: vec![user_disk.clone()],
        ..Default::default()
    };
    let mut vm = Vm::start_with(&disk_vm("disk", &image, work.path(), &disk), &extras).unwrap();
    let talosctl = Talosctl {
        talosconfig: work.path().join("talosconfig"),
        port: vm.api.port(),
    };
    vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    let console = vm.console_text();
    assert!(console.contains("machined: formatting STATE"), "{console}");
    assert!(
        console.contains("machined: EPHEMERAL (/dev/vda6) mounted at /var"),
        "{console}"
    );

    eventually("maintenance mode answers Version", &vm, || {
        let out = ok(talosctl.insecure(&["version"]))?;
        out.contains("Tag:").then_some(()).ok_or(out)
    });
    let config = work.path().join("controlplane.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{}\n{WATCHDOG_DOCUMENT}", text.trim_end())).unwrap();
    let applied = success(talosctl.insecure(&[
        "apply-config",
        "--file",
        config.to_str().unwrap(),
        "-p",
        KERNEL_PARAMS_PATCH,
    ]));
    assert!(applied.contains("Applied configuration"), "{applied}");

    eventually("mutual TLS Version", &vm, || {
        ok(talosctl.secure(&["version"])).map(drop)
    });
    eventually("every service running and healthy", &vm, || {
        services_up(
            &talosctl,
            &["containerd", "apid", "trustd", "timed", "networkd"],
        )
    });
    // The system services are containerd tasks in namespace `system`.
    let containers = success(talosctl.secure(&["containers"]));
    for id in ["apid", "trustd", "timed", "networkd"] {
        assert!(container_pid(&containers, id).is_some(), "{containers}");
    }
    // networkd, a task too, reports the address PID 1 gave eth0.
    let addresses = success(talosctl.secure(&["get", "addresses"]));
    assert!(addresses.contains("10.0.2.15/24"), "{addresses}");
    let stats = success(talosctl.secure(&["stats"]));
    assert!(stats.lines().any(|l| l.contains(" apid ")), "{stats}");
    // Each service task has its own cgroup under `system`, drawn with its memory use.
    let cgroups = success(talosctl.secure(&["cgroups", "--preset", "memory"]));
    for id in ["apid", "trustd", "timed", "networkd"] {
        let row = cgroups
            .lines()
            .find(|row| row.contains(&format!("──{id} ")))
            .unwrap_or_else(|| panic!("no cgroup for {id}: {cgroups}"));
        // NAME, then MemCurrent as a number and its unit.
        let unit = row.split_whitespace().nth(2).unwrap_or_default();
        assert!(["B", "KiB", "MiB", "GiB"].contains(&unit), "{id}: {row}");
    }
    user_disk_wiped_and_system_disk_refused(&talosctl, &user_disk);
    let trustd_before = container_pid(&containers, "trustd");
    success(talosctl.secure(&["restart", "trustd"]));
    eventually("trustd restarted as a new task", &vm, || {
        let containers = ok(talosctl.secure(&["containers"]))?;
        let pid = container_pid(&containers, "trustd");
        (pid.is_some() && pid != trustd_before)
            .then_some(())
            .ok_or(containers)
    });
    // etcd, once bootstrapped, runs as a task too and serves the membership API.
    success(talosctl.secure(&["bootstrap"]));
    eventually("etcd running and healthy", &vm, || {
        services_up(&talosctl, &["etcd"])
    });
    let containers = success(talosctl.secure(&["containers"]));
    assert!(container_pid(&containers, "etcd").is_some(), "{containers}");
    let members = success(talosctl.secure(&["etcd", "members"]));
    assert_eq!(members.lines().count(), 2, "{members}");
    assert!(!success(talosctl.secure(&["logs", "etcd"])).is_empty());
    let cmdline = success(talosctl.secure(&["read", "/proc/cmdline"]));
    assert!(
        cmdline.contains("init_on_alloc=1 slab_nomerge pti=on"),
        "{cmdline}"
    );
    let dmesg = success(talosctl.secure(&["dmesg"]));
    assert!(dmesg.contains("machined: phase mountRoot done"), "{dmesg}");
    let logs = success(talosctl.secure(&["logs", "apid"]));
    assert!(!logs.is_empty());
    let mounts = success(talosctl.secure(&["read", "/proc/mounts"]));
    let root = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("/"))
        .unwrap();
    assert!(root.starts_with("/dev/loop0 / squashfs ro,"), "{root}");
    assert!(mounts.contains("/dev/vda5 /system/state xfs"), "{mounts}");
    // /etc is in memory over the read-only root: the config's files are written there.
    assert!(mounts.contains("tmpfs /etc tmpfs"), "{mounts}");
    let console = vm.console_text();
    for failure in ["Read-only file system", "printk_devkmsg"] {
        assert!(!console.contains(failure), "{console}");
    }
    modules_locked_after_loading_the_images_modules(&talosctl, &vm);
    kernel_params_applied(&talosctl, &vm);
    watchdog_armed(&talosctl, &vm);
    booted_artifacts_match_the_build(&talosctl, &vm, &image);
    a_debug_container_runs_in_the_hosts_namespaces(&talosctl, &vm, work.path());

    // Minutes have passed since the watchdog was armed with 20 s: fed, it never reset the VM.
    let console = vm.console_text();
    assert_eq!(
        console.matches("machined: PID 1 started").count(),
        1,
        "{console}"
    );
    let before_reboot = vm.console_text().len();
    // The test follows the reboot on the console.
    success(talosctl.secure(&["reboot", "--wait=false"]));
    vm.wait_for_console("machined: PID 1 started", before_reboot, BOOT_TIMEOUT)
        .unwrap();
    vm.wait_for_console(API_READY, before_reboot, BOOT_TIMEOUT)
        .unwrap();
    let second_boot = vm.console_text()[before_reboot..].to_string();
    assert!(
        second_boot.contains("machined: STATE (/dev/vda5) mounted"),
        "{second_boot}"
    );
    assert!(!second_boot.contains("formatting"), "{second_boot}");
    eventually("the persisted config after the reboot", &vm, || {
        ok(talosctl.secure(&["version"])).map(drop)
    });
    let maintenance = talosctl.insecure(&["version"]);
    assert!(
        !maintenance.status.success(),
        "still in maintenance mode after the reboot"
    );
}

/// Module loading is locked once the image's modules (networkd's link kinds, WireGuard,
/// netfilter) are in: `kernel.modules_disabled` reads 1 through Read and KernelParamStatus.
fn modules_locked_after_loading_the_images_modules(talosctl: &Talosctl, vm: &Vm) {
    eventually("kernel.modules_disabled = 1", vm, || {
        let value = ok(talosctl.secure(&["read", "/proc/sys/kernel/modules_disabled"]))?;
        (value.trim() == "1").then_some(()).ok_or(value)
    });
    eventually(
        "KernelParamStatus kernel.modules_disabled current 1",
        vm,
        || {
            let status = kernel_param_status(talosctl, "proc.sys.kernel.modules_disabled")?;
            (status["current"].as_str() == Some("1"))
                .then_some(())
                .ok_or(format!("{status:?}"))
        },
    );
    let modules = success(talosctl.secure(&["read", "/proc/modules"]));
    for name in [
        "bonding",
        "8021q",
        "dummy",
        "wireguard",
        "nf_tables",
        "ext4",
    ] {
        assert!(
            modules.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} not loaded before the lock:\n{modules}"
        );
    }
    let console = vm.console_text();
    assert!(
        console.contains("machined: kernel module loading locked (kernel.modules_disabled=1)"),
        "{console}"
    );
}

/// The kernel parameters the disk test's config sets: a sysctl, a sysfs attribute and a sysctl
/// the kernel does not have (reported, the others applied all the same).
const KERNEL_PARAMS_PATCH: &str = "machine:\n  sysctls:\n    net.ipv4.tcp_keepalive_time: \"599\"\n    \
     net.ipv4.no_such_param: \"1\"\n  sysfs:\n    block.vda.queue.read_ahead_kb: \"256\"\n";

/// The disk test's hardware watchdog (QEMU's i6300esb): a VM that stops feeding it is reset.
const WATCHDOG_DOCUMENT: &str =
    "---\napiVersion: v1alpha1\nkind: WatchdogTimerConfig\ndevice: /dev/watchdog0\ntimeout: 20s\n";

/// The watchdog is open and fed every third of its timeout.
fn watchdog_armed(talosctl: &Talosctl, vm: &Vm) {
    eventually("WatchdogTimerStatus", vm, || {
        let out = ok(talosctl.secure(&["get", "watchdogtimerstatuses", "timer", "-o", "yaml"]))?;
        let spec = yaml_documents(&out)?
            .first()
            .map(|document| document["spec"].clone())
            .ok_or(out.clone())?;
        let armed = spec["device"].as_str() == Some("/dev/watchdog0")
            && spec["timeout"].as_str() == Some("20s")
            && spec["feedInterval"].as_str() == Some("6.666666666s");
        armed.then_some(()).ok_or(out)
    });
}

/// The spec of `KernelParamStatus` `id`.
fn kernel_param_status(talosctl: &Talosctl, id: &str) -> Result<serde_norway::Value, String> {
    let out = ok(talosctl.secure(&["get", "kernelparamstatuses", id, "-o", "yaml"]))?;
    yaml_documents(&out)?
        .first()
        .map(|document| document["spec"].clone())
        .ok_or(out)
}

/// [`KERNEL_PARAMS_PATCH`] is in the kernel: read back through `/proc/sys` and `/sys`, shown
/// by `KernelParamStatus` with the value it replaced, and the missing key reported.
fn kernel_params_applied(talosctl: &Talosctl, vm: &Vm) {
    for (path, value) in [
        ("/proc/sys/net/ipv4/tcp_keepalive_time", "599"),
        ("/sys/block/vda/queue/read_ahead_kb", "256"),
    ] {
        eventually(&format!("{path} = {value}"), vm, || {
            let read = ok(talosctl.secure(&["read", path]))?;
            (read.trim() == value).then_some(()).ok_or(read)
        });
    }
    let status = kernel_param_status(talosctl, "proc.sys.net.ipv4.tcp_keepalive_time").unwrap();
    assert_eq!(status["current"].as_str(), Some("599"), "{status:?}");
    assert_eq!(status["default"].as_str(), Some("7200"), "{status:?}");
    let sysfs = kernel_param_status(talosctl, "sys.block.vda.queue.read_ahead_kb").unwrap();
    assert_eq!(sysfs["current"].as_str(), Some("256"), "{sysfs:?}");
    let missing = kernel_param_status(talosctl, "proc.sys.net.ipv4.no_such_param").unwrap();
    assert_eq!(missing["unsupported"].as_bool(), Some(true), "{missing:?}");
    let console = vm.console_text();
    assert!(
        console.contains("proc.sys.net.ipv4.no_such_param = \"1\"")
            && console.contains("the kernel has no such parameter"),
        "{console}"
    );
}

/// The documents of `talosctl get -o yaml`.
fn yaml_documents(text: &str) -> Result<Vec<serde_norway::Value>, String> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            <serde_norway::Value as serde::Deserialize>::deserialize(document)
                .map_err(|e| format!("{e}: {text}"))
        })
        .collect()
}

/// A `docker save` tarball of one layer: the host's static busybox as `/bin/busybox`, with
/// `sh`, `hostname`, `cat`, `tr` and `tty` linked to it.
fn busybox_image(dir: &Path) -> PathBuf {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (Debian busybox-static, installed by scripts/setup.sh)");
    let header = |kind: tar::EntryType, size: usize, mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    };
    let mut layer = tar::Builder::new(Vec::new());
    let mut dir_header = header(tar::EntryType::Directory, 0, 0o755);
    layer
        .append_data(&mut dir_header, "bin", std::io::empty())
        .unwrap();
    let mut file = header(tar::EntryType::Regular, busybox.len(), 0o755);
    layer
        .append_data(&mut file, "bin/busybox", busybox.as_slice())
        .unwrap();
    for applet in ["sh", "hostname", "cat", "tr", "tty", "date"] {
        let mut link = header(tar::EntryType::Symlink, 0, 0o777);
        layer
            .append_link(&mut link, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]}}"#;
    let manifest = br#"[{"Config":"config.json","RepoTags":["talos-rs/debug-busybox:test"],"Layers":["layer.tar"]}]"#;
    let mut image = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", &manifest[..]),
        ("config.json", &config[..]),
        ("layer.tar", layer.as_slice()),
    ] {
        let mut file = header(tar::EntryType::Regular, data.len(), 0o644);
        image.append_data(&mut file, name, data).unwrap();
    }
    let path = dir.join("debug-busybox.tar");
    std::fs::write(&path, image.into_inner().unwrap()).unwrap();
    path
}

/// `talosctl debug` with a busybox image built here: the commands piped in run in the host's
/// PID namespace (its PID 1 is machined), the exit code comes back as talosctl's, a terminal
/// gets one in the container, a tarball
/// that is no image and an image the node does not hold are refused clearly, and no task is
/// left behind.
fn a_debug_container_runs_in_the_hosts_namespaces(talosctl: &Talosctl, vm: &Vm, dir: &Path) {
    let image = busybox_image(dir);
    let image = image.to_str().unwrap();
    let node_hostname = success(talosctl.secure(&["read", "/proc/sys/kernel/hostname"]));
    let init = success(talosctl.secure(&["read", "/proc/1/cmdline"]));
    let init = init.trim_end_matches('\0').replace('\0', " ");
    let started = Instant::now();
    let out = talosctl.secure_with_input(
        &["debug", image],
        Some(b"hostname; tr '\\0' ' ' </proc/1/cmdline; echo; exit 3\n"),
        Duration::from_secs(120),
    );
    eprintln!("talosctl debug: {:?}", started.elapsed());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("container exited with code 3"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&node_hostname.trim()), "{stdout}");
    assert_eq!(
        lines.get(1).map(|l| l.trim()),
        Some(init.trim()),
        "PID 1 is the host's: {stdout}"
    );
    // Without arguments of its own the image's command ran; with them, they run.
    let out = talosctl.secure_with_input(
        &[
            "debug",
            "talos-rs/debug-busybox:test",
            "--args",
            "/bin/cat,/proc/self/cgroup",
        ],
        Some(b""),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("/system/debug/debug-"), "{stdout}");
    // On a terminal (script(1) gives talosctl one), the container gets a terminal too.
    let endpoint = format!("127.0.0.1:{}", talosctl.port);
    let command = format!(
        "{} --talosconfig {} -e {endpoint} -n 10.0.2.15 debug talos-rs/debug-busybox:test",
        binary("talosctl").display(),
        talosctl.talosconfig.display()
    );
    let out = run_bounded_with_input(
        Command::new("script").args(["-qec", &command, "/dev/null"]),
        Some(b"tty; exit 5\n"),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");
    assert!(stdout.contains("/dev/pts/0"), "{stdout}");

    let junk = dir.join("junk.tar");
    std::fs::write(&junk, b"not an image").unwrap();
    let out = talosctl.secure(&["debug", junk.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("failed to import image") && stderr.contains("not a container image"),
        "{stderr}"
    );
    let out = talosctl.secure(&["debug", "example.org/missing:1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("failed to pull image") && stderr.contains("reach no registry"),
        "{stderr}"
    );
    // As upstream's, the task is deleted once the exit code is sent (runc takes seconds here).
    eventually("every debug task removed", vm, || {
        let containers = ok(talosctl.secure(&["containers"]))?;
        (!containers.contains("debug-"))
            .then_some(())
            .ok_or(containers)
    });
    let images = success(talosctl.secure(&["image", "list"]));
    assert!(images.contains("talos-rs/debug-busybox:test"), "{images}");
    every_service_killed_comes_back(talosctl, vm);
    success(talosctl.secure(&["image", "remove", "talos-rs/debug-busybox:test"]));
}

/// Each system service SIGKILLed in turn from a debug container (host PID namespace): machined
/// runs it again as a new task, healthy, and the node's config and etcd member are still there.
/// apid is last: the debug session runs through it and ends with it.
fn every_service_killed_comes_back(talosctl: &Talosctl, vm: &Vm) {
    let mut recovered = Vec::new();
    for id in ["trustd", "timed", "networkd", "etcd", "apid"] {
        let containers = success(talosctl.secure(&["containers"]));
        let victim = container_pid(&containers, id)
            .unwrap_or_else(|| panic!("no task for {id}: {containers}"));
        let started = Instant::now();
        let out = talosctl.secure_with_input(
            &["debug", "talos-rs/debug-busybox:test"],
            Some(format!("kill -9 {victim}; exit 0\n").as_bytes()),
            Duration::from_secs(120),
        );
        if id != "apid" {
            assert!(
                out.status.success(),
                "killing {id}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        eventually(&format!("{id} running again as a new task"), vm, || {
            let containers = ok(talosctl.secure(&["containers"]))?;
            match container_pid(&containers, id) {
                Some(pid) if pid != victim => services_up(talosctl, &[id]),
                _ => Err(containers),
            }
        });
        recovered.push((id, started.elapsed()));
    }
    let config = success(talosctl.secure(&["get", "machineconfig", "-o", "yaml"]));
    assert!(
        config.contains("image-test"),
        "the cluster's config: {config}"
    );
    let members = success(talosctl.secure(&["etcd", "members"]));
    assert_eq!(members.lines().count(), 2, "{members}");
    for (id, took) in recovered {
        eprintln!("{id} SIGKILLed -> running and healthy again: {took:.1?}");
    }
}

/// `BootArtifacts` (kernel and initramfs read back from the booted slot, the SquashFS root)
/// carry the digests the build wrote into `SHA256SUMS`.
fn booted_artifacts_match_the_build(talosctl: &Talosctl, vm: &Vm, image: &Path) {
    let sums = std::fs::read_to_string(image.join("SHA256SUMS")).unwrap();
    let built = |name: &str| {
        sums.lines()
            .find_map(|l| l.strip_suffix(&format!("  {name}")))
            .unwrap_or_else(|| panic!("{name} not in SHA256SUMS:\n{sums}"))
            .to_string()
    };
    let mut published = std::collections::BTreeMap::new();
    eventually("three boot artifacts published", vm, || {
        let out = ok(talosctl.secure(&["get", "bootartifacts", "-o", "yaml"]))?;
        published.clear();
        for value in yaml_documents(&out)? {
            let id = value["metadata"]["id"].as_str().unwrap_or_default();
            let digest = value["spec"]["sha256"].as_str().unwrap_or_default();
            published.insert(id.to_string(), digest.to_string());
        }
        (published.len() == 3).then_some(()).ok_or(out)
    });
    for name in ["vmlinuz", "initramfs.img", "rootfs.sqsh"] {
        assert_eq!(
            published.get(name),
            Some(&built(name)),
            "{name}: {published:?}"
        );
    }
}

#[test]
#[ignore = "four TCG boots (minutes): `cargo xtask faults` runs it"]
fn a_power_cut_during_apply_config_leaves_the_old_or_the_new_config() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    gen_config(work.path(), "power-cut");
    let disk = overlay_disk(&image, work.path());
    let mut vm = Vm::start(&disk_vm("configure", &image, work.path(), &disk)).unwrap();
    vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    let mut talosctl = Talosctl {
        talosconfig: work.path().join("talosconfig"),
        port: vm.api.port(),
    };
    let config = work.path().join("controlplane.yaml");
    let config = config.to_str().unwrap();
    eventually("maintenance mode", &vm, || {
        ok(talosctl.insecure(&["version"])).map(drop)
    });
    success(talosctl.insecure(&["apply-config", "--file", config]));
    eventually("mutual TLS", &vm, || {
        ok(talosctl.secure(&["version"])).map(drop)
    });

    // Cut the power at several moments of an apply; each boot must find a whole config.
    let mut outcomes = Vec::new();
    let mut previous: Option<String> = None;
    for (round, delay) in [0u64, 600, 5000].into_iter().enumerate() {
        let marker = format!("ROUND: \"{round}\"");
        let patch = format!("machine:\n  env:\n    {marker}");
        let mut apply = Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(&talosctl.talosconfig)
            .args([
                "-e",
                &format!("127.0.0.1:{}", talosctl.port),
                "-n",
                "10.0.2.15",
            ])
            .args(["apply-config", "--file", config, "-p", &patch])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        vm.kill();
        let _ = apply.kill();
        let _ = apply.wait();

        vm = Vm::start(&disk_vm(
            &format!("cut-{round}"),
            &image,
            work.path(),
            &disk,
        ))
        .unwrap();
        if let Err(error) = vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT) {
            let console = vm.console_text();
            let tail = &console[console.len().saturating_sub(3000)..];
            panic!("{error}\n{tail}");
        }
        talosctl.port = vm.api.port();
        // A torn config would leave the node in maintenance mode: it must answer mutual TLS.
        eventually("the node configured after the power cut", &vm, || {
            ok(talosctl.secure(&["version"])).map(drop)
        });
        let active = success(talosctl.secure(&["get", "machineconfig", "-o", "yaml"]));
        let outcome = if active.contains(&marker) {
            previous = Some(marker);
            "new"
        } else {
            assert!(
                previous.as_ref().is_none_or(|old| active.contains(old)),
                "neither the old nor the new config:\n{active}"
            );
            "old"
        };
        outcomes.push((delay, outcome));
    }
    println!("power cut during apply-config (delay after sending -> config after boot):");
    for (delay, outcome) in outcomes {
        println!("  {delay:>4} ms: {outcome}");
    }
}

/// The node's clock set an hour back, then two hours forward, from a debug container: apid
/// still takes talosctl's certificate (made before, on the host's clock), machined issues the
/// API and etcd certificates anew after the jump back (and keeps them after the jump forward),
/// and etcd keeps answering machined.
#[test]
#[ignore = "a TCG boot (minutes): `cargo xtask faults` runs it"]
fn a_clock_set_an_hour_back_or_forward_keeps_the_api_and_etcd_working() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    gen_config(work.path(), "clock-jump");
    let disk = overlay_disk(&image, work.path());
    let mut vm = Vm::start(&disk_vm("clock", &image, work.path(), &disk)).unwrap();
    vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    let talosctl = Talosctl {
        talosconfig: work.path().join("talosconfig"),
        port: vm.api.port(),
    };
    let config = work.path().join("controlplane.yaml");
    eventually("maintenance mode", &vm, || {
        ok(talosctl.insecure(&["version"])).map(drop)
    });
    success(talosctl.insecure(&["apply-config", "--file", config.to_str().unwrap()]));
    eventually("mutual TLS", &vm, || {
        ok(talosctl.secure(&["version"])).map(drop)
    });
    success(talosctl.secure(&["bootstrap"]));
    eventually("etcd running and healthy", &vm, || {
        services_up(&talosctl, &["etcd"])
    });
    let busybox = busybox_image(work.path());
    let mut recovered = Vec::new();
    // Certificates are issued anew only after the jump back: after the jump forward the old
    // ones are still valid (new ones would not be valid yet for talosctl, whose clock is right).
    for (shift, image) in [
        (-3600, busybox.to_str().unwrap()),
        (7200, "talos-rs/debug-busybox:test"),
    ] {
        let out = talosctl.secure_with_input(
            &["debug", image],
            Some(
                format!("date -s @$(( $(date +%s) + {shift} )) >/dev/null; date +%s; exit 0\n")
                    .as_bytes(),
            ),
            Duration::from_secs(120),
        );
        let set = Instant::now();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "date -s: {stdout}");
        let node_clock: i64 = stdout
            .lines()
            .find_map(|line| line.trim().parse().ok())
            .unwrap_or_else(|| panic!("no time from the node: {stdout}"));
        let host_clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let expected = host_clock + if shift < 0 { shift } else { shift - 3600 };
        assert!(
            (node_clock - expected).abs() < 120,
            "the node's clock {node_clock}, expected about {expected}"
        );
        eventually(
            "the API and etcd answering after the clock was set",
            &vm,
            || {
                ok(talosctl.secure(&["version"]))?;
                let members = ok(talosctl.secure(&["etcd", "members"]))?;
                (members.lines().count() == 2)
                    .then_some(())
                    .ok_or(members)?;
                services_up(&talosctl, &["etcd", "apid", "trustd"])
            },
        );
        recovered.push((shift, set.elapsed()));
        let console = vm.console_text();
        let count = |line: &str| console.matches(line).count();
        assert_eq!(
            (
                count("the clock was set: API certificates issued anew"),
                count("the clock was set: etcd certificates issued anew")
            ),
            (1, 1),
            "{console}"
        );
    }
    for (shift, took) in recovered {
        println!("clock set by {shift:+} s -> API and etcd answering: {took:.1?}");
    }
}

/// The project key `cargo xtask image` signed the build with (`_out/keys`).
fn project_key(image: &Path) -> cosign::SigningKey {
    let path = image.join("../keys/cosign.key");
    cosign::SigningKey::from_pem(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// An installer of the built kernel and initramfs with `overlay` (path, content) unpacked over
/// the initramfs (appended as a second cpio archive, then compressed again), signed by
/// `signer` (none: unsigned).
fn installer_with(
    image: &Path,
    dir: &Path,
    name: &str,
    overlay: &[(&str, &[u8])],
    signer: Option<&cosign::SigningKey>,
) -> PathBuf {
    let cpio = dir.join(format!("{name}.cpio"));
    success(
        Command::new("zstd")
            .args(["-d", "-q", "-f", "-o"])
            .arg(&cpio)
            .arg(image.join("initramfs.img"))
            .output()
            .unwrap(),
    );
    let entries: Vec<installer::cpio::Entry> = overlay
        .iter()
        .map(|(path, data)| installer::cpio::Entry::File {
            path: path.to_string(),
            mode: 0o444,
            data: data.to_vec(),
        })
        .collect();
    let mut archive = std::fs::OpenOptions::new()
        .append(true)
        .open(&cpio)
        .unwrap();
    installer::cpio::write(&mut archive, &entries).unwrap();
    drop(archive);
    let compressed = dir.join(format!("{name}.img"));
    success(
        Command::new("zstd")
            .args(["-3", "-q", "-f", "-o"])
            .arg(&compressed)
            .arg(&cpio)
            .output()
            .unwrap(),
    );
    let path = dir.join(format!("{name}.tar"));
    let release = overlay
        .iter()
        .find(|(p, _)| *p == "release")
        .map_or("", |(_, data)| std::str::from_utf8(data).unwrap());
    installer::write(
        std::fs::File::create(&path).unwrap(),
        &installer::Installer {
            name: &format!("talos-rs/installer:{name}"),
            release,
            kernel: &std::fs::read(image.join("vmlinuz")).unwrap(),
            initramfs: &std::fs::read(&compressed).unwrap(),
            signer,
        },
    )
    .unwrap();
    path
}

/// Waits for the next boot (after console offset `from`) to answer over mutual TLS with every
/// system service healthy; returns the console offset of that boot.
fn next_boot_up(vm: &mut Vm, talosctl: &Talosctl, from: usize) -> usize {
    vm.wait_for_console("machined: PID 1 started", from, BOOT_TIMEOUT)
        .unwrap();
    let boot = vm.console_text().rfind("machined: PID 1 started").unwrap();
    vm.wait_for_console(API_READY, boot, BOOT_TIMEOUT).unwrap();
    eventually("every service running and healthy", vm, || {
        services_up(
            talosctl,
            &["containerd", "apid", "trustd", "timed", "networkd"],
        )
    });
    boot
}

/// A disk VM `name` configured with `dir`'s controlplane.yaml through maintenance mode, up with
/// every system service healthy.
fn configured_disk_node(name: &str, image: &Path, dir: &Path, disk: &Path) -> (Vm, Talosctl) {
    let mut vm = Vm::start(&disk_vm(name, image, dir, disk)).unwrap();
    let talosctl = Talosctl {
        talosconfig: dir.join("talosconfig"),
        port: vm.api.port(),
    };
    vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    eventually("maintenance mode answers Version", &vm, || {
        ok(talosctl.insecure(&["version"])).map(drop)
    });
    let config = dir.join("controlplane.yaml");
    success(talosctl.insecure(&["apply-config", "--file", config.to_str().unwrap()]));
    next_boot_up(&mut vm, &talosctl, 0);
    (vm, talosctl)
}

/// Ok when Version reports `release` and META's upgrade status contains `status`.
fn runs(talosctl: &Talosctl, release: &str, status: &str) -> Result<(), String> {
    let version = ok(talosctl.secure(&["version"]))?;
    if !version.contains(&format!("talos-rs {release}")) {
        return Err(version);
    }
    let meta = ok(talosctl.secure(&["get", "metakeys", "0xf0", "-o", "yaml"]))?;
    meta.contains(status).then_some(()).ok_or(meta)
}

#[test]
fn upgrades_to_the_other_slot_rolls_back_by_hand_and_falls_back_from_a_broken_release() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    gen_config(work.path(), "upgrade-test");
    let key = project_key(&image);
    let next = [("release", &b"v0.1.1-next"[..])];
    let upgrade = installer_with(&image, work.path(), "next", &next, Some(&key));
    let unsigned = installer_with(&image, work.path(), "unsigned", &next, None);
    let stranger = cosign::SigningKey::generate().unwrap();
    let foreign = installer_with(&image, work.path(), "foreign", &next, Some(&stranger));
    let broken = installer_with(
        &image,
        work.path(),
        "broken",
        &[("release", b"v0.1.2-broken"), ("rootfs.sqsh", b"")],
        Some(&key),
    );
    let disk = overlay_disk(&image, work.path());
    let (mut vm, talosctl) = configured_disk_node("upgrade", &image, work.path(), &disk);
    let version = success(talosctl.secure(&["version"]));
    assert!(version.contains("talos-rs v0.1.0"), "{version}");

    // Bad input first: nothing changes.
    let same = talosctl.secure(&["upgrade", "--image", "ghcr.io/siderolabs/installer:v1.13.0"]);
    let error = String::from_utf8_lossy(&same.stderr);
    assert!(
        !same.status.success() && error.contains("reach no registry"),
        "{error}"
    );
    // Unsigned, or signed by a key the node does not trust: refused at import, nothing stored.
    for (installer, reason) in [
        (&unsigned, "not signed"),
        (&foreign, "no valid signature by the image's default key"),
    ] {
        let refused = talosctl.secure_within(
            &["upgrade", "--image", installer.to_str().unwrap()],
            Duration::from_secs(120),
        );
        let error = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && error.contains(reason),
            "{error}"
        );
    }
    let stored = success(talosctl.secure(&["image", "list"]));
    assert!(
        !stored.contains("unsigned") && !stored.contains("foreign"),
        "{stored}"
    );

    // A → B: imported through the API, tried once, committed once healthy.
    let before = vm.console_text().len();
    let upgrade_arg = upgrade.to_str().unwrap();
    let started = Instant::now();
    // As upstream's talosctl from v1.13: import, ImageService.Pull (the image is on the node),
    // LifecycleService.Upgrade, then Reboot; `--wait` (the default) follows the reboot to the
    // new boot's running stage.
    let waited = success(talosctl.secure_within(
        &["upgrade", "--image", upgrade_arg],
        Duration::from_secs(400),
    ));
    for step in [
        "already exists",
        "pulled",
        "written to slot B",
        "reboot requested",
    ] {
        assert!(waited.contains(step), "{step:?} missing from:\n{waited}");
    }
    let boot = next_boot_up(&mut vm, &talosctl, before);
    eventually("the upgrade committed", &vm, || {
        runs(
            &talosctl,
            "v0.1.1-next",
            "done: v0.1.1-next runs from slot B",
        )
    });
    eprintln!("upgrade: request to committed in {:?}", started.elapsed());
    let console = vm.console_text()[boot..].to_string();
    assert!(
        console.contains("booted slot B of the system disk"),
        "{console}"
    );
    // The older MachineService.Upgrade refuses the release that runs (without --force).
    let again = talosctl.secure_within(
        &["upgrade", "--legacy", "--image", upgrade_arg],
        Duration::from_secs(300),
    );
    let error = String::from_utf8_lossy(&again.stderr);
    assert!(error.contains("already runs v0.1.1-next"), "{error}");

    // Rollback by hand: slot A's system, tried and committed the same way.
    let before = vm.console_text().len();
    success(talosctl.secure(&["rollback"]));
    next_boot_up(&mut vm, &talosctl, before);
    eventually("the rollback committed", &vm, || {
        runs(&talosctl, "v0.1.0", "done: v0.1.0 runs from slot A")
    });

    // A release that cannot boot: its trial fails, GRUB falls back to A by itself, and META
    // says why.
    let before = vm.console_text().len();
    success(talosctl.secure_within(
        &[
            "upgrade",
            "--image",
            broken.to_str().unwrap(),
            "--wait=false",
        ],
        Duration::from_secs(300),
    ));
    vm.wait_for_console("machined: rebooting in", before, BOOT_TIMEOUT)
        .unwrap();
    let fallback = vm.console_text().len();
    next_boot_up(&mut vm, &talosctl, fallback);
    eventually("back on slot A with the reason", &vm, || {
        runs(
            &talosctl,
            "v0.1.0",
            "slot B did not come up healthy; slot A booted again",
        )
    });
}

#[test]
#[ignore = "three TCG boots (minutes): `cargo xtask faults` runs it"]
fn a_power_cut_during_an_upgrade_boots_the_old_or_the_new_release() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    gen_config(work.path(), "upgrade-cut");
    let key = project_key(&image);
    let next = [("release", &b"v0.1.1-next"[..])];
    let upgrade = installer_with(&image, work.path(), "next", &next, Some(&key));
    let upgrade_arg = upgrade.to_str().unwrap();
    let disk = overlay_disk(&image, work.path());
    let (mut vm, mut talosctl) = configured_disk_node("upgrade-cut", &image, work.path(), &disk);

    // While the image is uploaded, and once the slot is written (before the reboot). Each time
    // the disk boots a whole system again.
    for (round, cut_when) in ["uploading", "written to slot"].into_iter().enumerate() {
        let before = vm.console_text().len();
        let mut upgrading = Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(&talosctl.talosconfig)
            .args([
                "-e",
                &format!("127.0.0.1:{}", talosctl.port),
                "-n",
                "10.0.2.15",
            ])
            .args(["upgrade", "--image", upgrade_arg, "--force", "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if cut_when == "uploading" {
            std::thread::sleep(Duration::from_secs(2));
        } else {
            vm.wait_for_console(cut_when, before, BOOT_TIMEOUT).unwrap();
        }
        vm.kill();
        let _ = upgrading.kill();
        let _ = upgrading.wait();
        vm = Vm::start(&disk_vm(
            &format!("cut-{round}"),
            &image,
            work.path(),
            &disk,
        ))
        .unwrap();
        talosctl.port = vm.api.port();
        next_boot_up(&mut vm, &talosctl, 0);
        let version = success(talosctl.secure(&["version"]));
        assert!(
            version.contains("talos-rs v0.1.0") || version.contains("talos-rs v0.1.1-next"),
            "after a power cut {cut_when}: {version}"
        );
    }
}

/// etcd's client port, forwarded from the host in the etcd power-cut test.
const ETCD_CLIENT_PORT: u16 = 2379;

/// An etcd client of `talosctl gen config`'s cluster, through the VM's forwarded client port:
/// a certificate of the config's etcd CA, the server checked under the node's address.
fn etcd_client(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    vm: &Vm,
) -> Result<etcd_client::Client, String> {
    let config = std::fs::read_to_string(dir.join("controlplane.yaml")).unwrap();
    let ca: pki::PemCertificateAndKey = yaml_documents(&config)
        .unwrap()
        .into_iter()
        .find_map(|document| document["cluster"]["etcd"]["ca"].as_mapping().cloned())
        .map(|ca| serde_norway::from_value(serde_norway::Value::Mapping(ca)).unwrap())
        .expect("the config carries the etcd CA");
    let authority = pki::CertificateAuthority::from_pair(&ca).unwrap();
    // A key of the CA's algorithm, as machined's own etcd client has (ECDSA for an ECDSA CA).
    let client = authority
        .issue_leaf(
            &pki::LeafCertificate {
                common_name: "power-cut-test",
                organizations: &[],
                extended_key_usages: &[pki::ExtendedKeyUsage::ClientAuth],
                subject_alt_names: &pki::SubjectAltNames::default(),
                key_encipherment: true,
            },
            pki::Validity::from_now(time::Duration::hours(1)),
        )
        .unwrap();
    let tls = etcd_client::TlsOptions::new()
        .domain_name("10.0.2.15")
        .ca_certificate(etcd_client::Certificate::from_pem(ca.crt.unwrap()))
        .identity(etcd_client::Identity::from_pem(
            client.crt.unwrap(),
            client.key.unwrap(),
        ));
    let (_, address) = vm
        .forwarded
        .iter()
        .find(|(guest, _)| *guest == ETCD_CLIENT_PORT)
        .expect("etcd's port is forwarded");
    let options = etcd_client::ConnectOptions::new()
        .with_tls(tls)
        .with_timeout(Duration::from_secs(3))
        .with_connect_timeout(Duration::from_secs(3));
    runtime
        .block_on(etcd_client::Client::connect(
            [format!("https://{address}")],
            Some(options),
        ))
        .map_err(|error| format!("{error:?}"))
}

#[test]
#[ignore = "three TCG boots (minutes): `cargo xtask faults` runs it"]
fn a_power_cut_during_etcd_writes_keeps_every_acknowledged_write() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    gen_config(work.path(), "etcd-cut");
    let disk = overlay_disk(&image, work.path());
    let start = |name: &str| {
        let extras = qemu::Extras {
            guest_ports: vec![ETCD_CLIENT_PORT],
            ..Default::default()
        };
        Vm::start_with(&disk_vm(name, &image, work.path(), &disk), &extras).unwrap()
    };
    let mut vm = start("configure");
    let mut talosctl = Talosctl {
        talosconfig: work.path().join("talosconfig"),
        port: vm.api.port(),
    };
    vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    eventually("maintenance mode", &vm, || {
        ok(talosctl.insecure(&["version"])).map(drop)
    });
    let config = work.path().join("controlplane.yaml");
    success(talosctl.insecure(&["apply-config", "--file", config.to_str().unwrap()]));
    next_boot_up(&mut vm, &talosctl, 0);
    success(talosctl.secure(&["bootstrap"]));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut client = None;
    eventually("etcd takes writes", &vm, || {
        let mut connected = etcd_client(&runtime, work.path(), &vm)?;
        runtime
            .block_on(connected.put("power-cut/ready", "", None))
            .map_err(|error| error.to_string())?;
        client = Some(connected);
        Ok(())
    });
    let mut client = client.unwrap();

    // Writes one after another, each acknowledged before the next; the power goes while they
    // run. Every acknowledged write must be there after the boot, in order, with at most the
    // one in flight beyond them.
    let (acknowledged_sender, acknowledged) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        for index in 0u32.. {
            let key = format!("power-cut/{index:06}");
            if runtime
                .block_on(client.put(key, index.to_string(), None))
                .is_err()
            {
                return index;
            }
            if acknowledged_sender.send(index).is_err() {
                return index + 1;
            }
        }
        unreachable!("the writes end with the power")
    });
    let mut last_acknowledged = None;
    while last_acknowledged.is_none_or(|last| last < 40) {
        last_acknowledged = Some(
            acknowledged
                .recv_timeout(Duration::from_secs(30))
                .expect("etcd acknowledges writes"),
        );
    }
    vm.kill();
    let attempted = writer.join().unwrap();
    let last_acknowledged = acknowledged
        .try_iter()
        .last()
        .or(last_acknowledged)
        .unwrap();

    vm = start("after-cut");
    talosctl.port = vm.api.port();
    next_boot_up(&mut vm, &talosctl, 0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut found = Vec::new();
    eventually("etcd answers after the power cut", &vm, || {
        let mut client = etcd_client(&runtime, work.path(), &vm)?;
        let options = etcd_client::GetOptions::new().with_prefix();
        let reply = runtime
            .block_on(client.get("power-cut/0", Some(options)))
            .map_err(|error| error.to_string())?;
        found = reply
            .kvs()
            .iter()
            .map(|kv| kv.value_str().unwrap().parse::<u32>().unwrap())
            .collect();
        runtime
            .block_on(client.put("power-cut/after", "", None))
            .map_err(|error| error.to_string())?;
        Ok(())
    });
    let expected: Vec<u32> = (0..found.len() as u32).collect();
    assert_eq!(
        found, expected,
        "the writes kept are the first ones, in order"
    );
    assert!(
        found.len() as u32 > last_acknowledged && found.len() as u32 <= attempted + 1,
        "{} writes kept; {last_acknowledged} the last acknowledged, {attempted} in flight",
        found.len()
    );
    println!(
        "power cut during etcd writes: {} acknowledged, {} kept after the boot",
        last_acknowledged + 1,
        found.len()
    );
}

/// Under UEFI firmware: the ISO's BIOS boot is what `install.rs` and the QEMU cluster's iso
/// preset boot.
#[test]
fn the_iso_boots_into_maintenance_mode_with_uefi_firmware() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    let mut vm = Vm::start(&VmConfig {
        name: "iso".into(),
        out_dir: work.path().into(),
        boot: Boot::UefiIso(image.join("talos-rs.iso")),
        disk: None,
        probe_kernel: image.join("vmlinuz"),
        memory_mib: 1024,
        api_port: 0,
        network: UserNet::DEFAULT,
        host_services: Vec::new(),
    })
    .unwrap();
    uefi_boot_reaches_maintenance_mode(&mut vm, "machined: booted from the install medium");
}

#[test]
fn the_disk_image_boots_with_uefi_firmware() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    let disk = overlay_disk(&image, work.path());
    let mut config = disk_vm("uefi", &image, work.path(), &disk);
    config.boot = Boot::UefiDisk;
    let mut vm = Vm::start(&config).unwrap();
    // GRUB's EFI image read BOOT and booted slot A.
    uefi_boot_reaches_maintenance_mode(&mut vm, "booted slot A of the system disk");
}

/// Waits for `vm`'s API; the console shows the kernel handed over from UEFI firmware and
/// `booted`; maintenance mode answers Version.
fn uefi_boot_reaches_maintenance_mode(vm: &mut Vm, booted: &str) {
    vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    let console = vm.console_text();
    assert!(console.contains("efi: EFI v"), "{console}");
    assert!(console.contains(booted), "{console}");
    let talosctl = Talosctl {
        talosconfig: PathBuf::from("/nonexistent"),
        port: vm.api.port(),
    };
    eventually("maintenance mode answers Version", vm, || {
        let out = ok(talosctl.insecure(&["version"]))?;
        out.contains("Tag:").then_some(()).ok_or(out)
    });
}

#[test]
fn a_nocloud_cidata_volume_configures_the_node_without_maintenance_mode() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    gen_config(work.path(), "nocloud-test");
    let cidata = work.path().join("cidata");
    std::fs::create_dir(&cidata).unwrap();
    std::fs::copy(
        work.path().join("controlplane.yaml"),
        cidata.join("user-data"),
    )
    .unwrap();
    std::fs::write(cidata.join("meta-data"), "instance-id: nocloud-test\n").unwrap();
    let volume = work.path().join("cidata.iso");
    success(
        Command::new("xorriso")
            .args([
                "-as", "mkisofs", "-quiet", "-r", "-J", "-volid", "cidata", "-o",
            ])
            .arg(&volume)
            .arg(&cidata)
            .output()
            .unwrap(),
    );
    // No talos.platform= on the command line: nocloud is detected from the volume label.
    let cmdline = std::fs::read_to_string(image.join("cmdline")).unwrap();
    let cmdline: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|a| !a.starts_with("talos.platform="))
        .collect();
    let mut vm = Vm::start(&VmConfig {
        name: "nocloud".into(),
        out_dir: work.path().into(),
        boot: Boot::Kernel {
            kernel: image.join("vmlinuz"),
            initramfs: image.join("initramfs.img"),
            cmdline: cmdline.join(" "),
        },
        disk: Some(volume),
        probe_kernel: image.join("vmlinuz"),
        memory_mib: 1024,
        api_port: 0,
        network: UserNet::DEFAULT,
        host_services: Vec::new(),
    })
    .unwrap();
    let console = vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    assert!(
        console.contains("machined: nocloud: config taken from /dev/vda"),
        "{console}"
    );
    let talosctl = Talosctl {
        talosconfig: work.path().join("talosconfig"),
        port: vm.api.port(),
    };
    eventually("mutual TLS Version without apply-config", &vm, || {
        ok(talosctl.secure(&["version"])).map(drop)
    });
    let maintenance = talosctl.insecure(&["version"]);
    assert!(
        !maintenance.status.success(),
        "the node is in maintenance mode"
    );
}

/// A command that answers one HTTP connection with `body`, noting the request line in
/// `dir/request` (run by QEMU for each guest connection).
fn config_server(dir: &Path, body: &[u8]) -> String {
    let mut response =
        format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend_from_slice(body);
    std::fs::write(dir.join("response"), response).unwrap();
    let script = dir.join("serve.sh");
    let dir = dir.display();
    std::fs::write(
        &script,
        format!("head -n 1 >{dir}/request\ncat {dir}/response\n"),
    )
    .unwrap();
    format!("/bin/sh {}", script.display())
}

#[test]
fn a_metal_node_downloads_its_config_from_talos_config() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    gen_config(work.path(), "url-test");
    let port = 8080;
    let server = config_server(
        work.path(),
        &std::fs::read(work.path().join("controlplane.yaml")).unwrap(),
    );
    let cmdline = std::fs::read_to_string(image.join("cmdline")).unwrap();
    let url = format!(
        "http://{}:{port}/config.yaml?uuid=${{uuid}}",
        qemu::HOST_SERVICES
    );
    let mut vm = Vm::start(&VmConfig {
        name: "metal-url".into(),
        out_dir: work.path().into(),
        boot: Boot::Kernel {
            kernel: image.join("vmlinuz"),
            initramfs: image.join("initramfs.img"),
            cmdline: format!("{} talos.config={url}", cmdline.trim()),
        },
        disk: None,
        probe_kernel: image.join("vmlinuz"),
        memory_mib: 1024,
        api_port: 0,
        network: UserNet::DEFAULT,
        host_services: vec![HostService::at_host(port, server)],
    })
    .unwrap();
    let console = vm
        .wait_for_console(API_READY, 0, BOOT_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}\nconsole:\n{}", vm.console_text()));
    assert!(
        console.contains(&format!(
            "machined: metal: config downloaded from http://{}:{port}/config.yaml?uuid=",
            qemu::HOST_SERVICES
        )),
        "{console}"
    );
    let request = std::fs::read_to_string(work.path().join("request")).unwrap_or_default();
    assert!(
        request.starts_with("GET /config.yaml?uuid=") && !request.contains("${"),
        "the machine's UUID replaces ${{uuid}}: {request}"
    );
    let talosctl = Talosctl {
        talosconfig: work.path().join("talosconfig"),
        port: vm.api.port(),
    };
    eventually("mutual TLS Version with the downloaded config", &vm, || {
        ok(talosctl.secure(&["version"])).map(drop)
    });
}

#[test]
fn machined_refuses_to_boot_without_the_hardening_options() {
    let _vm_slot = one_vm();
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    let mut vm = Vm::start(&VmConfig {
        name: "weak".into(),
        out_dir: work.path().into(),
        boot: Boot::Kernel {
            kernel: image.join("vmlinuz"),
            initramfs: image.join("initramfs.img"),
            cmdline: "console=ttyS0 pti=on talos.platform=metal".into(),
        },
        disk: None,
        probe_kernel: image.join("vmlinuz"),
        memory_mib: 512,
        api_port: 0,
        network: UserNet::DEFAULT,
        host_services: Vec::new(),
    })
    .unwrap();
    let console = vm
        .wait_for_console("machined: rebooting in 10 s", 0, BOOT_TIMEOUT)
        .unwrap();
    assert!(
        console.contains("machined: FATAL: the kernel command line lacks required hardening options: init_on_alloc=1 slab_nomerge"),
        "{console}"
    );
    assert!(!console.contains("mountRoot"), "{console}");
}

/// Names that must not be in the image: shells, coreutils, interpreters, package managers.
const FORBIDDEN: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "busybox", "toybox", "ls", "cat", "cp", "mv", "rm",
    "chmod", "mount", "python", "python3", "perl", "ruby", "lua", "node", "apt", "apt-get", "dpkg",
    "rpm", "yum", "dnf", "apk", "pip", "su", "sudo", "login", "getty",
];

fn check_names(listing: &str, what: &str) {
    for path in listing.lines() {
        let name = path.rsplit('/').next().unwrap_or(path);
        assert!(!FORBIDDEN.contains(&name), "{what} contains {path}");
        assert!(
            !name.starts_with("python") && !name.starts_with("perl"),
            "{what} contains {path}"
        );
    }
}

#[test]
fn the_image_holds_no_shell_coreutils_interpreter_or_package_manager() {
    let image = image_dir(&["disk.qcow2"], "cargo xtask image");
    let squashfs = success(
        Command::new("unsquashfs")
            .args(["-lc", "-d", ""])
            .arg(image.join("rootfs.sqsh"))
            .output()
            .unwrap(),
    );
    assert!(squashfs.contains("/usr/bin/apid"), "{squashfs}");
    check_names(&squashfs, "the SquashFS");

    let archive = Command::new("zstd")
        .args(["-d", "-c", "-q", "--long=25"])
        .arg(image.join("initramfs.img"))
        .output()
        .unwrap();
    assert!(archive.status.success(), "zstd -d: {archive:?}");
    let archive = archive.stdout;
    let mut cpio = Command::new("cpio")
        .args(["-it", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = cpio.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &archive));
    let listing = cpio.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    for expected in [
        "init",
        "dev/console",
        "rootfs.sqsh",
        "lib/modules/load-order",
    ] {
        assert!(listing.lines().any(|l| l == expected), "{listing}");
    }
    check_names(&listing, "the initramfs");
}
