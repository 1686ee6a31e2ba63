//! Validation rules, one test per family: each shows the path and the text of the problem.

use std::collections::BTreeMap;

use machineconfig::documents::{AutoHostname, Document, HostnameConfig, KubeNetworkConfig};
use machineconfig::v1alpha1::*;
use machineconfig::{Config, ConfigError, RuntimeMode, ValidationIssue};
use pki::{PemCertificate, PemCertificateAndKey};

const CONTROL_PLANE: &str = include_str!("fixtures/controlplane.yaml");
const WORKER: &str = include_str!("fixtures/worker.yaml");

fn control_plane() -> V1Alpha1Config {
    Config::from_yaml(CONTROL_PLANE)
        .expect("sample decodes")
        .v1alpha1
        .expect("sample has a v1alpha1 document")
}

fn worker() -> V1Alpha1Config {
    Config::from_yaml(WORKER)
        .expect("sample decodes")
        .v1alpha1
        .expect("sample has a v1alpha1 document")
}

/// The sample's Talos CA: a real certificate and its key.
fn talos_ca() -> PemCertificateAndKey {
    machine(&mut control_plane())
        .ca
        .clone()
        .expect("sample has machine.ca")
}

fn machine(config: &mut V1Alpha1Config) -> &mut MachineConfig {
    config.machine.as_mut().expect("machine present")
}

fn cluster(config: &mut V1Alpha1Config) -> &mut ClusterConfig {
    config.cluster.as_mut().expect("cluster present")
}

fn network(config: &mut V1Alpha1Config) -> &mut NetworkConfig {
    machine(config).network.get_or_insert_with(Default::default)
}

/// All errors of a config that must fail validation.
fn errors_in(config: &V1Alpha1Config, mode: RuntimeMode, strict: bool) -> Vec<ValidationIssue> {
    match config.validate(mode, strict) {
        Err(ConfigError::Invalid { errors }) => errors,
        Err(other) => panic!("unexpected error: {other}"),
        Ok(warnings) => panic!("validation passed (warnings: {warnings:?})"),
    }
}

fn errors(config: &V1Alpha1Config) -> Vec<ValidationIssue> {
    errors_in(config, RuntimeMode::Metal, false)
}

fn warnings(config: &V1Alpha1Config) -> Vec<ValidationIssue> {
    config
        .validate(RuntimeMode::Metal, false)
        .unwrap_or_else(|err| panic!("validation failed: {err}"))
}

/// Asserts that `issues` has one at `path` whose message contains `text`.
#[track_caller]
fn assert_issue(issues: &[ValidationIssue], path: &str, text: &str) {
    assert!(
        issues
            .iter()
            .any(|i| i.path == path && i.message.contains(text)),
        "no issue at {path:?} containing {text:?} in:\n{issues:#?}"
    );
}

#[test]
fn machine_and_cluster_are_required() {
    let config = V1Alpha1Config {
        version: Some("v1alpha1".into()),
        ..Default::default()
    };
    let errs = errors(&config);
    assert_eq!(
        errs,
        [ValidationIssue {
            path: "machine".into(),
            message: "machine instructions are required".into()
        }]
    );
    let mut config = worker();
    config.cluster = None;
    assert_issue(
        &errors(&config),
        "cluster",
        "cluster instructions are required",
    );
}

#[test]
fn persist_false_and_unknown_version() {
    let mut config = worker();
    config.persist = Some(false);
    config.version = Some("v1alpha2".into());
    let errs = errors(&config);
    assert_issue(&errs, "persist", "persist should be enabled");
    assert_issue(&errs, "version", "unknown version \"v1alpha2\"");
}

#[test]
fn every_error_is_reported_at_once() {
    let mut config = worker();
    config.persist = Some(false);
    cluster(&mut config).network.as_mut().unwrap().dns_domain = Some("Not_A_Domain".into());
    machine(&mut config).token = "nope".into();
    let err = config.validate(RuntimeMode::Cloud, false).unwrap_err();
    let ConfigError::Invalid { errors } = &err else {
        panic!("{err}")
    };
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let text = err.to_string();
    assert!(
        text.starts_with("3 errors in the configuration:\n  * "),
        "{text}"
    );
    assert!(
        text.contains("\n  * persist: persist should be enabled"),
        "{text}"
    );
}

