//! The control-plane static pods upstream Talos runs through the kubelet: kube-apiserver,
//! kube-controller-manager and kube-scheduler, with their flags, host mounts, probes,
//! resources and security contexts.
//!
//! The pods reference files machined writes on the host: the secrets directories (see
//! [`crate::ControlPlaneCertificates::api_server_files`] and [`crate::component_kubeconfig`])
//! and the config directories (admission control, audit policy, authorization config,
//! scheduler config). Manifests are YAML with keys sorted, as Kubernetes' own YAML writer
//! produces them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use machineconfig::Config;
use machineconfig::v1alpha1::{ClusterConfig, ExtraArgs, ResourcesConfig, VolumeMount};
use serde_json::{Value, json};

use crate::KubernetesError;
use crate::args::{Flags, Merge};
use crate::cluster::{self, NodeInfo};

/// kube-apiserver's secrets (certificates, keys, encryption config) on the host.
pub const API_SERVER_SECRETS_DIR: &str = "/system/secrets/kubernetes/kube-apiserver";
/// kube-apiserver's configuration files on the host.
pub const API_SERVER_CONFIG_DIR: &str = "/system/config/kubernetes/kube-apiserver";
/// Where kube-apiserver writes its audit log.
pub const AUDIT_LOG_DIR: &str = "/var/log/audit/kube";
/// kube-controller-manager's secrets (CA, service-account key, kubeconfig) on the host.
pub const CONTROLLER_MANAGER_SECRETS_DIR: &str =
    "/system/secrets/kubernetes/kube-controller-manager";
/// kube-scheduler's secrets (kubeconfig) on the host.
pub const SCHEDULER_SECRETS_DIR: &str = "/system/secrets/kubernetes/kube-scheduler";
/// kube-scheduler's configuration on the host.
pub const SCHEDULER_CONFIG_DIR: &str = "/system/config/kubernetes/kube-scheduler";
/// The etcd client endpoint kube-apiserver talks to (the local etcd member).
pub const ETCD_SERVERS: &str = "https://localhost:2379";

const SYSTEM_CRITICAL_PRIORITY: i64 = 2_000_000_000;
/// GOMEMLIMIT is this percentage of the memory limit.
const GO_MEMORY_LIMIT_PERCENT: u128 = 95;
const TLS_CIPHER_SUITES: &str = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";

/// The static pod manifests of a control plane as (file name, YAML): `talos-kube-apiserver.yaml`,
/// and `talos-kube-controller-manager.yaml` / `talos-kube-scheduler.yaml` unless
/// `machine.controlPlane` turns them off. `node`'s first address becomes
/// `--advertise-address`.
pub fn static_pods(
    config: &Config,
    node: &NodeInfo,
) -> Result<Vec<(String, String)>, KubernetesError> {
    let (machine, cluster) = cluster::sections(config)?;
    let disabled = |switch: Option<&machineconfig::v1alpha1::DisabledSwitch>| {
        switch.and_then(|s| s.disabled).unwrap_or(false)
    };
    let control_plane = machine.control_plane.as_ref();
    let mut pods = vec![api_server(cluster, node)?];
    if !disabled(control_plane.and_then(|c| c.controller_manager.as_ref())) {
        pods.push(controller_manager(cluster)?);
    }
    if !disabled(control_plane.and_then(|c| c.scheduler.as_ref())) {
        pods.push(scheduler(cluster)?);
    }
    pods.into_iter()
        .map(|pod| {
            let name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let yaml = serde_norway::to_string(&pod).map_err(|source| KubernetesError::Encode {
                what: "static pod",
                source,
            })?;
            Ok((format!("talos-{name}.yaml"), yaml))
        })
        .collect()
}

/// What differs between the three pods.
struct Component<'a> {
    name: &'a str,
    image: String,
    command: Vec<String>,
    env: &'a BTreeMap<String, String>,
    resources: Option<&'a ResourcesConfig>,
    default_requests: (&'a str, &'a str),
    /// (volume name, host path, read-only)
    mounts: Vec<(&'a str, &'a str, bool)>,
    extra_volumes: &'a [VolumeMount],
    run_as: i64,
    add_capabilities: &'a [&'a str],
    probes: BTreeMap<&'a str, Value>,
}

