//! CRI kinds: `RegistryMirrorConfig`, `RegistryAuthConfig`, `RegistryTLSConfig`,
//! `CRICustomizationConfig`, `CRIBaseRuntimeSpecConfig`, `ImageCacheConfig`.

use pki::CertificateInfo;
use serde::{Deserialize, Serialize};

use super::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats, kubernetes_names};

/// The name reserved for the CRI customization carried over from the v1alpha1 document.
const LEGACY_CUSTOMIZATION_NAME: &str = "customization";

document_kind! {
    /// `RegistryMirrorConfig`: mirrors of one image registry (the name is the registry host,
    /// or `*` for all).
    pub struct RegistryMirrorConfig = "RegistryMirrorConfig", named {
        /// Mirror endpoints, tried in order.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub endpoints: Vec<RegistryEndpoint>,
        /// Do not fall back to the registry itself when every mirror fails.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub skip_fallback: Option<bool>,
    }
}

/// `RegistryMirrorConfig.endpoints[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryEndpoint {
    /// The mirror's URL (`http` or `https`).
    #[serde(default)]
    pub url: String,
    /// Use the URL's path as is instead of appending `/v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_path: Option<bool>,
}

document_kind! {
    /// `RegistryAuthConfig`: credentials for one registry host.
    pub struct RegistryAuthConfig = "RegistryAuthConfig", named {
        /// User name (with `password`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub username: Option<String>,
        /// Password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub password: Option<String>,
        /// Base64 `user:password`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auth: Option<String>,
        /// An identity token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub identity_token: Option<String>,
    }
}

document_kind! {
    /// `RegistryTLSConfig`: TLS settings for one registry host.
    pub struct RegistryTlsConfig = "RegistryTLSConfig", named {
        /// Client certificate and key (PEM).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_identity: Option<CertificateAndKey>,
        /// CA certificates (PEM) the registry's certificate is checked against.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ca: Option<String>,
        /// Skip verifying the registry's certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub insecure_skip_verify: Option<bool>,
    }
}

/// A PEM certificate and its key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertificateAndKey {
    /// The certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// The private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

document_kind! {
    /// `CRICustomizationConfig`: a containerd configuration fragment.
    pub struct CriCustomizationConfig = "CRICustomizationConfig", named {
        /// The TOML fragment.
        #[serde(default)]
        pub content: String,
    }
}

document_kind! {
    /// `CRIBaseRuntimeSpecConfig`: overrides of the OCI runtime spec every container starts from.
    pub struct CriBaseRuntimeSpecConfig = "CRIBaseRuntimeSpecConfig" {
        /// Parts of an OCI runtime spec, kept as written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub overrides: Option<serde_norway::Value>,
    }
}

document_kind! {
    /// `ImageCacheConfig`: the node-local image cache.
    pub struct ImageCacheConfig = "ImageCacheConfig" {
        /// The local cache.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub local: Option<LocalImageCache>,
    }
}

/// `ImageCacheConfig.local`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalImageCache {
    /// Turns the local cache on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Whether an optional string is set and not empty.
fn is_set(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// A TOML parse error as one line: its line in `text` and what was wrong.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("not valid TOML (line {line} of the content): {message}")
        }
        None => format!("not valid TOML: {message}"),
    }
}

/// A PEM block of any type: `-----BEGIN X-----`, base64, `-----END X-----`.
fn pem_block(text: &str) -> Result<(), String> {
    let begin = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"));
    match begin {
        Some(label) if text.contains(&format!("-----END {label}-----")) => Ok(()),
        _ => Err("not a PEM-encoded block".to_string()),
    }
}

impl CheckDocument for RegistryMirrorConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.name.is_empty() {
            f.error(format!("{kind}.name"), "the registry name is required");
        } else {
            f.check(format!("{kind}.name"), formats::registry_host(&self.name));
        }
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let path = format!("{kind} {:?}.endpoints[{i}].url", self.name);
            if endpoint.url.is_empty() {
                f.error(path, "the URL is required");
            } else {
                f.check(path, formats::http_url(&endpoint.url));
            }
        }
    }
}

