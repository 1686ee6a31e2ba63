//! `machine.registries`: registry mirrors and per-registry TLS and authentication.

use std::collections::BTreeMap;

use pki::PemCertificateAndKey;
use serde::{Deserialize, Serialize};

/// `machine.registries`. Map values are `Option`s because YAML may hold `host:` with no value,
/// which validation rejects with the host named.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistriesConfig {
    /// Registry host (or `*`) to mirror settings.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub mirrors: BTreeMap<String, Option<RegistryMirror>>,
    /// Registry host to TLS and authentication settings.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub config: BTreeMap<String, Option<RegistryConfig>>,
}

/// `machine.registries.mirrors.<host>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryMirror {
    /// Mirror endpoints, tried in order.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub endpoints: Vec<String>,
    /// The endpoint paths are used as given (no `/v2` appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_path: Option<bool>,
    /// Do not fall back to the upstream registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_fallback: Option<bool>,
}

/// `machine.registries.config.<host>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryConfig {
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RegistryTls>,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RegistryAuth>,
}

/// `machine.registries.config.<host>.tls`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryTls {
    /// Client certificate and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_identity: Option<PemCertificateAndKey>,
    /// Base64 of the PEM CA bundle trusted for this registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Skip server certificate verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

/// `machine.registries.config.<host>.auth`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryAuth {
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Base64 `user:password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Identity token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_token: Option<String>,
}
