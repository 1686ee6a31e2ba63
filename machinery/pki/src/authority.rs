//! Certificate authorities: creating the four CAs of a Talos cluster, and loading a CA from PEM
//! to issue certificates with (see [`crate::issue`] for what it issues).

use x509_parser::extensions::ParsedExtension;

use crate::error::PkiError;
use crate::inspect::{CertificateInfo, certificate_der, parse_certificate};
use crate::issue::{SubjectAltNames, Validity};
use crate::keys::{PrivateKey, encode_pem};
use crate::x509_der::{self, CertificateFields, Extension, KeyUsageBit};
use crate::yaml_pem::PemCertificateAndKey;

/// The CAs of a Talos cluster (reference §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaKind {
    /// The Talos API CA (`certs.os`, `machine.ca`): Ed25519, Organization `talos`.
    Talos,
    /// The Kubernetes CA (`certs.k8s`, `cluster.ca`): ECDSA P-256, Organization `kubernetes`.
    Kubernetes,
    /// The Kubernetes front-proxy CA (`certs.k8saggregator`): ECDSA P-256, CN `front-proxy`.
    KubernetesAggregator,
    /// The etcd CA (`certs.etcd`): ECDSA P-256, Organization `etcd`.
    Etcd,
}

impl CaKind {
    fn generate_key(self) -> Result<PrivateKey, PkiError> {
        match self {
            CaKind::Talos => PrivateKey::generate_ed25519(),
            CaKind::Kubernetes | CaKind::KubernetesAggregator | CaKind::Etcd => {
                PrivateKey::generate_ecdsa_p256()
            }
        }
    }

    /// (common name, organization) of the CA's subject.
    fn subject(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            CaKind::Talos => (None, Some("talos")),
            CaKind::Kubernetes => (None, Some("kubernetes")),
            CaKind::KubernetesAggregator => (Some("front-proxy"), None),
            CaKind::Etcd => (None, Some("etcd")),
        }
    }
}

/// Creates a self-signed CA of the given kind: a new key, BasicConstraints CA (critical),
/// KeyUsage DigitalSignature + KeyCertSign + CRLSign, a subject key identifier. Use
/// [`Validity::from_now`] with [`crate::CA_TTL`] for the upstream lifetime of 10 years.
pub fn generate_ca(kind: CaKind, validity: Validity) -> Result<PemCertificateAndKey, PkiError> {
    let (common_name, organization) = kind.subject();
    let organizations: Vec<String> = organization.into_iter().map(String::from).collect();
    self_signed_ca(
        kind.generate_key()?,
        common_name,
        &organizations,
        &SubjectAltNames::default(),
        validity,
    )
}

/// Creates a self-signed Ed25519 CA whose subject is Organization `organization`, valid for
/// the names in `sans` too (`talosctl gen ca` without names, `gen keypair` with `--ip`).
pub fn generate_ca_for_organization(
    organization: &str,
    sans: &SubjectAltNames,
    validity: Validity,
) -> Result<PemCertificateAndKey, PkiError> {
    let key = PrivateKey::generate_ed25519()?;
    self_signed_ca(key, None, &[organization.to_string()], sans, validity)
}

fn self_signed_ca(
    key: PrivateKey,
    common_name: Option<&str>,
    organizations: &[String],
    sans: &SubjectAltNames,
    validity: Validity,
) -> Result<PemCertificateAndKey, PkiError> {
    validity.check()?;
    let subject = x509_der::name(common_name, organizations);
    let mut extensions = vec![
        Extension::basic_constraints(true),
        Extension::key_usage(&[
            KeyUsageBit::DigitalSignature,
            KeyUsageBit::KeyCertSign,
            KeyUsageBit::CrlSign,
        ]),
        Extension::subject_key_identifier(&x509_der::key_identifier(key.public_key_raw())),
    ];
    extensions.extend(Extension::subject_alt_name(sans)?);
    let certificate = x509_der::sign_certificate(
        &CertificateFields {
            issuer: &subject,
            subject: &subject,
            subject_public_key_info: &key.subject_public_key_info(),
            validity: &validity,
            extensions: &extensions,
        },
        &key,
    )?;
    Ok(PemCertificateAndKey {
        crt: Some(encode_pem("CERTIFICATE", certificate)),
        key: Some(key.to_pem()),
    })
}

/// A CA certificate with its private key, ready to issue certificates.
#[derive(Debug)]
pub struct CertificateAuthority {
    certificate_pem: String,
    /// The CA's subject name, DER, copied into the issuer field of what it signs.
    pub(crate) subject: Vec<u8>,
    /// The CA's subject key identifier, if it has one (becomes the authority key identifier).
    pub(crate) key_identifier: Option<Vec<u8>>,
    pub(crate) key: PrivateKey,
}

impl CertificateAuthority {
    /// Loads a CA from its certificate and key PEM. The certificate must be a CA and the key
    /// must be its key; expiry is not checked here.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let der = certificate_der(certificate_pem)?;
        let certificate = parse_certificate(&der)?;
        let info = CertificateInfo::from_parsed(&certificate, &der)?;
        if !info.is_ca {
            return Err(PkiError::NotCa);
        }
        let key = PrivateKey::from_pem(key_pem)?;
        if !info.matches_key(&key) {
            return Err(PkiError::KeyMismatch);
        }
        let key_identifier = certificate
            .extensions()
            .iter()
            .find_map(|extension| match extension.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            });
        Ok(CertificateAuthority {
            certificate_pem: certificate_pem.to_string(),
            subject: certificate.subject().as_raw().to_vec(),
            key_identifier,
            key,
        })
    }

    /// Loads a CA from a YAML certificate-and-key pair (such as `machine.ca` or `certs.os`);
    /// both halves must be present.
    pub fn from_pair(pair: &PemCertificateAndKey) -> Result<Self, PkiError> {
        let certificate = pair.crt.as_deref().ok_or(PkiError::Missing {
            what: "CA certificate (crt)",
        })?;
        let key = pair.key.as_deref().ok_or(PkiError::Missing {
            what: "CA private key (key)",
        })?;
        Self::from_pem(certificate, key)
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }
}
