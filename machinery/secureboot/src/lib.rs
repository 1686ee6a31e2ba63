//! UEFI Secure Boot material, as upstream's `talosctl gen secureboot` makes it:
//!
//! - [`SigningKey::generate`]: a self-signed RSA signing certificate authority (the UKI signing
//!   key, RSA-4096; the PCR signing key, RSA-2048), the key as PKCS#1 PEM.
//! - [`database`]: the signed `db.auth`, `KEK.auth` and `PK.auth` variables that enrol a
//!   certificate as PK, KEK and db (time-based authenticated writes, UEFI 2.x §8.2.2), signed
//!   by a [`SigningKey`] with a detached PKCS#7 signature without signed attributes.
//!
//! Limits: RSA keys only (what UEFI firmware verifies); upstream's optional well-known
//! (Microsoft) certificates are not shipped.

mod database;
mod error;
mod esl;
mod key;
mod pkcs7;

pub use database::{AuthVariable, Variable, database};
pub use error::SecureBootError;
pub use esl::{CERT_X509_GUID, signature_list};
pub use key::{SigningKey, certificate_der};
