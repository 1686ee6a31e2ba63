//! A sparse image: the non-zero runs of a partition image with their offsets, so that the
//! EFI system partition (100 MiB, of which GRUB and the FAT structures fill well under 1 MiB)
//! travels in the root filesystem at its real size and an installing node writes it without
//! a FAT formatter or a mount: it zeroes the partition, then writes each run.
//!
//! Format: the magic `TRSPARSE`, the image's length (u64, little-endian), then runs of
//! (offset u64, length u32, bytes), in increasing order and not overlapping.

use crate::BootDiskError;

/// The granularity of runs: a block is kept when any of its bytes is non-zero.
pub const BLOCK: usize = 4096;
const MAGIC: &[u8; 8] = b"TRSPARSE";
const RUN_HEADER: usize = 12;
const MAX_RUN: usize = 1 << 30;

/// One run of non-zero blocks.
#[derive(Debug, PartialEq, Eq)]
pub struct Run<'a> {
    pub offset: u64,
    pub bytes: &'a [u8],
}

/// A decoded sparse image, borrowing the encoded bytes.
#[derive(Debug)]
pub struct SparseImage<'a> {
    pub length: u64,
    pub runs: Vec<Run<'a>>,
}

/// Encodes `image`, keeping its non-zero blocks.
pub fn encode(image: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(image.len() as u64).to_le_bytes());
    let mut blocks = image.chunks(BLOCK).enumerate().peekable();
    while let Some((index, block)) = blocks.next() {
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        let start = index * BLOCK;
        let mut end = start + block.len();
        while let Some((_, next)) = blocks.next_if(|(_, b)| b.iter().any(|&x| x != 0)) {
            end += next.len();
        }
        // A run's length is a u32: longer runs are split.
        for run_start in (start..end).step_by(MAX_RUN) {
            let run_end = end.min(run_start + MAX_RUN);
            out.extend_from_slice(&(run_start as u64).to_le_bytes());
            out.extend_from_slice(&((run_end - run_start) as u32).to_le_bytes());
            out.extend_from_slice(&image[run_start..run_end]);
        }
    }
    out
}

/// Decodes `encoded`; the image may be at most `max_length` bytes (the partition it is for).
pub fn decode(encoded: &[u8], max_length: u64) -> Result<SparseImage<'_>, BootDiskError> {
    let bad = |why: String| BootDiskError::BadSparseImage(why);
    let rest = encoded
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| bad("it does not start with TRSPARSE".into()))?;
    let (length, mut rest) = split_u64(rest).ok_or_else(|| bad("its length is cut".into()))?;
    if length > max_length {
        return Err(bad(format!(
            "its image of {length} bytes is larger than the {max_length} bytes it is for"
        )));
    }
    let mut runs = Vec::new();
    let mut next_free = 0u64;
    while !rest.is_empty() {
        if rest.len() < RUN_HEADER {
            return Err(bad(format!("run {} has a cut header", runs.len())));
        }
        let (offset, after) = split_u64(rest).ok_or_else(|| bad("cut run".into()))?;
        let size = u32::from_le_bytes(after[..4].try_into().unwrap_or_default()) as usize;
        let after = &after[4..];
        let end = offset.checked_add(size as u64);
        if offset < next_free || end.is_none_or(|end| end > length) || size > after.len() {
            return Err(bad(format!(
                "run {} ({size} bytes at {offset}) overlaps another, leaves the image or is cut",
                runs.len()
            )));
        }
        runs.push(Run {
            offset,
            bytes: &after[..size],
        });
        next_free = offset + size as u64;
        rest = &after[size..];
    }
    Ok(SparseImage { length, runs })
}

fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(sparse: &SparseImage) -> Vec<u8> {
        let mut image = vec![0u8; sparse.length as usize];
        for run in &sparse.runs {
            let at = run.offset as usize;
            image[at..at + run.bytes.len()].copy_from_slice(run.bytes);
        }
        image
    }

    #[test]
    fn non_zero_blocks_round_trip_and_zero_ones_are_left_out() {
        let mut image = vec![0u8; 10 * BLOCK + 100];
        image[5] = 1;
        image[BLOCK + 7] = 2;
        image[4 * BLOCK] = 3;
        image[10 * BLOCK + 99] = 4;
        let encoded = encode(&image);
        let sparse = decode(&encoded, image.len() as u64).unwrap();
        let offsets: Vec<u64> = sparse.runs.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, 4 * BLOCK as u64, 10 * BLOCK as u64]);
        assert_eq!(sparse.runs[0].bytes.len(), 2 * BLOCK);
        assert_eq!(sparse.runs[2].bytes.len(), 100);
        assert_eq!(expand(&sparse), image);
        assert!(encoded.len() < 4 * BLOCK);
    }

    #[test]
    fn hostile_images_are_refused_with_the_reason() {
        let image = [vec![9u8; BLOCK], vec![0u8; BLOCK], vec![9u8; BLOCK]].concat();
        let encoded = encode(&image);
        let error = |bytes: &[u8], max: u64| decode(bytes, max).unwrap_err().to_string();
        assert!(error(b"NOTSPARSE", 100).contains("TRSPARSE"));
        assert!(error(&encoded, 100).contains("larger than the 100 bytes"));
        assert!(error(&encoded[..encoded.len() - 1], 1 << 20).contains("run 1"));
        assert!(error(&encoded[..20], 1 << 20).contains("cut header"));
        // The second run moved onto the first.
        let mut overlapping = encoded.clone();
        let second = 16 + RUN_HEADER + BLOCK;
        overlapping[second..second + 8].copy_from_slice(&10u64.to_le_bytes());
        assert!(error(&overlapping, 1 << 20).contains("overlaps"));
        // A run past the image's end.
        let mut outside = encoded;
        outside[second..second + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(error(&outside, 1 << 20).contains("leaves the image"));
    }
}
