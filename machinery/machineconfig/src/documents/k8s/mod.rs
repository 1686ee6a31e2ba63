//! Kubernetes kinds. This file holds `KubeClusterConfig`, `KubeNetworkConfig` and what the
//! other kinds share; the rest live in submodules by topic:
//!
//! - `node`: `KubeNodeConfig`, `KubeletConfig`, `KubeStaticPodConfig`,
//!   `KubeCredentialProviderConfig`, `KubePrismConfig`, `KubeTalosAPIAccessConfig`;
//! - `components`: `KubeAPIServerConfig`, `KubeControllerManagerConfig`,
//!   `KubeSchedulerConfig`, `KubeProxyConfig`, `KubeCoreDNSConfig`, `KubeFlannelCNIConfig`;
//! - `secrets`: `KubeAPIServerCAConfig`, `KubeAggregatorCAConfig`,
//!   `KubeServiceAccountConfig`, `KubeEtcdEncryptionConfig` (upstream redacts their keys and
//!   secrets when printing; talos-rs has no redaction yet);
//! - `access`: `KubeAdmissionControlConfig`, `KubeAuditPolicyConfig`,
//!   `KubeAuthenticationConfig`, `KubeAuthorizerConfig`;
//! - `manifests`: `KubeExternalManifestConfig`, `KubeInlineManifestConfig`.
//!
//! Embedded Kubernetes objects (a kubelet configuration, a pod, an audit policy, …) are kept as
//! written, as YAML mappings.

mod access;
mod components;
mod manifests;
mod node;
mod secrets;

use ipnet::IpNet;
use serde_norway::Value;

use super::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::{ClusterConfig, MachineConfig, ResourcesConfig, V1Alpha1Config};
use crate::validate::{Findings, formats};

pub use access::{
    AuthorizerType, KubeAdmissionControlConfig, KubeAuditPolicyConfig, KubeAuthenticationConfig,
    KubeAuthorizerConfig,
};
pub use components::{
    KubeApiServerConfig, KubeControllerManagerConfig, KubeCoreDnsConfig, KubeFlannelCniConfig,
    KubeProxyConfig, KubeSchedulerConfig, ProxyMode,
};
pub use manifests::{KubeExternalManifestConfig, KubeInlineManifestConfig};
pub use node::{
    KubeCredentialProviderConfig, KubeNodeConfig, KubePrismConfig, KubeStaticPodConfig,
    KubeTalosApiAccessConfig, KubeletConfig,
};
pub use secrets::{
    CertificateAndKey, KubeAggregatorCaConfig, KubeApiServerCaConfig, KubeEtcdEncryptionConfig,
    KubeServiceAccountConfig, ServiceAccountAccepted, ServiceAccountIssuer,
};

/// Per-node pod CIDR size for IPv4 when `nodeCIDRMaskSizeIPv4` is not given.
const DEFAULT_NODE_MASK_IPV4: u8 = 24;
/// Per-node pod CIDR size for IPv6 when `nodeCIDRMaskSizeIPv6` is not given.
const DEFAULT_NODE_MASK_IPV6: u8 = 64;
/// A pod subnet may be at most this many bits larger than the per-node CIDR.
const POD_SUBNET_NODE_MASK_MAX_DIFF: u8 = 16;
/// A service subnet has at most this many host bits.
const MAX_SERVICE_SUBNET_HOST_BITS: u8 = 20;
/// Any pod or service subnet has at least this many host bits.
const MIN_SUBNET_HOST_BITS: u8 = 4;

document_kind! {
    /// `KubeClusterConfig`: cluster name and control plane endpoint.
    pub struct KubeClusterConfig = "KubeClusterConfig" {
        /// Cluster name (required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cluster_name: Option<String>,
        /// Control plane endpoint URL (required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint: Option<String>,
    }
}

