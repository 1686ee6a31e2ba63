//! `cargo xtask bench-boot`: boot figures of the OS image under QEMU, from the serial console's
//! kernel timestamps (kernel start → /init → machined phases → apid answering), the host's
//! wall clock (QEMU start → talosctl answered), the daemons' RSS read through the API, and the
//! sizes of the image's parts.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use qemu::{Boot, Vm};

use crate::bench::{cargo, release_dir, workspace_root};
use crate::figures::{Figure, Unit};
use crate::image::{self, TARGET};
use crate::vm::{API_READY, config};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    // `--prebuilt`: the image in _out and the release talosctl as they are, so that a bench run
    // under the machine's QEMU lock does not build first.
    let prebuilt = args.iter().any(|arg| arg == "--prebuilt");
    let args: Vec<&String> = args.iter().filter(|arg| *arg != "--prebuilt").collect();
    let runs: usize = match args[..] {
        [flag, n] if flag == "--runs" => n.parse().context("--runs takes a number")?,
        [] => 3,
        _ => bail!("usage: cargo xtask bench-boot [--runs N] [--prebuilt]"),
    };
    let figures = measure(prebuilt, runs)?;
    crate::bench::print_table(&figures);
    Ok(())
}

/// The boot figures: `runs` maintenance boots of the kernel and initramfs, then one disk node
/// through its first boot, apply-config and a reboot.
pub fn measure(prebuilt: bool, runs: usize) -> anyhow::Result<Vec<Figure>> {
    const BENCH: &str = "boot";
    let mut figures = Vec::new();
    let root = workspace_root();
    let talosctl = release_dir(&root).join("talosctl");
    let outputs = if prebuilt {
        image::Outputs::new(&root)
    } else {
        cargo(&root, &["build", "--release", "-q", "-p", "talosctl"])?;
        image::build(&root)?
    };

    println!("sizes:");
    let binaries = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(TARGET)
        .join("image");
    for (what, path) in [
        (
            "machined (static musl, profile image)",
            binaries.join("machined"),
        ),
        ("apid (static musl, profile image)", binaries.join("apid")),
        ("kernel (vmlinuz)", outputs.kernel()),
        ("rootfs.sqsh", outputs.squashfs()),
        ("initramfs.img (zstd)", outputs.initramfs()),
        ("disk.qcow2", outputs.disk_qcow2()),
    ] {
        let size = std::fs::metadata(&path)?.len();
        println!("  {what:<40} {}", mib(size));
        if what.starts_with("initramfs") {
            figures.push(
                Figure::new(BENCH, "initramfs size", megabytes(size), Unit::MiB)
                    .at_most(35e6 / f64::from(1 << 20)),
            );
        }
    }
    let raw = std::fs::metadata(outputs.disk())?;
    println!(
        "  {:<40} {} apparent, {} allocated",
        "disk.raw",
        mib(raw.len()),
        mib(std::os::unix::fs::MetadataExt::blocks(&raw) * 512)
    );

    println!("\nkernel + initramfs boot, maintenance mode ({runs} runs):");
    let (mut to_api, mut to_answer) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let mut vm = Vm::start(&config(&root, &outputs, "bench-initramfs", 0, false)?)?;
        let started = vm.started;
        vm.wait_for_console(API_READY, 0, Duration::from_secs(180))?;
        let node = format!("127.0.0.1:{}", vm.api.port());
        wait_for(|| bounded(Command::new(&talosctl).args(["-n", &node, "version", "--insecure"])))?;
        let answered = started.elapsed();
        to_api.extend(api_ms(&vm.console_text()));
        to_answer.push(answered.as_secs_f64());
        println!(
            "  run {}: {} ({:?}), talosctl answered {:.2} s after QEMU started",
            run + 1,
            timeline(&vm.console_text()),
            vm.accel,
            answered.as_secs_f64()
        );
        if run == 0 {
            print_timeline(&vm.console_text());
        }
    }

    figures.push(
        Figure::new(
            BENCH,
            format!("PID 1 → apid answering, kernel + initramfs, maintenance (median of {runs})"),
            median(&mut to_api)? / 1e3,
            Unit::Seconds,
        )
        .at_most(0.5),
    );
    figures.push(Figure::new(
        BENCH,
        format!("QEMU start → talosctl answering, maintenance (median of {runs})"),
        median(&mut to_answer)?,
        Unit::Seconds,
    ));
    println!("\ndisk image: first boot (formats STATE and EPHEMERAL), apply-config, reboot:");
    let work = root.join("_out/bench-boot");
    let mut vm = start_disk_node(&root, &outputs, &talosctl, &work, "bench-disk")?;
    println!("  first boot: {}", timeline(&vm.console_text()));
    print_timeline(&vm.console_text());
    let node = format!("127.0.0.1:{}", vm.api.port());
    let secure = |args: &[&str]| {
        let mut command = Command::new(&talosctl);
        command
            .arg("--talosconfig")
            .arg(work.join("talosconfig"))
            .args(["-e", &node, "-n", "10.0.2.15"])
            .args(args);
        command
    };
    wait_for(|| bounded(Command::new(&talosctl).args(["-n", &node, "version", "--insecure"])))?;
    run_command(
        Command::new(&talosctl)
            .args(["-n", &node, "apply-config", "--insecure", "--file"])
            .arg(work.join("controlplane.yaml")),
    )?;
    wait_for(|| bounded(&mut secure(&["version"])))?;
    let before = vm.console_text().len();
    // The console tells when the node is back; talosctl need not track the reboot.
    run_command(&mut secure(&["reboot", "--wait=false"]))?;
    let rebooted = Instant::now();
    // The reboot's legs, by when the console shows them (polled, so ± a few tens of ms).
    let stopped = vm.wait_for_console("machined: all services stopped", before, BOOT_LIMIT)?;
    let services_stopped = rebooted.elapsed();
    let pid1 = vm.wait_for_console("machined: PID 1 started", stopped.len(), BOOT_LIMIT)?;
    let pid1_started = rebooted.elapsed();
    vm.wait_for_console(API_READY, pid1.len(), BOOT_LIMIT)?;
    wait_for(|| bounded(&mut secure(&["version"])))?;
    let answered = rebooted.elapsed();
    let text = vm.console_text();
    println!(
        "  second boot (configured, mutual TLS): {}; reboot request → talosctl answered {:.2} s",
        timeline(&text[before..]),
        answered.as_secs_f64()
    );
    let how = if text[before..].contains("machined: reboot by kexec") {
        "kexec"
    } else {
        "firmware, GRUB"
    };
    println!(
        "  reboot legs: request → services stopped {:.2} s, → {how}, kernel → PID 1 {:.2} s, \
         → talosctl answered {:.2} s",
        services_stopped.as_secs_f64(),
        (pid1_started - services_stopped).as_secs_f64(),
        (answered - pid1_started).as_secs_f64()
    );
    // From the second boot's first line: the first boot's shutdown is on its own clock.
    let second_boot = text.rfind("machined: PID 1 started").unwrap_or(before);
    print_timeline(&text[second_boot..]);
    if let Some(at) = api_ms(&text[second_boot..]) {
        figures.push(
            Figure::new(
                BENCH,
                "PID 1 → apid answering, disk, configured (mutual TLS)",
                at / 1e3,
                Unit::Seconds,
            )
            .at_most(5.0)
            .upstream("tens of seconds, even under KVM (issue 18)"),
        );
    }
    figures.push(
        Figure::new(
            BENCH,
            "reboot request → talosctl answering (mutual TLS)",
            answered.as_secs_f64(),
            Unit::Seconds,
        )
        .at_most(10.0),
    );
    figures.push(Figure::new(
        BENCH,
        "reboot request → services stopped",
        services_stopped.as_secs_f64(),
        Unit::Seconds,
    ));
    let processes =
        String::from_utf8_lossy(&bounded(&mut secure(&["processes"]))?.stdout).into_owned();
    println!("\nRSS after boot (talosctl processes, configured node):");
    let mut ours_bytes = 0.0;
    for line in processes.lines() {
        // … VIRTMEM RESMEM LABEL COMMAND, sizes as "6.7 MB" and LABEL empty here.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = fields.iter().position(|f| f.starts_with('/')) else {
            continue;
        };
        let program = fields[at];
        if at < 2 || !(program == "/init" || program.starts_with("/usr/")) {
            continue;
        }
        let (value, unit) = (fields[at - 2], fields[at - 1]);
        println!("  {program:<36} {value} {unit}");
        if OUR_DAEMONS.iter().any(|daemon| program.ends_with(daemon)) {
            let scale = match unit {
                "kB" => 1e3,
                "MB" => 1e6,
                _ => 1.0,
            };
            ours_bytes += value.parse::<f64>().unwrap_or(0.0) * scale;
        }
    }
    let ours = ours_bytes / f64::from(1 << 20);
    println!("  talos-rs daemons together: {ours:.1} MiB");
    figures.push(
        Figure::new(
            BENCH,
            "RSS of the talos-rs daemons together, configured node after boot",
            ours,
            Unit::MiB,
        )
        .at_most(30.0),
    );
    Ok(figures)
}

