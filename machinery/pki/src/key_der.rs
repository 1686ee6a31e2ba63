//! DER encodings of private keys: PKCS#8 (RFC 5208), SEC1 `ECPrivateKey` (RFC 5915) and PKCS#1
//! `RSAPrivateKey` (RFC 8017), and conversions between them. Keys are held as PKCS#8 in memory
//! (what ring and rcgen load); SEC1 and PKCS#1 exist only in PEM files.

use yasna::Tag;
use yasna::models::ObjectIdentifier;

use crate::error::PkiError;
use crate::keys::KeyAlgorithm;

/// id-Ed25519 (RFC 8410).
pub(crate) const OID_ED25519: &[u64] = &[1, 3, 101, 112];
/// id-ecPublicKey (RFC 5480).
pub(crate) const OID_EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
/// prime256v1 / secp256r1 (RFC 5480).
pub(crate) const OID_P256: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
/// rsaEncryption (RFC 8017).
pub(crate) const OID_RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];

fn invalid(format: &str) -> impl FnOnce(yasna::ASN1Error) -> PkiError + '_ {
    move |e| PkiError::InvalidKey {
        format: format.to_string(),
        reason: format!("malformed DER ({:?})", e.kind()),
    }
}

/// The key algorithm named by a PKCS#8 document's AlgorithmIdentifier.
pub(crate) fn pkcs8_algorithm(pkcs8: &[u8]) -> Result<KeyAlgorithm, PkiError> {
    let (algorithm, parameter) = yasna::parse_der(pkcs8, |r| {
        r.read_sequence(|r| {
            r.next().read_u8()?;
            let identifier = r.next().read_sequence(|r| {
                let algorithm = r.next().read_oid()?;
                let parameter = r.read_optional(|r| r.read_der())?;
                Ok((algorithm, parameter))
            })?;
            r.next().read_bytes()?;
            // Optional [0] attributes and [1] public key (PKCS#8 v2): not needed here.
            while r.read_optional(|r| r.read_der())?.is_some() {}
            Ok(identifier)
        })
    })
    .map_err(invalid("PKCS#8"))?;
    let algorithm = algorithm.components().as_slice();
    if algorithm == OID_ED25519 {
        Ok(KeyAlgorithm::Ed25519)
    } else if algorithm == OID_RSA_ENCRYPTION {
        Ok(KeyAlgorithm::Rsa)
    } else if algorithm == OID_EC_PUBLIC_KEY {
        let curve = parameter
            .map(|der| yasna::parse_der(&der, |r| r.read_oid()))
            .transpose()
            .map_err(invalid("PKCS#8"))?;
        match curve {
            Some(curve) if curve.components().as_slice() == OID_P256 => Ok(KeyAlgorithm::EcdsaP256),
            Some(curve) => Err(PkiError::UnsupportedKeyAlgorithm {
                algorithm: format!("EC curve {curve}"),
            }),
            None => Err(PkiError::InvalidKey {
                format: "PKCS#8".to_string(),
                reason: "EC key without curve parameters".to_string(),
            }),
        }
    } else {
        Err(PkiError::UnsupportedKeyAlgorithm {
            algorithm: ObjectIdentifier::from_slice(algorithm).to_string(),
        })
    }
}

/// The `privateKey` OCTET STRING of a PKCS#8 document (for RSA, the PKCS#1 key).
pub(crate) fn pkcs8_private_key(pkcs8: &[u8]) -> Result<Vec<u8>, PkiError> {
    yasna::parse_der(pkcs8, |r| {
        r.read_sequence(|r| {
            r.next().read_u8()?;
            r.next().read_der()?;
            let private_key = r.next().read_bytes()?;
            while r.read_optional(|r| r.read_der())?.is_some() {}
            Ok(private_key)
        })
    })
    .map_err(invalid("PKCS#8"))
}

/// A PKCS#8 v1 document for an Ed25519 seed, as Go's `x509.MarshalPKCS8PrivateKey` writes it.
pub(crate) fn ed25519_pkcs8_from_seed(seed: &[u8; 32]) -> Vec<u8> {
    let curve_private_key = yasna::construct_der(|w| w.write_bytes(seed));
    wrap_pkcs8(OID_ED25519, None, &curve_private_key)
}

/// Wraps a PKCS#1 `RSAPrivateKey` into PKCS#8.
pub(crate) fn rsa_pkcs8_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    wrap_pkcs8(OID_RSA_ENCRYPTION, Some(&[0x05, 0x00]), pkcs1)
}

/// Wraps a SEC1 `ECPrivateKey` on P-256 into PKCS#8, after checking its curve and that it
/// carries its public key (ring needs it).
pub(crate) fn ec_pkcs8_from_sec1(sec1: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (curve, has_public_key) = yasna::parse_der(sec1, |r| {
        r.read_sequence(|r| {
            let version = r.next().read_u8()?;
            if version != 1 {
                return Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid));
            }
            r.next().read_bytes()?;
            let curve = r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_oid()))?;
            let public_key =
                r.read_optional(|r| r.read_tagged(Tag::context(1), |r| r.read_der()))?;
            Ok((curve, public_key.is_some()))
        })
    })
    .map_err(invalid("SEC1 EC"))?;
    if let Some(curve) = curve
        && curve.components().as_slice() != OID_P256
    {
        return Err(PkiError::UnsupportedKeyAlgorithm {
            algorithm: format!("EC curve {curve}"),
        });
    }
    if !has_public_key {
        return Err(PkiError::InvalidKey {
            format: "SEC1 EC".to_string(),
            reason: "the public key is not included".to_string(),
        });
    }
    let p256 = yasna::construct_der(|w| w.write_oid(&ObjectIdentifier::from_slice(OID_P256)));
    Ok(wrap_pkcs8(OID_EC_PUBLIC_KEY, Some(&p256), sec1))
}

/// The SEC1 `ECPrivateKey` inside a P-256 PKCS#8 document, rewritten the way Go's
/// `x509.MarshalECPrivateKey` writes it: version 1, the scalar, the named curve, the public key.
pub(crate) fn ec_sec1_from_pkcs8(pkcs8: &[u8], public_key: &[u8]) -> Result<Vec<u8>, PkiError> {
    let inner = pkcs8_private_key(pkcs8)?;
    let scalar = yasna::parse_der(&inner, |r| {
        r.read_sequence(|r| {
            r.next().read_u8()?;
            let scalar = r.next().read_bytes()?;
            while r.read_optional(|r| r.read_der())?.is_some() {}
            Ok(scalar)
        })
    })
    .map_err(invalid("PKCS#8 EC"))?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(1);
            w.next().write_bytes(&scalar);
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_oid(&ObjectIdentifier::from_slice(OID_P256))
            });
            w.next().write_tagged(Tag::context(1), |w| {
                w.write_bitvec_bytes(public_key, public_key.len() * 8)
            });
        })
    }))
}

fn wrap_pkcs8(algorithm: &[u64], parameter: Option<&[u8]>, private_key: &[u8]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_sequence(|w| {
                w.next().write_oid(&ObjectIdentifier::from_slice(algorithm));
                if let Some(parameter) = parameter {
                    w.next().write_der(parameter);
                }
            });
            w.next().write_bytes(private_key);
        })
    })
}
