//! The crate's one error type.

/// What went wrong making Secure Boot material.
#[derive(Debug, thiserror::Error)]
pub enum SecureBootError {
    /// RSA key generation or encoding failed.
    #[error("RSA key: {0}")]
    Rsa(String),
    /// The certificate could not be made or parsed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The signing key could not be loaded or used.
    #[error("signing key: {0}")]
    SigningKey(String),
    /// The signing key does not belong to the signing certificate.
    #[error("the signing key does not match the signing certificate's public key")]
    KeyMismatch,
}
