//! CAs, issued certificates, signing requests, and the checks on them.

use std::net::IpAddr;

use pki::{
    CA_TTL, CLIENT_CERTIFICATE_TTL, CLOCK_SKEW, CaKind, CertificateAuthority, CertificateInfo,
    CertificateRequest, ExtendedKeyUsage, KeyAlgorithm, PemCertificateAndKey, PkiError, PrivateKey,
    RequestedCertificate, SERVER_CERTIFICATE_TTL, SubjectAltNames, Validity, generate_ca,
    generate_csr, verify_pair, verify_signed_by,
};
use rcgen::PublicKeyData as _;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer as _, X509Certificate};

fn crt(pair: &PemCertificateAndKey) -> &str {
    pair.crt.as_deref().expect("a certificate")
}

fn key(pair: &PemCertificateAndKey) -> &str {
    pair.key.as_deref().expect("a key")
}

fn talos_ca() -> (PemCertificateAndKey, CertificateAuthority) {
    let pair = generate_ca(CaKind::Talos, Validity::from_now(CA_TTL)).expect("CA generated");
    let ca = CertificateAuthority::from_pair(&pair).expect("the CA loads");
    (pair, ca)
}

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|r| r.to_string()).collect()
}

/// The KeyUsage bits of a certificate: (digitalSignature, keyCertSign, cRLSign, all flags).
fn key_usage(certificate_pem: &str) -> (bool, bool, bool, u16) {
    let block = pem::parse(certificate_pem).expect("valid PEM");
    let (_, certificate) = X509Certificate::from_der(block.contents()).expect("valid X.509");
    let usage = certificate
        .key_usage()
        .expect("one valid KeyUsage")
        .expect("KeyUsage present");
    assert!(usage.critical);
    let usage = usage.value;
    (
        usage.digital_signature(),
        usage.key_cert_sign(),
        usage.crl_sign(),
        usage.flags,
    )
}

fn key_label(key_pem: &str) -> String {
    pem::parse(key_pem).expect("valid PEM").tag().to_string()
}

#[test]
fn cluster_cas_have_the_upstream_subject_algorithm_label_and_lifetime() {
    let cases = [
        (
            CaKind::Talos,
            None,
            vec!["talos"],
            KeyAlgorithm::Ed25519,
            "ED25519 PRIVATE KEY",
        ),
        (
            CaKind::Kubernetes,
            None,
            vec!["kubernetes"],
            KeyAlgorithm::EcdsaP256,
            "EC PRIVATE KEY",
        ),
        (
            CaKind::KubernetesAggregator,
            Some("front-proxy"),
            vec![],
            KeyAlgorithm::EcdsaP256,
            "EC PRIVATE KEY",
        ),
        (
            CaKind::Etcd,
            None,
            vec!["etcd"],
            KeyAlgorithm::EcdsaP256,
            "EC PRIVATE KEY",
        ),
    ];
    for (kind, common_name, organizations, algorithm, label) in cases {
        let pair = generate_ca(kind, Validity::from_now(CA_TTL)).unwrap();
        let info = CertificateInfo::from_pem(crt(&pair)).unwrap();
        assert!(info.is_ca, "{kind:?}");
        assert_eq!(info.common_name.as_deref(), common_name, "{kind:?}");
        assert_eq!(info.organizations, organizations, "{kind:?}");
        assert_eq!(info.public_key_algorithm, Some(algorithm), "{kind:?}");
        assert_eq!(key_label(key(&pair)), label, "{kind:?}");
        assert_eq!(
            info.not_after - info.not_before,
            Duration::hours(87_600) + CLOCK_SKEW,
            "{kind:?}"
        );
        assert!(info.extended_key_usages.is_empty(), "{kind:?}");
        let (digital_signature, cert_sign, crl_sign, _) = key_usage(crt(&pair));
        assert!(digital_signature && cert_sign && crl_sign, "{kind:?}");
        verify_signed_by(crt(&pair), crt(&pair)).unwrap();
        verify_pair(crt(&pair), key(&pair), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(info.sha256_fingerprint.len(), 64);
        assert!(!info.serial.is_empty());
    }
}

#[test]
fn client_certificate_chains_to_its_ca_with_roles_and_exactly_client_auth() {
    let (ca_pair, ca) = talos_ca();
    let client = ca
        .issue_client_certificate(
            "admin",
            &roles(&["os:reader", "os:etcd:backup", "os:admin"]),
            Validity::from_now(CLIENT_CERTIFICATE_TTL),
        )
        .unwrap();
    verify_signed_by(crt(&client), crt(&ca_pair)).unwrap();
    verify_pair(crt(&client), key(&client), OffsetDateTime::now_utc()).unwrap();

    let info = CertificateInfo::from_pem(crt(&client)).unwrap();
    assert_eq!(
        info.organizations,
        ["os:reader", "os:etcd:backup", "os:admin"]
    );
    assert_eq!(info.common_name.as_deref(), Some("admin"));
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ClientAuth]);
    assert!(!info.is_ca);
    assert_eq!(info.public_key_algorithm, Some(KeyAlgorithm::Ed25519));
    assert_eq!(key_label(key(&client)), "ED25519 PRIVATE KEY");
    assert_eq!(
        info.not_after - info.not_before,
        Duration::hours(8_760) + CLOCK_SKEW,
        "valid from {CLOCK_SKEW} before issue"
    );
    assert!(info.dns_names.is_empty() && info.ip_addresses.is_empty());
    let (digital_signature, cert_sign, _, flags) = key_usage(crt(&client));
    assert!(digital_signature && !cert_sign);
    assert_eq!(flags, 1, "only DigitalSignature");
}

