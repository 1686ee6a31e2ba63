//! Issuing certificates from a [`CertificateAuthority`]: Talos client certificates (roles in
//! the Organization), server certificates (SANs), and certificates from signing requests
//! (`talosctl gen csr` / `gen crt`, trustd).
//!
//! Every issued certificate has a random serial, BasicConstraints CA=false (critical), a
//! subject key identifier and, when the CA has one, an authority key identifier.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer as _;

use crate::authority::CertificateAuthority;
use crate::error::PkiError;
use crate::inspect::{ip_from_bytes, oid_arcs};
use crate::keys::{KeyAlgorithm, PrivateKey, encode_pem, found_labels};
use crate::usage::ExtendedKeyUsage;
use crate::x509_der::{self, CertificateFields, Extension, KeyUsageBit};
use crate::yaml_pem::PemCertificateAndKey;

/// Lifetime of the cluster CAs: 87600 h (10 years).
pub const CA_TTL: Duration = Duration::hours(87_600);
/// Default lifetime of client certificates (talosconfig): 8760 h (1 year).
pub const CLIENT_CERTIFICATE_TTL: Duration = Duration::hours(8_760);
/// Default lifetime of server certificates (apid, trustd): 24 h.
pub const SERVER_CERTIFICATE_TTL: Duration = Duration::hours(24);

/// When a certificate is valid. Times are stored in certificates to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity; must be after `not_before`.
    pub not_after: OffsetDateTime,
}

/// How far `not_before` is set back: a node whose clock is a little behind the signer's
/// (guest clocks drift by seconds under load, and nodes without time servers never correct
/// them) still accepts a certificate issued for it just now.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// How far a new CA's `not_before` is set back. A CA exists before every node that trusts it,
/// so nothing is lost by starting it early, and nodes whose clock is behind (an RTC kept in
/// local time, a clock set back by hand) still verify chains up to it: etcd (Go) checks the
/// validity of the CA itself.
pub const CA_CLOCK_SKEW: Duration = Duration::days(1);

impl Validity {
    /// Valid for `ttl` from now, and from [`CLOCK_SKEW`] before now.
    pub fn from_now(ttl: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - CLOCK_SKEW,
            not_after: now + ttl,
        }
    }

    /// A new CA's validity: [`CA_TTL`] from now, and from [`CA_CLOCK_SKEW`] before now.
    pub fn for_new_ca() -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - CA_CLOCK_SKEW,
            not_after: now + CA_TTL,
        }
    }

    pub(crate) fn check(&self) -> Result<(), PkiError> {
        if self.not_after <= self.not_before {
            return Err(PkiError::InvalidValidity {
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        Ok(())
    }
}

/// Subject alternative names of a server certificate or a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectAltNames {
    /// DNS names (ASCII).
    pub dns_names: Vec<String>,
    /// IP addresses.
    pub ip_addresses: Vec<IpAddr>,
}

/// What a certificate signing request asks for (`talosctl gen csr`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateRequest {
    /// The subject common name, if any.
    pub common_name: Option<String>,
    /// Roles, written as one Subject Organization each.
    pub roles: Vec<String>,
    /// Subject alternative names.
    pub subject_alt_names: SubjectAltNames,
    /// Requested extended key usages (`[ClientAuth]` for a talosconfig certificate); none
    /// requested when empty. KeyUsage DigitalSignature is always requested.
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
}

/// A leaf certificate to issue with [`CertificateAuthority::issue_leaf`].
#[derive(Clone, Copy, Debug)]
pub struct LeafCertificate<'a> {
    /// The subject common name.
    pub common_name: &'a str,
    /// Subject Organizations, in order (Kubernetes reads them as groups).
    pub organizations: &'a [String],
    /// ExtendedKeyUsage purposes; the extension is left out when empty.
    pub extended_key_usages: &'a [ExtendedKeyUsage],
    /// Subject alternative names (none for client certificates).
    pub subject_alt_names: &'a SubjectAltNames,
    /// Whether KeyUsage has KeyEncipherment besides DigitalSignature (upstream sets it on the
    /// Kubernetes certificates).
    pub key_encipherment: bool,
}

