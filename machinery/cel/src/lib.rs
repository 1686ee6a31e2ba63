//! The part of CEL (the Common Expression Language) that Talos's selectors use, e.g. an
//! `UnattendedInstallConfig` disk selector `disk.size >= 10u * GB && !disk.rotational`.
//!
//! Supported: `null`, booleans, integers (`1`, `0x1f`), unsigned integers (`1u`), doubles,
//! strings (`'…'`, `"…"`, `r"…"`, with escapes), lists; identifiers and field selection
//! (`disk.dev_path`), indexing; `! -`, `* / %`, `+ -`, `< <= > >= == != in`, `&&`, `||`,
//! `?:`; the functions `size`, `glob(pattern, text)` (Talos's own), `startsWith`, `endsWith`,
//! `contains`, `has(a.b)` and the macros `exists`, `all` and `exists_one` over lists. Numbers
//! of different kinds compare by value, as cel-go's cross-type comparisons do.
//!
//! Expressions come from machine configs, so from outside the node: the text is at most
//! [`MAX_LENGTH`] bytes, nesting at most [`MAX_DEPTH`] deep, and evaluation walks each node of
//! the tree once per list element at most (no loops, no recursion in the language), so its
//! work is bounded by the text's size times the lists' lengths.

mod eval;
mod parse;

use std::collections::BTreeMap;

pub use parse::{MAX_DEPTH, MAX_LENGTH};

/// Why an expression could not be parsed or evaluated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CelError {
    #[error("CEL expression, at byte {offset}: {reason}")]
    Syntax { offset: usize, reason: String },
    #[error("CEL expression: {0}")]
    Evaluation(String),
}

/// A value an expression reads or produces.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    String(String),
    List(Vec<Value>),
    /// A message or map: named fields.
    Object(BTreeMap<String, Value>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Object(_) => "object",
        }
    }
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expression {
    root: parse::Node,
}

impl Expression {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Expression, CelError> {
        Ok(Expression {
            root: parse::parse(text)?,
        })
    }

    /// Evaluates the expression with `variables` (and constants) in scope.
    pub fn evaluate(&self, variables: &BTreeMap<String, Value>) -> Result<Value, CelError> {
        eval::Scope::new(variables).evaluate(&self.root)
    }

    /// Evaluates an expression that must give a boolean, as a selector does.
    pub fn matches(&self, variables: &BTreeMap<String, Value>) -> Result<bool, CelError> {
        match self.evaluate(variables)? {
            Value::Bool(matched) => Ok(matched),
            other => Err(CelError::Evaluation(format!(
                "the expression gives a {}, not a bool",
                other.kind()
            ))),
        }
    }
}

/// Talos's size constants (`KiB` … `EiB`, `kB` … `EB`), as unsigned integers.
pub fn size_units() -> BTreeMap<String, Value> {
    const UNITS: [(&str, u64); 12] = [
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("TiB", 1 << 40),
        ("PiB", 1 << 50),
        ("EiB", 1 << 60),
        ("kB", 1_000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
        ("TB", 1_000_000_000_000),
        ("PB", 1_000_000_000_000_000),
        ("EB", 1_000_000_000_000_000_000),
    ];
    UNITS
        .iter()
        .map(|(name, bytes)| (name.to_string(), Value::Uint(*bytes)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> BTreeMap<String, Value> {
        let disk: BTreeMap<String, Value> = [
            ("dev_path", Value::String("/dev/vda".into())),
            ("size", Value::Uint(8 * 1024 * 1024 * 1024)),
            ("rotational", Value::Bool(false)),
            ("transport", Value::String("virtio".into())),
            ("model", Value::String("QEMU HARDDISK".into())),
            (
                "symlinks",
                Value::List(vec![
                    Value::String("/dev/disk/by-path/pci-0000:00:04.0".into()),
                    Value::String("/dev/disk/by-id/virtio-talos".into()),
                ]),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut variables = size_units();
        variables.insert("disk".into(), Value::Object(disk));
        variables.insert("system_disk".into(), Value::Bool(false));
        variables
    }

    fn eval(text: &str) -> Result<bool, CelError> {
        Expression::parse(text)?.matches(&disk())
    }

    #[test]
    fn disk_selectors_as_talos_documents_write_them() {
        for text in [
            r#"disk.dev_path == "/dev/vda""#,
            "disk.size >= 5u * GB && disk.size < 10u * GiB",
            "!disk.rotational && !system_disk",
            r#"disk.transport in ["virtio", "nvme"]"#,
            r#"glob("QEMU*", disk.model)"#,
            r#"disk.symlinks.exists(s, s.startsWith("/dev/disk/by-id/virtio-"))"#,
            r#"disk.symlinks.all(l, l.contains("/dev/disk/"))"#,
            "size(disk.symlinks) == 2 && disk.symlinks.size() == 2u",
            "has(disk.model) && !has(disk.serial)",
            "disk.size > 1 ? true : false",
            r#"disk.model.endsWith('DISK') || disk.dev_path == r"\x""#,
            "(disk.size / MiB) % 2u == 0u && -1 < 0 && 2.5 > 2",
            "disk.symlinks[1] == '/dev/disk/by-id/virtio-talos'",
        ] {
            assert_eq!(eval(text), Ok(true), "{text}");
        }
        for text in [
            r#"disk.dev_path == "/dev/sda""#,
            "disk.size > 100u * GB",
            r#"disk.symlinks.exists_one(s, s.startsWith("/dev/disk/"))"#,
        ] {
            assert_eq!(eval(text), Ok(false), "{text}");
        }
    }

    #[test]
    fn bad_expressions_name_what_is_wrong() {
        let syntax = |text: &str| match Expression::parse(text) {
            Err(CelError::Syntax { reason, .. }) => reason,
            other => panic!("{text}: {other:?}"),
        };
        assert!(syntax("disk.size >").contains("end of the expression"));
        assert!(syntax("(disk.size").contains("')'"));
        assert!(syntax(r#"disk.model == "x"#).contains("unterminated string"));
        assert!(syntax("disk.size > 1 $").contains("'$'"));
        assert!(syntax(&"(".repeat(MAX_DEPTH + 1)).contains("nested"));
        assert!(syntax(&format!("1{}", "+1".repeat(MAX_DEPTH))).contains("nested"));
        assert!(syntax(&"1+".repeat(MAX_LENGTH)).contains("longer than"));
        let evaluation = |text: &str| match eval(text) {
            Err(CelError::Evaluation(reason)) => reason,
            other => panic!("{text}: {other:?}"),
        };
        assert!(evaluation("disk.nothing == 1").contains("no field \"nothing\""));
        assert!(evaluation("volume.name == 'x'").contains("undeclared reference to \"volume\""));
        assert!(evaluation("disk.size").contains("not a bool"));
        assert!(evaluation("disk.model > 1").contains("no such overload"));
        assert!(evaluation("18446744073709551615u * 2u > 0u").contains("overflow"));
        assert!(evaluation("1 / 0 == 1").contains("division by zero"));
        assert!(evaluation("disk.model.matches('x')").contains("matches"));
        assert!(evaluation("disk.symlinks[7] == ''").contains("index 7"));
    }
}
