//! Block devices as `storage.StorageService` shows and wipes them: the disks of `/sys/block`
//! with what sysfs says of them, and wiping a disk or partition by name.
//!
//! A wipe is refused for the system disk and its partitions and for a device with a mounted
//! partition, unless the caller skips the volume check; `fast` zeroes the first and last MiB
//! (partition tables, both GPT copies, filesystem signatures), `zeroes` the whole device.
//! Limits: `drop_partition` (removing the partition from its table) is not done; the kernel is
//! not asked to re-read a wiped disk's partition table.

use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;

use proto::storage::Disk;
use proto::storage::block_device_wipe_descriptor::Method;
use proto::storage::disk::DiskType;

use crate::error::MachinedError;

/// The transport of the disk named `name`, as upstream names it (`virtio`, `nvme`, `mmc`; empty
/// where the name does not tell).
pub fn transport(name: &str) -> &'static str {
    ["vd", "nvme", "mmcblk"]
        .iter()
        .zip(["virtio", "nvme", "mmc"])
        .find(|(prefix, _)| name.starts_with(**prefix))
        .map_or("", |(_, transport)| transport)
}

/// A size as upstream prints `pretty_size` (go-humanize's `Bytes`: decimal units, one decimal
/// below 10, none from 10 on: `8.6 GB`, `11 GB`).
pub fn pretty_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let exponent = ((bytes as f64).log(1000.0).floor() as usize).min(UNITS.len() - 1);
    let value = (bytes as f64 / 1000f64.powi(exponent as i32) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[exponent])
    } else {
        format!("{value:.0} {}", UNITS[exponent])
    }
}

/// What a fast wipe zeroes at each end of the device.
const FAST_WIPE: u64 = 1 << 20;
/// Zeroes are written in pieces of this size.
const CHUNK: usize = 1 << 20;

/// Where the kernel shows block devices and the nodes to open them (`/sys`, `/dev` on a node).
#[derive(Clone, Debug)]
pub struct BlockDevices {
    pub sys: PathBuf,
    pub dev: PathBuf,
}

