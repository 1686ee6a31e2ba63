//! File permissions (`machine.files[].permissions`), written in octal.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Unix permission bits. YAML may give them as an integer (`420`), as a YAML 1.1 octal
/// (`0644`) or as a YAML 1.2 octal (`0o644`); they are written back as an integer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileMode(pub u32);

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0o{:o}", self.0)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FileModeVisitor)
    }
}

struct FileModeVisitor;

impl Visitor<'_> for FileModeVisitor {
    type Value = FileMode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("file permissions as an integer or an octal number such as 0644")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
        u32::try_from(v)
            .ok()
            .filter(|mode| *mode <= 0o7777)
            .map(FileMode)
            .ok_or_else(|| E::custom(format!("permissions {v} are out of range")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
        let v = u64::try_from(v).map_err(|_| E::custom("permissions cannot be negative"))?;
        self.visit_u64(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
        let digits = v
            .strip_prefix("0o")
            .or_else(|| v.strip_prefix('0'))
            .unwrap_or(v);
        let mode = u64::from_str_radix(digits, 8)
            .map_err(|_| E::custom(format!("permissions {v:?} are not an octal number")))?;
        self.visit_u64(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_integers_and_both_octal_spellings() {
        assert_eq!(
            serde_norway::from_str::<FileMode>("420").unwrap(),
            FileMode(0o644)
        );
        assert_eq!(
            serde_norway::from_str::<FileMode>("0644").unwrap(),
            FileMode(0o644)
        );
        assert_eq!(
            serde_norway::from_str::<FileMode>("0o600").unwrap(),
            FileMode(0o600)
        );
        assert!(serde_norway::from_str::<FileMode>("0999").is_err());
        assert!(serde_norway::from_str::<FileMode>("99999").is_err());
        assert_eq!(FileMode(0o644).to_string(), "0o644");
    }
}
