//! A read-only walk of a bbolt database (the format etcd stores its keys in), enough to compute
//! a snapshot's status.
//!
//! Layout facts used (bbolt's file format, little-endian): pages 0 and 1 hold the two meta
//! pages, the valid one with the higher transaction id wins; a page starts with a 16-byte header
//! (id u64, flags u16, count u16, overflow u32) followed by `count` 16-byte elements; a branch
//! element is (pos u32, ksize u32, child page u64), a leaf element (flags u32, pos u32, ksize
//! u32, vsize u32), `pos` counting from the element itself; a leaf element flagged as a bucket
//! holds the bucket's root page and sequence (u64, u64), followed, when the root is 0, by the
//! bucket's own leaf page inline.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::crc32c::Crc32c;
use crate::{SnapshotError, SnapshotStatus};

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const META_LEN: usize = 64;
/// The meta bytes the checksum covers (everything before it).
const META_CHECKSUMMED: usize = 56;
const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const BUCKET_ELEMENT: u32 = 0x01;
/// Bucket header in a bucket element's value: root page, sequence.
const BUCKET_HEADER: usize = 16;
/// Deeper trees than this are refused (a real one with a billion keys is a handful deep).
const MAX_DEPTH: u32 = 64;
/// A page with its overflow larger than this is refused (etcd's values are at most a few MiB).
const MAX_PAGE_BYTES: u64 = 256 << 20;
/// etcd's bucket of key revisions: its keys are revisions, the newest last.
const KEY_BUCKET: &[u8] = b"key";

/// Reads the status of the snapshot at `path` (with or without its hash trailer).
pub fn status(path: &Path) -> Result<SnapshotStatus, SnapshotError> {
    let file = File::open(path).map_err(SnapshotError::io(path))?;
    let len = file.metadata().map_err(SnapshotError::io(path))?.len();
    let db = Database::open(&file, len).map_err(|e| e.at(path))?;
    db.status().map_err(|e| e.at(path))
}

/// A failure inside the database, before the path is known.
enum Failure {
    Io(std::io::Error),
    Invalid(String),
}

impl Failure {
    fn at(self, path: &Path) -> SnapshotError {
        match self {
            Failure::Io(source) => SnapshotError::Io {
                path: path.to_path_buf(),
                source,
            },
            Failure::Invalid(reason) => SnapshotError::NotSnapshot {
                path: path.to_path_buf(),
                reason,
            },
        }
    }
}

fn invalid(reason: impl Into<String>) -> Failure {
    Failure::Invalid(reason.into())
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, Failure> {
    bytes
        .get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| invalid(format!("truncated at byte {at}")))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, Failure> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| invalid(format!("truncated at byte {at}")))
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64, Failure> {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| invalid(format!("truncated at byte {at}")))
}

/// FNV-1a, 64 bits: the meta page checksum.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fields of a valid meta page that the walk needs.
#[derive(Clone, Copy)]
struct Meta {
    page_size: u64,
    root: u64,
    /// Pages in use (the high-water mark).
    pages: u64,
    txid: u64,
}

impl Meta {
    /// The meta page at `bytes` (a page header first), if it is valid.
    fn parse(bytes: &[u8]) -> Option<Meta> {
        let meta = bytes.get(PAGE_HEADER..PAGE_HEADER + META_LEN)?;
        let field = |at| u64_at(meta, at).ok();
        let valid = u32_at(meta, 0).ok()? == MAGIC
            && u32_at(meta, 4).ok()? == VERSION
            && fnv1a64(&meta[..META_CHECKSUMMED]) == field(56)?;
        valid.then_some(Meta {
            page_size: u64::from(u32_at(meta, 8).ok()?),
            root: field(16)?,
            pages: field(40)?,
            txid: field(48)?,
        })
    }
}

struct Database<'a> {
    file: &'a File,
    meta: Meta,
}

/// One element of a leaf page.
struct Entry<'a> {
    key: &'a [u8],
    value: &'a [u8],
    bucket: bool,
}

