//! The partitions of the system disk (reference §7.5), in order, and where each one starts.
//!
//! | # | name | type | size | content |
//! |---|---|---|---|---|
//! | 1 | EFI | EFI System | 100 MiB | empty vfat |
//! | 2 | BIOS | BIOS boot, legacy-bootable | 1 MiB | GRUB core.img |
//! | 3 | BOOT | Linux data | 1000 MiB | ext4: `grub/`, slots `A/` and `B/` |
//! | 4 | META | Linux data | 1 MiB | the META store |
//! | 5 | STATE | Linux data | 100 MiB | xfs: the machine config |
//! | 6 | EPHEMERAL | Linux data | the rest (≥ [`MIN_EPHEMERAL_MIB`]) | xfs: `/var` |

use uuid::Uuid;

use crate::BootDiskError;
use crate::gpt::{Entry, Table};

pub const SECTOR: u64 = 512;
pub const MIB: u64 = 1 << 20;
/// The smallest EPHEMERAL the installer accepts.
pub const MIN_EPHEMERAL_MIB: u64 = 2048;
/// GPT attribute bit 2: legacy BIOS bootable.
const LEGACY_BOOTABLE: u64 = 1 << 2;

/// What a partition is for, which gives its GPT type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    EfiSystem,
    BiosBoot,
    LinuxData,
}

impl Kind {
    pub fn type_guid(self) -> Uuid {
        match self {
            Kind::EfiSystem => Uuid::from_u128(0xc12a7328_f81f_11d2_ba4b_00a0c93ec93b),
            Kind::BiosBoot => Uuid::from_u128(0x21686148_6449_6e6f_744e_656564454649),
            Kind::LinuxData => Uuid::from_u128(0x0fc63daf_8483_4772_8e79_3d69e8477de4),
        }
    }
}

/// One partition of the layout.
#[derive(Clone, Copy, Debug)]
pub struct Partition {
    pub number: u32,
    pub name: &'static str,
    pub kind: Kind,
    /// Size in MiB; 0 = the rest of the disk.
    pub size_mib: u64,
}

pub const PARTITIONS: [Partition; 6] = [
    Partition {
        number: 1,
        name: "EFI",
        kind: Kind::EfiSystem,
        size_mib: 100,
    },
    Partition {
        number: 2,
        name: "BIOS",
        kind: Kind::BiosBoot,
        size_mib: 1,
    },
    Partition {
        number: 3,
        name: "BOOT",
        kind: Kind::LinuxData,
        size_mib: 1000,
    },
    Partition {
        number: 4,
        name: "META",
        kind: Kind::LinuxData,
        size_mib: 1,
    },
    Partition {
        number: 5,
        name: "STATE",
        kind: Kind::LinuxData,
        size_mib: 100,
    },
    Partition {
        number: 6,
        name: "EPHEMERAL",
        kind: Kind::LinuxData,
        size_mib: 0,
    },
];

/// The partition named `name`.
pub fn partition(name: &str) -> Option<&'static Partition> {
    PARTITIONS.iter().find(|p| p.name == name)
}

/// The first sector of partition `number` (the first starts at 1 MiB).
pub fn start_sector(number: u32) -> u64 {
    let before: u64 = PARTITIONS
        .iter()
        .take_while(|p| p.number != number)
        .map(|p| p.size_mib * MIB)
        .sum();
    (MIB + before) / SECTOR
}

/// The smallest disk the layout fits: the fixed partitions, the smallest EPHEMERAL, and the
/// GPT's first MiB and backup at the end.
pub fn minimum_disk_bytes() -> u64 {
    let fixed: u64 = PARTITIONS.iter().map(|p| p.size_mib).sum();
    (fixed + MIN_EPHEMERAL_MIB + 2) * MIB
}

/// The partition table of a disk of `disk_bytes`; `guid(n)` names partition `n`.
pub fn table(
    disk_bytes: u64,
    disk_guid: Uuid,
    guid: impl Fn(u32) -> Uuid,
) -> Result<Table, BootDiskError> {
    let needed = minimum_disk_bytes();
    if disk_bytes < needed {
        return Err(BootDiskError::DiskTooSmall {
            size: disk_bytes,
            needed,
        });
    }
    let sectors = disk_bytes / SECTOR;
    let last_usable = Table::last_usable(sectors);
    let entries = PARTITIONS
        .iter()
        .map(|p| {
            let first = start_sector(p.number);
            let last = match p.size_mib {
                // The rest, ending on a MiB boundary.
                0 => ((last_usable + 1) * SECTOR / MIB * MIB) / SECTOR - 1,
                size => first + size * MIB / SECTOR - 1,
            };
            Entry {
                type_guid: p.kind.type_guid(),
                guid: guid(p.number),
                first,
                last,
                attributes: if p.kind == Kind::BiosBoot {
                    LEGACY_BOOTABLE
                } else {
                    0
                },
                name: p.name.to_string(),
            }
        })
        .collect();
    Ok(Table {
        disk_guid,
        sectors,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_each_other_from_one_mib() {
        assert_eq!(start_sector(1), 2048);
        assert_eq!(start_sector(2), 2048 + 100 * 2048);
        assert_eq!(start_sector(3), 2048 + 101 * 2048);
        let table = table(4096 * MIB, Uuid::nil(), |_| Uuid::nil()).unwrap();
        for pair in table.entries.windows(2) {
            assert_eq!(pair[0].last + 1, pair[1].first);
        }
        let ephemeral = table.entries.last().unwrap();
        assert!(ephemeral.last <= Table::last_usable(table.sectors));
        assert_eq!((ephemeral.last + 1) % 2048, 0);
    }

    #[test]
    fn a_disk_too_small_is_refused_with_both_sizes() {
        let error = table(1024 * MIB, Uuid::nil(), |_| Uuid::nil()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(&(1024 * MIB).to_string()), "{text}");
        assert!(text.contains(&minimum_disk_bytes().to_string()), "{text}");
    }
}
