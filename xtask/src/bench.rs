//! `cargo xtask bench`: every benchmark of the project, one table. Each bench returns typed
//! [`Figure`]s (and prints its details as it goes); the table (metric, value, goal, pass/miss,
//! upstream's figure where published) is printed and written into `docs/benchmarks.md` between
//! its markers, keeping the rows of benches not run this time.
//!
//! `cargo xtask bench [--quick | --only NAME,...] [--with-vm] [--prebuilt] [--no-docs]`:
//! `--quick` runs the cheap benches, `--only` the named ones, `--with-vm` adds the QEMU boot
//! benches (minutes, under the machine's QEMU lock); `--prebuilt` uses the release binaries (and
//! for the VM benches the image in `_out/`) as they are.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nix::sys::resource::{UsageWho, getrusage};

use crate::figures::{Figure, Unit};

/// How long a bench takes, which decides when `cargo xtask bench` runs it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cost {
    /// Seconds: run by `--quick`.
    Quick,
    /// Minutes, on loopback: run by default.
    Slow,
    /// QEMU boots: only with `--with-vm`.
    Vm,
}

/// What a bench gets: the release binaries' directory, the workspace, the build choice.
pub struct Setup {
    pub root: PathBuf,
    pub bin: PathBuf,
    pub prebuilt: bool,
}

struct Bench {
    name: &'static str,
    cost: Cost,
    run: fn(&Setup) -> anyhow::Result<Vec<Figure>>,
}

/// Every bench, in the table's order.
const BENCHES: &[Bench] = &[
    Bench {
        name: "gen-config",
        cost: Cost::Quick,
        run: gen_config,
    },
    Bench {
        name: "shipping",
        cost: Cost::Quick,
        run: |setup| crate::shipping_bench::measure(&setup.root, &setup.bin),
    },
    Bench {
        name: "config",
        cost: Cost::Slow,
        run: criterion_machineconfig,
    },
    Bench {
        name: "node",
        cost: Cost::Slow,
        run: |setup| crate::node_bench::run(&setup.bin, &setup.root.join("_out/bench-node")),
    },
    Bench {
        name: "networkd",
        cost: Cost::Slow,
        run: crate::external_bench::networkd,
    },
    Bench {
        name: "timed",
        cost: Cost::Slow,
        run: crate::external_bench::timed,
    },
    Bench {
        name: "pcap",
        cost: Cost::Slow,
        run: |setup| crate::pcap_bench::measure_node(&setup.root, &setup.bin),
    },
    Bench {
        name: "boot",
        cost: Cost::Vm,
        run: |setup| crate::boot_bench::measure(setup.prebuilt, 2),
    },
];

const USAGE: &str =
    "usage: cargo xtask bench [--quick | --only NAME,...] [--with-vm] [--prebuilt] [--no-docs]";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut quick = false;
    let mut only: Option<Vec<String>> = None;
    let mut with_vm = false;
    let mut prebuilt = false;
    let mut write_docs = true;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let names = args.next().context(USAGE)?;
                only = Some(names.split(',').map(str::to_string).collect());
            }
            "--with-vm" => with_vm = true,
            "--prebuilt" => prebuilt = true,
            "--no-docs" => write_docs = false,
            _ => bail!("{USAGE}"),
        }
    }
    if let Some(names) = &only
        && let Some(unknown) = names
            .iter()
            .find(|n| !BENCHES.iter().any(|b| b.name == n.as_str()))
    {
        let known: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
        bail!("no bench {unknown}; the benches: {}", known.join(", "));
    }
    let chosen: Vec<&Bench> = BENCHES
        .iter()
        .filter(|bench| match &only {
            Some(names) => names.iter().any(|n| n == bench.name),
            None if quick => bench.cost == Cost::Quick,
            None => bench.cost != Cost::Vm || with_vm,
        })
        .collect();
    let root = workspace_root();
    if !prebuilt {
        cargo(&root, &["build", "--release", "-q", "--bins"])?;
    }
    let setup = Setup {
        bin: release_dir(&root),
        root,
        prebuilt,
    };
    let mut figures = Vec::new();
    let mut failed = Vec::new();
    for bench in chosen {
        println!("\n== bench {} ==", bench.name);
        // One VM at a time on the machine: the tests' lock, held for the bench.
        let _vm_lock = if bench.cost == Cost::Vm {
            Some(qemu_lock()?)
        } else {
            None
        };
        match (bench.run)(&setup) {
            Ok(found) => figures.extend(found),
            Err(error) => {
                eprintln!("bench {} failed: {error:#}", bench.name);
                failed.push(bench.name);
            }
        }
    }
    let date = time::OffsetDateTime::now_utc().date().to_string();
    println!("\n{}", crate::figures::table(&figures, &date));
    if write_docs {
        let doc = setup.root.join("docs/benchmarks.md");
        crate::figures::write_into(&doc, &figures, &date)?;
        println!("written into {}", doc.display());
    }
    if !failed.is_empty() {
        bail!("benches that failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The machine-wide QEMU lock the VM tests take (`flock /tmp/talos-rs-qemu.lock`), waited for.
fn qemu_lock() -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    const LOCK: &str = "/tmp/talos-rs-qemu.lock";
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK)
        .with_context(|| format!("opening {LOCK}"))?;
    println!("waiting for {LOCK}");
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow::anyhow!("locking {LOCK}: {errno}"))
}

