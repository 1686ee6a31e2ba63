//! The Secure Boot database upstream's `talosctl gen secureboot database` writes: one
//! certificate enrolled as PK, KEK and db, each as a signed time-based authenticated variable
//! (`EFI_VARIABLE_AUTHENTICATION_2` followed by the signature list) under systemd-boot's
//! auto-enrolment names `db.auth`, `KEK.auth`, `PK.auth`.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{SecureBootError, SigningKey, pkcs7, signature_list};

/// `EFI_GLOBAL_VARIABLE` (PK, KEK).
const GLOBAL_VARIABLE: Uuid = uuid::uuid!("8be4df61-93ca-11d2-aa0d-00e098032b8c");
/// `EFI_IMAGE_SECURITY_DATABASE_GUID` (db).
const IMAGE_SECURITY_DATABASE: Uuid = uuid::uuid!("d719b2cb-3d3a-4596-a3bc-dad00e67656f");
/// `EFI_CERT_TYPE_PKCS7_GUID`.
const CERT_TYPE_PKCS7: Uuid = uuid::uuid!("4aafd29d-68df-49ee-8aa9-347d375665a7");
/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
const ATTRIBUTES: u32 = 0x01 | 0x02 | 0x04 | 0x20;
/// `WIN_CERT_TYPE_EFI_GUID`, revision 2.0.
const WIN_CERT_TYPE_EFI_GUID: u16 = 0x0ef1;
const WIN_CERT_REVISION: u16 = 0x0200;
/// The X.500 name-space UUID (RFC 4122), as upstream derives the owner GUID.
const NAMESPACE_X500: Uuid = uuid::uuid!("6ba7b814-9dad-11d1-80b4-00c04fd430c8");

/// A Secure Boot key variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variable {
    Pk,
    Kek,
    Db,
}

impl Variable {
    /// The variable's name.
    pub fn name(self) -> &'static str {
        match self {
            Variable::Pk => "PK",
            Variable::Kek => "KEK",
            Variable::Db => "db",
        }
    }

    fn vendor(self) -> Uuid {
        match self {
            Variable::Pk | Variable::Kek => GLOBAL_VARIABLE,
            Variable::Db => IMAGE_SECURITY_DATABASE,
        }
    }

    /// The file name systemd-boot auto-enrols it from.
    pub fn file_name(self) -> String {
        format!("{}.auth", self.name())
    }
}

/// One signed variable, ready to write to its [`Variable::file_name`].
#[derive(Debug, Clone)]
pub struct AuthVariable {
    pub variable: Variable,
    pub contents: Vec<u8>,
}

/// `db.auth`, `KEK.auth` and `PK.auth` enrolling `enrolled_der` (a DER certificate), signed
/// by `signer` at `now`. The signature owner GUID is derived from the certificate (a SHA-256
/// name-based UUID in the X.500 name space, marked version 4, as upstream derives it).
pub fn database(
    enrolled_der: &[u8],
    signer: &SigningKey,
    now: OffsetDateTime,
) -> Result<Vec<AuthVariable>, SecureBootError> {
    x509_parser::parse_x509_certificate(enrolled_der)
        .map_err(|e| SecureBootError::Certificate(format!("the enrolled certificate: {e}")))?;
    let owner = owner_guid(enrolled_der);
    let list = signature_list(owner, enrolled_der);
    [Variable::Db, Variable::Kek, Variable::Pk]
        .into_iter()
        .map(|variable| {
            Ok(AuthVariable {
                variable,
                contents: signed_variable(variable, &list, signer, now)?,
            })
        })
        .collect()
}

