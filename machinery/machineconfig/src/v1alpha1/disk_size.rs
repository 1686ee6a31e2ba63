//! Sizes of disks and partitions: bytes, or human-readable text such as `4 GB` or `10GiB`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes. YAML may give an integer or text with a unit (`100 MB`, `4GiB`; SI units
/// are powers of 1000, IEC units powers of 1024); it is written back as an integer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DiskSize(pub u64);

const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1_000),
    ("kb", 1_000),
    ("kib", 1 << 10),
    ("m", 1_000_000),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("g", 1_000_000_000),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
    ("t", 1_000_000_000_000),
    ("tb", 1_000_000_000_000),
    ("tib", 1 << 40),
    ("p", 1_000_000_000_000_000),
    ("pb", 1_000_000_000_000_000),
    ("pib", 1 << 50),
];

/// Parses a human-readable byte size (`"4 GB"`, `"10GiB"`, `"1.5TB"`, `"512"`).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let unit = unit.trim().to_ascii_lowercase();
    let Some(&(_, multiplier)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!("unknown size unit {unit:?} in {text:?}"));
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("size {text:?} does not start with a number"))?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("size {text:?} is too large"));
    }
    Ok(bytes as u64)
}

/// `machine.install.diskSelector.size`: a size, alone (equal) or after `==`, `<=`, `>=`, `<`
/// or `>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeMatcher {
    comparison: &'static str,
    bytes: u64,
}

impl SizeMatcher {
    pub fn parse(text: &str) -> Result<SizeMatcher, String> {
        let text = text.trim();
        let (comparison, amount) = ["<=", ">=", "==", "<", ">"]
            .into_iter()
            .find_map(|op| Some((op, text.strip_prefix(op)?)))
            .unwrap_or(("==", text));
        let bytes =
            parse_byte_size(amount).map_err(|err| format!("invalid size matcher: {err}"))?;
        Ok(SizeMatcher { comparison, bytes })
    }

    /// Whether a disk of `size` bytes matches.
    pub fn matches(&self, size: u64) -> bool {
        match self.comparison {
            "<=" => size <= self.bytes,
            ">=" => size >= self.bytes,
            "<" => size < self.bytes,
            ">" => size > self.bytes,
            _ => size == self.bytes,
        }
    }
}

impl fmt::Display for DiskSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl Serialize for DiskSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for DiskSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DiskSizeVisitor)
    }
}

struct DiskSizeVisitor;

impl Visitor<'_> for DiskSizeVisitor {
    type Value = DiskSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size in bytes or a size with a unit such as \"4 GB\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DiskSize, E> {
        Ok(DiskSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DiskSize, E> {
        u64::try_from(v)
            .map(DiskSize)
            .map_err(|_| E::custom("a size cannot be negative"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DiskSize, E> {
        parse_byte_size(v).map(DiskSize).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_matchers_compare() {
        let at_least = SizeMatcher::parse(">= 4GB").unwrap();
        assert!(at_least.matches(4_000_000_000) && !at_least.matches(3_999_999_999));
        let below = SizeMatcher::parse("<1GiB").unwrap();
        assert!(below.matches((1 << 30) - 1) && !below.matches(1 << 30));
        assert!(SizeMatcher::parse("8GiB").unwrap().matches(8 << 30));
        let error = SizeMatcher::parse(">= lots").unwrap_err();
        assert!(error.starts_with("invalid size matcher"), "{error}");
    }

    #[test]
    fn parses_numbers_and_units() {
        assert_eq!(
            serde_norway::from_str::<DiskSize>("1024").unwrap(),
            DiskSize(1024)
        );
        assert_eq!(
            serde_norway::from_str::<DiskSize>("4 GB").unwrap(),
            DiskSize(4_000_000_000)
        );
        assert_eq!(
            serde_norway::from_str::<DiskSize>("10GiB").unwrap(),
            DiskSize(10 << 30)
        );
        assert_eq!(parse_byte_size("1.5kb"), Ok(1500));
        assert!(parse_byte_size("4 parsecs").is_err());
        assert!(parse_byte_size("GB").is_err());
        assert!(serde_norway::from_str::<DiskSize>("-1").is_err());
    }
}
