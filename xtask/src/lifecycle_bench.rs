//! `cargo xtask bench-lifecycle`: what an upgrade and a reset cost on the OS image under QEMU.
//!
//! One configured disk node; then, timed on the host: importing `installer.tar` through the
//! API; `upgrade --force` of that installer (request → the API stops answering → answers
//! again from the new slot → the trial is committed in META), so the API downtime is the gap
//! between the last answer before the reboot and the first after it; and `reset --reboot`
//! (request → maintenance mode answering). Then the ISO installing itself to a blank disk
//! (request → the installed node answering over mutual TLS).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::bench::{cargo, release_dir, workspace_root};
use crate::boot_bench::{bounded, bounded_for, run_command, start_disk_node, wait_for};
use crate::image;
use crate::vm::API_READY;

/// How often the API is asked while it is down.
const POLL: Duration = Duration::from_millis(200);

pub fn run() -> anyhow::Result<()> {
    let root = workspace_root();
    cargo(&root, &["build", "--release", "-q", "-p", "talosctl"])?;
    let talosctl = release_dir(&root).join("talosctl");
    let outputs = image::build(&root)?;
    let work = root.join("_out/bench-lifecycle");
    let mut vm = start_disk_node(&root, &outputs, &talosctl, &work, "bench-lifecycle")?;
    let node = format!("127.0.0.1:{}", vm.api.port());
    let insecure = || {
        let mut command = Command::new(&talosctl);
        command.args(["-n", &node, "version", "--insecure"]);
        command
    };
    let secure = |args: &[&str]| {
        let mut command = Command::new(&talosctl);
        command
            .arg("--talosconfig")
            .arg(work.join("talosconfig"))
            .args(["-e", &node, "-n", "10.0.2.15"])
            .args(args);
        command
    };
    wait_for(|| bounded(&mut insecure()))?;
    run_command(
        Command::new(&talosctl)
            .args(["-n", &node, "apply-config", "--insecure", "--file"])
            .arg(work.join("controlplane.yaml")),
    )?;
    wait_until(Duration::from_secs(180), || {
        answers(&mut secure(&["version"]))
    })?;
    wait_until(Duration::from_secs(180), || {
        let output = bounded(&mut secure(&["services"])).ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let running = |id: &str| {
            text.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(id) && l.contains("Running"))
        };
        ["apid", "trustd", "timed", "networkd"]
            .into_iter()
            .all(running)
            .then_some(())
    })?;

    let installer = outputs.installer();
    let size = std::fs::metadata(&installer)?.len();
    let started = Instant::now();
    let imported = bounded_for(
        secure(&["image", "import"]).arg(&installer),
        Duration::from_secs(600),
    )?;
    if !imported.status.success() {
        bail!(
            "image import: {}",
            String::from_utf8_lossy(&imported.stderr)
        );
    }
    let import = started.elapsed();
    println!(
        "import of installer.tar ({:.1} MiB) through the API: {:.2} s ({:.1} MiB/s)",
        size as f64 / f64::from(1 << 20),
        import.as_secs_f64(),
        size as f64 / f64::from(1 << 20) / import.as_secs_f64()
    );

    let before = vm.console_text().len();
    let started = Instant::now();
    run_command(&mut secure(&[
        "upgrade",
        "--image",
        image::INSTALLER_NAME,
        "--force",
        "--wait=false",
    ]))?;
    let requested = started.elapsed();
    let last_answer = downtime_start(
        &mut || answers(&mut secure(&["version"])).is_some(),
        started,
    )?;
    vm.wait_for_console(API_READY, before, Duration::from_secs(180))?;
    wait_until(Duration::from_secs(180), || {
        answers(&mut secure(&["version"]))
    })?;
    let back = started.elapsed();
    wait_until(Duration::from_secs(360), || {
        let output = bounded(&mut secure(&["get", "metakeys", "0xf0", "-o", "yaml"])).ok()?;
        String::from_utf8_lossy(&output.stdout)
            .contains("done: ")
            .then_some(())
    })?;
    let committed = started.elapsed();
    println!(
        "upgrade --force (slot written, reboot): request answered {:.2} s; API down from {:.2} s \
         to {:.2} s (downtime {:.2} s); trial committed {:.2} s after the request",
        requested.as_secs_f64(),
        last_answer.as_secs_f64(),
        back.as_secs_f64(),
        (back - last_answer).as_secs_f64(),
        committed.as_secs_f64()
    );
    println!(
        "  boot of the new slot: {}",
        slot_line(&vm.console_text()[before..])
    );

    let started = Instant::now();
    run_command(&mut secure(&[
        "reset",
        "--reboot",
        "--graceful=false",
        "--wait=false",
    ]))?;
    wait_until(Duration::from_secs(180), || answers(&mut insecure()))?;
    println!(
        "reset --reboot (STATE and EPHEMERAL wiped): request → maintenance mode answering {:.2} s",
        started.elapsed().as_secs_f64()
    );
    vm.kill();
    drop(vm);
    install_from_iso(&root, &outputs, &talosctl)
}