document_kind! {
    /// `KubeNetworkConfig`: DNS domain and pod/service networks.
    pub struct KubeNetworkConfig = "KubeNetworkConfig" {
        /// Kubernetes DNS domain (default `cluster.local`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dns_domain: Option<String>,
        /// Pod CIDRs: one, or one IPv4 and one IPv6 for dual-stack.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub pod_subnets: Vec<String>,
        /// Service CIDRs: as many as pod CIDRs, of the same families.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub service_subnets: Vec<String>,
        /// Per-node pod CIDR size for IPv4 (default 24).
        #[serde(rename = "nodeCIDRMaskSizeIPv4", default, skip_serializing_if = "Option::is_none")]
        pub node_cidr_mask_size_ipv4: Option<u8>,
        /// Per-node pod CIDR size for IPv6 (default 64).
        #[serde(rename = "nodeCIDRMaskSizeIPv6", default, skip_serializing_if = "Option::is_none")]
        pub node_cidr_mask_size_ipv6: Option<u8>,
    }
}

impl CheckDocument for KubeClusterConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.cluster_name.as_deref().is_none_or(str::is_empty) {
            f.error(format!("{kind}.clusterName"), "clusterName is required");
        }
        match self.endpoint.as_deref() {
            None | Some("") => f.error(format!("{kind}.endpoint"), "endpoint is required"),
            Some(endpoint) => f.check(format!("{kind}.endpoint"), formats::url(endpoint)),
        }
        let cluster = v1alpha1_cluster(v1alpha1);
        if cluster.is_some_and(|c| c.cluster_name.as_deref().is_some_and(|n| !n.is_empty())) {
            conflict(f, kind, "cluster.clusterName");
        }
        let endpoint = cluster.and_then(|c| c.control_plane.as_ref());
        if endpoint.is_some_and(|cp| !cp.endpoint.is_empty()) {
            conflict(f, kind, "cluster.controlPlane.endpoint");
        }
    }
}

impl CheckDocument for KubeNetworkConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(domain) = &self.dns_domain {
            f.check(format!("{kind}.dnsDomain"), formats::dns_name(domain));
        }
        let mask_v4 = self.node_cidr_mask_size_ipv4.unwrap_or(0);
        let mask_v4_ok = mask_v4 <= 32;
        if !mask_v4_ok {
            f.error(
                format!("{kind}.nodeCIDRMaskSizeIPv4"),
                format!("must be at most 32 (unset picks the default, {DEFAULT_NODE_MASK_IPV4})"),
            );
        }
        let mask_v6 = self.node_cidr_mask_size_ipv6.unwrap_or(0);
        let mask_v6_ok = mask_v6 <= 128;
        if !mask_v6_ok {
            f.error(
                format!("{kind}.nodeCIDRMaskSizeIPv6"),
                format!("must be at most 128 (unset picks the default, {DEFAULT_NODE_MASK_IPV6})"),
            );
        }
        let node_mask = |net: &IpNet| match net {
            IpNet::V4(_) => mask_v4_ok.then(|| nonzero_or(mask_v4, DEFAULT_NODE_MASK_IPV4)),
            IpNet::V6(_) => mask_v6_ok.then(|| nonzero_or(mask_v6, DEFAULT_NODE_MASK_IPV6)),
        };
        check_subnets(
            &format!("{kind}.podSubnets"),
            &self.pod_subnets,
            |net| pod_subnet_size(net, node_mask(net)),
            f,
        );
        check_subnets(
            &format!("{kind}.serviceSubnets"),
            &self.service_subnets,
            service_subnet_size,
            f,
        );
        if self.pod_subnets.len() != self.service_subnets.len() {
            f.error(kind, "there must be as many service subnets as pod subnets");
        }
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.network.is_some()) {
            conflict(f, kind, "cluster.network");
        }
    }
}

fn nonzero_or(value: u8, default: u8) -> u8 {
    if value == 0 { default } else { value }
}

