//! The secrets bundle: generation, YAML round trip, strict decoding, validation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pki::{
    CA_TTL, CLIENT_CERTIFICATE_TTL, CaKind, CertificateInfo, ExtendedKeyUsage, PemKey, PkiError,
    PrivateKey, SecretsBundle, Validity, generate_ca, verify_signed_by,
};
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The error message of validating `bundle`.
fn validation_error(bundle: &SecretsBundle) -> String {
    bundle
        .validate(now())
        .expect_err("the bundle is invalid")
        .to_string()
}

#[test]
fn generated_bundle_round_trips_through_yaml_and_validates() {
    let bundle = SecretsBundle::generate().unwrap();
    bundle.validate(now()).unwrap();
    let yaml = bundle.to_yaml().unwrap();
    let reread = SecretsBundle::from_yaml(&yaml).unwrap();
    assert_eq!(reread, bundle);
    reread.validate(now()).unwrap();
    assert_eq!(reread.to_yaml().unwrap(), yaml);
}

#[test]
fn bundle_yaml_has_upstreams_lower_cased_layout() {
    let bundle = SecretsBundle::generate().unwrap();
    let yaml = bundle.to_yaml().unwrap();
    let document: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
    let keys = |value: &serde_norway::Value| -> Vec<String> {
        value
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        keys(&document),
        ["cluster", "secrets", "trustdinfo", "certs"]
    );
    assert_eq!(keys(&document["cluster"]), ["id", "secret"]);
    assert_eq!(
        keys(&document["secrets"]),
        ["bootstraptoken", "secretboxencryptionsecret"]
    );
    assert_eq!(keys(&document["trustdinfo"]), ["token"]);
    assert_eq!(
        keys(&document["certs"]),
        ["etcd", "k8s", "k8saggregator", "k8sserviceaccount", "os"]
    );
    assert_eq!(keys(&document["certs"]["k8sserviceaccount"]), ["key"]);

    let os_key = STANDARD
        .decode(document["certs"]["os"]["key"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(os_key)
            .unwrap()
            .starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n")
    );
    let k8s_key = STANDARD
        .decode(document["certs"]["k8s"]["key"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(k8s_key)
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
    );
}

#[test]
fn generated_bundle_has_the_upstream_cas() {
    let bundle = SecretsBundle::generate().unwrap();
    let info = |pem: &Option<String>| CertificateInfo::from_pem(pem.as_deref().unwrap()).unwrap();
    assert_eq!(info(&bundle.certs.os.crt).organizations, ["talos"]);
    assert_eq!(info(&bundle.certs.k8s.crt).organizations, ["kubernetes"]);
    assert_eq!(info(&bundle.certs.etcd.crt).organizations, ["etcd"]);
    // A node whose clock is an hour (or up to a day) behind still takes the CAs as valid.
    let etcd = info(&bundle.certs.etcd.crt);
    assert!(etcd.check_validity(now() - Duration::hours(23)).is_ok());
    assert!(etcd.check_validity(now() - Duration::hours(25)).is_err());
    assert_eq!(
        info(&bundle.certs.k8s_aggregator.crt)
            .common_name
            .as_deref(),
        Some("front-proxy")
    );
    let service_account =
        PrivateKey::from_pem(bundle.certs.k8s_service_account.key.as_deref().unwrap()).unwrap();
    assert_eq!(service_account.algorithm(), pki::KeyAlgorithm::EcdsaP256);
    assert_ne!(bundle.trustd_info.token, bundle.secrets.bootstrap_token);
    assert_ne!(bundle.cluster.id, bundle.cluster.secret);
}

#[test]
fn unknown_keys_are_rejected_with_their_path_and_line() {
    let yaml = SecretsBundle::generate().unwrap().to_yaml().unwrap();
    let with_extra = yaml.replacen("trustdinfo:\n", "trustdinfo:\n  colour: blue\n", 1);
    let err = SecretsBundle::from_yaml(&with_extra).unwrap_err();
    let PkiError::BundleYaml { path, message } = &err else {
        panic!("expected BundleYaml, got {err}");
    };
    assert_eq!(path, "trustdinfo.colour");
    assert!(
        message.contains("colour") && message.contains("line"),
        "{message}"
    );

    let top_level = format!("{yaml}extra: 1\n");
    let err = SecretsBundle::from_yaml(&top_level)
        .unwrap_err()
        .to_string();
    assert!(err.contains("extra"), "{err}");

    let missing = yaml.replacen("trustdinfo:\n", "trustdinfo: {}\nunused:\n", 1);
    assert!(SecretsBundle::from_yaml(&missing).is_err());
}

#[test]
fn bad_base64_in_a_certificate_is_reported_at_its_path() {
    let yaml = SecretsBundle::generate().unwrap().to_yaml().unwrap();
    let document: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
    let etcd_crt = document["certs"]["etcd"]["crt"].as_str().unwrap();
    let broken = yaml.replace(etcd_crt, "'%%%'");
    let err = SecretsBundle::from_yaml(&broken).unwrap_err().to_string();
    assert!(
        err.contains("certs.etcd.crt") && err.contains("base64"),
        "{err}"
    );
}

#[test]
fn a_malformed_token_is_named() {
    let mut bundle = SecretsBundle::generate().unwrap();
    bundle.trustd_info.token = "abcdef.tooshort".to_string();
    let err = validation_error(&bundle);
    assert!(err.starts_with("trustdinfo.token: "), "{err}");
    assert!(!err.contains("tooshort"), "the token is not echoed: {err}");

    let mut bundle = SecretsBundle::generate().unwrap();
    bundle.secrets.bootstrap_token = "ABCDEF.0123456789abcdef".to_string();
    assert!(validation_error(&bundle).starts_with("secrets.bootstraptoken: "));
}

#[test]
fn a_secret_of_the_wrong_length_is_named() {
    let mut bundle = SecretsBundle::generate().unwrap();
    bundle.cluster.secret = STANDARD.encode([7u8; 16]);
    let err = validation_error(&bundle);
    assert!(
        err.starts_with("cluster.secret: ") && err.contains("16 bytes"),
        "{err}"
    );
}

#[test]
fn a_swapped_key_is_named() {
    let mut bundle = SecretsBundle::generate().unwrap();
    bundle.certs.os.key = Some(PrivateKey::generate_ed25519().unwrap().to_pem());
    assert_eq!(
        validation_error(&bundle),
        "certs.os: certificate does not match its key"
    );

    let mut bundle = SecretsBundle::generate().unwrap();
    std::mem::swap(&mut bundle.certs.k8s.key, &mut bundle.certs.etcd.key);
    assert_eq!(
        validation_error(&bundle),
        "certs.etcd: certificate does not match its key"
    );
}

#[test]
fn an_expired_or_non_ca_certificate_is_named() {
    let mut bundle = SecretsBundle::generate().unwrap();
    let past = Validity {
        not_before: now() - Duration::days(20),
        not_after: now() - Duration::days(10),
    };
    bundle.certs.k8s_aggregator = generate_ca(CaKind::KubernetesAggregator, past).unwrap();
    let err = validation_error(&bundle);
    assert!(
        err.starts_with("certs.k8saggregator.crt: certificate expired at "),
        "{err}"
    );

    let mut bundle = SecretsBundle::generate().unwrap();
    let leaf = bundle
        .issue_admin_certificate(
            &["os:admin".to_string()],
            Validity::from_now(CLIENT_CERTIFICATE_TTL),
        )
        .unwrap();
    bundle.certs.os = leaf;
    assert!(validation_error(&bundle).starts_with("certs.os.crt: certificate is not a CA"));

    let mut bundle = SecretsBundle::generate().unwrap();
    bundle.certs.etcd.crt = None;
    assert_eq!(
        validation_error(&bundle),
        "certs.etcd.crt: certificate is missing"
    );
}

#[test]
fn service_account_key_may_be_rsa_or_ecdsa_but_not_ed25519() {
    let mut bundle = SecretsBundle::generate().unwrap();
    bundle.certs.k8s_service_account = PemKey {
        key: Some(include_str!("fixtures/rsa-pkcs1.pem").to_string()),
    };
    bundle.validate(now()).unwrap();
    bundle.certs.k8s_service_account.key = Some(include_str!("fixtures/rsa-pkcs8.pem").to_string());
    bundle.validate(now()).unwrap();

    bundle.certs.k8s_service_account.key = Some(PrivateKey::generate_ed25519().unwrap().to_pem());
    let err = validation_error(&bundle);
    assert!(
        err.starts_with("certs.k8sserviceaccount.key: Ed25519 key"),
        "{err}"
    );
}

#[test]
fn old_bundles_with_aescbc_secret_are_accepted_and_one_secret_is_required() {
    let mut bundle = SecretsBundle::generate().unwrap();
    bundle.secrets.aescbc_encryption_secret = bundle.secrets.secretbox_encryption_secret.take();
    let yaml = bundle.to_yaml().unwrap();
    assert!(yaml.contains("aescbcencryptionsecret:") && !yaml.contains("secretbox"));
    let reread = SecretsBundle::from_yaml(&yaml).unwrap();
    reread.validate(now()).unwrap();

    bundle.secrets.aescbc_encryption_secret = None;
    assert!(validation_error(&bundle).starts_with("secrets: secretboxencryptionsecret"));
}

#[test]
fn admin_certificate_is_a_client_certificate_of_the_talos_ca() {
    let bundle = SecretsBundle::generate().unwrap();
    let admin = bundle
        .issue_admin_certificate(
            &["os:admin".to_string()],
            Validity::from_now(CLIENT_CERTIFICATE_TTL),
        )
        .unwrap();
    let crt = admin.crt.as_deref().unwrap();
    verify_signed_by(crt, bundle.certs.os.crt.as_deref().unwrap()).unwrap();
    pki::verify_pair(crt, admin.key.as_deref().unwrap(), now()).unwrap();
    let info = CertificateInfo::from_pem(crt).unwrap();
    assert_eq!(info.organizations, ["os:admin"]);
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ClientAuth]);
    assert_eq!(info.common_name.as_deref(), Some("admin"));

    let mut without_key = bundle.clone();
    without_key.certs.os.key = None;
    let err = without_key
        .issue_admin_certificate(&["os:admin".to_string()], Validity::from_now(CA_TTL))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("certs.os: "), "{err}");
}
