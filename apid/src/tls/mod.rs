//! TLS for apid: the server side (mutual TLS in normal mode, server-only in maintenance mode)
//! and the client side used to forward calls to other nodes, rebuilt from the TLS directory on
//! every reload. A reload also closes the open connections whose client certificate the new
//! directory no longer accepts (a CA rotated out, `talosctl rotate-ca`).

mod client_auth;
mod files;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier as _;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use client_auth::TalosClientVerifier;
pub(crate) use client_auth::certificate_roles;
use files::{CA_BUNDLE, TlsFiles};

use crate::error::ApidError;

const ALPN_H2: &[u8] = b"h2";

/// The TLS configurations built from one reading of the TLS directory. New connections take
/// the current state; connections already open keep the state they started with.
#[derive(Debug)]
pub(crate) struct TlsState {
    /// Configuration for accepted connections.
    pub server: Arc<ServerConfig>,
    /// Configuration for forwarding to other nodes; `None` on nodes without a client
    /// certificate (workers) and in maintenance mode.
    pub forwarding: Option<Arc<ClientConfig>>,
    /// The client certificate check of accepted connections; `None` in maintenance mode.
    client_verifier: Option<Arc<TalosClientVerifier>>,
}

impl TlsState {
    /// Reads `dir` and builds the configurations. In `maintenance` mode no client certificate
    /// is requested and nothing is forwarded.
    pub fn load(dir: &Path, maintenance: bool) -> Result<Self, ApidError> {
        let files = TlsFiles::read(dir, maintenance)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|source| ApidError::Tls {
                role: "server",
                source,
            })?;
        let roots = match &files.accepted_cas {
            Some((path, cas)) => Some(root_store(path, cas)?),
            None => None,
        };
        let client_verifier = match (&roots, maintenance) {
            (Some(roots), false) => {
                let chain_verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                        .build()
                        .map_err(|source| ApidError::ClientVerifier {
                            path: dir.join(CA_BUNDLE),
                            source,
                        })?;
                Some(Arc::new(TalosClientVerifier { chain_verifier }))
            }
            _ => None,
        };
        let server_builder = match &client_verifier {
            Some(verifier) => server_builder.with_client_cert_verifier(verifier.clone()),
            None => server_builder.with_no_client_auth(),
        };
        let mut server = server_builder
            .with_single_cert(files.server.chain, files.server.key)
            .map_err(|source| ApidError::Tls {
                role: "server",
                source,
            })?;
        server.alpn_protocols = vec![ALPN_H2.to_vec()];

        let forwarding = match (files.client, roots, maintenance) {
            (Some(client), Some(roots), false) => {
                Some(Arc::new(forwarding_client(&provider, roots, client)?))
            }
            _ => None,
        };
        Ok(TlsState {
            server: Arc::new(server),
            forwarding,
            client_verifier,
        })
    }

    /// Whether a connection whose client presented `chain` (end entity first) would be
    /// accepted now: after a reload, a connection made with a CA no longer accepted is closed.
    pub fn accepts(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some(verifier) = &self.client_verifier else {
            return true;
        };
        chain
            .split_first()
            .is_some_and(|(end_entity, intermediates)| {
                verifier
                    .verify_client_cert(end_entity, intermediates, UnixTime::now())
                    .is_ok()
            })
    }
}

fn root_store(
    path: &Path,
    cas: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<Arc<RootCertStore>, ApidError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).map_err(|source| ApidError::Tls {
            role: "accepted CA bundle",
            source,
        })?;
    }
    if roots.is_empty() {
        return Err(ApidError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(Arc::new(roots))
}

fn forwarding_client(
    provider: &Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    client: files::CertifiedKey,
) -> Result<ClientConfig, ApidError> {
    let tls_error = |source| ApidError::Tls {
        role: "forwarding client",
        source,
    };
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(roots)
        .with_client_auth_cert(client.chain, client.key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}
