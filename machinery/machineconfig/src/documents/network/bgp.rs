//! `BGPInstanceConfig`: a BGP speaker, its neighbors and the routes it imports.

use std::collections::BTreeSet;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::common::{named, require_name};
use crate::GoDuration;
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

document_kind! {
    /// `BGPInstanceConfig`: a BGP instance.
    pub struct BgpInstanceConfig = "BGPInstanceConfig", named {
        /// VRF the instance runs in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub vrf: Option<String>,
        /// Local autonomous system number (required).
        #[serde(rename = "localASN", default, skip_serializing_if = "Option::is_none")]
        pub local_asn: Option<u32>,
        /// Router ID (an IPv4 address).
        #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
        pub router_id: Option<String>,
        /// Source address of installed routes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub route_source: Option<String>,
        /// Links whose addresses are advertised.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub advertise: Vec<String>,
        /// Use several paths to a destination.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub multipath: Option<bool>,
        /// Most paths used with multipath.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_paths: Option<u8>,
        /// Install learned routes into the kernel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub install_routes: Option<bool>,
        /// Routes imported from other instances.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub import_routes: Vec<BgpImportRoute>,
        /// BGP neighbors.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub neighbors: Vec<BgpNeighbor>,
    }
}

/// `BGPInstanceConfig.importRoutes[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpImportRoute {
    /// The instance to import from.
    #[serde(default)]
    pub bgp_instance: String,
    /// The prefixes to import.
    #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize")]
    pub prefixes: Vec<String>,
}

/// `BGPInstanceConfig.neighbors[]`: a peer given by address or by link (unnumbered).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpNeighbor {
    /// Peer address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Link of an unnumbered peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Peer autonomous system number.
    #[serde(rename = "peerASN", default, skip_serializing_if = "Option::is_none")]
    pub peer_asn: Option<u32>,
    /// Local ASN for this peer.
    #[serde(rename = "localASN", default, skip_serializing_if = "Option::is_none")]
    pub local_asn: Option<u32>,
    /// Wait for the peer to connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<bool>,
    /// Hold time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<GoDuration>,
    /// Bidirectional forwarding detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BgpBfd>,
}

/// `BGPInstanceConfig.neighbors[].bfd`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BgpBfd {
    /// Transmit interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmit_interval: Option<GoDuration>,
    /// Receive interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_interval: Option<GoDuration>,
    /// Missed packets before the session is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_multiplier: Option<u8>,
}

/// Whether two prefixes of the same family overlap.
fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl BgpInstanceConfig {
    fn check_neighbors(&self, path: &str, f: &mut Findings) {
        let mut seen = BTreeSet::new();
        for (i, neighbor) in self.neighbors.iter().enumerate() {
            let at = format!("{path}.neighbors[{i}]");
            let address = neighbor.address.as_deref().filter(|a| !a.is_empty());
            let link = neighbor.link.as_deref().filter(|l| !l.is_empty());
            let key = match (address, link) {
                (Some(address), None) => match formats::ip(address) {
                    Ok(ip) => Some(ip.to_string()),
                    Err(message) => {
                        f.error(format!("{at}.address"), message);
                        None
                    }
                },
                (None, Some(link)) => Some(link.to_string()),
                _ => {
                    f.error(at.clone(), "exactly one of address and link must be set");
                    None
                }
            };
            if let Some(key) = key
                && !seen.insert(key.clone())
            {
                f.error(at.clone(), format!("neighbor {key:?} is listed twice"));
            }
            if neighbor.bfd.is_some() && self.vrf.as_deref().is_some_and(|v| !v.is_empty()) {
                f.error(
                    format!("{at}.bfd"),
                    "BFD is not supported for an instance bound to a VRF",
                );
            }
        }
    }

    fn check_imports(&self, path: &str, f: &mut Findings) {
        let mut sources = BTreeSet::new();
        // (route index, prefix) of every valid import prefix so far.
        let mut selected: Vec<(usize, IpNet)> = Vec::new();
        for (i, route) in self.import_routes.iter().enumerate() {
            let at = format!("{path}.importRoutes[{i}]");
            if route.bgp_instance.is_empty() {
                f.error(format!("{at}.bgpInstance"), "bgpInstance is required");
            } else if route.bgp_instance == self.name {
                f.error(
                    format!("{at}.bgpInstance"),
                    "an instance can not import routes from itself",
                );
            } else if !sources.insert(route.bgp_instance.as_str()) {
                f.error(
                    format!("{at}.bgpInstance"),
                    format!("routes from {:?} are imported twice", route.bgp_instance),
                );
            }
            if route.prefixes.is_empty() {
                f.error(format!("{at}.prefixes"), "at least one prefix is required");
            }
            let mut own: Vec<IpNet> = Vec::new();
            for (j, prefix) in route.prefixes.iter().enumerate() {
                let prefix_path = format!("{at}.prefixes[{j}]");
                let net = match formats::cidr(prefix) {
                    Ok(net) => net,
                    Err(message) => {
                        f.error(prefix_path, message);
                        continue;
                    }
                };
                if net != net.trunc() {
                    f.error(
                        prefix_path,
                        format!("{prefix} has host bits set (use {})", net.trunc()),
                    );
                    continue;
                }
                if let Some(other) = own.iter().find(|o| overlap(o, &net)) {
                    f.error(
                        prefix_path.clone(),
                        format!("{net} overlaps {other} of the same route"),
                    );
                }
                if let Some((k, other)) = selected.iter().find(|(_, o)| overlap(o, &net)) {
                    f.error(
                        prefix_path,
                        format!("{net} overlaps {other} of importRoutes[{k}]"),
                    );
                }
                own.push(net);
            }
            selected.extend(own.into_iter().map(|net| (i, net)));
        }
    }
}

impl CheckDocument for BgpInstanceConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        let path = named(kind, &self.name);
        if self.local_asn.is_none_or(|asn| asn == 0) {
            f.error(format!("{path}.localASN"), "localASN is required");
        }
        if let Some(router_id) = &self.router_id {
            match formats::ip(router_id) {
                Ok(ip) if !ip.is_ipv4() => f.error(
                    format!("{path}.routerID"),
                    "routerID must be an IPv4 address",
                ),
                Ok(_) => {}
                Err(message) => f.error(format!("{path}.routerID"), message),
            }
        }
        if let Some(source) = &self.route_source {
            f.check(format!("{path}.routeSource"), formats::ip(source));
        }
        if self.neighbors.is_empty() {
            f.warn(format!("{path}.neighbors"), "no neighbors are configured");
        }
        self.check_neighbors(&path, f);
        self.check_imports(&path, f);
    }
}
