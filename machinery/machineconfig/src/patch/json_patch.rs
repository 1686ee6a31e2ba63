//! RFC 6902 JSON patches over YAML values, with RFC 6901 pointers.
//!
//! Operations are checked when the patch is parsed (known `op`, well-formed pointers, `value` or
//! `from` present) and applied in order; the first failure stops the patch. Errors carry the
//! 0-based operation index, its `op` and `path`.

use serde_norway::Value;

use crate::ConfigError;

/// A parsed list of JSON patch operations.
#[derive(Debug, Clone)]
pub struct JsonPatch {
    operations: Vec<Operation>,
}

#[derive(Debug, Clone)]
struct Operation {
    action: Action,
    path: Pointer,
}

#[derive(Debug, Clone)]
enum Action {
    Add(Value),
    Remove,
    Replace(Value),
    Move(Pointer),
    Copy(Pointer),
    Test(Value),
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Self::Add(_) => "add",
            Self::Remove => "remove",
            Self::Replace(_) => "replace",
            Self::Move(_) => "move",
            Self::Copy(_) => "copy",
            Self::Test(_) => "test",
        }
    }
}

/// An RFC 6901 pointer: its text and its unescaped reference tokens.
#[derive(Debug, Clone)]
struct Pointer {
    text: String,
    tokens: Vec<String>,
}

impl Pointer {
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Self {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "invalid pointer {text:?}: must be empty or start with '/'"
            ));
        };
        let tokens = rest
            .split('/')
            .map(|token| {
                unescape(token).ok_or_else(|| {
                    format!("invalid pointer {text:?}: '~' must be followed by 0 or 1")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            tokens,
        })
    }

    /// The pointer to the container and the last token; `None` for the whole document.
    fn split_last(&self) -> Option<(&[String], &str)> {
        let (last, parent) = self.tokens.split_last()?;
        Some((parent, last))
    }
}

fn unescape(token: &str) -> Option<String> {
    let mut unescaped = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => unescaped.push('~'),
                Some('1') => unescaped.push('/'),
                _ => return None,
            },
            c => unescaped.push(c),
        }
    }
    Some(unescaped)
}

const NOT_FOUND: &str = "path not found";

