//! A minimal ZIP writer (deflated entries, no ZIP64: archives and entries below 4 GiB), for
//! `talosctl support`. The archive is built in memory and written atomically.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use flate2::Compression;
use flate2::write::DeflateEncoder;

/// Entries written so far, and the central directory that will follow them.
#[derive(Debug, Default)]
pub struct ZipArchive {
    body: Vec<u8>,
    directory: Vec<u8>,
    entries: u16,
}

/// Version 2.0 (deflate); "made by" Unix, so the external attributes carry the file mode.
const VERSION_NEEDED: u16 = 20;
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
/// General purpose flag: names are UTF-8.
const UTF8_NAMES: u16 = 1 << 11;
const DEFLATED: u16 = 8;
/// 1980-01-01 00:00 in DOS time and date: the bundle's entries carry no time of their own.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

impl ZipArchive {
    /// Adds the file `name` (a relative path with `/` separators) holding `contents`.
    pub fn add(&mut self, name: &str, contents: &[u8]) -> anyhow::Result<()> {
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == "..") {
            bail!("zip entry {name:?}: not a relative path");
        }
        if self.entries == u16::MAX {
            bail!("zip archive: too many entries");
        }
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(contents)?;
        let compressed = encoder.finish()?;
        let mut crc = flate2::Crc::new();
        crc.update(contents);
        let size = |n: usize| u32::try_from(n).context("zip entry larger than 4 GiB");
        let (compressed_size, size_, offset) = (
            size(compressed.len())?,
            size(contents.len())?,
            size(self.body.len())?,
        );
        let name_len = u16::try_from(name.len()).context("zip entry name too long")?;

        let common = |out: &mut Vec<u8>| {
            put16(out, VERSION_NEEDED);
            put16(out, UTF8_NAMES);
            put16(out, DEFLATED);
            put16(out, DOS_TIME);
            put16(out, DOS_DATE);
            put32(out, crc.sum());
            put32(out, compressed_size);
            put32(out, size_);
            put16(out, name_len);
            put16(out, 0); // extra field length
        };
        put32(&mut self.body, 0x0403_4b50);
        common(&mut self.body);
        self.body.extend_from_slice(name.as_bytes());
        self.body.extend_from_slice(&compressed);

        put32(&mut self.directory, 0x0201_4b50);
        put16(&mut self.directory, VERSION_MADE_BY);
        common(&mut self.directory);
        put16(&mut self.directory, 0); // comment length
        put16(&mut self.directory, 0); // disk number
        put16(&mut self.directory, 0); // internal attributes
        put32(&mut self.directory, 0o100_644 << 16); // a regular file, rw-r--r--
        put32(&mut self.directory, offset);
        self.directory.extend_from_slice(name.as_bytes());
        self.entries += 1;
        Ok(())
    }

    /// The archive's bytes.
    pub fn finish(mut self) -> anyhow::Result<Vec<u8>> {
        let directory_offset =
            u32::try_from(self.body.len()).context("zip archive larger than 4 GiB")?;
        let directory_size = u32::try_from(self.directory.len()).context("zip directory size")?;
        self.body.append(&mut self.directory);
        let out = &mut self.body;
        put32(out, 0x0605_4b50);
        put16(out, 0); // this disk
        put16(out, 0); // disk of the directory
        put16(out, self.entries);
        put16(out, self.entries);
        put32(out, directory_size);
        put32(out, directory_offset);
        put16(out, 0); // comment length
        Ok(self.body)
    }
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_through_the_central_directory() {
        let mut zip = ZipArchive::default();
        zip.add("node/dmesg.log", b"hello hello hello\n").unwrap();
        zip.add("node/empty", b"").unwrap();
        let bytes = zip.finish().unwrap();
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(&end[..4], &0x0605_4b50u32.to_le_bytes());
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let directory_offset = u32::from_le_bytes([end[16], end[17], end[18], end[19]]) as usize;
        assert_eq!(
            &bytes[directory_offset..directory_offset + 4],
            &0x0201_4b50u32.to_le_bytes()
        );
        // The first entry's data inflates back.
        let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
        let compressed = u32::from_le_bytes([bytes[18], bytes[19], bytes[20], bytes[21]]) as usize;
        let data = &bytes[30 + name_len..30 + name_len + compressed];
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(data), &mut inflated)
            .unwrap();
        assert_eq!(inflated, b"hello hello hello\n");
    }

    #[test]
    fn names_stay_inside_the_archive() {
        let mut zip = ZipArchive::default();
        assert!(zip.add("../etc/passwd", b"").is_err());
        assert!(zip.add("/abs", b"").is_err());
        assert!(zip.add("", b"").is_err());
    }
}
