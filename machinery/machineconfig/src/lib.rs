//! The Talos machine configuration: the classic v1alpha1 document, every multi-document kind
//! upstream registers, strict decoding, writing back, validation, and patches.
//!
//! A configuration is a YAML stream of documents ([`Config`]). The document without `kind` that
//! has any of `version`, `machine`, `cluster`, `debug`, `persist` is the v1alpha1 document
//! ([`v1alpha1::V1Alpha1Config`], the layout `talosctl gen config --talos-version v1.13`
//! writes). Other documents carry `apiVersion: v1alpha1` and `kind`; each is decoded into
//! its [`documents`] type; an unknown kind is an error.
//!
//! Decoding is strict: an unknown key, a value of the wrong type or malformed YAML is a
//! [`ConfigError::Decode`] naming the document, the line in the input and the YAML path.
//! [`Config::validate`] applies upstream's validation rules and reports every problem at once.
//!
//! Limits: `$patch` markers are only understood by [`patch`]; CEL expressions (disk selectors,
//! link aliases, OOM triggers) are kept as text and checked for balance only.

pub mod annotate;
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
pub use validate::formats::environment_variable;
