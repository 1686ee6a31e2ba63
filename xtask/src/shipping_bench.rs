//! `cargo xtask bench-shipping`: what log shipping costs. One dev-mode node (release build,
//! `RUST_LOG=debug`, so that every API call makes machined log lines) is driven with Version
//! calls on machined's socket from 16 callers for 10 s, once without and once with a
//! `machine.logging.destinations` entry pointing at a TCP sink on loopback; printed: calls/s,
//! lines received by the sink per second, and machined's CPU use.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::bench::{cargo, release_dir, workspace_root};
use crate::figures::{Figure, Unit};
use crate::node_bench::{admin_request, unix_client};

const ADDRESS: &str = "127.48.0.2";
const SINK: &str = "127.48.0.1";
const CALLERS: usize = 16;
const RUN: Duration = Duration::from_secs(10);

pub fn run() -> anyhow::Result<()> {
    let root = workspace_root();
    cargo(&root, &["build", "-q", "--release", "--bins"])?;
    let figures = measure(&root, &release_dir(&root))?;
    crate::bench::print_table(&figures);
    Ok(())
}

/// The figures, with the release binaries in `bin`.
pub fn measure(root: &Path, bin: &Path) -> anyhow::Result<Vec<Figure>> {
    let out = root.join("_out/bench-shipping");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    talosctl(
        bin,
        &[
            "gen",
            "config",
            "bench",
            &format!("https://{ADDRESS}:6443"),
            "-o",
        ],
        &out,
    )?;
    let (port, lines) = sink()?;
    let patch = format!(
        r#"{{"machine":{{"logging":{{"destinations":[{{"endpoint":"tcp://{SINK}:{port}","format":"json_lines"}}]}}}}}}"#
    );
    let runtime = tokio::runtime::Runtime::new()?;
    println!(
        "log shipping, one dev node, RUST_LOG=debug, {CALLERS} callers for {} s",
        RUN.as_secs()
    );
    let mut figures = Vec::new();
    for shipping in [false, true] {
        let state = out.join(if shipping { "shipping" } else { "plain" });
        std::fs::create_dir_all(state.join("system/state"))?;
        let config = state.join("system/state/config.yaml");
        if shipping {
            let output = Command::new(bin.join("talosctl"))
                .args(["machineconfig", "patch", "--patch", &patch, "-o"])
                .arg(&config)
                .arg(out.join("controlplane.yaml"))
                .output()?;
            if !output.status.success() {
                bail!(
                    "patching the config: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        } else {
            std::fs::copy(out.join("controlplane.yaml"), &config)?;
        }
        let mut node = Command::new(bin.join("machined"))
            .arg("--state-dir")
            .arg(&state)
            .args(["--api-address", &format!("{ADDRESS}:50000")])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let result = runtime.block_on(drive(&state, node.id(), &lines));
        if let Ok(pid) = i32::try_from(node.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = node.wait();
        let (calls, shipped, cpu) = result?;
        let case = if shipping {
            "with a TCP destination"
        } else {
            "without destinations"
        };
        println!(
            "  {case}: {calls:.0} calls/s, {shipped:.0} lines/s shipped, machined CPU {cpu:.0}%"
        );
        let metric = |what: &str| format!("{what}, RUST_LOG=debug, {case}");
        figures.push(Figure::new(
            "shipping",
            metric("Version calls on machined's socket"),
            calls,
            Unit::PerSecond("calls"),
        ));
        figures.push(Figure::new(
            "shipping",
            metric("machined CPU"),
            cpu,
            Unit::Percent,
        ));
        if shipping {
            figures.push(Figure::new(
                "shipping",
                "log lines shipped to a TCP sink".to_string(),
                shipped,
                Unit::PerSecond("lines"),
            ));
        }
    }
    Ok(figures)
}

pub fn talosctl(bin: &Path, args: &[&str], last: &Path) -> anyhow::Result<()> {
    let status = Command::new(bin.join("talosctl"))
        .args(args)
        .arg(last)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("talosctl {} failed", args.join(" "));
    }
    Ok(())
}

/// A TCP sink on loopback counting the lines it receives; returns its port and the counter.
fn sink() -> anyhow::Result<(u16, Arc<AtomicU64>)> {
    let listener = TcpListener::bind((SINK, 0))?;
    let port = listener.local_addr()?.port();
    let lines = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&lines);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    if line.is_err() {
                        return;
                    }
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    Ok((port, lines))
}

/// (calls/s, lines shipped/s, machined CPU %) over [`RUN`].
async fn drive(state: &Path, pid: u32, lines: &AtomicU64) -> anyhow::Result<(f64, f64, f64)> {
    let socket = state.join("system/run/machined/machine.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        if let Ok(mut client) = unix_client(&socket).await
            && client.version(admin_request()).await.is_ok()
        {
            break client;
        }
        if Instant::now() > deadline {
            bail!("the node did not answer");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Let start-up settle before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lines_before = lines.load(Ordering::Relaxed);
    let cpu_before = cpu_ticks(pid)?;
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let mut client = client.clone();
        callers.push(tokio::spawn(async move {
            let mut calls = 0u64;
            while started.elapsed() < RUN {
                if client.version(admin_request()).await.is_ok() {
                    calls += 1;
                }
            }
            calls
        }));
    }
    let mut calls = 0;
    for caller in callers {
        calls += caller.await?;
    }
    // Lines still in flight reach the sink shortly after.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid)? - cpu_before) as f64 / ticks_per_second() / elapsed * 100.0;
    let shipped = (lines.load(Ordering::Relaxed) - lines_before) as f64 / elapsed;
    Ok((calls as f64 / elapsed, shipped, cpu))
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc stat")?
        .1
        .split_whitespace()
        .collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Ok(field(14).unwrap_or(0) + field(15).unwrap_or(0))
}

pub fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}
