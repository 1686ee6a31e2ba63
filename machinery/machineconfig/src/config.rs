//! [`Config`]: a whole machine configuration, a YAML stream of documents.

use std::str::FromStr;

use serde_norway::Value;

use crate::ConfigError;
use crate::decode::{DocumentText, split_documents};
use crate::documents::{API_VERSION, Document};
use crate::v1alpha1::V1Alpha1Config;

/// Keys that make a document without `kind` the v1alpha1 document.
const V1ALPHA1_KEYS: &[&str] = &["version", "machine", "cluster", "debug", "persist"];

/// A machine configuration: the v1alpha1 document (if any) and the other documents, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// The classic v1alpha1 document; without it the configuration is not complete for boot.
    pub v1alpha1: Option<V1Alpha1Config>,
    /// The other documents, in the order they were read.
    pub documents: Vec<Document>,
}

impl Config {
    /// A configuration made of one v1alpha1 document.
    pub fn from_v1alpha1(v1alpha1: V1Alpha1Config) -> Self {
        Config {
            v1alpha1: Some(v1alpha1),
            documents: Vec::new(),
        }
    }

    /// Decodes a YAML stream strictly: unknown keys, wrong types, unknown or unsupported kinds
    /// and duplicate documents are errors naming the document, line and YAML path.
    pub fn from_yaml(input: &str) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        let mut seen: Vec<(String, Option<String>)> = Vec::new();
        for text in split_documents(input) {
            let value: Value = text.decode()?;
            let Some(map) = value.as_mapping() else {
                if value.is_null() {
                    continue;
                }
                return Err(ConfigError::NotAMapping {
                    document: text.number,
                    line: text.content_line(),
                });
            };
            let Some(kind) = map.get("kind") else {
                if !V1ALPHA1_KEYS.iter().any(|key| map.contains_key(*key)) {
                    return Err(ConfigError::MissingKind {
                        document: text.number,
                        line: text.content_line(),
                    });
                }
                if config.v1alpha1.is_some() {
                    return Err(ConfigError::DuplicateDocument {
                        document: text.number,
                        line: text.content_line(),
                        kind: "v1alpha1".to_string(),
                        name: None,
                    });
                }
                config.v1alpha1 = Some(text.decode_again()?);
                continue;
            };
            let kind = match kind {
                Value::String(kind) => kind.as_str(),
                other => {
                    return Err(ConfigError::UnknownKind {
                        document: text.number,
                        line: text.content_line(),
                        kind: render_scalar(other),
                    });
                }
            };
            match map.get("apiVersion") {
                None => {
                    return Err(ConfigError::MissingApiVersion {
                        document: text.number,
                        line: text.content_line(),
                        kind: kind.to_string(),
                    });
                }
                Some(Value::String(version)) if version == API_VERSION => {}
                Some(other) => {
                    return Err(ConfigError::UnsupportedApiVersion {
                        document: text.number,
                        line: text.content_line(),
                        kind: kind.to_string(),
                        api_version: render_scalar(other),
                    });
                }
            }
            let document = decode_kind(&text, kind)?;
            let name = map.get("name").and_then(Value::as_str).map(str::to_string);
            let key = (kind.to_string(), name);
            if seen.contains(&key) {
                return Err(ConfigError::DuplicateDocument {
                    document: text.number,
                    line: text.content_line(),
                    kind: key.0,
                    name: key.1,
                });
            }
            seen.push(key);
            config.documents.push(document);
        }
        Ok(config)
    }

    /// Writes the configuration back as YAML: the v1alpha1 document first, then the others,
    /// separated by `---` lines.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        let mut parts = Vec::with_capacity(self.documents.len() + 1);
        if let Some(v1alpha1) = &self.v1alpha1 {
            parts.push(serde_norway::to_string(v1alpha1).map_err(ConfigError::Encode)?);
        }
        for document in &self.documents {
            parts.push(serde_norway::to_string(document).map_err(ConfigError::Encode)?);
        }
        Ok(parts.join("---\n"))
    }

    /// Whether the configuration can boot a machine (it has a v1alpha1 document); without one
    /// a node stays in maintenance mode with the partial configuration applied.
    pub fn is_complete(&self) -> bool {
        self.v1alpha1.is_some()
    }
}

impl FromStr for Config {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Config::from_yaml(s)
    }
}

fn decode_kind(text: &DocumentText, kind: &str) -> Result<Document, ConfigError> {
    if let Some(decoded) = Document::decode(kind, text) {
        return decoded;
    }
    Err(ConfigError::UnknownKind {
        document: text.number,
        line: text.content_line(),
        kind: kind.to_string(),
    })
}

/// `kind "X"` or `kind "X" named "Y"`, for error messages.
pub(crate) fn describe_document(kind: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("kind {kind:?} named {name:?}"),
        None => format!("kind {kind:?}"),
    }
}

/// A YAML value for an error message (a scalar as written, anything else as YAML).
fn render_scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| format!("{other:?}")),
    }
}
