//! ECDSA P-256 keys in PEM: PKCS#8 private keys, PKIX public keys (or certificates holding one).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};

use crate::{CosignError, MAX_INPUT};

/// The DER of a P-256 SubjectPublicKeyInfo up to the 65-byte uncompressed point:
/// `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) … }`.
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// An uncompressed P-256 point: 0x04, x, y.
const POINT_LEN: usize = 65;

/// A private signing key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public_key().fingerprint())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<Self, CosignError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| CosignError::Crypto("generating an ECDSA P-256 key failed".into()))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// A key from a PEM `PRIVATE KEY` (PKCS#8, ECDSA P-256).
    pub fn from_pem(text: &str) -> Result<Self, CosignError> {
        let der = pem_block(text, "PRIVATE KEY")?;
        Self::from_pkcs8(&der)
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, CosignError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &SystemRandom::new())
                .map_err(|e| {
                    key_error("the private key", format!("not ECDSA P-256 PKCS#8: {e}"))
                })?;
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// The PEM `PRIVATE KEY` of this key.
    pub fn to_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            point: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// The base64 ASN.1 DER signature over `data`'s SHA-256 (cosign's `.sig`).
    pub fn sign(&self, data: &[u8]) -> Result<String, CosignError> {
        let signature = self
            .pair
            .sign(&SystemRandom::new(), data)
            .map_err(|_| CosignError::Crypto("ECDSA signing failed".into()))?;
        Ok(STANDARD.encode(signature.as_ref()))
    }
}

/// A public key that verifies signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    point: Vec<u8>,
}

impl PublicKey {
    /// A key from a PEM `PUBLIC KEY` (PKIX, ECDSA P-256) or a `CERTIFICATE` holding one.
    pub fn from_pem(text: &str) -> Result<Self, CosignError> {
        if text.len() > MAX_INPUT {
            return Err(key_error("the public key", "larger than 64 KiB".into()));
        }
        let spki = if text.contains("-----BEGIN CERTIFICATE-----") {
            let der = pem_block(text, "CERTIFICATE")?;
            let (_, certificate) = x509_parser::parse_x509_certificate(&der)
                .map_err(|e| key_error("the certificate", e.to_string()))?;
            certificate.public_key().raw.to_vec()
        } else {
            pem_block(text, "PUBLIC KEY")?
        };
        Self::from_spki(&spki)
    }

    fn from_spki(der: &[u8]) -> Result<Self, CosignError> {
        let point = der
            .strip_prefix(&SPKI_P256_PREFIX[..])
            .filter(|point| point.len() == POINT_LEN && point[0] == 0x04)
            .ok_or_else(|| {
                key_error(
                    "the public key",
                    "not an ECDSA P-256 key (cosign's default key type)".into(),
                )
            })?;
        Ok(PublicKey {
            point: point.to_vec(),
        })
    }

    /// The PKIX DER of the key.
    pub fn to_spki(&self) -> Vec<u8> {
        [&SPKI_P256_PREFIX[..], &self.point].concat()
    }

    /// The PEM `PUBLIC KEY` of the key, as `cosign.pub`.
    pub fn to_pem(&self) -> String {
        pem("PUBLIC KEY", &self.to_spki())
    }

    /// `SHA256:` and the first 16 hex digits of the SHA-256 of the PKIX DER, to name the key.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.to_spki());
        let hex: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("SHA256:{hex}")
    }

    /// Checks the base64 signature `signature` of `data` (`what` names `data` in errors).
    pub fn verify(&self, what: &str, data: &[u8], signature: &str) -> Result<(), CosignError> {
        if signature.len() > MAX_INPUT {
            return Err(CosignError::Encoding {
                what: what.into(),
                reason: "larger than 64 KiB".into(),
            });
        }
        let der = STANDARD
            .decode(signature.trim())
            .map_err(|e| CosignError::Encoding {
                what: what.into(),
                reason: e.to_string(),
            })?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(data, &der)
            .map_err(|_| CosignError::Mismatch {
                what: what.into(),
                fingerprint: self.fingerprint(),
            })
    }
}

