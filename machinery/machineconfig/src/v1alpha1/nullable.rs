//! Collections written as YAML null (`certSANs:` with nothing after it) read as empty, as
//! upstream's decoder reads them.

use serde::{Deserialize, Deserializer};

/// Use with `#[serde(default, deserialize_with = "nullable::deserialize")]`.
pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
