//! Measures networkd in a network namespace of its own (needs root):
//! - time from Apply of a changed config until it is applied (Apply answers after the kernel
//!   acknowledged every change), p50/p90/max over N runs, for a small change (one address and
//!   one route swapped) and a larger one (20 addresses and 20 routes swapped);
//! - the same for a network document: a `LinkConfig` whose MTU and address change (document →
//!   link state);
//! - networkd's resident memory (VmRSS) idle after configuring.
//!
//! Run: `cargo build --release -p networkd && cargo run --release -p networkd --example bench`
//! (optional argument: runs per figure, default 50).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::talosrs::networkd::ApplyRequest;
use proto::talosrs::networkd::network_service_client::NetworkServiceClient;

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ip(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("ip")
        .args(["netns", "exec", ns, "ip"])
        .args(args)
        .status()?;
    anyhow::ensure!(status.success(), "ip {args:?} failed");
    Ok(())
}

/// A config with `count` addresses and routes on eth0, from the `variant` numbering.
fn config(count: usize, variant: usize) -> String {
    let mut yaml = String::from("interfaces:\n  - interface: eth0\n    addresses:\n");
    yaml.push_str("      - 10.70.0.2/24\n");
    for i in 0..count {
        yaml.push_str(&format!("      - 10.{}.{i}.2/24\n", 80 + variant));
    }
    yaml.push_str("    routes:\n");
    for i in 0..count {
        yaml.push_str(&format!(
            "      - {{network: 10.{}.{i}.0/24, gateway: 10.70.0.1}}\n",
            100 + variant
        ));
    }
    yaml
}

/// A `LinkConfig` for eth0 from the `variant` numbering: MTU and address change with it.
fn link_document(variant: usize) -> String {
    format!(
        "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth0\nmtu: {}\naddresses: [{{address: 10.90.{variant}.2/24}}]\n",
        1400 + variant * 100
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn networkd_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/examples/bench → target/<profile>/networkd
    let path = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("networkd"))
        .ok_or_else(|| anyhow::anyhow!("unexpected example path {}", exe.display()))?;
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo build --release -p networkd` first",
        path.display()
    );
    Ok(path)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(50);
    let binary = networkd_binary()?;
    let ns = Netns(format!("ndbench-{}", std::process::id()));
    let status = Command::new("ip").args(["netns", "add", &ns.0]).status()?;
    anyhow::ensure!(status.success(), "ip netns add failed (root needed)");
    ip(&ns.0, &["link", "set", "lo", "up"])?;
    ip(
        &ns.0,
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
        ],
    )?;
    ip(&ns.0, &["link", "set", "peer0", "up"])?;

    let state = tempfile::tempdir()?;
    let socket = state.path().join("system/run/networkd/networkd.sock");
    let process = Process(
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(&binary)
            .arg("--state-dir")
            .arg(state.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        anyhow::ensure!(Instant::now() < deadline, "networkd did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("unix:{}", socket.display()))?
        .connect()
        .await?;
    let mut client = NetworkServiceClient::new(channel);

    println!("networkd bench: {runs} runs per figure, release build, in a network namespace");
    for count in [1, 20] {
        let mut times = Vec::with_capacity(runs);
        for run in 0..=runs {
            let request = ApplyRequest {
                network_yaml: config(count, run % 2),
                kernel_ip_arg: String::new(),
                documents_yaml: String::new(),
            };
            let start = Instant::now();
            let response = client.apply(request).await?.into_inner();
            let elapsed = start.elapsed();
            anyhow::ensure!(response.errors.is_empty(), "{:?}", response.errors);
            // Run 0 sets the config up; the others each swap `count` addresses and routes.
            if run > 0 {
                anyhow::ensure!(
                    response.changes.len() >= 4 * count,
                    "only {} changes",
                    response.changes.len()
                );
                times.push(elapsed);
            }
        }
        times.sort();
        println!(
            "apply → applied, {count} address(es) + {count} route(s) swapped: p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.9).as_secs_f64() * 1e3,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    let mut times = Vec::with_capacity(runs);
    for run in 0..=runs {
        let request = ApplyRequest {
            network_yaml: String::new(),
            kernel_ip_arg: String::new(),
            documents_yaml: link_document(run % 2),
        };
        let start = Instant::now();
        let response = client.apply(request).await?.into_inner();
        let elapsed = start.elapsed();
        anyhow::ensure!(response.errors.is_empty(), "{:?}", response.errors);
        if run > 0 {
            // MTU, address removed, address added.
            anyhow::ensure!(
                response.changes.len() >= 3,
                "only {} changes",
                response.changes.len()
            );
            times.push(elapsed);
        }
    }
    times.sort();
    println!(
        "apply → applied, LinkConfig document changed (MTU and address): p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    // Back to the 20-address config, for the memory figure.
    let request = ApplyRequest {
        network_yaml: config(20, 0),
        kernel_ip_arg: String::new(),
        documents_yaml: String::new(),
    };
    client.apply(request).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", process.0.id()))?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?")
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_string();
    let kib: f64 = rss.parse().unwrap_or(f64::NAN);
    println!(
        "networkd RSS idle after configuring (21 addresses, 20 routes): {:.1} MiB",
        kib / 1024.0
    );
    Ok(())
}
