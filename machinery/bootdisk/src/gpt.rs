//! A GUID partition table (UEFI spec §5.3) written from scratch: the protective MBR (with the
//! caller's boot code), the primary header and entries at the start of the disk and their
//! backup at the end, 128 entries of 128 bytes, CRC32s over both.

use uuid::Uuid;

use crate::layout::SECTOR;

const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION: u32 = 0x0001_0000;
const HEADER_SIZE: u32 = 92;
const ENTRY_COUNT: u64 = 128;
const ENTRY_SIZE: u64 = 128;
/// Sectors the entry array takes (128 × 128 bytes).
const ENTRY_SECTORS: u64 = ENTRY_COUNT * ENTRY_SIZE / SECTOR;
/// The MBR's boot code area.
pub const BOOT_CODE_SIZE: usize = 440;
/// Name length in UTF-16 code units.
const NAME_UNITS: usize = 36;

/// One partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub type_guid: Uuid,
    pub guid: Uuid,
    pub first: u64,
    /// Inclusive.
    pub last: u64,
    pub attributes: u64,
    pub name: String,
}

/// A whole partition table for a disk of `sectors` sectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub disk_guid: Uuid,
    pub sectors: u64,
    pub entries: Vec<Entry>,
}

impl Table {
    /// The last sector a partition may use on a disk of `sectors`.
    pub fn last_usable(sectors: u64) -> u64 {
        sectors - 2 - ENTRY_SECTORS
    }

    /// Sector 0 to 33: the protective MBR with `boot_code`, the primary header, the entries.
    pub fn primary(&self, boot_code: &[u8; BOOT_CODE_SIZE]) -> Vec<u8> {
        let mut bytes = protective_mbr(self.sectors, boot_code).to_vec();
        bytes.extend(self.header(1, self.sectors - 1, 2));
        bytes.extend(self.entry_array());
        bytes
    }

    /// The last 33 sectors: the entries, then the backup header.
    pub fn backup(&self) -> Vec<u8> {
        let last = self.sectors - 1;
        let mut bytes = self.entry_array();
        bytes.extend(self.header(last, 1, last - ENTRY_SECTORS));
        bytes
    }

    /// Where [`Table::backup`] goes, in bytes.
    pub fn backup_offset(&self) -> u64 {
        (self.sectors - 1 - ENTRY_SECTORS) * SECTOR
    }

    fn entry_array(&self) -> Vec<u8> {
        let mut array = vec![0u8; (ENTRY_COUNT * ENTRY_SIZE) as usize];
        for (entry, slot) in self
            .entries
            .iter()
            .zip(array.chunks_mut(ENTRY_SIZE as usize))
        {
            slot[0..16].copy_from_slice(&entry.type_guid.to_bytes_le());
            slot[16..32].copy_from_slice(&entry.guid.to_bytes_le());
            slot[32..40].copy_from_slice(&entry.first.to_le_bytes());
            slot[40..48].copy_from_slice(&entry.last.to_le_bytes());
            slot[48..56].copy_from_slice(&entry.attributes.to_le_bytes());
            for (unit, bytes) in entry
                .name
                .encode_utf16()
                .take(NAME_UNITS)
                .zip(slot[56..128].chunks_mut(2))
            {
                bytes.copy_from_slice(&unit.to_le_bytes());
            }
        }
        array
    }