fn median(values: &mut [f64]) -> anyhow::Result<f64> {
    values.sort_by(f64::total_cmp);
    values
        .get(values.len() / 2)
        .copied()
        .context("no boot gave the figure")
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// Generates a cluster's configs into a fresh `work`, boots a copy-on-write disk of the image
/// in QEMU as `name`, and returns the VM once its API answers (maintenance mode).
pub(crate) fn start_disk_node(
    root: &Path,
    outputs: &image::Outputs,
    talosctl: &Path,
    work: &Path,
    name: &str,
) -> anyhow::Result<Vm> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    run_command(
        Command::new(talosctl)
            .args([
                "gen",
                "config",
                "bench",
                "https://10.0.2.15:6443",
                "--output-dir",
            ])
            .arg(work),
    )?;
    let disk = work.join("disk.qcow2");
    run_command(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(outputs.disk_qcow2())
            .arg(&disk),
    )?;
    let mut vm_config = config(root, outputs, name, 0, true)?;
    vm_config.boot = Boot::Disk;
    vm_config.disk = Some(disk);
    let mut vm = Vm::start(&vm_config)?;
    vm.wait_for_console(API_READY, 0, Duration::from_secs(180))?;
    Ok(vm)
}

/// How long any one boot (or shutdown) may take before the bench gives up.
const BOOT_LIMIT: Duration = Duration::from_secs(180);

