//! TLS client settings: mutual TLS from talosconfig credentials, or the maintenance-mode
//! "insecure" TLS that presents no client certificate and does not verify the server, or only
//! pins it by the SHA-256 fingerprint of its public key (`--cert-fingerprint`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
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
        Self::insecure_pinned(&[])
    }

    /// Maintenance-mode TLS pinned to server keys: the certificate's chain and names are not
    /// checked, but the SHA-256 of its SubjectPublicKeyInfo must be one of `fingerprints`
    /// (none given: any certificate, as [`TlsSettings::insecure`]). The handshake signature is
    /// verified, so the server must hold the pinned key.
    pub fn insecure_pinned(fingerprints: &[SpkiFingerprint]) -> Result<Self, ApiClientError> {
        let provider = provider();
        let verifier = AnyServerCertificate {
            algorithms: provider.signature_verification_algorithms,
            pinned: fingerprints.to_vec(),
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

/// The SHA-256 digest of a certificate's DER SubjectPublicKeyInfo: what `--cert-fingerprint`
/// pins. Written as standard base64 (44 characters, as upstream Talos prints it); parsed from
/// base64 (padded or not) or hex (64 digits, `:` separators allowed).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpkiFingerprint([u8; 32]);

impl SpkiFingerprint {
    /// The fingerprint of a DER certificate's public key.
    pub fn of_certificate(der: &[u8]) -> Result<Self, ApiClientError> {
        use x509_parser::prelude::{FromDer as _, X509Certificate};
        let (_, certificate) =
            X509Certificate::from_der(der).map_err(|e| ApiClientError::InvalidCertificate {
                reason: e.to_string(),
            })?;
        Ok(Self::of_spki(certificate.public_key().raw))
    }

    /// The fingerprint of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        SpkiFingerprint(bytes)
    }

    /// Parses base64 or hex text (see the type's docs).
    pub fn parse(text: &str) -> Result<Self, ApiClientError> {
        let invalid = |reason: &str| ApiClientError::InvalidFingerprint {
            fingerprint: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        let hex_digits: String = trimmed.chars().filter(|&c| c != ':').collect();
        let bytes = if hex_digits.len() == 64 && hex_digits.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&hex_digits[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| invalid("not hex"))?
        } else {
            let engine = if trimmed.ends_with('=') {
                STANDARD
            } else {
                STANDARD_NO_PAD
            };
            engine
                .decode(trimmed)
                .map_err(|_| invalid("neither base64 nor 64 hex digits"))?
        };
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| invalid("a SHA-256 fingerprint has 32 bytes"))?;
        Ok(SpkiFingerprint(bytes))
    }
}

impl fmt::Display for SpkiFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for SpkiFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpkiFingerprint({self})")
    }
}

impl FromStr for SpkiFingerprint {
    type Err = ApiClientError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// A server certificate whose key is not among the pinned ones (found again in the dialer's
/// error through [`FingerprintMismatch::in_handshake_error`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "server certificate fingerprint {actual} does not match any of the accepted fingerprints ({})",
    join(.accepted)
)]
pub(crate) struct FingerprintMismatch {
    actual: String,
    accepted: Vec<SpkiFingerprint>,
}

impl FingerprintMismatch {
    /// The mismatch behind a failed TLS handshake, if that is why it failed.
    pub(crate) fn in_handshake_error(error: &std::io::Error) -> Option<&FingerprintMismatch> {
        let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) =
            error.get_ref()?.downcast_ref::<rustls::Error>()?
        else {
            return None;
        };
        other.0.downcast_ref::<FingerprintMismatch>()
    }
}

fn join(fingerprints: &[SpkiFingerprint]) -> String {
    let each: Vec<String> = fingerprints.iter().map(ToString::to_string).collect();
    each.join(", ")
}

