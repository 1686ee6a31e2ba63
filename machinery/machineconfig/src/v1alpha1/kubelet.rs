//! `machine.kubelet`.

use serde::{Deserialize, Serialize};

use super::ExtraArgs;

/// `machine.kubelet`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletConfig {
    /// kubelet image reference; the tag is the Kubernetes version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Cluster DNS server addresses.
    #[serde(
        rename = "clusterDNS",
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_dns: Vec<String>,
    /// Extra kubelet flags.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "ExtraArgs::is_empty"
    )]
    pub extra_args: ExtraArgs,
    /// Extra bind mounts into the kubelet container.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_mounts: Vec<ExtraMount>,
    /// Raw `KubeletConfiguration` fields merged over the generated ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_config: Option<serde_norway::Value>,
    /// Raw `CredentialProviderConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_provider_config: Option<serde_norway::Value>,
    /// Use the container runtime's default seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_runtime_seccomp_profile_enabled: Option<bool>,
    /// Register the node with its FQDN.
    #[serde(
        rename = "registerWithFQDN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub register_with_fqdn: Option<bool>,
    /// Which addresses the kubelet picks as the node IP.
    #[serde(rename = "nodeIP", default, skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<KubeletNodeIp>,
    /// Do not register the node with the API server (run standalone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_node_registration: Option<bool>,
    /// Take static pods only from the Talos API, not from the manifests directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_manifests_directory: Option<bool>,
}

/// `machine.kubelet.extraMounts[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtraMount {
    /// Path inside the kubelet container.
    #[serde(default)]
    pub destination: String,
    /// Mount type (`bind`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub mount_type: Option<String>,
    /// Host path.
    #[serde(default)]
    pub source: String,
    /// Mount options (`rbind`, `rshared`, `rw`, …).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    /// User namespace UID mappings.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uid_mappings: Vec<IdMapping>,
    /// User namespace GID mappings.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gid_mappings: Vec<IdMapping>,
}

/// A user-namespace ID range mapping.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMapping {
    /// First ID inside the container.
    #[serde(rename = "containerID", default)]
    pub container_id: u32,
    /// First ID on the host.
    #[serde(rename = "hostID", default)]
    pub host_id: u32,
    /// Length of the range.
    #[serde(default)]
    pub size: u32,
}

/// `machine.kubelet.nodeIP`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletNodeIp {
    /// CIDRs (or IPs) to pick the node IP from; a leading `!` excludes.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub valid_subnets: Vec<String>,
}
