//! The crate's one error type.

/// What went wrong reading a key or checking a signature.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    /// A key file that is not what it claims (names what was expected).
    #[error("{what}: {reason}")]
    Key { what: String, reason: String },
    /// A signature that is not base64 of an ECDSA signature, or does not match.
    #[error("the signature of {what} does not verify with the key {fingerprint}")]
    Mismatch { what: String, fingerprint: String },
    /// A signature that cannot even be decoded.
    #[error("the signature of {what} is not base64: {reason}")]
    Encoding { what: String, reason: String },
    /// A simple-signing payload that is malformed or names another image.
    #[error("the signed payload {0}")]
    Payload(String),
    /// Key generation or signing failed in the crypto library.
    #[error("{0}")]
    Crypto(String),
}
