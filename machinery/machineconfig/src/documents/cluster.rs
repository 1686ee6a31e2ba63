//! Cluster kinds: `DiscoveryIdentityConfig`.

use super::document_kind;

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
