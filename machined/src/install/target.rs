//! The install disk, checked before anything is written to it.

use std::path::{Path, PathBuf};

use bootdisk::{gpt, layout};

use super::Plan;
use crate::error::MachinedError;

/// What the disk holds before the install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contents {
    /// Zeroes where a partition table or filesystem would be.
    Blank,
    /// A talos-rs system disk (a finished or an interrupted install).
    TalosRs,
    /// Anything else.
    Other,
}

/// A whole disk that the layout fits.
#[derive(Clone, Debug)]
pub struct Target {
    pub disk: PathBuf,
    /// The kernel's name of the disk (`vda`).
    pub name: String,
    pub bytes: u64,
    pub contents: Contents,
}

impl Target {
    /// Checks `plan.disk` against `sys_block` (`/sys/class/block`) and `mounts` (`/proc/mounts`).
    pub fn check(plan: &Plan, sys_block: &Path, mounts: &Path) -> Result<Target, MachinedError> {
        let disk = &plan.disk;
        let refuse = |why: String| {
            MachinedError::FailedPrecondition(format!(
                "machine.install.disk {}: {why}",
                disk.display()
            ))
        };
        let name = disk
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|_| disk.is_absolute())
            .ok_or_else(|| refuse("not a device path such as /dev/sda".into()))?
            .to_string();
        let sys = sys_block.join(&name);
        if !sys.exists() {
            return Err(refuse(format!(
                "no such disk on this machine (disks: {})",
                whole_disks(sys_block).join(", ")
            )));
        }
        if sys.join("partition").exists() {
            return Err(refuse("is a partition; name the whole disk".into()));
        }
        let size_path = sys.join("size");
        let sectors: u64 = std::fs::read_to_string(&size_path)
            .map_err(MachinedError::io("reading", &size_path))?
            .trim()
            .parse()
            .map_err(|_| refuse("the kernel reports no size for it".into()))?;
        let bytes = sectors * layout::SECTOR;
        let needed = layout::minimum_disk_bytes();
        if bytes < needed {
            return Err(refuse(format!(
                "{} MiB is too small: the system disk needs at least {} MiB",
                bytes / layout::MIB,
                needed / layout::MIB
            )));
        }
        let mounted =
            std::fs::read_to_string(mounts).map_err(MachinedError::io("reading", mounts))?;
        let device_prefix = format!("/dev/{name}");
        if let Some(line) = mounted.lines().find(|line| {
            line.split(' ')
                .next()
                .is_some_and(|d| d.starts_with(&device_prefix))
        }) {
            let mut fields = line.split(' ');
            let (device, at) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            return Err(refuse(format!("in use: {device} is mounted at {at}")));
        }
        let contents = contents(disk)?;
        if contents == Contents::Other && !plan.wipe {
            return Err(refuse(
                "holds a partition table or data that is not a talos-rs system disk; set \
                 machine.install.wipe: true to wipe it and install"
                    .into(),
            ));
        }
        Ok(Target {
            disk: disk.clone(),
            name,
            bytes,
            contents,
        })
    }

    /// The device of partition `number` (`vda3`, `nvme0n1p3`).
    pub fn partition(&self, number: u32) -> PathBuf {
        let separator = if self.name.ends_with(|c: char| c.is_ascii_digit()) {
            "p"
        } else {
            ""
        };
        let dir = self.disk.parent().unwrap_or(Path::new("/dev"));
        dir.join(format!("{}{separator}{number}", self.name))
    }
}

/// Whole disks the kernel knows (not partitions, loop or RAM devices), sorted.
fn whole_disks(sys_block: &Path) -> Vec<String> {
    let mut disks: Vec<String> = std::fs::read_dir(sys_block)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| !entry.path().join("partition").exists())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !name.starts_with("loop") && !name.starts_with("ram"))
        .collect();
    disks.sort();
    disks
}

