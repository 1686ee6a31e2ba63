//! Writing X.509 v3 certificates (RFC 5280) and PKCS#10 requests (RFC 2986) as DER.
//!
//! Written here rather than with rcgen's builders because Talos puts one Subject Organization
//! per role in client certificates, and rcgen's distinguished names hold one value per
//! attribute type. The issuer name is copied byte for byte from the CA certificate, so chains
//! verify against CAs made by upstream tools too.

use ring::rand::{SecureRandom as _, SystemRandom};
use time::{Duration, OffsetDateTime};
use yasna::models::{GeneralizedTime, ObjectIdentifier, UTCTime};
use yasna::{DERWriter, Tag};

use crate::error::PkiError;
use crate::issue::{SubjectAltNames, Validity};
use crate::keys::{KeyAlgorithm, PrivateKey};
use crate::usage::ExtendedKeyUsage;

pub(crate) const OID_ORGANIZATION: &[u64] = &[2, 5, 4, 10];
const OID_COMMON_NAME: &[u64] = &[2, 5, 4, 3];
pub(crate) const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_EXTENDED_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
pub(crate) const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
pub(crate) const OID_SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];
pub(crate) const OID_AUTHORITY_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 35];
const OID_EXTENSION_REQUEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 14];
const OID_SIG_ED25519: &[u64] = &[1, 3, 101, 112];
const OID_SIG_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
const OID_SIG_RSA_SHA256: &[u64] = &[1, 2, 840, 113549, 1, 1, 11];

/// Bits of the KeyUsage extension that this crate sets.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyUsageBit {
    DigitalSignature = 0,
    KeyEncipherment = 2,
    KeyCertSign = 5,
    CrlSign = 6,
}

/// One certificate extension, its value already DER-encoded.
#[derive(Clone, Debug)]
pub(crate) struct Extension {
    oid: Vec<u64>,
    critical: bool,
    value: Vec<u8>,
}

impl Extension {
    /// An extension copied as it is (from a certificate request).
    pub(crate) fn raw(oid: Vec<u64>, critical: bool, value: Vec<u8>) -> Self {
        Extension {
            oid,
            critical,
            value,
        }
    }

    pub(crate) fn basic_constraints(is_ca: bool) -> Self {
        let value = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                if is_ca {
                    w.next().write_bool(true);
                }
            })
        });
        Extension::raw(OID_BASIC_CONSTRAINTS.to_vec(), true, value)
    }

    pub(crate) fn key_usage(bits: &[KeyUsageBit]) -> Self {
        let bit_count = bits.iter().map(|&b| b as usize + 1).max().unwrap_or(0);
        let mut bytes = vec![0u8; bit_count.div_ceil(8)];
        for &bit in bits {
            let bit = bit as usize;
            bytes[bit / 8] |= 0x80 >> (bit % 8);
        }
        let value = yasna::construct_der(|w| w.write_bitvec_bytes(&bytes, bit_count));
        Extension::raw(OID_KEY_USAGE.to_vec(), true, value)
    }

    pub(crate) fn extended_key_usage(usages: &[ExtendedKeyUsage]) -> Result<Self, PkiError> {
        let oids = usages
            .iter()
            .map(|usage| {
                usage.oid().ok_or_else(|| PkiError::InvalidName {
                    what: "extended key usage",
                    value: usage.to_string(),
                    reason: "not a dotted OID",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let value = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                for oid in &oids {
                    w.next().write_oid(&ObjectIdentifier::from_slice(oid));
                }
            })
        });
        Ok(Extension::raw(
            OID_EXTENDED_KEY_USAGE.to_vec(),
            false,
            value,
        ))
    }

    /// The SubjectAltName extension, or `None` when there are no names.
    pub(crate) fn subject_alt_name(sans: &SubjectAltNames) -> Result<Option<Self>, PkiError> {
        if sans.dns_names.is_empty() && sans.ip_addresses.is_empty() {
            return Ok(None);
        }
        if let Some(bad) = sans
            .dns_names
            .iter()
            .find(|n| n.is_empty() || !n.is_ascii())
        {
            return Err(PkiError::InvalidName {
                what: "DNS name",
                value: bad.clone(),
                reason: "DNS names must be non-empty ASCII (use punycode)",
            });
        }
        let value = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                for name in &sans.dns_names {
                    w.next()
                        .write_tagged_implicit(Tag::context(2), |w| w.write_ia5_string(name));
                }
                for ip in &sans.ip_addresses {
                    let octets = match ip {
                        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                    };
                    w.next()
                        .write_tagged_implicit(Tag::context(7), |w| w.write_bytes(&octets));
                }
            })
        });
        Ok(Some(Extension::raw(
            OID_SUBJECT_ALT_NAME.to_vec(),
            false,
            value,
        )))
    }

    pub(crate) fn subject_key_identifier(key_id: &[u8]) -> Self {
        let value = yasna::construct_der(|w| w.write_bytes(key_id));
        Extension::raw(OID_SUBJECT_KEY_IDENTIFIER.to_vec(), false, value)
    }

    pub(crate) fn authority_key_identifier(key_id: &[u8]) -> Self {
        let value = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next()
                    .write_tagged_implicit(Tag::context(0), |w| w.write_bytes(key_id))
            })
        });
        Extension::raw(OID_AUTHORITY_KEY_IDENTIFIER.to_vec(), false, value)
    }

    fn write(&self, w: DERWriter) {
        w.write_sequence(|w| {
            w.next().write_oid(&ObjectIdentifier::from_slice(&self.oid));
            if self.critical {
                w.next().write_bool(true);
            }
            w.next().write_bytes(&self.value);
        })
    }
}

