//! `machine.features`.

use serde::{Deserialize, Serialize};

/// `machine.features`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineFeatures {
    /// Role-based access control for the Talos API (effectively always on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<bool>,
    /// Derive a stable default hostname from the machine identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_hostname: Option<bool>,
    /// Talos API access from Kubernetes pods (control plane only).
    #[serde(
        rename = "kubernetesTalosAPIAccess",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_talos_api_access: Option<KubernetesTalosApiAccess>,
    /// apid checks the client certificate's extended key usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apid_check_ext_key_usage: Option<bool>,
    /// XFS project quotas on EPHEMERAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quota_support: Option<bool>,
    /// The node-local API server load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_prism: Option<KubePrism>,
    /// The host DNS caching resolver.
    #[serde(rename = "hostDNS", default, skip_serializing_if = "Option::is_none")]
    pub host_dns: Option<HostDns>,
    /// The image cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_cache: Option<ImageCache>,
    /// `v1` or `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_address_sort_algorithm: Option<String>,
}

/// `machine.features.kubernetesTalosAPIAccess`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesTalosApiAccess {
    /// Turns the feature on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Talos roles pods may get (`os:reader`, …).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_roles: Vec<String>,
    /// Namespaces whose pods may ask for access.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_kubernetes_namespaces: Vec<String>,
}

/// `machine.features.kubePrism`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubePrism {
    /// Turns KubePrism on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Local port (default 7445).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// `machine.features.hostDNS` (also the `hostDNS` block of `ResolverConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostDns {
    /// Turns the host DNS resolver on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// CoreDNS forwards to the host resolver (requires `enabled`).
    #[serde(
        rename = "forwardKubeDNSToHost",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_kube_dns_to_host: Option<bool>,
    /// Resolve cluster member hostnames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_member_names: Option<bool>,
}

/// `machine.features.imageCache`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageCache {
    /// Use the local image cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_enabled: Option<bool>,
}
