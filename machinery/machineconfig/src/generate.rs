//! Generating a cluster's machine configs from a secrets bundle (`talosctl gen config`).
//!
//! The output is the classic v1alpha1 layout (what upstream writes with
//! `--talos-version v1.13`) plus a `HostnameConfig` document asking for a stable hostname.
//! Kubernetes defaults are upstream's: pod subnet `10.244.0.0/16`, service subnet
//! `10.96.0.0/12`, flannel, KubePrism on 7445, the PodSecurity admission plugin and a
//! metadata-level audit policy.

use pki::{PemCertificateAndKey, SecretsBundle};
use serde_norway::Value;
use url::Url;

use crate::documents::{AutoHostname, Document, HostnameConfig};
use crate::v1alpha1::*;
use crate::{Config, ConfigError, MachineType};

/// Kubernetes version used when none is asked for.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.35.0";
/// Talos version (config contract) used when none is asked for.
pub const DEFAULT_TALOS_VERSION: &str = "v1.13.0";
/// Install disk used when none is asked for.
pub const DEFAULT_INSTALL_DISK: &str = "/dev/sda";
/// Kubernetes DNS domain used when none is asked for.
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";

/// What a generated cluster looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// `cluster.clusterName`.
    pub cluster_name: String,
    /// The Kubernetes API endpoint, e.g. `https://10.5.0.2:6443`.
    pub endpoint: String,
    /// Kubernetes version without the leading `v`.
    pub kubernetes_version: String,
    /// Talos version the configs are for (names the installer image tag).
    pub talos_version: String,
    /// `machine.install.disk`.
    pub install_disk: String,
    /// Extra SANs for the Talos API and Kubernetes API certificates.
    pub additional_sans: Vec<String>,
    /// `cluster.network.dnsDomain`.
    pub dns_domain: String,
}

impl ClusterSpec {
    /// A spec with upstream's defaults for everything but the name and endpoint.
    pub fn new(cluster_name: &str, endpoint: &str) -> Self {
        ClusterSpec {
            cluster_name: cluster_name.to_string(),
            endpoint: endpoint.to_string(),
            kubernetes_version: DEFAULT_KUBERNETES_VERSION.to_string(),
            talos_version: DEFAULT_TALOS_VERSION.to_string(),
            install_disk: DEFAULT_INSTALL_DISK.to_string(),
            additional_sans: Vec::new(),
            dns_domain: DEFAULT_DNS_DOMAIN.to_string(),
        }
    }