/// Accepts any server certificate, or only those whose key is pinned, and still checks that
/// the server holds its key.
#[derive(Debug)]
struct AnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
    pinned: Vec<SpkiFingerprint>,
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pinned.is_empty() {
            return Ok(ServerCertVerified::assertion());
        }
        let actual = SpkiFingerprint::of_certificate(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if self.pinned.contains(&actual) {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = FingerprintMismatch {
            actual: actual.to_string(),
            accepted: self.pinned.clone(),
        };
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(mismatch))),
        ))
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

    fn server_certificate_der() -> Vec<u8> {
        let ca =
            pki::generate_ca(pki::CaKind::Talos, pki::Validity::from_now(pki::CA_TTL)).expect("ca");
        let authority = pki::CertificateAuthority::from_pair(&ca).expect("authority");
        let server = authority
            .issue_server_certificate(
                "apid",
                &pki::SubjectAltNames::default(),
                pki::Validity::from_now(pki::SERVER_CERTIFICATE_TTL),
            )
            .expect("server certificate");
        CertificateDer::from_pem_slice(server.crt.as_deref().expect("crt").as_bytes())
            .expect("PEM")
            .to_vec()
    }

    #[test]
    fn fingerprints_parse_from_base64_and_hex() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let colons: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
        let base64 = STANDARD.encode(&bytes);
        let from_base64 = SpkiFingerprint::parse(&base64).expect("base64");
        assert_eq!(from_base64.to_string(), base64);
        assert_eq!(SpkiFingerprint::parse(&hex).expect("hex"), from_base64);
        assert_eq!(
            SpkiFingerprint::parse(&colons.join(":")).expect("hex with colons"),
            from_base64
        );
        assert_eq!(
            SpkiFingerprint::parse(base64.trim_end_matches('=')).expect("unpadded"),
            from_base64
        );
    }

    #[test]
    fn malformed_fingerprints_say_why() {
        for (text, reason) in [
            ("not a fingerprint!", "neither base64 nor 64 hex digits"),
            ("AAAA", "32 bytes"),
            (&"ab".repeat(31), "neither base64 nor 64 hex digits"),
            (&STANDARD.encode([0u8; 31]), "32 bytes"),
        ] {
            let error = SpkiFingerprint::parse(text).expect_err(text).to_string();
            assert!(error.contains(reason), "{text}: {error}");
            assert!(error.contains(&format!("{text:?}")), "{text}: {error}");
        }
    }

    #[test]
    fn the_fingerprint_covers_the_public_key_info() {
        use x509_parser::prelude::{FromDer as _, X509Certificate};
        let der = server_certificate_der();
        let (_, parsed) = X509Certificate::from_der(&der).expect("parse");
        let fingerprint = SpkiFingerprint::of_certificate(&der).expect("fingerprint");
        assert_eq!(
            fingerprint,
            SpkiFingerprint::of_spki(parsed.public_key().raw)
        );
        // Not the digest of the whole certificate.
        assert_ne!(fingerprint, SpkiFingerprint::of_spki(&der));
    }

    #[test]
    fn the_pinned_verifier_accepts_only_pinned_keys() {
        let der = server_certificate_der();
        let certificate = CertificateDer::from(der.clone());
        let name = ServerName::try_from("node").expect("name");
        let verifier = |pinned: Vec<SpkiFingerprint>| AnyServerCertificate {
            algorithms: provider().signature_verification_algorithms,
            pinned,
        };
        let verify = |v: &AnyServerCertificate| {
            v.verify_server_cert(&certificate, &[], &name, &[], UnixTime::now())
        };
        let own = SpkiFingerprint::of_certificate(&der).expect("fingerprint");
        let other = SpkiFingerprint::of_certificate(&server_certificate_der()).expect("other");
        assert!(verify(&verifier(Vec::new())).is_ok());
        assert!(verify(&verifier(vec![other, own])).is_ok());
        let error = verify(&verifier(vec![other])).expect_err("not pinned");
        let error = std::io::Error::new(std::io::ErrorKind::InvalidData, error);
        let text = FingerprintMismatch::in_handshake_error(&error)
            .expect("a fingerprint mismatch")
            .to_string();
        assert!(text.contains(&own.to_string()), "{text}");
        assert!(text.contains(&other.to_string()), "{text}");
        assert!(
            text.contains("does not match any of the accepted fingerprints"),
            "{text}"
        );
    }
}
