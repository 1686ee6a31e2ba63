//! TLS client settings: mutual TLS from talosconfig credentials, or the maintenance-mode
//! "insecure" TLS that neither verifies the server nor presents a client certificate.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use talosconfig::Credentials;

use crate::error::ApiClientError;

/// How the client speaks TLS to apid. Cheap to clone.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<ClientConfig>,
    insecure: bool,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Mutual TLS: the server must chain to the credentials' CA and carry the dialled host as a
    /// SAN; the client presents its certificate and key (any PEM key label `pki` reads, including
    /// Talos's `ED25519 PRIVATE KEY`).
    pub fn mutual(credentials: &Credentials) -> Result<Self, ApiClientError> {
        let roots = root_store(&credentials.ca_pem)?;
        let chain = certificates("crt", &credentials.crt_pem)?;
        let key = pki::PrivateKey::from_pem(&credentials.key_pem)
            .map_err(|e| invalid("key", e.to_string()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(ApiClientError::TlsConfig)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(ApiClientError::TlsConfig)?;
        Ok(Self::finish(config, false))
    }

    /// Server-only TLS (how nodes reach trustd): the server must chain to one of the CAs in
    /// `ca_pem` and carry the dialled host as a SAN; no client certificate is sent.
    pub fn server_only(ca_pem: &str) -> Result<Self, ApiClientError> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(ApiClientError::TlsConfig)?
            .with_root_certificates(root_store(ca_pem)?)
            .with_no_client_auth();
        Ok(Self::finish(config, false))
    }

    /// Maintenance-mode TLS: the server certificate is not verified (its handshake signature
    /// still is) and no client certificate is sent.
    pub fn insecure() -> Result<Self, ApiClientError> {
        let provider = provider();
        let verifier = AnyServerCertificate {
            algorithms: provider.signature_verification_algorithms,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ApiClientError::TlsConfig)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Self::finish(config, true))
    }

    /// Whether the server certificate goes unverified.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    fn finish(mut config: ClientConfig, insecure: bool) -> Self {
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsSettings {
            config: Arc::new(config),
            insecure,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CAs of a PEM bundle, as the roots a server must chain to.
fn root_store(ca_pem: &str) -> Result<RootCertStore, ApiClientError> {
    let mut roots = RootCertStore::empty();
    for ca in certificates("ca", ca_pem)? {
        roots
            .add(ca)
            .map_err(|e| invalid("ca", format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn invalid(field: &'static str, reason: String) -> ApiClientError {
    ApiClientError::InvalidCredential { field, reason }
}

/// Every `CERTIFICATE` block of `pem`; at least one is required.
fn certificates(
    field: &'static str,
    pem: &str,
) -> Result<Vec<CertificateDer<'static>>, ApiClientError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(field, format!("reading PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid(field, "no CERTIFICATE PEM block".to_string()));
    }
    Ok(certificates)
}

/// Accepts any server certificate but still checks that the server holds its key.
#[derive(Debug)]
struct AnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(ca_pem: &str, crt_pem: &str, key_pem: &str) -> Credentials {
        Credentials {
            ca_pem: ca_pem.into(),
            crt_pem: crt_pem.into(),
            key_pem: key_pem.into(),
        }
    }

    #[test]
    fn mutual_settings_accept_talos_credentials() {
        let ca =
            pki::generate_ca(pki::CaKind::Talos, pki::Validity::from_now(pki::CA_TTL)).expect("ca");
        let authority = pki::CertificateAuthority::from_pair(&ca).expect("authority");
        let client = authority
            .issue_client_certificate(
                "admin",
                &["os:admin".to_string()],
                pki::Validity::from_now(pki::CLIENT_CERTIFICATE_TTL),
            )
            .expect("client certificate");
        let settings = TlsSettings::mutual(&credentials(
            ca.crt.as_deref().expect("ca crt"),
            client.crt.as_deref().expect("crt"),
            client.key.as_deref().expect("key"),
        ))
        .expect("mutual settings");
        assert!(!settings.is_insecure());
        assert_eq!(
            settings.client_config().alpn_protocols,
            vec![b"h2".to_vec()]
        );
    }

    #[test]
    fn unusable_credentials_name_the_field() {
        let error = TlsSettings::mutual(&credentials("not pem", "not pem", "not pem"))
            .expect_err("no certificates");
        assert!(
            error.to_string().starts_with("client credentials: ca:"),
            "{error}"
        );
    }
}