/// What a certificate signing request asks for, read after checking its self-signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedCertificate {
    /// Subject common name, Organizations (as `roles`), SANs and extended key usages.
    pub request: CertificateRequest,
    /// Whether it asks for BasicConstraints CA=true.
    pub is_ca: bool,
}

impl RequestedCertificate {
    /// Reads a PEM certificate signing request (label `CERTIFICATE REQUEST`).
    pub fn from_pem(csr_pem: &str) -> Result<Self, PkiError> {
        let invalid = |reason: String| PkiError::InvalidCsr { reason };
        let der = csr_der(csr_pem)?;
        let csr = parse_csr(&der)?;
        let info = &csr.certification_request_info;
        let mut requested = RequestedCertificate {
            request: CertificateRequest {
                common_name: info
                    .subject
                    .iter_common_name()
                    .find_map(|cn| cn.as_str().ok().map(String::from)),
                roles: info
                    .subject
                    .iter_organization()
                    .filter_map(|o| o.as_str().ok().map(String::from))
                    .collect(),
                ..CertificateRequest::default()
            },
            is_ca: false,
        };
        let mut extension_requests = info
            .iter_attributes()
            .filter_map(|attribute| match attribute.parsed_attribute() {
                ParsedCriAttribute::ExtensionRequest(request) => Some(&request.extensions),
                _ => None,
            });
        let Some(extensions) = extension_requests.next() else {
            return Ok(requested);
        };
        if extension_requests.next().is_some() {
            return Err(invalid("it carries more than one extension request".into()));
        }
        let mut oids = Vec::with_capacity(extensions.len());
        for extension in extensions {
            if oids.contains(&&extension.oid) {
                return Err(invalid(format!(
                    "it requests extension {} twice",
                    extension.oid
                )));
            }
            oids.push(&extension.oid);
        }
        for extension in extensions.iter().map(|e| e.parsed_extension()) {
            match extension {
                ParsedExtension::BasicConstraints(constraints) => {
                    requested.is_ca |= constraints.ca;
                }
                ParsedExtension::ExtendedKeyUsage(usages) => requested
                    .request
                    .extended_key_usages
                    .extend(ExtendedKeyUsage::from_parsed(usages)),
                ParsedExtension::SubjectAlternativeName(names) => {
                    let sans = &mut requested.request.subject_alt_names;
                    for name in &names.general_names {
                        match name {
                            GeneralName::DNSName(dns) => {
                                if sans.dns_names.iter().any(|n| n.eq_ignore_ascii_case(dns)) {
                                    return Err(invalid(format!(
                                        "it names {dns:?} twice as a subject alternative name"
                                    )));
                                }
                                sans.dns_names.push(dns.to_string());
                            }
                            GeneralName::IPAddress(bytes) => {
                                let ip = ip_from_bytes(bytes).ok_or_else(|| {
                                    invalid(format!("IP SAN of {} bytes", bytes.len()))
                                })?;
                                if sans.ip_addresses.contains(&ip) {
                                    return Err(invalid(format!(
                                        "it names {ip} twice as a subject alternative name"
                                    )));
                                }
                                sans.ip_addresses.push(ip);
                            }
                            other => {
                                return Err(invalid(format!(
                                    "unsupported subject alternative name {other}"
                                )));
                            }
                        }
                    }
                }
                ParsedExtension::UnsupportedExtension { .. }
                | ParsedExtension::KeyUsage(_)
                | ParsedExtension::SubjectKeyIdentifier(_) => {}
                ParsedExtension::ParseError { error } => {
                    return Err(invalid(format!("malformed extension ({error})")));
                }
                other => {
                    return Err(invalid(format!("unexpected extension {other:?}")));
                }
            }
        }
        Ok(requested)
    }
}

