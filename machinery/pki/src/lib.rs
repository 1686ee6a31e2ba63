//! The Talos PKI.
//!
//! (crate docs to be written)

mod yaml_pem;

pub use yaml_pem::{PemCertificate, PemCertificateAndKey, PemKey};
