//! The classic v1alpha1 document: `version`, `debug`, `persist`, `machine`, `cluster`, in the
//! layout `talosctl gen config --talos-version v1.13` writes.
//!
//! Every struct rejects unknown keys. Optional keys are `Option`s (or empty collections) and are
//! left out when written, so a config written back contains what was read and nothing more.
//! Certificates and keys are [`pki::PemCertificateAndKey`] and friends (base64 of PEM in YAML).

mod cluster;
mod disk_size;
mod extra_args;
mod features;
mod file_mode;
mod install;
mod kubelet;
mod machine;
mod network;
pub(crate) mod nullable;
mod registries;
mod storage;
pub(crate) mod string_map;

use serde::{Deserialize, Serialize};

pub use cluster::*;
pub use disk_size::{DiskSize, SizeMatcher, parse_byte_size};
pub use extra_args::{ArgValue, ExtraArgs};
pub use features::*;
pub use file_mode::FileMode;
pub use install::*;
pub use kubelet::*;
pub use machine::*;
pub use network::*;
pub use registries::*;
pub use storage::*;

/// The value of the top-level `version` key.
pub const VERSION: &str = "v1alpha1";

/// The v1alpha1 document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct V1Alpha1Config {
    /// Schema version; must be `v1alpha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Stream service logs to the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// Deprecated; must not be `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<bool>,
    /// Node-specific settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineConfig>,
    /// Cluster-wide settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}
