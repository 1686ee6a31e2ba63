//! Which keys an installer must be signed with, and the check made at Import (before anything
//! is stored, so before any slot is written).
//!
//! The first rule of the config's `ImageVerificationConfig` whose `image` glob matches the
//! installer's registry and repository decides: `skip` accepts it unsigned, `deny` refuses it,
//! `publicKey.certificate` (a PEM public key or certificate) must have signed it; `keyless`
//! needs Sigstore's services, which a node does not reach, so it refuses. Without a matching
//! rule, the project's key baked into the image ([`DEFAULT_KEY`] under the node's root) must
//! have signed it. A signature counts when it verifies and its simple-signing payload names
//! the installer's manifest digest.

use std::path::Path;

use machineconfig::Config;
use machineconfig::documents::{Document, ImageVerificationRule};

use crate::error::MachinedError;

/// The project's public key in the image (relative to the node's root).
pub const DEFAULT_KEY: &str = "usr/share/talos-rs/cosign.pub";

/// How an installer's signature is checked.
#[derive(Debug)]
pub enum Policy {
    /// A rule skips verification.
    Skip { rule: String },
    /// A rule refuses the image.
    Deny { rule: String },
    /// Any of these keys must have signed it (`source` says where they come from).
    Keys {
        keys: Vec<cosign::PublicKey>,
        source: String,
    },
    /// A keyless rule, which the node cannot check.
    Keyless { rule: String },
}

/// The policy for installer `name` from `config`'s rules, else the default key under `root`.
pub fn policy(name: &str, config: Option<&Config>, root: &Path) -> Result<Policy, MachinedError> {
    let repository = installer::repository_of(name);
    let rules = config
        .into_iter()
        .flat_map(|c| c.documents.iter())
        .filter_map(|d| match d {
            Document::ImageVerification(v) => Some(v),
            _ => None,
        })
        .flat_map(|v| v.rules.iter());
    for (index, rule) in rules.enumerate() {
        let pattern = rule.image.as_deref().unwrap_or_default();
        if !crate::glob::matches(pattern, repository) {
            continue;
        }
        let at = format!("ImageVerificationConfig.rules[{index}] (image {pattern:?})");
        return rule_policy(rule, at);
    }
    let path = root.join(DEFAULT_KEY);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        MachinedError::FailedPrecondition(format!(
            "installer {name}: no ImageVerificationConfig rule matches {repository} and the \
             node has no default signing key ({}: {e}); refusing an image it cannot verify",
            path.display()
        ))
    })?;
    let key = cosign::PublicKey::from_pem(&text)
        .map_err(|e| MachinedError::FailedPrecondition(format!("{}: {e}", path.display())))?;
    Ok(Policy::Keys {
        keys: vec![key],
        source: format!("the image's default key {}", path.display()),
    })
}

fn rule_policy(rule: &ImageVerificationRule, at: String) -> Result<Policy, MachinedError> {
    if rule.skip == Some(true) {
        return Ok(Policy::Skip { rule: at });
    }
    if rule.deny == Some(true) {
        return Ok(Policy::Deny { rule: at });
    }
    if let Some(pem) = rule
        .public_key
        .as_ref()
        .and_then(|k| k.certificate.as_deref())
    {
        let key = cosign::PublicKey::from_pem(pem)
            .map_err(|e| MachinedError::InvalidArgument(format!("{at}.publicKey: {e}")))?;
        return Ok(Policy::Keys {
            keys: vec![key],
            source: at,
        });
    }
    Ok(Policy::Keyless { rule: at })
}

