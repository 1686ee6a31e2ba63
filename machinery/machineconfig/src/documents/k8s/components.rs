//! Kubernetes components Talos runs or deploys: `KubeAPIServerConfig`,
//! `KubeControllerManagerConfig`, `KubeSchedulerConfig`, `KubeProxyConfig`,
//! `KubeCoreDNSConfig`, `KubeFlannelCNIConfig`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_norway::Mapping;

use super::{check_image, check_resources, conflict, v1alpha1_cluster, v1alpha1_machine};
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::{ExtraArgs, ResourcesConfig, V1Alpha1Config};
use crate::validate::Findings;

/// kube-apiserver flags that other documents configure: flag prefix and the kind to use.
const API_SERVER_DENIED_ARGS: &[(&str, &str)] = &[
    ("anonymous-auth", "KubeAuthenticationConfig"),
    ("authentication-config", "KubeAuthenticationConfig"),
    ("authorization-config", "KubeAuthorizerConfig"),
    ("authorization-mode", "KubeAuthorizerConfig"),
    ("authorization-webhook-", "KubeAuthorizerConfig"),
    ("oidc-", "KubeAuthenticationConfig"),
];

document_kind! {
    /// `KubeAPIServerConfig`: the kube-apiserver static pod.
    pub struct KubeApiServerConfig = "KubeAPIServerConfig" {
        /// Image; the tag is the Kubernetes version (required).
        #[serde(default)]
        pub image: String,
        /// Extra flags (authentication and authorization flags belong to their own kinds).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "ExtraArgs::is_empty")]
        pub extra_args: ExtraArgs,
        /// Environment variables.
        #[serde(default, deserialize_with = "crate::v1alpha1::string_map::deserialize", skip_serializing_if = "BTreeMap::is_empty")]
        pub env: BTreeMap<String, String>,
        /// Requests and limits (`cpu`, `memory`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ResourcesConfig>,
        /// Port the API server listens on (default 6443).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub api_port: Option<u16>,
        /// Extra subject alternative names for the API server certificate.
        #[serde(rename = "certExtraSANs", default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub cert_extra_sans: Vec<String>,
        /// Startup probes on the static pod (default on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub startup_probes: Option<bool>,
    }
}

document_kind! {
    /// `KubeControllerManagerConfig`: the kube-controller-manager static pod.
    pub struct KubeControllerManagerConfig = "KubeControllerManagerConfig" {
        /// Run the controller manager (default on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enabled: Option<bool>,
        /// Image; the tag is the Kubernetes version (required when enabled).
        #[serde(default)]
        pub image: String,
        /// Extra flags.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "ExtraArgs::is_empty")]
        pub extra_args: ExtraArgs,
        /// Environment variables.
        #[serde(default, deserialize_with = "crate::v1alpha1::string_map::deserialize", skip_serializing_if = "BTreeMap::is_empty")]
        pub env: BTreeMap<String, String>,
        /// Requests and limits (`cpu`, `memory`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ResourcesConfig>,
    }
}

document_kind! {
    /// `KubeSchedulerConfig`: the kube-scheduler static pod.
    pub struct KubeSchedulerConfig = "KubeSchedulerConfig" {
        /// Run the scheduler (default on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enabled: Option<bool>,
        /// Image; the tag is the Kubernetes version (required when enabled).
        #[serde(default)]
        pub image: String,
        /// `KubeSchedulerConfiguration` fields.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub config: Mapping,
        /// Extra flags.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "ExtraArgs::is_empty")]
        pub extra_args: ExtraArgs,
        /// Environment variables.
        #[serde(default, deserialize_with = "crate::v1alpha1::string_map::deserialize", skip_serializing_if = "BTreeMap::is_empty")]
        pub env: BTreeMap<String, String>,
        /// Requests and limits (`cpu`, `memory`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ResourcesConfig>,
    }
}

/// How kube-proxy programs service rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// nftables (recommended).
    Nftables,
    /// iptables (discouraged).
    Iptables,
    /// IPVS (discouraged).
    Ipvs,
}

document_kind! {
    /// `KubeProxyConfig`: the kube-proxy DaemonSet.
    pub struct KubeProxyConfig = "KubeProxyConfig" {
        /// Deploy kube-proxy (default on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enabled: Option<bool>,
        /// Image; the tag is the Kubernetes version (required when enabled).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<String>,
        /// Proxy mode (default nftables).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mode: Option<ProxyMode>,
        /// `KubeProxyConfiguration` fields.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub config: Mapping,
        /// Extra flags (the configuration is preferred).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "ExtraArgs::is_empty")]
        pub extra_args: ExtraArgs,
        /// Requests and limits (`cpu`, `memory`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ResourcesConfig>,
    }
}

