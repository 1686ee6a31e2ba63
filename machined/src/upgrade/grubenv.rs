//! GRUB's environment block (`/grub/grubenv` on BOOT): a 1024-byte file, the header line, then
//! `name=value` lines, padded with `#`. GRUB's `save_env` rewrites it in place, so it is always
//! written back whole, at its size.

use std::collections::BTreeMap;

use crate::error::MachinedError;

const HEADER: &str = "# GRUB Environment Block\n";
const SIZE: usize = 1024;

/// The variables of an environment block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrubEnv {
    vars: BTreeMap<String, String>,
}

impl GrubEnv {
    /// Parses a block; anything that is not one is an error (GRUB would ignore it too).
    pub fn parse(block: &[u8]) -> Result<Self, MachinedError> {
        let text = std::str::from_utf8(block)
            .ok()
            .and_then(|text| text.strip_prefix(HEADER))
            .filter(|_| block.len() == SIZE)
            .ok_or_else(|| {
                MachinedError::FailedPrecondition(
                    "BOOT's grub/grubenv is not a GRUB environment block".into(),
                )
            })?;
        let vars = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Ok(GrubEnv { vars })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Sets `name` (an empty value unsets it).
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.vars.remove(name);
        } else {
            self.vars.insert(name.to_string(), value.to_string());
        }
    }

    /// The block, exactly [`SIZE`] bytes.
    pub fn to_block(&self) -> Result<Vec<u8>, MachinedError> {
        let mut block = HEADER.as_bytes().to_vec();
        for (name, value) in &self.vars {
            if name.contains(['\n', '\\', '=']) || value.contains(['\n', '\\']) {
                return Err(MachinedError::InvalidArgument(format!(
                    "GRUB variable {name:?} cannot hold {value:?}"
                )));
            }
            block.extend_from_slice(format!("{name}={value}\n").as_bytes());
        }
        if block.len() > SIZE {
            return Err(MachinedError::FailedPrecondition(
                "the GRUB environment does not fit its 1024-byte block".into(),
            ));
        }
        block.resize(SIZE, b'#');
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_the_block_size() {
        let mut empty = HEADER.as_bytes().to_vec();
        empty.resize(SIZE, b'#');
        let mut env = GrubEnv::parse(&empty).unwrap();
        assert_eq!(env.get("next_entry"), None);
        env.set("next_entry", "B");
        env.set("saved_entry", "A");
        let block = env.to_block().unwrap();
        assert_eq!(block.len(), SIZE);
        assert!(block.starts_with(b"# GRUB Environment Block\nnext_entry=B\nsaved_entry=A\n#"));
        let mut again = GrubEnv::parse(&block).unwrap();
        assert_eq!(again.get("next_entry"), Some("B"));
        again.set("next_entry", "");
        assert_eq!(again.get("next_entry"), None);
        // GRUB's own `set next_entry=; save_env next_entry` leaves an empty value.
        let mut cleared = HEADER.as_bytes().to_vec();
        cleared.extend_from_slice(b"next_entry=\n");
        cleared.resize(SIZE, b'#');
        assert_eq!(GrubEnv::parse(&cleared).unwrap().get("next_entry"), None);
    }

    #[test]
    fn refuses_what_is_not_a_block() {
        assert!(GrubEnv::parse(b"hello").is_err());
        assert!(GrubEnv::parse(&[b'#'; SIZE]).is_err());
        let mut env = GrubEnv::default();
        env.set("x", "a\nb");
        assert!(env.to_block().is_err());
    }
}
