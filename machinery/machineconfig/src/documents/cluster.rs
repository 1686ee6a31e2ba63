//! Cluster kinds: `DiscoveryIdentityConfig`.

use super::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

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
