//! String-to-string maps (`env`, `sysctls`, `nodeLabels`, …) whose values may be written as any
//! YAML scalar: `net.ipv4.ip_forward: 1` means `"1"`, as upstream's Go decoder reads it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// Use with `#[serde(default, deserialize_with = "string_map::deserialize")]`; null reads as
/// an empty map.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, ScalarText>>::deserialize(d)?.unwrap_or_default();
    Ok(map.into_iter().map(|(key, value)| (key, value.0)).collect())
}

/// A YAML scalar as text.
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarTextVisitor)
    }
}

struct ScalarTextVisitor;

impl Visitor<'_> for ScalarTextVisitor {
    type Value = ScalarText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
        Ok(ScalarText(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<ScalarText, E> {
        Ok(ScalarText(String::new()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scalars_become_text_and_nested_values_are_rejected() {
        let map = super::deserialize(serde_norway::Deserializer::from_str(
            "a: 1\nb: true\nc: x\nd:\n",
        ))
        .unwrap();
        assert_eq!(map["a"], "1");
        assert_eq!(map["b"], "true");
        assert_eq!(map["c"], "x");
        assert_eq!(map["d"], "");
        assert!(super::deserialize(serde_norway::Deserializer::from_str("a: [1]")).is_err());
    }
}
