//! `RoutingRuleConfig` documents as policy routing rules, as upstream makes them: one rule per
//! address family its prefixes name (both families when it names none), the action `unspec`
//! meaning a table lookup.

use std::fmt;

use ipnet::IpNet;
use machineconfig::documents::{RoutingRuleAction, RoutingRuleConfig};
use serde::{Deserialize, Serialize};

use super::Builder;

/// What a rule does with the packets it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RuleAction {
    /// Look the rule's table up.
    Lookup,
    /// Drop them silently.
    Blackhole,
    /// Answer "network unreachable".
    Unreachable,
    /// Answer "administratively prohibited".
    Prohibit,
}

/// A policy routing rule of one address family.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RulePlan {
    /// The rule's priority (the document's name).
    pub priority: u32,
    /// IPv6 (else IPv4).
    pub ipv6: bool,
    /// Source prefix to match.
    pub src: Option<IpNet>,
    /// Destination prefix to match.
    pub dst: Option<IpNet>,
    /// Table to look up (0: none).
    pub table: u32,
    pub action: RuleAction,
    /// Incoming link to match.
    pub iif: Option<String>,
    /// Outgoing link to match.
    pub oif: Option<String>,
    /// Firewall mark to match.
    pub fw_mark: Option<u32>,
    /// Mask of the mark (all ones when the document gives none, as the kernel stores it).
    pub fw_mask: Option<u32>,
}

impl fmt::Display for RulePlan {
    /// As `ip rule` shows it, with the family first: `ipv4 1200: from 10.0.0.0/24 lookup 120`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = if self.ipv6 { "ipv6" } else { "ipv4" };
        write!(f, "{family} {}:", self.priority)?;
        match self.src {
            Some(src) => write!(f, " from {src}")?,
            None => f.write_str(" from all")?,
        }
        if let Some(dst) = self.dst {
            write!(f, " to {dst}")?;
        }
        if let Some(iif) = &self.iif {
            write!(f, " iif {iif}")?;
        }
        if let Some(oif) = &self.oif {
            write!(f, " oif {oif}")?;
        }
        if let Some(mark) = self.fw_mark {
            write!(
                f,
                " fwmark {mark:#x}/{:#x}",
                self.fw_mask.unwrap_or(u32::MAX)
            )?;
        }
        match self.action {
            RuleAction::Lookup => write!(f, " lookup {}", self.table),
            RuleAction::Blackhole => f.write_str(" blackhole"),
            RuleAction::Unreachable => f.write_str(" unreachable"),
            RuleAction::Prohibit => f.write_str(" prohibit"),
        }
    }
}

impl Builder<'_> {
    /// Adds the rules of `rule` (machineconfig has checked it: what does not parse is left out).
    pub(super) fn routing_rule(&mut self, rule: &RoutingRuleConfig) {
        let Ok(priority) = rule.name.parse::<u32>() else {
            return;
        };
        let prefix = |text: &Option<String>| match text.as_deref().map(str::parse::<IpNet>) {
            None => Ok(None),
            Some(Ok(net)) => Ok(Some(net.trunc())),
            Some(Err(_)) => Err(()),
        };
        let (Ok(src), Ok(dst)) = (prefix(&rule.src), prefix(&rule.dst)) else {
            return;
        };
        let action = match rule.action {
            None | Some(RoutingRuleAction::Unspec | RoutingRuleAction::Unicast) => {
                RuleAction::Lookup
            }
            Some(RoutingRuleAction::Blackhole) => RuleAction::Blackhole,
            Some(RoutingRuleAction::Unreachable) => RuleAction::Unreachable,
            Some(RoutingRuleAction::Prohibit) => RuleAction::Prohibit,
        };
        let fw_mark = rule.fw_mark.filter(|mark| *mark != 0);
        let families: &[bool] = match src.or(dst) {
            Some(net) => &[net.addr().is_ipv6()],
            None => &[false, true],
        };
        for &ipv6 in families {
            self.plan.rules.push(RulePlan {
                priority,
                ipv6,
                src,
                dst,
                table: rule.table.map_or(0, |table| table.number()),
                action,
                iif: rule.iif_name.clone(),
                oif: rule.oif_name.clone(),
                fw_mark,
                fw_mask: fw_mark
                    .map(|_| rule.fw_mask.filter(|mask| *mask != 0).unwrap_or(u32::MAX)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Inputs, Plan};

    fn rules(documents_yaml: &str) -> Vec<String> {
        let inputs = Inputs {
            documents_yaml: documents_yaml.to_string(),
            ..Inputs::default()
        };
        Plan::from_inputs(&inputs)
            .unwrap_or_else(|errors| panic!("{errors:?}"))
            .rules
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn each_document_is_a_rule_per_family_it_names() {
        let plan = rules(
            "apiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: \"1200\"\n\
             src: 10.20.0.9/24\ntable: 120\nfwMark: 16\n---\n\
             apiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: \"1300\"\n\
             dst: fd00::/8\naction: prohibit\niifName: eth1\n---\n\
             apiVersion: v1alpha1\nkind: RoutingRuleConfig\nname: \"1400\"\n\
             table: main\naction: unspec\n",
        );
        assert_eq!(
            plan,
            [
                "ipv4 1200: from 10.20.0.0/24 fwmark 0x10/0xffffffff lookup 120",
                "ipv6 1300: from all to fd00::/8 iif eth1 prohibit",
                "ipv4 1400: from all lookup 254",
                "ipv6 1400: from all lookup 254",
            ]
        );
    }
}
