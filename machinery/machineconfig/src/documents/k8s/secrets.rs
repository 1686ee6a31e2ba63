//! Kinds that carry cluster secrets: `KubeAPIServerCAConfig`, `KubeAggregatorCAConfig`,
//! `KubeServiceAccountConfig`, `KubeEtcdEncryptionConfig`.
//!
//! Certificates and keys are PEM text as written (not base64 like the v1alpha1 document).
//! Upstream redacts the CA keys, the service account key and the `secret` values of the etcd
//! encryption configuration when it prints a config; talos-rs has no redaction mechanism yet,
//! so these kinds are written back in full.

use pki::{CertificateInfo, PrivateKey};
use serde::{Deserialize, Serialize};
use serde_norway::Mapping;

use super::{conflict, v1alpha1_cluster};
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

/// A CA certificate and its private key, both PEM.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertificateAndKey {
    /// The certificate (PEM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cert: String,
    /// The private key (PEM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

document_kind! {
    /// `KubeAPIServerCAConfig`: the Kubernetes CA that issues API server and client
    /// certificates, and extra CAs the API server trusts.
    pub struct KubeApiServerCaConfig = "KubeAPIServerCAConfig" {
        /// The issuing CA (the key is present on control plane nodes only).
        #[serde(rename = "issuingCA", default, skip_serializing_if = "Option::is_none")]
        pub issuing_ca: Option<CertificateAndKey>,
        /// Extra trusted CA certificates (PEM), e.g. while rotating the CA.
        #[serde(rename = "acceptedCAs", default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub accepted_cas: Vec<String>,
    }
}

document_kind! {
    /// `KubeAggregatorCAConfig`: the front-proxy (aggregation layer) CA.
    pub struct KubeAggregatorCaConfig = "KubeAggregatorCAConfig" {
        /// The issuing CA (required).
        #[serde(rename = "issuingCA", default, skip_serializing_if = "Option::is_none")]
        pub issuing_ca: Option<CertificateAndKey>,
        /// Extra trusted CA certificates (PEM).
        #[serde(rename = "acceptedCAs", default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub accepted_cas: Vec<String>,
    }
}

document_kind! {
    /// `KubeServiceAccountConfig`: how service account tokens are signed and which are accepted.
    pub struct KubeServiceAccountConfig = "KubeServiceAccountConfig" {
        /// The signing key and issuer (required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub issuer: Option<ServiceAccountIssuer>,
        /// Other keys, issuers and audiences tokens may come with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub accepted: Option<ServiceAccountAccepted>,
    }
}

/// `KubeServiceAccountConfig.issuer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceAccountIssuer {
    /// The signing private key (PEM; required).
    #[serde(default)]
    pub private_key: String,
    /// The issuer URL put in tokens (required).
    #[serde(rename = "issuerURL", default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
}

/// `KubeServiceAccountConfig.accepted`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceAccountAccepted {
    /// Extra public keys (PEM) whose tokens are accepted.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub public_keys: Vec<String>,
    /// Extra issuer URLs whose tokens are accepted.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub issuers: Vec<String>,
    /// Accepted audiences (default: the issuer URL).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub audiences: Vec<String>,
}

document_kind! {
    /// `KubeEtcdEncryptionConfig`: how the API server encrypts resources stored in etcd.
    pub struct KubeEtcdEncryptionConfig = "KubeEtcdEncryptionConfig" {
        /// The `EncryptionConfiguration` object (required).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub config: Mapping,
    }
}

impl CheckDocument for KubeApiServerCaConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(ca) = &self.issuing_ca {
            check_issuing_ca(&format!("{kind}.issuingCA"), ca, f);
        }
        check_accepted_cas(&format!("{kind}.acceptedCAs"), &self.accepted_cas, f);
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.ca.is_some()) {
            conflict(f, kind, "cluster.ca");
        }
    }
}

