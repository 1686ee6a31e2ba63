//! Secure Boot in QEMU (TCG): the signed unified kernel image of `cargo xtask image
//! --secureboot` boots from the Secure Boot disk image under OVMF's Secure Boot firmware with
//! the project's certificate enrolled, into maintenance mode, and the node reports Secure Boot
//! (`SecurityState`); the same UKI with one byte changed is refused by the firmware; the Secure
//! Boot ISO boots the same way into maintenance mode.
//!
//! The artifacts come from `cargo xtask image --secureboot` (`scripts/test.sh` runs it); these
//! tests fail with that hint when they are missing. One VM at a time (the image tests' rule).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use qemu::{Boot, UserNet, Vm, VmConfig};
use tests::{binary, image_dir, one_vm, success};

const API_READY: &str = "machined: apid answering on";
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// How long the firmware may take to refuse the changed UKI.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(120);
/// What OVMF prints when the image's signature does not verify against db.
const ACCESS_DENIED: &str = "Access Denied";
/// The kernel's line when its EFI stub found Secure Boot on (SecureBoot=1, SetupMode=0).
const KERNEL_SECURE_BOOT: &str = "secureboot: Secure boot enabled";

/// The kernel's EFI stub's line, before the kernel proper starts.
const STUB_SECURE_BOOT: &str = "EFI stub: UEFI Secure Boot is enabled.";

/// What `cargo xtask image --secureboot` adds to the image outputs.
const SECURE_BOOT_FILES: &[&str] = &[
    "disk-secureboot.raw",
    "uki.efi",
    "secureboot/OVMF_VARS_4M.fd",
];

/// A copy-on-write disk over `base` (raw), in `dir`.
fn overlay(base: &Path, dir: &Path, name: &str) -> PathBuf {
    let disk = dir.join(name);
    success(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(base.canonicalize().unwrap())
            .arg(&disk)
            .output()
            .unwrap(),
    );
    disk
}

/// A VM booting `disk`, or the Secure Boot ISO without a disk.
fn secure_vm(name: &str, image: &Path, dir: &Path, disk: Option<&Path>) -> VmConfig {
    VmConfig {
        name: name.into(),
        out_dir: dir.into(),
        boot: Boot::SecureBoot {
            vars: image.join("secureboot/OVMF_VARS_4M.fd"),
            cdrom: disk
                .is_none()
                .then(|| image.join("talos-rs-secureboot.iso")),
        },
        disk: disk.map(Path::to_path_buf),
        probe_kernel: image.join("vmlinuz"),
        memory_mib: 1024,
        api_port: 0,
        network: UserNet::DEFAULT,
        host_services: Vec::new(),
    }
}

/// Runs talosctl against the maintenance API, killed after 20 s (user networking accepts
/// connections before the guest listens).
fn talosctl_insecure(port: u16, args: &[&str]) -> Output {
    let mut child = Command::new(binary("talosctl"))
        .args(["--talosconfig", "/nonexistent", "-n"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .arg("--insecure")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

fn eventually(what: &str, vm: &Vm, mut attempt: impl FnMut() -> Result<String, String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match attempt() {
            Ok(out) => return out,
            Err(error) if Instant::now() > deadline => {
                panic!("{what}: {error}\nconsole:\n{}", vm.console_text())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn stdout_if(output: Output, wanted: &str) -> Result<String, String> {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() && text.contains(wanted) {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&output.stderr)))
    }
}

#[test]
fn the_signed_uki_boots_with_secure_boot_and_a_changed_byte_is_refused() {
    let _vm_slot = one_vm();
    let image = image_dir(SECURE_BOOT_FILES, "cargo xtask image --secureboot");
    let work = tempfile::tempdir().unwrap();

    let disk = overlay(
        &image.join("disk-secureboot.raw"),
        work.path(),
        "signed.qcow2",
    );
    let mut vm = Vm::start(&secure_vm("secureboot", &image, work.path(), Some(&disk))).unwrap();
    vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    let booted = vm.started.elapsed();
    let console = vm.console_text();
    assert!(console.contains(KERNEL_SECURE_BOOT), "{console}");
    assert!(console.contains(STUB_SECURE_BOOT), "{console}");
    assert!(
        console.contains("Kernel is locked down from EFI Secure Boot"),
        "{console}"
    );
    let port = vm.api.port();
    let version = eventually("maintenance mode answers Version", &vm, || {
        stdout_if(talosctl_insecure(port, &["version"]), "Tag:")
    });
    assert!(version.contains("Server:"), "{version}");
    let state = eventually("SecurityState", &vm, || {
        stdout_if(
            talosctl_insecure(port, &["get", "securitystate", "-o", "yaml"]),
            "secureBoot:",
        )
    });
    assert!(state.contains("secureBoot: true"), "{state}");
    eprintln!(
        "secure boot: maintenance API {:.1} s after QEMU started ({:?})",
        booted.as_secs_f64(),
        vm.accel
    );
    drop(vm);

    // The same disk, its UKI with one byte of the kernel changed.
    let tampered_disk = work.path().join("tampered.raw");
    success(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(image.join("disk-secureboot.raw"))
            .arg(&tampered_disk)
            .output()
            .unwrap(),
    );
    let mut uki = std::fs::read(image.join("uki.efi")).unwrap();
    let middle = uki.len() / 2;
    uki[middle] ^= 0x01;
    let tampered_uki = work.path().join("BOOTX64.EFI");
    std::fs::write(&tampered_uki, &uki).unwrap();
    let esp = bootdisk::layout::partition("EFI").unwrap();
    let offset = bootdisk::layout::start_sector(esp.number) * bootdisk::layout::SECTOR;
    success(
        Command::new("mcopy")
            .args(["-o", "-i"])
            .arg(format!("{}@@{offset}", tampered_disk.display()))
            .arg(&tampered_uki)
            .arg("::/EFI/BOOT/BOOTX64.EFI")
            .output()
            .unwrap(),
    );
    let mut vm = Vm::start(&secure_vm(
        "tampered",
        &image,
        work.path(),
        Some(&tampered_disk),
    ))
    .unwrap();
    let started = Instant::now();
    vm.wait_for_console(ACCESS_DENIED, 0, REFUSAL_TIMEOUT)
        .unwrap();
    let console = vm.console_text();
    assert!(!console.contains("Linux version"), "{console}");
    assert!(!console.contains(API_READY), "{console}");
    eprintln!(
        "tampered UKI refused {:.1} s after QEMU started",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_secure_boot_iso_boots_into_maintenance_mode() {
    let _vm_slot = one_vm();
    let image = image_dir(SECURE_BOOT_FILES, "cargo xtask image --secureboot");
    let work = tempfile::tempdir().unwrap();
    let mut vm = Vm::start(&secure_vm("secureboot-iso", &image, work.path(), None)).unwrap();
    vm.wait_for_console(API_READY, 0, BOOT_TIMEOUT).unwrap();
    let console = vm.console_text();
    assert!(console.contains("DVD-ROM"), "{console}");
    assert!(console.contains(STUB_SECURE_BOOT), "{console}");
    assert!(console.contains(KERNEL_SECURE_BOOT), "{console}");
    let port = vm.api.port();
    eventually("maintenance mode answers Version", &vm, || {
        stdout_if(talosctl_insecure(port, &["version"]), "Tag:")
    });
    let state = eventually("SecurityState", &vm, || {
        stdout_if(
            talosctl_insecure(port, &["get", "securitystate", "-o", "yaml"]),
            "secureBoot:",
        )
    });
    assert!(state.contains("secureBoot: true"), "{state}");
}
