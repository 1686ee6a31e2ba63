//! Volume sizes as the block kinds write them: bytes with an optional unit (`10GiB`, `500 MB`,
//! `1073741824`), a leading `-` meaning "all but", and for maximum sizes a percentage (`50%`).
//! The text is kept as written so that a config is encoded back unchanged.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::v1alpha1::parse_byte_size;

/// A byte size, possibly negative (`-10GiB`: all of the space but 10 GiB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteSize {
    text: String,
    bytes: u64,
    negative: bool,
}

impl ByteSize {
    /// Parses a byte size; units are case-insensitive (`k`/`kb` are 1000, `ki`/`kib` 1024).
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let (negative, magnitude) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let without_commas = magnitude.replace(',', "");
        let number_len = without_commas
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(without_commas.len());
        let (number, unit) = without_commas.split_at(number_len);
        let mut unit = unit.trim().to_ascii_lowercase();
        if unit.ends_with('i') {
            unit.push('b');
        }
        let bytes = parse_byte_size(&format!("{number}{unit}"))
            .map_err(|err| format!("invalid size {text:?}: {err}"))?;
        Ok(ByteSize {
            text: text.to_string(),
            bytes,
            negative,
        })
    }

    /// The size in bytes, without its sign.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the size is written with a leading `-`.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A maximum size: a [`ByteSize`] or a percentage of the available space (`50%`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeSize {
    /// An absolute size.
    Bytes(ByteSize),
    /// A percentage (0 to 100) of the space, possibly negative.
    Percent {
        /// The text as written.
        text: String,
        /// The percentage, without its sign.
        percent: u64,
        /// Whether it is written with a leading `-`.
        negative: bool,
    },
}

impl VolumeSize {
    /// Parses a byte size, or a percentage when the text contains `%`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.contains('%') {
            return ByteSize::parse(text).map(VolumeSize::Bytes);
        }
        let trimmed = text.trim();
        let Some(number) = trimmed.strip_suffix('%') else {
            return Err(format!("invalid percentage {text:?}: it must end with '%'"));
        };
        let (negative, number) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid percentage {text:?}"))?;
        if !(0.0..=100.0).contains(&value) {
            return Err(format!(
                "invalid percentage {text:?}: it must be between 0 and 100"
            ));
        }
        Ok(VolumeSize::Percent {
            text: text.to_string(),
            // Truncation is intended: whole percents, as upstream computes them.
            percent: value as u64,
            negative,
        })
    }

    /// Whether the size is a percentage.
    pub fn is_relative(&self) -> bool {
        matches!(self, VolumeSize::Percent { .. })
    }

    /// Whether the size is written with a leading `-`.
    pub fn is_negative(&self) -> bool {
        match self {
            VolumeSize::Bytes(size) => size.is_negative(),
            VolumeSize::Percent { negative, .. } => *negative,
        }
    }

    /// The size in bytes when absolute.
    pub fn bytes(&self) -> Option<u64> {
        match self {
            VolumeSize::Bytes(size) => Some(size.bytes()),
            VolumeSize::Percent { .. } => None,
        }
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        match self {
            VolumeSize::Bytes(size) => size.as_str(),
            VolumeSize::Percent { text, .. } => text,
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for VolumeSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes sizes given as plain integers back as integers, others as text.
fn serialize_text<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    match text.parse::<u64>() {
        Ok(n) if n.to_string() == text => s.serialize_u64(n),
        _ => s.serialize_str(text),
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_text(&self.text, s)
    }
}

impl Serialize for VolumeSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_text(self.as_str(), s)
    }
}

/// Reads a size written as text or as an integer, then parses it with `parse`.
struct SizeVisitor<T>(fn(&str) -> Result<T, String>);

impl<T> Visitor<'_> for SizeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size such as 10GiB, 500MB, 1073741824 or 50%")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.0)(&v.to_string()).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        (self.0)(&v.to_string()).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor(ByteSize::parse))
    }
}

impl<'de> Deserialize<'de> for VolumeSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor(VolumeSize::parse))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("10GiB").unwrap().bytes(), 10 << 30);
        assert_eq!(ByteSize::parse("10 gi").unwrap().bytes(), 10 << 30);
        assert_eq!(ByteSize::parse("500MB").unwrap().bytes(), 500_000_000);
        assert_eq!(ByteSize::parse("1,024").unwrap().bytes(), 1024);
        let negative = ByteSize::parse("-2GB").unwrap();
        assert!(negative.is_negative());
        assert_eq!(negative.bytes(), 2_000_000_000);
        assert!(ByteSize::parse("ten").is_err());
        assert!(ByteSize::parse("10QB").is_err());
    }

    #[test]
    fn volume_sizes() {
        let half = VolumeSize::parse("50%").unwrap();
        assert!(half.is_relative());
        assert_eq!(half.bytes(), None);
        assert!(VolumeSize::parse("-10%").unwrap().is_negative());
        assert!(VolumeSize::parse("150%").is_err());
        assert!(VolumeSize::parse("%50").is_err());
        assert_eq!(VolumeSize::parse("1TiB").unwrap().bytes(), Some(1 << 40));
    }

    #[test]
    fn written_back_as_read() {
        let size: VolumeSize = serde_norway::from_str("1073741824").unwrap();
        assert_eq!(serde_norway::to_string(&size).unwrap(), "1073741824\n");
        let size: VolumeSize = serde_norway::from_str("10GiB").unwrap();
        assert_eq!(serde_norway::to_string(&size).unwrap(), "10GiB\n");
    }
}
