//! trustd's TLS directory, written by machined:
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` | the Talos issuing CA (`machine.ca`), which signs the requests |
//! | `accepted-cas.crt` | every accepted CA (PEM bundle), returned to callers as `ca` |
//! | `server.crt`, `server.key` | trustd's own serving certificate |
//! | `token` | the machine token callers must present |
//! | `protected-names` | names and addresses no joining node may claim, one per line |

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use pki::CertificateAuthority;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::TrustdError;
use crate::policy::NodePolicy;

pub const ISSUER_CERTIFICATE: &str = "ca.crt";
pub const ISSUER_KEY: &str = "ca.key";
pub const ACCEPTED_CAS: &str = "accepted-cas.crt";
pub const SERVER_CERTIFICATE: &str = "server.crt";
pub const SERVER_KEY: &str = "server.key";
pub const TOKEN: &str = "token";
pub const PROTECTED_NAMES: &str = "protected-names";

/// One reading of the TLS directory.
#[derive(Debug)]
pub(crate) struct Material {
    pub authority: CertificateAuthority,
    pub accepted_cas: String,
    pub token_digest: ring::digest::Digest,
    pub server: Arc<ServerConfig>,
    pub policy: NodePolicy,
}

impl Material {
    fn read(dir: &Path) -> Result<Self, TrustdError> {
        let text = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| TrustdError::ReadFile { path, source })
        };
        let pki_error = |name: &str| {
            let path = dir.join(name);
            move |source| TrustdError::Pki { path, source }
        };
        let authority =
            CertificateAuthority::from_pem(&text(ISSUER_CERTIFICATE)?, &text(ISSUER_KEY)?)
                .map_err(pki_error(ISSUER_CERTIFICATE))?;
        let token = text(TOKEN)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(TrustdError::EmptyToken {
                path: dir.join(TOKEN),
            });
        }
        let chain = CertificateDer::pem_slice_iter(text(SERVER_CERTIFICATE)?.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrustdError::Pki {
                path: dir.join(SERVER_CERTIFICATE),
                source: pki::PkiError::Pem {
                    reason: e.to_string(),
                },
            })?;
        let key = pki::PrivateKey::from_pem(&text(SERVER_KEY)?).map_err(pki_error(SERVER_KEY))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_error = |source| TrustdError::Tls {
            dir: dir.to_owned(),
            source,
        };
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(tls_error)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let protected: Vec<String> = text(PROTECTED_NAMES)?
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(String::from)
            .collect();
        Ok(Material {
            policy: NodePolicy::new(&protected),
            authority,
            accepted_cas: text(ACCEPTED_CAS)?,
            token_digest: ring::digest::digest(&ring::digest::SHA256, token.as_bytes()),
            server: Arc::new(server),
        })
    }
}

/// The current material, replaced as a whole by [`Reloadable::reload`].
#[derive(Debug)]
pub(crate) struct Reloadable {
    dir: PathBuf,
    current: RwLock<Arc<Material>>,
}

impl Reloadable {
    pub fn load(dir: PathBuf) -> Result<Self, TrustdError> {
        let material = Material::read(&dir)?;
        Ok(Reloadable {
            dir,
            current: RwLock::new(Arc::new(material)),
        })
    }

    /// Re-reads the directory; on failure the old material stays in use.
    pub fn reload(&self) -> Result<(), TrustdError> {
        let material = Arc::new(Material::read(&self.dir)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = material;
        Ok(())
    }

    pub fn current(&self) -> Arc<Material> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}
