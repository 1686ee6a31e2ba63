//! `cargo xtask bench-cluster [--runs N]`: `talosctl cluster create docker` with 3 control
//! planes and 1 worker, and `talosctl cluster create qemu` with 1 control plane and 1 worker,
//! each timed from the command's start to "healthy", each node's host memory (docker: the RSS of
//! the processes in its container; qemu: the RSS of its QEMU process), then `cluster destroy`,
//! timed. Docker on a private network 10.251.0.0/24, QEMU in the namespace the command makes;
//! a state folder of its own.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::bench::{cargo, release_dir, workspace_root};

const NAME: &str = "trs-bench";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let runs: usize = match args {
        [] => 3,
        [flag, n] if flag == "--runs" => n.parse().context("--runs takes a number")?,
        _ => bail!("usage: cargo xtask bench-cluster [--runs N]"),
    };
    let root = workspace_root();
    let image = crate::image::build(&root)?;
    crate::docker_image::build(&root)?;
    cargo(&root, &["build", "-q", "--release", "-p", "talosctl"])?;
    let talosctl = release_dir(&root).join("talosctl");
    let (kernel, initrd, disk) = (
        image.kernel().display().to_string(),
        image.initramfs().display().to_string(),
        image.disk_qcow2().display().to_string(),
    );
    let docker: &[&str] = &[
        "docker",
        "--controlplanes",
        "3",
        "--workers",
        "1",
        "--subnet",
        "10.251.0.0/24",
    ];
    let qemu: &[&str] = &[
        "qemu",
        "--controlplanes",
        "1",
        "--workers",
        "1",
        "--memory-controlplanes",
        "1GiB",
        "--memory-workers",
        "1GiB",
        "--vmlinuz-path",
        &kernel,
        "--initrd-path",
        &initrd,
        "--disk-image-path",
        &disk,
    ];
    for (label, args, memory) in [
        (
            "docker 3+1",
            docker,
            container_memory as fn() -> anyhow::Result<Vec<(String, u64)>>,
        ),
        ("qemu 1+1", qemu, vm_memory),
    ] {
        bench(&talosctl, label, args, memory, runs)?;
    }
    Ok(())
}

fn bench(
    talosctl: &Path,
    label: &str,
    create_args: &[&str],
    memory: fn() -> anyhow::Result<Vec<(String, u64)>>,
    runs: usize,
) -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    let mut creates = Vec::new();
    let mut destroys = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let mut args = vec!["create"];
        args.extend_from_slice(create_args);
        let created = talosctl_cluster(talosctl, home.path(), &args);
        let create = started.elapsed().as_secs_f64();
        let memory = created.and_then(|()| memory());
        let started = Instant::now();
        talosctl_cluster(talosctl, home.path(), &["destroy"])?;
        let destroy = started.elapsed().as_secs_f64();
        let memory = memory?;
        println!("{label} run {run}: create → healthy {create:.1} s, destroy {destroy:.1} s");
        for (node, kib) in &memory {
            println!("  {node}: {:.1} MiB", *kib as f64 / 1024.0);
        }
        creates.push(create);
        destroys.push(destroy);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "{label} over {runs} runs: create → healthy median {:.1} s, destroy median {:.1} s",
        median(&mut creates),
        median(&mut destroys)
    );
    Ok(())
}

fn talosctl_cluster(talosctl: &Path, home: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(talosctl)
        .arg("--talosconfig")
        .arg(home.join("config"))
        .args(["cluster", "--name", NAME, "--state"])
        .arg(home.join("clusters"))
        .args(args)
        .output()?;
    if !output.status.success() {
        bail!(
            "talosctl cluster {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// KiB of RSS per node VM (its QEMU process).
fn vm_memory() -> anyhow::Result<Vec<(String, u64)>> {
    let mut nodes = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let path = entry?.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let words: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let Some(at) = words.iter().position(|w| w == "-name") else {
            continue;
        };
        let name = words.get(at + 1).cloned().unwrap_or_default();
        if !words[0].contains("qemu") || !name.starts_with(NAME) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status"))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        nodes.push((name, kib));
    }
    nodes.sort();
    Ok(nodes)
}

/// KiB of RSS per node container.
fn container_memory() -> anyhow::Result<Vec<(String, u64)>> {
    let filter = format!("label=talos.cluster.name={NAME}");
    let names = docker(&["ps", "--format", "{{.Names}}", "--filter", &filter])?;
    let mut nodes = Vec::new();
    for name in names.lines() {
        let top = docker(&["top", name, "-o", "pid,rss"])?;
        let kib = top
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        nodes.push((name.to_string(), kib));
    }
    nodes.sort();
    Ok(nodes)
}

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker").args(args).output()?;
    if !output.status.success() {
        bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}