document_kind! {
    /// `KubeCoreDNSConfig`: the CoreDNS deployment.
    pub struct KubeCoreDnsConfig = "KubeCoreDNSConfig" {
        /// Deploy CoreDNS (default on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enabled: Option<bool>,
        /// Image (default: the CoreDNS image of this Talos release).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<String>,
    }
}

document_kind! {
    /// `KubeFlannelCNIConfig`: the Flannel CNI Talos deploys.
    pub struct KubeFlannelCniConfig = "KubeFlannelCNIConfig" {
        /// Flannel backend (`vxlan`, `host-gw`, `wireguard`, …; required).
        #[serde(default)]
        pub backend_type: String,
        /// Backend port (VXLAN/WireGuard).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub backend_port: Option<u16>,
        /// Backend MTU.
        #[serde(rename = "backendMTU", default, skip_serializing_if = "Option::is_none")]
        pub backend_mtu: Option<u32>,
        /// Extra backend settings merged into Flannel's backend configuration.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub backend_extra_config: Mapping,
        /// Requests and limits (`cpu`, `memory`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ResourcesConfig>,
        /// Extra flanneld arguments.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub extra_args: Vec<String>,
        /// Deploy the kube-network-policies controller next to Flannel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub kube_network_policies_enabled: Option<bool>,
    }
}

impl CheckDocument for KubeApiServerConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        check_image(format!("{kind}.image"), &self.image, f);
        for (prefix, use_kind) in API_SERVER_DENIED_ARGS {
            for arg in self.extra_args.keys().filter(|arg| arg.starts_with(prefix)) {
                f.error(
                    format!("{kind}.extraArgs.{arg}"),
                    format!("{arg:?} cannot be set here; use the {use_kind} document"),
                );
            }
        }
        check_resources(&format!("{kind}.resources"), self.resources.as_ref(), f);
        if let Some(cluster) = v1alpha1_cluster(v1alpha1) {
            if cluster.api_server.is_some() {
                conflict(f, kind, "cluster.apiServer");
            }
            let local_port = cluster
                .control_plane
                .as_ref()
                .and_then(|c| c.local_api_server_port);
            if local_port.is_some_and(|port| port != 0) {
                conflict(f, kind, "cluster.controlPlane.localAPIServerPort");
            }
        }
    }
}

impl CheckDocument for KubeControllerManagerConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.enabled != Some(false) {
            check_image(format!("{kind}.image"), &self.image, f);
            check_resources(&format!("{kind}.resources"), self.resources.as_ref(), f);
        }
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.controller_manager.is_some()) {
            conflict(f, kind, "cluster.controllerManager");
        }
        let control_plane = v1alpha1_machine(v1alpha1).and_then(|m| m.control_plane.as_ref());
        if control_plane.is_some_and(|c| c.controller_manager.is_some()) {
            conflict(f, kind, "machine.controlPlane.controllerManager");
        }
    }
}

impl CheckDocument for KubeSchedulerConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.enabled != Some(false) {
            check_image(format!("{kind}.image"), &self.image, f);
            check_resources(&format!("{kind}.resources"), self.resources.as_ref(), f);
        }
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.scheduler.is_some()) {
            conflict(f, kind, "cluster.scheduler");
        }
        let control_plane = v1alpha1_machine(v1alpha1).and_then(|m| m.control_plane.as_ref());
        if control_plane.is_some_and(|c| c.scheduler.is_some()) {
            conflict(f, kind, "machine.controlPlane.scheduler");
        }
    }
}

impl CheckDocument for KubeProxyConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.enabled != Some(false) {
            check_image(
                format!("{kind}.image"),
                self.image.as_deref().unwrap_or_default(),
                f,
            );
            if let Some(mode @ (ProxyMode::Iptables | ProxyMode::Ipvs)) = self.mode {
                let name = if mode == ProxyMode::Iptables {
                    "iptables"
                } else {
                    "ipvs"
                };
                f.warn(
                    format!("{kind}.mode"),
                    format!("proxy mode {name:?} is discouraged; nftables is recommended"),
                );
            }
            if !self.extra_args.is_empty() {
                f.warn(
                    format!("{kind}.extraArgs"),
                    "kube-proxy flags may not take effect; prefer the config field",
                );
            }
            check_resources(&format!("{kind}.resources"), self.resources.as_ref(), f);
        }
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.proxy.is_some()) {
            conflict(f, kind, "cluster.proxy");
        }
    }
}

impl CheckDocument for KubeCoreDnsConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.core_dns.is_some()) {
            conflict(f, Self::KIND, "cluster.coreDNS");
        }
    }
}

impl CheckDocument for KubeFlannelCniConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.backend_type.is_empty() {
            f.error(format!("{kind}.backendType"), "backendType is required");
        }
        check_resources(&format!("{kind}.resources"), self.resources.as_ref(), f);
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.network.is_some()) {
            conflict(f, kind, "cluster.network");
        }
    }
}
