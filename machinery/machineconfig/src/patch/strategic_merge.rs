//! Talos-flavoured strategic merge of YAML documents.
//!
//! Mappings merge key by key, scalars (and values of a different shape) are replaced, `null`
//! changes nothing, and lists are appended, except the few lists of the v1alpha1 document that
//! Talos merges element by element (see [`KEYED_LISTS`]). A mapping holding `$patch: delete`
//! deletes the entry it lands on: a key, a keyed list element, or a whole document. A directive
//! that lands on nothing stays in the result, and [`check_no_directives`] reports it.

use serde_norway::{Mapping, Value};

use super::documents::DocumentIdentity;
use crate::ConfigError;

const DIRECTIVE_KEY: &str = "$patch";

/// Lists of the v1alpha1 document merged element by element. A patch element matches the
/// existing element with the same value for the first of the key fields the patch element has;
/// unmatched elements are appended. Paths are dotted keys, `[]` standing for "any element".
const KEYED_LISTS: &[(&str, &[&str])] = &[
    (
        "machine.network.interfaces",
        &["interface", "deviceSelector"],
    ),
    ("machine.network.interfaces[].vlans", &["vlanId"]),
    ("machine.kernel.modules", &["name"]),
    ("machine.seccompProfiles", &["name"]),
    ("cluster.apiServer.admissionControl", &["name"]),
    ("cluster.inlineManifests", &["name"]),
];

/// Merges each patch document into the config document of the same identity, or appends it.
pub fn merge_documents(
    documents: &mut Vec<Value>,
    patch_documents: &[Value],
    source: &str,
) -> Result<(), ConfigError> {
    for (index, patch) in patch_documents.iter().enumerate() {
        let identity = DocumentIdentity::of(patch, source, index)?;
        let keyed_lists = match identity {
            DocumentIdentity::V1Alpha1 => KEYED_LISTS,
            DocumentIdentity::Kind { .. } => &[],
        };
        match position_of(documents, &identity)? {
            Some(position) if is_delete(patch) => {
                documents.remove(position);
            }
            Some(position) => merge_value(&mut documents[position], patch, "", keyed_lists),
            None => documents.push(patch.clone()),
        }
    }
    Ok(())
}

fn position_of(
    documents: &[Value],
    identity: &DocumentIdentity,
) -> Result<Option<usize>, ConfigError> {
    for (index, document) in documents.iter().enumerate() {
        if DocumentIdentity::of(document, "config", index)? == *identity {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

fn is_delete(value: &Value) -> bool {
    value.get(DIRECTIVE_KEY).and_then(Value::as_str) == Some("delete")
}

type KeyedLists = &'static [(&'static str, &'static [&'static str])];

fn merge_value(target: &mut Value, patch: &Value, path: &str, keyed_lists: KeyedLists) {
    match (target, patch) {
        (_, Value::Null) => {}
        (Value::Mapping(target), Value::Mapping(patch)) => {
            merge_mapping(target, patch, path, keyed_lists)
        }
        (Value::Sequence(target), Value::Sequence(patch)) => {
            match keyed_lists.iter().find(|(list_path, _)| *list_path == path) {
                Some((_, key_fields)) => {
                    merge_keyed_list(target, patch, key_fields, path, keyed_lists)
                }
                None => target.extend(patch.iter().cloned()),
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn merge_mapping(target: &mut Mapping, patch: &Mapping, path: &str, keyed_lists: KeyedLists) {
    for (key, value) in patch {
        if is_delete(value) && target.contains_key(key) {
            target.shift_remove(key);
            continue;
        }
        match target.get_mut(key) {
            Some(existing) => {
                let key = key.as_str().unwrap_or("?");
                let child_path = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                merge_value(existing, value, &child_path, keyed_lists);
            }
            None if value.is_null() => {}
            None => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_keyed_list(
    target: &mut Vec<Value>,
    patch: &[Value],
    key_fields: &[&str],
    path: &str,
    keyed_lists: KeyedLists,
) {
    let element_path = format!("{path}[]");
    for element in patch {
        let key = key_fields.iter().find_map(|field| {
            element
                .get(field)
                .filter(|value| !value.is_null())
                .map(|value| (field, value))
        });
        let position = key.and_then(|(field, value)| {
            target
                .iter()
                .position(|existing| existing.get(field) == Some(value))
        });
        match position {
            Some(position) if is_delete(element) => {
                target.remove(position);
            }
            Some(position) => {
                merge_value(&mut target[position], element, &element_path, keyed_lists)
            }
            None => target.push(element.clone()),
        }
    }
}

/// Fails on the first `$patch` directive left in the patched documents.
pub fn check_no_directives(documents: &[Value]) -> Result<(), ConfigError> {
    for (index, document) in documents.iter().enumerate() {
        if let Some((path, directive)) = find_directive(document, String::new()) {
            let identity = DocumentIdentity::of(document, "patched config", index)?;
            return Err(ConfigError::UnresolvedPatchDirective {
                document: identity.to_string(),
                path: if path.is_empty() {
                    "the document root".to_owned()
                } else {
                    path
                },
                directive,
            });
        }
    }
    Ok(())
}

/// The path and text of the first directive under `value`.
fn find_directive(value: &Value, path: String) -> Option<(String, String)> {
    match value {
        Value::Mapping(mapping) => {
            if let Some(directive) = mapping.get(DIRECTIVE_KEY) {
                let text = directive
                    .as_str()
                    .map_or_else(|| format!("{directive:?}"), str::to_owned);
                return Some((path, text));
            }
            mapping.iter().find_map(|(key, child)| {
                let key = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_owned);
                let child_path = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                find_directive(child, child_path)
            })
        }
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| find_directive(item, format!("{path}[{index}]"))),
        _ => None,
    }
}
