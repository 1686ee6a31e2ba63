//! `cargo xtask image --platform NAME` (or `all`): the system disk of one cloud or
//! virtualization platform, packed in upstream's artifact format and name, with
//! `talos.platform=NAME` on its kernel command line and a `.sha256` file beside it.
//!
//! | platform | artifact |
//! |---|---|
//! | metal, nocloud, aws, openstack, hcloud | `NAME-amd64.raw.zst` |
//! | digital-ocean | `digital-ocean-amd64.raw.gz` |
//! | gcp | `gcp-amd64.raw.tar.gz` (`disk.raw` in a GNU sparse tar, gzip) |
//!
//! The packing is reproducible: zstd single-threaded, gzip without name or time, the tar
//! sorted with mtime 0 and owner root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use super::{Outputs, disk, run, sha256_hex};

/// How an artifact is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    Zstd,
    Gzip,
    TarGz,
}

/// The platforms with an image, and their packing.
pub const PLATFORMS: &[(&str, Packing)] = &[
    ("metal", Packing::Zstd),
    ("nocloud", Packing::Zstd),
    ("aws", Packing::Zstd),
    ("gcp", Packing::TarGz),
    ("openstack", Packing::Zstd),
    ("hcloud", Packing::Zstd),
    ("digital-ocean", Packing::Gzip),
];

/// The platforms `--platform VALUE` names (`all`, or a comma-separated list).
pub fn selected(value: &str) -> anyhow::Result<Vec<(&'static str, Packing)>> {
    if value == "all" {
        return Ok(PLATFORMS.to_vec());
    }
    value
        .split(',')
        .map(|name| {
            PLATFORMS
                .iter()
                .find(|(known, _)| *known == name)
                .copied()
                .with_context(|| {
                    let names: Vec<&str> = PLATFORMS.iter().map(|(n, _)| *n).collect();
                    format!(
                        "no image for platform {name:?}; known: {}, all",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

/// `cmdline` with `talos.platform=` naming `platform` (replaced, or added).
pub fn cmdline_for(cmdline: &str, platform: &str) -> String {
    let mut words: Vec<String> = cmdline
        .split_whitespace()
        .filter(|word| !word.starts_with("talos.platform="))
        .map(str::to_string)
        .collect();
    words.push(format!("talos.platform={platform}"));
    words.join(" ")
}

/// The artifact's file name.
pub fn artifact_name(platform: &str, packing: Packing) -> String {
    match packing {
        Packing::Zstd => format!("{platform}-amd64.raw.zst"),
        Packing::Gzip => format!("{platform}-amd64.raw.gz"),
        Packing::TarGz => format!("{platform}-amd64.raw.tar.gz"),
    }
}

/// Builds the artifact of `platform` from the image in `outputs`; returns its path.
pub fn build(
    outputs: &Outputs,
    cmdline: &str,
    platform: &str,
    packing: Packing,
) -> anyhow::Result<PathBuf> {
    let work = outputs.dir.join(format!("{platform}-work"));
    let raw = work.join("disk.raw");
    disk::build(
        &disk::DiskInputs {
            kernel: &outputs.kernel(),
            initramfs: &outputs.initramfs(),
            cmdline: &cmdline_for(cmdline, platform),
            core_img: &outputs.core_img(),
            work: &work.join("disk"),
        },
        &raw,
        &work.join("disk.qcow2"),
    )?;
    let artifact = outputs.dir.join(artifact_name(platform, packing));
    let _ = std::fs::remove_file(&artifact);
    match packing {
        Packing::Zstd => run(Command::new("zstd")
            .args(["-q", "-T1", "-19", "--no-progress"])
            .arg(&raw)
            .arg("-o")
            .arg(&artifact))?,
        Packing::Gzip => pipe_to(
            Command::new("gzip").args(["-n", "-9", "-c"]).arg(&raw),
            &artifact,
        )?,
        Packing::TarGz => {
            let tar = work.join("disk.tar");
            run(Command::new("tar")
                .current_dir(&work)
                .args([
                    "--format=oldgnu",
                    "--sparse",
                    "--sort=name",
                    "--mtime=@0",
                    "--owner=0",
                    "--group=0",
                    "--numeric-owner",
                    "-cf",
                ])
                .arg(&tar)
                .arg("disk.raw"))?;
            pipe_to(
                Command::new("gzip").args(["-n", "-9", "-c"]).arg(&tar),
                &artifact,
            )?;
        }
    }
    std::fs::remove_dir_all(&work)?;
    let name = artifact
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let digest = sha256_hex(&std::fs::read(&artifact)?);
    std::fs::write(
        outputs.dir.join(format!("{name}.sha256")),
        format!("{digest}  {name}\n"),
    )?;
    Ok(artifact)
}

/// Runs `command` with its standard output written to `path`.
fn pipe_to(command: &mut Command, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let status = command
        .stdout(Stdio::from(file))
        .status()
        .with_context(|| format!("{command:?}"))?;
    if !status.success() {
        bail!("{command:?}: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_names_the_platform_once() {
        let base = "init_on_alloc=1 console=ttyS0 talos.platform=metal panic=10";
        assert_eq!(
            cmdline_for(base, "aws"),
            "init_on_alloc=1 console=ttyS0 panic=10 talos.platform=aws"
        );
        assert_eq!(cmdline_for("quiet", "gcp"), "quiet talos.platform=gcp");
    }

    #[test]
    fn platforms_and_artifact_names_follow_upstream() {
        assert_eq!(selected("all").unwrap().len(), PLATFORMS.len());
        let chosen = selected("gcp,digital-ocean").unwrap();
        assert_eq!(
            artifact_name(chosen[0].0, chosen[0].1),
            "gcp-amd64.raw.tar.gz"
        );
        assert_eq!(
            artifact_name(chosen[1].0, chosen[1].1),
            "digital-ocean-amd64.raw.gz"
        );
        assert_eq!(artifact_name("aws", Packing::Zstd), "aws-amd64.raw.zst");
        let error = selected("azure").unwrap_err().to_string();
        assert!(error.contains("no image for platform \"azure\""), "{error}");
    }
}