impl<'a> Database<'a> {
    fn open(file: &'a File, len: u64) -> Result<Database<'a>, Failure> {
        let read = |offset: u64| -> Result<Vec<u8>, Failure> {
            let mut buffer = vec![0u8; PAGE_HEADER + META_LEN];
            file.read_exact_at(&mut buffer, offset).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    invalid("too short for a bbolt database")
                } else {
                    Failure::Io(e)
                }
            })?;
            Ok(buffer)
        };
        let first = Meta::parse(&read(0)?);
        // bbolt looks for the second meta page one OS page in when the first is damaged.
        let page_size = first.map_or(4096, |m| m.page_size);
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(invalid(format!("page size {page_size} is impossible")));
        }
        let second = read(page_size).ok().and_then(|page| Meta::parse(&page));
        let meta = match (first, second) {
            (Some(a), Some(b)) => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (Some(m), None) | (None, Some(m)) => m,
            (None, None) => return Err(invalid("no valid bbolt meta page")),
        };
        if meta.page_size != page_size {
            return Err(invalid("the meta pages disagree on the page size"));
        }
        let size = meta
            .pages
            .checked_mul(meta.page_size)
            .filter(|&size| size <= len)
            .ok_or_else(|| {
                invalid(format!(
                    "the database claims {} pages of {} bytes but the file has {len} bytes",
                    meta.pages, meta.page_size
                ))
            })?;
        if meta.pages < 3 || size == 0 {
            return Err(invalid("the database has no data pages"));
        }
        Ok(Database { file, meta })
    }

    /// Reads page `id` with its overflow pages.
    fn page(&self, id: u64, visited: &mut u64) -> Result<Vec<u8>, Failure> {
        *visited += 1;
        if *visited > self.meta.pages {
            return Err(invalid("pages are referenced more than once"));
        }
        if id < 2 || id >= self.meta.pages {
            return Err(invalid(format!("page {id} is outside the database")));
        }
        let offset = id * self.meta.page_size;
        let mut header = [0u8; PAGE_HEADER];
        self.file
            .read_exact_at(&mut header, offset)
            .map_err(Failure::Io)?;
        let overflow = u64::from(u32_at(&header, 12)?);
        let span = overflow + 1;
        if id + span > self.meta.pages {
            return Err(invalid(format!(
                "page {id} runs past the end of the database"
            )));
        }
        let bytes = span * self.meta.page_size;
        if bytes > MAX_PAGE_BYTES {
            return Err(invalid(format!("page {id} is {bytes} bytes long")));
        }
        let mut page = vec![0u8; usize::try_from(bytes).map_err(|_| invalid("page too long"))?];
        self.file
            .read_exact_at(&mut page, offset)
            .map_err(Failure::Io)?;
        if u64_at(&page, 0)? != id {
            return Err(invalid(format!("page {id} carries another page's id")));
        }
        Ok(page)
    }

    /// Calls `visit` with every leaf entry of the tree rooted at page `root`, in key order.
    fn walk(
        &self,
        root: u64,
        depth: u32,
        visited: &mut u64,
        visit: &mut dyn FnMut(Entry<'_>) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        if depth > MAX_DEPTH {
            return Err(invalid("the tree is too deep"));
        }
        let page = self.page(root, visited)?;
        let flags = u16_at(&page, 8)?;
        if flags & BRANCH_PAGE != 0 {
            for index in 0..usize::from(u16_at(&page, 10)?) {
                let element = PAGE_HEADER + index * ELEMENT;
                let child = u64_at(&page, element + 8)?;
                self.walk(child, depth + 1, visited, visit)?;
            }
            Ok(())
        } else {
            leaf_entries(&page, visit)
        }
    }

    /// Walks a bucket whose element value is `header`: its own tree, or its inline page.
    fn walk_bucket(
        &self,
        header: &[u8],
        visited: &mut u64,
        visit: &mut dyn FnMut(Entry<'_>) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        match u64_at(header, 0)? {
            0 => leaf_entries(header.get(BUCKET_HEADER..).unwrap_or_default(), visit),
            root => self.walk(root, 1, visited, visit),
        }
    }

    fn status(&self) -> Result<SnapshotStatus, Failure> {
        let mut crc = Crc32c::default();
        let mut revision = 0i64;
        let mut total_keys = 0u64;
        let mut visited = 0u64;
        let mut buckets: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        // The root tree holds only buckets; their contents are walked in name order after it.
        self.walk(self.meta.root, 0, &mut visited, &mut |entry| {
            if !entry.bucket {
                return Err(invalid("a key outside any bucket"));
            }
            buckets.push((entry.key.to_vec(), entry.value.to_vec()));
            Ok(())
        })?;
        for (name, header) in &buckets {
            crc.update(name);
            let keys_bucket = name.as_slice() == KEY_BUCKET;
            self.walk_bucket(header, &mut visited, &mut |entry| {
                crc.update(entry.key);
                if !entry.bucket {
                    crc.update(entry.value);
                }
                if keys_bucket {
                    let main = entry
                        .key
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| invalid("a revision key shorter than 8 bytes"))?;
                    revision = i64::from_be_bytes(main);
                }
                total_keys += 1;
                Ok(())
            })?;
        }
        Ok(SnapshotStatus {
            hash: crc.finish(),
            revision,
            total_keys,
            total_size: self.meta.pages * self.meta.page_size,
        })
    }
}

/// Calls `visit` with every element of the leaf page `page`.
fn leaf_entries(
    page: &[u8],
    visit: &mut dyn FnMut(Entry<'_>) -> Result<(), Failure>,
) -> Result<(), Failure> {
    if u16_at(page, 8)? & LEAF_PAGE == 0 {
        return Err(invalid("a page that is neither branch nor leaf in a tree"));
    }
    for index in 0..usize::from(u16_at(page, 10)?) {
        let element = PAGE_HEADER + index * ELEMENT;
        let flags = u32_at(page, element)?;
        let field = |at: usize| -> Result<usize, Failure> {
            usize::try_from(u32_at(page, element + at)?).map_err(|_| invalid("huge element"))
        };
        let start = element
            .checked_add(field(4)?)
            .ok_or_else(|| invalid("element offset overflows"))?;
        let key_end = start
            .checked_add(field(8)?)
            .ok_or_else(|| invalid("key length overflows"))?;
        let value_end = key_end
            .checked_add(field(12)?)
            .ok_or_else(|| invalid("value length overflows"))?;
        let key = page
            .get(start..key_end)
            .ok_or_else(|| invalid("a key runs past its page"))?;
        let value = page
            .get(key_end..value_end)
            .ok_or_else(|| invalid("a value runs past its page"))?;
        visit(Entry {
            key,
            value,
            bucket: flags & BUCKET_ELEMENT != 0,
        })?;
    }
    Ok(())
}
