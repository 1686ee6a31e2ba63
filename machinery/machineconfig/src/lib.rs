//! The Talos machine configuration: the classic v1alpha1 document, a handful of the newer
//! multi-document kinds, strict decoding, writing back, validation, and patches.
//!
//! A configuration is a YAML stream of documents ([`Config`]). The document without `kind` that
//! has any of `version`, `machine`, `cluster`, `debug`, `persist` is the v1alpha1 document
//! ([`v1alpha1::V1Alpha1Config`], the layout `talosctl gen config --talos-version v1.13`
//! writes). Other documents carry `apiVersion: v1alpha1` and `kind`; the kinds in
//! [`documents`] are decoded, the other kinds upstream registers are rejected as not supported.
//!
//! Decoding is strict: an unknown key, a value of the wrong type or malformed YAML is a
//! [`ConfigError::Decode`] naming the document, the line in the input and the YAML path.
//! [`Config::validate`] applies upstream's validation rules and reports every problem at once.
//!
//! Limits: only the multi-document kinds listed in [`documents::Document`] are implemented; `$patch` markers are
//! only understood by [`patch`].

mod config;
mod decode;
pub mod documents;
mod duration;
mod error;
mod expansion;
pub mod generate;
mod machine_type;
pub mod patch;
pub mod v1alpha1;
mod validate;

pub use config::Config;
pub use duration::{GoDuration, format_go_duration, parse_go_duration};
pub use error::ConfigError;
pub use machine_type::{MachineType, RuntimeMode};
pub use validate::ValidationIssue;
