//! Signatures in cosign's formats, with ECDSA P-256 and SHA-256 (ring):
//!
//! - keys: the public key is a PEM `PUBLIC KEY` (a PKIX SubjectPublicKeyInfo), as
//!   `cosign generate-key-pair` writes `cosign.pub`; a PEM `CERTIFICATE` holding such a key is
//!   accepted too. The private key is a PEM `PRIVATE KEY` (PKCS#8), the unencrypted form that
//!   `cosign import-key-pair` takes: cosign's own `ENCRYPTED SIGSTORE PRIVATE KEY` (scrypt and
//!   secretbox under a password) is not written.
//! - blobs: a signature is the base64 of the ASN.1 DER ECDSA signature over the blob's SHA-256,
//!   as `cosign sign-blob --output-signature` writes it (`cosign verify-blob` and
//!   `openssl dgst -sha256 -verify` check it).
//! - images: the signed blob is a simple-signing payload ([`payload`]) naming the image's
//!   repository and manifest digest, stored as a layer of media type [`PAYLOAD_MEDIA_TYPE`]
//!   whose annotation [`SIGNATURE_ANNOTATION`] carries the signature, in a manifest tagged
//!   `sha256-<hex>.sig` ([`signature_tag`]), as cosign stores it.
//!
//! Everything read is bounded: key PEMs and payloads larger than [`MAX_INPUT`] are refused.

mod error;
mod keys;
mod payload;

pub use error::CosignError;
pub use keys::{PublicKey, SigningKey};
pub use payload::{payload, payload_digest};

/// The media type of a simple-signing payload layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that holds the base64 signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The largest key PEM, signature or payload read.
pub const MAX_INPUT: usize = 64 * 1024;

/// The tag cosign gives the signature of the manifest `digest` (`sha256:<hex>`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_tag_is_cosign_s() {
        assert_eq!(signature_tag("sha256:ab12"), "sha256-ab12.sig");
    }
}
