//! The Talos PKI: the secrets bundle, the cluster CAs, and the certificates Talos issues from
//! them, compatible with what upstream Talos writes and reads.
//!
//! - [`PrivateKey`]: Ed25519 and ECDSA P-256 keys (generated), RSA keys (loaded only), in
//!   upstream's PEM labels (`ED25519 PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`) or
//!   standard PKCS#8 `PRIVATE KEY`.
//! - [`generate_ca`]: the four CAs ([`CaKind`]); [`CertificateAuthority`] loads one from PEM and
//!   issues client certificates (roles as Subject Organizations, ExtKeyUsage exactly
//!   ClientAuth), server certificates (SANs, ServerAuth) and certificates from signing requests
//!   ([`generate_csr`], [`CertificateAuthority::sign_csr`]), and leaf certificates of any shape
//!   with a key following the CA's algorithm ([`CertificateAuthority::issue_leaf`], used for
//!   the Kubernetes certificates).
//! - [`CertificateInfo`], [`verify_pair`], [`verify_signed_by`]: inspecting certificates.
//! - [`SecretsBundle`]: `secrets.yaml`, generated, read strictly, written, validated.
//! - [`PemCertificateAndKey`], [`PemCertificate`], [`PemKey`]: certificates and keys as they
//!   appear in YAML (base64 of PEM).
//!
//! Limits: keys are generated as Ed25519 or P-256 only (ring cannot generate RSA; upstream's
//! RSA-4096 service-account keys are accepted when loaded). Certificates are signed with
//! Ed25519, ECDSA-SHA256 or RSA-PKCS#1-SHA256. No revocation, no path building beyond one
//! issuer, no name constraints.

mod authority;
mod bundle;
mod error;
mod inspect;
mod issue;
mod key_der;
mod keys;
mod tokens;
mod usage;
mod x509_der;
mod yaml_pem;

pub use authority::{CaKind, CertificateAuthority, generate_ca, generate_ca_for_organization};
pub use bundle::{BundleCertificates, ClusterIdentity, ClusterSecrets, SecretsBundle, TrustdInfo};
pub use error::PkiError;
pub use inspect::{CertificateInfo, verify_pair, verify_signed_by};
#[cfg(fuzzing)]
pub use issue::signed_request_with_raw_extensions;
pub use issue::{
    CA_CLOCK_SKEW, CA_TTL, CLIENT_CERTIFICATE_TTL, CLOCK_SKEW, CertificateRequest, LeafCertificate,
    RequestedCertificate, SERVER_CERTIFICATE_TTL, SubjectAltNames, Validity, generate_csr,
};
pub use keys::{KeyAlgorithm, PrivateKey};
pub use tokens::{check_secret, check_token, generate_secret, generate_token};
pub use usage::ExtendedKeyUsage;
pub use yaml_pem::{PemCertificate, PemCertificateAndKey, PemKey};
