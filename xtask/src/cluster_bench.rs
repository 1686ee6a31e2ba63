//! `cargo xtask bench-cluster [--runs N]`: `talosctl cluster create docker` with 3 control
//! planes and 1 worker, timed from the command's start to "healthy", each node's memory (the
//! RSS of the processes in its container), then `cluster destroy`, timed; on a private network
//! 10.251.0.0/24 and a state folder of its own.

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
    crate::docker_image::build(&root)?;
    cargo(&root, &["build", "-q", "--release", "-p", "talosctl"])?;
    let talosctl = release_dir(&root).join("talosctl");
    let home = tempfile::tempdir()?;
    let mut creates = Vec::new();
    let mut destroys = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let created = talosctl_cluster(
            &talosctl,
            home.path(),
            &[
                "create",
                "docker",
                "--controlplanes",
                "3",
                "--workers",
                "1",
                "--subnet",
                "10.251.0.0/24",
            ],
        );
        let create = started.elapsed().as_secs_f64();
        let memory = created.and_then(|()| node_memory());
        let started = Instant::now();
        talosctl_cluster(&talosctl, home.path(), &["destroy"])?;
        let destroy = started.elapsed().as_secs_f64();
        let memory = memory?;
        println!("run {run}: create → healthy {create:.1} s, destroy {destroy:.1} s");
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
        "docker 3+1 over {runs} runs: create → healthy median {:.1} s, destroy median {:.1} s",
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

/// KiB of RSS per node container.
fn node_memory() -> anyhow::Result<Vec<(String, u64)>> {
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
