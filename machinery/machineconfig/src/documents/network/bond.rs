//! `BondConfig`: a bond over other links, with the kernel's bonding options.

use super::common::{check_link, hardware_addr, link_kind, named, require_name};
use crate::documents::{CheckDocument, DocumentKind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

super::common::text_enum! {
    /// Bonding mode.
    pub enum BondMode {
        /// Round robin.
        BalanceRr = "balance-rr",
        /// One active link, the others standing by.
        ActiveBackup = "active-backup",
        /// Transmit by hash.
        BalanceXor = "balance-xor",
        /// Transmit on every link.
        Broadcast = "broadcast",
        /// IEEE 802.3ad dynamic link aggregation (LACP).
        Ieee8023Ad = "802.3ad",
        /// Adaptive transmit load balancing.
        BalanceTlb = "balance-tlb",
        /// Adaptive load balancing.
        BalanceAlb = "balance-alb",
    }
}

impl BondMode {
    /// Whether the mode has one active link at a time, so that a primary link matters.
    pub fn uses_primary(self) -> bool {
        matches!(
            self,
            BondMode::ActiveBackup | BondMode::BalanceTlb | BondMode::BalanceAlb
        )
    }
}

super::common::text_enum! {
    /// Transmit hash policy.
    pub enum BondXmitHashPolicy {
        /// Layer 2 (MAC addresses).
        Layer2 = "layer2",
        /// Layer 3 and 4 (IPs and ports).
        Layer34 = "layer3+4",
        /// Layer 2 and 3.
        Layer23 = "layer2+3",
        /// Encapsulated layer 2 and 3.
        Encap23 = "encap2+3",
        /// Encapsulated layer 3 and 4.
        Encap34 = "encap3+4",
    }
}

super::common::text_enum! {
    /// ARP monitoring validation.
    pub enum ArpValidate {
        /// No validation.
        None = "none",
        /// Validate on the active link.
        Active = "active",
        /// Validate on backup links.
        Backup = "backup",
        /// Validate on every link.
        All = "all",
        /// Filter ARP packets.
        Filter = "filter",
        /// Filter, validate on the active link.
        FilterActive = "filter-active",
        /// Filter, validate on backup links.
        FilterBackup = "filter-backup",
    }
}

super::common::text_enum! {
    /// Which ARP targets must be reachable.
    pub enum ArpAllTargets {
        /// Any target.
        Any = "any",
        /// Every target.
        All = "all",
    }
}

super::common::text_enum! {
    /// LACPDU rate.
    pub enum LacpRate {
        /// Every 30 seconds.
        Slow = "slow",
        /// Every second.
        Fast = "fast",
    }
}

super::common::text_enum! {
    /// How the bond's MAC address follows failovers.
    pub enum FailOverMac {
        /// Every link gets the bond's address.
        None = "none" | "0",
        /// The bond takes the active link's address.
        Active = "active" | "1",
        /// The new active link takes the bond's address.
        Follow = "follow" | "2",
    }
}

super::common::text_enum! {
    /// 802.3ad aggregator selection.
    pub enum AdSelect {
        /// Keep the aggregator until it has no links up.
        Stable = "stable",
        /// Highest bandwidth.
        Bandwidth = "bandwidth",
        /// Most ports.
        Count = "count",
    }
}

super::common::text_enum! {
    /// 802.3ad LACP activity.
    pub enum AdLacpActive {
        /// Passive LACP.
        Off = "off",
        /// Active LACP.
        On = "on",
    }
}

super::common::text_enum! {
    /// When the primary link becomes active again.
    pub enum PrimaryReselect {
        /// Whenever it comes back.
        Always = "always",
        /// When it is better than the current link.
        Better = "better",
        /// Only when the current link fails.
        Failure = "failure",
    }
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
