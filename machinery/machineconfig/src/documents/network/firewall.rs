//! Firewall kinds: `NetworkRuleConfig`, `NetworkDefaultActionConfig`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::common::{named, require_name};
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

super::common::text_enum! {
    /// What happens to ingress traffic no rule accepts.
    pub enum DefaultAction {
        /// Accept it.
        Accept = "accept",
        /// Drop it.
        Block = "block",
    }
}

document_kind! {
    /// `NetworkDefaultActionConfig`: the default action of the ingress firewall.
    pub struct NetworkDefaultActionConfig = "NetworkDefaultActionConfig" {
        /// Default ingress action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ingress: Option<DefaultAction>,
    }
}

impl CheckDocument for NetworkDefaultActionConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        if self.ingress.is_none() {
            f.error(
                format!("{}.ingress", Self::KIND),
                "ingress is required (accept or block)",
            );
        }
    }
}

super::common::text_enum! {
    /// A transport protocol a firewall rule matches.
    pub enum Protocol {
        /// ICMP.
        Icmp = "icmp",
        /// TCP.
        Tcp = "tcp",
        /// UDP.
        Udp = "udp",
        /// ICMPv6.
        Icmpv6 = "icmpv6",
    }
}

/// A port (`80`) or an inclusive range of ports (`"8000-8100"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.lo == self.hi {
            s.serialize_u16(self.lo)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Port(u16),
            Range(String),
        }
        match Wire::deserialize(d)? {
            Wire::Port(port) => Ok(PortRange { lo: port, hi: port }),
            Wire::Range(text) => {
                let parsed = text
                    .split_once('-')
                    .and_then(|(lo, hi)| Some((lo.parse().ok()?, hi.parse().ok()?)));
                match parsed {
                    Some((lo, hi)) => Ok(PortRange { lo, hi }),
                    None => Err(serde::de::Error::custom(format!(
                        "invalid port range {text:?} (expected a port or \"first-last\")"
                    ))),
                }
            }
        }
    }
}

document_kind! {
    /// `NetworkRuleConfig`: an ingress firewall rule (ports and the subnets allowed to reach them).
    pub struct NetworkRuleConfig = "NetworkRuleConfig", named {
        /// The ports the rule is about.
        #[serde(default)]
        pub port_selector: RulePortSelector,
        /// Subnets allowed in.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize")]
        pub ingress: Vec<IngressRule>,
    }
}

/// `NetworkRuleConfig.portSelector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RulePortSelector {
    /// Ports and port ranges.
    #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize")]
    pub ports: Vec<PortRange>,
    /// Protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

/// `NetworkRuleConfig.ingress[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressRule {
    /// Subnet allowed in.
    #[serde(default)]
    pub subnet: String,
    /// Part of the subnet excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
}

impl CheckDocument for NetworkRuleConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        let path = named(kind, &self.name);
        let ports_path = format!("{path}.portSelector.ports");
        if self.port_selector.ports.is_empty() {
            f.error(ports_path.clone(), "at least one port is required");
        }
        let mut sorted = self.port_selector.ports.clone();
        sorted.sort_by_key(|range| range.lo);
        for range in &sorted {
            if range.lo > range.hi {
                f.error(
                    ports_path.clone(),
                    format!("port range {range} ends before it starts"),
                );
            }
        }
        for pair in sorted.windows(2) {
            if pair[1].lo <= pair[0].hi || pair[1].lo == pair[0].lo {
                f.error(
                    ports_path.clone(),
                    format!("port ranges {} and {} overlap", pair[0], pair[1]),
                );
            }
        }
        for (i, rule) in self.ingress.iter().enumerate() {
            f.check(
                format!("{path}.ingress[{i}].subnet"),
                formats::cidr(&rule.subnet),
            );
            if let Some(except) = &rule.except {
                f.check(format!("{path}.ingress[{i}].except"), formats::cidr(except));
            }
        }
    }
}
