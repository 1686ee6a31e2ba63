//! `machine.network`: hostname, interfaces (with bonds, bridges, VLANs, WireGuard and VIPs),
//! resolvers and KubeSpan.

use serde::{Deserialize, Serialize};

use crate::GoDuration;

/// `machine.network`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkConfig {
    /// Static hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Interface settings.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interfaces: Vec<Device>,
    /// DNS servers (IP addresses).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nameservers: Vec<String>,
    /// DNS search domains.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub search_domains: Vec<String>,
    /// Extra `/etc/hosts` entries.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_host_entries: Vec<ExtraHost>,
    /// KubeSpan (WireGuard mesh between nodes).
    #[serde(rename = "kubespan", default, skip_serializing_if = "Option::is_none")]
    pub kubespan: Option<KubeSpan>,
    /// Do not add the domain of the hostname as a search domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_search_domain: Option<bool>,
}

/// `machine.network.interfaces[]`: one link, found by `interface` name or `deviceSelector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Device {
    /// Link name (`eth0`, `bond0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Picks the link by its properties instead of `interface`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_selector: Option<DeviceSelector>,
    /// Static addresses (CIDR).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<String>,
    /// Legacy single static address (CIDR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// Static routes.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub routes: Vec<Route>,
    /// Makes this link a bond.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bond: Option<Bond>,
    /// Makes this link a bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
    /// Enslaves this link to a bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge_port: Option<BridgePort>,
    /// VLANs on this link.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub vlans: Vec<Vlan>,
    /// Link MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Run DHCP on this link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<bool>,
    /// Leave this link alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<bool>,
    /// Create a dummy link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dummy: Option<bool>,
    /// DHCP client options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_options: Option<DhcpOptions>,
    /// Makes this link a WireGuard link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<Wireguard>,
    /// A shared virtual IP (control plane only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<Vip>,
}

/// Picks links by their properties; every given property must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceSelector {
    /// Bus path (glob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus_path: Option<String>,
    /// Current MAC address (glob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_addr: Option<String>,
    /// Permanent MAC address (glob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent_addr: Option<String>,
    /// PCI `vendor:product` (glob).
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
    /// Kernel driver name (glob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Physical links only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical: Option<bool>,
}

/// A static route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// Destination CIDR; empty is the default route.
    #[serde(default)]
    pub network: String,
    /// Gateway IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Preferred source IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Route metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// Route MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// A bond: kernel bonding options by their upstream names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bond {
    /// Member links by name.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interfaces: Vec<String>,
    /// Member links by selector.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub device_selectors: Vec<DeviceSelector>,
    /// ARP monitoring targets (IPs).
    #[serde(
        rename = "arpIPTarget",
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arp_ip_target: Vec<String>,
    /// `balance-rr`, `active-backup`, `balance-xor`, `broadcast`, `802.3ad`, `balance-tlb`,
    /// `balance-alb`.
    #[serde(default)]
    pub mode: String,
    /// `layer2`, `layer3+4`, `layer2+3`, `encap2+3`, `encap3+4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmit_hash_policy: Option<String>,
    /// `slow` or `fast` (802.3ad).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lacp_rate: Option<String>,
    /// 802.3ad actor system MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_actor_system: Option<String>,
    /// `none`, `active`, `backup`, `all`, `filter`, `filter_active`, `filter_backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_validate: Option<String>,
    /// `any` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_all_targets: Option<String>,
    /// Primary member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// `always`, `better` or `failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_reselect: Option<String>,
    /// `none`, `active` or `follow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_over_mac: Option<String>,
    /// `stable`, `bandwidth` or `count` (802.3ad).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_select: Option<String>,
    /// MII link monitoring interval (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miimon: Option<u32>,
    /// Link-up delay (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updelay: Option<u32>,
    /// Link-down delay (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downdelay: Option<u32>,
    /// ARP monitoring interval (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_interval: Option<u32>,
    /// IGMP reports after a failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_igmp: Option<u32>,
    /// Minimum active members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_links: Option<u32>,
    /// Learning packet interval (s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lp_interval: Option<u32>,
    /// Packets per member (balance-rr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets_per_slave: Option<u32>,
    /// Peer notifications after a failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_peer_notif: Option<u8>,
    /// Dynamic shuffling (balance-tlb).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlb_dynamic_lb: Option<u8>,
    /// Deliver duplicate frames on inactive members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_slaves_active: Option<u8>,
    /// Use carrier state for link monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_carrier: Option<bool>,
    /// 802.3ad actor system priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_actor_sys_prio: Option<u16>,
    /// 802.3ad user port key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_user_port_key: Option<u16>,
    /// Delay between peer notifications (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_notify_delay: Option<u32>,
}

/// A bridge.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bridge {
    /// Member links.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interfaces: Vec<String>,
    /// Spanning tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp: Option<BridgeStp>,
    /// VLAN filtering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<BridgeVlan>,
}

/// `bridge.stp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BridgeStp {
    /// Turns STP on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `bridge.vlan`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BridgeVlan {
    /// Turns VLAN filtering on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_filtering: Option<bool>,
}

/// `bridgePort`: enslaves the link to a bridge.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BridgePort {
    /// The bridge's link name.
    #[serde(default)]
    pub master: String,
}

/// A VLAN on a link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Vlan {
    /// Static addresses (CIDR).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<String>,
    /// Legacy single static address (CIDR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// Static routes.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub routes: Vec<Route>,
    /// Run DHCP on the VLAN link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<bool>,
    /// VLAN ID, 1 to 4095.
    #[serde(default)]
    pub vlan_id: u16,
    /// MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Shared virtual IP (control plane only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<Vip>,
    /// DHCP client options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_options: Option<DhcpOptions>,
}

/// DHCP client options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DhcpOptions {
    /// Metric of routes learned over DHCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_metric: Option<u32>,
    /// Run DHCPv4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<bool>,
    /// Run DHCPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    /// DHCPv6 DUID (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duidv6: Option<String>,
}

/// A WireGuard link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Wireguard {
    /// Base64 private key (32 bytes).
    #[serde(default)]
    pub private_key: String,
    /// UDP listen port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// Firewall mark on outgoing packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall_mark: Option<u32>,
    /// Peers.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub peers: Vec<WireguardPeer>,
}

/// A WireGuard peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WireguardPeer {
    /// Base64 public key (32 bytes).
    #[serde(default)]
    pub public_key: String,
    /// `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Keepalive interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_keepalive_interval: Option<GoDuration>,
    /// CIDRs routed to this peer.
    #[serde(
        rename = "allowedIPs",
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_ips: Vec<String>,
}

/// A shared virtual IP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Vip {
    /// The IP address.
    #[serde(default)]
    pub ip: String,
    /// Move the IP through the Equinix Metal API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equinix_metal: Option<VipApiToken>,
    /// Move the IP through the Hetzner Cloud API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcloud: Option<VipApiToken>,
}

/// Cloud API credentials for a VIP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VipApiToken {
    /// API token.
    #[serde(default)]
    pub api_token: String,
}

/// An `/etc/hosts` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtraHost {
    /// IP address.
    #[serde(default)]
    pub ip: String,
    /// Host names.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aliases: Vec<String>,
}

/// `machine.network.kubespan`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeSpan {
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
    /// WireGuard link MTU (at least 1280).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Endpoint and network filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<KubeSpanFilters>,
}

/// `machine.network.kubespan.filters`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeSpanFilters {
    /// CIDRs of endpoints to use; a leading `!` excludes.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub endpoints: Vec<String>,
    /// CIDRs not to advertise.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude_advertised_networks: Vec<String>,
}
