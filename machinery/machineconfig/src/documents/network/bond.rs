//! `BondConfig`: a bond over other links, with the kernel's bonding options.

use serde::{Deserialize, Serialize};

use super::common::{check_link, hardware_addr, link_kind, named, require_name};
use crate::documents::{CheckDocument, DocumentKind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

/// Bonding mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BondMode {
    /// Round robin.
    #[serde(rename = "balance-rr")]
    BalanceRr,
    /// One active link, the others standing by.
    #[serde(rename = "active-backup")]
    ActiveBackup,
    /// Transmit by hash.
    #[serde(rename = "balance-xor")]
    BalanceXor,
    /// Transmit on every link.
    #[serde(rename = "broadcast")]
    Broadcast,
    /// IEEE 802.3ad dynamic link aggregation (LACP).
    #[serde(rename = "802.3ad")]
    Ieee8023Ad,
    /// Adaptive transmit load balancing.
    #[serde(rename = "balance-tlb")]
    BalanceTlb,
    /// Adaptive load balancing.
    #[serde(rename = "balance-alb")]
    BalanceAlb,
}

impl BondMode {
    /// The spelling used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            BondMode::BalanceRr => "balance-rr",
            BondMode::ActiveBackup => "active-backup",
            BondMode::BalanceXor => "balance-xor",
            BondMode::Broadcast => "broadcast",
            BondMode::Ieee8023Ad => "802.3ad",
            BondMode::BalanceTlb => "balance-tlb",
            BondMode::BalanceAlb => "balance-alb",
        }
    }

    /// Whether the mode has one active link at a time, so that a primary link matters.
    pub fn uses_primary(self) -> bool {
        matches!(
            self,
            BondMode::ActiveBackup | BondMode::BalanceTlb | BondMode::BalanceAlb
        )
    }
}

/// Transmit hash policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BondXmitHashPolicy {
    /// Layer 2 (MAC addresses).
    #[serde(rename = "layer2")]
    Layer2,
    /// Layer 3 and 4 (IPs and ports).
    #[serde(rename = "layer3+4")]
    Layer34,
    /// Layer 2 and 3.
    #[serde(rename = "layer2+3")]
    Layer23,
    /// Encapsulated layer 2 and 3.
    #[serde(rename = "encap2+3")]
    Encap23,
    /// Encapsulated layer 3 and 4.
    #[serde(rename = "encap3+4")]
    Encap34,
}

/// ARP monitoring validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArpValidate {
    /// No validation.
    None,
    /// Validate on the active link.
    Active,
    /// Validate on backup links.
    Backup,
    /// Validate on every link.
    All,
    /// Filter ARP packets.
    Filter,
    /// Filter, validate on the active link.
    FilterActive,
    /// Filter, validate on backup links.
    FilterBackup,
}

/// Which ARP targets must be reachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArpAllTargets {
    /// Any target.
    Any,
    /// Every target.
    All,
}

/// LACPDU rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LacpRate {
    /// Every 30 seconds.
    Slow,
    /// Every second.
    Fast,
}

/// How the bond's MAC address follows failovers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOverMac {
    /// Every link gets the bond's address.
    None,
    /// The bond takes the active link's address.
    Active,
    /// The new active link takes the bond's address.
    Follow,
}

/// 802.3ad aggregator selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdSelect {
    /// Keep the aggregator until it has no links up.
    Stable,
    /// Highest bandwidth.
    Bandwidth,
    /// Most ports.
    Count,
}

/// 802.3ad LACP activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdLacpActive {
    /// Passive LACP.
    Off,
    /// Active LACP.
    On,
}

/// When the primary link becomes active again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrimaryReselect {
    /// Whenever it comes back.
    Always,
    /// When it is better than the current link.
    Better,
    /// Only when the current link fails.
    Failure,
}

