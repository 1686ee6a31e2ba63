//! Extra command-line arguments (`extraArgs`) for Kubernetes components: a map from flag name
//! to a value or a list of values (a list repeats the flag).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `extraArgs`: flag name (without `--`) to value.
pub type ExtraArgs = BTreeMap<String, ArgValue>;

/// One `extraArgs` value. Scalars of any YAML type are kept as their text (`v: 2` is `"2"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgValue {
    /// `--flag=value`.
    Single(String),
    /// The flag repeated once per value.
    List(Vec<String>),
}

impl From<&str> for ArgValue {
    fn from(value: &str) -> Self {
        ArgValue::Single(value.to_string())
    }
}

impl From<String> for ArgValue {
    fn from(value: String) -> Self {
        ArgValue::Single(value)
    }
}

impl Serialize for ArgValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ArgValue::Single(value) => s.serialize_str(value),
            ArgValue::List(values) => values.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ArgValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ArgValueVisitor)
    }
}

struct ArgValueVisitor;

impl<'de> Visitor<'de> for ArgValueVisitor {
    type Value = ArgValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ArgValue, E> {
        Ok(ArgValue::Single(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ArgValue, E> {
        Ok(ArgValue::Single(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ArgValue, E> {
        Ok(ArgValue::Single(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ArgValue, E> {
        Ok(ArgValue::Single(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ArgValue, E> {
        Ok(ArgValue::Single(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArgValue, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element::<String>()? {
            values.push(value);
        }
        Ok(ArgValue::List(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_lists_decode_and_round_trip() {
        let args: ExtraArgs =
            serde_norway::from_str("v: 2\nfeature-gates: A=true\nflag: [a, b]\nenabled: true")
                .unwrap();
        assert_eq!(args["v"], ArgValue::from("2"));
        assert_eq!(args["enabled"], ArgValue::from("true"));
        assert_eq!(
            args["flag"],
            ArgValue::List(vec!["a".to_string(), "b".to_string()])
        );
        let text = serde_norway::to_string(&args).unwrap();
        assert_eq!(serde_norway::from_str::<ExtraArgs>(&text).unwrap(), args);
        assert!(serde_norway::from_str::<ExtraArgs>("x: {a: 1}").is_err());
    }
}
