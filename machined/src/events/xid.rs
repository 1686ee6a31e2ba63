//! Globally unique, time-ordered event ids in the xid format that Talos clients parse.
//!
//! An xid is 12 bytes: 4-byte big-endian Unix seconds, a 3-byte machine id, the 2-byte process id
//! and a 3-byte counter. Its text form is 20 characters of lowercase base32hex (`0-9a-v`) without
//! padding. Ids from one generator increase as long as the wall clock does not go back and fewer
//! than 2^24 ids are made in one second.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
const RAW_LEN: usize = 12;
const TEXT_LEN: usize = 20;

/// One xid (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xid([u8; RAW_LEN]);

impl Xid {
    /// Builds an xid from its raw 12 bytes.
    pub fn from_bytes(bytes: [u8; RAW_LEN]) -> Self {
        Self(bytes)
    }

    /// The Unix time (seconds) the id was made at.
    pub fn unix_seconds(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 96 bits read five at a time; the 20th character holds the last bit followed by
        // four zero bits, as base32hex without padding does.
        let mut text = [0u8; TEXT_LEN];
        let mut bits: u32 = 0;
        let mut held = 0u32;
        let mut out = 0;
        for byte in self.0 {
            bits = (bits << 8) | u32::from(byte);
            held += 8;
            while held >= 5 {
                held -= 5;
                text[out] = ALPHABET[((bits >> held) & 0x1f) as usize];
                out += 1;
            }
        }
        text[out] = ALPHABET[((bits << (5 - held)) & 0x1f) as usize];
        // Every character comes from ALPHABET, which is ASCII.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Xid({self})")
    }
}

/// Why a string is not an xid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid xid {text:?}: {reason}")]
pub struct XidParseError {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for Xid {
    type Err = XidParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| XidParseError {
            text: text.to_owned(),
            reason,
        };
        if text.len() != TEXT_LEN {
            return Err(fail("not 20 characters long"));
        }
        let mut raw = [0u8; RAW_LEN];
        let mut bits: u32 = 0;
        let mut held = 0u32;
        let mut out = 0;
        for (index, character) in text.bytes().enumerate() {
            let value = match character {
                b'0'..=b'9' => character - b'0',
                b'a'..=b'v' => character - b'a' + 10,
                _ => return Err(fail("characters must be 0-9 or a-v")),
            };
            if index == TEXT_LEN - 1 {
                // The last character carries one bit of data and four bits of padding.
                if value & 0x0f != 0 {
                    return Err(fail("the last character has padding bits set"));
                }
                raw[out] = ((bits << 1) | u32::from(value >> 4)) as u8;
                break;
            }
            bits = (bits << 5) | u32::from(value);
            held += 5;
            if held >= 8 {
                held -= 8;
                raw[out] = (bits >> held) as u8;
                out += 1;
            }
        }
        Ok(Self(raw))
    }
}

/// Makes xids for this process: a fixed machine id and pid, and a counter that starts at a
/// random value.
#[derive(Debug)]
pub struct XidGenerator {
    machine: [u8; 3],
    pid: [u8; 2],
    counter: AtomicU32,
}

impl XidGenerator {
    /// A generator whose machine id is derived from `/etc/machine-id` (or the hostname when that
    /// file is missing, as on a fresh Talos node before its machine id exists).
    pub fn new() -> Self {
        let identity = std::fs::read("/etc/machine-id")
            .or_else(|_| std::fs::read("/proc/sys/kernel/hostname"))
            .unwrap_or_default();
        let mut hasher = DefaultHasher::new();
        identity.hash(&mut hasher);
        let machine = hasher.finish().to_be_bytes();
        let pid = (std::process::id() & 0xffff) as u16;
        // RandomState is seeded from the OS, which is all the randomness a counter start needs.
        // Start in the lower half so a burst does not wrap the counter within one second.
        let start = (RandomState::new().hash_one(0u8) as u32) & 0x7f_ffff;
        Self {
            machine: [machine[0], machine[1], machine[2]],
            pid: pid.to_be_bytes(),
            counter: AtomicU32::new(start),
        }
    }

    /// A new id stamped with `at`.
    pub fn generate_at(&self, at: SystemTime) -> Xid {
        let seconds = at
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as u32)
            .unwrap_or(0);
        let count = self.counter.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let time = seconds.to_be_bytes();
        Xid([
            time[0],
            time[1],
            time[2],
            time[3],
            self.machine[0],
            self.machine[1],
            self.machine[2],
            self.pid[0],
            self.pid[1],
            count[1],
            count[2],
            count[3],
        ])
    }
}

impl Default for XidGenerator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example id from the xid library's documentation.
    const KNOWN_RAW: [u8; 12] = [
        0x4d, 0x88, 0xe1, 0x5b, 0x60, 0xf4, 0x86, 0xe4, 0x28, 0x41, 0x2d, 0xc9,
    ];
    const KNOWN_TEXT: &str = "9m4e2mr0ui3e8a215n4g";

    #[test]
    fn encodes_and_decodes_the_reference_id() {
        let xid = Xid::from_bytes(KNOWN_RAW);
        assert_eq!(xid.to_string(), KNOWN_TEXT);
        assert_eq!(KNOWN_TEXT.parse::<Xid>().unwrap(), xid);
        assert_eq!(xid.unix_seconds(), 0x4d88e15b);
    }

    #[test]
    fn rejects_malformed_text() {
        assert!("9m4e2mr0ui3e8a215n4".parse::<Xid>().is_err());
        assert!("9m4e2mr0ui3e8a215n4w".parse::<Xid>().is_err());
        assert!("9M4E2MR0UI3E8A215N4G".parse::<Xid>().is_err());
        // Padding bits in the last character must be zero.
        assert!("9m4e2mr0ui3e8a215n4h".parse::<Xid>().is_err());
    }

    #[test]
    fn round_trips_every_byte_pattern() {
        for seed in 0u8..=255 {
            let raw: [u8; 12] = std::array::from_fn(|i| {
                seed.wrapping_mul(37)
                    .wrapping_add((i as u8).wrapping_mul(91))
            });
            let xid = Xid::from_bytes(raw);
            assert_eq!(xid.to_string().parse::<Xid>().unwrap(), xid);
        }
    }
}
