//! Kubernetes kinds: `KubeClusterConfig`, `KubeNetworkConfig`.

use super::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

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

impl CheckDocument for KubeClusterConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        if let Some(endpoint) = &self.endpoint {
            f.check(format!("{}.endpoint", Self::KIND), formats::url(endpoint));
        }
    }
}

impl CheckDocument for KubeNetworkConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(domain) = &self.dns_domain {
            f.check(format!("{kind}.dnsDomain"), formats::dns_name(domain));
        }
        for (i, subnet) in self.pod_subnets.iter().enumerate() {
            f.check(format!("{kind}.podSubnets[{i}]"), formats::cidr(subnet));
        }
        for (i, subnet) in self.service_subnets.iter().enumerate() {
            f.check(format!("{kind}.serviceSubnets[{i}]"), formats::cidr(subnet));
        }
        if self.node_cidr_mask_size_ipv4.is_some_and(|size| size > 32) {
            f.error(format!("{kind}.nodeCIDRMaskSizeIPv4"), "must be at most 32");
        }
        if self.node_cidr_mask_size_ipv6.is_some_and(|size| size > 128) {
            f.error(
                format!("{kind}.nodeCIDRMaskSizeIPv6"),
                "must be at most 128",
            );
        }
    }
}
