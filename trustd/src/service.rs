//! `securityapi.SecurityService`: the token check and the signing.

use std::sync::Arc;
use std::time::Duration;

use pki::{RequestedCertificate, Validity};
use proto::securityapi::security_service_server::SecurityService;
use proto::securityapi::{CertificateRequest, CertificateResponse};
use tonic::{Request, Response, Status};

use crate::error::TrustdError;
use crate::material::{Material, Reloadable};

/// The metadata key carrying the machine token.
const TOKEN_METADATA: &str = "token";

/// Signs node certificate requests with the current material.
#[derive(Debug)]
pub(crate) struct Signer {
    material: Arc<Reloadable>,
    ttl: Duration,
}

impl Signer {
    pub fn new(material: Arc<Reloadable>, ttl: Duration) -> Self {
        Signer { material, ttl }
    }

    fn sign(&self, material: &Material, csr: &[u8]) -> Result<(String, String), TrustdError> {
        let csr = std::str::from_utf8(csr).map_err(|_| {
            TrustdError::MalformedCsr(pki::PkiError::InvalidCsr {
                reason: "not PEM text".into(),
            })
        })?;
        let requested = RequestedCertificate::from_pem(csr).map_err(TrustdError::MalformedCsr)?;
        material
            .policy
            .check(&requested)
            .map_err(TrustdError::Refused)?;
        let ttl = time::Duration::try_from(self.ttl).unwrap_or(pki::SERVER_CERTIFICATE_TTL);
        let certificate = material
            .authority
            .sign_server_request(csr, &requested.request, Validity::from_now(ttl))
            .map_err(TrustdError::Signing)?;
        let name = requested.request.common_name.unwrap_or_default();
        Ok((certificate, name))
    }
}

/// Compares the presented token with the machine token by their SHA-256 digests, in time that
/// does not depend on where they differ.
fn check_token(
    metadata: &tonic::metadata::MetadataMap,
    material: &Material,
) -> Result<(), TrustdError> {
    let presented = metadata
        .get(TOKEN_METADATA)
        .ok_or(TrustdError::MissingToken)?
        .as_bytes();
    let presented = ring::digest::digest(&ring::digest::SHA256, presented);
    let difference = presented
        .as_ref()
        .iter()
        .zip(material.token_digest.as_ref())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if difference == 0 {
        Ok(())
    } else {
        Err(TrustdError::InvalidToken)
    }
}

#[tonic::async_trait]
impl SecurityService for Signer {
    async fn certificate(
        &self,
        request: Request<CertificateRequest>,
    ) -> Result<Response<CertificateResponse>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let material = self.material.current();
        let result = check_token(request.metadata(), &material)
            .and_then(|()| self.sign(&material, &request.get_ref().csr));
        match result {
            Ok((certificate, name)) => {
                tracing::info!(%peer, %name, "signed a node certificate");
                Ok(Response::new(CertificateResponse {
                    ca: material.accepted_cas.clone().into_bytes(),
                    crt: certificate.into_bytes(),
                }))
            }
            Err(error) => {
                tracing::warn!(%peer, %error, "certificate request rejected");
                Err(error.into())
            }
        }
    }
}