impl BlockDevices {
    /// The disks of `/sys/block` (no loop or RAM devices), `system_disk` marked.
    pub fn disks(&self, system_disk: Option<&str>) -> Vec<Disk> {
        let Ok(entries) = std::fs::read_dir(self.sys.join("block")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with("loop") && !name.starts_with("ram"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| self.disk(&name, system_disk == Some(name.as_str())))
            .collect()
    }

    fn disk(&self, name: &str, system_disk: bool) -> Disk {
        let dir = self.sys.join("block").join(name);
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map(|text| text.trim().to_string())
                .unwrap_or_default()
        };
        let kind = if name.starts_with("nvme") {
            DiskType::Nvme
        } else if name.starts_with("mmcblk") {
            DiskType::Sd
        } else if name.starts_with("sr") {
            DiskType::Cd
        } else if read("queue/rotational") == "1" {
            DiskType::Hdd
        } else {
            DiskType::Ssd
        };
        let wwid = Some(read("wwid"))
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| read("device/wwid"));
        let bus_path = std::fs::canonicalize(&dir)
            .ok()
            .and_then(|path| {
                let path = path.strip_prefix(self.sys.join("devices")).ok()?;
                let path = path.parent()?.parent()?; // …/block/<name>
                Some(format!("/{}", path.display()))
            })
            .unwrap_or_default();
        let subsystem = std::fs::canonicalize(dir.join("subsystem"))
            .map(|path| path.display().to_string())
            .unwrap_or_default();
        Disk {
            size: read("size").parse::<u64>().unwrap_or(0).saturating_mul(512),
            model: read("device/model"),
            device_name: format!("/dev/{name}"),
            name: name.to_string(),
            serial: read("device/serial"),
            modalias: read("device/modalias"),
            uuid: String::new(),
            wwid,
            r#type: kind.into(),
            bus_path,
            system_disk,
            subsystem,
            readonly: read("ro") == "1",
        }
    }

    /// A number from the disk's `queue/` in sysfs (0 when unreadable).
    pub fn queue_value(&self, disk: &str, file: &str) -> u64 {
        std::fs::read_to_string(self.sys.join("block").join(disk).join("queue").join(file))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The disk that holds `partition` (`vda` for `/dev/vda3`), or the device itself.
    pub fn disk_of(&self, device: &str) -> Option<String> {
        let name = device_name(device).ok()?;
        let path = std::fs::canonicalize(self.sys.join("class/block").join(&name)).ok()?;
        if path.join("partition").exists() {
            path.parent()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        } else {
            Some(name)
        }
    }

    /// Wipes `device` (`vdb`, `/dev/vdb1`) with `method`; `mounts` is `/proc/mounts`' text.
    pub fn wipe(
        &self,
        device: &str,
        method: Method,
        skip_volume_check: bool,
        system_disk: Option<&str>,
        mounts: &str,
    ) -> Result<(), MachinedError> {
        let name = device_name(device)?;
        if !self.sys.join("class/block").join(&name).exists() {
            return Err(MachinedError::NotFound(format!("no block device {name}")));
        }
        if !skip_volume_check {
            let disk = self.disk_of(&name).unwrap_or_else(|| name.clone());
            if system_disk == Some(disk.as_str()) {
                return Err(MachinedError::FailedPrecondition(format!(
                    "{name} is the system disk or one of its partitions: it holds the node's volumes"
                )));
            }
            if let Some((source, target)) = mounted_from(mounts, &name) {
                return Err(MachinedError::FailedPrecondition(format!(
                    "{name} is in use: {source} is mounted at {target}"
                )));
            }
        }
        let path = self.dev.join(&name);
        let io = |what| MachinedError::io(what, &path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io("opening"))?;
        let size = file.seek(SeekFrom::End(0)).map_err(io("sizing"))?;
        let ranges = match method {
            Method::Fast if size > 2 * FAST_WIPE => {
                vec![(0, FAST_WIPE), (size - FAST_WIPE, FAST_WIPE)]
            }
            Method::Fast | Method::Zeroes => vec![(0, size)],
        };
        let zeroes = vec![0u8; CHUNK];
        for (start, len) in ranges {
            file.seek(SeekFrom::Start(start)).map_err(io("seeking"))?;
            let mut left = len;
            while left > 0 {
                let piece = left.min(CHUNK as u64) as usize;
                file.write_all(&zeroes[..piece]).map_err(io("wiping"))?;
                left -= piece as u64;
            }
        }
        file.sync_all().map_err(io("syncing"))
    }
}

/// A device name from what a client sent: `vdb` or `/dev/vdb`, nothing that leaves `/dev`.
fn device_name(device: &str) -> Result<String, MachinedError> {
    let name = device.strip_prefix("/dev/").unwrap_or(device);
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
    if valid {
        Ok(name.to_string())
    } else {
        Err(MachinedError::InvalidArgument(format!(
            "{device:?} is not a block device name (e.g. sdb, /dev/nvme0n1p2)"
        )))
    }
}

