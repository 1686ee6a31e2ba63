//! The one error type of this crate.

/// Everything that can go wrong loading, validating or patching a machine configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A document is not valid YAML, has an unknown key or a value of the wrong type.
    /// `document` is 1-based; `line`/`column` are 1-based positions in the whole input;
    /// `path` is the YAML path (`machine.network.interfaces[0].addresses[1]`, empty for the
    /// document root).
    #[error("{}", crate::decode::format_decode_error(*.document, *.line, *.column, .path, .message))]
    Decode {
        document: usize,
        line: Option<usize>,
        column: Option<usize>,
        path: String,
        message: String,
    },

    /// A document is not a YAML mapping.
    #[error("document {document} (line {line}): a config document must be a mapping")]
    NotAMapping { document: usize, line: usize },

    /// A document has neither `kind` nor any v1alpha1 key.
    #[error("document {document} (line {line}): missing kind")]
    MissingKind { document: usize, line: usize },

    /// A document has `kind` but no `apiVersion`.
    #[error("document {document} (line {line}): missing apiVersion for kind {kind:?}")]
    MissingApiVersion {
        document: usize,
        line: usize,
        kind: String,
    },

    /// A document's `apiVersion` is not `v1alpha1`.
    #[error(
        "document {document} (line {line}): unsupported apiVersion {api_version:?} for kind {kind:?} (expected \"v1alpha1\")"
    )]
    UnsupportedApiVersion {
        document: usize,
        line: usize,
        kind: String,
        api_version: String,
    },

    /// A kind nobody knows.
    #[error("document {document} (line {line}): unknown document kind {kind:?}")]
    UnknownKind {
        document: usize,
        line: usize,
        kind: String,
    },

    /// Two documents of the same kind and name (or two v1alpha1 documents).
    #[error("document {document} (line {line}): duplicate document: {}", crate::config::describe_document(.kind, .name.as_deref()))]
    DuplicateDocument {
        document: usize,
        line: usize,
        kind: String,
        name: Option<String>,
    },

    /// Validation found errors; each names the config path and the problem.
    #[error("{}", crate::validate::format_validation_errors(.errors))]
    Invalid { errors: Vec<crate::ValidationIssue> },

    /// The configuration could not be written as YAML.
    #[error("writing the configuration as YAML: {0}")]
    Encode(#[source] serde_norway::Error),

    /// Text that is not a Go duration.
    #[error("invalid duration {value:?}: {reason}")]
    InvalidDuration { value: String, reason: String },

    /// A machine type name that is not `controlplane`, `worker`, `init`, `join` or empty.
    #[error("unknown machine type {value:?}")]
    UnknownMachineType { value: String },

    /// A runtime mode name that is not `metal`, `cloud` or `container`.
    #[error("unknown runtime mode {value:?} (expected metal, cloud or container)")]
    UnknownRuntimeMode { value: String },

    /// A `talosctl gen config` input (endpoint, versions) is not usable.
    #[error("invalid {input} {value:?}: {reason}")]
    InvalidGenerateInput {
        input: &'static str,
        value: String,
        reason: String,
    },

    /// A `@file` patch argument names a file that cannot be read.
    #[error("reading patch file {path}: {source}")]
    PatchFileRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    /// A patch (named by `patch`: a file path or "inline patch N") or the config being patched
    /// (`patch` is "config") is not valid YAML; `line` is 1-based when known.
    #[error("{patch}: invalid YAML: {message}")]
    PatchYaml {
        patch: String,
        line: Option<usize>,
        message: String,
    },

    /// A patch holds no documents and no operations.
    #[error("{patch}: the patch is empty")]
    EmptyPatch { patch: String },

    /// Document `document` (0-based) of a patch or of the config being patched cannot be used.
    #[error("{patch}: document {document}: {reason}")]
    PatchDocument {
        patch: String,
        document: usize,
        reason: String,
    },

    /// JSON patch operation `index` (0-based) is malformed or failed to apply.
    #[error("{patch}: patch operation {index} ({op} {path}): {reason}")]
    PatchOperation {
        patch: String,
        index: usize,
        op: String,
        path: String,
        reason: String,
    },

    /// A JSON patch was applied to a config without a v1alpha1 document.
    #[error("{patch}: JSON patches apply to the v1alpha1 document, and the config has none")]
    JsonPatchWithoutV1Alpha1 { patch: String },

    /// A `$patch` directive survived patching: a delete that matched nothing, or an
    /// unsupported directive.
    #[error("{document}: `$patch: {directive}` at {path} had nothing to apply to")]
    UnresolvedPatchDirective {
        document: String,
        path: String,
        directive: String,
    },

    /// The patched documents could not be written back as YAML.
    #[error("writing the patched config as YAML: {0}")]
    PatchedConfigEmit(#[source] serde_norway::Error),
}
