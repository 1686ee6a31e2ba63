//! Addressing and routing kinds: `DHCPv4Config`, `DHCPv6Config`, `Layer2VIPConfig`,
//! `HCloudVIPConfig`, `StaticHostConfig`, `BlackholeRouteConfig`, `RoutingRuleConfig`.

use super::RoutingTable;
use super::common::{hardware_addr, named, require_name};
use super::links::kernel_link_name;
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

super::common::text_enum! {
    /// What a DHCP client identifies itself with.
    pub enum ClientIdentifier {
        /// No client identifier.
        None = "none",
        /// The link's MAC address.
        Mac = "mac",
        /// The DUID given in `duidRaw`.
        Duid = "duid",
    }
}

document_kind! {
    /// `DHCPv4Config`: run a DHCPv4 client on a link (the document's name).
    pub struct DhcpV4Config = "DHCPv4Config", named {
        /// Metric of the routes DHCP installs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub route_metric: Option<u32>,
        /// Ignore the hostname the server offers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ignore_hostname: Option<bool>,
        /// Ignore the routes the server offers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ignore_routes: Option<bool>,
        /// Client identifier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_identifier: Option<ClientIdentifier>,
        /// The DUID (hex bytes) when `clientIdentifier` is `duid`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub duid_raw: Option<String>,
    }
}

document_kind! {
    /// `DHCPv6Config`: run a DHCPv6 client on a link (the document's name).
    pub struct DhcpV6Config = "DHCPv6Config", named {
        /// Metric of the routes DHCP installs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub route_metric: Option<u32>,
        /// Ignore the hostname the server offers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ignore_hostname: Option<bool>,
        /// Client identifier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_identifier: Option<ClientIdentifier>,
        /// The DUID (hex bytes) when `clientIdentifier` is `duid`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub duid_raw: Option<String>,
    }
}

fn check_dhcp(
    path: &str,
    identifier: Option<ClientIdentifier>,
    duid: Option<&String>,
    f: &mut Findings,
) {
    let is_duid = identifier == Some(ClientIdentifier::Duid);
    match duid.filter(|d| !d.is_empty()) {
        Some(_) if !is_duid => f.error(
            format!("{path}.duidRaw"),
            "duidRaw is only used with clientIdentifier: duid",
        ),
        Some(duid) => f.check(format!("{path}.duidRaw"), hardware_addr(duid)),
        None if is_duid => f.error(
            format!("{path}.duidRaw"),
            "clientIdentifier: duid needs duidRaw",
        ),
        None => {}
    }
}

impl CheckDocument for DhcpV4Config {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        require_name(Self::KIND, &self.name, f);
        check_dhcp(
            &named(Self::KIND, &self.name),
            self.client_identifier,
            self.duid_raw.as_ref(),
            f,
        );
    }
}

impl CheckDocument for DhcpV6Config {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        require_name(Self::KIND, &self.name, f);
        check_dhcp(
            &named(Self::KIND, &self.name),
            self.client_identifier,
            self.duid_raw.as_ref(),
            f,
        );
    }
}

document_kind! {
    /// `Layer2VIPConfig`: a virtual IP (the document's name) shared by control plane nodes
    /// with gratuitous ARP / NDP on a link.
    pub struct Layer2VipConfig = "Layer2VIPConfig", named {
        /// The link to announce the address on.
        #[serde(default)]
        pub link: String,
    }
}

document_kind! {
    /// `HCloudVIPConfig`: a virtual IP (the document's name) moved with the Hetzner Cloud API.
    pub struct HCloudVipConfig = "HCloudVIPConfig", named {
        /// The link to assign the address to.
        #[serde(default)]
        pub link: String,
        /// Hetzner Cloud API token.
        #[serde(default)]
        pub api_token: String,
    }
}

/// Checks a VIP document's name (an IP address) and link.
fn check_vip(kind: &str, name: &str, link: &str, f: &mut Findings) {
    require_name(kind, name, f);
    let path = named(kind, name);
    if !name.is_empty() {
        f.check(format!("{path}.name"), formats::ip(name));
    }
    if link.is_empty() {
        f.error(format!("{path}.link"), "link is required");
    }
}

impl CheckDocument for Layer2VipConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        check_vip(Self::KIND, &self.name, &self.link, f);
    }
}

impl CheckDocument for HCloudVipConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        check_vip(Self::KIND, &self.name, &self.link, f);
        if self.api_token.is_empty() {
            f.error(
                format!("{}.apiToken", named(Self::KIND, &self.name)),
                "apiToken is required",
            );
        }
    }
}