/// Prints the table of one bench's figures (for the `bench-*` commands).
pub fn print_table(figures: &[Figure]) {
    let date = time::OffsetDateTime::now_utc().date().to_string();
    println!("\n{}", crate::figures::table(figures, &date));
}

/// `talosctl gen config` wall time and peak RSS, measured by a fresh xtask process (see
/// [`measure_gen_config`]).
fn gen_config(setup: &Setup) -> anyhow::Result<Vec<Figure>> {
    // Peak RSS is read with getrusage(RUSAGE_CHILDREN), which covers every child ever waited
    // for: measure from a fresh xtask process whose only children are the talosctl runs.
    let output = Command::new(std::env::current_exe()?)
        .args([MEASURE_GEN_CONFIG, &GEN_CONFIG_RUNS.to_string()])
        .arg(setup.bin.join("talosctl"))
        .arg(setup.root.join("_out/bench"))
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    if !output.status.success() {
        bail!("measuring talosctl gen config failed: {}", output.status);
    }
    let value = |label: &str, unit: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label)?.strip_suffix(unit))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no `{label}` line"))
    };
    let metric = |what: &str| format!("`talosctl gen config`, {what} ({GEN_CONFIG_RUNS} runs)");
    Ok(vec![
        Figure::new(
            "gen-config",
            metric("wall p50"),
            value("wall p50", "ms")?,
            Unit::Millis,
        )
        .upstream("≈ 1 s (its RSA-4096 key alone)"),
        Figure::new(
            "gen-config",
            metric("wall p90"),
            value("wall p90", "ms")?,
            Unit::Millis,
        ),
        Figure::new(
            "gen-config",
            metric("peak RSS"),
            value("peak RSS", "MiB")?,
            Unit::MiB,
        ),
    ])
}

const GEN_CONFIG_RUNS: usize = 20;

/// The criterion micro-benchmarks of `machineconfig`: each one's median, from criterion's
/// `estimates.json`.
fn criterion_machineconfig(setup: &Setup) -> anyhow::Result<Vec<Figure>> {
    // Criterion writes under the bench's working directory (the package's) unless told.
    let reports = setup
        .bin
        .parent()
        .context("the release directory has a parent")?
        .join("criterion");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["bench", "-q", "-p", "machineconfig"])
        .env("CRITERION_HOME", &reports)
        .current_dir(&setup.root)
        .status()?;
    if !status.success() {
        bail!("cargo bench -p machineconfig failed: {status}");
    }
    let mut figures = Vec::new();
    for group in sorted_dirs(&reports)? {
        for bench in sorted_dirs(&group)? {
            let read = |file: &str| -> anyhow::Result<serde_json::Value> {
                let path = bench.join("new").join(file);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok(serde_json::from_str(&text)?)
            };
            let (Ok(id), Ok(estimates)) = (read("benchmark.json"), read("estimates.json")) else {
                continue;
            };
            let name = id["full_id"].as_str().unwrap_or_default();
            let Some(nanos) = estimates["median"]["point_estimate"].as_f64() else {
                continue;
            };
            figures.push(Figure::new(
                "config",
                format!("criterion `{name}`, median"),
                nanos / 1e3,
                Unit::Micros,
            ));
        }
    }
    if figures.is_empty() {
        bail!("no criterion reports under {}", reports.display());
    }
    Ok(figures)
}

fn sorted_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir() && path.file_name().is_some_and(|n| n != "report"))
        .collect();
    dirs.sort();
    Ok(dirs)
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
    let figures = crate::node_bench::run(&release_dir(&root), &root.join("_out/bench-node"))?;
    print_table(&figures);
    Ok(())
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