link_kind! {
    /// `BondConfig`: a bond over other links.
    pub struct BondConfig = "BondConfig" {
        /// Hardware (MAC) address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hardware_addr: Option<String>,
        /// Links enslaved to the bond.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub links: Vec<String>,
        /// Bonding mode (required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bond_mode: Option<BondMode>,
        /// MII link monitoring interval, in milliseconds.
        #[serde(rename = "miimon", default, skip_serializing_if = "Option::is_none")]
        pub mii_mon: Option<u32>,
        /// Delay before enabling a link that came up, in milliseconds.
        #[serde(rename = "updelay", default, skip_serializing_if = "Option::is_none")]
        pub up_delay: Option<u32>,
        /// Delay before disabling a link that went down, in milliseconds.
        #[serde(rename = "downdelay", default, skip_serializing_if = "Option::is_none")]
        pub down_delay: Option<u32>,
        /// Use the carrier state for MII monitoring.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub use_carrier: Option<bool>,
        /// Transmit hash policy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub xmit_hash_policy: Option<BondXmitHashPolicy>,
        /// ARP monitoring interval, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub arp_interval: Option<u32>,
        /// IPv4 ARP monitoring targets.
        #[serde(rename = "arpIpTargets", default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub arp_ip_targets: Vec<String>,
        /// IPv6 neighbour solicitation targets.
        #[serde(rename = "nsIp6Targets", default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub ns_ip6_targets: Vec<String>,
        /// ARP validation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub arp_validate: Option<ArpValidate>,
        /// Which ARP targets must answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub arp_all_targets: Option<ArpAllTargets>,
        /// LACPDU rate (802.3ad).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub lacp_rate: Option<LacpRate>,
        /// MAC address policy on failover.
        #[serde(rename = "failOverMac", default, skip_serializing_if = "Option::is_none")]
        pub fail_over_mac: Option<FailOverMac>,
        /// Aggregator selection (802.3ad).
        #[serde(rename = "adSelect", default, skip_serializing_if = "Option::is_none")]
        pub ad_select: Option<AdSelect>,
        /// System priority (802.3ad).
        #[serde(rename = "adActorSysPrio", default, skip_serializing_if = "Option::is_none")]
        pub ad_actor_sys_prio: Option<u16>,
        /// User port key (802.3ad).
        #[serde(rename = "adUserPortKey", default, skip_serializing_if = "Option::is_none")]
        pub ad_user_port_key: Option<u16>,
        /// LACP activity (802.3ad).
        #[serde(rename = "adLACPActive", default, skip_serializing_if = "Option::is_none")]
        pub ad_lacp_active: Option<AdLacpActive>,
        /// The preferred link (modes with one active link).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub primary: Option<String>,
        /// When the primary link becomes active again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub primary_reselect: Option<PrimaryReselect>,
        /// IGMP reports sent after a failover.
        #[serde(rename = "resendIGMP", default, skip_serializing_if = "Option::is_none")]
        pub resend_igmp: Option<u32>,
        /// Links that must be up for the bond to be up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_links: Option<u32>,
        /// Learning packet interval, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub lp_interval: Option<u32>,
        /// Packets sent through a link before moving on (balance-rr).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub packets_per_slave: Option<u32>,
        /// Peer notifications after a failover.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub num_peer_notif: Option<u8>,
        /// Dynamic load balancing (balance-tlb).
        #[serde(rename = "tlbLogicalLb", default, skip_serializing_if = "Option::is_none")]
        pub tlb_logical_lb: Option<u8>,
        /// Deliver duplicate frames on inactive links.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub all_slaves_active: Option<u8>,
        /// Delay between peer notifications, in milliseconds.
        #[serde(rename = "peerNotifDelay", default, skip_serializing_if = "Option::is_none")]
        pub peer_notif_delay: Option<u32>,
        /// Missed ARP/NS replies before a link is down.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub missed_max: Option<u8>,
    }
}

impl CheckDocument for BondConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        let path = named(kind, &self.name);
        if let Some(hardware) = &self.hardware_addr {
            f.check(format!("{path}.hardwareAddr"), hardware_addr(hardware));
        }
        if self.links.is_empty() {
            f.error(format!("{path}.links"), "at least one link is required");
        }
        match self.bond_mode {
            None => f.error(format!("{path}.bondMode"), "bondMode is required"),
            Some(BondMode::Ieee8023Ad) => {
                for (field, value) in [
                    ("miimon", self.mii_mon),
                    ("updelay", self.up_delay),
                    ("downdelay", self.down_delay),
                ] {
                    if value.is_none() {
                        f.warn(
                            format!("{path}.{field}"),
                            format!("{field} is not set for an 802.3ad bond"),
                        );
                    }
                }
            }
            Some(_) => {}
        }
        let uses_primary = self.bond_mode.is_some_and(BondMode::uses_primary);
        match &self.primary {
            Some(primary) => {
                let at = format!("{path}.primary");
                if primary.is_empty() {
                    f.error(at.clone(), "primary link name must not be empty");
                } else if !self.links.contains(primary) {
                    f.error(
                        at.clone(),
                        format!("primary link {primary:?} is not one of the bond's links"),
                    );
                }
                if let Some(mode) = self.bond_mode
                    && !uses_primary
                {
                    f.error(
                        at,
                        format!("a primary link has no meaning in {} mode", mode.as_str()),
                    );
                }
            }
            None if self.primary_reselect.is_some() && uses_primary => f.warn(
                format!("{path}.primaryReselect"),
                "primaryReselect does nothing without primary",
            ),
            None => {}
        }
        for (i, target) in self.arp_ip_targets.iter().enumerate() {
            f.check(format!("{path}.arpIpTargets[{i}]"), formats::ip(target));
        }
        for (i, target) in self.ns_ip6_targets.iter().enumerate() {
            f.check(format!("{path}.nsIp6Targets[{i}]"), formats::ip(target));
        }
        check_link(&path, &self.addresses, &self.routes, f);
    }
}