#[test]
fn control_plane_endpoint_must_be_a_url() {
    let mut config = worker();
    cluster(&mut config)
        .control_plane
        .as_mut()
        .unwrap()
        .endpoint = "10.5.0.10:6443".into();
    assert_issue(
        &errors(&config),
        "cluster.controlPlane.endpoint",
        "not a valid URL",
    );
    cluster(&mut config)
        .control_plane
        .as_mut()
        .unwrap()
        .endpoint = String::new();
    assert_issue(
        &errors(&config),
        "cluster.controlPlane.endpoint",
        "endpoint is required",
    );
}

#[test]
fn dns_domain_must_be_a_dns_name() {
    let mut config = worker();
    cluster(&mut config).network.as_mut().unwrap().dns_domain = Some("cluster..local".into());
    assert_issue(
        &errors(&config),
        "cluster.network.dnsDomain",
        "not a valid DNS name",
    );
}

#[test]
fn machine_type_unknown_is_an_error_and_legacy_names_warn() {
    let mut config = worker();
    machine(&mut config).machine_type = "master".into();
    assert_issue(
        &errors(&config),
        "machine.type",
        "unknown machine type \"master\"",
    );

    machine(&mut config).machine_type = "join".into();
    let warns = warnings(&config);
    assert_issue(
        &warns,
        "machine.type",
        "machine type \"join\" is deprecated, use \"worker\"",
    );
    // Strict mode turns the warning into an error.
    assert_issue(
        &errors_in(&config, RuntimeMode::Metal, true),
        "machine.type",
        "deprecated",
    );

    machine(&mut config).machine_type = String::new();
    assert_issue(
        &warnings(&config),
        "machine.type",
        "an empty machine type is deprecated",
    );
}

#[test]
fn control_plane_needs_both_cas_with_keys() {
    let mut config = control_plane();
    machine(&mut config).ca.as_mut().unwrap().key = None;
    cluster(&mut config).ca = None;
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.ca.key",
        "the CA key is required on control plane nodes",
    );
    assert_issue(
        &errs,
        "cluster.ca.crt",
        "the CA certificate is required on control plane nodes",
    );
    assert_issue(
        &errs,
        "cluster.ca.key",
        "the CA key is required on control plane nodes",
    );
}

#[test]
fn workers_must_not_carry_ca_keys_and_need_a_ca() {
    let mut config = worker();
    machine(&mut config).ca.as_mut().unwrap().key = talos_ca().key;
    cluster(&mut config).ca.as_mut().unwrap().key = talos_ca().key;
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.ca.key",
        "must not be present on worker nodes",
    );
    assert_issue(
        &errs,
        "cluster.ca.key",
        "must not be present on worker nodes",
    );

    let mut config = worker();
    machine(&mut config).ca = None;
    assert_issue(
        &errors(&config),
        "machine.ca",
        "machine.ca.crt or machine.acceptedCAs is required",
    );

    // Accepted CAs alone are enough for a worker.
    machine(&mut config).accepted_cas = vec![PemCertificate {
        crt: talos_ca().crt,
    }];
    assert!(config.validate(RuntimeMode::Metal, true).is_ok());
}

#[test]
fn etcd_rules() {
    let mut config = worker();
    cluster(&mut config).etcd = Some(EtcdConfig::default());
    assert_issue(
        &errors(&config),
        "cluster.etcd",
        "not allowed on worker nodes",
    );

    let mut config = control_plane();
    let etcd = cluster(&mut config).etcd.as_mut().unwrap();
    etcd.ca = Some(PemCertificateAndKey {
        crt: talos_ca().crt,
        key: None,
    });
    etcd.subnet = Some("10.0.0.0/8".into());
    etcd.listen_subnets = vec!["10.0.0.0/33".into()];
    let errs = errors(&config);
    assert_issue(&errs, "cluster.etcd.ca.key", "etcd CA key is required");
    assert_issue(&errs, "cluster.etcd.subnet", "mutually exclusive");
    assert_issue(&errs, "cluster.etcd.listenSubnets[0]", "not a valid subnet");

    cluster(&mut config).etcd = None;
    assert_issue(
        &errors(&config),
        "cluster.etcd.ca.crt",
        "etcd CA certificate is required",
    );
}