/// A key identifier for a raw public key: the first 160 bits of its SHA-256 (RFC 7093 §2).
pub(crate) fn key_identifier(public_key_raw: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, public_key_raw).as_ref()[..20].to_vec()
}

/// A distinguished name: one Organization RDN per entry (in order), then the common name.
/// Empty strings are left out.
pub(crate) fn name(common_name: Option<&str>, organizations: &[String]) -> Vec<u8> {
    let organizations = organizations.iter().map(String::as_str);
    let attributes: Vec<(&[u64], &str)> = organizations
        .map(|o| (OID_ORGANIZATION, o))
        .chain(common_name.map(|cn| (OID_COMMON_NAME, cn)))
        .filter(|(_, value)| !value.is_empty())
        .collect();
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for (oid, value) in &attributes {
                w.next().write_set(|w| {
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&ObjectIdentifier::from_slice(oid));
                        if value.chars().all(is_printable) {
                            w.next().write_printable_string(value);
                        } else {
                            w.next().write_utf8_string(value);
                        }
                    })
                })
            }
        })
    })
}

/// PrintableString's alphabet (X.680 §41.4).
fn is_printable(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// What goes into a certificate besides the serial and the signature.
#[derive(Debug)]
pub(crate) struct CertificateFields<'a> {
    /// The issuer's subject name, DER.
    pub issuer: &'a [u8],
    /// The subject name, DER.
    pub subject: &'a [u8],
    /// The subject's SubjectPublicKeyInfo, DER.
    pub subject_public_key_info: &'a [u8],
    pub validity: &'a Validity,
    pub extensions: &'a [Extension],
}

/// A certificate (DER) with a random 127-bit serial, signed by `issuer_key`.
pub(crate) fn sign_certificate(
    fields: &CertificateFields<'_>,
    issuer_key: &PrivateKey,
) -> Result<Vec<u8>, PkiError> {
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| PkiError::Signing {
            algorithm: issuer_key.algorithm().name(),
            reason: "the system random number generator failed to make a serial".to_string(),
        })?;
    serial[0] &= 0x7f;
    let not_before = time_der(fields.validity.not_before)?;
    let not_after = time_der(fields.validity.not_after)?;
    let algorithm = signature_algorithm(issuer_key.algorithm());
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_tagged(Tag::context(0), |w| w.write_u8(2));
            w.next().write_bigint_bytes(&serial, true);
            w.next().write_der(&algorithm);
            w.next().write_der(fields.issuer);
            w.next().write_sequence(|w| {
                w.next().write_der(&not_before);
                w.next().write_der(&not_after);
            });
            w.next().write_der(fields.subject);
            w.next().write_der(fields.subject_public_key_info);
            if !fields.extensions.is_empty() {
                w.next().write_tagged(Tag::context(3), |w| {
                    w.write_sequence(|w| {
                        for extension in fields.extensions {
                            extension.write(w.next());
                        }
                    })
                });
            }
        })
    });
    signed(tbs, algorithm, issuer_key)
}

