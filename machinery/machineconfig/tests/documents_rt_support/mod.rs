//! Helpers shared by the runtime, block and CRI document tests.

// Each test crate includes this module and uses only some of the helpers.
#![allow(dead_code)]

use machineconfig::{Config, ConfigError, RuntimeMode, ValidationIssue};

/// The text of `tests/fixtures/documents/<group>/<name>.yaml`.
pub fn fixture(group: &str, name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/documents/{group}/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Every document of a YAML stream, as plain YAML values.
fn values(text: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

/// Decodes `text` (one document of `kind`), checks it validates without errors, that encoding
/// it writes every field back unchanged, and that the encoding decodes to the same config.
pub fn assert_round_trip(text: &str, kind: &str) -> Config {
    let config = Config::from_yaml(text).unwrap_or_else(|err| panic!("{kind} decodes: {err}"));
    assert_eq!(config.documents.len(), 1, "{kind}: one document");
    assert_eq!(config.documents[0].kind(), kind);
    if let Err(err) = config.validate(RuntimeMode::Metal, false) {
        panic!("{kind}: the full fixture should be valid: {err}");
    }
    let written = config.to_yaml().expect("encodes");
    assert_eq!(
        values(&written),
        values(text),
        "{kind}: every field is written back as read:\n{written}"
    );
    let again = Config::from_yaml(&written).expect("the encoding decodes");
    assert_eq!(again, config, "{kind}: decode(encode(x)) == x");
    config
}

/// Decodes `text` expecting a decode error; returns its (line, path, message).
pub fn decode_error(text: &str) -> (Option<usize>, String, String) {
    match Config::from_yaml(text) {
        Err(ConfigError::Decode {
            line,
            path,
            message,
            ..
        }) => (line, path, message),
        Err(other) => panic!("expected a decode error, got {other}"),
        Ok(_) => panic!("expected a decode error, the input decoded:\n{text}"),
    }
}

/// Adds an unknown top-level field at the end of `text` and checks the error names it and its
/// line.
pub fn assert_unknown_field_rejected(text: &str) {
    let input = format!("{}\nsurpriseField: 1\n", text.trim_end());
    let (line, path, message) = decode_error(&input);
    assert_eq!(line, Some(input.lines().count()), "{message}");
    assert_eq!(path, "surpriseField");
    assert!(
        message.contains("unknown field `surpriseField`"),
        "{message}"
    );
}

/// The validation errors of `text` (which must decode).
pub fn validation_errors(text: &str) -> Vec<ValidationIssue> {
    let config = Config::from_yaml(text).unwrap_or_else(|err| panic!("decodes: {err}\n{text}"));
    match config.validate(RuntimeMode::Metal, false) {
        Err(ConfigError::Invalid { errors }) => errors,
        Err(other) => panic!("expected validation errors, got {other}"),
        Ok(_) => panic!("expected validation errors, the config is valid:\n{text}"),
    }
}

/// Checks validation reports an error at exactly `path` whose message contains `message`.
pub fn assert_invalid(text: &str, path: &str, message: &str) {
    let errors = validation_errors(text);
    assert!(
        errors
            .iter()
            .any(|e| e.path == path && e.message.contains(message)),
        "expected an error at {path:?} containing {message:?}, got {errors:?}"
    );
}

/// Checks the warnings of a valid `text` include one at `path`.
pub fn assert_warning(text: &str, path: &str) {
    let config = Config::from_yaml(text).expect("decodes");
    let warnings = config
        .validate(RuntimeMode::Metal, false)
        .unwrap_or_else(|err| panic!("valid: {err}"));
    assert!(
        warnings.iter().any(|w| w.path == path),
        "expected a warning at {path:?}, got {warnings:?}"
    );
}

/// Checks that two documents of a named kind with the same name are refused.
pub fn assert_duplicate_rejected(text: &str, kind: &str) {
    let input = format!("{}\n---\n{}", text.trim_end(), text);
    match Config::from_yaml(&input) {
        Err(ConfigError::DuplicateDocument {
            document: 2,
            kind: k,
            name: Some(_),
            ..
        }) if k == kind => {}
        other => panic!("{kind}: expected a duplicate document error, got {other:?}"),
    }
}

/// A minimal v1alpha1 document with `machine` extra YAML (indented for `machine:`).
pub fn with_v1alpha1(machine_extra: &str, document: &str) -> String {
    format!(
        "version: v1alpha1\nmachine:\n  type: worker\n  token: abcdef.0123456789abcdef\n{machine_extra}cluster:\n  controlPlane:\n    endpoint: https://10.5.0.2:6443\n---\n{document}"
    )
}