document_kind! {
    /// `StaticHostConfig`: `/etc/hosts` entries for an IP address (the document's name).
    pub struct StaticHostConfig = "StaticHostConfig", named {
        /// Hostnames of the address.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize")]
        pub hostnames: Vec<String>,
    }
}

impl CheckDocument for StaticHostConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        let path = named(kind, &self.name);
        if !self.name.is_empty() {
            f.check(format!("{path}.name"), formats::ip(&self.name));
        }
        if self.hostnames.is_empty() {
            f.error(
                format!("{path}.hostnames"),
                "at least one hostname is required",
            );
        }
    }
}

document_kind! {
    /// `BlackholeRouteConfig`: a blackhole route for a prefix (the document's name).
    pub struct BlackholeRouteConfig = "BlackholeRouteConfig", named {
        /// Route metric.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metric: Option<u32>,
    }
}

impl CheckDocument for BlackholeRouteConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        if !self.name.is_empty() {
            f.check(
                format!("{}.name", named(kind, &self.name)),
                formats::cidr(&self.name),
            );
        }
    }
}

super::common::text_enum! {
    /// What a routing rule does with matching packets.
    pub enum RoutingRuleAction {
        /// Nothing given (a table lookup).
        Unspec = "unspec",
        /// Look the table up.
        Unicast = "unicast",
        /// Drop silently.
        Blackhole = "blackhole",
        /// Answer "network unreachable".
        Unreachable = "unreachable",
        /// Answer "administratively prohibited".
        Prohibit = "prohibit",
    }
}

document_kind! {
    /// `RoutingRuleConfig`: a policy routing rule; its name is the rule's priority.
    pub struct RoutingRuleConfig = "RoutingRuleConfig", named {
        /// Source prefix to match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub src: Option<String>,
        /// Destination prefix to match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dst: Option<String>,
        /// Table to look up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub table: Option<RoutingTable>,
        /// Rule action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub action: Option<RoutingRuleAction>,
        /// Incoming interface to match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub iif_name: Option<String>,
        /// Outgoing interface to match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub oif_name: Option<String>,
        /// Firewall mark to match.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub fw_mark: Option<u32>,
        /// Mask applied to the firewall mark.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub fw_mask: Option<u32>,
    }
}

/// Rule priorities the kernel (local, main, default) and KubeSpan use.
const RESERVED_RULE_PRIORITIES: &[u32] = &[0, 32500, 32766, 32767];

impl CheckDocument for RoutingRuleConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        let path = named(kind, &self.name);
        if !self.name.is_empty() {
            match self.name.parse::<u32>() {
                Ok(priority) if RESERVED_RULE_PRIORITIES.contains(&priority) => f.error(
                    format!("{path}.name"),
                    format!(
                        "priority {priority} is reserved (0, 32500, 32766 and 32767 are taken)"
                    ),
                ),
                Ok(_) => {}
                Err(_) => f.error(
                    format!("{path}.name"),
                    "the name is the rule priority: an unsigned 32-bit number",
                ),
            }
        }
        let mut families = Vec::new();
        for (field, prefix) in [("src", &self.src), ("dst", &self.dst)] {
            if let Some(prefix) = prefix {
                let parsed = formats::cidr(prefix);
                if let Ok(net) = &parsed {
                    families.push(net.addr().is_ipv4());
                }
                f.check(format!("{path}.{field}"), parsed);
            }
        }
        if let [src_v4, dst_v4] = families[..]
            && src_v4 != dst_v4
        {
            f.error(
                format!("{path}.dst"),
                "src and dst must be of the same address family (both IPv4 or both IPv6)",
            );
        }
        for (field, link) in [("iifName", &self.iif_name), ("oifName", &self.oif_name)] {
            if let Some(link) = link {
                f.check(format!("{path}.{field}"), kernel_link_name(link));
            }
        }
        let no_table = self.table.is_none_or(|t| t == RoutingTable::Unspec);
        let lookup = matches!(
            self.action,
            None | Some(RoutingRuleAction::Unspec | RoutingRuleAction::Unicast)
        );
        if no_table && lookup {
            f.error(
                format!("{path}.table"),
                "a table is required unless the action is blackhole, unreachable or prohibit",
            );
        }
        if self.fw_mask.is_some_and(|m| m != 0) && self.fw_mark.is_none_or(|m| m == 0) {
            f.error(format!("{path}.fwMask"), "fwMask needs fwMark");
        }
    }
}
