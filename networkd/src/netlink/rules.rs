//! Policy routing rules over rtnetlink: listed, added with protocol `static` (as upstream marks
//! the rules Talos makes) and deleted. A kernel rule is one of networkd's plans only when it
//! carries that protocol, so rules of other agents are never taken for networkd's.

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::IpVersion;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::RouteProtocol;
use rtnetlink::packet_route::rule::{RuleAction as KernelAction, RuleAttribute, RuleMessage};

use super::{EEXIST, GONE, Netlink, errno, failed};
use crate::NetworkdError;
use crate::plan::{RuleAction, RulePlan};

/// One routing rule as the kernel reports it.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule as a plan, when a plan can say it (not `goto`, `nop`, other families).
    pub plan: Option<RulePlan>,
    /// Added with protocol `static`, as networkd adds its rules.
    pub is_static: bool,
    message: RuleMessage,
}

impl Rule {
    /// Whether this kernel rule is the planned one, added as networkd adds rules.
    pub fn is(&self, plan: &RulePlan) -> bool {
        self.is_static && self.plan.as_ref() == Some(plan)
    }
}

impl Netlink {
    /// Every IPv4 and IPv6 rule.
    pub async fn rules(&self) -> Result<Vec<Rule>, NetworkdError> {
        let mut messages: Vec<RuleMessage> = self
            .handle
            .rule()
            .get(IpVersion::V4)
            .execute()
            .try_collect()
            .await
            .map_err(failed("listing", "IPv4 rules"))?;
        let v6: Vec<RuleMessage> = self
            .handle
            .rule()
            .get(IpVersion::V6)
            .execute()
            .try_collect()
            .await
            .map_err(failed("listing", "IPv6 rules"))?;
        messages.extend(v6);
        Ok(messages.into_iter().map(decode_rule).collect())
    }

    /// Adds the planned rule; the same rule already there is fine.
    pub async fn add_rule(&self, plan: &RulePlan) -> Result<(), NetworkdError> {
        let mut request = self.handle.rule().add();
        *request.message_mut() = rule_message(plan);
        match request.execute().await {
            Err(source) if errno(&source) != Some(EEXIST) => {
                Err(failed("adding", format!("rule {plan}"))(source))
            }
            _ => Ok(()),
        }
    }

    pub async fn delete_rule(&self, rule: &Rule) -> Result<(), NetworkdError> {
        match self.handle.rule().del(rule.message.clone()).execute().await {
            Err(source) if !errno(&source).is_some_and(|e| GONE.contains(&e)) => {
                let target = rule
                    .plan
                    .as_ref()
                    .map_or_else(|| "rule".to_string(), |plan| format!("rule {plan}"));
                Err(failed("deleting", target)(source))
            }
            _ => Ok(()),
        }
    }
}

/// The netlink message that adds `plan`.
fn rule_message(plan: &RulePlan) -> RuleMessage {
    let mut message = RuleMessage::default();
    let header = &mut message.header;
    header.family = if plan.ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    header.action = match plan.action {
        RuleAction::Lookup => KernelAction::ToTable,
        RuleAction::Blackhole => KernelAction::Blackhole,
        RuleAction::Unreachable => KernelAction::Unreachable,
        RuleAction::Prohibit => KernelAction::Prohibit,
    };
    // Tables above 255 travel only as the attribute; ours are at most 255.
    header.table = u8::try_from(plan.table).unwrap_or_default();
    let attributes = &mut message.attributes;
    attributes.push(RuleAttribute::Table(plan.table));
    attributes.push(RuleAttribute::Priority(plan.priority));
    attributes.push(RuleAttribute::Protocol(RouteProtocol::Static));
    if let Some(src) = plan.src {
        message.header.src_len = src.prefix_len();
        message.attributes.push(RuleAttribute::Source(src.addr()));
    }
    if let Some(dst) = plan.dst {
        message.header.dst_len = dst.prefix_len();
        message
            .attributes
            .push(RuleAttribute::Destination(dst.addr()));
    }
    let attributes = &mut message.attributes;
    if let Some(iif) = &plan.iif {
        attributes.push(RuleAttribute::Iifname(iif.clone()));
    }
    if let Some(oif) = &plan.oif {
        attributes.push(RuleAttribute::Oifname(oif.clone()));
    }
    if let Some(mark) = plan.fw_mark {
        attributes.push(RuleAttribute::FwMark(mark));
    }
    if let Some(mask) = plan.fw_mask {
        attributes.push(RuleAttribute::FwMask(mask));
    }
    message
}

fn decode_rule(message: RuleMessage) -> Rule {
    let mut is_static = false;
    let plan = plan_of(&message, &mut is_static);
    Rule {
        plan,
        is_static,
        message,
    }
}

/// `message` as a plan (and whether its protocol is `static`, into `is_static`).
fn plan_of(message: &RuleMessage, is_static: &mut bool) -> Option<RulePlan> {
    let header = &message.header;
    let ipv6 = match header.family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let mut plan = RulePlan {
        priority: 0,
        ipv6,
        src: None,
        dst: None,
        table: u32::from(header.table),
        action: match header.action {
            KernelAction::ToTable => RuleAction::Lookup,
            KernelAction::Blackhole => RuleAction::Blackhole,
            KernelAction::Unreachable => RuleAction::Unreachable,
            KernelAction::Prohibit => RuleAction::Prohibit,
            _ => return None,
        },
        iif: None,
        oif: None,
        fw_mark: None,
        fw_mask: None,
    };
    for attribute in &message.attributes {
        match attribute {
            RuleAttribute::Priority(priority) => plan.priority = *priority,
            RuleAttribute::Table(table) => plan.table = *table,
            RuleAttribute::Source(ip) => plan.src = IpNet::new(*ip, header.src_len).ok(),
            RuleAttribute::Destination(ip) => plan.dst = IpNet::new(*ip, header.dst_len).ok(),
            RuleAttribute::Iifname(name) => plan.iif = Some(name.clone()),
            RuleAttribute::Oifname(name) => plan.oif = Some(name.clone()),
            RuleAttribute::FwMark(mark) if *mark != 0 => plan.fw_mark = Some(*mark),
            RuleAttribute::FwMask(mask) => plan.fw_mask = Some(*mask),
            RuleAttribute::Protocol(protocol) => *is_static = *protocol == RouteProtocol::Static,
            _ => {}
        }
    }
    if plan.fw_mark.is_none() {
        plan.fw_mask = None;
    }
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planned_rule_reads_back_as_itself() {
        let plan = RulePlan {
            priority: 1200,
            ipv6: false,
            src: Some("10.20.0.0/24".parse().unwrap()),
            dst: Some("172.16.0.0/12".parse().unwrap()),
            table: 120,
            action: RuleAction::Lookup,
            iif: Some("eth0".into()),
            oif: None,
            fw_mark: Some(16),
            fw_mask: Some(255),
        };
        let rule = decode_rule(rule_message(&plan));
        assert!(rule.is(&plan), "{rule:?}");
        let mut other = rule_message(&plan);
        other
            .attributes
            .retain(|a| !matches!(a, RuleAttribute::Protocol(_)));
        assert!(!decode_rule(other).is(&plan), "a rule of another agent");
    }
}
