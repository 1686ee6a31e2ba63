//! Splitting a YAML stream into documents and decoding each one strictly, with errors that name
//! the YAML path and the line in the original input.
//!
//! Each document is decoded from its own slice of the input (so that a document can be looked
//! at as a plain YAML value first, then decoded into its type); line numbers are shifted back to
//! the original input.

use serde::de::DeserializeOwned;

use crate::ConfigError;
use crate::expansion::Budget;

/// One document of a YAML stream.
#[derive(Debug)]
pub(crate) struct DocumentText {
    /// 1-based ordinal among the non-empty documents of the stream.
    pub number: usize,
    /// 1-based line of the input where `text` starts.
    pub first_line: usize,
    /// The document's text. A `--- ` marker line that carries content keeps its content, the
    /// marker blanked out, so columns stay right.
    pub text: String,
}

impl DocumentText {
    /// 1-based input line of the document's first non-blank, non-comment line.
    pub fn content_line(&self) -> usize {
        self.text
            .lines()
            .position(is_content)
            .map_or(self.first_line, |offset| self.first_line + offset)
    }

    /// Strictly decodes the document, after checking that its aliases do not make it expand
    /// beyond what its size allows ([`Budget`]).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let mut track = serde_path_to_error::Track::new();
        let deserializer = serde_path_to_error::Deserializer::new(
            serde_norway::Deserializer::from_str(&self.text),
            &mut track,
        );
        if let Err(err) = Budget::for_text(self.text.len()).check(deserializer) {
            return Err(self.decode_error(&serde_path_to_error::Error::new(track.path(), err)));
        }
        self.decode_again()
    }

    /// Strictly decodes a document that [`DocumentText::decode`] has decoded once already (its
    /// expansion is known to be bounded), as another type.
    pub fn decode_again<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let deserializer = serde_norway::Deserializer::from_str(&self.text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| self.decode_error(&err))
    }

    fn decode_error(&self, err: &serde_path_to_error::Error<serde_norway::Error>) -> ConfigError {
        let line_shift = self.first_line - 1;
        let location = err.inner().location();
        let mut message = err.inner().to_string();
        if let Some(location) = &location {
            message = without_position(&message, location.line(), location.column(), line_shift);
        }
        // serde_norway prefixes its own rendering of the path; the path is reported separately.
        if let Some((prefix, rest)) = message.split_once(": ")
            && !prefix.is_empty()
            && !prefix.contains(char::is_whitespace)
        {
            message = rest.to_string();
        }
        ConfigError::Decode {
            document: self.number,
            line: location
                .as_ref()
                .map(|l| l.line().saturating_add(line_shift)),
            column: location.as_ref().map(|l| l.column()),
            path: yaml_path(err.path()),
            message,
        }
    }
}

/// The text of [`ConfigError::Decode`].
pub(crate) fn format_decode_error(
    document: usize,
    line: Option<usize>,
    column: Option<usize>,
    path: &str,
    message: &str,
) -> String {
    let mut text = format!("document {document}");
    if let Some(line) = line {
        text.push_str(&format!(", line {line}"));
        if let Some(column) = column {
            text.push_str(&format!(" column {column}"));
        }
    }
    if !path.is_empty() {
        text.push_str(&format!(", at {path}"));
    }
    text.push_str(": ");
    text.push_str(message);
    text
}

/// The path as `a.b[0].c`; empty for the document root, unknown tail segments dropped.
fn yaml_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    let text = text.trim_end_matches(".?").trim_end_matches('?');
    if text == "." {
        String::new()
    } else {
        text.to_string()
    }
}

/// A serde_norway message without its position suffix ` at line L column C` (reported apart).
///
/// A parser error goes on with a context that has a position of its own (`did not find expected
/// key at line 3 column 1, while parsing a block mapping at line 1 column 1`): that position is
/// moved by `shift` lines, from the document's slice to the whole input. Nothing else is
/// touched, so text quoted from the input (a key named "line 7") stays as written.
fn without_position(message: &str, line: usize, column: usize, shift: usize) -> String {
    let position = format!(" at line {line} column {column}");
    if let Some(text) = message.strip_suffix(&position) {
        return text.to_string();
    }
    // Parser (libyaml) problems are fixed texts, so the first occurrence is the position.
    match message.split_once(&format!("{position}, ")) {
        Some((problem, context)) => format!("{problem}, {}", shift_context_line(context, shift)),
        None => message.to_string(),
    }
}

