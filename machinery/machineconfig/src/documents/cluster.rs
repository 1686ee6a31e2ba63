//! Cluster kinds: `DiscoveryIdentityConfig`, `DiscoveryServiceConfig`.

use super::network::{named, require_name};
use super::{CheckDocument, Document, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

document_kind! {
    /// `DiscoveryIdentityConfig`: the cluster's discovery identity.
    pub struct DiscoveryIdentityConfig = "DiscoveryIdentityConfig" {
        /// Cluster ID (base64 of 32 random bytes).
        #[serde(rename = "clusterID", default, skip_serializing_if = "Option::is_none")]
        pub cluster_id: Option<String>,
        /// Cluster secret (base64 of 32 random bytes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cluster_secret: Option<String>,
    }
}

impl CheckDocument for DiscoveryIdentityConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.cluster_id.as_deref().is_none_or(str::is_empty) {
            f.error(format!("{kind}.clusterID"), "clusterID is required");
        }
        if self.cluster_secret.as_deref().is_none_or(str::is_empty) {
            f.error(format!("{kind}.clusterSecret"), "clusterSecret is required");
        }
    }
}

document_kind! {
    /// `DiscoveryServiceConfig`: a discovery service the node registers with.
    pub struct DiscoveryServiceConfig = "DiscoveryServiceConfig", named {
        /// The service's URL (`https://`, `http://` or `grpc://`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub endpoint: Option<String>,
    }
}

impl CheckDocument for DiscoveryServiceConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        let path = named(kind, &self.name);
        match self.endpoint.as_deref().filter(|e| !e.is_empty()) {
            None => f.error(format!("{path}.endpoint"), "endpoint is required"),
            Some(endpoint) => f.check(format!("{path}.endpoint"), discovery_endpoint(endpoint)),
        }
        let legacy = v1alpha1
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.discovery.as_ref());
        if legacy.is_some() {
            f.error(
                path,
                "the discovery service is already configured in the v1alpha1 document (cluster.discovery)",
            );
        }
    }
}

/// A discovery service URL: `http`, `https` or `grpc` with a host.
fn discovery_endpoint(text: &str) -> Result<(), String> {
    let url = formats::url(text)?;
    match url.scheme() {
        "http" | "https" | "grpc" => Ok(()),
        other => Err(format!(
            "{text:?}: scheme {other:?} is not http, https or grpc"
        )),
    }
}

/// Whether the v1alpha1 document turns the discovery service on (`cluster.discovery`).
fn v1alpha1_discovery_service(v1alpha1: Option<&V1Alpha1Config>) -> bool {
    v1alpha1
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.discovery.as_ref())
        .is_some_and(|d| {
            d.enabled == Some(true)
                && d.registries
                    .as_ref()
                    .and_then(|r| r.service.as_ref())
                    .is_none_or(|s| s.disabled != Some(true))
        })
}

/// Whether the cluster has a discovery service: in the v1alpha1 document or as documents.
pub(crate) fn discovery_enabled(documents: &[Document], v1alpha1: Option<&V1Alpha1Config>) -> bool {
    v1alpha1_discovery_service(v1alpha1)
        || documents
            .iter()
            .any(|d| matches!(d, Document::DiscoveryService(_)))
}

/// Checks across documents: a `DiscoveryServiceConfig` needs the cluster identity (ID and
/// secret), from the v1alpha1 document (`cluster.id`, `cluster.secret`) or a
/// `DiscoveryIdentityConfig`.
pub(crate) fn check_across(
    documents: &[Document],
    v1alpha1: Option<&V1Alpha1Config>,
    f: &mut Findings,
) {
    let Some(first) = documents.iter().find_map(|d| match d {
        Document::DiscoveryService(service) => Some(service),
        _ => None,
    }) else {
        return;
    };
    let legacy = v1alpha1.and_then(|c| c.cluster.as_ref()).filter(|c| {
        c.id.as_deref().is_some_and(|id| !id.is_empty())
            || c.secret.as_deref().is_some_and(|s| !s.is_empty())
    });
    let (id, secret) = match legacy {
        Some(cluster) => (cluster.id.clone(), cluster.secret.clone()),
        None => documents
            .iter()
            .find_map(|d| match d {
                Document::DiscoveryIdentity(identity) => {
                    Some((identity.cluster_id.clone(), identity.cluster_secret.clone()))
                }
                _ => None,
            })
            .unwrap_or_default(),
    };
    let path = named(DiscoveryServiceConfig::KIND, &first.name);
    if id.as_deref().is_none_or(str::is_empty) {
        f.error(
            path.clone(),
            "the discovery service needs a cluster ID (cluster.id, or a DiscoveryIdentityConfig document)",
        );
    }
    if secret.as_deref().is_none_or(str::is_empty) {
        f.error(
            path,
            "the discovery service needs a cluster secret (cluster.secret, or a DiscoveryIdentityConfig document)",
        );
    }
}
