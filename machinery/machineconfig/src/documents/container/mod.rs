//! `ContainerConfig`: a container run by the node itself, outside Kubernetes. The types are
//! here, the checks in [`checks`].

mod checks;

use serde::{Deserialize, Serialize};

use super::document_kind;

pub(crate) use checks::check_across;

document_kind! {
    /// `ContainerConfig`: a container run by the node.
    pub struct ContainerConfig = "ContainerConfig", named {
        /// Image reference.
        #[serde(default)]
        pub image: String,
        /// Entrypoint, replacing the image's.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub entrypoint: Vec<String>,
        /// Arguments.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub args: Vec<String>,
        /// Working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub working_dir: Option<String>,
        /// User and group to run as.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub run_as: Option<ContainerRunAs>,
        /// Environment, `KEY=value` entries.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub environment: Vec<String>,
        /// Mounts.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub mounts: Vec<ContainerMount>,
        /// Security profile and capabilities.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub security: Option<ContainerSecurity>,
        /// Network mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub network: Option<ContainerNetwork>,
        /// Resource limits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ContainerResources>,
        /// What must be ready before the container starts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub depends_on: Option<ContainerDependsOn>,
    }
}

/// `ContainerConfig.runAs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerRunAs {
    /// User ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<i32>,
    /// Group ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<i32>,
}

/// `ContainerConfig.mounts[]`: exactly one of the three sources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerMount {
    /// A user volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_volume: Option<UserVolumeMount>,
    /// A tmpfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsMount>,
    /// A host directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathMount>,
}

/// `ContainerConfig.mounts[].userVolume`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserVolumeMount {
    /// The user volume's name.
    #[serde(default)]
    pub name: String,
    /// Absolute path in the container.
    #[serde(default)]
    pub destination: String,
    /// Mount options.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// `ContainerConfig.mounts[].tmpfs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TmpfsMount {
    /// Absolute path in the container.
    #[serde(default)]
    pub destination: String,
    /// Size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Mount options.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// `ContainerConfig.mounts[].hostPath`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostPathMount {
    /// Absolute path on the host.
    #[serde(default)]
    pub source: String,
    /// Absolute path in the container.
    #[serde(default)]
    pub destination: String,
    /// Mount options.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// A container's security profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityProfile {
    /// Few capabilities, read-only root (the default).
    Restricted,
    /// Every capability.
    Privileged,
}

/// `ContainerConfig.security`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerSecurity {
    /// Security profile (`restricted` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<SecurityProfile>,
    /// Capabilities added to or dropped from the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<ContainerCapabilities>,
}

/// `ContainerConfig.security.capabilities`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerCapabilities {
    /// Capabilities to add (`NET_ADMIN`, no `CAP_` prefix).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub add: Vec<String>,
    /// Capabilities to drop (`ALL` allowed).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub drop: Vec<String>,
}

/// A container's network mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerNetworkMode {
    /// No network (the default).
    None,
    /// The host's network namespace.
    Host,
}

/// `ContainerConfig.network`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerNetwork {
    /// Network mode (`none` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ContainerNetworkMode>,
}

/// `ContainerConfig.resources`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerResources {
    /// Limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ContainerResourceLimits>,
}

/// `ContainerConfig.resources.limits`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerResourceLimits {
    /// CPU limit in millicores (`1500m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory limit (`512MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// `ContainerConfig.dependsOn`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerDependsOn {
    /// Paths that must exist.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub paths: Vec<String>,
    /// Network conditions: `addresses`, `connectivity`, `hostname`, `etcfiles`.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub networks: Vec<String>,
    /// Wait for time sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<bool>,
    /// Other containers that must be running.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub containers: Vec<String>,
}
