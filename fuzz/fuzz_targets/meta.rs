//! META, as a node reads its partition at every boot (an upgrade's fallback slot, the
//! reason of the last rollback, `talosctl meta write` values): any bytes decode to a store or to
//! an empty one, never a panic. The input is also sealed into a copy with the right digest, so
//! that its payload's entries are parsed too, and what decodes survives a write: encoded again
//! and decoded, it holds the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machined::upgrade::meta::{COPY_SIZE, Meta};

fuzz_target!(|data: &[u8]| {
    let _ = Meta::decode(data);

    // The layout of machined/src/upgrade/meta.rs: magic, generation, payload length, payload,
    // SHA-256 of what comes before.
    let payload = &data[..data.len().min(COPY_SIZE - 52)];
    let mut copy = b"TALOSRSM".to_vec();
    copy.extend_from_slice(&1u64.to_le_bytes());
    copy.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    copy.extend_from_slice(payload);
    let digest = ring::digest::digest(&ring::digest::SHA256, &copy);
    copy.extend_from_slice(digest.as_ref());
    let mut partition = vec![0u8; 2 * COPY_SIZE];
    partition[..copy.len()].copy_from_slice(&copy);
    let read = Meta::decode(&partition);

    let (offset, next) = read.encode_next().expect("a decoded store fits its copy");
    let offset = offset as usize;
    partition[offset..offset + next.len()].copy_from_slice(&next);
    assert_eq!(Meta::decode(&partition).values, read.values);
});
