//! The Kubernetes document kinds: every field decodes and is written back, unknown fields and
//! wrong types are decode errors with their line, invalid values and conflicts with the
//! v1alpha1 document are validation errors naming the kind and field, named kinds are unique.

mod documents_support;

use documents_support::*;
use machineconfig::documents::{AuthorizerType, Document, ProxyMode};
use machineconfig::v1alpha1::ArgValue;
use machineconfig::{Config, ConfigError, RuntimeMode};

/// Every k8s kind, every field set, valid on its own.
const FULL: &str = include_str!("fixtures/documents/k8s/full.yaml");
const WORKER: &str = include_str!("fixtures/worker.yaml");

/// The kinds of `FULL`, in order.
const KINDS: &[&str] = &[
    "KubeClusterConfig",
    "KubeNetworkConfig",
    "KubeNodeConfig",
    "KubeletConfig",
    "KubeStaticPodConfig",
    "KubeAPIServerConfig",
    "KubeAPIServerCAConfig",
    "KubeAggregatorCAConfig",
    "KubeServiceAccountConfig",
    "KubeEtcdEncryptionConfig",
    "KubeAdmissionControlConfig",
    "KubeAuditPolicyConfig",
    "KubeAuthenticationConfig",
    "KubeAuthorizerConfig",
    "KubeAuthorizerConfig",
    "KubeControllerManagerConfig",
    "KubeSchedulerConfig",
    "KubeProxyConfig",
    "KubeCoreDNSConfig",
    "KubeFlannelCNIConfig",
    "KubeExternalManifestConfig",
    "KubeInlineManifestConfig",
    "KubeCredentialProviderConfig",
    "KubePrismConfig",
    "KubeTalosAPIAccessConfig",
];

/// The documents of `FULL` as separate texts (comments dropped).
fn full_documents() -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in FULL.lines().filter(|line| !line.starts_with('#')) {
        if line == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
}

/// The text of the first document of `FULL` with this kind.
fn document(kind: &str) -> String {
    full_documents()
        .into_iter()
        .find(|doc| doc.contains(&format!("\nkind: {kind}\n")))
        .unwrap_or_else(|| panic!("{kind} is in the fixture"))
}

fn line_of(input: &str, needle: &str) -> usize {
    input
        .lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} in input"))
        + 1
}

#[test]
fn every_kind_decodes_validates_strictly_and_round_trips() {
    let config = Config::from_yaml(FULL).expect("the fixture decodes");
    let kinds: Vec<&str> = config.documents.iter().map(Document::kind).collect();
    assert_eq!(kinds, KINDS);
    let warnings = config
        .validate(RuntimeMode::Metal, true)
        .unwrap_or_else(|e| panic!("the fixture validates strictly: {e}"));
    assert!(warnings.is_empty(), "{warnings:?}");

    let written = config.to_yaml().expect("encodes");
    let again = Config::from_yaml(&written)
        .unwrap_or_else(|e| panic!("written config does not decode: {e}\n{written}"));
    assert_eq!(again, config, "round trip changed the config:\n{written}");
    assert_eq!(again.to_yaml().expect("encodes"), written);
}

#[test]
fn no_field_of_the_fixture_is_dropped_when_written() {
    let config = Config::from_yaml(FULL).expect("the fixture decodes");
    for (text, decoded) in full_documents().iter().zip(&config.documents) {
        let original: serde_norway::Value = serde_norway::from_str(text).expect("fixture YAML");
        let encoded = serde_norway::to_value(decoded).expect("encodes");
        let keys = |value: &serde_norway::Value| -> Vec<String> {
            let mut keys: Vec<String> = value
                .as_mapping()
                .expect("a mapping")
                .keys()
                .map(|k| k.as_str().expect("string key").to_string())
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(&encoded), keys(&original), "{}", decoded.kind());
        // Nested objects written as they were read.
        for key in [
            "config",
            "configuration",
            "pod",
            "webhook",
            "backendExtraConfig",
        ] {
            if let Some(value) = original.get(key) {
                assert_eq!(encoded.get(key), Some(value), "{}.{key}", decoded.kind());
            }
        }
    }
}