/// A signed PKCS#10 request (DER) for `key`: one ExtensionRequest attribute per non-empty item
/// of `extension_requests` (a well-formed request has at most one; tests make others).
pub(crate) fn sign_request(
    subject: &[u8],
    key: &PrivateKey,
    extension_requests: &[&[Extension]],
) -> Result<Vec<u8>, PkiError> {
    let values: Vec<AttributeValue<'_>> = extension_requests
        .iter()
        .filter(|extensions| !extensions.is_empty())
        .map(|extensions| -> AttributeValue<'_> {
            Box::new(move |w: yasna::DERWriter| {
                w.write_set(|w| {
                    w.next().write_sequence(|w| {
                        for extension in *extensions {
                            extension.write(w.next());
                        }
                    })
                })
            })
        })
        .collect();
    sign_request_with(subject, key, &values)
}

/// Fuzzing only: a request whose ExtensionRequest attribute holds `raw` as its value, signed by
/// `key`, so that a fuzzer reaches what is read after the signature check.
#[cfg(fuzzing)]
pub(crate) fn sign_request_raw(
    subject: &[u8],
    key: &PrivateKey,
    raw: &[u8],
) -> Result<Vec<u8>, PkiError> {
    sign_request_with(
        subject,
        key,
        &[Box::new(|w: yasna::DERWriter| w.write_der(raw))],
    )
}

/// Writes the value (a SET) of one ExtensionRequest attribute.
type AttributeValue<'a> = Box<dyn Fn(yasna::DERWriter) + 'a>;

fn sign_request_with(
    subject: &[u8],
    key: &PrivateKey,
    extension_requests: &[AttributeValue<'_>],
) -> Result<Vec<u8>, PkiError> {
    let info = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_der(subject);
            w.next().write_der(&key.subject_public_key_info());
            w.next().write_tagged_implicit(Tag::context(0), |w| {
                w.write_set_of(|w| {
                    for value in extension_requests {
                        w.next().write_sequence(|w| {
                            w.next()
                                .write_oid(&ObjectIdentifier::from_slice(OID_EXTENSION_REQUEST));
                            value(w.next());
                        })
                    }
                })
            });
        })
    });
    signed(info, signature_algorithm(key.algorithm()), key)
}

fn signed(body: Vec<u8>, algorithm: Vec<u8>, key: &PrivateKey) -> Result<Vec<u8>, PkiError> {
    let signature = key.sign(&body)?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&body);
            w.next().write_der(&algorithm);
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    }))
}

/// The AlgorithmIdentifier of the signature scheme used with a key.
fn signature_algorithm(key: KeyAlgorithm) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| match key {
            KeyAlgorithm::Ed25519 => w
                .next()
                .write_oid(&ObjectIdentifier::from_slice(OID_SIG_ED25519)),
            KeyAlgorithm::EcdsaP256 => w
                .next()
                .write_oid(&ObjectIdentifier::from_slice(OID_SIG_ECDSA_SHA256)),
            KeyAlgorithm::Rsa => {
                w.next()
                    .write_oid(&ObjectIdentifier::from_slice(OID_SIG_RSA_SHA256));
                w.next().write_null();
            }
        })
    })
}

/// UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5), whole seconds.
fn time_der(at: OffsetDateTime) -> Result<Vec<u8>, PkiError> {
    let at = at - Duration::nanoseconds(i64::from(at.nanosecond()));
    if let Some(utc) = UTCTime::from_datetime_opt(at) {
        return Ok(yasna::construct_der(|w| w.write_utctime(&utc)));
    }
    match GeneralizedTime::from_datetime_opt(at) {
        Some(generalized) => Ok(yasna::construct_der(|w| {
            w.write_generalized_time(&generalized)
        })),
        None => Err(PkiError::InvalidValidity {
            not_before: at,
            not_after: at,
        }),
    }
}
