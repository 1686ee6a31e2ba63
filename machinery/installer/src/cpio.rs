//! A `newc` cpio archive writer (the initramfs): entries in the order given, every inode
//! owned by root with mtime 0, so the same inputs give the same bytes.

use std::io::Write;

/// One entry of the archive.
#[derive(Debug)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    CharDevice {
        path: String,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// Writes `entries` and the trailer as a newc archive.
pub fn write(out: &mut impl Write, entries: &[Entry]) -> std::io::Result<()> {
    let mut written = 0usize;
    for (index, entry) in entries.iter().enumerate() {
        let inode = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let (path, mode, data, rdev) = match entry {
            Entry::Dir { path, mode } => (path, S_IFDIR | mode, &[][..], (0, 0)),
            Entry::File { path, mode, data } => (path, S_IFREG | mode, data.as_slice(), (0, 0)),
            Entry::CharDevice {
                path,
                mode,
                major,
                minor,
            } => (path, S_IFCHR | mode, &[][..], (*major, *minor)),
        };
        let nlink = if matches!(entry, Entry::Dir { .. }) {
            2
        } else {
            1
        };
        written += header(out, inode, mode, nlink, data.len(), rdev, path)?;
        out.write_all(data)?;
        written += data.len();
        written += pad(out, written)?;
    }
    written += header(out, 0, 0, 1, 0, (0, 0), "TRAILER!!!")?;
    pad(out, written)?;
    Ok(())
}

fn header(
    out: &mut impl Write,
    inode: u32,
    mode: u32,
    nlink: u32,
    size: usize,
    (rdev_major, rdev_minor): (u32, u32),
    name: &str,
) -> std::io::Result<usize> {
    let size = u32::try_from(size)
        .map_err(|_| std::io::Error::other(format!("{name}: larger than 4 GiB")))?;
    let name_size = u32::try_from(name.len() + 1).map_err(std::io::Error::other)?;
    let text = format!(
        "070701{inode:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{rdev_major:08x}{rdev_minor:08x}{name_size:08x}{:08x}",
        0, 0, 0, 0, 0, 0
    );
    out.write_all(text.as_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    let length = text.len() + name.len() + 1;
    Ok(length + pad(out, length)?)
}

/// Pads to a multiple of 4 bytes; `so_far` is the byte count since the archive start.
fn pad(out: &mut impl Write, so_far: usize) -> std::io::Result<usize> {
    let padding = (4 - so_far % 4) % 4;
    out.write_all(&[0; 3][..padding])?;
    Ok(padding)
}
