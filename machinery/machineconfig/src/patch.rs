//! Config patches, as `talosctl --config-patch` and `talosctl machineconfig patch` take them.
//!
//! A patch argument is inline text or `@path/to/file`. Its text is either
//! - a list of RFC 6902 JSON patch operations (JSON, or YAML whose top level is a list), applied
//!   to the v1alpha1 document only, or
//! - one or more YAML documents, each merged strategically into the config document of the same
//!   identity (the v1alpha1 document has no `kind`; others match by `kind` and `name`), or added
//!   at the end when there is none.
//!
//! Strategic merge follows Talos: mappings merge recursively, scalars replace, `null` changes
//! nothing, lists append, except the v1alpha1 lists Talos merges by key
//! (`machine.network.interfaces` by `interface` or `deviceSelector`, their `vlans` by `vlanId`,
//! `machine.kernel.modules`, `machine.seccompProfiles`, `cluster.apiServer.admissionControl` and
//! `cluster.inlineManifests` by `name`). `$patch: delete` in a mapping deletes the key, keyed list
//! element or whole document it lands on; one that matches nothing is an error.
//!
//! Patches work on raw YAML documents and know nothing of the config types beyond those lists;
//! the caller decodes and validates the patched text. Limits: no `$patch: replace`, and a JSON
//! patch `test` compares numbers as written (`1` is not `1.0`).

mod documents;
mod json_patch;
mod strategic_merge;

use std::path::Path;

use serde_norway::Value;

use crate::ConfigError;
use documents::{DocumentIdentity, emit_stream, parse_stream};
use json_patch::JsonPatch;

/// One parsed patch and the name of where it came from (a file path or "inline patch N").
#[derive(Debug, Clone)]
pub struct Patch {
    source: String,
    body: PatchBody,
}

#[derive(Debug, Clone)]
enum PatchBody {
    Json(JsonPatch),
    StrategicMerge(Vec<Value>),
}

/// The two kinds of patch, as told apart by [`Patch::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchFormat {
    /// RFC 6902 operations on the v1alpha1 document.
    JsonPatch,
    /// YAML documents merged into the config documents.
    StrategicMerge,
}

impl Patch {
    /// Parses patch text given inline; errors name it "inline patch".
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_named(text, "inline patch")
    }

    /// Parses patch text; `source` names it in errors.
    pub fn parse_named(text: &str, source: impl Into<String>) -> Result<Self, ConfigError> {
        let source = source.into();
        let documents = parse_stream(text, &source)?;
        let body = match documents.as_slice() {
            [] => return Err(ConfigError::EmptyPatch { patch: source }),
            [Value::Sequence(operations)] => {
                PatchBody::Json(JsonPatch::parse(operations, &source)?)
            }
            _ => {
                for (index, document) in documents.iter().enumerate() {
                    if document.is_sequence() {
                        return Err(ConfigError::PatchDocument {
                            patch: source,
                            document: index,
                            reason:
                                "a list of JSON patch operations must be the patch's only document"
                                    .to_owned(),
                        });
                    }
                    DocumentIdentity::of(document, &source, index)?;
                }
                PatchBody::StrategicMerge(documents)
            }
        };
        Ok(Self { source, body })
    }

    /// Parses a patch argument: `@path` reads the file, anything else is inline text.
    pub fn from_arg(arg: &str) -> Result<Self, ConfigError> {
        Self::from_arg_named(arg, "inline patch".to_owned())
    }

    fn from_arg_named(arg: &str, inline_name: String) -> Result<Self, ConfigError> {
        let Some(path) = arg.strip_prefix('@') else {
            return Self::parse_named(arg, inline_name);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::PatchFileRead {
            path: Path::new(path).to_path_buf(),
            source,
        })?;
        Self::parse_named(&text, path)
    }

    /// Where the patch came from: its file path, or "inline patch N".
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether this is a JSON patch or a strategic merge patch.
    pub fn format(&self) -> PatchFormat {
        match self.body {
            PatchBody::Json(_) => PatchFormat::JsonPatch,
            PatchBody::StrategicMerge(_) => PatchFormat::StrategicMerge,
        }
    }

    fn apply(&self, documents: &mut Vec<Value>) -> Result<(), ConfigError> {
        match &self.body {
            PatchBody::StrategicMerge(patch_documents) => {
                strategic_merge::merge_documents(documents, patch_documents, &self.source)
            }
            PatchBody::Json(patch) => {
                let mut v1alpha1 = None;
                for (index, document) in documents.iter_mut().enumerate() {
                    if DocumentIdentity::of(document, "config", index)?
                        == DocumentIdentity::V1Alpha1
                    {
                        v1alpha1 = Some(document);
                        break;
                    }
                }
                let document = v1alpha1.ok_or_else(|| ConfigError::JsonPatchWithoutV1Alpha1 {
                    patch: self.source.clone(),
                })?;
                patch.apply(document, &self.source)
            }
        }
    }
}

/// Parses patch arguments in order (as given to repeated `--config-patch` flags); inline ones
/// are named "inline patch N" after their 1-based position among `args`.
pub fn load_patches<S: AsRef<str>>(args: &[S]) -> Result<Vec<Patch>, ConfigError> {
    args.iter()
        .enumerate()
        .map(|(index, arg)| {
            Patch::from_arg_named(arg.as_ref(), format!("inline patch {}", index + 1))
        })
        .collect()
}

/// Applies `patches` in order to a multi-document config and returns the patched YAML stream:
/// the original documents in their order (deleted ones dropped), added ones at the end.
pub fn apply_patches(config_yaml: &str, patches: &[Patch]) -> Result<String, ConfigError> {
    let documents = parse_stream(config_yaml, "config")?;
    emit_stream(&apply_patches_to_documents(documents, patches)?)
}

/// Applies `patches` in order to already parsed config documents. Fails if a `$patch`
/// directive is left over in the result (a delete that matched nothing).
pub fn apply_patches_to_documents(
    mut documents: Vec<Value>,
    patches: &[Patch],
) -> Result<Vec<Value>, ConfigError> {
    for patch in patches {
        patch.apply(&mut documents)?;
    }
    strategic_merge::check_no_directives(&documents)?;
    Ok(documents)
}
