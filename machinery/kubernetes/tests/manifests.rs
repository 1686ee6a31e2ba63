#![allow(clippy::unwrap_used)]
//! Static pod manifests and the kubelet configuration, parsed back with serde_norway.

use kubernetes::{NodeInfo, kubelet_configuration, static_pods};
use machineconfig::Config;
use machineconfig::generate::{ClusterSpec, controlplane, worker};
use pki::SecretsBundle;
use serde_norway::Value;

fn node() -> NodeInfo {
    NodeInfo {
        hostname: "cp-1".into(),
        domainname: None,
        addresses: vec!["10.5.0.2".parse().unwrap()],
    }
}

fn config_with(patch: &str) -> Config {
    let bundle = SecretsBundle::generate().unwrap();
    let spec = ClusterSpec::new("demo", "https://10.5.0.2:6443");
    let config = controlplane(&bundle, &spec).unwrap();
    if patch.is_empty() {
        return config;
    }
    let patched = machineconfig::patch::apply_patches(
        &config.to_yaml().unwrap(),
        &[machineconfig::patch::Patch::parse(patch).unwrap()],
    )
    .unwrap();
    Config::from_yaml(&patched).unwrap()
}

fn pods(config: &Config) -> Vec<(String, Value)> {
    static_pods(config, &node())
        .unwrap()
        .into_iter()
        .map(|(name, yaml)| (name, serde_norway::from_str(&yaml).unwrap()))
        .collect()
}

fn command(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"][0]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn has(command: &[String], flag: &str) -> bool {
    command.iter().any(|c| c == flag)
}

