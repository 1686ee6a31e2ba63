//! `cargo xtask test-platforms [--platform NAME[,NAME…]]`: every platform's artifact but
//! `container` (or those named), built from the image in `_out/image/` when missing (the
//! image too), then booted one VM at a time by the ignored test of `tests/tests/platforms.rs`
//! with a mock metadata service where it has one. Prints per platform the artifact's size,
//! its build time (when built now), and the boot: configured from the metadata (QEMU start →
//! mutual TLS answering, and the user data served → API answering), maintenance mode, or a
//! metadata service this test does not mock; then pass or fail.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::bench::{cargo, workspace_root};
use crate::image::{self, Outputs};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let value = match args {
        [] => "all",
        [flag, value] if flag == "--platform" => value.as_str(),
        _ => bail!("usage: cargo xtask test-platforms [--platform NAME[,NAME...]]"),
    };
    let root = workspace_root();
    let existing = Outputs::new(&root);
    let outputs = if existing.dir.join("SHA256SUMS").exists() {
        existing
    } else {
        image::build(&root)?
    };
    let artifacts = image::platform_artifacts(&outputs, value)?;
    cargo(&root, &["build", "-q", "--workspace", "--bins"])?;
    let names: Vec<&str> = artifacts.iter().map(|(name, _, _)| *name).collect();
    let mut test = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "-q", "-p", "tests", "--test", "platforms"])
        .args([
            "every_platform_artifact_boots",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .env("TALOS_RS_PLATFORMS", names.join(","))
        .current_dir(&root)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let mut boots = Vec::new();
    for line in BufReader::new(test.stdout.take().context("the test's output")?).lines() {
        let line = line?;
        println!("{line}");
        if let Some(boot) = line.strip_prefix("platform-boot ") {
            boots.push(boot.to_string());
        }
    }
    let status = test.wait()?;
    println!("\n| platform | artifact | size | build | boot |\n|---|---|---|---|---|");
    for (platform, path, built) in &artifacts {
        let size = std::fs::metadata(path)?.len();
        let boot = boots
            .iter()
            .find_map(|b| b.strip_prefix(&format!("{platform} ")))
            .unwrap_or("not booted");
        println!(
            "| {platform} | {} | {:.1} MB | {} | {boot} |",
            path.file_name().unwrap_or_default().to_string_lossy(),
            size as f64 / 1e6,
            built.map_or("present".into(), |d| format!("{:.1} s", d.as_secs_f64())),
        );
    }
    if !status.success() {
        bail!("a platform boot failed: {status}");
    }
    Ok(())
}
