//! `cargo xtask fuzz [--seconds N] [TARGET ...]`: builds the fuzz targets of `fuzz/` with
//! cargo-fuzz (installed from crates.io when missing) and runs each for N seconds (default 60)
//! on its stored corpus (`fuzz/corpus/TARGET`, read only; new inputs go to
//! `_out/fuzz/corpus/TARGET`), then prints executions, speed and corpus size per target. A crash
//! fails the command and leaves its input in `fuzz/artifacts/TARGET/`: it becomes a regression
//! test.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::bench::{cargo, workspace_root};

/// The targets of `fuzz/Cargo.toml`, in the order they run.
const TARGETS: &[&str] = &[
    "config_decode",
    "config_patch",
    "talosconfig",
    "csr",
    "dhcp_reply",
    "dhcp_request",
    "sntp_packet",
    "netlink_route",
    "api_requests",
    "etcd_snapshot",
    "installer_image",
    "debug_image",
    "meta",
    "platform_metadata",
    "cel_expression",
];

/// The cargo-fuzz release this project is known to work with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut seconds = 60u64;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .context("--seconds takes a number")?
                    .parse()
                    .context("--seconds takes a number")?;
            }
            target if TARGETS.contains(&target) => targets.push(target),
            other => bail!(
                "unknown fuzz target or flag {other:?}; targets: {}",
                TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    ensure_cargo_fuzz(&root)?;
    // cargo-fuzz passes unstable flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
    // No sanitizer: the code is safe Rust, and the targets assert their own invariants.
    let status = cargo_fuzz(&fuzz_dir)
        .args(["build", "--sanitizer", "none", "--release"])
        .status()?;
    if !status.success() {
        bail!("building the fuzz targets failed: {status}");
    }
    println!(
        "{:<14} {:>8} {:>14} {:>10} {:>8} {:>10}",
        "target", "seconds", "executions", "exec/s", "corpus", "peak RSS"
    );
    let mut crashed = Vec::new();
    for target in targets {
        let stored = fuzz_dir.join("corpus").join(target);
        let scratch = root.join("_out/fuzz/corpus").join(target);
        std::fs::create_dir_all(&stored)?;
        std::fs::create_dir_all(&scratch)?;
        let output = cargo_fuzz(&fuzz_dir)
            .args(["run", "--sanitizer", "none", "--release", target])
            .arg(&scratch)
            .arg(&stored)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-print_final_stats=1", "-close_fd_mask=3"])
            .output()?;
        let log = String::from_utf8_lossy(&output.stderr);
        let stats = Stats::read(&log);
        println!(
            "{:<14} {:>8} {:>14} {:>10} {:>8} {:>7} MB",
            target, seconds, stats.executions, stats.per_second, stats.corpus, stats.peak_rss_mb
        );
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("{target} failed:");
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
            crashed.push(target);
        }
    }
    if !crashed.is_empty() {
        bail!(
            "fuzz targets failed: {} (inputs in fuzz/artifacts/)",
            crashed.join(", ")
        );
    }
    Ok(())
}

fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .arg("fuzz")
        .current_dir(fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1");
    command
}

fn ensure_cargo_fuzz(root: &Path) -> anyhow::Result<()> {
    let present = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if present {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    cargo(
        root,
        &[
            "install",
            "--locked",
            "--quiet",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
        ],
    )
}

/// What libFuzzer prints at the end of a run (`-print_final_stats=1`).
#[derive(Debug, Default)]
struct Stats {
    executions: u64,
    per_second: u64,
    corpus: u64,
    peak_rss_mb: u64,
}

impl Stats {
    fn read(log: &str) -> Self {
        let stat = |name: &str| {
            log.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0)
        };
        // `#1325507 DONE cov: 3476 ft: 14465 corp: 3316/196Kb ...`
        let corpus = log
            .lines()
            .rev()
            .find_map(|line| {
                let (_, rest) = line.split_once(" corp: ")?;
                rest.split('/').next()?.parse().ok()
            })
            .unwrap_or(0);
        Stats {
            executions: stat("stat::number_of_executed_units:"),
            per_second: stat("stat::average_exec_per_sec:"),
            corpus,
            peak_rss_mb: stat("stat::peak_rss_mb:"),
        }
    }
}
