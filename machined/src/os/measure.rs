//! What booted, measured: the SHA-256 of the kernel and initramfs in the BOOT slot that
//! booted and of the SquashFS root, once per boot, for
//! [`BootArtifacts`](crate::controllers::boot_artifacts).
//!
//! The SquashFS is opened in the initramfs before the root switch and read through that open
//! file afterwards (the initramfs is out of reach once the root has moved). The kernel and
//! initramfs are read back from BOOT (`A/` or `B/`, as `BOOT_IMAGE=` names it): what GRUB
//! loaded, as long as nothing rewrote the slot since. A node booted without a system disk (the
//! ISO, QEMU's `-kernel`) publishes the SquashFS alone.

use std::fs::File;
use std::io::{Read, Seek as _, SeekFrom};

use crate::controllers::boot_artifacts::{BootArtifact, BootArtifactSpec};
use crate::error::MachinedError;
use crate::upgrade::SystemDisk;

/// The SquashFS root inside the initramfs.
pub const SQUASHFS: &str = "/rootfs.sqsh";
/// The artifacts of a BOOT slot, by the names the build's `SHA256SUMS` gives them.
const SLOT_FILES: [&str; 2] = ["vmlinuz", "initramfs.img"];

/// The digests of what booted; an artifact that cannot be read is left out and logged.
pub fn measure(squashfs: Option<&mut File>, disk: Option<&SystemDisk>) -> Vec<BootArtifact> {
    let mut measured = Vec::new();
    if let Some(disk) = disk {
        let source = format!("BOOT partition, slot {}", disk.booted.label());
        let read = disk.read_booted_slot(|slot| {
            SLOT_FILES
                .iter()
                .map(|name| {
                    let path = slot.join(name);
                    let file = File::open(&path).map_err(MachinedError::io("opening", &path))?;
                    let (sha256, size) =
                        sha256(file).map_err(MachinedError::io("reading", &path))?;
                    Ok(artifact(name, sha256, size, &source))
                })
                .collect::<Result<Vec<_>, MachinedError>>()
        });
        match read {
            Ok(artifacts) => measured.extend(artifacts),
            Err(error) => {
                tracing::warn!(%error, "the booted kernel and initramfs are not measured")
            }
        }
    }
    if let Some(file) = squashfs {
        let name = SQUASHFS.trim_start_matches('/');
        match file
            .seek(SeekFrom::Start(0))
            .and_then(|_| sha256(&mut *file))
        {
            Ok((sha256, size)) => measured.push(artifact(name, sha256, size, "initramfs")),
            Err(error) => tracing::warn!(%error, "the SquashFS root is not measured"),
        }
    }
    measured
}

fn artifact(name: &str, sha256: String, size: u64, source: &str) -> BootArtifact {
    (
        name.to_string(),
        BootArtifactSpec {
            sha256,
            size,
            source: source.to_string(),
        },
    )
}

/// Lower-case hex SHA-256 and length of everything `reader` yields.
pub fn sha256(mut reader: impl Read) -> std::io::Result<(String, u64)> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        context.update(&buffer[..read]);
        size += read as u64;
    }
    let digest = context.finish();
    let hex = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        let (digest, size) = sha256(&b"abc"[..]).unwrap();
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(size, 3);
    }

    #[test]
    fn the_squashfs_is_measured_from_its_open_file_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rootfs.sqsh");
        std::fs::write(&path, b"abc").unwrap();
        let mut file = File::open(&path).unwrap();
        file.seek(SeekFrom::End(0)).unwrap();
        std::fs::remove_file(&path).unwrap();
        let measured = measure(Some(&mut file), None);
        assert_eq!(measured.len(), 1);
        assert_eq!(measured[0].0, "rootfs.sqsh");
        assert_eq!(
            measured[0].1.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(measured[0].1.source, "initramfs");
    }
}
