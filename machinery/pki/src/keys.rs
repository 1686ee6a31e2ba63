//! Private keys: generation, and PEM in the labels upstream Talos writes and reads.
//!
//! | algorithm | written as | also read as |
//! |---|---|---|
//! | Ed25519 | `ED25519 PRIVATE KEY` (PKCS#8 v1) | `PRIVATE KEY` |
//! | ECDSA P-256 | `EC PRIVATE KEY` (SEC1, with curve and public key) | `PRIVATE KEY` |
//! | RSA (loading only) | `RSA PRIVATE KEY` (PKCS#1) | `PRIVATE KEY` |

use std::fmt;

use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

use crate::error::PkiError;
use crate::key_der;

const LABEL_ED25519: &str = "ED25519 PRIVATE KEY";
const LABEL_EC: &str = "EC PRIVATE KEY";
const LABEL_RSA: &str = "RSA PRIVATE KEY";
const LABEL_PKCS8: &str = "PRIVATE KEY";

/// The key algorithms this crate handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 (Talos API certificates).
    Ed25519,
    /// ECDSA on NIST P-256 (Kubernetes and etcd CAs), signing with SHA-256.
    EcdsaP256,
    /// RSA, signing with PKCS#1 v1.5 and SHA-256 (service-account keys made by upstream).
    Rsa,
}

impl KeyAlgorithm {
    /// A human-readable name: `Ed25519`, `ECDSA P-256`, `RSA`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "Ed25519",
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::Rsa => "RSA",
        }
    }

    fn rcgen_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::Rsa => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A private key that can sign certificates. Held as PKCS#8; its `Debug` output hides the key.
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    pkcs8: Vec<u8>,
    /// The DER body of the upstream-labelled PEM block (PKCS#8, SEC1 or PKCS#1).
    pem_body: Vec<u8>,
    key_pair: rcgen::KeyPair,
}