#[test]
fn client_certificate_ttl_is_configurable() {
    let (_, ca) = talos_ca();
    let client = ca
        .issue_client_certificate(
            "ops",
            &roles(&["os:operator"]),
            Validity::from_now(Duration::hours(2)),
        )
        .unwrap();
    let info = CertificateInfo::from_pem(crt(&client)).unwrap();
    assert_eq!(
        info.not_after - info.not_before,
        Duration::hours(2) + CLOCK_SKEW,
        "valid from {CLOCK_SKEW} before issue"
    );
}

#[test]
fn server_certificate_has_server_auth_and_the_sans() {
    let (ca_pair, ca) = talos_ca();
    let sans = SubjectAltNames {
        dns_names: vec!["node-1".to_string(), "node-1.example.org".to_string()],
        ip_addresses: vec![
            "127.0.0.1".parse().unwrap(),
            "10.5.0.2".parse().unwrap(),
            "fd00::2".parse().unwrap(),
        ],
    };
    let server = ca
        .issue_server_certificate(
            "node-1.example.org",
            &sans,
            Validity::from_now(SERVER_CERTIFICATE_TTL),
        )
        .unwrap();
    verify_signed_by(crt(&server), crt(&ca_pair)).unwrap();
    verify_pair(crt(&server), key(&server), OffsetDateTime::now_utc()).unwrap();
    let info = CertificateInfo::from_pem(crt(&server)).unwrap();
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ServerAuth]);
    assert_eq!(info.dns_names, sans.dns_names);
    assert_eq!(info.ip_addresses, sans.ip_addresses);
    assert!(info.organizations.is_empty());
    assert!(!info.is_ca);
    assert_eq!(info.common_name.as_deref(), Some("node-1.example.org"));
    assert_eq!(
        info.issuer_common_name, None,
        "the Talos CA has only O=talos"
    );
    assert_eq!(
        info.not_after - info.not_before,
        Duration::hours(24) + CLOCK_SKEW,
        "valid from {CLOCK_SKEW} before issue"
    );
    assert_eq!(key_usage(crt(&server)).3, 1, "only DigitalSignature");
}

#[test]
fn certificates_from_an_ecdsa_ca_verify_too() {
    let pair = generate_ca(CaKind::Etcd, Validity::from_now(CA_TTL)).unwrap();
    let ca = CertificateAuthority::from_pair(&pair).unwrap();
    let server = ca
        .issue_server_certificate(
            "etcd",
            &SubjectAltNames::default(),
            Validity::from_now(SERVER_CERTIFICATE_TTL),
        )
        .unwrap();
    verify_signed_by(crt(&server), crt(&pair)).unwrap();
}

