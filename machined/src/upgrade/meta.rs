//! META: a small key-value store on the META partition that survives reboots, upgrades and
//! resets of STATE and EPHEMERAL, with upstream's key numbers ([`keys`]).
//!
//! Layout (talos-rs's own; upstream's ADV format is not reproduced): two copies of up to
//! [`COPY_SIZE`] bytes at offsets 0 and [`COPY_SIZE`], each `TALOSRSM`, a generation (u64 LE),
//! the payload length (u32 LE), the payload (`key u8, length u16 LE, value` per entry) and the
//! SHA-256 of everything before it. Reading takes the valid copy with the higher generation;
//! writing overwrites the other one and syncs, so a power cut during a write leaves the
//! previous state readable. A partition of zeroes is an empty store.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::MachinedError;

const MAGIC: &[u8; 8] = b"TALOSRSM";
/// One copy's size.
pub const COPY_SIZE: usize = 64 * 1024;
const HEADER: usize = 8 + 8 + 4;
const DIGEST: usize = 32;

/// Upstream's META keys (`pkg/machinery/meta`) and talos-rs's own.
pub mod keys {
    /// The slot to fall back to while an upgrade's trial boot has not committed.
    pub const UPGRADE: u8 = 0x06;
    pub const STAGED_UPGRADE_IMAGE_REF: u8 = 0x07;
    pub const STAGED_UPGRADE_INSTALL_OPTIONS: u8 = 0x08;
    pub const STATE_ENCRYPTION_CONFIG: u8 = 0x09;
    pub const METAL_NETWORK_PLATFORM_CONFIG: u8 = 0x0a;
    pub const DOWNLOAD_URL_CODE: u8 = 0x0b;
    pub const USER_RESERVED_1: u8 = 0x0c;
    pub const USER_RESERVED_2: u8 = 0x0d;
    pub const USER_RESERVED_3: u8 = 0x0e;
    pub const UUID_OVERRIDE: u8 = 0x0f;
    pub const UNIQUE_MACHINE_TOKEN: u8 = 0x10;
    pub const DISK_IMAGE_BOOTLOADER: u8 = 0x11;
    /// talos-rs: how the last upgrade or rollback ended, in words.
    pub const UPGRADE_STATUS: u8 = 0xf0;
}

/// The store's entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    generation: u64,
    pub values: BTreeMap<u8, Vec<u8>>,
}

impl Meta {
    /// Decodes the newest valid copy of `partition` (its first `2 × COPY_SIZE` bytes).
    pub fn decode(partition: &[u8]) -> Meta {
        partition
            .chunks(COPY_SIZE)
            .take(2)
            .filter_map(decode_copy)
            .max_by_key(|meta| meta.generation)
            .unwrap_or_default()
    }

    /// The next copy to write and its offset: the next generation, over the older copy.
    pub fn encode_next(&self) -> Result<(u64, Vec<u8>), MachinedError> {
        let generation = self.generation + 1;
        let mut payload = Vec::new();
        for (key, value) in &self.values {
            let length = u16::try_from(value.len()).map_err(|_| too_large())?;
            payload.push(*key);
            payload.extend_from_slice(&length.to_le_bytes());
            payload.extend_from_slice(value);
        }
        if HEADER + payload.len() + DIGEST > COPY_SIZE {
            return Err(too_large());
        }
        let mut copy = MAGIC.to_vec();
        copy.extend_from_slice(&generation.to_le_bytes());
        copy.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        copy.extend_from_slice(&payload);
        let digest = ring::digest::digest(&ring::digest::SHA256, &copy);
        copy.extend_from_slice(digest.as_ref());
        let offset = (generation % 2) * COPY_SIZE as u64;
        Ok((offset, copy))
    }

    /// Reads the store from the META partition.
    pub fn read(device: &Path) -> Result<Meta, MachinedError> {
        let file = std::fs::File::open(device).map_err(MachinedError::io("opening", device))?;
        let mut data = vec![0; 2 * COPY_SIZE];
        file.read_exact_at(&mut data, 0)
            .map_err(MachinedError::io("reading", device))?;
        Ok(Meta::decode(&data))
    }