#[test]
fn cidrs_are_parsed_everywhere() {
    let mut config = control_plane();
    let net = cluster(&mut config).network.as_mut().unwrap();
    net.pod_subnets.push("10.244.0.0".into());
    net.service_subnets = vec!["10.96.0.0/40".into()];
    let device = &mut network(&mut config).interfaces[0];
    device.addresses.push("10.5.0.300/24".into());
    device.routes.push(Route {
        network: "default".into(),
        ..Default::default()
    });
    machine(&mut config).kubelet.as_mut().unwrap().node_ip = Some(KubeletNodeIp {
        valid_subnets: vec!["!10.0.0.0/8".into(), "!bogus".into()],
    });
    let errs = errors(&config);
    assert_issue(
        &errs,
        "cluster.network.podSubnets[1]",
        "\"10.244.0.0\" is not a valid CIDR",
    );
    assert_issue(
        &errs,
        "cluster.network.serviceSubnets[0]",
        "not a valid CIDR",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[0].addresses[1]",
        "not a valid address",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[0].routes[1].network",
        "not a valid CIDR",
    );
    assert_issue(
        &errs,
        "machine.kubelet.nodeIP.validSubnets[1]",
        "\"!bogus\" is not a valid subnet",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn cni_rules() {
    let mut config = control_plane();
    let cni = cluster(&mut config)
        .network
        .as_mut()
        .unwrap()
        .cni
        .as_mut()
        .unwrap();
    cni.urls = vec!["https://example.org/cni.yaml".into()];
    assert_issue(
        &errors(&config),
        "cluster.network.cni.urls",
        "only be set for the custom CNI",
    );

    let cni = cluster(&mut config)
        .network
        .as_mut()
        .unwrap()
        .cni
        .as_mut()
        .unwrap();
    cni.name = "none".into();
    cni.urls.clear();
    assert_issue(
        &errors(&config),
        "cluster.network.cni.flannel",
        "only be set for the flannel CNI",
    );

    let cni = cluster(&mut config)
        .network
        .as_mut()
        .unwrap()
        .cni
        .as_mut()
        .unwrap();
    cni.name = "custom".into();
    cni.flannel = None;
    assert_issue(
        &warnings(&config),
        "cluster.network.cni.urls",
        "custom CNI has no manifest URLs",
    );

    let cni = cluster(&mut config)
        .network
        .as_mut()
        .unwrap()
        .cni
        .as_mut()
        .unwrap();
    cni.name = "calico".into();
    assert_issue(
        &errors(&config),
        "cluster.network.cni.name",
        "unknown CNI \"calico\"",
    );

    // CNI rules are control plane rules.
    let mut config = worker();
    cluster(&mut config).network.as_mut().unwrap().cni = Some(CniConfig {
        name: "calico".into(),
        ..Default::default()
    });
    assert!(config.validate(RuntimeMode::Metal, true).is_ok());
}

#[test]
fn vip_is_not_allowed_on_workers() {
    let mut config = worker();
    network(&mut config).interfaces = vec![Device {
        interface: Some("eth0".into()),
        vip: Some(Vip {
            ip: "10.5.0.10".into(),
            ..Default::default()
        }),
        vlans: vec![Vlan {
            vlan_id: 10,
            vip: Some(Vip {
                ip: "10.6.0.10".into(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }];
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.network.interfaces[0].vip",
        "not allowed on worker nodes",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[0].vlans[0].vip",
        "not allowed on worker nodes",
    );
}

#[test]
fn bond_and_bridge_rules() {
    let mut config = control_plane();
    let interfaces = &mut network(&mut config).interfaces;
    // The bond enslaves eth0 and eth1; the bridge br0 enslaves eth2.
    interfaces[2]
        .bridge
        .as_mut()
        .unwrap()
        .interfaces
        .push("eth1".into());
    interfaces[2].bond = Some(Bond {
        mode: "active-backup".into(),
        ..Default::default()
    });
    interfaces[0].bond.as_mut().unwrap().device_selectors = vec![DeviceSelector {
        driver: Some("e1000".into()),
        ..Default::default()
    }];
    interfaces.push(Device {
        interface: Some("eth2".into()),
        bridge_port: Some(BridgePort {
            master: "br1".into(),
        }),
        ..Default::default()
    });
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.network.interfaces[2]",
        "cannot be both a bond and a bridge",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[0].bond",
        "interfaces and deviceSelectors are mutually exclusive",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[2].bridge.interfaces[1] (bridge \"br0\")",
        "link \"eth1\" is already enslaved by machine.network.interfaces[0].bond.interfaces[1] (bond \"bond0\")",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[4].bridgePort (bridge \"br1\")",
        "link \"eth2\" is already enslaved",
    );
}

#[test]
fn bond_options_are_checked_against_the_mode() {
    let mut config = control_plane();
    let bond = network(&mut config).interfaces[0].bond.as_mut().unwrap();
    bond.mode = "active-backup".into();
    bond.xmit_hash_policy = Some("layer9".into());
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.network.interfaces[0].bond.lacpRate",
        "not valid in bond mode \"active-backup\"",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[0].bond.xmitHashPolicy",
        "invalid value \"layer9\"",
    );

    let bond = network(&mut config).interfaces[0].bond.as_mut().unwrap();
    bond.mode = "fastest".into();
    assert_issue(
        &errors(&config),
        "machine.network.interfaces[0].bond.mode",
        "unknown bond mode \"fastest\"",
    );
}

#[test]
fn interface_needs_a_name_or_selector() {
    let mut config = control_plane();
    let interfaces = &mut network(&mut config).interfaces;
    interfaces.push(Device {
        dhcp: Some(true),
        ..Default::default()
    });
    interfaces.push(Device {
        interface: Some("eth9".into()),
        device_selector: Some(DeviceSelector::default()),
        ..Default::default()
    });
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.network.interfaces[4]",
        "interface or deviceSelector is required",
    );
    assert_issue(&errs, "machine.network.interfaces[5]", "mutually exclusive");
    assert_issue(
        &errs,
        "machine.network.interfaces[5].deviceSelector",
        "at least one property",
    );
}

#[test]
fn vlan_ids_are_1_to_4095() {
    let mut config = control_plane();
    let vlans = &mut network(&mut config).interfaces[0].vlans;
    vlans[0].vlan_id = 0;
    vlans.push(Vlan {
        vlan_id: 4096,
        ..Default::default()
    });
    vlans.push(Vlan {
        vlan_id: 4095,
        ..Default::default()
    });
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.network.interfaces[0].vlans[0].vlanId",
        "VLAN ID 0 is out of range",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[0].vlans[1].vlanId",
        "VLAN ID 4096 is out of range",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn wireguard_keys_and_peers() {
    let mut config = control_plane();
    let wireguard = network(&mut config).interfaces[3]
        .wireguard
        .as_mut()
        .unwrap();
    wireguard.private_key = "not-a-key".into();
    wireguard.peers[0].endpoint = Some("192.168.1.3".into());
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.network.interfaces[3].wireguard.privateKey",
        "not a valid WireGuard key",
    );
    assert_issue(
        &errs,
        "machine.network.interfaces[3].wireguard.peers[0].endpoint",
        "not a valid host:port",
    );
}

#[test]
fn kubespan_mtu_minimum_and_filters() {
    let mut config = control_plane();
    let kubespan = network(&mut config).kubespan.as_mut().unwrap();
    kubespan.mtu = Some(1279);
    kubespan
        .filters
        .as_mut()
        .unwrap()
        .exclude_advertised_networks = vec!["nope".into()];
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.network.kubespan.mtu",
        "KubeSpan MTU 1279 is below the minimum of 1280",
    );
    assert_issue(
        &errs,
        "machine.network.kubespan.filters.excludeAdvertisedNetworks[0]",
        "not a valid CIDR",
    );
}

#[test]
fn network_ips_are_checked() {
    let mut config = control_plane();
    network(&mut config)
        .nameservers
        .push("dns.example.org".into());
    network(&mut config).extra_host_entries[0].ip = "10.5.0".into();
    machine(&mut config).kubelet.as_mut().unwrap().cluster_dns = vec!["10.96.0.300".into()];
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.network.nameservers[2]",
        "\"dns.example.org\" is not a valid IP address",
    );
    assert_issue(
        &errs,
        "machine.network.extraHostEntries[0].ip",
        "not a valid IP address",
    );
    assert_issue(
        &errs,
        "machine.kubelet.clusterDNS[0]",
        "not a valid IP address",
    );
}

#[test]
fn only_the_last_partition_may_have_size_zero() {
    let mut config = control_plane();
    machine(&mut config).disks[0].partitions.insert(
        0,
        DiskPartition {
            size: Some(DiskSize(0)),
            mountpoint: "/var/mnt/first".into(),
        },
    );
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.disks[0].partitions[0].size",
        "only the last partition may have size 0",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn encryption_keys_and_slots() {
    let mut config = control_plane();
    let encryption = machine(&mut config)
        .system_disk_encryption
        .as_mut()
        .unwrap();
    encryption.state = Some(EncryptionConfig {
        provider: "luks2".into(),
        ..Default::default()
    });
    let ephemeral = encryption.ephemeral.as_mut().unwrap();
    ephemeral.keys[1].slot = 0;
    ephemeral.keys.push(EncryptionKey {
        slot: 2,
        ..Default::default()
    });
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.systemDiskEncryption.state.keys",
        "no encryption keys",
    );
    assert_issue(
        &errs,
        "machine.systemDiskEncryption.ephemeral.keys[1].slot",
        "key slot 0 is used by more than one key",
    );
    assert_issue(
        &errs,
        "machine.systemDiskEncryption.ephemeral.keys[2]",
        "the key has no provider",
    );
}

#[test]
fn install_rules_apply_in_metal_mode_only() {
    let mut config = worker();
    let install = machine(&mut config).install.as_mut().unwrap();
    install.disk = None;
    install.extra_kernel_args = vec!["console=ttyS0".into()];
    install.grub_use_uki_cmdline = Some(true);
    let errs = errors_in(&config, RuntimeMode::Metal, false);
    assert_issue(
        &errs,
        "machine.install",
        "an install disk or disk selector is required",
    );
    assert_issue(
        &errs,
        "machine.install.extraKernelArgs",
        "cannot be used together with grubUseUKICmdline",
    );
    assert!(config.validate(RuntimeMode::Cloud, true).is_ok());
    assert!(config.validate(RuntimeMode::Container, true).is_ok());

    // A disk selector is enough; its values are checked.
    let install = machine(&mut config).install.as_mut().unwrap();
    install.grub_use_uki_cmdline = None;
    install.disk_selector = Some(InstallDiskSelector {
        size: Some(">= 1TB".into()),
        disk_type: Some("floppy".into()),
        ..Default::default()
    });
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.install.diskSelector.type",
        "unknown disk type \"floppy\"",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn install_extensions_are_deprecated_and_unique() {
    let mut config = worker();
    let extension = InstallExtension {
        image: "ghcr.io/siderolabs/gvisor:v1".into(),
    };
    machine(&mut config).install.as_mut().unwrap().extensions = vec![extension.clone()];
    assert_issue(
        &warnings(&config),
        "machine.install.extensions",
        "deprecated",
    );
    machine(&mut config)
        .install
        .as_mut()
        .unwrap()
        .extensions
        .push(extension);
    assert_issue(
        &errors(&config),
        "machine.install.extensions[1].image",
        "duplicate extension",
    );
}

#[test]
fn host_dns_forwarding_needs_host_dns() {
    let mut config = worker();
    let features = machine(&mut config).features.as_mut().unwrap();
    features.host_dns.as_mut().unwrap().enabled = Some(false);
    assert_issue(
        &errors(&config),
        "machine.features.hostDNS.forwardKubeDNSToHost",
        "requires hostDNS to be enabled",
    );
}

#[test]
fn kubernetes_talos_api_access_is_for_control_planes_with_valid_roles() {
    let mut config = control_plane();
    let access = machine(&mut config)
        .features
        .as_mut()
        .unwrap()
        .kubernetes_talos_api_access
        .as_mut()
        .unwrap();
    access.allowed_roles.push("os:root".into());
    assert_issue(
        &errors(&config),
        "machine.features.kubernetesTalosAPIAccess.allowedRoles[1]",
        "invalid role \"os:root\"",
    );

    let mut config = worker();
    machine(&mut config)
        .features
        .as_mut()
        .unwrap()
        .kubernetes_talos_api_access = Some(KubernetesTalosApiAccess {
        enabled: Some(true),
        allowed_roles: vec!["os:reader".into()],
        ..Default::default()
    });
    assert_issue(
        &errors(&config),
        "machine.features.kubernetesTalosAPIAccess",
        "only be enabled on control plane nodes",
    );
}

#[test]
fn node_labels_annotations_and_taints_follow_kubernetes_rules() {
    let mut config = worker();
    let m = machine(&mut config);
    m.node_labels = BTreeMap::from([
        ("-bad".to_string(), "x".to_string()),
        ("good".to_string(), "has space".to_string()),
    ]);
    m.node_annotations = BTreeMap::from([("UPPER.example.org/x".to_string(), "v".to_string())]);
    m.node_taints = BTreeMap::from([("dedicated".to_string(), "gpu:Never".to_string())]);
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.nodeLabels.-bad",
        "must start and end with an alphanumeric",
    );
    assert_issue(&errs, "machine.nodeLabels.good", "label value");
    assert_issue(
        &errs,
        "machine.nodeAnnotations.UPPER.example.org/x",
        "not a valid DNS name",
    );
    assert_issue(
        &errs,
        "machine.nodeTaints.dedicated",
        "taint effect \"Never\"",
    );
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn node_address_sort_algorithm() {
    let mut config = worker();
    machine(&mut config)
        .features
        .as_mut()
        .unwrap()
        .node_address_sort_algorithm = Some("v3".into());
    assert_issue(
        &errors(&config),
        "machine.features.nodeAddressSortAlgorithm",
        "unknown node address sort algorithm",
    );
}

#[test]
fn discovery_service_needs_a_bare_url_and_the_cluster_identity() {
    let mut config = worker();
    let c = cluster(&mut config);
    c.id = None;
    c.secret = Some(String::new());
    c.discovery
        .as_mut()
        .unwrap()
        .registries
        .as_mut()
        .unwrap()
        .service = Some(DiscoveryServiceRegistry {
        endpoint: Some("https://discovery.example.org/v1".into()),
        ..Default::default()
    });
    let errs = errors(&config);
    assert_issue(
        &errs,
        "cluster.discovery.registries.service.endpoint",
        "must not have a path",
    );
    assert_issue(
        &errs,
        "cluster.id",
        "required when the discovery service is enabled",
    );
    assert_issue(
        &errs,
        "cluster.secret",
        "required when the discovery service is enabled",
    );

    // With the service registry disabled none of this applies.
    let service = cluster(&mut config)
        .discovery
        .as_mut()
        .unwrap()
        .registries
        .as_mut()
        .unwrap()
        .service
        .as_mut()
        .unwrap();
    service.disabled = Some(true);
    assert!(config.validate(RuntimeMode::Metal, true).is_ok());
}

#[test]
fn inline_manifest_names() {
    let mut config = control_plane();
    let manifests = &mut cluster(&mut config).inline_manifests;
    manifests.push(InlineManifest {
        name: String::new(),
        contents: "a: b".into(),
    });
    manifests.push(InlineManifest {
        name: "namespace-ci".into(),
        contents: "a: b".into(),
    });
    let errs = errors(&config);
    assert_issue(
        &errs,
        "cluster.inlineManifests[1].name",
        "inline manifest name is required",
    );
    assert_issue(
        &errs,
        "cluster.inlineManifests[2].name",
        "duplicate inline manifest name \"namespace-ci\"",
    );
}

#[test]
fn external_cloud_provider_rules() {
    let mut config = control_plane();
    let provider = cluster(&mut config)
        .external_cloud_provider
        .as_mut()
        .unwrap();
    provider.enabled = Some(false);
    provider.manifests.push("ftp://example.org/ccm.yaml".into());
    let errs = errors(&config);
    assert_issue(
        &errs,
        "cluster.externalCloudProvider.manifests",
        "not enabled",
    );
    assert_issue(
        &errs,
        "cluster.externalCloudProvider.manifests[1]",
        "scheme \"ftp\" is not http or https",
    );
}

#[test]
fn registry_entries_must_not_be_null() {
    let input = WORKER.replace(
        "    registries: {}",
        "    registries:\n        mirrors:\n            docker.io:\n        config:\n            ghcr.io:",
    );
    let config = Config::from_yaml(&input).unwrap().v1alpha1.unwrap();
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.registries.mirrors.docker.io",
        "must not be null",
    );
    assert_issue(
        &errs,
        "machine.registries.config.ghcr.io",
        "must not be null",
    );
}

#[test]
fn deprecated_files_and_runtime_spec_overrides_warn() {
    let mut config = worker();
    let m = machine(&mut config);
    m.files = vec![MachineFile {
        content: "[plugins]".into(),
        permissions: FileMode(0o644),
        path: "/var/cri/conf.d/x.toml".into(),
        op: "create".into(),
    }];
    m.base_runtime_spec_overrides = Some(serde_norway::from_str("process: {rlimits: []}").unwrap());
    let warns = warnings(&config);
    assert_issue(&warns, "machine.files", ".machine.files is deprecated");
    assert_issue(&warns, "machine.baseRuntimeSpecOverrides", "deprecated");
    assert_eq!(warns.len(), 2);
    assert_eq!(errors_in(&config, RuntimeMode::Metal, true).len(), 2);

    machine(&mut config).files[0].op = "replace".into();
    assert_issue(
        &errors(&config),
        "machine.files[0].op",
        "unknown file operation \"replace\"",
    );
}

#[test]
fn token_formats() {
    let mut config = worker();
    machine(&mut config).token = "abcdef.0123456789ABCDEF".into();
    cluster(&mut config).token = Some("abcdef0123456789abcdef".into());
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.token",
        "not a valid token (expected [a-z0-9]{6}.[a-z0-9]{16})",
    );
    assert_issue(&errs, "cluster.token", "not a valid token");
}

#[test]
fn urls_of_logging_destinations_and_extra_manifests() {
    let mut config = control_plane();
    let destinations = &mut machine(&mut config).logging.as_mut().unwrap().destinations;
    destinations[0].endpoint = "http://127.0.0.1:1234/".into();
    destinations.push(LoggingDestination {
        endpoint: "not a url".into(),
        format: "text".into(),
        ..Default::default()
    });
    cluster(&mut config)
        .extra_manifests
        .push("example.org/x.yaml".into());
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.logging.destinations[0].endpoint",
        "unsupported scheme \"http\"",
    );
    assert_issue(
        &errs,
        "machine.logging.destinations[1].endpoint",
        "not a valid URL",
    );
    assert_issue(
        &errs,
        "machine.logging.destinations[1].format",
        "unknown format \"text\"",
    );
    assert_issue(&errs, "cluster.extraManifests[1]", "not a valid URL");
}

#[test]
fn kubernetes_images_must_carry_a_version_tag() {
    let mut config = control_plane();
    machine(&mut config).kubelet.as_mut().unwrap().image =
        Some("ghcr.io/siderolabs/kubelet:latest".into());
    let c = cluster(&mut config);
    c.api_server.as_mut().unwrap().image = Some("registry.k8s.io/kube-apiserver".into());
    c.controller_manager.as_mut().unwrap().image =
        Some("registry.k8s.io/kube-controller-manager:1.33.1".into());
    c.scheduler.as_mut().unwrap().image = None;
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.kubelet.image",
        "tag \"latest\" is not a Kubernetes version",
    );
    assert_issue(&errs, "cluster.apiServer.image", "has no tag");
    assert_issue(
        &errs,
        "cluster.controllerManager.image",
        "is not a Kubernetes version",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn kubelet_extra_config_cannot_override_protected_fields() {
    let mut config = worker();
    machine(&mut config).kubelet.as_mut().unwrap().extra_config =
        Some(serde_norway::from_str("staticPodPath: /tmp\nmaxPods: 10").unwrap());
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.kubelet.extraConfig.staticPodPath",
        "cannot be overridden",
    );
    assert_eq!(errs.len(), 1);
}

#[test]
fn static_pods_must_be_pods() {
    let mut config = worker();
    machine(&mut config).pods =
        vec![serde_norway::from_str("apiVersion: v1\nkind: Deployment").unwrap()];
    assert_issue(
        &errors(&config),
        "machine.pods[0].kind",
        "must have kind Pod",
    );
}

#[test]
fn document_kinds_are_validated() {
    let mut config = Config::from_yaml(WORKER).unwrap();
    network(config.v1alpha1.as_mut().unwrap()).hostname = Some("worker-1".into());
    config.documents = vec![
        Document::Hostname(HostnameConfig {
            auto: Some(AutoHostname::Stable),
            hostname: Some("worker_1".into()),
        }),
        Document::KubeNetwork(KubeNetworkConfig {
            pod_subnets: vec!["10.244.0.0/16".into(), "10.244.0.0".into()],
            node_cidr_mask_size_ipv4: Some(33),
            ..Default::default()
        }),
        Document::Hostname(HostnameConfig::default()),
    ];
    let err = config.validate(RuntimeMode::Metal, false).unwrap_err();
    let ConfigError::Invalid { errors } = err else {
        panic!("{err}")
    };
    assert_issue(
        &errors,
        "HostnameConfig",
        "hostname and auto are mutually exclusive",
    );
    assert_issue(&errors, "HostnameConfig.hostname", "not a valid DNS name");
    assert_issue(
        &errors,
        "HostnameConfig",
        "already set in the v1alpha1 document",
    );
    assert_issue(&errors, "HostnameConfig", "duplicate document");
    assert_issue(
        &errors,
        "HostnameConfig",
        "either hostname or auto must be set",
    );
    assert_issue(
        &errors,
        "KubeNetworkConfig.podSubnets[1]",
        "not a valid CIDR",
    );
    assert_issue(
        &errors,
        "KubeNetworkConfig.nodeCIDRMaskSizeIPv4",
        "at most 32",
    );
}

#[test]
fn certificates_must_parse_be_cas_match_their_keys_and_be_current() {
    use pki::{CaKind, Validity, generate_ca};
    use time::{Duration, OffsetDateTime};

    let now = OffsetDateTime::now_utc();
    let expired = generate_ca(
        CaKind::Etcd,
        Validity {
            not_before: now - Duration::days(2),
            not_after: now - Duration::days(1),
        },
    )
    .unwrap();
    let other = generate_ca(CaKind::Kubernetes, Validity::from_now(Duration::days(1))).unwrap();
    let issued = pki::CertificateAuthority::from_pair(&talos_ca())
        .unwrap()
        .issue_client_certificate(
            "admin",
            &["os:admin".into()],
            Validity::from_now(Duration::hours(1)),
        )
        .unwrap();

    let mut config = control_plane();
    cluster(&mut config).etcd.as_mut().unwrap().ca = Some(expired);
    cluster(&mut config).ca.as_mut().unwrap().key = other.key;
    cluster(&mut config).aggregator_ca.as_mut().unwrap().crt =
        Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into());
    machine(&mut config).accepted_cas = vec![PemCertificate { crt: issued.crt }];
    cluster(&mut config).service_account.as_mut().unwrap().key =
        Some("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".into());

    let errs = errors(&config);
    assert_issue(&errs, "cluster.etcd.ca.crt", "expired");
    assert_issue(&errs, "cluster.ca", "does not match its key");
    assert_issue(&errs, "cluster.aggregatorCA.crt", "");
    assert_issue(&errs, "machine.acceptedCAs[0].crt", "not a CA");
    assert_issue(&errs, "cluster.serviceAccount.key", "");
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn registry_tls_needs_a_base64_certificate_and_no_wildcard() {
    let mut config = worker();
    let tls = |ca: &str, insecure: bool| RegistryConfig {
        tls: Some(RegistryTls {
            ca: Some(ca.to_string()),
            insecure_skip_verify: Some(insecure),
            ..Default::default()
        }),
        ..Default::default()
    };
    let registries = config
        .machine
        .as_mut()
        .unwrap()
        .registries
        .get_or_insert_default();
    registries
        .config
        .insert("bad.example".into(), Some(tls("not base64!", false)));
    registries.config.insert("*".into(), Some(tls("", true)));
    registries
        .mirrors
        .insert("../state".into(), Some(RegistryMirror::default()));
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.registries.config.bad.example.tls.ca",
        "not base64",
    );
    assert_issue(&errs, "machine.registries.config.*.tls", "every registry");
    assert_issue(
        &errs,
        "machine.registries.mirrors.../state",
        "not a registry host",
    );
}

