#![allow(clippy::unwrap_used)]
//! The admin kubeconfig, its RPC archive, and merging into an existing kubeconfig.

use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::read::GzDecoder;
use kubernetes::{
    Kubeconfig, MergeOptions, admin_certificate_ttl, admin_kubeconfig, admin_kubeconfig_tar_gz,
    component_kubeconfig, extract_kubeconfig, kubeconfig_tar_gz,
};
use machineconfig::generate::{ClusterSpec, controlplane};
use machineconfig::v1alpha1::AdminKubeconfigConfig;
use machineconfig::{Config, GoDuration};
use pki::{CertificateInfo, ExtendedKeyUsage, SecretsBundle, Validity, verify_signed_by};
use time::Duration;

fn config(name: &str) -> Config {
    let bundle = SecretsBundle::generate().unwrap();
    controlplane(&bundle, &ClusterSpec::new(name, "https://10.5.0.2:6443")).unwrap()
}

fn decoded(data: &Option<String>) -> String {
    String::from_utf8(STANDARD.decode(data.as_deref().unwrap()).unwrap()).unwrap()
}

fn cluster_ca(config: &Config) -> String {
    let cluster = config.v1alpha1.as_ref().unwrap().cluster.as_ref().unwrap();
    cluster.ca.as_ref().unwrap().crt.clone().unwrap()
}

#[test]
fn admin_kubeconfig_has_the_upstream_layout_and_an_admin_certificate() {
    let config = config("demo");
    let text = admin_kubeconfig(&config, Duration::hours(24)).unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&text, "test").unwrap();
    assert_eq!(kubeconfig.api_version, "v1");
    assert_eq!(kubeconfig.kind, "Config");
    assert_eq!(kubeconfig.current_context, "admin@demo");
    assert_eq!(kubeconfig.clusters.len(), 1);
    let cluster = &kubeconfig.clusters[0];
    assert_eq!(cluster.name, "demo");
    assert_eq!(cluster.cluster.server, "https://10.5.0.2:6443");
    let ca = cluster_ca(&config);
    assert_eq!(decoded(&cluster.cluster.certificate_authority_data), ca);
    let user = &kubeconfig.users[0];
    assert_eq!(user.name, "admin@demo");
    let crt = decoded(&user.user.client_certificate_data);
    let key = decoded(&user.user.client_key_data);
    verify_signed_by(&crt, &ca).unwrap();
    pki::verify_pair(&crt, &key, time::OffsetDateTime::now_utc()).unwrap();
    let info = CertificateInfo::from_pem(&crt).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("admin"));
    assert_eq!(info.organizations, ["system:masters"]);
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ClientAuth]);
    let lifetime = info.not_after - info.not_before - pki::CLOCK_SKEW;
    assert!(
        (lifetime - Duration::hours(24)).abs() < Duration::seconds(2),
        "{lifetime}"
    );
    let context = &kubeconfig.contexts[0];
    assert_eq!(context.name, "admin@demo");
    assert_eq!(context.context.cluster, "demo");
    assert_eq!(context.context.user, "admin@demo");
    assert_eq!(context.context.namespace.as_deref(), Some("default"));
    // The raw text uses the field names kubectl reads.
    for field in [
        "certificate-authority-data:",
        "client-certificate-data:",
        "client-key-data:",
        "current-context: admin@demo",
    ] {
        assert!(text.contains(field), "{field} in\n{text}");
    }
}

#[test]
fn admin_certificate_lifetime_comes_from_the_config_or_defaults_to_a_year() {
    let mut config = config("demo");
    assert_eq!(admin_certificate_ttl(&config), Duration::hours(8760));
    let cluster = config.v1alpha1.as_mut().unwrap().cluster.as_mut().unwrap();
    cluster.admin_kubeconfig = Some(AdminKubeconfigConfig {
        cert_lifetime: Some(GoDuration::parse("2h0m0s").unwrap()),
    });
    assert_eq!(admin_certificate_ttl(&config), Duration::hours(2));
}

#[test]
fn component_kubeconfig_points_at_the_local_api_server() {
    let config = config("demo");
    let text = component_kubeconfig(
        &config,
        "system:kube-scheduler",
        Validity::from_now(Duration::hours(1)),
    )
    .unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&text, "test").unwrap();
    assert_eq!(
        kubeconfig.clusters[0].cluster.server,
        "https://localhost:6443/"
    );
    assert_eq!(kubeconfig.current_context, "default");
    let crt = decoded(&kubeconfig.users[0].user.client_certificate_data);
    let info = CertificateInfo::from_pem(&crt).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("system:kube-scheduler"));
    assert_eq!(info.organizations, ["system:kube-scheduler"]);
}

#[test]
fn rpc_archive_holds_one_private_file_and_round_trips() {
    let archive = kubeconfig_tar_gz(b"apiVersion: v1\n").unwrap();
    let mut tar = tar::Archive::new(GzDecoder::new(archive.as_slice()));
    let mut entries = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut body = String::new();
        entry.read_to_string(&mut body).unwrap();
        entries.push((
            entry.path().unwrap().display().to_string(),
            entry.header().mode().unwrap(),
            entry.header().entry_type().is_file(),
            body,
        ));
    }
    assert_eq!(
        entries,
        [(
            "kubeconfig".to_string(),
            0o600,
            true,
            "apiVersion: v1\n".to_string()
        )]
    );
    assert_eq!(extract_kubeconfig(&archive).unwrap(), b"apiVersion: v1\n");

    let config = config("demo");
    let archive = admin_kubeconfig_tar_gz(&config, Duration::hours(1)).unwrap();
    let text = String::from_utf8(extract_kubeconfig(&archive).unwrap()).unwrap();
    assert!(text.contains("admin@demo"));
}

