//! Private keys: generation, upstream PEM labels, and loading keys written by other tools.

use pki::{CertificateInfo, KeyAlgorithm, PkiError, PrivateKey, verify_pair, verify_signed_by};

const OPENSSL_EC: &str = include_str!("fixtures/ec-sec1-openssl.pem");
const OPENSSL_EC_P384: &str = include_str!("fixtures/ec-p384.pem");
const OPENSSL_RSA_PKCS1: &str = include_str!("fixtures/rsa-pkcs1.pem");
const OPENSSL_RSA_PKCS8: &str = include_str!("fixtures/rsa-pkcs8.pem");
const OPENSSL_ED25519: &str = include_str!("fixtures/ed25519-pkcs8.pem");

fn single_block(pem_text: &str) -> pem::Pem {
    let mut blocks = pem::parse_many(pem_text).expect("valid PEM");
    assert_eq!(blocks.len(), 1, "{pem_text}");
    blocks.remove(0)
}

/// Signs a self-signed certificate with rcgen using the key, and checks it with our verifier.
fn assert_rcgen_signs_with(key: &PrivateKey) {
    let mut params =
        rcgen::CertificateParams::new(vec!["signed.test".to_string()]).expect("a valid DNS name");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let certificate = params
        .self_signed(key.key_pair())
        .expect("rcgen signs with the key");
    verify_signed_by(&certificate.pem(), &certificate.pem()).expect("the signature verifies");
    let info = CertificateInfo::from_pem(&certificate.pem()).expect("rcgen's certificate parses");
    assert!(info.matches_key(key));
}

#[test]
fn ed25519_keys_are_pkcs8_v1_labelled_ed25519_private_key() {
    let key = PrivateKey::generate_ed25519().unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
    let pem_text = key.to_pem();
    let block = single_block(&pem_text);
    assert_eq!(block.tag(), "ED25519 PRIVATE KEY");
    // PKCS#8 v1 of a 32-byte seed, as Go's x509.MarshalPKCS8PrivateKey writes it.
    assert_eq!(block.contents().len(), 48);
    assert_eq!(
        &block.contents()[..16],
        &hex("302e020100300506032b657004220420")
    );

    let reloaded = PrivateKey::from_pem(&pem_text).unwrap();
    assert_eq!(reloaded.public_key_raw(), key.public_key_raw());
    assert_eq!(reloaded.to_pem(), pem_text);

    let standard = pem::encode(&pem::Pem::new("PRIVATE KEY", block.contents().to_vec()));
    let from_standard = PrivateKey::from_pem(&standard).unwrap();
    assert_eq!(from_standard.public_key_raw(), key.public_key_raw());
    assert_rcgen_signs_with(&key);
}

#[test]
fn ecdsa_keys_are_sec1_with_curve_and_public_key_and_round_trip() {
    let key = PrivateKey::generate_ecdsa_p256().unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
    let pem_text = key.to_pem();
    let block = single_block(&pem_text);
    assert_eq!(block.tag(), "EC PRIVATE KEY");

    // ECPrivateKey ::= SEQUENCE { 1, privateKey, [0] namedCurve, [1] publicKey }
    let (version, scalar, curve, public_key) = yasna::parse_der(block.contents(), |r| {
        r.read_sequence(|r| {
            let version = r.next().read_u8()?;
            let scalar = r.next().read_bytes()?;
            let curve = r
                .next()
                .read_tagged(yasna::Tag::context(0), |r| r.read_oid())?;
            let public_key = r
                .next()
                .read_tagged(yasna::Tag::context(1), |r| r.read_bitvec_bytes())?;
            Ok((version, scalar, curve, public_key))
        })
    })
    .unwrap();
    assert_eq!(version, 1);
    assert_eq!(scalar.len(), 32);
    assert_eq!(curve.components().as_slice(), &[1, 2, 840, 10045, 3, 1, 7]);
    assert_eq!(public_key.0, key.public_key_raw());

    let reloaded = PrivateKey::from_pem(&pem_text).unwrap();
    assert_eq!(reloaded.public_key_raw(), key.public_key_raw());
    assert_eq!(reloaded.to_pem(), pem_text);
    assert_rcgen_signs_with(&reloaded);

    let pkcs8 = pem::encode(&pem::Pem::new("PRIVATE KEY", key.pkcs8_der().to_vec()));
    assert_eq!(PrivateKey::from_pem(&pkcs8).unwrap().to_pem(), pem_text);
}