impl JsonPatch {
    /// Parses the operations of the patch named `source`.
    pub fn parse(operations: &[Value], source: &str) -> Result<Self, ConfigError> {
        let operations = operations
            .iter()
            .enumerate()
            .map(|(index, operation)| {
                parse_operation(operation).map_err(|(op, path, reason)| {
                    ConfigError::PatchOperation {
                        patch: source.to_owned(),
                        index,
                        op,
                        path,
                        reason,
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { operations })
    }

    /// Applies every operation to `document`, in order.
    pub fn apply(&self, document: &mut Value, source: &str) -> Result<(), ConfigError> {
        for (index, operation) in self.operations.iter().enumerate() {
            operation
                .apply(document)
                .map_err(|reason| ConfigError::PatchOperation {
                    patch: source.to_owned(),
                    index,
                    op: operation.action.name().to_owned(),
                    path: operation.path.text.clone(),
                    reason,
                })?;
        }
        Ok(())
    }
}

/// Parses one operation; a failure carries the `op` and `path` as far as they were readable.
fn parse_operation(operation: &Value) -> Result<Operation, (String, String, String)> {
    let field = |name: &str| operation.get(name).and_then(Value::as_str);
    let op = field("op").unwrap_or("?").to_owned();
    let path_text = field("path").unwrap_or("?").to_owned();
    let fail = |reason: String| (op.clone(), path_text.clone(), reason);

    if !operation.is_mapping() {
        return Err(fail("an operation must be a mapping".to_owned()));
    }
    let path = match field("path") {
        Some(path) => Pointer::parse(path).map_err(fail)?,
        None => return Err(fail("missing string field `path`".to_owned())),
    };
    let value = || {
        operation
            .get("value")
            .cloned()
            .ok_or_else(|| fail("missing field `value`".to_owned()))
    };
    let from = || match field("from") {
        Some(from) => Pointer::parse(from).map_err(fail),
        None => Err(fail("missing string field `from`".to_owned())),
    };
    let action = match field("op") {
        Some("add") => Action::Add(value()?),
        Some("remove") => Action::Remove,
        Some("replace") => Action::Replace(value()?),
        Some("move") => Action::Move(from()?),
        Some("copy") => Action::Copy(from()?),
        Some("test") => Action::Test(value()?),
        Some(other) => return Err(fail(format!("unknown op {other:?}"))),
        None => return Err(fail("missing string field `op`".to_owned())),
    };
    Ok(Operation { action, path })
}

impl Operation {
    fn apply(&self, document: &mut Value) -> Result<(), String> {
        match &self.action {
            Action::Add(value) => add(document, &self.path, value.clone()),
            Action::Remove => remove(document, &self.path).map(drop),
            Action::Replace(value) => {
                *resolve_mut(document, &self.path.tokens)? = value.clone();
                Ok(())
            }
            Action::Move(from) => {
                let into_itself = self.path.tokens.len() > from.tokens.len()
                    && self.path.tokens.starts_with(&from.tokens);
                if into_itself {
                    return Err(format!("cannot move {} into itself", from.text));
                }
                let value = remove(document, from)
                    .map_err(|reason| format!("from {}: {reason}", from.text))?;
                add(document, &self.path, value)
            }
            Action::Copy(from) => {
                let value = resolve(document, &from.tokens)
                    .map_err(|reason| format!("from {}: {reason}", from.text))?
                    .clone();
                add(document, &self.path, value)
            }
            Action::Test(expected) => {
                let actual = resolve(document, &self.path.tokens)?;
                if actual == expected {
                    Ok(())
                } else {
                    Err(format!(
                        "test failed: found {}, expected {}",
                        one_line(actual),
                        one_line(expected)
                    ))
                }
            }
        }
    }
}

/// A value as short one-line text for error messages.
fn one_line(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

fn resolve<'a>(document: &'a Value, tokens: &[String]) -> Result<&'a Value, String> {
    tokens.iter().try_fold(document, |value, token| {
        match value {
            Value::Mapping(mapping) => mapping.get(token.as_str()),
            Value::Sequence(items) => existing_index(token, items.len()).map(|index| &items[index]),
            _ => None,
        }
        .ok_or_else(|| NOT_FOUND.to_owned())
    })
}

fn resolve_mut<'a>(document: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, String> {
    tokens.iter().try_fold(document, |value, token| {
        match value {
            Value::Mapping(mapping) => mapping.get_mut(token.as_str()),
            Value::Sequence(items) => {
                existing_index(token, items.len()).map(|index| &mut items[index])
            }
            _ => None,
        }
        .ok_or_else(|| NOT_FOUND.to_owned())
    })
}

/// An array index token (`0` or digits without a leading zero), if it is below `len`.
fn existing_index(token: &str, len: usize) -> Option<usize> {
    parse_index(token).ok().filter(|&index| index < len)
}

fn parse_index(token: &str) -> Result<usize, String> {
    let well_formed = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    well_formed
        .then(|| token.parse().ok())
        .flatten()
        .ok_or_else(|| format!("invalid array index {token:?}"))
}

fn add(document: &mut Value, path: &Pointer, value: Value) -> Result<(), String> {
    let Some((parent, last)) = path.split_last() else {
        *document = value;
        return Ok(());
    };
    match resolve_mut(document, parent)? {
        Value::Mapping(mapping) => {
            mapping.insert(Value::String(last.to_owned()), value);
        }
        Value::Sequence(items) if last == "-" => items.push(value),
        Value::Sequence(items) => {
            let index = parse_index(last)?;
            if index > items.len() {
                return Err(format!(
                    "array index {index} out of range (length {})",
                    items.len()
                ));
            }
            items.insert(index, value);
        }
        _ => return Err(NOT_FOUND.to_owned()),
    }
    Ok(())
}

fn remove(document: &mut Value, path: &Pointer) -> Result<Value, String> {
    let Some((parent, last)) = path.split_last() else {
        return Err("cannot remove the whole document".to_owned());
    };
    match resolve_mut(document, parent)? {
        Value::Mapping(mapping) => mapping.shift_remove(last),
        Value::Sequence(items) => {
            existing_index(last, items.len()).map(|index| items.remove(index))
        }
        _ => None,
    }
    .ok_or_else(|| NOT_FOUND.to_owned())
}
