#![allow(clippy::unwrap_used)]
//! The Kubernetes PKI issued from a generated control-plane config, parsed back.

use std::net::IpAddr;

use kubernetes::{NodeInfo, api_server_sans, control_plane_certificates};
use machineconfig::Config;
use machineconfig::generate::{ClusterSpec, controlplane};
use pki::{
    CertificateInfo, ExtendedKeyUsage, KeyAlgorithm, PrivateKey, SecretsBundle, Validity,
    verify_pair, verify_signed_by,
};
use time::{Duration, OffsetDateTime};

fn config() -> Config {
    let bundle = SecretsBundle::generate().unwrap();
    let mut spec = ClusterSpec::new("demo", "https://cp.example.org:6443");
    spec.additional_sans = vec!["10.5.0.100".into(), "api.example.org".into()];
    controlplane(&bundle, &spec).unwrap()
}

fn node() -> NodeInfo {
    NodeInfo {
        hostname: "cp-1".into(),
        domainname: Some("lan".into()),
        addresses: vec!["10.5.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn cluster_ca(config: &Config) -> String {
    let cluster = config.v1alpha1.as_ref().unwrap().cluster.as_ref().unwrap();
    cluster.ca.as_ref().unwrap().crt.clone().unwrap()
}

fn aggregator_ca(config: &Config) -> String {
    let cluster = config.v1alpha1.as_ref().unwrap().cluster.as_ref().unwrap();
    cluster.aggregator_ca.as_ref().unwrap().crt.clone().unwrap()
}

#[test]
fn api_server_sans_are_upstreams_list() {
    let sans = api_server_sans(&config(), &node()).unwrap();
    for dns in [
        "api.example.org",
        "cp-1",
        "cp-1.lan",
        "cp.example.org",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ] {
        assert!(sans.dns_names.iter().any(|n| n == dns), "{dns} in {sans:?}");
    }
    for address in [
        "10.96.0.1",
        "127.0.0.1",
        "10.5.0.2",
        "fd00::2",
        "10.5.0.100",
    ] {
        assert!(
            sans.ip_addresses.contains(&ip(address)),
            "{address} in {sans:?}"
        );
    }
    let mut sorted = sans.dns_names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, sans.dns_names, "sorted, no duplicates");
}

#[test]
fn control_plane_certificates_chain_to_the_right_cas_with_upstream_subjects() {
    let config = config();
    let now = OffsetDateTime::now_utc();
    let certificates =
        control_plane_certificates(&config, &node(), Validity::from_now(Duration::hours(8760)))
            .unwrap();
    let k8s_ca = cluster_ca(&config);
    let front_proxy_ca = aggregator_ca(&config);
    assert_eq!(certificates.ca_pem, k8s_ca);
    assert_eq!(certificates.aggregator_ca_pem, front_proxy_ca);

    let api = &certificates.api_server;
    let (crt, key) = (api.crt.as_deref().unwrap(), api.key.as_deref().unwrap());
    verify_signed_by(crt, &k8s_ca).unwrap();
    verify_pair(crt, key, now).unwrap();
    let info = CertificateInfo::from_pem(crt).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("kube-apiserver"));
    assert_eq!(info.organizations, ["kube-master"]);
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ServerAuth]);
    assert_eq!(info.public_key_algorithm, Some(KeyAlgorithm::EcdsaP256));
    assert!(
        info.dns_names
            .contains(&"kubernetes.default.svc.cluster.local".to_string())
    );
    assert!(info.ip_addresses.contains(&ip("10.96.0.1")));
    assert!(info.ip_addresses.contains(&ip("fd00::2")));
    assert!(!info.is_ca);
    let lifetime = info.not_after - info.not_before - pki::CLOCK_SKEW;
    assert!(
        (lifetime - Duration::hours(8760)).abs() < Duration::seconds(2),
        "{lifetime}"
    );

    let kubelet_client = &certificates.api_server_kubelet_client;
    let crt = kubelet_client.crt.as_deref().unwrap();
    verify_signed_by(crt, &k8s_ca).unwrap();
    verify_pair(crt, kubelet_client.key.as_deref().unwrap(), now).unwrap();
    let info = CertificateInfo::from_pem(crt).unwrap();
    assert_eq!(
        info.common_name.as_deref(),
        Some("apiserver-kubelet-client")
    );
    assert_eq!(info.organizations, ["system:masters"]);
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ClientAuth]);
    assert!(info.dns_names.is_empty() && info.ip_addresses.is_empty());

    let front_proxy = &certificates.front_proxy;
    let crt = front_proxy.crt.as_deref().unwrap();
    verify_signed_by(crt, &front_proxy_ca).unwrap();
    assert!(
        verify_signed_by(crt, &k8s_ca).is_err(),
        "not from the Kubernetes CA"
    );
    let info = CertificateInfo::from_pem(crt).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("front-proxy-client"));
    assert!(info.organizations.is_empty());
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ClientAuth]);

    let service_account = &certificates.service_account;
    let key = PrivateKey::from_pem(&service_account.private_key_pem).unwrap();
    assert_eq!(service_account.public_key_pem, key.public_key_pem());
    let cluster = config.v1alpha1.as_ref().unwrap().cluster.as_ref().unwrap();
    assert_eq!(
        Some(&service_account.private_key_pem),
        cluster.service_account.as_ref().unwrap().key.as_ref()
    );

    let files = certificates.api_server_files();
    let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    for name in [
        "ca.crt",
        "aggregator-ca.crt",
        "apiserver.crt",
        "apiserver.key",
        "apiserver-kubelet-client.crt",
        "apiserver-kubelet-client.key",
        "front-proxy-client.crt",
        "front-proxy-client.key",
        "service-account.pub",
        "service-account.key",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    assert!(
        files
            .iter()
            .all(|(_, contents)| contents.starts_with("-----BEGIN"))
    );
}

#[test]
fn a_worker_config_without_the_ca_key_is_refused_by_name() {
    let bundle = SecretsBundle::generate().unwrap();
    let worker = machineconfig::generate::worker(
        &bundle,
        &ClusterSpec::new("demo", "https://10.5.0.2:6443"),
    )
    .unwrap();
    let error =
        control_plane_certificates(&worker, &node(), Validity::from_now(Duration::hours(1)))
            .unwrap_err();
    assert!(error.to_string().contains("cluster.ca"), "{error}");
}