impl CheckDocument for RegistryAuthConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.name.is_empty() {
            f.error(format!("{kind}.name"), "the registry name is required");
        } else {
            f.check(format!("{kind}.name"), formats::registry_host(&self.name));
        }
        let path = format!("{kind} {:?}", self.name);
        let username = is_set(&self.username);
        let token = is_set(&self.identity_token);
        if username && token {
            f.error(
                &path,
                "username/password and identityToken are mutually exclusive",
            );
        }
        if is_set(&self.auth) && (username || token) {
            f.error(
                format!("{path}.auth"),
                "auth cannot be combined with username/password or identityToken",
            );
        }
    }
}

impl CheckDocument for RegistryTlsConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.name.is_empty() {
            f.error(format!("{kind}.name"), "the registry name is required");
        } else {
            f.check(format!("{kind}.name"), formats::registry_host(&self.name));
        }
        let path = format!("{kind} {:?}", self.name);
        let effective = is_set(&self.ca)
            || self.client_identity.is_some()
            || self.insecure_skip_verify.unwrap_or(false);
        if self.name == "*" && effective {
            f.error(
                format!("{kind}.name"),
                "TLS settings for every registry (\"*\") are not supported: containerd's host files cannot express them",
            );
        }
        if let Some(ca) = self.ca.as_deref().filter(|ca| !ca.is_empty())
            && CertificateInfo::from_pem(ca).is_err()
        {
            f.error(format!("{path}.ca"), "not a valid PEM-encoded certificate");
        }
        if let Some(identity) = &self.client_identity {
            let path = format!("{path}.clientIdentity");
            match identity.cert.as_deref().filter(|c| !c.is_empty()) {
                None => f.error(format!("{path}.cert"), "the certificate is required"),
                Some(cert) => {
                    if let Err(err) = CertificateInfo::from_pem(cert) {
                        f.error(
                            format!("{path}.cert"),
                            format!("not a valid PEM-encoded certificate: {err}"),
                        );
                    }
                }
            }
            match identity.key.as_deref().filter(|k| !k.is_empty()) {
                None => f.error(format!("{path}.key"), "the key is required"),
                Some(key) => f.check(format!("{path}.key"), pem_block(key)),
            }
        }
    }
}

impl CheckDocument for CriCustomizationConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        f.check(
            format!("{kind}.name"),
            kubernetes_names::qualified_name(&self.name),
        );
        if let Err(error) = self.content.parse::<toml::Table>() {
            f.error(
                format!("{kind} {:?}.content", self.name),
                toml_problem(&self.content, &error),
            );
        }
        if self.name == LEGACY_CUSTOMIZATION_NAME {
            f.error(
                format!("{kind}.name"),
                format!(
                    "{LEGACY_CUSTOMIZATION_NAME:?} is reserved for the customization from the v1alpha1 document"
                ),
            );
        }
    }
}

impl CheckDocument for CriBaseRuntimeSpecConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(overrides) = &self.overrides
            && !overrides.is_mapping()
            && !overrides.is_null()
        {
            f.error(
                format!("{kind}.overrides"),
                "the overrides must be a mapping (parts of an OCI runtime spec)",
            );
        }
        if v1alpha1
            .and_then(|c| c.machine.as_ref())
            .is_some_and(|m| m.base_runtime_spec_overrides.is_some())
        {
            f.error(
                kind,
                "the v1alpha1 document also sets machine.baseRuntimeSpecOverrides; use one or the other",
            );
        }
    }
}

impl CheckDocument for ImageCacheConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if v1alpha1
            .and_then(|c| c.machine.as_ref())
            .and_then(|m| m.features.as_ref())
            .is_some_and(|features| features.image_cache.is_some())
        {
            f.error(
                kind,
                "the v1alpha1 document also configures the image cache (machine.features.imageCache); use one or the other",
            );
        }
    }
}
