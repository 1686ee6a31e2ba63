//! What the Kubernetes pieces read from a machine config, with upstream's defaults filled in,
//! and what they need to know about the node itself.

use std::net::IpAddr;

use ipnet::IpNet;
use machineconfig::Config;
use machineconfig::generate::{DEFAULT_DNS_DOMAIN, DEFAULT_KUBERNETES_VERSION};
use machineconfig::v1alpha1::{ClusterConfig, MachineConfig};
use url::Url;

use crate::KubernetesError;

/// Port kube-apiserver listens on when `cluster.controlPlane.localAPIServerPort` is not set.
pub const DEFAULT_LOCAL_API_SERVER_PORT: u16 = 6443;
/// Pod CIDR used when `cluster.network.podSubnets` is empty.
pub const DEFAULT_POD_SUBNET: &str = "10.244.0.0/16";
/// Service CIDR used when `cluster.network.serviceSubnets` is empty.
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";

/// The node the pieces are generated for: what upstream takes from the network status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's short hostname.
    pub hostname: String,
    /// The DNS domain, if any (the FQDN is `hostname.domain`).
    pub domainname: Option<String>,
    /// The node's addresses (without loopback).
    pub addresses: Vec<IpAddr>,
}

impl NodeInfo {
    /// `hostname.domain`, or the hostname when there is no domain.
    pub fn fqdn(&self) -> String {
        match self.domainname.as_deref() {
            Some(domain) if !domain.is_empty() => format!("{}.{domain}", self.hostname),
            _ => self.hostname.clone(),
        }
    }
}

/// The v1alpha1 `machine` and `cluster` sections of a config.
pub(crate) fn sections(
    config: &Config,
) -> Result<(&MachineConfig, &ClusterConfig), KubernetesError> {
    let v1alpha1 = config.v1alpha1.as_ref().ok_or(KubernetesError::Missing {
        key: "v1alpha1 document",
    })?;
    let machine = v1alpha1
        .machine
        .as_ref()
        .ok_or(KubernetesError::Missing { key: "machine" })?;
    let cluster = v1alpha1
        .cluster
        .as_ref()
        .ok_or(KubernetesError::Missing { key: "cluster" })?;
    Ok((machine, cluster))
}

/// `cluster.clusterName`.
pub(crate) fn cluster_name(cluster: &ClusterConfig) -> Result<&str, KubernetesError> {
    cluster
        .cluster_name
        .as_deref()
        .filter(|name| !name.is_empty())
        .ok_or(KubernetesError::Missing {
            key: "cluster.clusterName",
        })
}

/// `cluster.controlPlane.endpoint`, parsed.
pub(crate) fn endpoint(cluster: &ClusterConfig) -> Result<Url, KubernetesError> {
    let text = cluster
        .control_plane
        .as_ref()
        .map(|cp| cp.endpoint.as_str())
        .filter(|e| !e.is_empty())
        .ok_or(KubernetesError::Missing {
            key: "cluster.controlPlane.endpoint",
        })?;
    let invalid = |reason: String| KubernetesError::InvalidValue {
        key: "cluster.controlPlane.endpoint",
        value: text.to_string(),
        reason,
    };
    let url = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    Ok(url)
}

/// The endpoint's host without IPv6 brackets.
pub(crate) fn endpoint_host(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => String::new(),
    }
}

/// `cluster.controlPlane.localAPIServerPort`, default 6443.
pub(crate) fn local_api_server_port(cluster: &ClusterConfig) -> u16 {
    cluster
        .control_plane
        .as_ref()
        .and_then(|cp| cp.local_api_server_port)
        .unwrap_or(DEFAULT_LOCAL_API_SERVER_PORT)
}

/// `cluster.network.dnsDomain`, default `cluster.local`.
pub(crate) fn dns_domain(cluster: &ClusterConfig) -> &str {
    cluster
        .network
        .as_ref()
        .and_then(|n| n.dns_domain.as_deref())
        .filter(|d| !d.is_empty())
        .unwrap_or(DEFAULT_DNS_DOMAIN)
}

