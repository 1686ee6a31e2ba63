//! KubeSpan kinds: `KubeSpanConfig`, `KubeSpanEndpointsConfig`.

use serde::{Deserialize, Serialize};

use super::wireguard::ip_port;
use crate::documents::{CheckDocument, Document, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

/// The smallest MTU of the KubeSpan link.
const KUBESPAN_MINIMUM_MTU: u32 = 1280;

document_kind! {
    /// `KubeSpanConfig`: the WireGuard mesh between cluster nodes.
    pub struct KubeSpanConfig = "KubeSpanConfig" {
        /// Turns KubeSpan on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enabled: Option<bool>,
        /// Route pod networks over KubeSpan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub advertise_kubernetes_networks: Option<bool>,
        /// Let traffic bypass peers that are down.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allow_down_peer_bypass: Option<bool>,
        /// Learn extra endpoints from peers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub harvest_extra_endpoints: Option<bool>,
        /// MTU of the KubeSpan link (at least 1280).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mtu: Option<u32>,
        /// Endpoint and network filters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub filters: Option<KubeSpanFilters>,
    }
}

/// `KubeSpanConfig.filters`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeSpanFilters {
    /// Subnets (or `!`-negated subnets) of endpoints to announce.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub endpoints: Vec<String>,
    /// Networks not to advertise.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude_advertised_networks: Vec<String>,
}

impl CheckDocument for KubeSpanConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(mtu) = self.mtu
            && mtu < KUBESPAN_MINIMUM_MTU
        {
            f.error(
                format!("{kind}.mtu"),
                format!("the KubeSpan MTU must be at least {KUBESPAN_MINIMUM_MTU}"),
            );
        }
        if let Some(filters) = &self.filters {
            for (i, endpoint) in filters.endpoints.iter().enumerate() {
                f.check(
                    format!("{kind}.filters.endpoints[{i}]"),
                    formats::subnet_filter(endpoint),
                );
            }
            for (i, network) in filters.exclude_advertised_networks.iter().enumerate() {
                f.check(
                    format!("{kind}.filters.excludeAdvertisedNetworks[{i}]"),
                    formats::cidr(network),
                );
            }
        }
        let legacy = v1alpha1
            .and_then(|c| c.machine.as_ref())
            .and_then(|m| m.network.as_ref())
            .and_then(|n| n.kubespan.as_ref());
        if legacy.is_some() {
            f.error(
                kind,
                "KubeSpan is already configured in the v1alpha1 document (machine.network.kubespan)",
            );
        }
    }
}

document_kind! {
    /// `KubeSpanEndpointsConfig`: extra endpoints announced to KubeSpan peers.
    pub struct KubeSpanEndpointsConfig = "KubeSpanEndpointsConfig" {
        /// `address:port` endpoints announced besides the discovered ones.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize")]
        pub extra_announced_endpoints: Vec<String>,
    }
}

impl CheckDocument for KubeSpanEndpointsConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        for (i, endpoint) in self.extra_announced_endpoints.iter().enumerate() {
            f.check(
                format!("{}.extraAnnouncedEndpoints[{i}]", Self::KIND),
                ip_port(endpoint),
            );
        }
    }
}

/// Checks across documents: KubeSpan turned on by a `KubeSpanConfig` needs cluster discovery.
pub(super) fn check_across(
    documents: &[Document],
    v1alpha1: Option<&V1Alpha1Config>,
    f: &mut Findings,
) {
    let enabled = documents
        .iter()
        .any(|d| matches!(d, Document::KubeSpan(k) if k.enabled == Some(true)));
    if enabled && !crate::documents::discovery_enabled(documents, v1alpha1) {
        f.error(
            format!("{}.enabled", KubeSpanConfig::KIND),
            "KubeSpan needs cluster discovery (a DiscoveryServiceConfig document, or cluster.discovery in the v1alpha1 document)",
        );
    }
}
