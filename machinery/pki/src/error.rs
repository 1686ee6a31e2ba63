//! The crate's one error type.

use time::OffsetDateTime;

/// Everything that can go wrong in this crate. Each variant says what failed; errors about one
/// field of a secrets bundle are wrapped in [`PkiError::Field`], which names that field.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A problem with one field of a secrets bundle (or any other named input).
    #[error("{field}: {problem}")]
    Field {
        /// Where the problem is, e.g. `certs.os` or `trustdinfo.token`.
        field: String,
        /// What is wrong there.
        problem: Box<PkiError>,
    },

    /// The text is not PEM at all.
    #[error("not valid PEM: {reason}")]
    Pem {
        /// What the PEM parser reported.
        reason: String,
    },

    /// No PEM block with an expected label was found.
    #[error("no {expected} PEM block found (labels present: {found})")]
    MissingPemBlock {
        /// What was looked for, e.g. `CERTIFICATE`.
        expected: &'static str,
        /// The labels that were present, comma-separated.
        found: String,
    },

    /// A private key could not be decoded.
    #[error("invalid private key ({format}): {reason}")]
    InvalidKey {
        /// The encoding that was being decoded (`PKCS#8`, `SEC1 EC`, ...), with the PEM label
        /// when read from PEM.
        format: String,
        /// What was wrong.
        reason: String,
    },

    /// The key uses an algorithm or curve this crate does not handle.
    #[error("unsupported key algorithm {algorithm} (supported: Ed25519, ECDSA P-256, RSA)")]
    UnsupportedKeyAlgorithm {
        /// The algorithm or curve, usually as an OID.
        algorithm: String,
    },

    /// The key is valid but the wrong kind for its use.
    #[error("{algorithm} key cannot be used here: {reason}")]
    WrongKeyAlgorithm {
        /// The key's algorithm.
        algorithm: String,
        /// What was expected instead.
        reason: &'static str,
    },

    /// The system random number generator or the key generator failed.
    #[error("cannot generate a {algorithm} key: {reason}")]
    KeyGeneration {
        /// The algorithm that was being generated.
        algorithm: &'static str,
        /// What failed.
        reason: String,
    },

    /// A certificate could not be parsed.
    #[error("invalid certificate: {reason}")]
    InvalidCertificate {
        /// What the X.509 parser reported.
        reason: String,
    },

    /// A certificate signing request could not be parsed or its signature is wrong.
    #[error("invalid certificate signing request: {reason}")]
    InvalidCsr {
        /// What was wrong.
        reason: String,
    },

    /// A name cannot be put in a certificate.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// Which kind of name (`DNS name`, `common name`, `organization`).
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// `not_after` is not after `not_before`.
    #[error("certificate validity ends ({not_after}) before it starts ({not_before})")]
    InvalidValidity {
        /// Start of the requested validity.
        not_before: OffsetDateTime,
        /// End of the requested validity.
        not_after: OffsetDateTime,
    },

    /// Signing a certificate or request failed.
    #[error("cannot sign with the {algorithm} key: {reason}")]
    Signing {
        /// The signing key's algorithm.
        algorithm: &'static str,
        /// What failed.
        reason: String,
    },

    /// A certificate that should be a CA is not.
    #[error("certificate is not a CA (basic constraints CA is not set)")]
    NotCa,

    /// A certificate's public key is not the public half of the given private key.
    #[error("certificate does not match its key")]
    KeyMismatch,

    /// A certificate is past its `not_after`.
    #[error("certificate expired at {not_after}")]
    Expired {
        /// When it expired.
        not_after: OffsetDateTime,
    },

    /// A certificate's `not_before` is still in the future.
    #[error("certificate is not valid before {not_before}")]
    NotYetValid {
        /// When it becomes valid.
        not_before: OffsetDateTime,
    },

    /// A certificate was not signed by the given CA.
    #[error("certificate is not signed by the CA: {reason}")]
    NotSignedBy {
        /// Why the check failed (issuer name or signature).
        reason: String,
    },

    /// A required value is absent.
    #[error("{what} is missing")]
    Missing {
        /// What is missing (`certificate`, `private key`, ...).
        what: &'static str,
    },

    /// A token is not in the `[a-z0-9]{6}.[a-z0-9]{16}` format. The token itself is not shown.
    #[error("token is not in the format [a-z0-9]{{6}}.[a-z0-9]{{16}}")]
    InvalidToken,

    /// A secret is not the base64 of 32 bytes. The secret itself is not shown.
    #[error("secret is not the base64 of 32 bytes: {reason}")]
    InvalidSecret {
        /// What was wrong.
        reason: String,
    },

    /// A secrets bundle could not be read from YAML.
    #[error("secrets bundle: {path}: {message}")]
    BundleYaml {
        /// The YAML path of the problem (`.` for the document itself).
        path: String,
        /// The decoder's message, with line and column.
        message: String,
    },

    /// A secrets bundle could not be written as YAML.
    #[error("cannot serialise the secrets bundle: {reason}")]
    BundleSerialize {
        /// What the YAML encoder reported.
        reason: String,
    },
}

impl PkiError {
    /// Wraps this error with the name of the field it is about.
    pub fn in_field(self, field: impl Into<String>) -> PkiError {
        PkiError::Field {
            field: field.into(),
            problem: Box::new(self),
        }
    }
}