/// The DER of the `CERTIFICATE REQUEST` block of `csr_pem`.
fn csr_der(csr_pem: &str) -> Result<Vec<u8>, PkiError> {
    let invalid = |reason: String| PkiError::InvalidCsr { reason };
    let blocks = pem::parse_many(csr_pem).map_err(|e| invalid(format!("not PEM ({e})")))?;
    let block = blocks
        .iter()
        .find(|b| matches!(b.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"))
        .ok_or_else(|| {
            invalid(format!(
                "no CERTIFICATE REQUEST PEM block (labels present: {})",
                found_labels(&blocks)
            ))
        })?;
    Ok(block.contents().to_vec())
}

/// Parses a DER request and checks its self-signature.
fn parse_csr(der: &[u8]) -> Result<X509CertificationRequest<'_>, PkiError> {
    let invalid = |reason: String| PkiError::InvalidCsr { reason };
    let (_, csr) = X509CertificationRequest::from_der(der).map_err(|e| invalid(e.to_string()))?;
    csr.verify_signature()
        .map_err(|e| invalid(format!("its signature does not verify ({e})")))?;
    Ok(csr)
}

/// Creates a PEM certificate signing request for `key`.
pub fn generate_csr(key: &PrivateKey, request: &CertificateRequest) -> Result<String, PkiError> {
    let subject = x509_der::name(request.common_name.as_deref(), &request.roles);
    let mut extensions = vec![Extension::key_usage(&[KeyUsageBit::DigitalSignature])];
    if !request.extended_key_usages.is_empty() {
        extensions.push(Extension::extended_key_usage(&request.extended_key_usages)?);
    }
    extensions.extend(Extension::subject_alt_name(&request.subject_alt_names)?);
    let der = x509_der::sign_request(&subject, key, &[&extensions])?;
    Ok(encode_pem("CERTIFICATE REQUEST", der))
}

/// Fuzzing only: a PEM request signed by `key` whose ExtensionRequest attribute value is `raw`.
#[cfg(fuzzing)]
pub fn signed_request_with_raw_extensions(
    key: &PrivateKey,
    raw: &[u8],
) -> Result<String, PkiError> {
    let subject = x509_der::name(Some("fuzz"), &[]);
    Ok(encode_pem(
        "CERTIFICATE REQUEST",
        x509_der::sign_request_raw(&subject, key, raw)?,
    ))
}

impl CertificateAuthority {
    /// Issues a Talos client certificate with a new Ed25519 key: one Subject Organization per
    /// role, KeyUsage DigitalSignature, ExtendedKeyUsage exactly `[ClientAuth]` (what apid
    /// requires). [`CLIENT_CERTIFICATE_TTL`] is the usual lifetime.
    pub fn issue_client_certificate(
        &self,
        common_name: &str,
        roles: &[String],
        validity: Validity,
    ) -> Result<PemCertificateAndKey, PkiError> {
        let key = PrivateKey::generate_ed25519()?;
        let extensions = vec![
            Extension::key_usage(&[KeyUsageBit::DigitalSignature]),
            Extension::extended_key_usage(&[ExtendedKeyUsage::ClientAuth])?,
        ];
        let subject = x509_der::name(Some(common_name), roles);
        let certificate = self.issue(&subject, &key, validity, extensions)?;
        Ok(PemCertificateAndKey {
            crt: Some(certificate),
            key: Some(key.to_pem()),
        })
    }

    /// Issues a server certificate with a new Ed25519 key: no Organization, KeyUsage
    /// DigitalSignature, ExtendedKeyUsage `[ServerAuth]`, the given SANs.
    /// [`SERVER_CERTIFICATE_TTL`] is the usual lifetime.
    pub fn issue_server_certificate(
        &self,
        common_name: &str,
        subject_alt_names: &SubjectAltNames,
        validity: Validity,
    ) -> Result<PemCertificateAndKey, PkiError> {
        let key = PrivateKey::generate_ed25519()?;
        let mut extensions = vec![
            Extension::key_usage(&[KeyUsageBit::DigitalSignature]),
            Extension::extended_key_usage(&[ExtendedKeyUsage::ServerAuth])?,
        ];
        extensions.extend(Extension::subject_alt_name(subject_alt_names)?);
        let subject = x509_der::name(Some(common_name), &[]);
        let certificate = self.issue(&subject, &key, validity, extensions)?;
        Ok(PemCertificateAndKey {
            crt: Some(certificate),
            key: Some(key.to_pem()),
        })
    }

    /// Issues a leaf certificate described by `spec` with a new key whose algorithm follows
    /// the CA's ([`CertificateAuthority::leaf_key_algorithm`]): how upstream issues the
    /// Kubernetes certificates (API server, kubelet client, front proxy, admin).
    pub fn issue_leaf(
        &self,
        spec: &LeafCertificate<'_>,
        validity: Validity,
    ) -> Result<PemCertificateAndKey, PkiError> {
        let key = match self.leaf_key_algorithm() {
            KeyAlgorithm::Ed25519 => PrivateKey::generate_ed25519()?,
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Rsa => PrivateKey::generate_ecdsa_p256()?,
        };
        let mut key_usage = vec![KeyUsageBit::DigitalSignature];
        if spec.key_encipherment {
            key_usage.push(KeyUsageBit::KeyEncipherment);
        }
        let mut extensions = vec![Extension::key_usage(&key_usage)];
        if !spec.extended_key_usages.is_empty() {
            extensions.push(Extension::extended_key_usage(spec.extended_key_usages)?);
        }
        extensions.extend(Extension::subject_alt_name(spec.subject_alt_names)?);
        let subject = x509_der::name(Some(spec.common_name), spec.organizations);
        let certificate = self.issue(&subject, &key, validity, extensions)?;
        Ok(PemCertificateAndKey {
            crt: Some(certificate),
            key: Some(key.to_pem()),
        })
    }

    /// The algorithm of keys made by [`CertificateAuthority::issue_leaf`]: the CA's own, except
    /// that an RSA CA gets ECDSA P-256 leaves (this crate cannot generate RSA keys).
    pub fn leaf_key_algorithm(&self) -> KeyAlgorithm {
        match self.key.algorithm() {
            KeyAlgorithm::Ed25519 => KeyAlgorithm::Ed25519,
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Rsa => KeyAlgorithm::EcdsaP256,
        }
    }

    /// Signs a PEM certificate signing request (label `CERTIFICATE REQUEST`) after checking
    /// its self-signature, as `talosctl gen crt` does: the subject and every requested extension
    /// are kept, except that the result is never a CA (BasicConstraints is replaced, key
    /// identifiers are rewritten). Returns the certificate PEM.
    pub fn sign_csr(&self, csr_pem: &str, validity: Validity) -> Result<String, PkiError> {
        let der = csr_der(csr_pem)?;
        let csr = parse_csr(&der)?;
        let info = &csr.certification_request_info;
        let replaced = [
            x509_der::OID_BASIC_CONSTRAINTS,
            x509_der::OID_SUBJECT_KEY_IDENTIFIER,
            x509_der::OID_AUTHORITY_KEY_IDENTIFIER,
        ];
        let kept = info
            .iter_attributes()
            .filter_map(|attribute| match attribute.parsed_attribute() {
                ParsedCriAttribute::ExtensionRequest(request) => Some(&request.extensions),
                _ => None,
            })
            .flatten()
            .map(|e| (oid_arcs(&e.oid), e))
            .filter(|(oid, _)| !replaced.contains(&oid.as_slice()))
            .map(|(oid, e)| Extension::raw(oid, e.critical, e.value.to_vec()))
            .collect();
        self.sign(
            info.subject.as_raw(),
            info.subject_pki.raw,
            &info.subject_pki.subject_public_key.data,
            validity,
            kept,
        )
    }

    /// trustd's signing: a server certificate for the key of `csr_pem` (its self-signature
    /// checked) with exactly what `checked` says, whatever else the request carries: the
    /// common name, the subject alternative names, KeyUsage DigitalSignature and
    /// ExtendedKeyUsage ServerAuth. `checked` is what the caller read from the same request
    /// ([`RequestedCertificate::from_pem`]) and vetted.
    pub fn sign_server_request(
        &self,
        csr_pem: &str,
        checked: &CertificateRequest,
        validity: Validity,
    ) -> Result<String, PkiError> {
        let der = csr_der(csr_pem)?;
        let csr = parse_csr(&der)?;
        let info = &csr.certification_request_info;
        let mut extensions = vec![
            Extension::key_usage(&[KeyUsageBit::DigitalSignature]),
            Extension::extended_key_usage(&[ExtendedKeyUsage::ServerAuth])?,
        ];
        extensions.extend(Extension::subject_alt_name(&checked.subject_alt_names)?);
        let subject = x509_der::name(checked.common_name.as_deref(), &[]);
        self.sign(
            &subject,
            info.subject_pki.raw,
            &info.subject_pki.subject_public_key.data,
            validity,
            extensions,
        )
    }

    fn issue(
        &self,
        subject: &[u8],
        key: &PrivateKey,
        validity: Validity,
        extensions: Vec<Extension>,
    ) -> Result<String, PkiError> {
        self.sign(
            subject,
            &key.subject_public_key_info(),
            key.public_key_raw(),
            validity,
            extensions,
        )
    }

    /// Signs a leaf certificate; adds BasicConstraints CA=false and the key identifiers.
    fn sign(
        &self,
        subject: &[u8],
        subject_public_key_info: &[u8],
        public_key_raw: &[u8],
        validity: Validity,
        mut extensions: Vec<Extension>,
    ) -> Result<String, PkiError> {
        validity.check()?;
        extensions.push(Extension::basic_constraints(false));
        extensions.push(Extension::subject_key_identifier(
            &x509_der::key_identifier(public_key_raw),
        ));
        if let Some(authority_key_id) = &self.key_identifier {
            extensions.push(Extension::authority_key_identifier(authority_key_id));
        }
        let der = x509_der::sign_certificate(
            &CertificateFields {
                issuer: &self.subject,
                subject,
                subject_public_key_info,
                validity: &validity,
                extensions: &extensions,
            },
            &self.key,
        )?;
        Ok(encode_pem("CERTIFICATE", der))
    }
}

#[cfg(test)]
mod csr_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn san(dns: &[&str], ips: &[&str]) -> Extension {
        Extension::subject_alt_name(&SubjectAltNames {
            dns_names: dns.iter().map(|n| n.to_string()).collect(),
            ip_addresses: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        })
        .unwrap()
        .unwrap()
    }

    fn csr(extension_requests: &[&[Extension]]) -> String {
        let key = PrivateKey::generate_ed25519().unwrap();
        let subject = x509_der::name(Some("worker-1"), &[]);
        encode_pem(
            "CERTIFICATE REQUEST",
            x509_der::sign_request(&subject, &key, extension_requests).unwrap(),
        )
    }

    fn refusal(csr: &str) -> String {
        match RequestedCertificate::from_pem(csr) {
            Err(PkiError::InvalidCsr { reason }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_second_extension_request_is_refused() {
        // The signer used to copy SANs from every extension request, the check saw the first.
        let checked = [san(&["worker-1"], &["10.5.0.3"])];
        let smuggled = [san(&["controlplane-1"], &["10.5.0.2"])];
        let reason = refusal(&csr(&[&checked, &smuggled]));
        assert!(
            reason.contains("more than one extension request"),
            "{reason}"
        );
    }

    #[test]
    fn repeated_extensions_and_names_are_refused() {
        let reason = refusal(&csr(&[&[san(&["a"], &[]), san(&["b"], &[])]]));
        assert!(reason.contains("twice"), "{reason}");
        let reason = refusal(&csr(&[&[san(&["a", "A"], &[])]]));
        assert!(reason.contains("\"A\" twice"), "{reason}");
        let reason = refusal(&csr(&[&[san(&[], &["10.5.0.3", "10.5.0.3"])]]));
        assert!(reason.contains("10.5.0.3 twice"), "{reason}");
    }

    #[test]
    fn a_server_certificate_carries_exactly_the_checked_names() {
        let pair = crate::generate_ca(crate::CaKind::Talos, Validity::from_now(CA_TTL)).unwrap();
        let ca = CertificateAuthority::from_pair(&pair).unwrap();
        let csr = csr(&[&[san(&["worker-1"], &["10.5.0.3"])]]);
        let requested = RequestedCertificate::from_pem(&csr).unwrap();
        let mut checked = requested.request.clone();
        checked.subject_alt_names.dns_names.clear();
        let signed = ca
            .sign_server_request(&csr, &checked, Validity::from_now(SERVER_CERTIFICATE_TTL))
            .unwrap();
        let info = crate::CertificateInfo::from_pem(&signed).unwrap();
        assert!(info.dns_names.is_empty(), "{:?}", info.dns_names);
        assert_eq!(info.ip_addresses, ["10.5.0.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ServerAuth]);
        assert_eq!(info.common_name.as_deref(), Some("worker-1"));
    }
}
