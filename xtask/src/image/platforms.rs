//! `cargo xtask image --platform NAME` (or `all`): the system disk of one cloud or
//! virtualization platform, packed in upstream's artifact format and name, with
//! `talos.platform=NAME` on its kernel command line and a `.sha256` file beside it.
//!
//! | platform | artifact |
//! |---|---|
//! | metal, nocloud, aws, openstack, hcloud, cloudstack, equinixMetal, opennebula, scaleway, upcloud, vultr | `NAME-amd64.raw.zst` |
//! | digital-ocean, akamai | `NAME-amd64.raw.gz` |
//! | gcp | `gcp-amd64.raw.tar.gz` (`disk.raw` in a GNU sparse tar, gzip) |
//! | alibabacloud, exoscale, oracle | `NAME-amd64.qcow2.zst` (8 KiB clusters, as upstream) |
//! | azure | `azure-amd64.vhd.zst` (a fixed VHD, [`vhd`]) |
//! | vmware | `vmware-amd64.ova` (a streamOptimized VMDK in an OVA, [`ova`]) |
//!
//! `container` has no disk image: its artifact is the Docker image (`cargo xtask docker-image`).
//! Every disk is the same 4 GiB layout ([`disk`]); upstream sizes some larger (8 or 10 GiB),
//! which the node's EPHEMERAL partition does not need at first boot.
//!
//! The packing is reproducible: zstd single-threaded, gzip without name or time, tars
//! sorted with mtime 0 and owner root, qcow2 as qemu-img writes it (no time stamps), the
//! VHD footer and the VMDK content id fixed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use super::{Outputs, disk, ova, run, sha256_hex, vhd};

/// How an artifact is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// The raw disk, zstd.
    Zstd,
    /// The raw disk, gzip.
    Gzip,
    /// The raw disk as `disk.raw` in a tar, gzip.
    TarGz,
    /// A qcow2 disk, zstd.
    Qcow2Zstd,
    /// A fixed VHD, zstd.
    VhdZstd,
    /// An OVA with a streamOptimized VMDK, not compressed further.
    Ova,
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
    ("akamai", Packing::Gzip),
    ("alibabacloud", Packing::Qcow2Zstd),
    ("azure", Packing::VhdZstd),
    ("cloudstack", Packing::Zstd),
    ("equinixMetal", Packing::Zstd),
    ("exoscale", Packing::Qcow2Zstd),
    ("opennebula", Packing::Zstd),
    ("oracle", Packing::Qcow2Zstd),
    ("scaleway", Packing::Zstd),
    ("upcloud", Packing::Zstd),
    ("vmware", Packing::Ova),
    ("vultr", Packing::Zstd),
];

/// The platforms `--platform VALUE` names (`all`, or a comma-separated list).
pub fn selected(value: &str) -> anyhow::Result<Vec<(&'static str, Packing)>> {
    if value == "all" {
        return Ok(PLATFORMS.to_vec());
    }
    value
        .split(',')
        .map(|name| {
            if name == "container" {
                bail!("platform \"container\" has no disk image: `cargo xtask docker-image` builds its image");
            }
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
        Packing::Qcow2Zstd => format!("{platform}-amd64.qcow2.zst"),
        Packing::VhdZstd => format!("{platform}-amd64.vhd.zst"),
        Packing::Ova => format!("{platform}-amd64.ova"),
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
            esp_img: &outputs.esp_img(),
            work: &work.join("disk"),
        },
        &raw,
        &work.join("disk.qcow2"),
    )?;
    let artifact = outputs.dir.join(artifact_name(platform, packing));
    let _ = std::fs::remove_file(&artifact);
    match packing {
        Packing::Zstd => zstd(&raw, &artifact)?,
        Packing::Qcow2Zstd => {
            let qcow2 = work.join("disk.qcow2");
            let _ = std::fs::remove_file(&qcow2);
            run(Command::new("qemu-img")
                .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
                .args(["-o", "cluster_size=8k"])
                .arg(&raw)
                .arg(&qcow2))?;
            zstd(&qcow2, &artifact)?;
        }
        Packing::VhdZstd => {
            vhd::append_footer(&raw)?;
            zstd(&raw, &artifact)?;
        }
        Packing::Ova => ova::build(&raw, &work, &artifact)?,
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

/// Builds the artifacts of `chosen` ([`build`]), as many at a time as the machine has cores
/// (each packer runs on one thread, so the bytes do not depend on it); each artifact's path
/// and how long it took, in the order of `chosen`.
pub fn build_all(
    outputs: &Outputs,
    cmdline: &str,
    chosen: &[(&'static str, Packing)],
) -> anyhow::Result<Vec<(&'static str, PathBuf, std::time::Duration)>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(chosen.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let built = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(&(platform, packing)) =
                    chosen.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
                {
                    let started = std::time::Instant::now();
                    let result = build(outputs, cmdline, platform, packing)
                        .with_context(|| format!("the {platform} artifact"))
                        .map(|path| (platform, path, started.elapsed()));
                    let failed = result.is_err();
                    built
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(result);
                    if failed {
                        // The others stop after their current artifact.
                        next.store(chosen.len(), std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let mut built = built
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    built.sort_by_key(|(platform, _, _)| chosen.iter().position(|(p, _)| p == platform));
    Ok(built)
}

/// Compresses `from` into `to` with zstd -19 on one thread (reproducible).
fn zstd(from: &Path, to: &Path) -> anyhow::Result<()> {
    run(Command::new("zstd")
        .args(["-q", "-T1", "-19", "--no-progress"])
        .arg(from)
        .arg("-o")
        .arg(to))
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
        let error = selected("azure,plan9").unwrap_err().to_string();
        assert!(error.contains("no image for platform \"plan9\""), "{error}");
        let error = selected("container").unwrap_err().to_string();
        assert!(error.contains("docker-image"), "{error}");
    }

    #[test]
    fn every_upstream_platform_but_container_has_its_upstream_artifact() {
        let upstream = [
            "akamai",
            "alibabacloud",
            "aws",
            "azure",
            "cloudstack",
            "digital-ocean",
            "equinixMetal",
            "exoscale",
            "gcp",
            "hcloud",
            "metal",
            "nocloud",
            "opennebula",
            "openstack",
            "oracle",
            "scaleway",
            "upcloud",
            "vmware",
            "vultr",
        ];
        let mut ours: Vec<&str> = PLATFORMS.iter().map(|(n, _)| *n).collect();
        ours.sort_unstable();
        assert_eq!(ours, upstream);
        let names: Vec<String> = selected("exoscale,azure,vmware,akamai")
            .unwrap()
            .into_iter()
            .map(|(platform, packing)| artifact_name(platform, packing))
            .collect();
        assert_eq!(
            names,
            [
                "exoscale-amd64.qcow2.zst",
                "azure-amd64.vhd.zst",
                "vmware-amd64.ova",
                "akamai-amd64.raw.gz"
            ]
        );
    }
}