#[test]
fn a_control_plane_runs_three_static_pods_with_upstream_flags() {
    let config = config_with("");
    let pods = pods(&config);
    let names: Vec<&str> = pods.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "talos-kube-apiserver.yaml",
            "talos-kube-controller-manager.yaml",
            "talos-kube-scheduler.yaml"
        ]
    );
    let api = &pods[0].1;
    assert_eq!(api["apiVersion"], "v1");
    assert_eq!(api["kind"], "Pod");
    assert_eq!(api["metadata"]["namespace"], "kube-system");
    assert_eq!(
        api["metadata"]["labels"]["app.kubernetes.io/version"],
        "1.35.0"
    );
    assert_eq!(api["spec"]["hostNetwork"], true);
    assert_eq!(api["spec"]["priorityClassName"], "system-cluster-critical");
    assert_eq!(api["spec"]["securityContext"]["runAsUser"], 65534);
    let container = &api["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.k8s.io/kube-apiserver:v1.35.0");
    assert_eq!(container["resources"]["requests"]["cpu"], "200m");
    assert_eq!(
        container["securityContext"]["capabilities"]["add"][0],
        "NET_BIND_SERVICE"
    );
    let cmd = command(api);
    assert_eq!(cmd[0], "/usr/local/bin/kube-apiserver");
    let mut sorted = cmd[1..].to_vec();
    sorted.sort();
    assert_eq!(sorted, cmd[1..], "flags sorted by name");
    for flag in [
        "--etcd-servers=https://localhost:2379",
        "--secure-port=6443",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--service-account-issuer=https://10.5.0.2:6443",
        "--api-audiences=https://10.5.0.2:6443",
        "--tls-cert-file=/system/secrets/kubernetes/kube-apiserver/apiserver.crt",
        "--tls-private-key-file=/system/secrets/kubernetes/kube-apiserver/apiserver.key",
        "--client-ca-file=/system/secrets/kubernetes/kube-apiserver/ca.crt",
        "--kubelet-client-certificate=/system/secrets/kubernetes/kube-apiserver/apiserver-kubelet-client.crt",
        "--proxy-client-cert-file=/system/secrets/kubernetes/kube-apiserver/front-proxy-client.crt",
        "--requestheader-allowed-names=front-proxy-client",
        "--service-account-key-file=/system/secrets/kubernetes/kube-apiserver/service-account.pub",
        "--enable-admission-plugins=NodeRestriction",
        "--anonymous-auth=false",
        "--advertise-address=10.5.0.2",
        "--authorization-config=/system/config/kubernetes/kube-apiserver/authorization-config.yaml",
    ] {
        assert!(has(&cmd, flag), "{flag} in {cmd:#?}");
    }
    let mounts = &container["volumeMounts"];
    assert_eq!(
        mounts[0]["mountPath"],
        "/system/secrets/kubernetes/kube-apiserver"
    );
    assert_eq!(mounts[0]["readOnly"], true);

    let cm = &pods[1].1;
    let cmd = command(cm);
    assert_eq!(cmd[1], "--use-service-account-credentials");
    for flag in [
        "--cluster-cidr=10.244.0.0/16",
        "--controllers=*,tokencleaner",
        "--cluster-signing-key-file=/system/secrets/kubernetes/kube-controller-manager/ca.key",
        "--kubeconfig=/system/secrets/kubernetes/kube-controller-manager/kubeconfig",
    ] {
        assert!(has(&cmd, flag), "{flag} in {cmd:#?}");
    }
    let probe = &cm["spec"]["containers"][0]["livenessProbe"]["httpGet"];
    assert_eq!(probe["port"], 10257);
    assert_eq!(probe["scheme"], "HTTPS");

    let scheduler = &pods[2].1;
    let cmd = command(scheduler);
    assert!(has(
        &cmd,
        "--config=/system/config/kubernetes/kube-scheduler/scheduler-config.yaml"
    ));
    assert_eq!(
        scheduler["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
}

#[test]
fn config_images_extra_args_volumes_env_and_resources_reach_the_pods() {
    let config = config_with(
        "cluster:
  apiServer:
    image: registry.example.org/kube-apiserver:v1.29.4
    extraArgs:
      enable-admission-plugins: AlwaysPullImages
      service-account-issuer: https://issuer.example.org
      v: '4'
    extraVolumes:
      - hostPath: /var/lib/audit
        mountPath: /var/audit/extra
        readonly: true
    env:
      PRICE: '$5'
    resources:
      limits:
        memory: 1000Mi
  controllerManager:
    extraArgs:
      controllers: bootstrapsigner
machine:
  controlPlane:
    scheduler:
      disabled: true
",
    );
    let pods = pods(&config);
    assert_eq!(pods.len(), 2, "the scheduler is turned off");
    let api = &pods[0].1;
    let container = &api["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "registry.example.org/kube-apiserver:v1.29.4"
    );
    let cmd = command(api);
    for flag in [
        "--enable-admission-plugins=NodeRestriction,AlwaysPullImages",
        "--service-account-issuer=https://10.5.0.2:6443",
        "--service-account-issuer=https://issuer.example.org",
        "--v=4",
        // Before 1.30 there is no authorization config file.
        "--authorization-mode=Node,RBAC",
    ] {
        assert!(has(&cmd, flag), "{flag} in {cmd:#?}");
    }
    assert!(!cmd.iter().any(|c| c.starts_with("--authorization-config")));
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    let extra = mounts
        .iter()
        .find(|m| m["name"] == "var-audit-extra")
        .unwrap();
    assert_eq!(extra["mountPath"], "/var/audit/extra");
    assert_eq!(extra["readOnly"], true);
    let volumes = api["spec"]["volumes"].as_sequence().unwrap();
    let volume = volumes
        .iter()
        .find(|v| v["name"] == "var-audit-extra")
        .unwrap();
    assert_eq!(volume["hostPath"]["path"], "/var/lib/audit");
    let env = container["env"].as_sequence().unwrap();
    assert_eq!(env[0]["name"], "POD_IP");
    assert!(
        env.iter()
            .any(|e| e["name"] == "PRICE" && e["value"] == "$$5")
    );
    assert!(
        env.iter()
            .any(|e| e["name"] == "GOMEMLIMIT" && e["value"] == "996147200")
    );
    assert_eq!(container["resources"]["limits"]["memory"], "1000Mi");

    let cm_cmd = command(&pods[1].1);
    assert!(has(&cm_cmd, "--controllers=*,tokencleaner,bootstrapsigner"));
}

#[test]
fn flags_talos_owns_cannot_be_overridden() {
    let config = config_with(
        "cluster:
  apiServer:
    extraArgs:
      tls-cert-file: /mine.crt
",
    );
    let error = static_pods(&config, &node()).unwrap_err();
    assert!(error.to_string().contains("--tls-cert-file"), "{error}");
    assert!(
        error.to_string().contains("cluster.apiServer.extraArgs"),
        "{error}"
    );
}

#[test]
fn kubelet_configuration_has_the_fields_talos_sets() {
    let config = config_with("");
    let text = kubelet_configuration(&config, &node()).unwrap();
    let kubelet: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(kubelet["apiVersion"], "kubelet.config.k8s.io/v1beta1");
    assert_eq!(kubelet["kind"], "KubeletConfiguration");
    assert_eq!(kubelet["clusterDomain"], "cluster.local");
    assert_eq!(kubelet["clusterDNS"][0], "10.96.0.10");
    assert_eq!(kubelet["authentication"]["anonymous"]["enabled"], false);
    assert_eq!(kubelet["authentication"]["webhook"]["enabled"], true);
    assert_eq!(
        kubelet["authentication"]["x509"]["clientCAFile"],
        "/etc/kubernetes/pki/ca.crt"
    );
    assert_eq!(kubelet["authorization"]["mode"], "Webhook");
    assert_eq!(kubelet["rotateCertificates"], true);
    assert_eq!(kubelet["address"], "0.0.0.0");
    assert_eq!(kubelet["port"], 10250);
    assert_eq!(kubelet["tlsMinVersion"], "VersionTLS13");
    assert_eq!(kubelet["seccompDefault"], true);
    assert_eq!(
        kubelet["containerRuntimeEndpoint"],
        "unix:///run/containerd/containerd.sock"
    );
    // gen config turns the manifests directory off, as upstream does.
    assert!(kubelet.get("staticPodPath").is_none());
}

#[test]
fn kubelet_extra_config_merges_and_dns_settings_are_honoured() {
    let config = config_with(
        "machine:
  kubelet:
    disableManifestsDirectory: false
    clusterDNS: [169.254.20.10]
    extraConfig:
      serializeImagePulls: true
      systemReserved:
        memory: 1Gi
cluster:
  network:
    dnsDomain: corp.internal
",
    );
    let ipv6 = NodeInfo {
        hostname: "cp-1".into(),
        domainname: None,
        addresses: vec!["fd00::2".parse().unwrap()],
    };
    let kubelet: Value =
        serde_norway::from_str(&kubelet_configuration(&config, &ipv6).unwrap()).unwrap();
    assert_eq!(kubelet["clusterDNS"][0], "169.254.20.10");
    assert_eq!(kubelet["clusterDomain"], "corp.internal");
    assert_eq!(kubelet["staticPodPath"], "/etc/kubernetes/manifests");
    assert_eq!(kubelet["serializeImagePulls"], true);
    assert_eq!(kubelet["systemReserved"]["memory"], "1Gi");
    assert_eq!(
        kubelet["systemReserved"]["pid"], "100",
        "merged, not replaced"
    );
    assert_eq!(kubelet["address"], "::");

    let denied = config_with(
        "machine:
  kubelet:
    extraConfig:
      authentication:
        anonymous:
          enabled: true
",
    );
    let error = kubelet_configuration(&denied, &node()).unwrap_err();
    assert!(error.to_string().contains("authentication"), "{error}");
}

#[test]
fn a_kubelet_config_document_takes_the_place_of_machine_kubelet() {
    let yaml = config_with("").to_yaml().unwrap();
    let mut documents: Vec<Value> = serde_norway::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let v1alpha1 = documents
        .iter_mut()
        .find(|d| d["version"] == "v1alpha1")
        .unwrap();
    v1alpha1["machine"]
        .as_mapping_mut()
        .unwrap()
        .remove("kubelet");
    let mut text: Vec<String> = documents
        .iter()
        .map(|d| serde_norway::to_string(d).unwrap())
        .collect();
    let document = "apiVersion: v1alpha1
kind: KubeletConfig
image: ghcr.io/siderolabs/kubelet:v1.34.0
clusterDNS: [10.96.0.53]
defaultRuntimeSeccompProfileEnabled: true
config:
  maxPods: 50
  systemReserved:
    memory: 1Gi
";
    text.push(document.to_string());
    let config = Config::from_yaml(&text.join("---\n")).unwrap();
    assert_eq!(
        kubernetes::kubelet_image(&config).as_deref(),
        Some("ghcr.io/siderolabs/kubelet:v1.34.0")
    );
    let kubelet: Value =
        serde_norway::from_str(&kubelet_configuration(&config, &node()).unwrap()).unwrap();
    assert_eq!(kubelet["clusterDNS"][0], "10.96.0.53");
    assert_eq!(kubelet["seccompDefault"], true);
    assert_eq!(kubelet["maxPods"], 50);
    assert_eq!(kubelet["systemReserved"]["memory"], "1Gi");
    assert_eq!(
        kubelet["systemReserved"]["pid"], "100",
        "merged, not replaced"
    );
}

#[test]
fn workers_get_a_kubelet_configuration_too() {
    let bundle = SecretsBundle::generate().unwrap();
    let config = worker(&bundle, &ClusterSpec::new("demo", "https://10.5.0.2:6443")).unwrap();
    let kubelet: Value =
        serde_norway::from_str(&kubelet_configuration(&config, &node()).unwrap()).unwrap();
    assert_eq!(kubelet["clusterDNS"][0], "10.96.0.10");
}