/// Checks `unpacked`'s signatures against `policy`; the error names the image and the reason.
pub fn check(unpacked: &installer::Unpacked, policy: &Policy) -> Result<(), MachinedError> {
    let image = format!("installer {} ({})", unpacked.name, unpacked.digest);
    let refuse = |reason: String| {
        Err(MachinedError::PermissionDenied(format!(
            "{image}: {reason}"
        )))
    };
    match policy {
        Policy::Skip { rule } => {
            tracing::warn!("{image}: signature not checked: {rule} skips it");
            Ok(())
        }
        Policy::Deny { rule } => refuse(format!("refused by {rule}")),
        Policy::Keyless { rule } => refuse(format!(
            "{rule} asks for keyless (Sigstore) verification, which this node cannot do"
        )),
        Policy::Keys { keys, source } => {
            if unpacked.signatures.is_empty() {
                return refuse(format!("not signed; {source} must sign it"));
            }
            let mut reasons = Vec::new();
            for signature in &unpacked.signatures {
                let named = cosign::payload_digest(&signature.payload).map_err(|e| e.to_string());
                match named {
                    Ok(digest) if digest != unpacked.digest => reasons.push(format!(
                        "a signature vouches for {digest}, not this manifest"
                    )),
                    Ok(_) => {
                        for key in keys {
                            match key.verify(
                                "the manifest",
                                &signature.payload,
                                &signature.signature,
                            ) {
                                Ok(()) => return Ok(()),
                                Err(error) => reasons.push(error.to_string()),
                            }
                        }
                    }
                    Err(error) => reasons.push(error),
                }
            }
            refuse(format!(
                "no valid signature by {source}: {}",
                reasons.join("; ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &cosign::SigningKey, digest: &str) -> installer::Unpacked {
        let payload = cosign::payload("ghcr.io/talos-rs/installer", digest);
        installer::Unpacked {
            name: "ghcr.io/talos-rs/installer:v2".into(),
            release: "v2".into(),
            digest: "sha256:aa".into(),
            size: 1,
            signatures: vec![installer::Signature {
                signature: key.sign(&payload).unwrap(),
                payload,
            }],
        }
    }

    fn root_with_key(key: &cosign::SigningKey) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join(DEFAULT_KEY);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, key.public_key().to_pem()).unwrap();
        root
    }

    fn config(rules: &str) -> Config {
        Config::from_yaml(&format!(
            "apiVersion: v1alpha1\nkind: ImageVerificationConfig\nrules:\n{rules}"
        ))
        .unwrap()
    }

    #[test]
    fn the_default_key_accepts_its_signature_and_refuses_others() {
        let key = cosign::SigningKey::generate().unwrap();
        let root = root_with_key(&key);
        let policy = policy("ghcr.io/talos-rs/installer:v2", None, root.path()).unwrap();
        check(&signed(&key, "sha256:aa"), &policy).unwrap();

        let other = cosign::SigningKey::generate().unwrap();
        let error = check(&signed(&other, "sha256:aa"), &policy)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no valid signature by the image's default key"),
            "{error}"
        );
        assert!(error.contains("ghcr.io/talos-rs/installer:v2"), "{error}");

        let mut unsigned = signed(&key, "sha256:aa");
        unsigned.signatures.clear();
        let error = check(&unsigned, &policy).unwrap_err().to_string();
        assert!(error.contains("not signed"), "{error}");

        let error = check(&signed(&key, "sha256:bb"), &policy)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("vouches for sha256:bb, not this manifest"),
            "{error}"
        );
    }

    #[test]
    fn without_any_key_nothing_is_accepted() {
        let root = tempfile::tempdir().unwrap();
        let error = policy("ghcr.io/talos-rs/installer:v2", None, root.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("no default signing key"), "{error}");
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let ours = cosign::SigningKey::generate().unwrap();
        let theirs = cosign::SigningKey::generate().unwrap();
        let root = root_with_key(&ours);
        let pem = theirs.public_key().to_pem().replace('\n', "\n          ");
        let config = config(&format!(
            "  - image: docker.io/*\n    deny: true\n\
             \x20 - image: ghcr.io/talos-rs/*\n    publicKey:\n      certificate: |\n          {pem}\n\
             \x20 - image: \"*\"\n    skip: true\n"
        ));
        let rule = policy("ghcr.io/talos-rs/installer:v2", Some(&config), root.path()).unwrap();
        check(&signed(&theirs, "sha256:aa"), &rule).unwrap();
        assert!(check(&signed(&ours, "sha256:aa"), &rule).is_err());

        let denied = policy("docker.io/x/installer:v2", Some(&config), root.path()).unwrap();
        let error = check(&signed(&ours, "sha256:aa"), &denied)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("refused by ImageVerificationConfig.rules[0]"),
            "{error}"
        );

        let skipped = policy("quay.io/x/installer:v2", Some(&config), root.path()).unwrap();
        let mut unsigned = signed(&ours, "sha256:aa");
        unsigned.signatures.clear();
        check(&unsigned, &skipped).unwrap();
    }
}