/// Moves the trailing ` at line N column M` of a parser context by `shift` lines.
fn shift_context_line(context: &str, shift: usize) -> String {
    const AT_LINE: &str = " at line ";
    let Some(at) = context.rfind(AT_LINE) else {
        return context.to_string();
    };
    let (text, position) = (&context[..at], &context[at + AT_LINE.len()..]);
    let Some((line, column)) = position.split_once(" column ") else {
        return context.to_string();
    };
    let shifted = line
        .parse::<usize>()
        .ok()
        .and_then(|line| line.checked_add(shift));
    match shifted {
        Some(line) if column.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{text}{AT_LINE}{line} column {column}")
        }
        _ => context.to_string(),
    }
}

fn is_content(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// Whether `line` is the marker `marker` (`---` or `...`) at column 0.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Splits a YAML stream on `---` and `...` lines. Documents with no content (only blank lines
/// and comments) are dropped.
pub(crate) fn split_documents(input: &str) -> Vec<DocumentText> {
    let mut documents = Vec::new();
    let mut text = String::new();
    let mut first_line = 1;
    let mut finish = |text: &mut String, first_line: usize| {
        if text.lines().any(is_content) {
            documents.push(DocumentText {
                number: 0,
                first_line,
                text: std::mem::take(text),
            });
        }
        text.clear();
    };
    for (index, line) in input.split_inclusive('\n').enumerate() {
        let line_number = index + 1;
        if is_marker(line, "---") {
            finish(&mut text, first_line);
            first_line = line_number;
            text.push_str("   ");
            text.push_str(&line[3..]);
        } else if is_marker(line, "...") {
            finish(&mut text, first_line);
            first_line = line_number + 1;
        } else if line.starts_with('%') && !text.lines().any(is_content) {
            // A directive (`%YAML 1.2`) before a document's marker: keep the line count only.
            text.push('\n');
        } else {
            text.push_str(line);
        }
    }
    finish(&mut text, first_line);
    for (index, document) in documents.iter_mut().enumerate() {
        document.number = index + 1;
    }
    documents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_markers_and_tracks_lines() {
        let input = "# comment\n---\na: 1\n---\n\n--- # c\nb: 2\n...\nc: 3\n";
        let docs = split_documents(input);
        assert_eq!(docs.len(), 3);
        assert_eq!((docs[0].number, docs[0].content_line()), (1, 3));
        assert_eq!((docs[1].number, docs[1].content_line()), (2, 7));
        assert_eq!((docs[2].number, docs[2].content_line()), (3, 9));
    }

    #[test]
    fn marker_inside_indented_block_scalar_is_content() {
        let input = "a: |\n  ---\n  x\n";
        let docs = split_documents(input);
        assert_eq!(docs.len(), 1);
        let value: serde_norway::Value = docs[0].decode().unwrap();
        assert_eq!(value["a"].as_str(), Some("---\nx\n"));
    }

    #[test]
    fn content_after_marker_keeps_its_column() {
        let docs = split_documents("--- {a: x}\n");
        let err = docs[0]
            .decode::<std::collections::BTreeMap<String, u32>>()
            .unwrap_err();
        let ConfigError::Decode {
            line, column, path, ..
        } = err
        else {
            panic!("unexpected error {err}")
        };
        assert_eq!((line, column, path.as_str()), (Some(1), Some(9), "a"));
    }

    #[test]
    fn moves_only_the_parser_context_position() {
        assert_eq!(
            without_position(
                "did not find expected key at line 3 column 1, while parsing a block mapping at line 1 column 2",
                3,
                1,
                10
            ),
            "did not find expected key, while parsing a block mapping at line 11 column 2"
        );
        assert_eq!(
            without_position("unknown field `line 7` at line 2 column 1", 2, 1, 10),
            "unknown field `line 7`"
        );
    }
}