/// The talos-rs daemons of the image (machined is `/init`).
const OUR_DAEMONS: &[&str] = &["/init", "/apid", "/trustd", "/timed"];

/// `kernel start → PID 1 X s; PID 1 start → apid answering Y ms` from a console log.
fn timeline(console: &str) -> String {
    let stamp = |pattern: &str| {
        console
            .lines()
            .find(|l| l.contains(pattern))
            .and_then(|line| {
                let inside = line.split_once('[')?.1.split_once(']')?.0;
                inside.trim().parse::<f64>().ok()
            })
    };
    let mut parts = Vec::new();
    // machined's first line, at the kernel's notice level (kernel info lines may be hidden).
    if let Some(init) = stamp("machined: PID 1 started") {
        parts.push(format!("kernel start → PID 1 {init:.2} s"));
    }
    if let Some(api) = api_ms(console) {
        parts.push(format!("PID 1 start → apid answering {api:.0} ms"));
    }
    parts.join("; ")
}

/// When apid first answered, in ms since PID 1 started, from machined's console line.
fn api_ms(console: &str) -> Option<f64> {
    console.lines().find_map(|l| {
        let rest = l.split_once(API_READY)?.1;
        rest.split_once(", ")?
            .1
            .split_once(" ms after PID 1")?
            .0
            .parse::<f64>()
            .ok()
    })
}

/// The boot's timeline from a console log, one line per milestone in time order: phases (with
/// their durations), the runtime's steps, service state changes and apid's first answer, each
/// at its time since PID 1 started (machined stamps them with `at … ms` / `at_ms=`).
fn print_timeline(console: &str) {
    let milestones = milestones(console);
    for (at, what) in &milestones {
        println!("    {at:>8.0} ms  {what}");
    }
    println!("    {}", health_summary(&milestones));
}

