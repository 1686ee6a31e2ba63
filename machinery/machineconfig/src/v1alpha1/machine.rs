//! `machine`: node-specific settings, and its small sub-objects.

use std::collections::BTreeMap;

use pki::{PemCertificate, PemCertificateAndKey};
use serde::{Deserialize, Serialize};

use super::{
    DiskConfig, FileMode, InstallConfig, KubeletConfig, MachineFeatures, NetworkConfig,
    RegistriesConfig, SystemDiskEncryption,
};
use crate::GoDuration;

/// `machine`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineConfig {
    /// `controlplane`, `worker` or legacy `init`/`join`; see [`crate::MachineType`].
    #[serde(rename = "type", default)]
    pub machine_type: String,
    /// The join token for trustd (`abcdef.0123456789abcdef`).
    #[serde(default)]
    pub token: String,
    /// The Talos API issuing CA (workers carry the certificate only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PemCertificateAndKey>,
    /// Extra trusted Talos API CAs (CA rotation).
    #[serde(
        rename = "acceptedCAs",
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub accepted_cas: Vec<PemCertificate>,
    /// Extra subject alternative names for the apid certificate.
    #[serde(
        rename = "certSANs",
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize"
    )]
    pub cert_sans: Vec<String>,
    /// Turns off control plane components on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<MachineControlPlane>,
    /// kubelet settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletConfig>,
    /// Static pods (raw manifests).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pods: Vec<serde_norway::Value>,
    /// Network settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkConfig>,
    /// Extra disks to partition and mount.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub disks: Vec<DiskConfig>,
    /// Installation settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallConfig>,
    /// Files to write (deprecated).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub files: Vec<MachineFile>,
    /// Environment variables for system services.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, String>,
    /// Time synchronisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeConfig>,
    /// Kernel parameters (`net.ipv4.ip_forward: "1"`).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub sysctls: BTreeMap<String, String>,
    /// sysfs values.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub sysfs: BTreeMap<String, String>,
    /// Container image registries: mirrors and per-registry TLS/auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registries: Option<RegistriesConfig>,
    /// STATE and EPHEMERAL partition encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_disk_encryption: Option<SystemDiskEncryption>,
    /// Feature switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<MachineFeatures>,
    /// udev rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udev: Option<UdevConfig>,
    /// Where service logs are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingConfig>,
    /// Kernel modules to load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelConfig>,
    /// Seccomp profiles written for pods to use.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub seccomp_profiles: Vec<SeccompProfile>,
    /// Overrides of the containerd base OCI runtime spec (deprecated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_runtime_spec_overrides: Option<serde_norway::Value>,
    /// Kubernetes node labels.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub node_labels: BTreeMap<String, String>,
    /// Kubernetes node annotations.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub node_annotations: BTreeMap<String, String>,
    /// Kubernetes node taints: key to `value:Effect` or `Effect`.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub node_taints: BTreeMap<String, String>,
}

/// `machine.controlPlane`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineControlPlane {
    /// `controllerManager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_manager: Option<DisabledSwitch>,
    /// `scheduler`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<DisabledSwitch>,
}

/// A block holding only `disabled`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DisabledSwitch {
    /// Turns the component off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `machine.files[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineFile {
    /// File contents.
    #[serde(default)]
    pub content: String,
    /// Permission bits.
    #[serde(default)]
    pub permissions: FileMode,
    /// Absolute path of the file.
    #[serde(default)]
    pub path: String,
    /// `create`, `append` or `overwrite`.
    #[serde(default)]
    pub op: String,
}

/// `machine.time`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeConfig {
    /// Turns time synchronisation off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// NTP servers (default `time.cloudflare.com`).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub servers: Vec<String>,
    /// How long boot waits for time to sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_timeout: Option<GoDuration>,
}

/// `machine.udev`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UdevConfig {
    /// udev rule lines.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub rules: Vec<String>,
}

/// `machine.logging`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoggingConfig {
    /// Log destinations.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub destinations: Vec<LoggingDestination>,
}

/// `machine.logging.destinations[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoggingDestination {
    /// `tcp://host:port` or `udp://host:port`.
    #[serde(default)]
    pub endpoint: String,
    /// Only `json_lines`.
    #[serde(default)]
    pub format: String,
    /// Extra tags added to every message.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub extra_tags: BTreeMap<String, String>,
}

/// `machine.kernel`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KernelConfig {
    /// Modules to load.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub modules: Vec<KernelModule>,
}

/// `machine.kernel.modules[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KernelModule {
    /// Module name.
    #[serde(default)]
    pub name: String,
    /// Module parameters (`key=value`).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub parameters: Vec<String>,
}

/// `machine.seccompProfiles[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeccompProfile {
    /// File name of the profile.
    #[serde(default)]
    pub name: String,
    /// The profile (raw JSON-compatible object).
    #[serde(default)]
    pub value: serde_norway::Value,
}
