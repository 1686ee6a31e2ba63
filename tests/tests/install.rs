//! Installing from the ISO, in QEMU (TCG), one boot chain: the ISO boots with a blank disk
//! into maintenance mode; a config naming a disk that does not exist is refused with the
//! disks there are, and the node stays in maintenance mode; a config with
//! `machine.install` and an extra kernel argument installs to the disk and reboots into
//! it; the installed node answers over mutual TLS with its config, boots slot A with the extra
//! argument on its command line, and a second reboot boots the disk again without installing.
//! The install disk is chosen by `machine.install.diskSelector` (its size); an
//! `UnattendedInstallConfig` whose CEL selector matches no disk is refused first.
//!
//! The image comes from `cargo xtask image`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use qemu::{Boot, UserNet, Vm, VmConfig};
use tests::{binary, image_dir, success};

const API_READY: &str = "machined: apid answering on";
const PID1_STARTED: &str = "machined: PID 1 started";
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const EXTRA_ARG: &str = "talos.test.installed=yes";

/// Runs `talosctl`, killed after 60 s (user networking accepts before the guest listens).
fn talosctl(args: &[&str]) -> Output {
    let mut child = Command::new(binary("talosctl"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

struct Node {
    vm: Vm,
    talosconfig: PathBuf,
}

impl Node {
    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.vm.api.port())
    }

    fn insecure(&self, args: &[&str]) -> Output {
        let endpoint = self.endpoint();
        let mut all = vec!["--talosconfig", "/nonexistent", "-n", &endpoint];
        all.extend(args);
        all.push("--insecure");
        talosctl(&all)
    }

    fn secure(&self, args: &[&str]) -> Output {
        let talosconfig = self.talosconfig.display().to_string();
        let endpoint = self.endpoint();
        let mut all = vec![
            "--talosconfig",
            &talosconfig,
            "-e",
            &endpoint,
            "-n",
            "10.0.2.15",
        ];
        all.extend(args);
        talosctl(&all)
    }

    /// Retries `attempt` for a minute.
    fn eventually(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Result<String, String>,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match attempt() {
                Ok(out) => return out,
                Err(error) if Instant::now() > deadline => {
                    panic!("{what}: {error}\nconsole:\n{}", self.vm.console_text())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// Waits for the next boot after console offset `from` to answer; returns its console.
    fn next_boot(&mut self, from: usize) -> String {
        self.vm
            .wait_for_console(PID1_STARTED, from, BOOT_TIMEOUT)
            .unwrap();
        self.vm
            .wait_for_console(API_READY, from, BOOT_TIMEOUT)
            .unwrap();
        self.vm.console_text()[from..].to_string()
    }
}

fn ok(output: Output) -> Result<String, String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Configs whose `machine.install` holds `install` (JSON members) and the extra kernel argument.
fn gen_config(dir: &Path, install: &str, name: &str) -> PathBuf {
    let out = dir.join(name);
    let patch = format!(
        "{{\"machine\":{{\"install\":{{{install},\"extraKernelArgs\":[\"{EXTRA_ARG}\"]}}}}}}"
    );
    success(
        Command::new(binary("talosctl"))
            .args(["gen", "config", "install-test", "https://10.0.2.15:6443"])
            .args(["--config-patch", &patch, "--output-dir"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    out
}

/// A control plane config without `machine.install`, with an `UnattendedInstallConfig` whose
/// disk selector is `selector`.
fn unattended_config(dir: &Path, selector: &str) -> PathBuf {
    let out = dir.join("unattended");
    success(
        Command::new(binary("talosctl"))
            .args(["gen", "config", "install-test", "https://10.0.2.15:6443"])
            .args([
                "--config-patch",
                r#"[{"op": "remove", "path": "/machine/install"}]"#,
            ])
            .arg("--output-dir")
            .arg(&out)
            .output()
            .unwrap(),
    );
    let config = out.join("controlplane.yaml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "---\napiVersion: v1alpha1\nkind: UnattendedInstallConfig\nreboot: true\n\
         provisioning:\n  diskSelector:\n    match: {selector}\n"
    ));
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn the_iso_installs_to_a_blank_disk_and_the_node_boots_from_it_configured() {
    let image = image_dir(&["talos-rs.iso"], "cargo xtask image");
    let work = tempfile::tempdir().unwrap();
    // Configs first: their certificates must be older than the guest's clock.
    // The disk is found by its size (6 GiB); vdz is not there.
    let good = gen_config(
        work.path(),
        "\"disk\":\"\",\"diskSelector\":{\"size\":\">= 5GB\"}",
        "good",
    );
    let missing = gen_config(work.path(), "\"disk\":\"/dev/vdz\"", "missing");
    let unattended = unattended_config(
        work.path(),
        "disk.transport == 'virtio' && disk.size > 100u * GB",
    );
    let disk = work.path().join("blank.qcow2");
    success(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg("6G")
            .output()
            .unwrap(),
    );
    let vm = Vm::start(&VmConfig {
        name: "install".into(),
        out_dir: work.path().into(),
        boot: Boot::Iso(image.join("talos-rs.iso")),
        disk: Some(disk.clone()),
        probe_kernel: image.join("vmlinuz"),
        memory_mib: 1024,
        api_port: 0,
        network: UserNet::DEFAULT,
        host_services: Vec::new(),
    })
    .unwrap();
    let mut node = Node {
        vm,
        talosconfig: good.join("talosconfig"),
    };
    let first = node.next_boot(0);
    assert!(
        first.contains("machined: booted from the install medium"),
        "{first}"
    );
    node.eventually("maintenance mode", || ok(node.insecure(&["version"])));

    // A disk that is not there: refused, nothing applied, still in maintenance mode.
    let config = missing.join("controlplane.yaml");
    let refused = node.insecure(&["apply-config", "--file", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("machine.install.disk /dev/vdz: no such disk on this machine (disks:")
            && stderr.contains("vda"),
        "{stderr}"
    );
    ok(node.insecure(&["version"])).unwrap();
    // An UnattendedInstallConfig whose CEL selector matches none of the machine's disks.
    let refused = node.insecure(&["apply-config", "--file", unattended.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains(
                "UnattendedInstallConfig.provisioning.diskSelector.match matches no disk"
            )
            && stderr.contains("/dev/vda"),
        "{stderr}"
    );
    ok(node.insecure(&["version"])).unwrap();

    let before_install = node.vm.console_text().len();
    let config = good.join("controlplane.yaml");
    let applied = ok(node.insecure(&["apply-config", "--file", config.to_str().unwrap()]))
        .unwrap_or_else(|error| panic!("{error}\nconsole:\n{}", node.vm.console_text()));
    assert!(applied.contains("Installed to the disk"), "{applied}");
    let installed = node.next_boot(before_install);
    let install_log = &node.vm.console_text()[before_install..];
    assert!(install_log.contains("install done"), "{install_log}");
    assert!(
        installed.contains("machined: booted slot A of the system disk"),
        "{installed}"
    );
    assert!(
        installed.contains("machined: STATE (/dev/vda5) mounted"),
        "{installed}"
    );

    let version = node.eventually("mutual TLS on the installed node", || {
        ok(node.secure(&["version"]))
    });
    assert!(version.contains("Tag:"), "{version}");
    let cmdline = ok(node.secure(&["read", "/proc/cmdline"])).unwrap();
    assert!(cmdline.contains("BOOT_IMAGE=/A/vmlinuz"), "{cmdline}");
    assert!(cmdline.contains(EXTRA_ARG), "{cmdline}");
    let applied_config = ok(node.secure(&["get", "machineconfig", "-o", "yaml"])).unwrap();
    assert!(applied_config.contains(EXTRA_ARG), "{applied_config}");
    assert!(
        !node.insecure(&["version"]).status.success(),
        "the installed node is still in maintenance mode"
    );

    // The installed disk under UEFI firmware (a cold boot through OVMF, the EFI system
    // partition the install wrote and GRUB's EFI image): slot A again, no second install.
    node.vm.kill();
    node.vm = Vm::start(&VmConfig {
        name: "install-uefi".into(),
        out_dir: work.path().into(),
        boot: Boot::UefiDisk,
        disk: Some(disk),
        probe_kernel: image.join("vmlinuz"),
        memory_mib: 1024,
        api_port: 0,
        network: UserNet::DEFAULT,
        host_services: Vec::new(),
    })
    .unwrap();
    let again = node.next_boot(0);
    assert!(again.contains("efi: EFI v"), "{again}");
    assert!(
        again.contains("booted slot A of the system disk"),
        "{again}"
    );
    assert!(!again.contains("install:"), "{again}");
    assert!(!again.contains("formatting STATE"), "{again}");
    node.eventually("mutual TLS after the UEFI boot", || {
        ok(node.secure(&["version"]))
    });
}