/// The first mount whose source is `name` or one of its partitions: (source, target).
fn mounted_from(mounts: &str, name: &str) -> Option<(String, String)> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (source, target) = (fields.next()?, fields.next()?);
        let device = source.strip_prefix("/dev/")?;
        let rest = device.strip_prefix(name)?;
        // `vdb1`, `nvme0n1p1`, but not `vdbb`.
        let partition = rest.is_empty()
            || rest.chars().all(|c| c.is_ascii_digit())
            || rest
                .strip_prefix('p')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        partition.then(|| (source.to_string(), target.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sysfs with disks `vda` (partitions vda1..vda2, the system disk), `vdb` and `loop0`, and
    /// their device nodes as files of 4 MiB filled with 0xAA.
    fn fixture() -> (tempfile::TempDir, BlockDevices) {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path().join("sys");
        let dev = root.path().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        let pci = sys.join("devices/pci0000:00/0000:00:05.0/virtio1/block");
        for (disk, partitions) in [("vda", 2), ("vdb", 0), ("loop0", 0)] {
            let dir = pci.join(disk);
            std::fs::create_dir_all(dir.join("queue")).unwrap();
            std::fs::create_dir_all(dir.join("device")).unwrap();
            std::fs::write(dir.join("size"), "8192\n").unwrap();
            std::fs::write(dir.join("ro"), "0\n").unwrap();
            std::fs::write(dir.join("queue/rotational"), "1\n").unwrap();
            std::fs::write(dir.join("device/serial"), format!("SER-{disk}\n")).unwrap();
            for link in ["block", "class/block"] {
                std::fs::create_dir_all(sys.join(link)).unwrap();
                std::os::unix::fs::symlink(&dir, sys.join(link).join(disk)).unwrap();
            }
            for n in 1..=partitions {
                let part = dir.join(format!("{disk}{n}"));
                std::fs::create_dir_all(&part).unwrap();
                std::fs::write(part.join("partition"), format!("{n}\n")).unwrap();
                std::os::unix::fs::symlink(
                    &part,
                    sys.join("class/block").join(format!("{disk}{n}")),
                )
                .unwrap();
                std::fs::write(dev.join(format!("{disk}{n}")), vec![0xAA; 4 << 20]).unwrap();
            }
            std::fs::write(dev.join(disk), vec![0xAA; 4 << 20]).unwrap();
        }
        (root, BlockDevices { sys, dev })
    }

    #[test]
    fn disks_are_listed_with_what_sysfs_says_and_the_system_disk_marked() {
        let (_root, devices) = fixture();
        let disks = devices.disks(Some("vda"));
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["vda", "vdb"]);
        let vda = &disks[0];
        assert_eq!(vda.device_name, "/dev/vda");
        assert_eq!(vda.size, 8192 * 512);
        assert_eq!(vda.serial, "SER-vda");
        assert_eq!(vda.r#type(), DiskType::Hdd);
        assert_eq!(vda.bus_path, "/pci0000:00/0000:00:05.0/virtio1");
        assert!(vda.system_disk && !disks[1].system_disk);
        assert_eq!(devices.disk_of("/dev/vda2").as_deref(), Some("vda"));
        assert_eq!(devices.disk_of("vdb").as_deref(), Some("vdb"));
    }

    #[test]
    fn a_fast_wipe_zeroes_both_ends_and_a_full_one_everything() {
        let (_root, devices) = fixture();
        devices
            .wipe("/dev/vdb", Method::Fast, false, Some("vda"), "")
            .unwrap();
        let bytes = std::fs::read(devices.dev.join("vdb")).unwrap();
        let mib = 1 << 20;
        assert!(bytes[..mib].iter().all(|&b| b == 0));
        assert!(bytes[bytes.len() - mib..].iter().all(|&b| b == 0));
        assert!(bytes[mib..bytes.len() - mib].iter().all(|&b| b == 0xAA));
        devices
            .wipe("vdb", Method::Zeroes, false, Some("vda"), "")
            .unwrap();
        let bytes = std::fs::read(devices.dev.join("vdb")).unwrap();
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn the_system_disk_mounted_devices_and_bad_names_are_refused() {
        let (_root, devices) = fixture();
        let refused = |device: &str, mounts: &str| {
            devices
                .wipe(device, Method::Fast, false, Some("vda"), mounts)
                .unwrap_err()
                .to_string()
        };
        assert!(refused("vda2", "").contains("vda2 is the system disk"));
        assert!(refused("vda", "").contains("system disk"));
        assert!(
            refused("vdb", "/dev/vdb1 /mnt xfs rw 0 0\n")
                .contains("vdb is in use: /dev/vdb1 is mounted at /mnt")
        );
        // A disk whose name only starts the same is not in use.
        devices
            .wipe(
                "vdb",
                Method::Fast,
                false,
                Some("vda"),
                "/dev/vdbb1 /mnt xfs rw 0 0\n",
            )
            .unwrap();
        assert!(refused("../etc/passwd", "").contains("not a block device name"));
        assert!(refused("vdz", "").contains("no block device vdz"));
        // Skipping the volume check is the caller's explicit choice.
        devices
            .wipe("vda2", Method::Fast, true, Some("vda"), "")
            .unwrap();
        assert!(
            std::fs::read(devices.dev.join("vda2")).unwrap()[..16]
                .iter()
                .all(|&b| b == 0)
        );
        // Nothing else was touched.
        assert!(
            std::fs::read(devices.dev.join("vda"))
                .unwrap()
                .iter()
                .all(|&b| b == 0xAA)
        );
    }
}