    /// One header sector.
    fn header(&self, own: u64, alternate: u64, entries_at: u64) -> Vec<u8> {
        let mut sector = vec![0u8; SECTOR as usize];
        sector[0..8].copy_from_slice(SIGNATURE);
        sector[8..12].copy_from_slice(&REVISION.to_le_bytes());
        sector[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        sector[24..32].copy_from_slice(&own.to_le_bytes());
        sector[32..40].copy_from_slice(&alternate.to_le_bytes());
        sector[40..48].copy_from_slice(&(2 + ENTRY_SECTORS).to_le_bytes());
        sector[48..56].copy_from_slice(&Self::last_usable(self.sectors).to_le_bytes());
        sector[56..72].copy_from_slice(&self.disk_guid.to_bytes_le());
        sector[72..80].copy_from_slice(&entries_at.to_le_bytes());
        sector[80..84].copy_from_slice(&(ENTRY_COUNT as u32).to_le_bytes());
        sector[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        sector[88..92].copy_from_slice(&crc32fast::hash(&self.entry_array()).to_le_bytes());
        let crc = crc32fast::hash(&sector[..HEADER_SIZE as usize]);
        sector[16..20].copy_from_slice(&crc.to_le_bytes());
        sector
    }
}

/// Sector 0: `boot_code`, one partition of type 0xEE over the whole disk, the signature.
fn protective_mbr(sectors: u64, boot_code: &[u8; BOOT_CODE_SIZE]) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    mbr[..BOOT_CODE_SIZE].copy_from_slice(boot_code);
    let entry = &mut mbr[446..462];
    entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    entry[4] = 0xee;
    entry[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    entry[12..16].copy_from_slice(&size.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

/// The partition names of a valid primary GPT in `head` (the disk's first 34 sectors), or
/// `None` when `head` holds no valid GPT.
pub fn partition_names(head: &[u8]) -> Option<Vec<String>> {
    let header = head.get(SECTOR as usize..2 * SECTOR as usize)?;
    if &header[0..8] != SIGNATURE {
        return None;
    }
    let size = u32::from_le_bytes(header[12..16].try_into().ok()?) as usize;
    let mut copy = header.get(..size)?.to_vec();
    let stored = u32::from_le_bytes(copy[16..20].try_into().ok()?);
    copy[16..20].fill(0);
    if crc32fast::hash(&copy) != stored {
        return None;
    }
    let at = u64::from_le_bytes(header[72..80].try_into().ok()?);
    let count = u32::from_le_bytes(header[80..84].try_into().ok()?) as usize;
    let entry_size = u32::from_le_bytes(header[84..88].try_into().ok()?) as usize;
    let start = usize::try_from(at.checked_mul(SECTOR)?).ok()?;
    let array = head.get(start..start.checked_add(count.checked_mul(entry_size)?)?)?;
    let names = array
        .chunks(entry_size.max(128))
        .filter(|entry| entry[0..16].iter().any(|b| *b != 0))
        .map(|entry| {
            let units: Vec<u16> = entry[56..128]
                .chunks(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .take_while(|u| *u != 0)
                .collect();
            String::from_utf16_lossy(&units)
        })
        .collect();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{self, MIB};
    use std::os::unix::fs::FileExt;

    fn table() -> Table {
        layout::table(4096 * MIB, Uuid::from_u128(1), |n| {
            Uuid::from_u128(0x100 + n as u128)
        })
        .unwrap()
    }

    #[test]
    fn the_primary_table_reads_back_with_its_names() {
        let primary = table().primary(&[0; BOOT_CODE_SIZE]);
        assert_eq!(primary.len(), 34 * 512);
        let names = partition_names(&primary).unwrap();
        assert_eq!(names, ["EFI", "BIOS", "BOOT", "META", "STATE", "EPHEMERAL"]);
        let mut corrupted = primary.clone();
        corrupted[512 + 40] ^= 1;
        assert_eq!(partition_names(&corrupted), None);
        assert_eq!(partition_names(&[0; 34 * 512]), None);
    }

    /// sgdisk (gdisk) verifies both copies, the CRCs and the protective MBR.
    #[test]
    fn sgdisk_finds_no_problem_with_a_written_disk() {
        if !std::path::Path::new("/usr/sbin/sgdisk").exists() {
            eprintln!("skipped: sgdisk is not installed");
            return;
        }
        let table = table();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(table.sectors * SECTOR).unwrap();
        file.write_all_at(&table.primary(&[0; BOOT_CODE_SIZE]), 0)
            .unwrap();
        file.write_all_at(&table.backup(), table.backup_offset())
            .unwrap();
        drop(file);
        let verify = std::process::Command::new("/usr/sbin/sgdisk")
            .arg("--verify")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&verify.stdout);
        assert!(verify.status.success(), "{text}");
        assert!(text.contains("No problems found"), "{text}");
        let print = std::process::Command::new("/usr/sbin/sgdisk")
            .arg("--print")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&print.stdout);
        assert!(
            text.contains("EPHEMERAL") && text.contains("EF02"),
            "{text}"
        );
    }
}
