//! `cluster`: cluster-wide settings.

use std::collections::BTreeMap;

use pki::{PemCertificate, PemCertificateAndKey, PemKey};
use serde::{Deserialize, Serialize};

use super::ExtraArgs;
use crate::GoDuration;

/// The discovery service endpoint used when `cluster.discovery.registries.service.endpoint`
/// is not given.
pub const DEFAULT_DISCOVERY_ENDPOINT: &str = "https://discovery.talos.dev/";

/// `cluster`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    /// Cluster identity for discovery (base64 of 32 random bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Shared secret for discovery (base64 of 32 random bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The control plane endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlaneConfig>,
    /// Cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Pod and service networks, DNS domain, CNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ClusterNetworkConfig>,
    /// Kubernetes bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// AES-CBC key for secrets at rest (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aescbc_encryption_secret: Option<String>,
    /// secretbox key for secrets at rest (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secretbox_encryption_secret: Option<String>,
    /// Kubernetes CA (workers carry the certificate only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PemCertificateAndKey>,
    /// Extra trusted Kubernetes CAs.
    #[serde(
        rename = "acceptedCAs",
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub accepted_cas: Vec<PemCertificate>,
    /// Front-proxy (aggregation layer) CA.
    #[serde(
        rename = "aggregatorCA",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aggregator_ca: Option<PemCertificateAndKey>,
    /// Service account signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<PemKey>,
    /// kube-apiserver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<ApiServerConfig>,
    /// kube-controller-manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_manager: Option<ControllerManagerConfig>,
    /// kube-proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    /// kube-scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerConfig>,
    /// Cluster member discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryConfig>,
    /// etcd (control plane only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdConfig>,
    /// CoreDNS.
    #[serde(rename = "coreDNS", default, skip_serializing_if = "Option::is_none")]
    pub core_dns: Option<CoreDnsConfig>,
    /// External cloud provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_cloud_provider: Option<ExternalCloudProviderConfig>,
    /// URLs of manifests applied at bootstrap.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_manifests: Vec<String>,
    /// HTTP headers sent when fetching `extraManifests`.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub extra_manifest_headers: BTreeMap<String, String>,
    /// Manifests given inline.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inline_manifests: Vec<InlineManifest>,
    /// The admin kubeconfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_kubeconfig: Option<AdminKubeconfigConfig>,
    /// Let pods run on control plane nodes (legacy key: `allowSchedulingOnMasters`).
    #[serde(
        alias = "allowSchedulingOnMasters",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_scheduling_on_control_planes: Option<bool>,
}

/// `cluster.controlPlane`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneConfig {
    /// The canonical Kubernetes API URL (`https://host:6443`).
    #[serde(default)]
    pub endpoint: String,
    /// Port the local API server listens on.
    #[serde(
        rename = "localAPIServerPort",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_api_server_port: Option<u16>,
}

/// `cluster.network`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterNetworkConfig {
    /// The CNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<CniConfig>,
    /// Kubernetes DNS domain (`cluster.local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_domain: Option<String>,
    /// Pod CIDRs.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pod_subnets: Vec<String>,
    /// Service CIDRs.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_subnets: Vec<String>,
}

/// `cluster.network.cni`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CniConfig {
    /// `flannel`, `custom` or `none`.
    #[serde(default)]
    pub name: String,
    /// Manifest URLs (custom only).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub urls: Vec<String>,
    /// Flannel options (flannel only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flannel: Option<FlannelConfig>,
}

/// `cluster.network.cni.flannel`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlannelConfig {
    /// Extra flanneld arguments.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_args: Vec<String>,
    /// Deploy kube-network-policies alongside flannel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_network_policies_enabled: Option<bool>,
}

/// A host path mounted into a control plane static pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMount {
    /// Host path.
    #[serde(default)]
    pub host_path: String,
    /// Path in the container.
    #[serde(default)]
    pub mount_path: String,
    /// Mount read-only.
    #[serde(rename = "readonly", default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// Resource requests and limits of a static pod (raw Kubernetes quantities).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourcesConfig {
    /// Requests (`cpu`, `memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<serde_norway::Value>,
    /// Limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<serde_norway::Value>,
}

