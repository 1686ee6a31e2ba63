//! The sample configurations decode, validate in every runtime mode and survive a round trip.

use machineconfig::documents::{AutoHostname, Document};
use machineconfig::v1alpha1::{ArgValue, DiskSize};
use machineconfig::{Config, MachineType, RuntimeMode};

const CONTROL_PLANE: &str = include_str!("fixtures/controlplane.yaml");
const WORKER: &str = include_str!("fixtures/worker.yaml");
const MULTIDOC: &str = include_str!("fixtures/multidoc.yaml");

const MODES: [RuntimeMode; 3] = [
    RuntimeMode::Metal,
    RuntimeMode::Cloud,
    RuntimeMode::Container,
];

fn assert_round_trip(config: &Config) {
    let written = config.to_yaml().expect("writes");
    let reread = Config::from_yaml(&written)
        .unwrap_or_else(|err| panic!("written config does not load: {err}\n{written}"));
    assert_eq!(&reread, config, "round trip changed the config:\n{written}");
    assert_eq!(
        reread.to_yaml().expect("writes"),
        written,
        "writing is not stable"
    );
}

#[test]
fn control_plane_decodes_with_the_values_written() {
    let config = Config::from_yaml(CONTROL_PLANE).expect("control plane sample decodes");
    assert!(config.is_complete());
    let v1 = config.v1alpha1.as_ref().expect("v1alpha1");
    let machine = v1.machine.as_ref().expect("machine");
    assert_eq!(
        machine.machine_type.parse::<MachineType>().unwrap(),
        MachineType::ControlPlane
    );
    let ca = machine.ca.as_ref().expect("machine.ca");
    let crt = ca.crt.as_deref().expect("machine.ca.crt");
    assert_eq!(
        pki::CertificateInfo::from_pem(crt)
            .expect("a certificate")
            .organizations,
        ["talos"]
    );
    assert!(
        ca.key
            .as_deref()
            .is_some_and(|k| k.contains("ED25519 PRIVATE KEY"))
    );
    let kubelet = machine.kubelet.as_ref().expect("kubelet");
    assert_eq!(kubelet.extra_args["v"], ArgValue::from("2"));
    assert_eq!(
        kubelet.extra_config.as_ref().unwrap()["maxPods"].as_u64(),
        Some(250)
    );
    let network = machine.network.as_ref().expect("network");
    assert_eq!(network.interfaces.len(), 4);
    assert_eq!(network.interfaces[0].vlans[0].vlan_id, 100);
    assert_eq!(network.interfaces[0].bond.as_ref().unwrap().mode, "802.3ad");
    assert_eq!(
        machine.disks[0].partitions[0].size,
        Some(DiskSize(10_000_000_000))
    );
    assert_eq!(
        machine
            .time
            .as_ref()
            .unwrap()
            .boot_timeout
            .as_ref()
            .unwrap()
            .as_duration(),
        std::time::Duration::from_secs(120)
    );
    let cluster = v1.cluster.as_ref().expect("cluster");
    assert_eq!(cluster.allow_scheduling_on_control_planes, Some(true));
    assert_eq!(
        cluster
            .admin_kubeconfig
            .as_ref()
            .unwrap()
            .cert_lifetime
            .as_ref()
            .unwrap()
            .as_str(),
        "87600h"
    );
    assert!(
        cluster.inline_manifests[0]
            .contents
            .starts_with("---\napiVersion: v1\n")
    );
    assert!(cluster.service_account.as_ref().unwrap().key.is_some());
}

#[test]
fn control_plane_validates_in_every_mode_without_warnings() {
    let config = Config::from_yaml(CONTROL_PLANE).unwrap();
    for mode in MODES {
        let warnings = config
            .validate(mode, true)
            .unwrap_or_else(|err| panic!("{mode}: {err}"));
        assert!(warnings.is_empty(), "{mode}: {warnings:?}");
    }
}

#[test]
fn control_plane_round_trips() {
    assert_round_trip(&Config::from_yaml(CONTROL_PLANE).unwrap());
}

#[test]
fn worker_decodes_validates_and_round_trips() {
    let config = Config::from_yaml(WORKER).expect("worker sample decodes");
    let v1 = config.v1alpha1.as_ref().unwrap();
    let machine = v1.machine.as_ref().unwrap();
    // Upstream writes `key: ""` for workers: that is "no key".
    assert_eq!(machine.ca.as_ref().unwrap().key, None);
    assert_eq!(v1.cluster.as_ref().unwrap().ca.as_ref().unwrap().key, None);
    assert!(machine.cert_sans.is_empty());
    for mode in MODES {
        let warnings = config
            .validate(mode, true)
            .unwrap_or_else(|err| panic!("{mode}: {err}"));
        assert!(warnings.is_empty(), "{mode}: {warnings:?}");
    }
    assert_round_trip(&config);
    // Always-emitted keys stay in the output, like upstream's.
    let written = config.to_yaml().unwrap();
    assert!(written.contains("certSANs: []"), "{written}");
    assert!(written.contains("wipe: false"), "{written}");
}

#[test]
fn multi_document_config_decodes_validates_and_round_trips() {
    let config = Config::from_yaml(MULTIDOC).expect("multi-document sample decodes");
    assert!(config.is_complete());
    let kinds: Vec<&str> = config.documents.iter().map(Document::kind).collect();
    assert_eq!(
        kinds,
        [
            "HostnameConfig",
            "ResolverConfig",
            "TimeSyncConfig",
            "SysctlConfig",
            "EnvironmentConfig",
            "DiscoveryIdentityConfig",
            "KubeClusterConfig",
            "KubeNetworkConfig",
        ]
    );
    let Document::Hostname(hostname) = &config.documents[0] else {
        panic!("first document is {:?}", config.documents[0]);
    };
    assert_eq!(hostname.auto, Some(AutoHostname::Off));
    assert_eq!(hostname.hostname.as_deref(), Some("worker-1"));
    for mode in MODES {
        config
            .validate(mode, true)
            .unwrap_or_else(|err| panic!("{mode}: {err}"));
    }
    assert_round_trip(&config);
    let written = config.to_yaml().unwrap();
    assert!(
        written.contains("---\napiVersion: v1alpha1\nkind: HostnameConfig\n"),
        "{written}"
    );
}

#[test]
fn documents_without_v1alpha1_are_an_incomplete_config() {
    let config =
        Config::from_yaml("apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n").unwrap();
    assert!(!config.is_complete());
    assert!(config.validate(RuntimeMode::Metal, false).is_ok());
    assert_round_trip(&config);
}

#[test]
fn empty_documents_and_comments_are_skipped() {
    let config = Config::from_yaml("# nothing\n---\n---\n# still nothing\n").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.to_yaml().unwrap(), "");
}