#[test]
fn a_ca_with_the_same_name_but_another_key_did_not_sign() {
    let (_, ca) = talos_ca();
    let (other_pair, _) = talos_ca();
    let client = ca
        .issue_client_certificate(
            "admin",
            &roles(&["os:admin"]),
            Validity::from_now(CLIENT_CERTIFICATE_TTL),
        )
        .unwrap();
    let err = verify_signed_by(crt(&client), crt(&other_pair)).unwrap_err();
    assert!(
        matches!(&err, PkiError::NotSignedBy { reason } if reason.contains("signature")),
        "{err}"
    );
    let etcd = generate_ca(CaKind::Etcd, Validity::from_now(CA_TTL)).unwrap();
    let err = verify_signed_by(crt(&client), crt(&etcd)).unwrap_err();
    assert!(
        matches!(&err, PkiError::NotSignedBy { reason } if reason.contains("issuer")),
        "{err}"
    );
}

#[test]
fn csr_round_trip_keeps_what_was_asked_for() {
    let (ca_pair, ca) = talos_ca();
    let requester = PrivateKey::generate_ed25519().unwrap();
    let ip: IpAddr = "10.5.0.7".parse().unwrap();
    let csr = generate_csr(
        &requester,
        &CertificateRequest {
            common_name: Some("ops".to_string()),
            roles: roles(&["os:operator", "os:meta:writer"]),
            subject_alt_names: SubjectAltNames {
                dns_names: vec![],
                ip_addresses: vec![ip],
            },
            extended_key_usages: vec![ExtendedKeyUsage::ClientAuth],
        },
    )
    .unwrap();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
    // rcgen reads our requests too.
    let parsed = rcgen::CertificateSigningRequestParams::from_pem(&csr).unwrap();
    assert_eq!(parsed.public_key.der_bytes(), requester.public_key_raw());

    let signed = ca
        .sign_csr(&csr, Validity::from_now(Duration::hours(5)))
        .unwrap();
    verify_signed_by(&signed, crt(&ca_pair)).unwrap();
    verify_pair(&signed, &requester.to_pem(), OffsetDateTime::now_utc()).unwrap();
    let info = CertificateInfo::from_pem(&signed).unwrap();
    assert_eq!(info.organizations, ["os:operator", "os:meta:writer"]);
    assert_eq!(info.common_name.as_deref(), Some("ops"));
    assert_eq!(info.ip_addresses, [ip]);
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ClientAuth]);
    assert!(!info.is_ca);
    assert_eq!(
        info.not_after - info.not_before,
        Duration::hours(5) + CLOCK_SKEW,
        "valid from {CLOCK_SKEW} before issue"
    );
}

