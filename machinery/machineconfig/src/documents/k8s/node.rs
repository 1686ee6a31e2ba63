//! Per-node Kubernetes kinds: `KubeNodeConfig`, `KubeletConfig`, `KubeStaticPodConfig`,
//! `KubeCredentialProviderConfig`, `KubePrismConfig`, `KubeTalosAPIAccessConfig`.

use std::collections::BTreeMap;

use serde_norway::Mapping;

use super::{check_image, conflict, v1alpha1_cluster, v1alpha1_machine};
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::{ExtraArgs, KubeletNodeIp, V1Alpha1Config};
use crate::validate::{Findings, TALOS_ROLES, formats, kubernetes_names};

/// `KubeletConfiguration` fields Talos sets itself; `KubeletConfig.config` may not set them.
const KUBELET_PROTECTED_FIELDS: &[&str] = &[
    "apiVersion",
    "authentication",
    "authorization",
    "cgroupRoot",
    "kind",
    "kubeletCgroups",
    "port",
    "protectKernelDefaults",
    "resolvConf",
    "rotateCertificates",
    "systemCgroups",
    "staticPodPath",
    "seccompDefault",
];

document_kind! {
    /// `KubeNodeConfig`: how the node registers with Kubernetes (labels, annotations, taints,
    /// node IP).
    pub struct KubeNodeConfig = "KubeNodeConfig" {
        /// Run the kubelet standalone, without registering the node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub skip_node_registration: Option<bool>,
        /// Register the node with its FQDN instead of its hostname.
        #[serde(rename = "registerWithFQDN", default, skip_serializing_if = "Option::is_none")]
        pub register_with_fqdn: Option<bool>,
        /// Which addresses may be the node IP.
        #[serde(rename = "nodeIP", default, skip_serializing_if = "Option::is_none")]
        pub node_ip: Option<KubeletNodeIp>,
        /// Node labels.
        #[serde(default, deserialize_with = "crate::v1alpha1::string_map::deserialize", skip_serializing_if = "BTreeMap::is_empty")]
        pub labels: BTreeMap<String, String>,
        /// Node annotations.
        #[serde(default, deserialize_with = "crate::v1alpha1::string_map::deserialize", skip_serializing_if = "BTreeMap::is_empty")]
        pub annotations: BTreeMap<String, String>,
        /// Node taints: key to `value:Effect` (or `Effect`).
        #[serde(default, deserialize_with = "crate::v1alpha1::string_map::deserialize", skip_serializing_if = "BTreeMap::is_empty")]
        pub taints: BTreeMap<String, String>,
    }
}

document_kind! {
    /// `KubeletConfig`: the kubelet's image, arguments and `KubeletConfiguration` overrides.
    pub struct KubeletConfig = "KubeletConfig" {
        /// kubelet image; the tag is the Kubernetes version (required).
        #[serde(default)]
        pub image: String,
        /// `KubeletConfiguration` fields merged over the ones Talos generates.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub config: Mapping,
        /// Extra kubelet flags.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "ExtraArgs::is_empty")]
        pub extra_args: ExtraArgs,
        /// Cluster DNS server addresses.
        #[serde(rename = "clusterDNS", default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub cluster_dns: Vec<String>,
        /// Use the container runtime's default seccomp profile for every pod.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub default_runtime_seccomp_profile_enabled: Option<bool>,
    }
}

document_kind! {
    /// `KubeStaticPodConfig`: a static pod the kubelet runs, one document per pod.
    pub struct KubeStaticPodConfig = "KubeStaticPodConfig", named {
        /// The Pod manifest (required).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub pod: Mapping,
    }
}

document_kind! {
    /// `KubeCredentialProviderConfig`: the kubelet's image credential providers.
    pub struct KubeCredentialProviderConfig = "KubeCredentialProviderConfig" {
        /// The `CredentialProviderConfig` object.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub configuration: Mapping,
    }
}

document_kind! {
    /// `KubePrismConfig`: the node-local load balancer for the Kubernetes API.
    pub struct KubePrismConfig = "KubePrismConfig" {
        /// Local port KubePrism listens on (required, 1-65535; Talos's usual port is 7445).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub port: Option<i64>,
        /// Server name checked in the API server's certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tls_server_name: Option<String>,
    }
}

document_kind! {
    /// `KubeTalosAPIAccessConfig`: which pods may use the Talos API, and with which roles.
    pub struct KubeTalosApiAccessConfig = "KubeTalosAPIAccessConfig" {
        /// Talos roles pods may be granted (`os:reader`, …).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub allowed_roles: Vec<String>,
        /// Namespaces whose pods may be granted access.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub allowed_kubernetes_namespaces: Vec<String>,
    }
}