/// What the disk's first MiB says it holds.
fn contents(disk: &Path) -> Result<Contents, MachinedError> {
    use std::os::unix::fs::FileExt as _;
    let file = std::fs::File::open(disk).map_err(MachinedError::io("opening", disk))?;
    let mut head = vec![0u8; layout::MIB as usize];
    file.read_exact_at(&mut head, 0)
        .map_err(MachinedError::io("reading", disk))?;
    let ours: Vec<&str> = layout::PARTITIONS.iter().map(|p| p.name).collect();
    Ok(match gpt::partition_names(&head) {
        Some(names) if names == ours => Contents::TalosRs,
        _ if head.iter().all(|b| *b == 0) => Contents::Blank,
        _ => Contents::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Machine {
        dir: tempfile::TempDir,
    }

    impl Machine {
        /// A machine with disk `vda` of `mib` MiB whose first bytes are `head`.
        fn new(mib: u64, head: &[u8]) -> Machine {
            let dir = tempfile::tempdir().unwrap();
            let sys = dir.path().join("sys");
            std::fs::create_dir_all(sys.join("vda")).unwrap();
            std::fs::create_dir_all(sys.join("vda1")).unwrap();
            std::fs::write(sys.join("vda1/partition"), "1\n").unwrap();
            std::fs::create_dir_all(sys.join("loop0")).unwrap();
            std::fs::write(sys.join("vda/size"), format!("{}\n", mib * 2048)).unwrap();
            let disk = std::fs::File::create(dir.path().join("vda")).unwrap();
            disk.set_len(2 * layout::MIB).unwrap();
            std::os::unix::fs::FileExt::write_all_at(&disk, head, 0).unwrap();
            std::fs::write(dir.path().join("mounts"), "proc /proc proc rw 0 0\n").unwrap();
            Machine { dir }
        }

        fn check(&self, disk: &str, wipe: bool) -> Result<Target, MachinedError> {
            let plan = Plan {
                disk: self.dir.path().join(disk),
                wipe,
                extra_kernel_args: Vec::new(),
                reboot: true,
            };
            Target::check(
                &plan,
                &self.dir.path().join("sys"),
                &self.dir.path().join("mounts"),
            )
        }
    }

    #[test]
    fn a_blank_disk_that_is_large_enough_is_taken() {
        let machine = Machine::new(8192, &[]);
        let target = machine.check("vda", false).unwrap();
        assert_eq!(target.contents, Contents::Blank);
        assert_eq!(target.bytes, 8192 * layout::MIB);
        assert!(target.partition(3).ends_with("vda3"));
    }

    #[test]
    fn missing_partition_small_and_foreign_disks_are_refused_clearly() {
        let machine = Machine::new(8192, &[]);
        let error = machine.check("vdz", false).unwrap_err().to_string();
        assert!(
            error.contains("vdz: no such disk on this machine (disks: vda)"),
            "{error}"
        );
        let error = machine.check("vda1", false).unwrap_err().to_string();
        assert!(error.contains("is a partition"), "{error}");

        let small = Machine::new(1024, &[]);
        let error = small.check("vda", false).unwrap_err().to_string();
        assert!(error.contains("1024 MiB is too small"), "{error}");

        let foreign = Machine::new(8192, b"\xeb\x63\x90 an old boot sector");
        let error = foreign.check("vda", false).unwrap_err().to_string();
        assert!(error.contains("machine.install.wipe: true"), "{error}");
        assert_eq!(
            foreign.check("vda", true).unwrap().contents,
            Contents::Other
        );
    }

    #[test]
    fn a_talos_rs_disk_is_taken_without_a_wipe_unless_mounted() {
        let table =
            layout::table(8192 * layout::MIB, uuid::Uuid::nil(), |_| uuid::Uuid::nil()).unwrap();
        let machine = Machine::new(8192, &table.primary(&[0; gpt::BOOT_CODE_SIZE]));
        assert_eq!(
            machine.check("vda", false).unwrap().contents,
            Contents::TalosRs
        );
        std::fs::write(
            machine.dir.path().join("mounts"),
            "/dev/vda5 /system/state xfs rw 0 0\n",
        )
        .unwrap();
        let error = machine.check("vda", false).unwrap_err().to_string();
        assert!(
            error.contains("in use: /dev/vda5 is mounted at /system/state"),
            "{error}"
        );
    }
}
