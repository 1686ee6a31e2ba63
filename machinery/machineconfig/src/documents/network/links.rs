//! Link kinds: `LinkConfig`, `DummyLinkConfig`, `BridgeConfig`, `VLANConfig`, `VRFConfig`,
//! `VethConfig`, `LinkAliasConfig`, `EthernetConfig`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{check_link, hardware_addr, link_kind, named, require_name};
use super::{AddressConfig, RouteConfig, RoutingTable};
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

link_kind! {
    /// `LinkConfig`: settings of a physical link (addresses, routes, MTU).
    pub struct LinkConfig = "LinkConfig" {}
}

link_kind! {
    /// `DummyLinkConfig`: a dummy link.
    pub struct DummyLinkConfig = "DummyLinkConfig" {
        /// Hardware (MAC) address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hardware_addr: Option<String>,
    }
}

link_kind! {
    /// `BridgeConfig`: a bridge over other links.
    pub struct BridgeConfig = "BridgeConfig" {
        /// Hardware (MAC) address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hardware_addr: Option<String>,
        /// Links enslaved to the bridge.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub links: Vec<String>,
        /// Spanning tree settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stp: Option<BridgeStp>,
        /// VLAN settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub vlan: Option<BridgeVlan>,
    }
}

/// `BridgeConfig.stp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BridgeStp {
    /// Turns the spanning tree protocol on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `BridgeConfig.vlan`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BridgeVlan {
    /// Turns VLAN filtering on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtering: Option<bool>,
}

super::common::text_enum! {
    /// The VLAN tag protocol.
    pub enum VlanProtocol {
        /// IEEE 802.1Q.
        Ieee8021Q = "802.1q",
        /// IEEE 802.1ad (QinQ).
        Ieee8021Ad = "802.1ad",
    }
}

link_kind! {
    /// `VLANConfig`: a VLAN on a parent link.
    pub struct VlanConfig = "VLANConfig" {
        /// VLAN ID, 1 to 4094.
        #[serde(rename = "vlanID", default, skip_serializing_if = "Option::is_none")]
        pub vlan_id: Option<u16>,
        /// Tag protocol.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub vlan_mode: Option<VlanProtocol>,
        /// The parent link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parent: Option<String>,
    }
}

link_kind! {
    /// `VRFConfig`: a VRF device and its routing table.
    pub struct VrfConfig = "VRFConfig" {
        /// Hardware (MAC) address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hardware_addr: Option<String>,
        /// Links enslaved to the VRF.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub links: Vec<String>,
        /// The routing table of the VRF (not one of the kernel's own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub table: Option<RoutingTable>,
    }
}

link_kind! {
    /// `VethConfig`: a pair of virtual Ethernet links.
    pub struct VethConfig = "VethConfig" {
        /// The other end of the pair.
        #[serde(default)]
        pub peer: VethPeer,
    }
}

/// `VethConfig.peer`: the peer's name and its own link settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VethPeer {
    /// The peer link's name.
    #[serde(default)]
    pub name: String,
    /// Bring the peer up (or keep it down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
    /// Peer MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Static addresses of the peer.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<AddressConfig>,
    /// Static routes of the peer.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub routes: Vec<RouteConfig>,
    /// Multicast flag of the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multicast: Option<bool>,
}

document_kind! {
    /// `LinkAliasConfig`: gives the link picked by a selector another name (or, with a `%d`
    /// pattern, numbered names to every matching link).
    pub struct LinkAliasConfig = "LinkAliasConfig", named {
        /// How to pick the link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub selector: Option<LinkSelector>,
    }
}

/// `LinkAliasConfig.selector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinkSelector {
    /// A CEL expression over the link (`link.driver == "e1000"`), kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#match: Option<String>,
}

super::common::text_enum! {
    /// A Wake-on-LAN mode.
    pub enum WakeOnLanMode {
        /// Wake on PHY activity.
        Phy = "phy",
        /// Wake on unicast messages.
        Unicast = "unicast",
        /// Wake on multicast messages.
        Multicast = "multicast",
        /// Wake on broadcast messages.
        Broadcast = "broadcast",
        /// Wake on the magic packet.
        Magic = "magic",
        /// Wake on the magic packet with a password.
        Magicsecure = "magicsecure",
        /// Wake on filters.
        Filter = "filter",
    }
}

document_kind! {
    /// `EthernetConfig`: ethtool settings of a link (features, rings, channels, Wake-on-LAN).
    pub struct EthernetConfig = "EthernetConfig", named {
        /// Feature name to on/off.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "BTreeMap::is_empty")]
        pub features: BTreeMap<String, bool>,
        /// Ring buffer sizes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rings: Option<EthernetRings>,
        /// Channel counts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub channels: Option<EthernetChannels>,
        /// Wake-on-LAN modes.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub wake_on_lan: Vec<WakeOnLanMode>,
    }
}