/// One or two subnets (two: one of each family), each a network address with room for hosts
/// and of a size `size` accepts.
fn check_subnets(
    path: &str,
    subnets: &[String],
    size: impl Fn(&IpNet) -> Result<(), String>,
    f: &mut Findings,
) {
    match subnets.len() {
        0 => f.error(path, "at least one subnet is required"),
        1 | 2 => {}
        _ => f.error(
            path,
            "at most two subnets (one IPv4 and one IPv6) may be given",
        ),
    }
    let mut families = Vec::new();
    for (i, subnet) in subnets.iter().enumerate() {
        let item = format!("{path}[{i}]");
        let net = match formats::cidr(subnet) {
            Ok(net) => net,
            Err(err) => {
                f.error(item, err);
                continue;
            }
        };
        if net.trunc() != net {
            f.error(
                &item,
                format!("{subnet:?} has host bits set; write the network address"),
            );
            continue;
        }
        if net.max_prefix_len() - net.prefix_len() < MIN_SUBNET_HOST_BITS {
            f.error(
                &item,
                format!(
                    "{subnet:?} is too small: it needs at least {MIN_SUBNET_HOST_BITS} host bits"
                ),
            );
            continue;
        }
        f.check(&item, size(&net));
        let ipv4 = matches!(net, IpNet::V4(_));
        if families.contains(&ipv4) {
            f.error(item, "only one IPv4 and one IPv6 subnet may be given");
        }
        families.push(ipv4);
    }
}

/// A pod subnet must hold at least one per-node CIDR and at most 2^16 of them; `node_mask` is
/// `None` when the mask size itself is invalid (reported elsewhere).
fn pod_subnet_size(net: &IpNet, node_mask: Option<u8>) -> Result<(), String> {
    let Some(node_mask) = node_mask else {
        return Ok(());
    };
    if net.prefix_len() > node_mask {
        return Err(format!(
            "{net} is smaller than the per-node pod CIDR /{node_mask}"
        ));
    }
    if node_mask - net.prefix_len() > POD_SUBNET_NODE_MASK_MAX_DIFF {
        return Err(format!(
            "{net} is too large for the per-node pod CIDR /{node_mask}: they may differ by at most {POD_SUBNET_NODE_MASK_MAX_DIFF} bits"
        ));
    }
    Ok(())
}

/// A service subnet has at most 2^20 addresses.
fn service_subnet_size(net: &IpNet) -> Result<(), String> {
    let host_bits = net.max_prefix_len() - net.prefix_len();
    if host_bits > MAX_SERVICE_SUBNET_HOST_BITS {
        return Err(format!(
            "{net} is too large: a service subnet may have at most {MAX_SERVICE_SUBNET_HOST_BITS} host bits (/{} or smaller)",
            net.max_prefix_len() - MAX_SERVICE_SUBNET_HOST_BITS
        ));
    }
    Ok(())
}

/// The v1alpha1 document's `cluster` section.
fn v1alpha1_cluster(v1alpha1: Option<&V1Alpha1Config>) -> Option<&ClusterConfig> {
    v1alpha1.and_then(|c| c.cluster.as_ref())
}

/// The v1alpha1 document's `machine` section.
fn v1alpha1_machine(v1alpha1: Option<&V1Alpha1Config>) -> Option<&MachineConfig> {
    v1alpha1.and_then(|c| c.machine.as_ref())
}

/// Records that `kind` and the v1alpha1 key `v1alpha1_key` configure the same thing.
fn conflict(f: &mut Findings, kind: &str, v1alpha1_key: &str) {
    f.error(
        kind,
        format!(
            "{v1alpha1_key} is already set in the v1alpha1 document; remove it there and keep only the {kind} document"
        ),
    );
}

/// The image of a Kubernetes component: required, tagged with the Kubernetes version.
fn check_image(path: String, image: &str, f: &mut Findings) {
    if image.is_empty() {
        f.error(path, "image is required");
    } else {
        f.check(path, formats::kubernetes_image(image));
    }
}

/// `resources`: `requests` and `limits` are maps with `cpu` and `memory` only.
fn check_resources(path: &str, resources: Option<&ResourcesConfig>, f: &mut Findings) {
    let Some(resources) = resources else {
        return;
    };
    for (section, value) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        let path = format!("{path}.{section}");
        match value {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(fields)) => {
                for key in fields.keys() {
                    match key.as_str() {
                        Some("cpu" | "memory") => {}
                        _ => f.error(
                            &path,
                            format!(
                                "unsupported pod resource {} (only cpu and memory)",
                                render_key(key)
                            ),
                        ),
                    }
                }
            }
            Some(_) => f.error(path, "must be a map of cpu and memory"),
        }
    }
}

/// A mapping key for a message.
fn render_key(key: &Value) -> String {
    match key {
        Value::String(s) => format!("{s:?}"),
        other => serde_norway::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}