#[test]
fn decoded_values_have_their_types() {
    let config = Config::from_yaml(FULL).expect("the fixture decodes");
    let mut seen = 0;
    for document in &config.documents {
        match document {
            Document::Kubelet(kubelet) => {
                assert_eq!(
                    kubelet.extra_args["register-with-taints"],
                    ArgValue::List(vec!["a=b:NoSchedule".into(), "c=d:NoExecute".into()])
                );
                assert_eq!(kubelet.cluster_dns, ["10.201.0.10", "fd10:201::a"]);
                seen += 1;
            }
            Document::KubeScheduler(scheduler) => {
                assert_eq!(scheduler.extra_args["v"], ArgValue::from("2"));
                seen += 1;
            }
            Document::KubeProxy(proxy) => {
                assert_eq!(proxy.mode, Some(ProxyMode::Nftables));
                seen += 1;
            }
            Document::KubeAuthorizer(authorizer) if authorizer.name == "lab-webhook" => {
                assert_eq!(authorizer.authorizer_type, Some(AuthorizerType::Webhook));
                seen += 1;
            }
            Document::KubeApiServer(api_server) => {
                assert_eq!(api_server.api_port, Some(7443));
                assert_eq!(api_server.startup_probes, Some(false));
                seen += 1;
            }
            Document::KubeApiServerCa(ca) => {
                let issuing = ca.issuing_ca.as_ref().expect("issuingCA");
                assert!(issuing.cert.starts_with("-----BEGIN CERTIFICATE-----\n"));
                assert!(issuing.key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
                seen += 1;
            }
            Document::KubePrism(prism) => {
                assert_eq!(prism.port, Some(7445));
                seen += 1;
            }
            Document::KubeInlineManifest(manifest) => {
                assert!(manifest.manifest.contains("kind: Namespace\n"));
                seen += 1;
            }
            _ => {}
        }
    }
    assert_eq!(seen, 8);
}

#[test]
fn an_unknown_top_level_field_is_refused_in_every_kind() {
    for kind in KINDS {
        let input = format!("{}surpriseField: 1\n", document(kind));
        let (line, path, message) = decode_error(&input);
        assert_eq!(
            (line, path.as_str()),
            (Some(line_of(&input, "surpriseField")), "surpriseField"),
            "{kind}"
        );
        assert!(
            message.contains("unknown field `surpriseField`"),
            "{kind}: {message}"
        );
    }
}

#[test]
fn unknown_nested_fields_are_refused() {
    let cases = [
        (
            "KubeNodeConfig",
            "nodeIP:\n  validSubnets:\n",
            "nodeIP:\n  subnets: [10.0.0.0/8]\n  validSubnets:\n",
            "nodeIP.subnets",
        ),
        (
            "KubeAPIServerCAConfig",
            "issuingCA:\n",
            "issuingCA:\n  crt: x\n",
            "issuingCA.crt",
        ),
        (
            "KubeServiceAccountConfig",
            "issuer:\n",
            "issuer:\n  key: x\n",
            "issuer.key",
        ),
        (
            "KubeServiceAccountConfig",
            "accepted:\n",
            "accepted:\n  keys: [x]\n",
            "accepted.keys",
        ),
        (
            "KubeAPIServerConfig",
            "resources:\n",
            "resources:\n  reservations: {}\n",
            "resources.reservations",
        ),
    ];
    for (kind, anchor, replacement, field_path) in cases {
        let text = document(kind);
        assert!(text.contains(anchor), "{kind}: {anchor:?}");
        let input = text.replacen(anchor, replacement, 1);
        let bad_key = field_path.rsplit('.').next().expect("a key");
        let (line, path, message) = decode_error(&input);
        assert_eq!(path, field_path, "{kind}: {message}");
        assert_eq!(
            line,
            Some(line_of(&input, &format!("{bad_key}:"))),
            "{kind}"
        );
        assert!(message.contains("unknown field"), "{kind}: {message}");
    }
}

#[test]
fn values_of_the_wrong_type_are_refused() {
    let cases = [
        ("KubePrismConfig", "port: 7445", "port: seven", "port"),
        (
            "KubeProxyConfig",
            "mode: nftables",
            "mode: userspace",
            "mode",
        ),
        ("KubeAuthorizerConfig", "type: RBAC", "type: ABAC", "type"),
        (
            "KubeletConfig",
            "config:\n  maxPods: 150\n  serializeImagePulls: false\n",
            "config: [maxPods]\n",
            "config",
        ),
        (
            "KubeAPIServerConfig",
            "apiPort: 7443",
            "apiPort: 70000",
            "apiPort",
        ),
        (
            "KubeFlannelCNIConfig",
            "extraArgs:\n  - --iface-can-reach=192.168.50.1\n",
            "extraArgs: {iface: eth0}\n",
            "extraArgs",
        ),
        (
            "KubeNodeConfig",
            "storage: \"true\"",
            "storage: [a, b]",
            "labels.storage",
        ),
    ];
    for (kind, from, to, field_path) in cases {
        let text = document(kind);
        assert!(text.contains(from), "{kind}: {from:?}");
        let input = text.replacen(from, to, 1);
        let (line, path, message) = decode_error(&input);
        assert_eq!(path, field_path, "{kind}: {message}");
        let first_line = to.lines().next().expect("a line");
        assert_eq!(line, Some(line_of(&input, first_line)), "{kind}: {message}");
    }
}

#[test]
fn nulls_read_as_empty() {
    let input = "apiVersion: v1alpha1\nkind: KubeTalosAPIAccessConfig\nallowedRoles:\nallowedKubernetesNamespaces: ~\n---\napiVersion: v1alpha1\nkind: KubeAuditPolicyConfig\nconfiguration:\n";
    let config = Config::from_yaml(input).expect("decodes");
    let Document::KubeTalosApiAccess(access) = &config.documents[0] else {
        panic!("{:?}", config.documents[0]);
    };
    assert!(access.allowed_roles.is_empty() && access.allowed_kubernetes_namespaces.is_empty());
    let Document::KubeAuditPolicy(audit) = &config.documents[1] else {
        panic!("{:?}", config.documents[1]);
    };
    assert!(audit.configuration.is_empty());
}

/// One invalid value per kind: (kind, text replaced, replacement, path, message part).
const INVALID: &[(&str, &str, &str, &str, &str)] = &[
    (
        "KubeClusterConfig",
        "clusterName: lab-cluster\n",
        "",
        "KubeClusterConfig.clusterName",
        "required",
    ),
    (
        "KubeClusterConfig",
        "https://cp.lab.example:6443",
        "cp.lab.example:6443",
        "KubeClusterConfig.endpoint",
        "not a valid URL",
    ),
    (
        "KubeNetworkConfig",
        "10.200.0.0/16",
        "10.200.0.1/16",
        "KubeNetworkConfig.podSubnets[0]",
        "host bits set",
    ),
    (
        "KubeNetworkConfig",
        "10.201.0.0/20",
        "10.192.0.0/10",
        "KubeNetworkConfig.serviceSubnets[0]",
        "too large",
    ),
    (
        "KubeNetworkConfig",
        "nodeCIDRMaskSizeIPv4: 25",
        "nodeCIDRMaskSizeIPv4: 8",
        "KubeNetworkConfig.podSubnets[0]",
        "smaller than the per-node pod CIDR /8",
    ),
    (
        "KubeNetworkConfig",
        "  - fd10:200::/56\n",
        "  - 10.210.0.0/16\n",
        "KubeNetworkConfig.podSubnets[1]",
        "one IPv4 and one IPv6",
    ),
    (
        "KubeNetworkConfig",
        "  - fd10:201::/112\n",
        "",
        "KubeNetworkConfig",
        "as many service subnets as pod subnets",
    ),
    (
        "KubeNodeConfig",
        "\"!192.168.50.1\"",
        "\"!192.168.50\"",
        "KubeNodeConfig.nodeIP.validSubnets[1]",
        "not a valid subnet",
    ),
    (
        "KubeNodeConfig",
        "storage: \"true\"",
        "storage: has spaces",
        "KubeNodeConfig.labels.storage",
        "label value",
    ),
    (
        "KubeNodeConfig",
        "lab.example/owner:",
        "Lab_Example/owner:",
        "KubeNodeConfig.annotations.Lab_Example/owner",
        "prefix",
    ),
    (
        "KubeNodeConfig",
        "gpu:NoSchedule",
        "gpu:Never",
        "KubeNodeConfig.taints.dedicated",
        "taint effect",
    ),
    (
        "KubeletConfig",
        "kubelet:v1.34.1",
        "kubelet:latest",
        "KubeletConfig.image",
        "not a Kubernetes version",
    ),
    (
        "KubeletConfig",
        "maxPods: 150",
        "seccompDefault: false",
        "KubeletConfig.config.seccompDefault",
        "cannot be overridden",
    ),
    (
        "KubeletConfig",
        "- 10.201.0.10",
        "- dns.lab.example",
        "KubeletConfig.clusterDNS[0]",
        "not a valid IP address",
    ),
    (
        "KubeStaticPodConfig",
        "name: echo-server\npod:",
        "name: Echo_Server\npod:",
        "KubeStaticPodConfig \"Echo_Server\".name",
        "not a valid DNS name",
    ),
    (
        "KubeAPIServerConfig",
        "audit-log-maxage: \"7\"",
        "oidc-issuer-url: https://sso.lab.example",
        "KubeAPIServerConfig.extraArgs.oidc-issuer-url",
        "KubeAuthenticationConfig",
    ),
    (
        "KubeAPIServerConfig",
        "    memory: 4Gi",
        "    ephemeral-storage: 4Gi",
        "KubeAPIServerConfig.resources.limits",
        "unsupported pod resource \"ephemeral-storage\"",
    ),
    (
        "KubeAPIServerCAConfig",
        "-----BEGIN PRIVATE KEY-----\n        MC4C",
        "-----BEGIN PRIVATE KEY-----\n        XX4C",
        "KubeAPIServerCAConfig.issuingCA.key",
        "",
    ),
    (
        "KubeAPIServerCAConfig",
        "acceptedCAs:\n  - |\n      -----BEGIN CERTIFICATE-----",
        "acceptedCAs:\n  - |\n      -----BEGIN PRIVATE KEY-----\n      MC4C\n      -----END PRIVATE KEY-----\n      -----BEGIN CERTIFICATE-----",
        "KubeAPIServerCAConfig.acceptedCAs[0]",
        "only CERTIFICATE blocks",
    ),
    (
        "KubeAggregatorCAConfig",
        "-----BEGIN CERTIFICATE-----\n        MIIB",
        "-----BEGIN CERTIFICATE-----\n        XXIB",
        "KubeAggregatorCAConfig.issuingCA.cert",
        "",
    ),
    (
        "KubeServiceAccountConfig",
        "  issuerURL: https://cp.lab.example:6443\n",
        "",
        "KubeServiceAccountConfig.issuer.issuerURL",
        "required",
    ),
    (
        "KubeServiceAccountConfig",
        "-----BEGIN EC PRIVATE KEY-----",
        "-----BEGIN CERTIFICATE-----",
        "KubeServiceAccountConfig.issuer.privateKey",
        "",
    ),
    (
        "KubeAuthorizerConfig",
        "type: RBAC\n",
        "",
        "KubeAuthorizerConfig \"lab-rbac\".type",
        "required",
    ),
    (
        "KubeControllerManagerConfig",
        "image: registry.k8s.io/kube-controller-manager:v1.34.1\n",
        "",
        "KubeControllerManagerConfig.image",
        "required",
    ),
    (
        "KubeSchedulerConfig",
        "    memory: 512Mi",
        "    gpu: 1",
        "KubeSchedulerConfig.resources.limits",
        "unsupported pod resource \"gpu\"",
    ),
    (
        "KubeProxyConfig",
        "image: registry.k8s.io/kube-proxy:v1.34.1\n",
        "",
        "KubeProxyConfig.image",
        "required",
    ),
    (
        "KubeFlannelCNIConfig",
        "backendType: host-gw\n",
        "",
        "KubeFlannelCNIConfig.backendType",
        "required",
    ),
    (
        "KubeExternalManifestConfig",
        "https://manifests.lab.example/cni.yaml",
        "ftp://manifests.lab.example/cni.yaml",
        "KubeExternalManifestConfig \"lab-cni\".url",
        "not http or https",
    ),
    (
        "KubeInlineManifestConfig",
        "name: lab-namespace\n",
        "name: lab.namespace.\n",
        "KubeInlineManifestConfig \"lab.namespace.\".name",
        "not a valid DNS name",
    ),
    (
        "KubePrismConfig",
        "port: 7445",
        "port: 0",
        "KubePrismConfig.port",
        "out of range",
    ),
    (
        "KubeTalosAPIAccessConfig",
        "os:etcd:backup",
        "os:root",
        "KubeTalosAPIAccessConfig.allowedRoles[1]",
        "unknown role \"os:root\"",
    ),
];

#[test]
fn invalid_values_are_reported_with_the_kind_and_field() {
    for (kind, from, to, path, message) in INVALID {
        let text = document(kind);
        assert!(text.contains(from), "{kind}: {from:?} not in\n{text}");
        let input = text.replacen(from, to, 1);
        assert_issue(&validation_errors(&input), path, message);
    }
}

#[test]
fn required_objects_and_names_must_be_present() {
    let cases = [
        (
            "apiVersion: v1alpha1\nkind: KubeStaticPodConfig\nname: empty-pod\n",
            "KubeStaticPodConfig \"empty-pod\".pod",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeAdmissionControlConfig\nconfiguration: {a: 1}\n",
            "KubeAdmissionControlConfig \"\".name",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeAggregatorCAConfig\n",
            "KubeAggregatorCAConfig.issuingCA",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeAggregatorCAConfig\nissuingCA:\n  cert: x\n",
            "KubeAggregatorCAConfig.issuingCA.key",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeEtcdEncryptionConfig\nconfig: {}\n",
            "KubeEtcdEncryptionConfig.config",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeServiceAccountConfig\n",
            "KubeServiceAccountConfig.issuer.privateKey",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeAuthorizerConfig\nname: hook\ntype: Webhook\n",
            "KubeAuthorizerConfig \"hook\".webhook",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeExternalManifestConfig\nname: no-url\n",
            "KubeExternalManifestConfig \"no-url\".url",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeNetworkConfig\n",
            "KubeNetworkConfig.podSubnets",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubePrismConfig\n",
            "KubePrismConfig.port",
        ),
        (
            "apiVersion: v1alpha1\nkind: KubeAPIServerConfig\n",
            "KubeAPIServerConfig.image",
        ),
    ];
    for (input, path) in cases {
        let errors = validation_errors(input);
        assert!(
            errors.iter().any(|e| e.path == path),
            "no error at {path:?}: {errors:#?}"
        );
    }
}

#[test]
fn disabled_components_need_no_image() {
    for kind in [
        "KubeControllerManagerConfig",
        "KubeSchedulerConfig",
        "KubeProxyConfig",
    ] {
        let input = format!("apiVersion: v1alpha1\nkind: {kind}\nenabled: false\n");
        assert!(warnings(&input).is_empty(), "{kind}");
        let enabled = input.replace("enabled: false", "enabled: true");
        assert_issue(
            &validation_errors(&enabled),
            &format!("{kind}.image"),
            "required",
        );
    }
}

#[test]
fn discouraged_settings_are_warnings() {
    let proxy = document("KubeProxyConfig").replace("mode: nftables", "mode: ipvs")
        + "extraArgs:\n  metrics-bind-address: 0.0.0.0:10249\n";
    let found = warnings(&proxy);
    assert_issue(&found, "KubeProxyConfig.mode", "discouraged");
    assert_issue(&found, "KubeProxyConfig.extraArgs", "prefer the config");

    let rbac = document("KubeAuthorizerConfig") + "webhook:\n  timeout: 3s\n";
    assert_issue(
        &warnings(&rbac),
        "KubeAuthorizerConfig \"lab-rbac\".webhook",
        "ignored",
    );
    let config = Config::from_yaml(&rbac).expect("decodes");
    assert!(config.validate(RuntimeMode::Metal, true).is_err());
}

#[test]
fn settings_already_in_the_v1alpha1_document_conflict() {
    // worker.yaml sets machine.kubelet, machine.features.kubePrism, cluster.clusterName,
    // cluster.controlPlane, cluster.network and cluster.ca.
    let cases = [
        ("KubeletConfig", "machine.kubelet"),
        ("KubeCredentialProviderConfig", "machine.kubelet"),
        ("KubePrismConfig", "machine.features.kubePrism"),
        ("KubeClusterConfig", "cluster.clusterName"),
        ("KubeClusterConfig", "cluster.controlPlane.endpoint"),
        ("KubeNetworkConfig", "cluster.network"),
        ("KubeFlannelCNIConfig", "cluster.network"),
        ("KubeAPIServerCAConfig", "cluster.ca"),
        ("KubeNodeConfig", "machine.kubelet.nodeIP"),
    ];
    let with_node_ip = WORKER.replace(
        "        disableManifestsDirectory: true\n",
        "        disableManifestsDirectory: true\n        nodeIP:\n            validSubnets: [10.0.0.0/8]\n",
    );
    for (kind, key) in cases {
        let input = format!("{with_node_ip}---\n{}", document(kind));
        let errors = validation_errors(&input);
        assert!(
            errors
                .iter()
                .any(|e| e.path == kind && e.message.starts_with(&format!("{key} is already set"))),
            "{kind}: no conflict with {key}: {errors:#?}"
        );
    }

    // Control plane component settings in the v1alpha1 document.
    let components = WORKER
        .replace(
            "cluster:\n",
            "cluster:\n    apiServer:\n        admissionControl:\n            - name: PodSecurity\n              configuration: {}\n        auditPolicy:\n            apiVersion: audit.k8s.io/v1\n            kind: Policy\n    controllerManager: {}\n    scheduler: {}\n    proxy: {}\n    coreDNS: {}\n    aggregatorCA: {}\n    serviceAccount: {}\n",
        )
        .replace(
            "        rbac: true\n",
            "        rbac: true\n        kubernetesTalosAPIAccess:\n            enabled: false\n",
        );
    let cases = [
        ("KubeAPIServerConfig", "cluster.apiServer"),
        (
            "KubeAdmissionControlConfig",
            "cluster.apiServer.admissionControl",
        ),
        ("KubeAuthorizerConfig", "cluster.apiServer.admissionControl"),
        ("KubeAuditPolicyConfig", "cluster.apiServer.auditPolicy"),
        ("KubeControllerManagerConfig", "cluster.controllerManager"),
        ("KubeSchedulerConfig", "cluster.scheduler"),
        ("KubeProxyConfig", "cluster.proxy"),
        ("KubeCoreDNSConfig", "cluster.coreDNS"),
        ("KubeAggregatorCAConfig", "cluster.aggregatorCA"),
        ("KubeServiceAccountConfig", "cluster.serviceAccount"),
        (
            "KubeTalosAPIAccessConfig",
            "machine.features.kubernetesTalosAPIAccess",
        ),
    ];
    for (kind, key) in cases {
        let input = format!("{components}---\n{}", document(kind));
        assert_issue(
            &validation_errors(&input),
            kind,
            &format!("{key} is already set"),
        );
    }

    let secretbox = WORKER.replace(
        "    token: 4t8bjv.nw5yzh0q4yrv8fzq\n",
        "    token: 4t8bjv.nw5yzh0q4yrv8fzq\n    secretboxEncryptionSecret: c2VjcmV0Ym94LXNlY3JldC1mb3ItdGVzdHMtb25seSE=\n",
    );
    let input = format!("{secretbox}---\n{}", document("KubeEtcdEncryptionConfig"));
    assert_issue(
        &validation_errors(&input),
        "KubeEtcdEncryptionConfig",
        "cluster.secretboxEncryptionSecret is already set",
    );

    // Kinds with nothing in the v1alpha1 document to conflict with pass next to it.
    let input = format!(
        "{WORKER}---\n{}---\n{}",
        document("KubeInlineManifestConfig"),
        document("KubeTalosAPIAccessConfig")
    );
    Config::from_yaml(&input)
        .expect("decodes")
        .validate(RuntimeMode::Metal, false)
        .expect("no conflict");
}

#[test]
fn named_kinds_are_unique_per_name() {
    for kind in [
        "KubeStaticPodConfig",
        "KubeAdmissionControlConfig",
        "KubeAuthorizerConfig",
        "KubeExternalManifestConfig",
        "KubeInlineManifestConfig",
    ] {
        let text = document(kind);
        let input = format!("{text}---\n{text}");
        let err = Config::from_yaml(&input).unwrap_err();
        assert!(
            matches!(&err, ConfigError::DuplicateDocument { document: 2, kind: k, name: Some(_), .. } if k == kind),
            "{kind}: {err}"
        );
    }
    // Different names coexist (the fixture has two authorizers); singletons may not repeat.
    let text = document("KubeletConfig");
    let err = Config::from_yaml(&format!("{text}---\n{text}")).unwrap_err();
    assert!(
        matches!(&err, ConfigError::DuplicateDocument { name: None, .. }),
        "{err}"
    );
}