/// `EthernetConfig.rings` (ethtool's own dashed names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EthernetRings {
    /// RX ring size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx: Option<u32>,
    /// TX ring size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<u32>,
    /// RX mini ring size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_mini: Option<u32>,
    /// RX jumbo ring size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_jumbo: Option<u32>,
    /// RX buffer length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_buf_len: Option<u32>,
    /// Completion queue entry size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cqe_size: Option<u32>,
    /// TX push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_push: Option<bool>,
    /// RX push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_push: Option<bool>,
    /// TX push buffer length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_push_buf_len: Option<u32>,
    /// TCP header/data split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_data_split: Option<bool>,
}

/// `EthernetConfig.channels`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EthernetChannels {
    /// RX channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx: Option<u32>,
    /// TX channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<u32>,
    /// Other channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<u32>,
    /// Combined channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combined: Option<u32>,
}

/// Checks the name, hardware address, addresses and routes every link kind has.
fn check_common_link(
    kind: &str,
    name: &str,
    hardware: Option<&String>,
    addresses: &[AddressConfig],
    routes: &[RouteConfig],
    f: &mut Findings,
) {
    require_name(kind, name, f);
    let path = named(kind, name);
    if let Some(hardware) = hardware {
        f.check(format!("{path}.hardwareAddr"), hardware_addr(hardware));
    }
    check_link(&path, addresses, routes, f);
}

impl CheckDocument for LinkConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        check_common_link(
            Self::KIND,
            &self.name,
            None,
            &self.addresses,
            &self.routes,
            f,
        );
    }
}

impl CheckDocument for DummyLinkConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        check_common_link(
            Self::KIND,
            &self.name,
            self.hardware_addr.as_ref(),
            &self.addresses,
            &self.routes,
            f,
        );
    }
}

impl CheckDocument for BridgeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        check_common_link(
            Self::KIND,
            &self.name,
            self.hardware_addr.as_ref(),
            &self.addresses,
            &self.routes,
            f,
        );
    }
}

impl CheckDocument for VlanConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let path = named(Self::KIND, &self.name);
        check_common_link(
            Self::KIND,
            &self.name,
            None,
            &self.addresses,
            &self.routes,
            f,
        );
        if !matches!(self.vlan_id, Some(1..=4094)) {
            f.error(
                format!("{path}.vlanID"),
                "vlanID is required and must be between 1 and 4094",
            );
        }
        if self.parent.as_deref().is_none_or(str::is_empty) {
            f.error(format!("{path}.parent"), "parent link is required");
        }
    }
}

impl CheckDocument for VrfConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let path = named(Self::KIND, &self.name);
        check_common_link(
            Self::KIND,
            &self.name,
            self.hardware_addr.as_ref(),
            &self.addresses,
            &self.routes,
            f,
        );
        let table = self.table.unwrap_or(RoutingTable::Unspec);
        if table.is_reserved() {
            f.error(
                format!("{path}.table"),
                format!(
                    "a VRF needs a table of its own (1 to 252), not the reserved table {table}"
                ),
            );
        }
    }
}

/// A kernel link name: at most 15 bytes, printable, no whitespace, `/` or `:`, not `.`/`..`.
pub(super) fn kernel_link_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("name is required".to_string())
    } else if name.len() > 15 {
        Err(format!("{name:?} is longer than 15 bytes"))
    } else if name == "." || name == ".." {
        Err(format!("{name:?} is not a valid link name"))
    } else if name.contains(['/', ':']) {
        Err(format!("{name:?} must not contain '/' or ':'"))
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "{name:?} must not contain whitespace or control characters"
        ))
    } else {
        Ok(())
    }
}

impl CheckDocument for VethConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = named(kind, &self.name);
        let name_path = if self.name.is_empty() {
            format!("{kind}.name")
        } else {
            format!("{path}.name")
        };
        f.check(name_path, kernel_link_name(&self.name));
        f.check(
            format!("{path}.peer.name"),
            kernel_link_name(&self.peer.name),
        );
        if !self.name.is_empty() && self.name == self.peer.name {
            f.error(
                format!("{path}.peer.name"),
                "the peer must have a name different from the link's",
            );
        }
        check_link(&path, &self.addresses, &self.routes, f);
        check_link(
            &format!("{path}.peer"),
            &self.peer.addresses,
            &self.peer.routes,
            f,
        );
    }
}

impl CheckDocument for LinkAliasConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = named(kind, &self.name);
        require_name(kind, &self.name, f);
        if let Some((prefix, suffix)) = self.name.split_once('%')
            && (suffix != "d" || prefix.is_empty())
        {
            f.error(
                format!("{path}.name"),
                "a pattern alias must be a prefix followed by %d (for example net%d)",
            );
        }
        let expression = self.selector.as_ref().and_then(|s| s.r#match.as_deref());
        match expression {
            None => f.error(
                format!("{path}.selector.match"),
                "a link selector is required",
            ),
            Some(text) if text.trim().is_empty() => f.error(
                format!("{path}.selector.match"),
                "the link selector must not be empty",
            ),
            Some(_) => {}
        }
    }
}

impl CheckDocument for EthernetConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        require_name(Self::KIND, &self.name, f);
    }
}
