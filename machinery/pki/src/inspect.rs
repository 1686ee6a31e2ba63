//! Reading certificates: what they say ([`CertificateInfo`]), whether they belong to a key and
//! are valid now ([`verify_pair`]), and whether a CA signed them ([`verify_signed_by`]).

use std::net::IpAddr;

use time::OffsetDateTime;
use x509_parser::asn1_rs::Oid;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate, X509Name};

use crate::error::PkiError;
use crate::key_der::{OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_RSA_ENCRYPTION};
use crate::keys::{KeyAlgorithm, PrivateKey, found_labels};
use crate::usage::ExtendedKeyUsage;

/// What a certificate says, as read by x509-parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject's first common name.
    pub common_name: Option<String>,
    /// The subject's Organization values, in order (the roles of a Talos client certificate).
    pub organizations: Vec<String>,
    /// The issuer's first common name.
    pub issuer_common_name: Option<String>,
    /// The serial number, lower-case hex of its DER content bytes.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Whether BasicConstraints says CA.
    pub is_ca: bool,
    /// The public key's algorithm, `None` if it is not one this crate handles.
    pub public_key_algorithm: Option<KeyAlgorithm>,
    /// The ExtendedKeyUsage purposes (empty when the extension is absent).
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
    /// DNS names among the subject alternative names.
    pub dns_names: Vec<String>,
    /// IP addresses among the subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// SHA-256 of the certificate's DER, lower-case hex.
    pub sha256_fingerprint: String,
    /// The raw subject public key (the SubjectPublicKeyInfo bit string).
    public_key: Vec<u8>,
}

impl CertificateInfo {
    /// Reads the first `CERTIFICATE` block of `pem_text`.
    pub fn from_pem(pem_text: &str) -> Result<Self, PkiError> {
        Self::from_der(&certificate_der(pem_text)?)
    }

    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        Self::from_parsed(&parse_certificate(der)?, der)
    }

    pub(crate) fn from_parsed(
        certificate: &X509Certificate<'_>,
        der: &[u8],
    ) -> Result<Self, PkiError> {
        let invalid = |e: x509_parser::error::X509Error| PkiError::InvalidCertificate {
            reason: e.to_string(),
        };
        let extended_key_usages = certificate
            .extended_key_usage()
            .map_err(invalid)?
            .map(|extension| ExtendedKeyUsage::from_parsed(extension.value))
            .unwrap_or_default();

        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if let Some(sans) = certificate.subject_alternative_name().map_err(invalid)? {
            for name in &sans.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => dns_names.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            ip_addresses.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }

        let validity = certificate.validity();
        Ok(CertificateInfo {
            common_name: first_common_name(certificate.subject()),
            organizations: certificate
                .subject()
                .iter_organization()
                .filter_map(|o| o.as_str().ok().map(String::from))
                .collect(),
            issuer_common_name: first_common_name(certificate.issuer()),
            serial: hex(certificate.raw_serial()),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            is_ca: certificate.is_ca(),
            public_key_algorithm: public_key_algorithm(certificate),
            extended_key_usages,
            dns_names,
            ip_addresses,
            sha256_fingerprint: hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref()),
            public_key: certificate.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// Whether the certificate's public key is the public half of `key`.
    pub fn matches_key(&self, key: &PrivateKey) -> bool {
        self.public_key_algorithm == Some(key.algorithm())
            && self.public_key == key.public_key_raw()
    }

    /// Whether `now` is within the certificate's validity.
    pub fn check_validity(&self, now: OffsetDateTime) -> Result<(), PkiError> {
        if now < self.not_before {
            return Err(PkiError::NotYetValid {
                not_before: self.not_before,
            });
        }
        if now > self.not_after {
            return Err(PkiError::Expired {
                not_after: self.not_after,
            });
        }
        Ok(())
    }
}

/// Checks that a certificate and a private key belong together and that the certificate is
/// valid at `now`.
pub fn verify_pair(
    certificate_pem: &str,
    key_pem: &str,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let info = CertificateInfo::from_pem(certificate_pem)?;
    let key = PrivateKey::from_pem(key_pem)?;
    if !info.matches_key(&key) {
        return Err(PkiError::KeyMismatch);
    }
    info.check_validity(now)
}

/// Checks that `certificate_pem` was issued by `ca_certificate_pem`: its issuer name is the CA's
/// subject name and the CA's key verifies its signature. Validity dates are not checked.
pub fn verify_signed_by(certificate_pem: &str, ca_certificate_pem: &str) -> Result<(), PkiError> {
    let der = certificate_der(certificate_pem)?;
    let certificate = parse_certificate(&der)?;
    let ca_der = certificate_der(ca_certificate_pem)?;
    let ca = parse_certificate(&ca_der)?;
    if certificate.issuer().as_raw() != ca.subject().as_raw() {
        return Err(PkiError::NotSignedBy {
            reason: format!(
                "its issuer `{}` is not the CA's subject `{}`",
                certificate.issuer(),
                ca.subject()
            ),
        });
    }
    certificate
        .verify_signature(Some(ca.public_key()))
        .map_err(|e| PkiError::NotSignedBy {
            reason: format!("the signature does not verify ({e})"),
        })
}

/// The DER of the first `CERTIFICATE` block in `pem_text`.
pub(crate) fn certificate_der(pem_text: &str) -> Result<Vec<u8>, PkiError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| PkiError::Pem {
        reason: e.to_string(),
    })?;
    match blocks.iter().find(|b| b.tag() == "CERTIFICATE") {
        Some(block) => Ok(block.contents().to_vec()),
        None => Err(PkiError::MissingPemBlock {
            expected: "CERTIFICATE",
            found: found_labels(&blocks),
        }),
    }
}

pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, certificate) =
        X509Certificate::from_der(der).map_err(|e| PkiError::InvalidCertificate {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCertificate {
            reason: format!("{} bytes after the certificate", rest.len()),
        });
    }
    Ok(certificate)
}

fn first_common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .find_map(|cn| cn.as_str().ok().map(String::from))
}

pub(crate) fn oid_arcs(oid: &Oid<'_>) -> Vec<u64> {
    oid.iter().map(Iterator::collect).unwrap_or_default()
}

fn public_key_algorithm(certificate: &X509Certificate<'_>) -> Option<KeyAlgorithm> {
    let algorithm = &certificate.public_key().algorithm;
    let arcs = oid_arcs(&algorithm.algorithm);
    if arcs == OID_ED25519 {
        Some(KeyAlgorithm::Ed25519)
    } else if arcs == OID_RSA_ENCRYPTION {
        Some(KeyAlgorithm::Rsa)
    } else if arcs == OID_EC_PUBLIC_KEY {
        let curve = algorithm.parameters.as_ref()?.as_oid().ok()?;
        (oid_arcs(&curve) == OID_P256).then_some(KeyAlgorithm::EcdsaP256)
    } else {
        None
    }
}

pub(crate) fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