impl PrivateKey {
    /// Generates a new Ed25519 key.
    pub fn generate_ed25519() -> Result<Self, PkiError> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| PkiError::KeyGeneration {
                algorithm: KeyAlgorithm::Ed25519.name(),
                reason: "the system random number generator failed".to_string(),
            })?;
        Self::from_pkcs8_der(key_der::ed25519_pkcs8_from_seed(&seed))
    }

    /// Generates a new ECDSA P-256 key.
    pub fn generate_ecdsa_p256() -> Result<Self, PkiError> {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| PkiError::KeyGeneration {
                    algorithm: KeyAlgorithm::EcdsaP256.name(),
                    reason: "ring could not generate the key".to_string(),
                })?;
        Self::from_pkcs8_der(document.as_ref().to_vec())
    }

    /// Reads the first private-key block of `pem_text`. Accepted labels: `ED25519 PRIVATE KEY`
    /// and `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1, P-256), `RSA PRIVATE KEY` (PKCS#1).
    /// Other blocks (such as `EC PARAMETERS`) are skipped.
    pub fn from_pem(pem_text: &str) -> Result<Self, PkiError> {
        let blocks = pem::parse_many(pem_text).map_err(|e| PkiError::Pem {
            reason: e.to_string(),
        })?;
        let labels = [LABEL_ED25519, LABEL_EC, LABEL_RSA, LABEL_PKCS8];
        let Some(block) = blocks.iter().find(|b| labels.contains(&b.tag())) else {
            return Err(PkiError::MissingPemBlock {
                expected: "private key",
                found: found_labels(&blocks),
            });
        };
        let label = block.tag();
        let contents = block.contents().to_vec();
        let key = match label {
            LABEL_EC => key_der::ec_pkcs8_from_sec1(&contents).and_then(Self::from_pkcs8_der),
            LABEL_RSA => Self::from_pkcs8_der(key_der::rsa_pkcs8_from_pkcs1(&contents)),
            _ => Self::from_pkcs8_der(contents),
        }
        .map_err(|e| match e {
            PkiError::InvalidKey { format, reason } => PkiError::InvalidKey {
                format: format!("`{label}` PEM block, {format}"),
                reason,
            },
            other => other,
        })?;
        let expected = match label {
            LABEL_ED25519 => Some(KeyAlgorithm::Ed25519),
            LABEL_EC => Some(KeyAlgorithm::EcdsaP256),
            LABEL_RSA => Some(KeyAlgorithm::Rsa),
            _ => None,
        };
        if expected.is_some_and(|expected| expected != key.algorithm) {
            return Err(PkiError::InvalidKey {
                format: format!("`{label}` PEM block"),
                reason: format!("the block holds an {} key", key.algorithm),
            });
        }
        Ok(key)
    }

    /// Loads a PKCS#8 (v1 or v2) private key.
    pub fn from_pkcs8_der(pkcs8: Vec<u8>) -> Result<Self, PkiError> {
        let algorithm = key_der::pkcs8_algorithm(&pkcs8)?;
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_slice().into(),
            algorithm.rcgen_algorithm(),
        )
        .map_err(|e| PkiError::InvalidKey {
            format: format!("PKCS#8 {algorithm}"),
            reason: e.to_string(),
        })?;
        let pem_body = match algorithm {
            KeyAlgorithm::Ed25519 => pkcs8.clone(),
            KeyAlgorithm::EcdsaP256 => {
                key_der::ec_sec1_from_pkcs8(&pkcs8, key_pair.public_key_raw())?
            }
            KeyAlgorithm::Rsa => key_der::pkcs8_private_key(&pkcs8)?,
        };
        Ok(PrivateKey {
            algorithm,
            pkcs8,
            pem_body,
            key_pair,
        })
    }

    /// PEM text with the label upstream Talos uses for this algorithm (see the module docs).
    pub fn to_pem(&self) -> String {
        let label = match self.algorithm {
            KeyAlgorithm::Ed25519 => LABEL_ED25519,
            KeyAlgorithm::EcdsaP256 => LABEL_EC,
            KeyAlgorithm::Rsa => LABEL_RSA,
        };
        encode_pem(label, self.pem_body.clone())
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The key as PKCS#8 DER (what rustls and ring load).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The raw public key, as it appears in a certificate's SubjectPublicKeyInfo bit string:
    /// 32 bytes for Ed25519, the uncompressed point for P-256, `RSAPublicKey` DER for RSA.
    pub fn public_key_raw(&self) -> &[u8] {
        self.key_pair.public_key_raw()
    }

    /// The DER SubjectPublicKeyInfo of the public half.
    pub fn subject_public_key_info(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&self.key_pair)
    }

    /// The public half as a `PUBLIC KEY` PEM block (SubjectPublicKeyInfo), as Kubernetes reads
    /// `--service-account-key-file`.
    pub fn public_key_pem(&self) -> String {
        encode_pem("PUBLIC KEY", self.subject_public_key_info())
    }

    /// The rcgen key pair, for signing with rcgen directly.
    pub fn key_pair(&self) -> &rcgen::KeyPair {
        &self.key_pair
    }

    /// Signs `message` with the algorithm's certificate signature scheme (Ed25519,
    /// ECDSA-with-SHA256, or RSA PKCS#1 v1.5 with SHA-256).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        rcgen::SigningKey::sign(&self.key_pair, message).map_err(|e| PkiError::Signing {
            algorithm: self.algorithm.name(),
            reason: e.to_string(),
        })
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// PEM text with LF line endings (as Go writes it).
pub(crate) fn encode_pem(label: &str, der: Vec<u8>) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

pub(crate) fn found_labels(blocks: &[pem::Pem]) -> String {
    if blocks.is_empty() {
        return "none".to_string();
    }
    blocks
        .iter()
        .map(|b| b.tag())
        .collect::<Vec<_>>()
        .join(", ")
}