    /// Checks the inputs a person typed, naming the flag that is wrong.
    fn check(&self) -> Result<Url, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidGenerateInput {
            input: "endpoint",
            value: self.endpoint.clone(),
            reason,
        };
        let url = Url::parse(&self.endpoint).map_err(|e| invalid(e.to_string()))?;
        if url.scheme() != "https" {
            return Err(invalid("the scheme must be https".into()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host".into()));
        }
        let version = self.kubernetes_version.trim_start_matches('v');
        let numeric = version.split('.').count() == 3
            && version
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !numeric {
            return Err(ConfigError::InvalidGenerateInput {
                input: "kubernetes-version",
                value: self.kubernetes_version.clone(),
                reason: "expected a version like 1.35.0".into(),
            });
        }
        Ok(url)
    }

    fn image(&self, repository: &str) -> Option<String> {
        Some(format!(
            "{repository}:v{}",
            self.kubernetes_version.trim_start_matches('v')
        ))
    }
}

/// The control plane's config (`controlplane.yaml`).
pub fn controlplane(bundle: &SecretsBundle, spec: &ClusterSpec) -> Result<Config, ConfigError> {
    let url = spec.check()?;
    let mut machine = machine(bundle, spec, MachineType::ControlPlane);
    machine.ca = Some(bundle.certs.os.clone());
    machine.node_labels.insert(
        "node.kubernetes.io/exclude-from-external-load-balancers".into(),
        String::new(),
    );
    let features = machine.features.get_or_insert_with(Default::default);
    features.kubernetes_talos_api_access = None;

    let mut api_server_sans = vec![url.host_str().unwrap_or_default().to_string()];
    api_server_sans.extend(spec.additional_sans.iter().cloned());
    let cluster = ClusterConfig {
        secretbox_encryption_secret: bundle.secrets.secretbox_encryption_secret.clone(),
        aescbc_encryption_secret: bundle.secrets.aescbc_encryption_secret.clone(),
        ca: Some(bundle.certs.k8s.clone()),
        aggregator_ca: Some(bundle.certs.k8s_aggregator.clone()),
        service_account: Some(bundle.certs.k8s_service_account.clone()),
        api_server: Some(ApiServerConfig {
            image: spec.image("registry.k8s.io/kube-apiserver"),
            cert_sans: api_server_sans,
            disable_pod_security_policy: Some(true),
            admission_control: vec![AdmissionPlugin {
                name: "PodSecurity".into(),
                configuration: Some(pod_security_defaults()),
            }],
            audit_policy: Some(metadata_audit_policy()),
            ..Default::default()
        }),
        controller_manager: Some(ControllerManagerConfig {
            image: spec.image("registry.k8s.io/kube-controller-manager"),
            ..Default::default()
        }),
        proxy: Some(ProxyConfig {
            image: spec.image("registry.k8s.io/kube-proxy"),
            ..Default::default()
        }),
        scheduler: Some(SchedulerConfig {
            image: spec.image("registry.k8s.io/kube-scheduler"),
            ..Default::default()
        }),
        etcd: Some(EtcdConfig {
            ca: Some(bundle.certs.etcd.clone()),
            ..Default::default()
        }),
        ..cluster(bundle, spec)
    };
    Ok(assemble(machine, cluster))
}

/// A worker's config (`worker.yaml`): CA certificates without their keys.
pub fn worker(bundle: &SecretsBundle, spec: &ClusterSpec) -> Result<Config, ConfigError> {
    spec.check()?;
    let mut machine = machine(bundle, spec, MachineType::Worker);
    machine.ca = Some(certificate_only(&bundle.certs.os));
    let cluster = ClusterConfig {
        ca: Some(certificate_only(&bundle.certs.k8s)),
        ..cluster(bundle, spec)
    };
    Ok(assemble(machine, cluster))
}

fn certificate_only(pair: &PemCertificateAndKey) -> PemCertificateAndKey {
    PemCertificateAndKey {
        crt: pair.crt.clone(),
        key: None,
    }
}

fn assemble(machine: MachineConfig, cluster: ClusterConfig) -> Config {
    let mut config = Config::from_v1alpha1(V1Alpha1Config {
        version: Some(VERSION.to_string()),
        debug: Some(false),
        persist: Some(true),
        machine: Some(machine),
        cluster: Some(cluster),
    });
    config.documents.push(Document::Hostname(HostnameConfig {
        auto: Some(AutoHostname::Stable),
        hostname: None,
    }));
    config
}

/// What both machine types share.
fn machine(bundle: &SecretsBundle, spec: &ClusterSpec, machine_type: MachineType) -> MachineConfig {
    MachineConfig {
        machine_type: machine_type.to_string(),
        token: bundle.trustd_info.token.clone(),
        cert_sans: spec.additional_sans.clone(),
        kubelet: Some(KubeletConfig {
            image: spec.image("ghcr.io/siderolabs/kubelet"),
            default_runtime_seccomp_profile_enabled: Some(true),
            disable_manifests_directory: Some(true),
            ..Default::default()
        }),
        network: Some(NetworkConfig::default()),
        install: Some(InstallConfig {
            disk: Some(spec.install_disk.clone()),
            image: Some(format!(
                "ghcr.io/siderolabs/installer:{}",
                spec.talos_version
            )),
            wipe: false,
            ..Default::default()
        }),
        features: Some(MachineFeatures {
            rbac: Some(true),
            stable_hostname: Some(true),
            apid_check_ext_key_usage: Some(true),
            disk_quota_support: Some(true),
            kube_prism: Some(KubePrism {
                enabled: Some(true),
                port: Some(7445),
            }),
            host_dns: Some(HostDns {
                enabled: Some(true),
                forward_kube_dns_to_host: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What both machine types share of the cluster section.
fn cluster(bundle: &SecretsBundle, spec: &ClusterSpec) -> ClusterConfig {
    ClusterConfig {
        id: Some(bundle.cluster.id.clone()),
        secret: Some(bundle.cluster.secret.clone()),
        control_plane: Some(ControlPlaneConfig {
            endpoint: spec.endpoint.clone(),
            ..Default::default()
        }),
        cluster_name: Some(spec.cluster_name.clone()),
        network: Some(ClusterNetworkConfig {
            dns_domain: Some(spec.dns_domain.clone()),
            pod_subnets: vec!["10.244.0.0/16".into()],
            service_subnets: vec!["10.96.0.0/12".into()],
            ..Default::default()
        }),
        token: Some(bundle.secrets.bootstrap_token.clone()),
        discovery: Some(DiscoveryConfig {
            enabled: Some(true),
            registries: Some(DiscoveryRegistries {
                kubernetes: Some(DiscoveryKubernetesRegistry {
                    disabled: Some(true),
                }),
                service: Some(DiscoveryServiceRegistry::default()),
            }),
        }),
        ..Default::default()
    }
}

fn pod_security_defaults() -> Value {
    yaml(
        "apiVersion: pod-security.admission.config.k8s.io/v1alpha1
kind: PodSecurityConfiguration
defaults:
  audit: restricted
  audit-version: latest
  enforce: baseline
  enforce-version: latest
  warn: restricted
  warn-version: latest
exemptions:
  namespaces: [kube-system]
  runtimeClasses: []
  usernames: []
",
    )
}

fn metadata_audit_policy() -> Value {
    yaml("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n")
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).expect("built-in YAML is valid")
}