impl CheckDocument for KubeNodeConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(node_ip) = &self.node_ip {
            for (i, subnet) in node_ip.valid_subnets.iter().enumerate() {
                f.check(
                    format!("{kind}.nodeIP.validSubnets[{i}]"),
                    formats::subnet_filter(subnet),
                );
            }
        }
        for (key, value) in &self.labels {
            let path = format!("{kind}.labels.{key}");
            f.check(&path, kubernetes_names::qualified_name(key));
            f.check(path, kubernetes_names::label_value(value));
        }
        for key in self.annotations.keys() {
            f.check(
                format!("{kind}.annotations.{key}"),
                kubernetes_names::qualified_name(key),
            );
        }
        f.check(
            format!("{kind}.annotations"),
            kubernetes_names::annotations_size(&self.annotations),
        );
        for (key, value) in &self.taints {
            let path = format!("{kind}.taints.{key}");
            f.check(&path, kubernetes_names::qualified_name(key));
            f.check(path, kubernetes_names::taint_value(value));
        }

        if v1alpha1_cluster(v1alpha1)
            .is_some_and(|c| c.allow_scheduling_on_control_planes.is_some())
        {
            conflict(f, kind, "cluster.allowSchedulingOnControlPlanes");
        }
        let Some(machine) = v1alpha1_machine(v1alpha1) else {
            return;
        };
        if let Some(kubelet) = &machine.kubelet {
            if kubelet.skip_node_registration.is_some() {
                conflict(f, kind, "machine.kubelet.skipNodeRegistration");
            }
            if kubelet.register_with_fqdn.is_some() {
                conflict(f, kind, "machine.kubelet.registerWithFQDN");
            }
            if kubelet.node_ip.is_some() {
                conflict(f, kind, "machine.kubelet.nodeIP");
            }
        }
        for (key, map) in [
            ("machine.nodeLabels", &machine.node_labels),
            ("machine.nodeAnnotations", &machine.node_annotations),
            ("machine.nodeTaints", &machine.node_taints),
        ] {
            if !map.is_empty() {
                conflict(f, kind, key);
            }
        }
    }
}

impl CheckDocument for KubeletConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        check_image(format!("{kind}.image"), &self.image, f);
        for field in KUBELET_PROTECTED_FIELDS {
            if self.config.contains_key(*field) {
                f.error(
                    format!("{kind}.config.{field}"),
                    format!("{field:?} is set by Talos and cannot be overridden"),
                );
            }
        }
        for (i, address) in self.cluster_dns.iter().enumerate() {
            f.check(format!("{kind}.clusterDNS[{i}]"), formats::ip(address));
        }
        if v1alpha1_machine(v1alpha1).is_some_and(|m| m.kubelet.is_some()) {
            conflict(f, kind, "machine.kubelet");
        }
    }
}

impl CheckDocument for KubeStaticPodConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = format!("{kind} {:?}", self.name);
        if self.name.is_empty() {
            f.error(format!("{path}.name"), "name is required");
        } else {
            f.check(format!("{path}.name"), formats::dns_name(&self.name));
        }
        if self.pod.is_empty() {
            f.error(format!("{path}.pod"), "the pod manifest is required");
        }
    }
}

impl CheckDocument for KubeCredentialProviderConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        if v1alpha1_machine(v1alpha1).is_some_and(|m| m.kubelet.is_some()) {
            conflict(f, Self::KIND, "machine.kubelet");
        }
    }
}

impl CheckDocument for KubePrismConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        match self.port {
            None => f.error(format!("{kind}.port"), "port is required"),
            Some(port) if !(1..=65535).contains(&port) => f.error(
                format!("{kind}.port"),
                format!("port {port} is out of range (1-65535)"),
            ),
            Some(_) => {}
        }
        let features = v1alpha1_machine(v1alpha1).and_then(|m| m.features.as_ref());
        if features.is_some_and(|features| features.kube_prism.is_some()) {
            conflict(f, kind, "machine.features.kubePrism");
        }
    }
}

impl CheckDocument for KubeTalosApiAccessConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        for (i, role) in self.allowed_roles.iter().enumerate() {
            if !TALOS_ROLES.contains(&role.as_str()) {
                f.error(
                    format!("{kind}.allowedRoles[{i}]"),
                    format!("unknown role {role:?} (valid: {})", TALOS_ROLES.join(", ")),
                );
            }
        }
        let features = v1alpha1_machine(v1alpha1).and_then(|m| m.features.as_ref());
        if features.is_some_and(|features| features.kubernetes_talos_api_access.is_some()) {
            conflict(f, kind, "machine.features.kubernetesTalosAPIAccess");
        }
    }
}
