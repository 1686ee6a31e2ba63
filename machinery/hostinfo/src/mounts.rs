//! `Mounts`: `/proc/mounts` plus `statfs` of each mount point.

use std::path::Path;

use nix::sys::statfs::statfs;
use proto::machine::{MountStat, Mounts};

use crate::procfile::ProcFile;
use crate::{Host, HostInfoError};

impl Host {
    /// Lists the mounts of `/proc/mounts` with their size and available space in bytes
    /// (`f_blocks` and `f_bavail` times `f_bsize`); both are 0 when `statfs` fails.
    pub fn mounts(&self) -> Result<Mounts, HostInfoError> {
        let file = ProcFile::read(self.proc_path("mounts"))?;
        let mut stats = Vec::new();
        for line in file.lines() {
            let mut words = line.text.split_whitespace();
            let (Some(filesystem), Some(mounted_on)) = (words.next(), words.next()) else {
                continue;
            };
            let mounted_on = unescape_octal(mounted_on);
            let (size, available) = capacity(Path::new(&mounted_on));
            stats.push(MountStat {
                filesystem: unescape_octal(filesystem),
                size,
                available,
                mounted_on,
            });
        }
        Ok(Mounts {
            metadata: None,
            stats,
        })
    }
}

/// Total and available bytes of the file system mounted at `mount_point`, or zeros.
fn capacity(mount_point: &Path) -> (u64, u64) {
    let Ok(stat) = statfs(mount_point) else {
        return (0, 0);
    };
    // The field types differ between libcs; every value fits in u64 on Linux.
    #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
    let block_size = u64::try_from(stat.block_size()).unwrap_or(0);
    #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
    let (blocks, available) = (
        u64::try_from(stat.blocks()).unwrap_or(0),
        u64::try_from(stat.blocks_available()).unwrap_or(0),
    );
    (
        blocks.saturating_mul(block_size),
        available.saturating_mul(block_size),
    )
}

/// Undoes the kernel's `\ooo` escaping of spaces, tabs, newlines and backslashes in
/// `/proc/mounts`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 4)
            .filter(|digits| {
                bytes[index] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d))
            })
            .map(|digits| {
                digits
                    .iter()
                    .fold(0u32, |value, d| value * 8 + u32::from(d - b'0'))
            })
            .and_then(|value| u8::try_from(value).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::unescape_octal;

    #[test]
    fn octal_escapes_become_bytes() {
        assert_eq!(unescape_octal(r"/mnt/my\040disk\134x"), r"/mnt/my disk\x");
        assert_eq!(unescape_octal(r"plain\09"), r"plain\09");
        assert_eq!(unescape_octal("tail\\"), "tail\\");
    }
}
