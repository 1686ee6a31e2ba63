//! Certificate signing requests as trustd reads them from any token holder: the bytes as PEM
//! text, as the DER inside a PEM block (the ASN.1 parser), and as the requested extensions of a
//! properly signed request (what is read after the signature check).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use pki::{PrivateKey, RequestedCertificate};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = RequestedCertificate::from_pem(text);
    }
    let wrapped = pem_block(data);
    let _ = RequestedCertificate::from_pem(&wrapped);
    if let Ok(signed) = pki::signed_request_with_raw_extensions(key(), data) {
        let _ = RequestedCertificate::from_pem(&signed);
    }
});

fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate_ed25519().expect("a key"))
}

/// `data` as a `CERTIFICATE REQUEST` PEM block.
fn pem_block(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut body = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                body.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                body.push('=');
            }
        }
    }
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        lines.join("\n")
    )
}