/// The ISO with a blank 6 GiB disk; apply-config with `machine.install.disk` (request →
/// installed, answered) → the installed node answering over mutual TLS.
fn install_from_iso(
    root: &std::path::Path,
    outputs: &image::Outputs,
    talosctl: &std::path::Path,
) -> anyhow::Result<()> {
    let work = root.join("_out/bench-install");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    run_command(
        Command::new(talosctl)
            .args(["gen", "config", "bench", "https://10.0.2.15:6443"])
            .args(["--install-disk", "/dev/vda", "--output-dir"])
            .arg(&work),
    )?;
    let disk = work.join("blank.qcow2");
    run_command(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg("6G"),
    )?;
    let mut vm_config = crate::vm::config(root, outputs, "bench-install", 0, true)?;
    vm_config.boot = qemu::Boot::Iso(outputs.iso());
    vm_config.disk = Some(disk);
    let mut vm = qemu::Vm::start(&vm_config)?;
    vm.wait_for_console(API_READY, 0, Duration::from_secs(180))?;
    let node = format!("127.0.0.1:{}", vm.api.port());
    wait_for(|| bounded(Command::new(talosctl).args(["-n", &node, "version", "--insecure"])))?;
    let started = Instant::now();
    let applied = bounded_for(
        Command::new(talosctl)
            .args(["-n", &node, "apply-config", "--insecure", "--file"])
            .arg(work.join("controlplane.yaml")),
        Duration::from_secs(300),
    )?;
    if !applied.status.success() {
        bail!("install: {}", String::from_utf8_lossy(&applied.stderr));
    }
    let installed = started.elapsed();
    let talosconfig = work.join("talosconfig");
    wait_until(Duration::from_secs(240), || {
        answers(
            Command::new(talosctl)
                .arg("--talosconfig")
                .arg(&talosconfig)
                .args(["-e", &node, "-n", "10.0.2.15", "version"]),
        )
    })?;
    println!(
        "install from the ISO to a blank disk: request answered (disk written) {:.2} s; \
         request → installed node answering over mutual TLS {:.2} s",
        installed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let console = vm.console_text();
    for line in console.lines().filter(|l| l.contains("install: ")) {
        println!("  {}", line.split("machined").last().unwrap_or(line).trim());
    }
    vm.kill();
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Some(()) when the command exits 0.
fn answers(command: &mut Command) -> Option<()> {
    bounded_for(command, Duration::from_secs(5))
        .ok()
        .filter(|o| o.status.success())
        .map(drop)
}

/// Polls until `up` fails; returns the time of its last success since `started`.
fn downtime_start(up: &mut dyn FnMut() -> bool, started: Instant) -> anyhow::Result<Duration> {
    let mut last = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if !up() {
            return Ok(last);
        }
        last = started.elapsed();
        std::thread::sleep(POLL);
    }
    bail!("the API never went down")
}

fn wait_until(limit: Duration, mut attempt: impl FnMut() -> Option<()>) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while attempt().is_none() {
        if Instant::now() > deadline {
            bail!("not reached within {} s", limit.as_secs());
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The line machined logs with the slot it booted.
fn slot_line(console: &str) -> String {
    console
        .lines()
        .find(|l| l.contains("booted slot"))
        .map(|l| l.split("machined: ").last().unwrap_or(l).trim().to_string())
        .context("no slot line")
        .unwrap_or_else(|e| e.to_string())
}
