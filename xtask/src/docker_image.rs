//! `cargo xtask docker-image`: the root filesystem of the OS image, with machined as its
//! entry point, imported into the local Docker engine as `talos-rs/talos:v<version>` (the image
//! `talosctl cluster create docker` runs; there is no registry to pull it from).

use std::path::Path;
use std::process::Command;

use crate::image::{build_binaries, install, run, stage_rootfs};

/// The image's name, which talosctl's `--image` defaults to.
pub const IMAGE: &str = concat!("talos-rs/talos:v", env!("CARGO_PKG_VERSION"));

pub fn run_docker_image() -> anyhow::Result<()> {
    let root = crate::bench::workspace_root();
    build(&root)?;
    println!("imported {IMAGE}");
    Ok(())
}

/// Builds the daemons, stages the root filesystem and imports it as [`IMAGE`].
pub fn build(root: &Path) -> anyhow::Result<()> {
    let binaries = build_binaries(root)?;
    let dir = root.join("_out/docker");
    let staging = dir.join("rootfs");
    stage_rootfs(root, &staging, &binaries, &[])?;
    install(
        &binaries.join("machined"),
        &staging.join("usr/bin/machined"),
        0o755,
    )?;
    let tarball = dir.join("rootfs.tar");
    // Sorted names, fixed owners and times: the same commit gives the same tarball.
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&tarball)
        .arg("-C")
        .arg(&staging)
        .arg("."))?;
    run(Command::new("docker")
        .args([
            "import",
            "--change",
            r#"ENTRYPOINT ["/usr/bin/machined"]"#,
            "--change",
            "ENV PLATFORM=container",
        ])
        .arg(&tarball)
        .arg(IMAGE))?;
    std::fs::remove_file(&tarball)?;
    Ok(())
}
