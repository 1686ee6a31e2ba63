//! Security kinds: `TrustedRootsConfig`, `ImageVerificationConfig`.

use serde::{Deserialize, Serialize};

use super::network::{named, require_name};
use super::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

document_kind! {
    /// `TrustedRootsConfig`: extra CA certificates trusted by the node.
    pub struct TrustedRootsConfig = "TrustedRootsConfig", named {
        /// PEM certificates, one after another.
        #[serde(default)]
        pub certificates: String,
    }
}

impl CheckDocument for TrustedRootsConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        if !self.certificates.contains("-----BEGIN CERTIFICATE-----") {
            f.error(
                format!("{}.certificates", named(kind, &self.name)),
                "certificates must hold at least one PEM certificate",
            );
        }
    }
}

document_kind! {
    /// `ImageVerificationConfig`: signature verification of container images; the first rule
    /// whose pattern matches an image applies.
    pub struct ImageVerificationConfig = "ImageVerificationConfig" {
        /// Rules, in order.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub rules: Vec<ImageVerificationRule>,
    }
}

/// `ImageVerificationConfig.rules[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageVerificationRule {
    /// Glob over the image's registry and repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Do not verify matching images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<bool>,
    /// Refuse matching images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<bool>,
    /// Cosign keyless verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessVerifier>,
    /// Verification with a public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyVerifier>,
}

/// `ImageVerificationConfig.rules[].keyless`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeylessVerifier {
    /// OIDC issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Expected signer identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Regular expression over the signer identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_regex: Option<String>,
}

/// `ImageVerificationConfig.rules[].publicKey`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicKeyVerifier {
    /// PEM certificate whose key signs the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

fn is_set(value: Option<&String>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

impl CheckDocument for ImageVerificationConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("{kind}.rules[{i}]");
            let image = rule.image.as_deref().unwrap_or("");
            if image.is_empty() {
                f.error(format!("{at}.image"), "image pattern is required");
            } else {
                let ignored = "matching only looks at the registry and repository";
                if image.contains('@') {
                    f.warn(
                        format!("{at}.image"),
                        format!("the pattern has a digest ('@') but {ignored}"),
                    );
                }
                if image
                    .split_once('/')
                    .is_some_and(|(_, rest)| rest.contains(':'))
                {
                    f.warn(
                        format!("{at}.image"),
                        format!("the pattern has a tag (':') but {ignored}"),
                    );
                }
                if !image.contains('/') && image != "*" {
                    f.warn(
                        format!("{at}.image"),
                        "a pattern without '/' is matched against normalized references (nginx is docker.io/library/nginx)",
                    );
                }
            }
            let skip = rule.skip == Some(true);
            let deny = rule.deny == Some(true);
            let has_verifier = rule.keyless.is_some() || rule.public_key.is_some();
            if skip && deny {
                f.error(at.clone(), "skip and deny can not both be true");
            }
            if (skip || deny) && has_verifier {
                f.error(
                    at.clone(),
                    "a rule that skips or denies can not have verifiers",
                );
            }
            if !skip && !deny && !has_verifier {
                f.error(
                    at.clone(),
                    "a rule needs a verifier (keyless or publicKey), skip or deny",
                );
            }
            if rule.keyless.is_some() && rule.public_key.is_some() {
                f.error(at.clone(), "keyless and publicKey are mutually exclusive");
            }
            if let Some(keyless) = &rule.keyless {
                if !is_set(keyless.issuer.as_ref()) {
                    f.error(format!("{at}.keyless.issuer"), "issuer is required");
                }
                if !is_set(keyless.subject.as_ref()) && !is_set(keyless.subject_regex.as_ref()) {
                    f.error(
                        format!("{at}.keyless.subject"),
                        "subject or subjectRegex is required",
                    );
                }
            }
            if let Some(public_key) = &rule.public_key
                && !is_set(public_key.certificate.as_ref())
            {
                f.error(
                    format!("{at}.publicKey.certificate"),
                    "certificate is required",
                );
            }
        }
    }
}
