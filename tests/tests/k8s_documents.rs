//! A `KubeletConfig` document in place of `machine.kubelet`, rendered into the kubelet
//! configuration a dev-mode node writes (`etc/kubernetes/kubelet.yaml`): its overrides, cluster
//! DNS and seccomp default, changed live; `machine.pods` and a `KubeStaticPodConfig` written as
//! manifests beside the control plane's and a `KubeCredentialProviderConfig` as the kubelet's credential provider
//! configuration, both removed with their documents; a protected field or a conflict with
//! `machine.kubelet` is refused with the file and the config as they were. Loopback block
//! 127.64.0.0/24 (node .3).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize as _;
use serde_norway::Value;
use tests::{Cluster, Node, eventually, failure, success};

const BLOCK: u8 = 64;

const STATIC_POD: &str = "---
apiVersion: v1alpha1
kind: KubeStaticPodConfig
name: node-agent
pod:
  apiVersion: v1
  kind: Pod
  metadata: {name: node-agent, namespace: kube-system}
  spec:
    containers: [{name: agent, image: registry.example/agent:1.0}]
---
apiVersion: v1alpha1
kind: KubeCredentialProviderConfig
configuration:
  apiVersion: kubelet.config.k8s.io/v1
  kind: CredentialProviderConfig
  providers:
    - name: registry-helper
      apiVersion: credentialprovider.kubelet.k8s.io/v1
      matchImages: [registry.example]
      defaultCacheDuration: 10m
";

fn kubelet_document(max_pods: u32) -> String {
    format!(
        "apiVersion: v1alpha1
kind: KubeletConfig
image: ghcr.io/siderolabs/kubelet:v1.34.0
clusterDNS: [10.96.0.53]
defaultRuntimeSeccompProfileEnabled: true
config:
  maxPods: {max_pods}
  systemReserved:
    memory: 1Gi
"
    )
}

/// The generated control-plane config with a pod in `machine.pods`, `machine.kubelet` removed
/// unless `keep_kubelet`, followed by `documents`.
fn config_with(cluster: &Cluster, keep_kubelet: bool, documents: &str) -> String {
    let mut out = Vec::new();
    for document in serde_norway::Deserializer::from_str(&cluster.controlplane_config()) {
        let mut value = Value::deserialize(document).unwrap();
        if value["version"] == "v1alpha1" {
            if !keep_kubelet {
                value["machine"].as_mapping_mut().unwrap().remove("kubelet");
            }
            value["machine"]["pods"] = serde_norway::from_str(
                "[{apiVersion: v1, kind: Pod, metadata: {name: v1alpha1-agent, namespace: kube-system}, \
                 spec: {containers: [{name: agent, image: registry.example/agent:2.0}]}}]",
            )
            .unwrap();
        }
        out.push(serde_norway::to_string(&value).unwrap());
    }
    format!("{}---\n{documents}", out.join("---\n"))
}

fn kubelet_yaml(path: &Path) -> Option<Value> {
    serde_norway::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[test]
fn a_kubelet_config_document_shapes_the_kubelet_configuration() {
    let mut cluster = Cluster::generate(BLOCK);
    let state_dir = cluster.dir.path().join("node-3");
    let config = config_with(&cluster, false, &(kubelet_document(50) + STATIC_POD));
    let node = Node::start(
        Ipv4Addr::new(127, BLOCK, 0, 3),
        state_dir.clone(),
        Some(&config),
    );
    cluster.nodes.push(node);
    cluster.wait_until_answering(&cluster.nodes[0]);

    let file = state_dir.join("etc/kubernetes/kubelet.yaml");
    eventually("kubelet.yaml", || file.exists());
    let kubelet = kubelet_yaml(&file).unwrap();
    assert_eq!(kubelet["maxPods"], 50, "{kubelet:?}");
    assert_eq!(kubelet["clusterDNS"][0], "10.96.0.53");
    assert_eq!(kubelet["seccompDefault"], true);
    assert_eq!(kubelet["systemReserved"]["memory"], "1Gi");
    assert_eq!(
        kubelet["systemReserved"]["pid"], "100",
        "merged, not replaced"
    );

    let manifests = state_dir.join("etc/kubernetes/manifests");
    let pod = kubelet_yaml(&manifests.join("node-agent.yaml")).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "registry.example/agent:1.0"
    );
    assert!(manifests.join("talos-kube-apiserver.yaml").exists());
    let v1alpha1_pod = kubelet_yaml(&manifests.join("kube-system-v1alpha1-agent.yaml")).unwrap();
    assert_eq!(
        v1alpha1_pod["spec"]["containers"][0]["image"],
        "registry.example/agent:2.0"
    );
    let providers = state_dir.join("etc/kubernetes/kubelet-credentialproviderconfig.yaml");
    let provider = kubelet_yaml(&providers).unwrap();
    assert_eq!(provider["providers"][0]["name"], "registry-helper");

    let applied = cluster.apply_no_reboot(
        "apply.yaml",
        &config_with(&cluster, false, &kubelet_document(60)),
    );
    let warnings = String::from_utf8_lossy(&applied.stderr).into_owned();
    success(applied);
    assert!(
        !warnings.contains("KubeletConfig"),
        "reported as not applied: {warnings}"
    );
    eventually("maxPods 60", || {
        kubelet_yaml(&file).is_some_and(|k| k["maxPods"] == 60)
    });
    eventually("the credential provider configuration gone", || {
        !providers.exists()
    });
    eventually("the removed static pod's manifest gone", || {
        !manifests.join("node-agent.yaml").exists()
    });
    assert!(manifests.join("talos-kube-apiserver.yaml").exists());

    let before = std::fs::read(&file).unwrap();
    let persisted = cluster.nodes[0].persisted_config();
    let protected = kubelet_document(60).replace(
        "config:\n",
        "config:\n  authentication: {anonymous: {enabled: true}}\n",
    );
    let error =
        failure(cluster.apply_no_reboot("apply.yaml", &config_with(&cluster, false, &protected)));
    assert!(
        error.contains("KubeletConfig.config.authentication"),
        "{error}"
    );
    let error = failure(cluster.apply_no_reboot(
        "apply.yaml",
        &config_with(&cluster, true, &kubelet_document(60)),
    ));
    assert!(error.contains("machine.kubelet"), "{error}");
    assert_eq!(cluster.nodes[0].persisted_config(), persisted);
    assert_eq!(std::fs::read(&file).unwrap(), before);
}
