//! A bound on how much a YAML document can expand when it is decoded.
//!
//! YAML aliases (`*a`) repeat the node their anchor (`&a`) names, so N aliases of an N-element
//! anchor decode into N² nodes: a few kilobytes of text become gigabytes of memory. Before a
//! document from outside is decoded, [`check`] walks it once, counting every node and every byte
//! of its scalars as they would be decoded, aliases expanded, and stops as soon as the count
//! passes a budget proportional to the text's size. Without aliases a document never comes near
//! the budget (each node and each scalar byte needs at least one byte of text), so configs of
//! any size are accepted; aliases may repeat content, but only up to a small multiple of the
//! text. The walk allocates nothing, so the check itself is bounded by the budget.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// Units (nodes + scalar bytes) allowed for every byte of text.
const UNITS_PER_BYTE: usize = 4;
/// Units allowed whatever the size, so that small documents may use aliases freely.
const BASE_UNITS: usize = 64 * 1024;

/// What is left to spend of a text's allowance; documents of one text share it.
#[derive(Debug)]
pub(crate) struct Budget {
    remaining: Cell<usize>,
    total: usize,
}

impl Budget {
    /// The allowance of a text of `text_len` bytes.
    pub(crate) fn for_text(text_len: usize) -> Self {
        let total = BASE_UNITS.saturating_add(text_len.saturating_mul(UNITS_PER_BYTE));
        Budget {
            remaining: Cell::new(total),
            total,
        }
    }

    /// Walks what `deserializer` yields, aliases expanded, spending the budget; fails once it
    /// is spent.
    pub(crate) fn check<'de, D: Deserializer<'de>>(&self, deserializer: D) -> Result<(), D::Error> {
        Walk { budget: self }.deserialize(deserializer)
    }
}

/// One node of the walk; it charges the node and its scalar bytes to `remaining`.
#[derive(Clone, Copy)]
struct Walk<'a> {
    budget: &'a Budget,
}

impl Walk<'_> {
    fn charge<E: de::Error>(self, units: usize) -> Result<(), E> {
        let remaining = &self.budget.remaining;
        match remaining.get().checked_sub(units) {
            Some(left) => {
                remaining.set(left);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "the document expands to more than {} nodes and bytes when decoded \
                 (YAML aliases repeat too much content)",
                self.budget.total
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.charge(1)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.charge(1)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.charge(1)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.charge(1)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.charge(1)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.charge(1)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.charge(text.len().saturating_add(1))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<(), E> {
        self.charge(bytes.len().saturating_add(1))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.charge(1)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.charge(1)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.charge(1)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.charge(1)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A tagged node (`!tag value`): the tag, then its value.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(), serde_norway::Error> {
        Budget::for_text(text.len()).check(serde_norway::Deserializer::from_str(text))
    }

    /// The black-box case of the audit: 20,000 aliases of a 20,001-element list.
    fn alias_bomb(n: usize) -> String {
        format!(
            "version: v1alpha1\ndebug: &a [{}1]\npersist: [{}*a]\n",
            "1,".repeat(n),
            "*a,".repeat(n)
        )
    }

    #[test]
    fn refuses_aliases_that_multiply_the_document() {
        let err = check_text(&alias_bomb(20_000)).unwrap_err();
        assert!(err.to_string().contains("YAML aliases"), "{err}");
    }

    #[test]
    fn accepts_large_documents_without_aliases() {
        let items: String = (0..200_000).map(|i| format!("  - item-{i}\n")).collect();
        let text = format!(
            "list:\n{items}block: |\n{}",
            "  text line\n".repeat(100_000)
        );
        check_text(&text).unwrap();
    }

    #[test]
    fn accepts_modest_aliasing() {
        let text =
            "a: &sans [one.example, two.example, 10.0.0.1]\nb: *sans\nc: *sans\nd: {x: *sans}\n";
        check_text(text).unwrap();
    }

    #[test]
    fn counts_tagged_nodes() {
        check_text("a: !custom {b: [1, 2]}\n").unwrap();
        let many = format!(
            "a: &x !t [{}1]\nb: [{}*x]\n",
            "1,".repeat(2_000),
            "*x,".repeat(2_000)
        );
        assert!(check_text(&many).is_err());
    }
}
