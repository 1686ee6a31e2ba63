//! Suites too slow for CI as a whole, run as tests of the `tests` crate with their figures
//! printed:
//! - `cargo xtask faults`: every fault test (tests/tests/faults.rs), the QEMU power cuts during an
//!   apply and during an upgrade and the node's clock set back and forward (tests/tests/image.rs,
//!   ignored in CI) and etcd losing a member
//!   (tests/tests/etcd.rs); needs the image (`cargo xtask image`) and root.
//! - `cargo xtask test-clusters`: both provisioners' tests (tests/tests/docker_cluster.rs,
//!   tests/tests/qemu_cluster.rs), the QEMU cluster's iso preset (ignored in CI) included;
//!   needs the image and its Docker image (`cargo xtask image`, `cargo xtask docker-image`).
//! - `cargo xtask bench-load [--connections N] [--failed-auths N]`: the load test
//!   (tests/tests/load.rs) on release builds, by default with 1,000 connections and 10,000
//!   failing handshakes.

use anyhow::{Context as _, bail};

use crate::bench::{cargo, workspace_root};

pub fn faults() -> anyhow::Result<()> {
    let root = workspace_root();
    cargo(&root, &["build", "-q", "--workspace", "--bins"])?;
    let test = |args: &[&str]| {
        let mut all = vec!["test", "-q", "-p", "tests"];
        all.extend_from_slice(args);
        cargo(&root, &all)
    };
    test(&["--test", "faults", "--test", "etcd", "--", "--nocapture"])?;
    test(&[
        "--test",
        "image",
        "--",
        "power_cut",
        "clock_set",
        "--ignored",
        "--nocapture",
    ])
}

pub fn test_clusters() -> anyhow::Result<()> {
    let root = workspace_root();
    cargo(&root, &["build", "-q", "--workspace", "--bins"])?;
    cargo(
        &root,
        &[
            "test",
            "-q",
            "-p",
            "tests",
            "--test",
            "docker_cluster",
            "--test",
            "qemu_cluster",
            "--",
            "--include-ignored",
            "--nocapture",
        ],
    )
}

pub fn bench_load(args: &[String]) -> anyhow::Result<()> {
    let mut connections = "1000".to_string();
    let mut failed_auths = "10000".to_string();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} takes a number"))?;
        value
            .parse::<usize>()
            .with_context(|| format!("{flag} takes a number"))?;
        match flag.as_str() {
            "--connections" => connections = value.clone(),
            "--failed-auths" => failed_auths = value.clone(),
            other => bail!("unknown flag {other}: --connections N, --failed-auths N"),
        }
    }
    let root = workspace_root();
    cargo(&root, &["build", "-q", "--release", "--bins"])?;
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "test",
                "-q",
                "--release",
                "-p",
                "tests",
                "--test",
                "load",
                "--",
                "--nocapture",
            ])
            .env("LOAD_CONNECTIONS", &connections)
            .env("LOAD_FAILED_AUTHS", &failed_auths)
            .current_dir(&root)
            .status()?;
    if !status.success() {
        bail!("the load test failed: {status}");
    }
    Ok(())
}
