//! RSA signing certificate authorities (upstream's UKI and PCR signing keys).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use time::{Duration, OffsetDateTime};

use crate::SecureBootError;

/// A signing key and its self-signed certificate.
#[derive(Clone)]
pub struct SigningKey {
    /// The key, PKCS#1 PEM (`RSA PRIVATE KEY`).
    pub key_pem: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("cert_der", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

/// Ten years, as upstream's CA validity.
const VALIDITY: Duration = Duration::days(3650);

impl SigningKey {
    /// A new RSA key of `bits` and a self-signed CA certificate for it with `common_name` as
    /// Common Name and Organization, valid from now for ten years.
    pub fn generate(common_name: &str, bits: usize) -> Result<SigningKey, SecureBootError> {
        let rsa = RsaPrivateKey::new(&mut rand_core::OsRng, bits)
            .map_err(|e| SecureBootError::Rsa(e.to_string()))?;
        let pkcs8 = rsa
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| SecureBootError::Rsa(e.to_string()))?;
        let key_pem = rsa
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|e| SecureBootError::Rsa(e.to_string()))?
            .to_string();
        let pair = KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| SecureBootError::SigningKey(e.to_string()))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now;
        params.not_after = now + VALIDITY;
        params.serial_number = Some(rand_serial().into());
        let cert = params
            .self_signed(&pair)
            .map_err(|e| SecureBootError::Certificate(e.to_string()))?;
        Ok(SigningKey {
            key_pem,
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
        })
    }

    /// Loads a key (PKCS#1 or PKCS#8 PEM) and its certificate (PEM); refuses a pair that does
    /// not belong together.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<SigningKey, SecureBootError> {
        let key = SigningKey {
            key_pem: key_pem.to_string(),
            cert_pem: cert_pem.to_string(),
            cert_der: certificate_der(cert_pem)?,
        };
        let (_, cert) = x509_parser::parse_x509_certificate(&key.cert_der)
            .map_err(|e| SecureBootError::Certificate(e.to_string()))?;
        let public = key.ring_key()?.public().as_ref().to_vec();
        if cert.public_key().subject_public_key.data.as_ref() != public.as_slice() {
            return Err(SecureBootError::KeyMismatch);
        }
        Ok(key)
    }

    /// RSA-PKCS#1-v1.5-SHA256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SecureBootError> {
        let pair = self.ring_key()?;
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            message,
            &mut signature,
        )
        .map_err(|e| SecureBootError::SigningKey(e.to_string()))?;
        Ok(signature)
    }

    fn ring_key(&self) -> Result<ring::rsa::KeyPair, SecureBootError> {
        let rsa = RsaPrivateKey::from_pkcs1_pem(&self.key_pem)
            .or_else(|_| {
                use rsa::pkcs8::DecodePrivateKey as _;
                RsaPrivateKey::from_pkcs8_pem(&self.key_pem)
            })
            .map_err(|e| SecureBootError::SigningKey(format!("not an RSA key in PEM: {e}")))?;
        let der = rsa
            .to_pkcs1_der()
            .map_err(|e| SecureBootError::Rsa(e.to_string()))?;
        ring::rsa::KeyPair::from_der(der.as_bytes())
            .map_err(|e| SecureBootError::SigningKey(e.to_string()))
    }
}

/// The DER of the first PEM `CERTIFICATE` in `pem`.
pub fn certificate_der(pem: &str) -> Result<Vec<u8>, SecureBootError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| SecureBootError::Certificate(format!("not PEM: {e}")))?;
    if block.label != "CERTIFICATE" {
        return Err(SecureBootError::Certificate(format!(
            "PEM block {:?} is not a CERTIFICATE",
            block.label
        )));
    }
    x509_parser::parse_x509_certificate(&block.contents)
        .map_err(|e| SecureBootError::Certificate(e.to_string()))?;
    Ok(block.contents)
}

/// A positive random 128-bit serial number.
fn rand_serial() -> Vec<u8> {
    let mut serial = uuid::Uuid::new_v4().as_bytes().to_vec();
    serial[0] &= 0x7f;
    serial
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_certificate_verifies() {
        let key = SigningKey::generate("Test UKI Signing Key", 2048).unwrap();
        assert!(key.key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let (_, cert) = x509_parser::parse_x509_certificate(&key.cert_der).unwrap();
        assert_eq!(
            cert.subject().to_string(),
            "CN=Test UKI Signing Key, O=Test UKI Signing Key"
        );
        assert!(cert.is_ca());
        let signature = key.sign(b"payload").unwrap();
        let public = cert.public_key().subject_public_key.data.to_vec();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            public,
        )
        .verify(b"payload", &signature)
        .unwrap();
        let loaded = SigningKey::from_pem(&key.key_pem, &key.cert_pem).unwrap();
        assert_eq!(loaded.cert_der, key.cert_der);
    }

    #[test]
    fn a_key_with_someone_elses_certificate_is_refused() {
        let one = SigningKey::generate("one", 2048).unwrap();
        let two = SigningKey::generate("two", 2048).unwrap();
        assert!(matches!(
            SigningKey::from_pem(&one.key_pem, &two.cert_pem),
            Err(SecureBootError::KeyMismatch)
        ));
        assert!(SigningKey::from_pem("junk", &one.cert_pem).is_err());
    }
}