fn key_error(what: &str, reason: String) -> CosignError {
    CosignError::Key {
        what: what.into(),
        reason,
    }
}

/// PEM text of `der` under `label`, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The DER of the first PEM block labelled `label` in `text`.
fn pem_block(text: &str, label: &str) -> Result<Vec<u8>, CosignError> {
    let what = format!("the PEM {label}");
    if text.len() > MAX_INPUT {
        return Err(key_error(&what, "larger than 64 KiB".into()));
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| key_error(&what, format!("no {begin} line")))?
        + begin.len();
    let length = text[start..]
        .find(&end)
        .ok_or_else(|| key_error(&what, format!("no {end} line")))?;
    let body: String = text[start..start + length]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|e| key_error(&what, format!("not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_only_and_over_its_data_only() {
        let key = SigningKey::generate().unwrap();
        let signature = key.sign(b"artifact").unwrap();
        let public = key.public_key();
        public.verify("artifact", b"artifact", &signature).unwrap();
        let changed = public.verify("artifact", b"artifact!", &signature);
        assert!(
            matches!(changed, Err(CosignError::Mismatch { .. })),
            "{changed:?}"
        );
        let other = SigningKey::generate().unwrap().public_key();
        let error = other.verify("x", b"artifact", &signature).unwrap_err();
        assert!(error.to_string().contains(&other.fingerprint()), "{error}");
        assert!(matches!(
            public.verify("x", b"artifact", "not base64!"),
            Err(CosignError::Encoding { .. })
        ));
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert_eq!(public, key.public_key());
        assert!(
            key.public_key()
                .to_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
    }

    #[test]
    fn bad_keys_are_refused_with_what_was_wrong() {
        let error = PublicKey::from_pem("hello").unwrap_err().to_string();
        assert!(
            error.contains("no -----BEGIN PUBLIC KEY----- line"),
            "{error}"
        );
        let rsa_like = pem("PUBLIC KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        let error = PublicKey::from_pem(&rsa_like).unwrap_err().to_string();
        assert!(error.contains("not an ECDSA P-256 key"), "{error}");
        let huge = "A".repeat(MAX_INPUT + 1);
        assert!(PublicKey::from_pem(&huge).is_err());
        let error = SigningKey::from_pem(&pem("PRIVATE KEY", b"junk"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not ECDSA P-256 PKCS#8"), "{error}");
    }

    #[test]
    fn openssl_verifies_our_signatures() {
        let Ok(status) = std::process::Command::new("openssl")
            .arg("version")
            .output()
        else {
            panic!("openssl is needed to check the signature format");
        };
        assert!(status.status.success());
        let dir = std::env::temp_dir().join(format!("cosign-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = SigningKey::generate().unwrap();
        std::fs::write(dir.join("key.pub"), key.public_key().to_pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.to_pem()).unwrap();
        std::fs::write(dir.join("blob"), b"the artifact").unwrap();
        let signature = STANDARD.decode(key.sign(b"the artifact").unwrap()).unwrap();
        std::fs::write(dir.join("blob.sig.der"), signature).unwrap();
        let verify = std::process::Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "key.pub",
                "-signature",
                "blob.sig.der",
                "blob",
            ])
            .current_dir(&dir)
            .output()
            .unwrap();
        // openssl signs with our private key PEM too, and we verify its signature.
        let sign = std::process::Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-sign",
                "key.pem",
                "-out",
                "openssl.sig",
                "blob",
            ])
            .current_dir(&dir)
            .output()
            .unwrap();
        let theirs = std::fs::read(dir.join("openssl.sig")).unwrap_or_default();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(verify.status.success(), "{verify:?}");
        assert!(sign.status.success(), "{sign:?}");
        key.public_key()
            .verify("blob", b"the artifact", &STANDARD.encode(theirs))
            .unwrap();
    }
}