#[test]
fn an_archive_without_the_file_is_an_error_naming_what_it_has() {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_ustar();
    header.set_size(1);
    header.set_mode(0o600);
    header.set_cksum();
    builder
        .append_data(&mut header, "other", &b"x"[..])
        .unwrap();
    let archive = builder.into_inner().unwrap().finish().unwrap();
    let error = extract_kubeconfig(&archive).unwrap_err();
    assert!(error.to_string().contains("other"), "{error}");
    assert!(extract_kubeconfig(b"not gzip").is_err());
}

fn admin(name: &str) -> Kubeconfig {
    Kubeconfig::from_yaml(
        &admin_kubeconfig(&config(name), Duration::hours(1)).unwrap(),
        "new",
    )
    .unwrap()
}

const EXISTING: &str = "\
apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: other
  cluster:
    server: https://other:6443
    insecure-skip-tls-verify: true
users:
- name: someone
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: get-token
contexts:
- name: someone@other
  context:
    cluster: other
    user: someone
current-context: someone@other
";

#[test]
fn merge_into_a_foreign_kubeconfig_keeps_what_it_does_not_know() {
    let mut existing = Kubeconfig::from_yaml(EXISTING, "existing").unwrap();
    let options = MergeOptions {
        activate_context: true,
        ..Default::default()
    };
    let messages = existing.merge(admin("demo"), &options);
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(existing.current_context, "admin@demo");
    assert_eq!(existing.clusters.len(), 2);
    let text = existing.to_yaml().unwrap();
    for kept in [
        "insecure-skip-tls-verify: true",
        "command: get-token",
        "colors: true",
    ] {
        assert!(text.contains(kept), "{kept} in\n{text}");
    }
    let reread = Kubeconfig::from_yaml(&text, "merged").unwrap();
    assert_eq!(reread, existing);
}

#[test]
fn conflicting_names_are_renamed_with_suffixes_unless_forced() {
    let mut existing = Kubeconfig::empty();
    let options = MergeOptions {
        activate_context: true,
        ..Default::default()
    };
    existing.merge(admin("demo"), &options);
    // Same name, different cluster (new CA): renamed -1, then -2.
    let messages = existing.merge(admin("demo"), &options);
    assert_eq!(
        messages,
        [
            "renamed cluster \"demo\" -> \"demo-1\"",
            "renamed auth info \"admin@demo\" -> \"admin@demo-1\"",
            "renamed context \"admin@demo\" -> \"admin@demo-1\"",
        ]
    );
    assert_eq!(existing.current_context, "admin@demo-1");
    let context = existing
        .contexts
        .iter()
        .find(|c| c.name == "admin@demo-1")
        .unwrap();
    assert_eq!(context.context.cluster, "demo-1");
    assert_eq!(context.context.user, "admin@demo-1");
    existing.merge(admin("demo"), &options);
    let names: Vec<&str> = existing.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["demo", "demo-1", "demo-2"]);

    // --force replaces the entries in place.
    let replacement = admin("demo");
    let forced = MergeOptions {
        force: true,
        activate_context: true,
        ..Default::default()
    };
    let messages = existing.merge(replacement.clone(), &forced);
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(existing.clusters.len(), 3);
    assert_eq!(existing.clusters[0], replacement.clusters[0]);
    assert_eq!(existing.users[0], replacement.users[0]);
    assert_eq!(existing.current_context, "admin@demo");

    // Merging the very same entries again changes nothing.
    let before = existing.clone();
    let messages = existing.merge(replacement, &options);
    assert!(messages.is_empty());
    assert_eq!(existing, before);
}

#[test]
fn forced_context_name_and_not_activating() {
    let mut existing = Kubeconfig::from_yaml(EXISTING, "existing").unwrap();
    existing.merge(
        admin("demo"),
        &MergeOptions {
            force_context_name: Some("prod".into()),
            activate_context: false,
            ..Default::default()
        },
    );
    assert_eq!(existing.current_context, "someone@other");
    let context = existing.contexts.iter().find(|c| c.name == "prod").unwrap();
    assert_eq!(context.context.user, "admin@demo");
}

#[test]
fn broken_kubeconfigs_are_reported_with_their_origin() {
    let error = Kubeconfig::from_yaml("clusters: 3\n", "/home/me/.kube/config").unwrap_err();
    assert!(
        error.to_string().contains("/home/me/.kube/config"),
        "{error}"
    );
    let error = Kubeconfig::from_yaml("kind: Pod\n", "x").unwrap_err();
    assert!(error.to_string().contains("Pod"), "{error}");
    assert_eq!(
        Kubeconfig::from_yaml("", "empty").unwrap(),
        Kubeconfig::empty()
    );
}
