//! `cargo xtask bench-secureboot [--runs N]`: the cost of Secure Boot, from the outputs already in
//! `_out/image/` (`cargo xtask image --secureboot` first): the time to build and sign the UKI and
//! its disk image and ISO, then boots of the normal disk image with SeaBIOS and with OVMF
//! (GRUB's BIOS and EFI images) and of the Secure Boot disk image (OVMF with Secure Boot, the
//! signed UKI), each from a copy-on-write
//! overlay, to apid answering: wall time after QEMU started, and the kernel's own timestamp of
//! that line (the difference is firmware, boot loader or stub, and decompression).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use qemu::{Boot, Vm};

use crate::bench::workspace_root;
use crate::image::{self, run, secureboot};
use crate::vm::{API_READY, config};

pub fn run_bench(args: &[String]) -> anyhow::Result<()> {
    let runs: usize = match args {
        [flag, n] if flag == "--runs" => n.parse().context("--runs takes a number")?,
        [] => 1,
        _ => bail!("usage: cargo xtask bench-secureboot [--runs N]"),
    };
    let root = workspace_root();
    let outputs = image::Outputs::new(&root);
    anyhow::ensure!(
        outputs.disk().exists(),
        "{} is missing: run `cargo xtask image` first",
        outputs.disk().display()
    );
    let started = Instant::now();
    let sb = secureboot::build(&outputs)?;
    println!(
        "UKI assembled and signed, Secure Boot disk image and ISO written: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let work = root.join("_out/bench-secureboot");
    std::fs::create_dir_all(&work)?;
    for run_index in 0..runs {
        for (label, base, format, boot) in [
            (
                "normal disk (SeaBIOS, GRUB)",
                outputs.disk(),
                "raw",
                Boot::Disk,
            ),
            (
                "normal disk (OVMF, GRUB's EFI image)",
                outputs.disk(),
                "raw",
                Boot::UefiDisk,
            ),
            (
                "Secure Boot disk (OVMF secboot, signed UKI)",
                sb.disk.clone(),
                "raw",
                Boot::SecureBoot {
                    vars: sb.vars(),
                    cdrom: None,
                },
            ),
        ] {
            let disk = work.join("disk.qcow2");
            let _ = std::fs::remove_file(&disk);
            run(Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", format, "-b"])
                .arg(&base)
                .arg(&disk))?;
            let mut vm_config = config(&root, &outputs, "bench-secureboot", 0, true)?;
            vm_config.out_dir = work.clone();
            vm_config.boot = boot;
            vm_config.disk = Some(disk);
            let mut vm = Vm::start(&vm_config)?;
            let console = vm.wait_for_console(API_READY, 0, Duration::from_secs(240))?;
            let wall = vm.started.elapsed().as_secs_f64();
            let kernel =
                kernel_stamp(&console, API_READY).map_or("?".to_string(), |s| format!("{s:.1} s"));
            println!(
                "run {}: {label}: apid answering {wall:.1} s after QEMU started (kernel clock {kernel}, {:?})",
                run_index + 1,
                vm.accel
            );
        }
    }
    Ok(())
}

/// The kernel timestamp (`[   12.34]`) of the first console line holding `pattern`.
fn kernel_stamp(console: &str, pattern: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(pattern))?;
    line.split_once('[')?
        .1
        .split_once(']')?
        .0
        .trim()
        .parse()
        .ok()
}
