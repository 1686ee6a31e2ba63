//! `cargo xtask bench`: whole-command figures (wall time, peak memory) for the release build,
//! then the criterion micro-benchmarks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::resource::{UsageWho, getrusage};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let runs = match args {
        [flag, n] if flag == "--runs" => n.parse().context("--runs takes a number")?,
        [] => 20,
        _ => bail!("usage: cargo xtask bench [--runs N]"),
    };
    let root = workspace_root();
    cargo(&root, &["build", "--release", "-q", "-p", "talosctl"])?;
    let talosctl = release_dir(&root).join("talosctl");

    // Peak RSS is read with getrusage(RUSAGE_CHILDREN), which covers every child ever waited
    // for: measure from a fresh xtask process whose only children are the talosctl runs.
    let status = Command::new(std::env::current_exe()?)
        .args([MEASURE_GEN_CONFIG, &runs.to_string()])
        .arg(&talosctl)
        .arg(root.join("_out/bench"))
        .status()?;
    if !status.success() {
        bail!("measuring talosctl gen config failed: {status}");
    }

    println!("\ncriterion micro-benchmarks:");
    cargo(&root, &["bench", "-q", "-p", "machineconfig"])
}

/// `cargo xtask bench-node [--prebuilt]`: release builds of the daemons (as they are with
/// `--prebuilt`), then [`crate::node_bench`].
pub fn run_node(args: &[String]) -> anyhow::Result<()> {
    let prebuilt = match args {
        [] => false,
        [flag] if flag == "--prebuilt" => true,
        _ => bail!("usage: cargo xtask bench-node [--prebuilt]"),
    };
    let root = workspace_root();
    if !prebuilt {
        cargo(&root, &["build", "--release", "-q", "--bins"])?;
    }
    crate::node_bench::run(&release_dir(&root), &root.join("_out/bench-node"))
}

/// Hidden subcommand: `MEASURE_GEN_CONFIG RUNS TALOSCTL OUT_DIR`.
pub const MEASURE_GEN_CONFIG: &str = "measure-gen-config";

/// Runs `talosctl gen config` RUNS times and prints wall-time percentiles and peak RSS.
pub fn measure_gen_config(args: &[String]) -> anyhow::Result<()> {
    let [runs, talosctl, out] = args else {
        bail!("usage: xtask {MEASURE_GEN_CONFIG} RUNS TALOSCTL OUT_DIR");
    };
    let runs: usize = runs.parse().context("RUNS")?;
    let out = Path::new(out);
    let _ = std::fs::remove_dir_all(out);
    let mut walls = Vec::with_capacity(runs);
    for i in 0..runs {
        let dir = out.join(i.to_string());
        let start = Instant::now();
        let status = Command::new(talosctl)
            .args(["gen", "config", "bench", "https://10.5.0.2:6443", "-o"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?;
        walls.push(start.elapsed());
        if !status.success() {
            bail!("talosctl gen config failed: {status}");
        }
    }
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN)?.max_rss();
    walls.sort();
    println!("talosctl gen config ({runs} runs, release build)");
    println!("  wall p50 {}", ms(walls[runs / 2]));
    println!("  wall p90 {}", ms(walls[runs * 9 / 10]));
    println!("  wall max {}", ms(walls[runs - 1]));
    println!("  peak RSS {:.1} MiB", peak_kib as f64 / 1024.0);
    let _ = std::fs::remove_dir_all(out);
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("cargo {} failed: {status}", args.join(" "));
    }
    Ok(())
}

/// Where cargo puts release binaries (honouring `CARGO_TARGET_DIR`).
pub(crate) fn release_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release")
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
