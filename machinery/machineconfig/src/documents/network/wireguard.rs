//! `WireguardConfig`: a WireGuard link and its peers.

use serde::{Deserialize, Serialize};

use super::common::{check_link, link_kind, named, require_name};
use crate::GoDuration;
use crate::documents::{CheckDocument, DocumentKind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

link_kind! {
    /// `WireguardConfig`: a WireGuard link.
    pub struct WireguardConfig = "WireguardConfig" {
        /// The link's private key (base64).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub private_key: Option<String>,
        /// UDP port to listen on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub listen_port: Option<i64>,
        /// Firewall mark of outgoing packets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub firewall_mark: Option<i64>,
        /// Peers.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub peers: Vec<WireguardPeer>,
    }
}

/// `WireguardConfig.peers[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WireguardPeer {
    /// The peer's public key (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Optional preshared key (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preshared_key: Option<String>,
    /// The peer's `address:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Keepalive interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_keepalive_interval: Option<GoDuration>,
    /// Prefixes routed to the peer.
    #[serde(
        rename = "allowedIPs",
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_ips: Vec<String>,
}

/// An `IP:port` (IPv6 in brackets).
pub(super) fn ip_port(text: &str) -> Result<(), String> {
    text.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| format!("{text:?} is not a valid address:port"))
}

impl CheckDocument for WireguardConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        let path = named(kind, &self.name);
        match self.private_key.as_deref() {
            None | Some("") => f.error(format!("{path}.privateKey"), "privateKey is required"),
            Some(key) => f.check(format!("{path}.privateKey"), formats::wireguard_key(key)),
        }
        if let Some(port) = self.listen_port
            && !(0..=65535).contains(&port)
        {
            f.error(
                format!("{path}.listenPort"),
                format!("{port} is not a port (0 to 65535)"),
            );
        }
        for (i, peer) in self.peers.iter().enumerate() {
            let at = format!("{path}.peers[{i}]");
            match peer.public_key.as_deref() {
                None | Some("") => f.error(format!("{at}.publicKey"), "publicKey is required"),
                Some(key) => f.check(format!("{at}.publicKey"), formats::wireguard_key(key)),
            }
            if let Some(key) = peer.preshared_key.as_deref().filter(|k| !k.is_empty()) {
                f.check(format!("{at}.presharedKey"), formats::wireguard_key(key));
            }
            if let Some(endpoint) = &peer.endpoint {
                f.check(format!("{at}.endpoint"), ip_port(endpoint));
            }
            for (j, allowed) in peer.allowed_ips.iter().enumerate() {
                f.check(format!("{at}.allowedIPs[{j}]"), formats::cidr(allowed));
            }
        }
        check_link(&path, &self.addresses, &self.routes, f);
    }
}