fn pod(component: Component<'_>) -> Result<Value, KubernetesError> {
    let version = cluster::version_from_image(&component.image)
        .map(|(_, _, v)| v)
        .unwrap_or_default();
    let resources = resources(component.resources, component.default_requests)?;
    let mut env = vec![json!({
        "name": "POD_IP",
        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
    })];
    env.extend(component.env.iter().map(|(name, value)| {
        // Kubernetes expands $(VAR) in values: escape `$` as upstream does.
        json!({"name": name, "value": value.replace('$', "$$")})
    }));
    if let Some(limit) = memory_limit_bytes(&resources) {
        env.push(json!({
            "name": "GOMEMLIMIT",
            "value": (limit * GO_MEMORY_LIMIT_PERCENT / 100).to_string(),
        }));
    }
    let mut volume_mounts: Vec<Value> = component
        .mounts
        .iter()
        .map(|(name, path, read_only)| {
            let mut mount = json!({"name": name, "mountPath": path});
            if *read_only {
                mount["readOnly"] = json!(true);
            }
            mount
        })
        .collect();
    let mut volumes: Vec<Value> = component
        .mounts
        .iter()
        .map(|(name, path, _)| json!({"name": name, "hostPath": {"path": path}}))
        .collect();
    for extra in component.extra_volumes {
        let name = volume_name(&extra.mount_path);
        let mut mount = json!({"name": name, "mountPath": extra.mount_path});
        if extra.read_only.unwrap_or(false) {
            mount["readOnly"] = json!(true);
        }
        volume_mounts.push(mount);
        volumes.push(json!({"name": name, "hostPath": {"path": extra.host_path}}));
    }
    let mut capabilities = json!({"drop": ["ALL"]});
    if !component.add_capabilities.is_empty() {
        capabilities["add"] = json!(component.add_capabilities);
    }
    let mut container = json!({
        "name": component.name,
        "image": component.image,
        "command": component.command,
        "env": env,
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": capabilities,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": volume_mounts,
    });
    for (probe, value) in component.probes {
        container[probe] = value;
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": component.name,
            "namespace": "kube-system",
            "labels": {
                "tier": "control-plane",
                "k8s-app": component.name,
                "component": component.name,
                "app.kubernetes.io/name": component.name,
                "app.kubernetes.io/version": version,
                "app.kubernetes.io/component": "control-plane",
                "app.kubernetes.io/managed-by": "Talos",
            },
        },
        "spec": {
            "priority": SYSTEM_CRITICAL_PRIORITY,
            "priorityClassName": "system-cluster-critical",
            "hostNetwork": true,
            "containers": [container],
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": component.run_as,
                "runAsGroup": component.run_as,
            },
            "volumes": volumes,
        },
    }))
}

