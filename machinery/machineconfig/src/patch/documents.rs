//! The document model patches work on: a YAML stream split into documents, each identified
//! the way Talos matches them (the v1alpha1 document has no `kind`; others by kind and name).

use std::fmt;

use serde::Deserialize;
use serde_norway::Value;

use crate::ConfigError;
use crate::expansion::Budget;

/// How a patch document finds the config document it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentIdentity {
    /// The one document without a `kind`.
    V1Alpha1,
    /// Any other document: its `kind`, and its `name` for named kinds.
    Kind { kind: String, name: Option<String> },
}

impl DocumentIdentity {
    /// The identity of one document; `source` and `index` only name it in errors.
    pub fn of(document: &Value, source: &str, index: usize) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::PatchDocument {
            patch: source.to_owned(),
            document: index,
            reason: reason.to_owned(),
        };
        let Value::Mapping(mapping) = document else {
            return Err(invalid("a document must be a mapping"));
        };
        let Some(kind) = mapping.get("kind") else {
            return Ok(Self::V1Alpha1);
        };
        let kind = kind
            .as_str()
            .ok_or_else(|| invalid("`kind` must be a string"))?;
        let name = match mapping.get("name") {
            None => None,
            Some(name) => {
                Some(scalar_text(name).ok_or_else(|| invalid("`name` must be a scalar"))?)
            }
        };
        Ok(Self::Kind {
            kind: kind.to_owned(),
            name,
        })
    }
}

impl fmt::Display for DocumentIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V1Alpha1 => f.write_str("v1alpha1 document"),
            Self::Kind { kind, name: None } => write!(f, "{kind} document"),
            Self::Kind {
                kind,
                name: Some(name),
            } => write!(f, "{kind} document {name:?}"),
        }
    }
}

/// A scalar written as text, so that `name: 1` and `name: "1"` identify the same document.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Splits a YAML stream into its documents, skipping empty ones, after checking that aliases do
/// not make it expand beyond what its size allows. `source` names the text in
/// errors ("config", a patch file path, "inline patch 2").
pub fn parse_stream(text: &str, source: &str) -> Result<Vec<Value>, ConfigError> {
    let yaml_error = |error: serde_norway::Error| ConfigError::PatchYaml {
        patch: source.to_owned(),
        line: error.location().map(|location| location.line()),
        message: error.to_string(),
    };
    let budget = Budget::for_text(text.len());
    for document in serde_norway::Deserializer::from_str(text) {
        budget.check(document).map_err(yaml_error)?;
    }
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(yaml_error)?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// Writes documents back as one YAML stream, separated by `---`.
pub fn emit_stream(documents: &[Value]) -> Result<String, ConfigError> {
    let texts = documents
        .iter()
        .map(serde_norway::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ConfigError::PatchedConfigEmit)?;
    Ok(texts.join("---\n"))
}
