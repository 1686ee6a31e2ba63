//! EFI signature lists (`EFI_SIGNATURE_LIST`, UEFI 2.x §32.4.1) of X.509 certificates.

use uuid::Uuid;

/// `EFI_CERT_X509_GUID`.
pub const CERT_X509_GUID: Uuid = uuid::uuid!("a5c059a1-94e4-4aa7-87b5-ab155c2bf072");

/// One signature list holding `cert_der` with signature owner `owner`: type GUID, list size,
/// header size 0, signature size, then the owner GUID and the certificate. GUIDs are in EFI's
/// mixed-endian byte order.
pub fn signature_list(owner: Uuid, cert_der: &[u8]) -> Vec<u8> {
    let signature_size = 16 + cert_der.len();
    let list_size = 16 + 4 + 4 + 4 + signature_size;
    let mut list = Vec::with_capacity(list_size);
    list.extend_from_slice(&CERT_X509_GUID.to_bytes_le());
    list.extend_from_slice(&(list_size as u32).to_le_bytes());
    list.extend_from_slice(&0u32.to_le_bytes());
    list.extend_from_slice(&(signature_size as u32).to_le_bytes());
    list.extend_from_slice(&owner.to_bytes_le());
    list.extend_from_slice(cert_der);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_carries_its_sizes_and_mixed_endian_guids() {
        let owner = uuid::uuid!("01020304-0506-0708-090a-0b0c0d0e0f10");
        let list = signature_list(owner, b"cert");
        assert_eq!(list.len(), 28 + 16 + 4);
        assert_eq!(&list[..4], &[0xa1, 0x59, 0xc0, 0xa5]);
        assert_eq!(u32::from_le_bytes(list[16..20].try_into().unwrap()), 48);
        assert_eq!(u32::from_le_bytes(list[24..28].try_into().unwrap()), 20);
        assert_eq!(&list[28..32], &[4, 3, 2, 1]);
        assert_eq!(&list[44..], b"cert");
    }
}