/// Upstream's volume name for an extra mount: the mount path with `/` trimmed at both ends
/// and every other character that is not a letter or digit replaced by `-`.
fn volume_name(mount_path: &str) -> String {
    mount_path
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn quantity_text(map: Option<&serde_norway::Value>, key: &str) -> Option<String> {
    match map?.get(key)? {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn resources(
    configured: Option<&ResourcesConfig>,
    (default_cpu, default_memory): (&str, &str),
) -> Result<Value, KubernetesError> {
    let requests = configured.and_then(|r| r.requests.as_ref());
    let limits = configured.and_then(|r| r.limits.as_ref());
    let mut out = json!({
        "requests": {
            "cpu": quantity_text(requests, "cpu").unwrap_or_else(|| default_cpu.into()),
            "memory": quantity_text(requests, "memory").unwrap_or_else(|| default_memory.into()),
        },
    });
    let mut limit_map = serde_json::Map::new();
    for key in ["cpu", "memory"] {
        if let Some(value) = quantity_text(limits, key) {
            limit_map.insert(key.into(), json!(value));
        }
    }
    if let Some(memory) = limit_map.get("memory").and_then(Value::as_str) {
        parse_memory(memory).ok_or_else(|| KubernetesError::InvalidValue {
            key: "resources.limits.memory",
            value: memory.to_string(),
            reason: "not a Kubernetes quantity".into(),
        })?;
    }
    if !limit_map.is_empty() {
        out["limits"] = Value::Object(limit_map);
    }
    Ok(out)
}

fn memory_limit_bytes(resources: &Value) -> Option<u128> {
    parse_memory(resources["limits"]["memory"].as_str()?)
}

/// A memory quantity in bytes: a whole number with an optional binary (`Ki` … `Ei`) or
/// decimal (`k`, `M`, `G`, `T`, `P`, `E`) suffix.
fn parse_memory(text: &str) -> Option<u128> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: u128 = number.parse().ok()?;
    let multiplier: u128 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

fn https_probe(path: &str, port: u16, extra: Value) -> Value {
    let mut probe = json!({
        "httpGet": {"host": "localhost", "path": path, "port": port, "scheme": "HTTPS"},
    });
    if let (Some(probe), Some(extra)) = (probe.as_object_mut(), extra.as_object()) {
        probe.extend(extra.clone());
    }
    probe
}

fn join(values: &[impl ToString]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn in_dir(dir: &str, file: &str) -> String {
    format!("{dir}/{file}")
}

fn api_server(cluster: &ClusterConfig, node: &NodeInfo) -> Result<Value, KubernetesError> {
    let empty_args = ExtraArgs::new();
    let empty_env = BTreeMap::new();
    let config = cluster.api_server.as_ref();
    let image = cluster::image(
        config.and_then(|c| c.image.as_ref()),
        "registry.k8s.io/kube-apiserver",
    );
    let extra_args = config.map_or(&empty_args, |c| &c.extra_args);
    let endpoint = cluster
        .control_plane
        .as_ref()
        .map(|cp| cp.endpoint.clone())
        .unwrap_or_default();
    cluster::endpoint(cluster)?;
    let secret = |file| in_dir(API_SERVER_SECRETS_DIR, file);
    let config_file = |file| in_dir(API_SERVER_CONFIG_DIR, file);
    let port = cluster::local_api_server_port(cluster).to_string();
    let service_cidrs = join(&cluster::service_subnets(cluster)?);

    let mut flags = Flags::new(&[
        (
            "admission-control-config-file",
            &config_file("admission-control-config.yaml"),
        ),
        ("allow-privileged", "true"),
        ("anonymous-auth", "false"),
        ("api-audiences", &endpoint),
        ("bind-address", "0.0.0.0"),
        ("client-ca-file", &secret("ca.crt")),
        ("enable-admission-plugins", "NodeRestriction"),
        ("requestheader-client-ca-file", &secret("aggregator-ca.crt")),
        ("requestheader-allowed-names", "front-proxy-client"),
        ("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        ("requestheader-group-headers", "X-Remote-Group"),
        ("requestheader-username-headers", "X-Remote-User"),
        ("proxy-client-cert-file", &secret("front-proxy-client.crt")),
        ("proxy-client-key-file", &secret("front-proxy-client.key")),
        ("enable-bootstrap-token-auth", "true"),
        ("tls-min-version", "VersionTLS12"),
        ("tls-cipher-suites", TLS_CIPHER_SUITES),
        (
            "encryption-provider-config",
            &secret("encryptionconfig.yaml"),
        ),
        ("audit-policy-file", &config_file("auditpolicy.yaml")),
        (
            "audit-log-path",
            &in_dir(AUDIT_LOG_DIR, "kube-apiserver.log"),
        ),
        ("audit-log-maxage", "30"),
        ("audit-log-maxbackup", "10"),
        ("audit-log-maxsize", "100"),
        ("profiling", "false"),
        ("etcd-cafile", &secret("etcd-client-ca.crt")),
        ("etcd-certfile", &secret("etcd-client.crt")),
        ("etcd-keyfile", &secret("etcd-client.key")),
        ("etcd-servers", ETCD_SERVERS),
        (
            "kubelet-client-certificate",
            &secret("apiserver-kubelet-client.crt"),
        ),
        (
            "kubelet-client-key",
            &secret("apiserver-kubelet-client.key"),
        ),
        ("secure-port", &port),
        ("service-account-issuer", &endpoint),
        ("service-account-key-file", &secret("service-account.pub")),
        (
            "service-account-signing-key-file",
            &secret("service-account.key"),
        ),
        ("service-cluster-ip-range", &service_cidrs),
        ("tls-cert-file", &secret("apiserver.crt")),
        ("tls-private-key-file", &secret("apiserver.key")),
        (
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname",
        ),
    ]);
    if let Some(address) = node.addresses.first() {
        flags.set("advertise-address", address.to_string());
    }
    // Authorization: the structured authorization config file from Kubernetes 1.30 on,
    // unless extraArgs sets the legacy flags (then upstream keeps `--authorization-mode`).
    let legacy_authorization = extra_args.contains_key("authorization-mode")
        || extra_args
            .keys()
            .any(|k| k.starts_with("authorization-webhook-"));
    let supports_config_file = cluster::version_from_image(&image)
        .is_some_and(|(major, minor, _)| (major, minor) >= (1, 30));
    if legacy_authorization || !supports_config_file {
        flags.set("authorization-mode", "Node,RBAC");
    } else {
        flags.set(
            "authorization-config",
            config_file("authorization-config.yaml"),
        );
    }
    flags.merge(
        extra_args,
        "cluster.apiServer.extraArgs",
        |flag| match flag {
            "enable-admission-plugins"
            | "feature-gates"
            | "authorization-mode"
            | "tls-cipher-suites" => Merge::Additive,
            "service-account-issuer" => Merge::Append,
            "etcd-servers"
            | "client-ca-file"
            | "requestheader-client-ca-file"
            | "proxy-client-cert-file"
            | "proxy-client-key-file"
            | "encryption-provider-config"
            | "etcd-cafile"
            | "etcd-certfile"
            | "etcd-keyfile"
            | "kubelet-client-certificate"
            | "kubelet-client-key"
            | "service-account-key-file"
            | "service-account-signing-key-file"
            | "tls-cert-file"
            | "tls-private-key-file"
            | "authorization-config" => Merge::Denied,
            _ => Merge::Replace,
        },
    )?;
    let mut command = vec!["/usr/local/bin/kube-apiserver".to_string()];
    command.extend(flags.render());
    pod(Component {
        name: "kube-apiserver",
        image,
        command,
        env: config.map_or(&empty_env, |c| &c.env),
        resources: config.and_then(|c| c.resources.as_ref()),
        default_requests: ("200m", "512Mi"),
        mounts: vec![
            ("secrets", API_SERVER_SECRETS_DIR, true),
            ("config", API_SERVER_CONFIG_DIR, true),
            ("audit", AUDIT_LOG_DIR, false),
        ],
        extra_volumes: config.map_or(&[], |c| c.extra_volumes.as_slice()),
        run_as: 65534,
        // The kube-apiserver binary carries cap_net_bind_service.
        add_capabilities: &["NET_BIND_SERVICE"],
        probes: BTreeMap::new(),
    })
}

fn controller_manager(cluster: &ClusterConfig) -> Result<Value, KubernetesError> {
    let empty_args = ExtraArgs::new();
    let empty_env = BTreeMap::new();
    let config = cluster.controller_manager.as_ref();
    let secret = |file| in_dir(CONTROLLER_MANAGER_SECRETS_DIR, file);
    let kubeconfig = secret("kubeconfig");
    let mut flags = Flags::new(&[
        ("allocate-node-cidrs", "true"),
        ("bind-address", "127.0.0.1"),
        ("cluster-cidr", &join(&cluster::pod_subnets(cluster)?)),
        (
            "service-cluster-ip-range",
            &join(&cluster::service_subnets(cluster)?),
        ),
        ("cluster-signing-cert-file", &secret("ca.crt")),
        ("cluster-signing-key-file", &secret("ca.key")),
        ("controllers", "*,tokencleaner"),
        ("configure-cloud-routes", "false"),
        ("kubeconfig", &kubeconfig),
        ("authentication-kubeconfig", &kubeconfig),
        ("authorization-kubeconfig", &kubeconfig),
        ("leader-elect", "true"),
        ("root-ca-file", &secret("ca.crt")),
        (
            "service-account-private-key-file",
            &secret("service-account.key"),
        ),
        ("profiling", "false"),
        ("tls-min-version", "VersionTLS13"),
    ]);
    flags.merge(
        config.map_or(&empty_args, |c| &c.extra_args),
        "cluster.controllerManager.extraArgs",
        |flag| match flag {
            "service-cluster-ip-range" | "controllers" => Merge::Additive,
            "cluster-signing-cert-file"
            | "cluster-signing-key-file"
            | "authentication-kubeconfig"
            | "authorization-kubeconfig"
            | "root-ca-file"
            | "service-account-private-key-file" => Merge::Denied,
            _ => Merge::Replace,
        },
    )?;
    let mut command = vec![
        "/usr/local/bin/kube-controller-manager".to_string(),
        "--use-service-account-credentials".to_string(),
    ];
    command.extend(flags.render());
    let mut probes = BTreeMap::new();
    probes.insert(
        "startupProbe",
        https_probe(
            "/healthz",
            10257,
            json!({"periodSeconds": 5, "failureThreshold": 12}),
        ),
    );
    probes.insert(
        "livenessProbe",
        https_probe("/healthz", 10257, json!({"timeoutSeconds": 15})),
    );
    pod(Component {
        name: "kube-controller-manager",
        image: cluster::image(
            config.and_then(|c| c.image.as_ref()),
            "registry.k8s.io/kube-controller-manager",
        ),
        command,
        env: config.map_or(&empty_env, |c| &c.env),
        resources: config.and_then(|c| c.resources.as_ref()),
        default_requests: ("50m", "256Mi"),
        mounts: vec![("secrets", CONTROLLER_MANAGER_SECRETS_DIR, true)],
        extra_volumes: config.map_or(&[], |c| c.extra_volumes.as_slice()),
        run_as: 65535,
        add_capabilities: &[],
        probes,
    })
}

fn scheduler(cluster: &ClusterConfig) -> Result<Value, KubernetesError> {
    let empty_args = ExtraArgs::new();
    let empty_env = BTreeMap::new();
    let config = cluster.scheduler.as_ref();
    let kubeconfig = in_dir(SCHEDULER_SECRETS_DIR, "kubeconfig");
    let mut flags = Flags::new(&[
        (
            "config",
            &in_dir(SCHEDULER_CONFIG_DIR, "scheduler-config.yaml"),
        ),
        ("authentication-tolerate-lookup-failure", "false"),
        ("authentication-kubeconfig", &kubeconfig),
        ("authorization-kubeconfig", &kubeconfig),
        ("bind-address", "127.0.0.1"),
        ("leader-elect", "true"),
        ("profiling", "false"),
        ("tls-min-version", "VersionTLS13"),
    ]);
    flags.merge(
        config.map_or(&empty_args, |c| &c.extra_args),
        "cluster.scheduler.extraArgs",
        |flag| match flag {
            "kubeconfig" | "authentication-kubeconfig" | "authorization-kubeconfig" | "config" => {
                Merge::Denied
            }
            _ => Merge::Replace,
        },
    )?;
    let mut command = vec!["/usr/local/bin/kube-scheduler".to_string()];
    command.extend(flags.render());
    let mut probes = BTreeMap::new();
    probes.insert(
        "startupProbe",
        https_probe(
            "/livez",
            10259,
            json!({"periodSeconds": 5, "failureThreshold": 12}),
        ),
    );
    probes.insert(
        "livenessProbe",
        https_probe("/livez", 10259, json!({"timeoutSeconds": 15})),
    );
    probes.insert(
        "readinessProbe",
        https_probe("/readyz", 10259, json!({"timeoutSeconds": 15})),
    );
    pod(Component {
        name: "kube-scheduler",
        image: cluster::image(
            config.and_then(|c| c.image.as_ref()),
            "registry.k8s.io/kube-scheduler",
        ),
        command,
        env: config.map_or(&empty_env, |c| &c.env),
        resources: config.and_then(|c| c.resources.as_ref()),
        default_requests: ("10m", "64Mi"),
        mounts: vec![
            ("secrets", SCHEDULER_SECRETS_DIR, true),
            ("config", SCHEDULER_CONFIG_DIR, true),
        ],
        extra_volumes: config.map_or(&[], |c| c.extra_volumes.as_slice()),
        run_as: 65536,
        add_capabilities: &[],
        probes,
    })
}

/// Whether every address of the node is IPv6 (kubelet then listens on `::`).
pub(crate) fn ipv6_only(node: &NodeInfo) -> bool {
    !node.addresses.is_empty() && node.addresses.iter().all(IpAddr::is_ipv6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_and_volume_names() {
        assert_eq!(parse_memory("1000Mi"), Some(1_048_576_000));
        assert_eq!(parse_memory("2G"), Some(2_000_000_000));
        assert_eq!(parse_memory("512"), Some(512));
        assert_eq!(parse_memory("1.5Gi"), None);
        assert_eq!(volume_name("/var/foo/"), "var-foo");
        assert_eq!(volume_name("/var/foo/b.foo"), "var-foo-b-foo");
    }
}
