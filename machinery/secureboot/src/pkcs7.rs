//! Detached PKCS#7 `SignedData` (RFC 2315) without signed attributes, as UEFI authenticated
//! variables carry it: SHA-256, RSA, the signer's certificate included, no `ContentInfo` wrapper.

use yasna::models::ObjectIdentifier;

use crate::{SecureBootError, SigningKey};

const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
const DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];

/// The DER `SignedData` over `content`, signed by `signer`.
pub fn signed_data(signer: &SigningKey, content: &[u8]) -> Result<Vec<u8>, SecureBootError> {
    let (_, cert) = x509_parser::parse_x509_certificate(&signer.cert_der)
        .map_err(|e| SecureBootError::Certificate(e.to_string()))?;
    let issuer = cert.tbs_certificate.issuer.as_raw().to_vec();
    let serial = cert.tbs_certificate.raw_serial().to_vec();
    let signature = signer.sign(content)?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(1);
            w.next().write_set(|w| algorithm(w.next(), SHA256));
            w.next().write_sequence(|w| {
                w.next().write_oid(&ObjectIdentifier::from_slice(DATA));
            });
            w.next().write_tagged_implicit(yasna::Tag::context(0), |w| {
                w.write_set(|w| w.next().write_der(&signer.cert_der))
            });
            w.next().write_set(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_u8(1);
                    w.next().write_sequence(|w| {
                        w.next().write_der(&issuer);
                        w.next().write_bigint_bytes(&serial, true);
                    });
                    algorithm(w.next(), SHA256);
                    algorithm(w.next(), RSA_ENCRYPTION);
                    w.next().write_bytes(&signature);
                });
            });
        });
    }))
}

fn algorithm(w: yasna::DERWriter, oid: &[u64]) {
    w.write_sequence(|w| {
        w.next().write_oid(&ObjectIdentifier::from_slice(oid));
        w.next().write_null();
    });
}