#[test]
fn static_pod_names_must_be_dns_names() {
    let mut config = worker();
    let pod: serde_norway::Value = serde_norway::from_str(
        "{apiVersion: v1, kind: Pod, metadata: {name: ../escape, namespace: kube-system}}",
    )
    .unwrap();
    config.machine.as_mut().unwrap().pods = vec![pod];
    assert_issue(
        &errors(&config),
        "machine.pods[0].metadata.name",
        "not a valid DNS name",
    );
}

#[test]
fn environment_variable_names_are_posix_names() {
    let mut config = worker();
    machine(&mut config).env = BTreeMap::from([
        ("https_proxy".to_string(), "http://proxy:3128".to_string()),
        ("GRPC_GO_LOG_SEVERITY_LEVEL".to_string(), "info".to_string()),
        ("1ST".to_string(), "x".to_string()),
        ("A-B".to_string(), "x".to_string()),
        ("NUL".to_string(), "a\0b".to_string()),
    ]);
    let errs = errors(&config);
    assert_issue(
        &errs,
        "machine.env.1ST",
        "invalid environment variable name",
    );
    assert_issue(
        &errs,
        "machine.env.A-B",
        "invalid environment variable name",
    );
    assert_issue(&errs, "machine.env.NUL", "NUL byte");
    assert_eq!(errs.len(), 3, "{errs:#?}");
}