/// When each service was first healthy, and which never were while the console was read:
/// the "services listed healthy" part of the boot goal.
fn health_summary(milestones: &[(f64, String)]) -> String {
    let mut services: Vec<(&str, Option<f64>)> = Vec::new();
    for (at, what) in milestones {
        let Some((id, event)) = what
            .strip_prefix("service ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let healthy = event.ends_with(": Health check successful");
        match services.iter_mut().find(|(seen, _)| *seen == id) {
            Some((_, first)) => {
                if healthy && first.is_none() {
                    *first = Some(*at);
                }
            }
            None => services.push((id, healthy.then_some(*at))),
        }
    }
    let healthy: Vec<String> = services
        .iter()
        .filter_map(|(id, at)| at.map(|at| format!("{id} {at:.0} ms")))
        .collect();
    let unhealthy: Vec<&str> = services
        .iter()
        .filter(|(_, at)| at.is_none())
        .map(|(id, _)| *id)
        .collect();
    let mut summary = format!("first healthy: {}", healthy.join(", "));
    if !unhealthy.is_empty() {
        summary.push_str(&format!("; not healthy yet: {}", unhealthy.join(", ")));
    }
    summary
}

/// The milestones [`print_timeline`] prints: (ms since PID 1 started, what), in time order.
fn milestones(console: &str) -> Vec<(f64, String)> {
    let mut milestones: Vec<(f64, String)> = Vec::new();
    for line in console.lines().map(strip_ansi) {
        if let Some(rest) = line.split_once("machined: phase ").map(|(_, r)| r)
            && let Some((name, rest)) = rest.split_once(" done in ")
            && let Some((took, at)) = rest.split_once(" ms, at ")
            && let Ok(at) = at.trim_end_matches(" ms").trim().parse::<f64>()
        {
            milestones.push((at, format!("phase {name} done ({took} ms)")));
        } else if let Some(rest) = line.split_once("service[").map(|(_, r)| r)
            && let Some((id, rest)) = rest.split_once("](")
            && let Some((state, rest)) = rest.split_once("): ")
            && let Some(at) = rest
                .split_once("at_ms=")
                .and_then(|(_, v)| v.split_whitespace().next())
                .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
        {
            let message = rest.split_once(" at_ms=").map_or(rest, |(m, _)| m);
            milestones.push((at, format!("service {id} {state}: {message}")));
        } else if let Some(rest) = line.split_once("boot step: ").map(|(_, r)| r)
            && let Some((step, at)) = rest.split_once(" at_ms=")
            && let Ok(at) = at.trim().trim_matches('"').parse::<f64>()
        {
            milestones.push((at, format!("machined: {step}")));
        } else if let Some(rest) = line.split_once(API_READY).map(|(_, r)| r)
            && let Some(at) = rest
                .split_once(", ")
                .and_then(|(_, v)| v.split_once(" ms after PID 1"))
                .and_then(|(v, _)| v.parse::<f64>().ok())
        {
            milestones.push((at, "apid answering (machined's probe)".to_string()));
        }
    }
    milestones.sort_by(|a, b| a.0.total_cmp(&b.0));
    milestones
}

/// `line` without terminal escape sequences (the console is a terminal, so machined colours).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Runs a command with a 20 s bound (user networking accepts before the guest listens).
pub(crate) fn bounded(command: &mut Command) -> anyhow::Result<Output> {
    bounded_for(command, Duration::from_secs(20))
}

/// Runs a command, killing it after `timeout`.
pub(crate) fn bounded_for(command: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child.wait_with_output()?)
}

pub(crate) fn run_command(command: &mut Command) -> anyhow::Result<()> {
    let output = bounded(command)?;
    if !output.status.success() {
        bail!("{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

pub(crate) fn wait_for(mut attempt: impl FnMut() -> anyhow::Result<Output>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if attempt().is_ok_and(|o| o.status.success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no answer within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_orders_phases_steps_services_and_the_first_answer() {
        let console = "[    2.100000] machined: phase loadModules done in 480.2 ms, at 490.0 ms\n\
            2026-12-05T03:00:00Z \x1b[32m INFO\x1b[0m service[containerd](Running): Health \
            check successful \x1b[3mat_ms\x1b[0m\x1b[2m=\x1b[0m3012.5\n\
            [    4.000000] machined: apid answering on 10.0.2.15:50000, 2950.1 ms after PID 1 started\n\
            [    1.900000] machined: phase mountPseudo done in 1.0 ms, at 3.0 ms\n\
            2026-12-05T03:00:00Z \x1b[32m INFO\x1b[0m boot step: machine API listening \
            \x1b[3mat_ms\x1b[0m\x1b[2m=\x1b[0m2001.0\n";
        assert_eq!(
            milestones(console),
            vec![
                (3.0, "phase mountPseudo done (1.0 ms)".to_string()),
                (490.0, "phase loadModules done (480.2 ms)".to_string()),
                (2001.0, "machined: machine API listening".to_string()),
                (2950.1, "apid answering (machined's probe)".to_string()),
                (
                    3012.5,
                    "service containerd Running: Health check successful".to_string()
                ),
            ]
        );
    }

    #[test]
    fn the_health_summary_names_when_each_service_was_first_healthy() {
        let milestones = [
            (10.0, "phase volumes done (5.0 ms)"),
            (20.0, "service containerd Initialized: Service registered"),
            (30.0, "service kubelet Failed: image missing"),
            (40.0, "service containerd Running: Health check successful"),
            (50.0, "service apid Running: Health check failed: refused"),
            (60.0, "service apid Running: Health check successful"),
            (70.0, "service containerd Running: Health check successful"),
        ]
        .map(|(at, what)| (at, what.to_string()));
        assert_eq!(
            health_summary(&milestones),
            "first healthy: containerd 40 ms, apid 60 ms; not healthy yet: kubelet"
        );
    }
}