#[test]
fn requested_certificate_reads_what_a_csr_asks_for() {
    let requester = PrivateKey::generate_ed25519().unwrap();
    let request = CertificateRequest {
        common_name: Some("worker-1".to_string()),
        roles: roles(&["os:admin"]),
        subject_alt_names: SubjectAltNames {
            dns_names: vec!["worker-1".to_string()],
            ip_addresses: vec!["10.5.0.3".parse().unwrap(), "::1".parse().unwrap()],
        },
        extended_key_usages: vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
    };
    let csr = generate_csr(&requester, &request).unwrap();
    let read = RequestedCertificate::from_pem(&csr).unwrap();
    assert_eq!(read.request, request);
    assert!(!read.is_ca);

    let mut params = rcgen::CertificateParams::new(vec!["ca.test".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_csr = params
        .serialize_request(requester.key_pair())
        .unwrap()
        .pem()
        .unwrap();
    assert!(RequestedCertificate::from_pem(&ca_csr).unwrap().is_ca);

    let error = RequestedCertificate::from_pem("not a request").unwrap_err();
    assert!(matches!(error, PkiError::InvalidCsr { .. }), "{error}");
}

#[test]
fn a_csr_asking_to_be_a_ca_is_signed_as_a_leaf() {
    let (_, ca) = talos_ca();
    let requester = PrivateKey::generate_ecdsa_p256().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["sneaky.test".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let csr = params
        .serialize_request(requester.key_pair())
        .unwrap()
        .pem()
        .unwrap();
    let signed = ca
        .sign_csr(&csr, Validity::from_now(Duration::hours(1)))
        .unwrap();
    let info = CertificateInfo::from_pem(&signed).unwrap();
    assert!(!info.is_ca);
    assert_eq!(info.dns_names, ["sneaky.test"]);
    assert_eq!(info.public_key_algorithm, Some(KeyAlgorithm::EcdsaP256));
}

#[test]
fn server_requests_lose_roles_and_client_auth() {
    let (ca_pair, ca) = talos_ca();
    let requester = PrivateKey::generate_ed25519().unwrap();
    let csr = generate_csr(
        &requester,
        &CertificateRequest {
            common_name: Some("worker-1".to_string()),
            roles: roles(&["os:admin"]),
            subject_alt_names: SubjectAltNames {
                dns_names: vec!["worker-1".to_string()],
                ip_addresses: vec!["10.5.0.3".parse().unwrap()],
            },
            extended_key_usages: vec![ExtendedKeyUsage::ClientAuth, ExtendedKeyUsage::ServerAuth],
        },
    )
    .unwrap();
    let requested = RequestedCertificate::from_pem(&csr).unwrap();
    let signed = ca
        .sign_server_request(
            &csr,
            &requested.request,
            Validity::from_now(SERVER_CERTIFICATE_TTL),
        )
        .unwrap();
    verify_signed_by(&signed, crt(&ca_pair)).unwrap();
    verify_pair(&signed, &requester.to_pem(), OffsetDateTime::now_utc()).unwrap();
    let info = CertificateInfo::from_pem(&signed).unwrap();
    assert!(info.organizations.is_empty(), "{:?}", info.organizations);
    assert_eq!(info.common_name.as_deref(), Some("worker-1"));
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ServerAuth]);
    assert_eq!(info.dns_names, ["worker-1"]);
    assert_eq!(info.ip_addresses, ["10.5.0.3".parse::<IpAddr>().unwrap()]);
}

#[test]
fn a_tampered_csr_is_rejected() {
    let (_, ca) = talos_ca();
    let requester = PrivateKey::generate_ed25519().unwrap();
    let csr = generate_csr(
        &requester,
        &CertificateRequest {
            common_name: Some("ops".to_string()),
            ..CertificateRequest::default()
        },
    )
    .unwrap();
    let mut der = pem::parse(&csr).unwrap().into_contents();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let tampered = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
    let err = ca
        .sign_csr(&tampered, Validity::from_now(Duration::hours(1)))
        .unwrap_err();
    assert!(
        matches!(&err, PkiError::InvalidCsr { reason } if reason.contains("signature")),
        "{err}"
    );
    let err = ca
        .sign_csr(crt(&talos_ca().0), Validity::from_now(Duration::hours(1)))
        .unwrap_err();
    assert!(matches!(err, PkiError::InvalidCsr { .. }), "{err}");
}

#[test]
fn expired_and_not_yet_valid_certificates_are_reported_with_their_dates() {
    let (_, ca) = talos_ca();
    let now = OffsetDateTime::now_utc();
    let expired = ca
        .issue_client_certificate(
            "old",
            &roles(&["os:admin"]),
            Validity {
                not_before: now - Duration::days(10),
                not_after: now - Duration::days(1),
            },
        )
        .unwrap();
    let err = verify_pair(crt(&expired), key(&expired), now).unwrap_err();
    let PkiError::Expired { not_after } = &err else {
        panic!("expected Expired, got {err}");
    };
    assert!((*not_after - (now - Duration::days(1))).abs() < Duration::seconds(1));
    assert!(
        err.to_string().contains(&not_after.year().to_string()),
        "{err}"
    );

    let future = ca
        .issue_client_certificate(
            "future",
            &roles(&["os:admin"]),
            Validity {
                not_before: now + Duration::days(1),
                not_after: now + Duration::days(2),
            },
        )
        .unwrap();
    assert!(matches!(
        verify_pair(crt(&future), key(&future), now),
        Err(PkiError::NotYetValid { .. })
    ));
}

#[test]
fn validity_must_end_after_it_starts() {
    let (_, ca) = talos_ca();
    let now = OffsetDateTime::now_utc();
    let backwards = Validity {
        not_before: now,
        not_after: now - Duration::hours(1),
    };
    assert!(matches!(
        ca.issue_client_certificate("x", &[], backwards),
        Err(PkiError::InvalidValidity { .. })
    ));
    assert!(matches!(
        generate_ca(CaKind::Talos, backwards),
        Err(PkiError::InvalidValidity { .. })
    ));
}

#[test]
fn non_ascii_dns_names_are_rejected() {
    let (_, ca) = talos_ca();
    let sans = SubjectAltNames {
        dns_names: vec!["bücher.example".to_string()],
        ip_addresses: vec![],
    };
    let err = ca
        .issue_server_certificate("x", &sans, Validity::from_now(SERVER_CERTIFICATE_TTL))
        .unwrap_err();
    assert!(
        matches!(&err, PkiError::InvalidName { value, .. } if value == "bücher.example"),
        "{err}"
    );
}

#[test]
fn loading_a_ca_checks_that_it_is_a_ca_and_owns_its_key() {
    let (ca_pair, ca) = talos_ca();
    let other_key = PrivateKey::generate_ed25519().unwrap().to_pem();
    assert!(matches!(
        CertificateAuthority::from_pem(crt(&ca_pair), &other_key),
        Err(PkiError::KeyMismatch)
    ));
    let leaf = ca
        .issue_client_certificate(
            "admin",
            &roles(&["os:admin"]),
            Validity::from_now(CLIENT_CERTIFICATE_TTL),
        )
        .unwrap();
    assert!(matches!(
        CertificateAuthority::from_pair(&leaf),
        Err(PkiError::NotCa)
    ));
    let without_key = PemCertificateAndKey {
        crt: ca_pair.crt.clone(),
        key: None,
    };
    assert!(matches!(
        CertificateAuthority::from_pair(&without_key),
        Err(PkiError::Missing { .. })
    ));
    assert_eq!(ca.certificate_pem(), crt(&ca_pair));
}

#[test]
fn a_ca_made_by_rcgen_with_a_standard_pkcs8_key_can_issue() {
    let key = PrivateKey::generate_ecdsa_p256().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "kubernetes");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca_pem = params.self_signed(key.key_pair()).unwrap().pem();
    let key_pem = key.key_pair().serialize_pem();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let ca = CertificateAuthority::from_pem(&ca_pem, &key_pem).unwrap();
    let client = ca
        .issue_client_certificate(
            "kube",
            &roles(&["system:masters"]),
            Validity::from_now(Duration::hours(1)),
        )
        .unwrap();
    verify_signed_by(crt(&client), &ca_pem).unwrap();
}

