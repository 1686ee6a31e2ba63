//! Tokens (`machine.token`, `cluster.token`) and random secrets (cluster id and secret,
//! secretbox encryption secret).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng as _;

use crate::error::PkiError;

const TOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_BYTES: usize = 32;

/// A new random token in the format `[a-z0-9]{6}.[a-z0-9]{16}` (trustd token, Kubernetes
/// bootstrap token).
pub fn generate_token() -> String {
    let mut rng = rand::rng();
    let mut part = |length: usize| -> String {
        (0..length)
            .map(|_| char::from(TOKEN_ALPHABET[rng.random_range(0..TOKEN_ALPHABET.len())]))
            .collect()
    };
    format!("{}.{}", part(6), part(16))
}

/// Checks the `[a-z0-9]{6}.[a-z0-9]{16}` format.
pub fn check_token(token: &str) -> Result<(), PkiError> {
    let part_ok = |part: &str, length: usize| {
        part.len() == length && part.bytes().all(|b| TOKEN_ALPHABET.contains(&b))
    };
    match token.split_once('.') {
        Some((id, secret)) if part_ok(id, 6) && part_ok(secret, 16) => Ok(()),
        _ => Err(PkiError::InvalidToken),
    }
}

/// 32 random bytes, standard base64 (cluster id, cluster secret, secretbox secret).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill(&mut bytes);
    STANDARD.encode(bytes)
}

/// Checks that `secret` is standard base64 of exactly 32 bytes.
pub fn check_secret(secret: &str) -> Result<(), PkiError> {
    let bytes = STANDARD
        .decode(secret)
        .map_err(|e| PkiError::InvalidSecret {
            reason: format!("not valid base64 ({e})"),
        })?;
    if bytes.len() != SECRET_BYTES {
        return Err(PkiError::InvalidSecret {
            reason: format!("it decodes to {} bytes", bytes.len()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_and_secrets_pass_their_checks() {
        for _ in 0..50 {
            let token = generate_token();
            check_token(&token).unwrap();
            check_secret(&generate_secret()).unwrap();
        }
        assert_ne!(generate_token(), generate_token());
    }

    #[test]
    fn malformed_tokens_and_secrets_are_rejected() {
        for bad in [
            "",
            "abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef0",
            "ABCDEF.0123456789abcdef",
            "abcde-.0123456789abcdef",
            "abcdef0123456789abcdef.",
        ] {
            assert!(
                matches!(check_token(bad), Err(PkiError::InvalidToken)),
                "{bad:?}"
            );
        }
        check_token("abc123.0123456789abcdef").unwrap();
        let short = STANDARD.encode([0u8; 31]);
        let err = check_secret(&short).unwrap_err().to_string();
        assert!(err.contains("31 bytes"), "{err}");
        assert!(check_secret("not base64!").is_err());
    }
}
