//! The TLS directory machined writes for apid, read from disk.

use std::io;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::ApidError;

/// File names inside the TLS directory.
pub(crate) const CA_BUNDLE: &str = "ca.crt";
pub(crate) const SERVER_CERTIFICATE: &str = "server.crt";
pub(crate) const SERVER_KEY: &str = "server.key";
pub(crate) const CLIENT_CERTIFICATE: &str = "client.crt";
pub(crate) const CLIENT_KEY: &str = "client.key";

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub(crate) struct CertifiedKey {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// What the TLS directory holds.
#[derive(Debug)]
pub(crate) struct TlsFiles {
    /// `ca.crt`: the accepted CAs; absent only when not needed (maintenance mode).
    pub accepted_cas: Option<(PathBuf, Vec<CertificateDer<'static>>)>,
    /// `server.crt` + `server.key`.
    pub server: CertifiedKey,
    /// `client.crt` + `client.key`: the node's `os:impersonator` certificate for forwarding.
    pub client: Option<CertifiedKey>,
}

impl TlsFiles {
    /// Reads the directory. `ca.crt` is required unless `maintenance`; the client pair is
    /// optional but must be complete when present.
    pub fn read(dir: &Path, maintenance: bool) -> Result<Self, ApidError> {
        let ca_path = dir.join(CA_BUNDLE);
        let accepted_cas = if maintenance && !ca_path.exists() {
            None
        } else {
            let cas = read_certificates(&ca_path)?;
            Some((ca_path, cas))
        };
        let server = read_pair(&dir.join(SERVER_CERTIFICATE), &dir.join(SERVER_KEY))?;
        let client_crt = dir.join(CLIENT_CERTIFICATE);
        let client_key = dir.join(CLIENT_KEY);
        let client = match (client_crt.exists(), client_key.exists()) {
            (true, true) => Some(read_pair(&client_crt, &client_key)?),
            (false, false) => None,
            (true, false) => {
                return Err(ApidError::HalfClientPair {
                    present: client_crt,
                    missing: client_key,
                });
            }
            (false, true) => {
                return Err(ApidError::HalfClientPair {
                    present: client_key,
                    missing: client_crt,
                });
            }
        };
        Ok(TlsFiles {
            accepted_cas,
            server,
            client,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ApidError> {
    std::fs::read(path).map_err(|source| ApidError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

fn read_pair(certificate: &Path, key: &Path) -> Result<CertifiedKey, ApidError> {
    Ok(CertifiedKey {
        chain: read_certificates(certificate)?,
        key: read_key(key)?,
    })
}

/// Every `CERTIFICATE` block of a PEM file (other blocks are skipped); at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ApidError> {
    let pem = read(path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ApidError::CertificatePem {
            path: path.to_owned(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(ApidError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// A private key in any label the Talos PKI writes (`ED25519 PRIVATE KEY`, `EC PRIVATE KEY`,
/// `RSA PRIVATE KEY`, `PRIVATE KEY`), as PKCS#8 for rustls.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ApidError> {
    let pem = read(path)?;
    let text = String::from_utf8(pem).map_err(|_| ApidError::ReadFile {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 PEM text"),
    })?;
    let key = pki::PrivateKey::from_pem(&text).map_err(|source| ApidError::PrivateKey {
        path: path.to_owned(),
        source,
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        key.pkcs8_der().to_vec(),
    )))
}