/// `cluster.apiServer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiServerConfig {
    /// Image reference; the tag is the Kubernetes version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Extra flags.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "ExtraArgs::is_empty"
    )]
    pub extra_args: ExtraArgs,
    /// Extra host mounts.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_volumes: Vec<VolumeMount>,
    /// Environment variables.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, String>,
    /// Extra SANs for the API server certificate.
    #[serde(
        rename = "certSANs",
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cert_sans: Vec<String>,
    /// Leave PodSecurityPolicy out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_pod_security_policy: Option<bool>,
    /// Admission plugin configurations.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub admission_control: Vec<AdmissionPlugin>,
    /// Raw audit `Policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_policy: Option<serde_norway::Value>,
    /// Requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesConfig>,
    /// Authorizers.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub authorization_config: Vec<AuthorizerConfig>,
}

/// `cluster.apiServer.admissionControl[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdmissionPlugin {
    /// Plugin name (`PodSecurity`).
    #[serde(default)]
    pub name: String,
    /// Raw plugin configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<serde_norway::Value>,
}

/// `cluster.apiServer.authorizationConfig[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizerConfig {
    /// `Node`, `RBAC`, `Webhook`, …
    #[serde(rename = "type", default)]
    pub authorizer_type: String,
    /// Authorizer name.
    #[serde(default)]
    pub name: String,
    /// Raw webhook settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<serde_norway::Value>,
}

/// `cluster.controllerManager`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControllerManagerConfig {
    /// Image reference; the tag is the Kubernetes version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Extra flags.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "ExtraArgs::is_empty"
    )]
    pub extra_args: ExtraArgs,
    /// Extra host mounts.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_volumes: Vec<VolumeMount>,
    /// Environment variables.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, String>,
    /// Requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesConfig>,
}

/// `cluster.proxy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyConfig {
    /// Do not deploy kube-proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `iptables`, `ipvs` or `nftables`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Extra flags.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "ExtraArgs::is_empty"
    )]
    pub extra_args: ExtraArgs,
}

/// `cluster.scheduler`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchedulerConfig {
    /// Image reference; the tag is the Kubernetes version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Extra flags.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "ExtraArgs::is_empty"
    )]
    pub extra_args: ExtraArgs,
    /// Extra host mounts.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_volumes: Vec<VolumeMount>,
    /// Environment variables.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, String>,
    /// Requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesConfig>,
    /// Raw `KubeSchedulerConfiguration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_norway::Value>,
}

/// `cluster.discovery`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscoveryConfig {
    /// Turns discovery on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The registries discovery uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registries: Option<DiscoveryRegistries>,
}

/// `cluster.discovery.registries`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscoveryRegistries {
    /// The Kubernetes registry (node annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<DiscoveryKubernetesRegistry>,
    /// The discovery service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<DiscoveryServiceRegistry>,
}

/// `cluster.discovery.registries.kubernetes`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscoveryKubernetesRegistry {
    /// Turns the registry off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `cluster.discovery.registries.service`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiscoveryServiceRegistry {
    /// Turns the registry off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Service URL (no path); default [`DEFAULT_DISCOVERY_ENDPOINT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// `cluster.etcd`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EtcdConfig {
    /// Image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// etcd CA (certificate and key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PemCertificateAndKey>,
    /// Extra flags.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "ExtraArgs::is_empty"
    )]
    pub extra_args: ExtraArgs,
    /// CIDRs to pick the advertised address from; a leading `!` excludes.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub advertised_subnets: Vec<String>,
    /// CIDRs to listen on; a leading `!` excludes.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub listen_subnets: Vec<String>,
    /// Legacy single advertised CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
}

/// `cluster.coreDNS`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CoreDnsConfig {
    /// Do not deploy CoreDNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// `cluster.externalCloudProvider`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalCloudProviderConfig {
    /// Turns the external cloud provider on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Manifest URLs.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub manifests: Vec<String>,
}

/// `cluster.inlineManifests[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InlineManifest {
    /// Unique name.
    #[serde(default)]
    pub name: String,
    /// Manifest YAML.
    #[serde(default)]
    pub contents: String,
}

/// `cluster.adminKubeconfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminKubeconfigConfig {
    /// Lifetime of the admin client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_lifetime: Option<GoDuration>,
}