#[test]
fn openssl_sec1_ec_key_loads_skipping_the_parameters_block_and_re_encodes_identically() {
    let key = PrivateKey::from_pem(OPENSSL_EC).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
    let original = pem::parse_many(OPENSSL_EC)
        .unwrap()
        .into_iter()
        .find(|b| b.tag() == "EC PRIVATE KEY")
        .unwrap();
    assert_eq!(single_block(&key.to_pem()).contents(), original.contents());
    assert_rcgen_signs_with(&key);
}

#[test]
fn rsa_keys_load_from_pkcs1_and_pkcs8_and_are_written_as_pkcs1() {
    let from_pkcs1 = PrivateKey::from_pem(OPENSSL_RSA_PKCS1).unwrap();
    let from_pkcs8 = PrivateKey::from_pem(OPENSSL_RSA_PKCS8).unwrap();
    assert_eq!(from_pkcs1.algorithm(), KeyAlgorithm::Rsa);
    assert_eq!(from_pkcs1.public_key_raw(), from_pkcs8.public_key_raw());
    let written = single_block(&from_pkcs8.to_pem());
    assert_eq!(written.tag(), "RSA PRIVATE KEY");
    assert_eq!(
        written.contents(),
        single_block(OPENSSL_RSA_PKCS1).contents()
    );
    assert_rcgen_signs_with(&from_pkcs1);
}

#[test]
fn standard_pkcs8_ed25519_key_from_openssl_loads() {
    let key = PrivateKey::from_pem(OPENSSL_ED25519).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
    assert_eq!(
        single_block(&key.to_pem()).contents(),
        single_block(OPENSSL_ED25519).contents()
    );
}

#[test]
fn unsupported_or_mislabelled_keys_are_rejected() {
    let err = PrivateKey::from_pem(OPENSSL_EC_P384).unwrap_err();
    assert!(
        matches!(&err, PkiError::UnsupportedKeyAlgorithm { algorithm } if algorithm.contains("1.3.132.0.34")),
        "{err}"
    );

    let ec_body = single_block(&PrivateKey::generate_ecdsa_p256().unwrap().to_pem());
    let mislabelled = pem::encode(&pem::Pem::new("ED25519 PRIVATE KEY", ec_body.contents()));
    let err = PrivateKey::from_pem(&mislabelled).unwrap_err();
    assert!(err.to_string().contains("ED25519 PRIVATE KEY"), "{err}");

    let pkcs8 = PrivateKey::generate_ed25519().unwrap().pkcs8_der().to_vec();
    let mislabelled = pem::encode(&pem::Pem::new("EC PRIVATE KEY", pkcs8));
    assert!(PrivateKey::from_pem(&mislabelled).is_err());

    let err =
        PrivateKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap_err();
    assert!(
        matches!(&err, PkiError::MissingPemBlock { found, .. } if found == "CERTIFICATE"),
        "{err}"
    );
    assert!(matches!(
        PrivateKey::from_pem(""),
        Err(PkiError::MissingPemBlock { .. })
    ));

    let truncated = pem::encode(&pem::Pem::new(
        "ED25519 PRIVATE KEY",
        vec![0x30, 0x03, 0x02, 0x01],
    ));
    assert!(matches!(
        PrivateKey::from_pem(&truncated),
        Err(PkiError::InvalidKey { .. })
    ));
}

#[test]
fn debug_output_does_not_show_the_key() {
    let key = PrivateKey::generate_ed25519().unwrap();
    let debug = format!("{key:?}");
    assert_eq!(debug, "PrivateKey { algorithm: Ed25519, .. }");
}

#[test]
fn a_certificate_checked_against_another_key_fails() {
    let ca = pki::generate_ca(pki::CaKind::Talos, pki::Validity::from_now(pki::CA_TTL)).unwrap();
    let other = PrivateKey::generate_ed25519().unwrap().to_pem();
    let crt = ca.crt.as_deref().unwrap();
    let now = time::OffsetDateTime::now_utc();
    verify_pair(crt, ca.key.as_deref().unwrap(), now).unwrap();
    assert!(matches!(
        verify_pair(crt, &other, now),
        Err(PkiError::KeyMismatch)
    ));
    let ecdsa = PrivateKey::generate_ecdsa_p256().unwrap().to_pem();
    assert!(matches!(
        verify_pair(crt, &ecdsa, now),
        Err(PkiError::KeyMismatch)
    ));
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}
