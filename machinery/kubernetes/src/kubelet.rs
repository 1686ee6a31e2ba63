//! The kubelet's `KubeletConfiguration` as upstream Talos writes it
//! (`/etc/kubernetes/kubelet.yaml`), with `machine.kubelet.extraConfig` merged over it, or,
//! when the config has a `KubeletConfig` document instead of `machine.kubelet` (validation
//! refuses both), that document's `config`, `clusterDNS` and
//! `defaultRuntimeSeccompProfileEnabled`.

use std::net::IpAddr;

use machineconfig::Config;
use machineconfig::documents::{Document, KubeletConfig};
use serde_json::{Value, json};

use crate::KubernetesError;
use crate::cluster::{self, NodeInfo};
use crate::static_pods::ipv6_only;

/// Where the kubelet reads static pod manifests from (unless
/// `machine.kubelet.disableManifestsDirectory`).
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
/// The Kubernetes CA the kubelet checks client certificates against.
pub const KUBELET_CLIENT_CA_FILE: &str = "/etc/kubernetes/pki/ca.crt";
/// containerd's CRI socket.
pub const CONTAINER_RUNTIME_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";
/// The resolv.conf pods with `dnsPolicy: Default` get.
pub const RESOLV_CONF: &str = "/system/resolved/resolv.conf";

/// Top-level fields `extraConfig` may not change: Talos relies on them.
const PROTECTED_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "staticPodPath",
    "staticPodURL",
    "authentication",
    "authorization",
    "rotateCertificates",
    "cgroupRoot",
];

/// The config's `KubeletConfig` document, if it has one.
pub fn kubelet_document(config: &Config) -> Option<&KubeletConfig> {
    config.documents.iter().find_map(|document| match document {
        Document::Kubelet(kubelet) => Some(kubelet),
        _ => None,
    })
}

/// The kubelet's image: the `KubeletConfig` document's, else `machine.kubelet.image`.
pub fn kubelet_image(config: &Config) -> Option<String> {
    if let Some(document) = kubelet_document(config) {
        return Some(document.image.clone()).filter(|image| !image.is_empty());
    }
    config
        .v1alpha1
        .as_ref()?
        .machine
        .as_ref()?
        .kubelet
        .as_ref()?
        .image
        .clone()
}

/// The kubelet's cluster DNS addresses: `clusterDNS` of the `KubeletConfig` document or
/// `machine.kubelet.clusterDNS`, else the tenth address
/// of each service CIDR (`10.96.0.10`).
pub fn cluster_dns(config: &Config) -> Result<Vec<IpAddr>, KubernetesError> {
    let (machine, cluster) = cluster::sections(config)?;
    let (key, configured) = match kubelet_document(config) {
        Some(document) => ("KubeletConfig.clusterDNS", document.cluster_dns.as_slice()),
        None => (
            "machine.kubelet.clusterDNS",
            machine
                .kubelet
                .as_ref()
                .map(|k| k.cluster_dns.as_slice())
                .unwrap_or_default(),
        ),
    };
    if !configured.is_empty() {
        return configured
            .iter()
            .map(|text| {
                text.parse().map_err(|_| KubernetesError::InvalidValue {
                    key,
                    value: text.clone(),
                    reason: "not an IP address".into(),
                })
            })
            .collect();
    }
    Ok(cluster::service_subnets(cluster)?
        .iter()
        .filter_map(|net| cluster::nth_address(net, 10))
        .collect())
}

/// The `KubeletConfiguration` YAML for `node`: webhook authentication (anonymous off) and
/// authorization, client certificates checked against the cluster CA, certificate rotation,
/// cluster DNS and domain, the static pod directory, containerd's CRI socket, TLS 1.3, JSON
/// logs, graceful node shutdown, system reservations; then `machine.kubelet.extraConfig`
/// merged over it (top-level fields Talos relies on are refused).
pub fn kubelet_configuration(config: &Config, node: &NodeInfo) -> Result<String, KubernetesError> {
    let (machine, cluster) = cluster::sections(config)?;
    let kubelet = machine.kubelet.as_ref();
    let control_plane = matches!(machine.machine_type.as_str(), "controlplane" | "init");
    let (reserved_cpu, reserved_memory) = if control_plane {
        ("200m", "512Mi")
    } else {
        ("100m", "384Mi")
    };
    let dns: Vec<String> = cluster_dns(config)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut document = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": if ipv6_only(node) { "::" } else { "0.0.0.0" },
        "port": 10250,
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": KUBELET_CLIENT_CA_FILE},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupRoot": "/",
        "systemCgroups": "/system",
        "kubeletCgroups": "/podruntime/kubelet",
        "clusterDomain": cluster::dns_domain(cluster),
        "clusterDNS": dns,
        "containerRuntimeEndpoint": CONTAINER_RUNTIME_ENDPOINT,
        "rotateCertificates": true,
        "serverTLSBootstrap": false,
        "protectKernelDefaults": true,
        "serializeImagePulls": false,
        "failSwapOn": false,
        "featureGates": {},
        "logging": {"format": "json"},
        "resolvConf": RESOLV_CONF,
        "shutdownGracePeriod": "30s",
        "shutdownGracePeriodCriticalPods": "10s",
        "streamingConnectionIdleTimeout": "5m",
        "tlsMinVersion": "VersionTLS13",
        "systemReserved": {
            "cpu": reserved_cpu,
            "memory": reserved_memory,
            "pid": "100",
            "ephemeral-storage": "256Mi",
        },
    });
    if !kubelet
        .and_then(|k| k.disable_manifests_directory)
        .unwrap_or(false)
    {
        document["staticPodPath"] = json!(MANIFESTS_DIR);
    }
    let kubelet_document = kubelet_document(config);
    let seccomp_default = match kubelet_document {
        Some(d) => d.default_runtime_seccomp_profile_enabled,
        None => kubelet.and_then(|k| k.default_runtime_seccomp_profile_enabled),
    };
    if seccomp_default.unwrap_or(false) {
        document["seccompDefault"] = json!(true);
    }
    if let Some(extra) = kubelet.and_then(|k| k.extra_config.as_ref()) {
        merge_over(&mut document, "machine.kubelet.extraConfig", extra)?;
    }
    if let Some(overrides) = kubelet_document.filter(|d| !d.config.is_empty()) {
        merge_over(&mut document, "KubeletConfig.config", &overrides.config)?;
    }
    serde_norway::to_string(&document).map_err(|source| KubernetesError::Encode {
        what: "KubeletConfiguration",
        source,
    })
}

/// Merges the mapping `extra` (found at `key`) over `document`; Talos's own fields are refused.
fn merge_over(
    document: &mut Value,
    key: &'static str,
    extra: &impl serde::Serialize,
) -> Result<(), KubernetesError> {
    let extra: Value = serde_json::to_value(extra).map_err(|e| KubernetesError::InvalidValue {
        key,
        value: String::new(),
        reason: e.to_string(),
    })?;
    let Value::Object(fields) = extra else {
        return Err(KubernetesError::InvalidValue {
            key,
            value: extra.to_string(),
            reason: "not a mapping".into(),
        });
    };
    for (field, value) in fields {
        if PROTECTED_FIELDS.contains(&field.as_str()) {
            return Err(KubernetesError::DeniedKubeletField { key, field });
        }
        merge(&mut document[field.as_str()], value);
    }
    Ok(())
}

/// Deep merge: mappings merge key by key, anything else replaces.
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}