fn owner_guid(cert_der: &[u8]) -> Uuid {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(NAMESPACE_X500.as_bytes());
    context.update(cert_der);
    let digest = context.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// `EFI_TIME` of `now` (UTC, no nanoseconds, as signing tools write it).
fn efi_time(now: OffsetDateTime) -> [u8; 16] {
    let now = now.to_offset(time::UtcOffset::UTC);
    let mut bytes = [0u8; 16];
    bytes[..2].copy_from_slice(&(now.year() as u16).to_le_bytes());
    bytes[2] = now.month() as u8;
    bytes[3] = now.day();
    bytes[4] = now.hour();
    bytes[5] = now.minute();
    bytes[6] = now.second();
    bytes
}

fn signed_variable(
    variable: Variable,
    list: &[u8],
    signer: &SigningKey,
    now: OffsetDateTime,
) -> Result<Vec<u8>, SecureBootError> {
    let timestamp = efi_time(now);
    let mut signed = Vec::new();
    for unit in variable.name().encode_utf16() {
        signed.extend_from_slice(&unit.to_le_bytes());
    }
    signed.extend_from_slice(&variable.vendor().to_bytes_le());
    signed.extend_from_slice(&ATTRIBUTES.to_le_bytes());
    signed.extend_from_slice(&timestamp);
    signed.extend_from_slice(list);
    let pkcs7 = pkcs7::signed_data(signer, &signed)?;
    let mut out = Vec::with_capacity(16 + 24 + pkcs7.len() + list.len());
    out.extend_from_slice(&timestamp);
    out.extend_from_slice(&((24 + pkcs7.len()) as u32).to_le_bytes());
    out.extend_from_slice(&WIN_CERT_REVISION.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_TYPE_EFI_GUID.to_le_bytes());
    out.extend_from_slice(&CERT_TYPE_PKCS7.to_bytes_le());
    out.extend_from_slice(&pkcs7);
    out.extend_from_slice(list);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variable_carries_the_list_and_a_signature_over_its_name_and_time() {
        let key = SigningKey::generate("Test UKI Signing Key", 2048).unwrap();
        let now = time::macros::datetime!(2026-12-05 12:00:00 UTC);
        let variables = database(&key.cert_der, &key, now).unwrap();
        let names: Vec<String> = variables.iter().map(|v| v.variable.file_name()).collect();
        assert_eq!(names, ["db.auth", "KEK.auth", "PK.auth"]);
        let (_, cert) = x509_parser::parse_x509_certificate(&key.cert_der).unwrap();
        let public = cert.public_key().subject_public_key.data.to_vec();
        for variable in &variables {
            let bytes = &variable.contents;
            assert_eq!(&bytes[..3], &[0xea, 0x07, 12]);
            let length = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
            let list = &bytes[16 + length..];
            assert_eq!(
                list,
                signature_list(owner_guid(&key.cert_der), &key.cert_der)
            );
            // The signature is the SignerInfo's last OCTET STRING: the RSA modulus' length.
            let pkcs7 = &bytes[40..16 + length];
            let signature = &pkcs7[pkcs7.len() - 256..];
            let mut signed = Vec::new();
            for unit in variable.variable.name().encode_utf16() {
                signed.extend_from_slice(&unit.to_le_bytes());
            }
            signed.extend_from_slice(&variable.variable.vendor().to_bytes_le());
            signed.extend_from_slice(&ATTRIBUTES.to_le_bytes());
            signed.extend_from_slice(&bytes[..16]);
            signed.extend_from_slice(list);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                &public,
            )
            .verify(&signed, signature)
            .unwrap();
        }
    }

    #[test]
    fn the_owner_guid_is_a_version_4_uuid_of_the_certificate() {
        let guid = owner_guid(b"certificate");
        assert_eq!(guid.get_version_num(), 4);
        assert_eq!(guid, owner_guid(b"certificate"));
        assert_ne!(guid, owner_guid(b"another"));
    }

    #[test]
    fn a_certificate_that_is_not_der_is_refused() {
        let key = SigningKey::generate("k", 2048).unwrap();
        let error = database(b"junk", &key, OffsetDateTime::now_utc()).unwrap_err();
        assert!(error.to_string().contains("enrolled certificate"));
    }
}