#[test]
fn leaf_certificates_follow_the_ca_key_and_carry_what_was_asked() {
    let pair = generate_ca(CaKind::Kubernetes, Validity::from_now(CA_TTL)).expect("CA");
    let ca = CertificateAuthority::from_pair(&pair).expect("the CA loads");
    assert_eq!(ca.leaf_key_algorithm(), KeyAlgorithm::EcdsaP256);
    let sans = SubjectAltNames {
        dns_names: vec!["kubernetes".into()],
        ip_addresses: vec!["10.96.0.1".parse::<IpAddr>().expect("ip")],
    };
    let leaf = ca
        .issue_leaf(
            &pki::LeafCertificate {
                common_name: "kube-apiserver",
                organizations: &roles(&["kube-master"]),
                extended_key_usages: &[ExtendedKeyUsage::ServerAuth],
                subject_alt_names: &sans,
                key_encipherment: true,
            },
            Validity::from_now(Duration::hours(1)),
        )
        .expect("issued");
    verify_signed_by(crt(&leaf), crt(&pair)).expect("signed by the Kubernetes CA");
    verify_pair(crt(&leaf), key(&leaf), OffsetDateTime::now_utc()).expect("pair");
    assert_eq!(key_label(key(&leaf)), "EC PRIVATE KEY");
    let info = CertificateInfo::from_pem(crt(&leaf)).expect("parses");
    assert_eq!(info.common_name.as_deref(), Some("kube-apiserver"));
    assert_eq!(info.organizations, ["kube-master"]);
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ServerAuth]);
    assert_eq!(info.dns_names, ["kubernetes"]);
    assert!(!info.is_ca);
    let (digital_signature, cert_sign, _, flags) = key_usage(crt(&leaf));
    assert!(digital_signature && !cert_sign);
    // digitalSignature (bit 0) and keyEncipherment (bit 2).
    assert_eq!(flags, 0b101);

    let (_, talos) = talos_ca();
    assert_eq!(talos.leaf_key_algorithm(), KeyAlgorithm::Ed25519);
}

#[test]
fn public_key_pem_is_the_subject_public_key_info() {
    let key = PrivateKey::generate_ecdsa_p256().expect("key");
    let block = pem::parse(key.public_key_pem()).expect("PEM");
    assert_eq!(block.tag(), "PUBLIC KEY");
    assert_eq!(block.contents(), key.subject_public_key_info().as_slice());
}