impl CheckDocument for KubeAggregatorCaConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        match &self.issuing_ca {
            Some(ca) => check_issuing_ca(&format!("{kind}.issuingCA"), ca, f),
            None => f.error(format!("{kind}.issuingCA"), "issuingCA is required"),
        }
        check_accepted_cas(&format!("{kind}.acceptedCAs"), &self.accepted_cas, f);
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.aggregator_ca.is_some()) {
            conflict(f, kind, "cluster.aggregatorCA");
        }
    }
}

impl CheckDocument for KubeServiceAccountConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let missing = ServiceAccountIssuer::default();
        let issuer = self.issuer.as_ref().unwrap_or(&missing);
        if issuer.private_key.is_empty() {
            f.error(
                format!("{kind}.issuer.privateKey"),
                "the issuer's private key is required",
            );
        } else if let Err(err) = PrivateKey::from_pem(&issuer.private_key) {
            f.error(format!("{kind}.issuer.privateKey"), err.to_string());
        }
        match issuer.issuer_url.as_deref() {
            None | Some("") => f.error(
                format!("{kind}.issuer.issuerURL"),
                "the issuer URL is required",
            ),
            Some(url) => f.check(format!("{kind}.issuer.issuerURL"), formats::url(url)),
        }
        if let Some(accepted) = &self.accepted {
            for (i, url) in accepted.issuers.iter().enumerate() {
                f.check(format!("{kind}.accepted.issuers[{i}]"), formats::url(url));
            }
        }
        if v1alpha1_cluster(v1alpha1).is_some_and(|c| c.service_account.is_some()) {
            conflict(f, kind, "cluster.serviceAccount");
        }
    }
}

impl CheckDocument for KubeEtcdEncryptionConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.config.is_empty() {
            f.error(
                format!("{kind}.config"),
                "the encryption configuration is required",
            );
        }
        let Some(cluster) = v1alpha1_cluster(v1alpha1) else {
            return;
        };
        for (key, secret) in [
            (
                "cluster.secretboxEncryptionSecret",
                &cluster.secretbox_encryption_secret,
            ),
            (
                "cluster.aescbcEncryptionSecret",
                &cluster.aescbc_encryption_secret,
            ),
        ] {
            if secret.as_deref().is_some_and(|s| !s.is_empty()) {
                conflict(f, kind, key);
            }
        }
    }
}

/// An issuing CA: both halves present, the certificate and the key readable.
fn check_issuing_ca(path: &str, ca: &CertificateAndKey, f: &mut Findings) {
    if ca.cert.is_empty() {
        f.error(format!("{path}.cert"), "the certificate is required");
    } else if let Err(err) = certificate_blocks(&ca.cert) {
        f.error(format!("{path}.cert"), err);
    } else if let Err(err) = CertificateInfo::from_pem(&ca.cert) {
        f.error(format!("{path}.cert"), err.to_string());
    }
    if ca.key.is_empty() {
        f.error(format!("{path}.key"), "the key is required");
    } else if let Err(err) = PrivateKey::from_pem(&ca.key) {
        f.error(format!("{path}.key"), err.to_string());
    }
}

/// Accepted CAs: PEM text made of `CERTIFICATE` blocks only.
fn check_accepted_cas(path: &str, cas: &[String], f: &mut Findings) {
    for (i, ca) in cas.iter().enumerate() {
        f.check(format!("{path}[{i}]"), certificate_blocks(ca));
    }
}

/// Checks that `text` holds at least one PEM block and that every block is a `CERTIFICATE`.
fn certificate_blocks(text: &str) -> Result<(), String> {
    let mut blocks = 0;
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        if !lines.any(|line| line == end) {
            return Err(format!("PEM block {label:?} is not closed"));
        }
        if label != "CERTIFICATE" {
            return Err(format!(
                "PEM block {label:?} found where only CERTIFICATE blocks are allowed"
            ));
        }
        blocks += 1;
    }
    if blocks == 0 {
        Err("no PEM certificate found".to_string())
    } else {
        Ok(())
    }
}
