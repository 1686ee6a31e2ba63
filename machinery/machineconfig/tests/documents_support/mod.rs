//! Helpers shared by every multi-document kind test (`documents_*.rs`): fixture loading, round
//! trips, decode errors, validation issues, duplicates.

// Each test crate includes this module and uses only some of the helpers.
#![allow(dead_code)]

use machineconfig::{Config, ConfigError, RuntimeMode, ValidationIssue};
use serde::Deserialize;

/// The text of `tests/fixtures/documents/<group>/<file>`.
pub fn fixture(group: &str, file: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/documents/{group}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {path}: {err}"))
}

/// Every document of a YAML stream as a plain YAML value.
pub fn values(text: &str) -> Vec<serde_norway::Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| serde_norway::Value::deserialize(doc).expect("valid YAML"))
        .filter(|value| !value.is_null())
        .collect()
}

/// Decodes `text`, checks the kinds, writes it back and decodes again: the config is the
/// same, and the written YAML holds exactly the fields of the input (none dropped or added).
#[track_caller]
pub fn assert_round_trip(text: &str, kinds: &[&str]) -> Config {
    let config = Config::from_yaml(text).unwrap_or_else(|err| panic!("decoding: {err}\n{text}"));
    let decoded: Vec<&str> = config.documents.iter().map(|d| d.kind()).collect();
    assert_eq!(decoded, kinds);
    let written = config.to_yaml().expect("encodes");
    let again = Config::from_yaml(&written)
        .unwrap_or_else(|err| panic!("written config does not decode: {err}\n{written}"));
    assert_eq!(again, config, "written:\n{written}");
    assert_eq!(values(&written), values(text), "written:\n{written}");
    config
}

/// [`assert_round_trip`] of one document of `kind` that also validates without errors.
#[track_caller]
pub fn assert_valid_round_trip(text: &str, kind: &str) -> Config {
    let config = assert_round_trip(text, &[kind]);
    assert_valid(&config);
    config
}

/// The warnings of a config that must validate.
#[track_caller]
pub fn assert_valid(config: &Config) -> Vec<ValidationIssue> {
    config
        .validate(RuntimeMode::Metal, false)
        .unwrap_or_else(|err| panic!("validation failed: {err}"))
}

/// The validation errors of `text` (which must decode and fail validation).
#[track_caller]
pub fn validation_errors(text: &str) -> Vec<ValidationIssue> {
    let config = Config::from_yaml(text).unwrap_or_else(|err| panic!("decoding: {err}\n{text}"));
    match config.validate(RuntimeMode::Metal, false) {
        Err(ConfigError::Invalid { errors }) => errors,
        Err(other) => panic!("expected validation errors, got {other}"),
        Ok(warnings) => panic!("expected validation errors, got none (warnings: {warnings:?})"),
    }
}

/// The warnings of `text` (which must decode and validate).
#[track_caller]
pub fn warnings(text: &str) -> Vec<ValidationIssue> {
    let config = Config::from_yaml(text).unwrap_or_else(|err| panic!("decoding: {err}\n{text}"));
    assert_valid(&config)
}

/// Asserts that `issues` has one at `path` whose message contains `text`.
#[track_caller]
pub fn assert_issue(issues: &[ValidationIssue], path: &str, text: &str) {
    assert!(
        issues
            .iter()
            .any(|i| i.path == path && i.message.contains(text)),
        "no issue at {path:?} containing {text:?} in:\n{issues:#?}"
    );
}

/// Validation of `text` reports an error at `path` whose message contains `message`.
#[track_caller]
pub fn assert_invalid(text: &str, path: &str, message: &str) {
    assert_issue(&validation_errors(text), path, message);
}

/// `text` validates, with a warning at `path`.
#[track_caller]
pub fn assert_warning(text: &str, path: &str) {
    let warnings = warnings(text);
    assert!(
        warnings.iter().any(|w| w.path == path),
        "expected a warning at {path:?}, got {warnings:?}"
    );
}

/// `text` with the first occurrence of `from` replaced by `to` (which must be present).
#[track_caller]
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in:\n{text}");
    text.replacen(from, to, 1)
}

/// The decode error of `text`: (line, YAML path, message).
#[track_caller]
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

/// Asserts that adding `line` after the first line containing `after` gives a decode error
/// at that line, naming `path`.
#[track_caller]
pub fn assert_unknown_field(text: &str, after: &str, line: &str, path: &str) {
    let position = text
        .lines()
        .position(|l| l.contains(after))
        .unwrap_or_else(|| panic!("{after:?} not in:\n{text}"));
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(position + 1, line);
    let input = lines.join("\n") + "\n";
    let (reported, reported_path, message) = decode_error(&input);
    assert_eq!(reported, Some(position + 2), "{message}\n{input}");
    assert_eq!(reported_path, path, "{message}");
    let field = path.rsplit('.').next().unwrap_or(path);
    let field = field.split('[').next().unwrap_or(field);
    assert!(message.contains(field), "{message}");
}

/// An unknown top-level field after `kind:` is a decode error at its line.
#[track_caller]
pub fn assert_unknown_top_level_field(text: &str) {
    assert_unknown_field(text, "kind:", "surpriseField: 1", "surpriseField");
}

/// Two copies of `text` (one named document of `kind`) in one stream are refused, naming the
/// kind and the document's name.
#[track_caller]
pub fn assert_duplicate_refused(text: &str, kind: &str) {
    let single = Config::from_yaml(text).unwrap_or_else(|err| panic!("decoding: {err}\n{text}"));
    let name = single.documents[0].name().map(str::to_string);
    assert!(name.is_some(), "{kind} is not a named kind");
    let input = format!("{}\n---\n{text}", text.trim_end());
    match Config::from_yaml(&input) {
        Err(ConfigError::DuplicateDocument {
            kind: k, name: n, ..
        }) => {
            assert_eq!(k, kind);
            assert_eq!(n, name);
        }
        Err(other) => panic!("expected a duplicate document error, got {other}"),
        Ok(_) => panic!("expected a duplicate document error, the input decoded"),
    }
}

/// A minimal v1alpha1 document with `machine_extra` (indented for `machine:`), then `document`.
pub fn with_v1alpha1(machine_extra: &str, document: &str) -> String {
    format!(
        "version: v1alpha1\nmachine:\n  type: worker\n  token: abcdef.0123456789abcdef\n{machine_extra}cluster:\n  controlPlane:\n    endpoint: https://10.5.0.2:6443\n---\n{document}"
    )
}