    /// Writes the store to the META partition (the older copy) and syncs.
    pub fn write(&mut self, device: &Path) -> Result<(), MachinedError> {
        let (offset, copy) = self.encode_next()?;
        let file = OpenOptions::new()
            .write(true)
            .open(device)
            .map_err(MachinedError::io("opening", device))?;
        file.write_all_at(&copy, offset)
            .and_then(|()| file.sync_all())
            .map_err(MachinedError::io("writing", device))?;
        self.generation += 1;
        Ok(())
    }

    pub fn get_text(&self, key: u8) -> Option<String> {
        self.values
            .get(&key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

fn too_large() -> MachinedError {
    MachinedError::InvalidArgument(format!(
        "META holds at most {} bytes",
        COPY_SIZE - HEADER - DIGEST
    ))
}

fn decode_copy(copy: &[u8]) -> Option<Meta> {
    if copy.len() < HEADER + DIGEST || &copy[..8] != MAGIC {
        return None;
    }
    let generation = u64::from_le_bytes(copy[8..16].try_into().ok()?);
    let length = u32::from_le_bytes(copy[16..20].try_into().ok()?) as usize;
    let end = HEADER.checked_add(length)?;
    let stored = copy.get(end..end + DIGEST)?;
    if ring::digest::digest(&ring::digest::SHA256, &copy[..end]).as_ref() != stored {
        return None;
    }
    let mut values = BTreeMap::new();
    let mut payload = &copy[HEADER..end];
    while let [key, l0, l1, rest @ ..] = payload {
        let length = u16::from_le_bytes([*l0, *l1]) as usize;
        let value = rest.get(..length)?;
        values.insert(*key, value.to_vec());
        payload = &rest[length..];
    }
    payload.is_empty().then_some(Meta { generation, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(partition: &mut [u8], meta: &mut Meta) {
        let (offset, copy) = meta.encode_next().unwrap();
        let offset = offset as usize;
        partition[offset..offset + copy.len()].copy_from_slice(&copy);
        meta.generation += 1;
    }

    #[test]
    fn zeroes_are_empty_and_writes_alternate_copies() {
        let mut partition = vec![0u8; 2 * COPY_SIZE];
        let mut meta = Meta::decode(&partition);
        assert!(meta.values.is_empty());
        meta.values.insert(keys::UPGRADE, b"A".to_vec());
        apply(&mut partition, &mut meta);
        meta.values.insert(keys::USER_RESERVED_1, b"hello".to_vec());
        apply(&mut partition, &mut meta);
        let read = Meta::decode(&partition);
        assert_eq!(read.get_text(keys::UPGRADE).as_deref(), Some("A"));
        assert_eq!(
            read.get_text(keys::USER_RESERVED_1).as_deref(),
            Some("hello")
        );

        // A write torn halfway leaves the previous state.
        let mut torn = read.clone();
        torn.values.clear();
        let (offset, copy) = torn.encode_next().unwrap();
        let offset = offset as usize;
        partition[offset..offset + copy.len() / 2].copy_from_slice(&copy[..copy.len() / 2]);
        assert_eq!(Meta::decode(&partition).values, read.values);
    }

    #[test]
    fn values_beyond_a_copy_are_refused() {
        let mut meta = Meta::default();
        meta.values.insert(keys::USER_RESERVED_2, vec![0; 60_000]);
        meta.values.insert(keys::USER_RESERVED_3, vec![0; 6_000]);
        assert!(meta.encode_next().is_err());
    }

    #[test]
    fn garbage_decodes_to_an_empty_store() {
        let mut partition = vec![0xa5u8; 2 * COPY_SIZE];
        partition[..8].copy_from_slice(MAGIC);
        assert_eq!(Meta::decode(&partition), Meta::default());
        assert_eq!(Meta::decode(&[]), Meta::default());
    }
}
