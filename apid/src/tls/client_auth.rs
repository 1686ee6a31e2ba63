//! Client certificates: the verifier apid requires in normal mode, and the roles a verified
//! certificate carries.

use std::sync::Arc;
use std::time::Duration;

use authz::RoleSet;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Verifies the client chain against the accepted CAs (webpki: signatures, validity, ClientAuth
/// purpose), then insists, like upstream apid, that every non-CA certificate of the presented
/// chain has ExtendedKeyUsage exactly `[ClientAuth]`.
#[derive(Debug)]
pub(crate) struct TalosClientVerifier {
    pub chain_verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for TalosClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain_verifier.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = match self
            .chain_verifier
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(error) if not_valid_yet(&error) => {
                // The node's clock may be behind the client's: a certificate that becomes valid
                // within the tolerance is taken (its expiry is then checked that much later).
                let later = UnixTime::since_unix_epoch(
                    Duration::from_secs(now.as_secs()) + CLOCK_BEHIND_TOLERANCE,
                );
                self.chain_verifier
                    .verify_client_cert(end_entity, intermediates, later)?
            }
            verified => verified?,
        };
        for certificate in std::iter::once(end_entity).chain(intermediates) {
            check_client_usage(certificate)?;
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain_verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain_verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain_verifier.supported_verify_schemes()
    }
}

/// How far the node's clock may be behind a client's: certificates are usually made just
/// before they are used (`talosctl gen config`), and a node whose clock was set back (an RTC
/// kept in local time, a clock stepped back) must still take them.
const CLOCK_BEHIND_TOLERANCE: Duration = Duration::from_secs(2 * 3600);

fn not_valid_yet(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
        )
    )
}

/// A non-CA certificate must have ExtendedKeyUsage exactly `[ClientAuth]`; CAs are not checked.
fn check_client_usage(der: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    let (_, certificate) =
        X509Certificate::from_der(der).map_err(|_| CertificateError::BadEncoding)?;
    if certificate.is_ca() {
        return Ok(());
    }
    let usage = certificate
        .extended_key_usage()
        .map_err(|_| CertificateError::BadEncoding)?
        .map(|extension| extension.value);
    let only_client_auth = usage.is_some_and(|usage| {
        usage.client_auth
            && !usage.any
            && !usage.server_auth
            && !usage.code_signing
            && !usage.email_protection
            && !usage.time_stamping
            && !usage.ocsp_signing
            && usage.other.is_empty()
    });
    if only_client_auth {
        Ok(())
    } else {
        Err(CertificateError::InvalidPurpose.into())
    }
}

/// The roles of a client certificate: its Subject Organizations. A certificate that cannot be
/// parsed (it already passed verification, so this does not happen) has no roles.
pub(crate) fn certificate_roles(der: &CertificateDer<'_>) -> RoleSet {
    match X509Certificate::from_der(der) {
        Ok((_, certificate)) => RoleSet::parse(
            certificate
                .subject()
                .iter_organization()
                .filter_map(|attribute| attribute.as_str().ok()),
        ),
        Err(_) => RoleSet::new(),
    }
}
