//! A fixed VHD (azure): the raw disk padded to a whole MiB, followed by the 512-byte
//! footer of Microsoft's VHD format specification (big-endian fields, a one's-complement
//! checksum of the footer with its checksum field zeroed).
//!
//! The creator application is `qem2`, as `qemu-img convert -o subformat=fixed,force_size`
//! (upstream's tool) writes it: readers then take the size from the footer rather than
//! from the CHS geometry, which cannot express every whole-MiB size.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use bootdisk::layout::MIB;

/// The footer's length, and its place: the file's last 512 bytes.
pub const FOOTER_LEN: usize = 512;
const DISK_TYPE_FIXED: u32 = 2;
/// Every footer's unique id: fixed, so that the image is reproducible.
const UNIQUE_ID: [u8; 16] = *b"talos-rs-azure\0\0";

/// Pads `raw` to a whole MiB and appends the fixed-VHD footer: `raw` becomes the VHD.
pub fn append_footer(raw: &Path) -> anyhow::Result<()> {
    let file = File::options().write(true).open(raw)?;
    let size = file.metadata()?.len().div_ceil(MIB) * MIB;
    file.set_len(size)?;
    file.write_all_at(&footer(size), size)?;
    Ok(())
}

/// The footer of a fixed disk of `size` bytes. Its time stamp is 0 (the VHD epoch,
/// 2000-01-01), so that the image is reproducible.
pub fn footer(size: u64) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: the reserved bit, always set
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // format version 1.0
    f[16..24].copy_from_slice(&u64::MAX.to_be_bytes()); // data offset: none for fixed disks
    f[28..32].copy_from_slice(b"qem2");
    f[32..36].copy_from_slice(&0x0005_0003u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes()); // original size
    f[48..56].copy_from_slice(&size.to_be_bytes()); // current size
    let (cylinders, heads, sectors) = geometry(size);
    f[56..58].copy_from_slice(&cylinders.to_be_bytes());
    f[58] = heads;
    f[59] = sectors;
    f[60..64].copy_from_slice(&DISK_TYPE_FIXED.to_be_bytes());
    f[68..84].copy_from_slice(&UNIQUE_ID);
    let sum = checksum(&f);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The one's complement of the byte sum of `footer`, its checksum field (64..68) excluded.
pub fn checksum(footer: &[u8; FOOTER_LEN]) -> u32 {
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |sum, (_, b)| sum.wrapping_add(u32::from(*b)));
    !sum
}

/// The specification's CHS geometry for `size` bytes: (cylinders, heads, sectors per track).
fn geometry(size: u64) -> (u16, u8, u8) {
    let total = (size / 512).min(65535 * 16 * 255);
    let (sectors, heads, cylinder_heads) = if total >= 65535 * 16 * 63 {
        (255, 16, total / 255)
    } else {
        let mut sectors = 17;
        let mut cylinder_heads = total / sectors;
        let mut heads = cylinder_heads.div_ceil(1024).max(4);
        if cylinder_heads >= heads * 1024 || heads > 16 {
            (sectors, heads) = (31, 16);
            cylinder_heads = total / sectors;
        }
        if cylinder_heads >= heads * 1024 {
            (sectors, heads) = (63, 16);
            cylinder_heads = total / sectors;
        }
        (sectors, heads, cylinder_heads)
    };
    let cylinders = u16::try_from(cylinder_heads / heads).unwrap_or(u16::MAX);
    // Both fit: heads ≤ 16, sectors ≤ 255.
    (cylinders, heads as u8, sectors as u8)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn the_footer_carries_the_specified_fields_and_a_valid_checksum() {
        let size = 4096 * MIB;
        let f = footer(size);
        assert_eq!(&f[0..8], b"conectix");
        assert_eq!(u64::from_be_bytes(f[16..24].try_into().unwrap()), u64::MAX);
        assert_eq!(u64::from_be_bytes(f[48..56].try_into().unwrap()), size);
        assert_eq!(u32::from_be_bytes(f[60..64].try_into().unwrap()), 2);
        let stored = u32::from_be_bytes(f[64..68].try_into().unwrap());
        assert_eq!(stored, checksum(&f));
        // By hand: the one's complement of the sum of every other byte.
        let by_hand: u32 = f[..64].iter().chain(&f[68..]).map(|b| u32::from(*b)).sum();
        assert_eq!(stored, !by_hand);
        // The specification's worked geometry for 4 GiB: 8322 cylinders, 16 heads, 63 sectors.
        assert_eq!(geometry(size), (8322, 16, 63));
        assert_eq!(geometry(128 * 1024 * 1024 * 1024), (65535, 16, 255));
        assert_eq!(geometry(20 * MIB), (602, 4, 17));
    }

    #[test]
    fn qemu_reads_the_vhd_as_a_fixed_disk_of_the_padded_size_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let pattern: Vec<u8> = (0..(2 * MIB + 4096)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&raw, &pattern).unwrap();
        append_footer(&raw).unwrap();
        let bytes = std::fs::read(&raw).unwrap();
        assert_eq!(bytes.len() as u64, 3 * MIB + FOOTER_LEN as u64);
        // A fixed VHD has no header to probe: readers are told the format.
        let info = Command::new("qemu-img")
            .args(["info", "-f", "vpc", "--output=json"])
            .arg(&raw)
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["format"], "vpc", "{info}");
        assert_eq!(info["virtual-size"], 3 * MIB, "{info}");
        let back = dir.path().join("back.raw");
        let status = Command::new("qemu-img")
            .args(["convert", "-f", "vpc", "-O", "raw"])
            .arg(&raw)
            .arg(&back)
            .status()
            .unwrap();
        assert!(status.success());
        let back = std::fs::read(&back).unwrap();
        assert_eq!(&back[..pattern.len()], &pattern[..]);
        assert!(back[pattern.len()..].iter().all(|b| *b == 0));
        assert_eq!(back.len() as u64, 3 * MIB);
    }
}
