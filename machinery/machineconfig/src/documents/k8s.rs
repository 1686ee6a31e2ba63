//! Kubernetes kinds: `KubeClusterConfig`, `KubeNetworkConfig`.

use super::document_kind;

document_kind! {
    /// `KubeClusterConfig`: cluster name and control plane endpoint.
    pub struct KubeClusterConfig = "KubeClusterConfig" {
        /// Cluster name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cluster_name: Option<String>,
        /// Control plane endpoint URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint: Option<String>,
    }
}

document_kind! {
    /// `KubeNetworkConfig`: DNS domain and pod/service networks.
    pub struct KubeNetworkConfig = "KubeNetworkConfig" {
        /// Kubernetes DNS domain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dns_domain: Option<String>,
        /// Pod CIDRs.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub pod_subnets: Vec<String>,
        /// Service CIDRs.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub service_subnets: Vec<String>,
        /// Per-node pod CIDR size for IPv4.
        #[serde(rename = "nodeCIDRMaskSizeIPv4", default, skip_serializing_if = "Option::is_none")]
        pub node_cidr_mask_size_ipv4: Option<u8>,
        /// Per-node pod CIDR size for IPv6.
        #[serde(rename = "nodeCIDRMaskSizeIPv6", default, skip_serializing_if = "Option::is_none")]
        pub node_cidr_mask_size_ipv6: Option<u8>,
    }
}