fn subnets(
    configured: Option<&Vec<String>>,
    default: &str,
    key: &'static str,
) -> Result<Vec<IpNet>, KubernetesError> {
    let texts: Vec<&str> = match configured {
        Some(list) if !list.is_empty() => list.iter().map(String::as_str).collect(),
        _ => vec![default],
    };
    texts
        .into_iter()
        .map(|text| {
            text.parse::<IpNet>()
                .map_err(|e| KubernetesError::InvalidValue {
                    key,
                    value: text.to_string(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// `cluster.network.serviceSubnets`, default `10.96.0.0/12`.
pub(crate) fn service_subnets(cluster: &ClusterConfig) -> Result<Vec<IpNet>, KubernetesError> {
    subnets(
        cluster.network.as_ref().map(|n| &n.service_subnets),
        DEFAULT_SERVICE_SUBNET,
        "cluster.network.serviceSubnets",
    )
}

/// `cluster.network.podSubnets`, default `10.244.0.0/16`.
pub(crate) fn pod_subnets(cluster: &ClusterConfig) -> Result<Vec<IpNet>, KubernetesError> {
    subnets(
        cluster.network.as_ref().map(|n| &n.pod_subnets),
        DEFAULT_POD_SUBNET,
        "cluster.network.podSubnets",
    )
}

/// The address `offset` places after the network address of `net` (`10.96.0.0/12`, 1 →
/// `10.96.0.1`); `None` if the subnet is too small.
pub(crate) fn nth_address(net: &IpNet, offset: u32) -> Option<IpAddr> {
    let in_range = |ip: IpAddr| net.contains(&ip).then_some(ip);
    match net.network() {
        IpAddr::V4(base) => u32::from(base)
            .checked_add(offset)
            .map(|n| IpAddr::V4(n.into()))
            .and_then(in_range),
        IpAddr::V6(base) => u128::from(base)
            .checked_add(u128::from(offset))
            .map(|n| IpAddr::V6(n.into()))
            .and_then(in_range),
    }
}

/// The kube-apiserver service IPs: the first address of each service CIDR.
pub(crate) fn api_server_ips(cluster: &ClusterConfig) -> Result<Vec<IpAddr>, KubernetesError> {
    Ok(service_subnets(cluster)?
        .iter()
        .filter_map(|net| nth_address(net, 1))
        .collect())
}

/// An image reference: the configured one, else `repository:v<default Kubernetes version>`.
pub(crate) fn image(configured: Option<&String>, repository: &str) -> String {
    configured
        .filter(|i| !i.is_empty())
        .cloned()
        .unwrap_or_else(|| format!("{repository}:v{DEFAULT_KUBERNETES_VERSION}"))
}

/// The Kubernetes version in an image tag (`registry.k8s.io/kube-apiserver:v1.35.0` → `1.35.0`),
/// `None` when the tag is not a version.
pub(crate) fn version_from_image(image: &str) -> Option<(u32, u32, String)> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let tag = without_digest.rsplit_once(':').map(|(_, tag)| tag)?;
    if tag.contains('/') {
        return None;
    }
    let version = tag.trim_start_matches('v');
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor, version.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_address_counts_from_the_network_address() {
        let net: IpNet = "10.96.0.0/12".parse().unwrap();
        assert_eq!(nth_address(&net, 1), Some("10.96.0.1".parse().unwrap()));
        assert_eq!(nth_address(&net, 10), Some("10.96.0.10".parse().unwrap()));
        let v6: IpNet = "fd00:10:96::/112".parse().unwrap();
        assert_eq!(nth_address(&v6, 1), Some("fd00:10:96::1".parse().unwrap()));
        let tiny: IpNet = "10.0.0.0/31".parse().unwrap();
        assert_eq!(nth_address(&tiny, 10), None);
    }

    #[test]
    fn versions_come_from_image_tags() {
        assert_eq!(
            version_from_image("registry.k8s.io/kube-apiserver:v1.35.0"),
            Some((1, 35, "1.35.0".into()))
        );
        assert_eq!(
            version_from_image("localhost:5000/kube-apiserver:v1.29.3@sha256:abc"),
            Some((1, 29, "1.29.3".into()))
        );
        assert_eq!(version_from_image("localhost:5000/kube-apiserver"), None);
        assert_eq!(version_from_image("kube-apiserver:latest"), None);
    }
}
