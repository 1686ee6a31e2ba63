//! The system disk: find the STATE and EPHEMERAL partitions by their GPT names, format them
//! (xfs) the first time, and mount them at `/system/state` and `/var` (reference §7.5).
//!
//! Limits: partitions must already exist in the GPT (the disk image carries them); EPHEMERAL
//! does not grow with the disk; no encryption; a filesystem is recognised by the xfs magic
//! only, so anything else on those partitions is formatted over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::host::{Host, Mount};
use super::sequence::load_modules;
use crate::error::MachinedError;

/// The xfs superblock magic at offset 0.
const XFS_MAGIC: &[u8] = b"XFSB";
/// mkfs.xfs in the root filesystem.
const MKFS_XFS: &str = "/usr/sbin/mkfs.xfs";
/// Modules for the system disk's filesystems, loaded only when there is one.
pub const DISK_MODULES: &str = "/lib/modules/disk";

/// A system volume: its partition name and mount point.
#[derive(Debug, Clone, Copy)]
pub struct Volume {
    pub label: &'static str,
    pub mount_point: &'static str,
    pub flags: MsFlags,
}

pub const VOLUMES: [Volume; 2] = [
    Volume {
        label: "STATE",
        mount_point: "/system/state",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
    },
    Volume {
        label: "EPHEMERAL",
        mount_point: "/var",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
    },
];

/// Partitions by GPT name (`PARTNAME` in sysfs), e.g. `STATE` → `/dev/vda5`.
pub fn partitions<H: Host>(host: &mut H) -> Result<BTreeMap<String, PathBuf>, MachinedError> {
    let class = Path::new("/sys/class/block");
    let mut found = BTreeMap::new();
    for name in host.list_dir(class)? {
        let Ok(uevent) = host.read_file(&class.join(&name).join("uevent")) else {
            continue;
        };
        let field = |key: &str| {
            uevent
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        };
        if let (Some(label), Some(device)) = (field("PARTNAME"), field("DEVNAME")) {
            found
                .entry(label.to_string())
                .or_insert_with(|| Path::new("/dev").join(device));
        }
    }
    Ok(found)
}

/// Mounts STATE and EPHEMERAL (formatting them first when they hold no filesystem); a volume
/// without a partition, or any volume when `use_disks` is false (booted from the ISO), gets a
/// tmpfs. Returns the mount points, outermost first.
pub fn mount_volumes<H: Host>(
    host: &mut H,
    use_disks: bool,
) -> Result<Vec<PathBuf>, MachinedError> {
    let partitions = if use_disks {
        partitions(host)?
    } else {
        host.log("machined: booted from the install medium: disks stay untouched until an install");
        BTreeMap::new()
    };
    let on_disk = VOLUMES.iter().any(|v| partitions.contains_key(v.label));
    if on_disk {
        load_modules(host, Path::new(DISK_MODULES))?;
    } else if use_disks {
        host.log("machined: no system disk: STATE and EPHEMERAL are in memory");
    }
    let mut mounted = Vec::new();
    for volume in VOLUMES {
        let target = PathBuf::from(volume.mount_point);
        host.create_dir(&target)?;
        match partitions.get(volume.label) {
            Some(device) => {
                if host.read_head(device, XFS_MAGIC.len())? != XFS_MAGIC {
                    host.log(&format!(
                        "machined: formatting {} ({}) as xfs",
                        volume.label,
                        device.display()
                    ));
                    let device_text = device.display().to_string();
                    // mkfs.xfs refuses filesystems under 300 MB (STATE is 100 MiB) unless
                    // it believes it runs in xfstests.
                    let env = [
                        ("TEST_DIR", "/tmp"),
                        ("TEST_DEV", device_text.as_str()),
                        ("QA_CHECK_FS", "1"),
                    ];
                    host.run(
                        Path::new(MKFS_XFS),
                        &["-q", "-f", "-L", volume.label, &device_text],
                        &env,
                    )?;
                }
                host.mount(&Mount::new(
                    &device.display().to_string(),
                    volume.mount_point,
                    "xfs",
                    volume.flags,
                    "",
                ))?;
                host.log(&format!(
                    "machined: {} ({}) mounted at {}",
                    volume.label,
                    device.display(),
                    volume.mount_point
                ));
            }
            None if volume.mount_point == "/var" => host.mount(&Mount::new(
                "tmpfs",
                volume.mount_point,
                "tmpfs",
                volume.flags,
                "mode=0755",
            ))?,
            // STATE without a disk is a directory of the /system tmpfs.
            None => continue,
        }
        mounted.push(target);
    }
    Ok(mounted)
}

#[cfg(test)]
mod tests {
    use super::super::host::{Action, RecordingHost};
    use super::*;

    fn disk(state_formatted: bool) -> RecordingHost {
        let mut host = RecordingHost::default()
            .with_file(
                "/sys/class/block/vda/uevent",
                "MAJOR=254\nDEVNAME=vda\nDEVTYPE=disk\n",
            )
            .with_file(
                "/sys/class/block/vda5/uevent",
                "DEVNAME=vda5\nPARTN=5\nPARTNAME=STATE\n",
            )
            .with_file(
                "/sys/class/block/vda6/uevent",
                "DEVNAME=vda6\nPARTN=6\nPARTNAME=EPHEMERAL\n",
            )
            .with_file(
                "/lib/modules/disk/load-order",
                "crc32c_generic.ko\nlibcrc32c.ko\nxfs.ko\n",
            );
        if state_formatted {
            host.heads
                .insert("/dev/vda5".into(), b"XFSB\0\0\x10\0".to_vec());
        }
        host
    }

    #[test]
    fn formats_only_blank_volumes_then_mounts_them() {
        let mut host = disk(true);
        let mounted = mount_volumes(&mut host, true).unwrap();
        assert_eq!(
            mounted,
            vec![PathBuf::from("/system/state"), PathBuf::from("/var")]
        );
        let runs: Vec<Action> = host
            .effects()
            .into_iter()
            .filter(|a| matches!(a, Action::Run(..)))
            .collect();
        assert_eq!(
            runs,
            vec![Action::Run(
                MKFS_XFS.into(),
                vec![
                    "-q".into(),
                    "-f".into(),
                    "-L".into(),
                    "EPHEMERAL".into(),
                    "/dev/vda6".into()
                ]
            )]
        );
        let effects = host.effects();
        let xfs = effects
            .iter()
            .position(|a| *a == Action::LoadModule("/lib/modules/disk/xfs.ko".into()));
        let first_mount = effects.iter().position(|a| matches!(a, Action::Mount(_)));
        assert!(xfs < first_mount);
        assert!(effects.contains(&Action::Mount(Mount::new(
            "/dev/vda5",
            "/system/state",
            "xfs",
            VOLUMES[0].flags,
            ""
        ))));
    }

    #[test]
    fn without_a_disk_var_is_tmpfs_and_no_module_is_loaded() {
        let mut host =
            RecordingHost::default().with_file("/sys/class/block/loop0/uevent", "DEVNAME=loop0\n");
        let mounted = mount_volumes(&mut host, true).unwrap();
        assert_eq!(mounted, vec![PathBuf::from("/var")]);
        assert!(
            !host
                .effects()
                .iter()
                .any(|a| matches!(a, Action::LoadModule(_) | Action::Run(..)))
        );
    }
}
