//! The kernel side: reads links, addresses, routes and rules ([`rules`]) over rtnetlink and makes the changes the
//! engine decides on. Every error names the object it failed on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{
    BondAdSelect, BondAllPortActive, BondArpAllTargets, BondArpValidate, BondFailOverMac,
    BondLacpRate, BondMode, BondPrimaryReselect, BondXmitHashPolicy, BridgeStpState, InfoData,
    InfoKind, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{
    Handle, LinkBond, LinkBridge, LinkDummy, LinkUnspec, LinkVlan, RouteMessageBuilder,
};

mod changes;
mod rules;

pub use changes::Changes;
pub use rules::Rule;

use crate::NetworkdError;
use crate::plan::{LinkKind, RoutePlan};

/// `EOPNOTSUPP`: the kernel lacks the link kind.
const EOPNOTSUPP: i32 = 95;
/// `EEXIST`.
const EEXIST: i32 = 17;
/// `ESRCH` / `EADDRNOTAVAIL` / `ENODEV`: already gone.
const GONE: [i32; 3] = [3, 99, 19];
/// The main routing table.
pub const MAIN_TABLE: u32 = 254;

/// One link as the kernel reports it.
#[derive(Clone, Debug)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub link_type: String,
    pub mtu: u32,
    pub hardware_addr: Vec<u8>,
    pub broadcast_addr: Vec<u8>,
    pub oper_state: String,
    pub flags: u32,
    pub master: Option<u32>,
    pub parent: Option<u32>,
    pub vlan_id: Option<u16>,
}

impl Link {
    /// Administratively up.
    pub fn is_up(&self) -> bool {
        self.flags & LinkFlags::Up.bits() != 0
    }
}

/// One address as the kernel reports it.
#[derive(Clone, Debug)]
pub struct Address {
    pub link_index: u32,
    pub address: IpNet,
    pub scope: String,
    pub flags: u32,
    message: AddressMessage,
}

/// One route as the kernel reports it.
#[derive(Clone, Debug)]
pub struct Route {
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    pub source: Option<IpAddr>,
    pub out_link: Option<u32>,
    pub table: u32,
    pub priority: u32,
    pub scope: String,
    pub kind: String,
    pub protocol: String,
    pub mtu: Option<u32>,
    message: RouteMessage,
}

impl Route {
    /// Whether this kernel route is the planned one on link `index` (ignored for a blackhole
    /// route, which has no link).
    pub fn matches(&self, plan: &RoutePlan, index: u32) -> bool {
        let out = if plan.blackhole {
            self.kind == "blackhole" && self.out_link.is_none()
        } else {
            self.out_link == Some(index)
        };
        out && self.table == MAIN_TABLE
            && self.destination == plan.destination
            && self.priority == plan.metric
            && self.gateway == plan.gateway
    }
}

/// Links, addresses, routes and rules at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
}

impl Snapshot {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub fn link_name(&self, index: u32) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.index == index)
            .map(|l| l.name.as_str())
    }
}

/// A connection to the kernel's routing netlink.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
}

fn failed(
    op: &'static str,
    target: impl Into<String>,
) -> impl FnOnce(rtnetlink::Error) -> NetworkdError {
    let target = target.into();
    move |source| NetworkdError::Netlink { op, target, source }
}

/// The negative errno of a netlink error, if it is one.
fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => Some(-message.raw_code()),
        _ => None,
    }
}

impl Netlink {
    /// Opens a netlink socket in the current network namespace and spawns its driver task.
    pub fn connect() -> Result<Self, NetworkdError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetworkdError::Io {
                path: "netlink".into(),
                step: "opening the rtnetlink socket",
                source,
            })?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    /// Reads every link, address, route and rule.
    pub async fn snapshot(&self) -> Result<Snapshot, NetworkdError> {
        let links: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(failed("listing", "links"))?;
        let addresses: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(failed("listing", "addresses"))?;
        let mut routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(failed("listing", "IPv4 routes"))?;
        let v6: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv6Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(failed("listing", "IPv6 routes"))?;
        routes.extend(v6);
        Ok(Snapshot {
            links: links.into_iter().map(decode_link).collect(),
            addresses: addresses.into_iter().filter_map(decode_address).collect(),
            routes: routes.into_iter().filter_map(decode_route).collect(),
            rules: self.rules().await?,
        })
    }

    /// Creates link `name` of `kind`; `parent` is the VLAN's parent index.
    pub async fn create_link(
        &self,
        name: &str,
        kind: &LinkKind,
        parent: Option<u32>,
    ) -> Result<(), NetworkdError> {
        let message = match kind {
            LinkKind::Vlan { parent: p, id } => {
                let parent = parent.ok_or_else(|| NetworkdError::LinkMissing(p.clone()))?;
                LinkVlan::new(name, parent, *id).build()
            }
            LinkKind::Bridge {
                stp,
                vlan_filtering,
            } => {
                // Only what differs from the kernel's defaults: a kernel without
                // CONFIG_BRIDGE_VLAN_FILTERING refuses even `vlan_filtering 0`.
                let mut bridge = LinkBridge::new(name);
                if *stp {
                    bridge = bridge.stp_state(BridgeStpState::KernelStp);
                }
                if *vlan_filtering {
                    bridge = bridge.vlan_filtering(true);
                }
                bridge.build()
            }
            LinkKind::Dummy => LinkDummy::new(name).build(),
            LinkKind::Bond(bond) => bond_message(name, bond),
        };
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|source| {
                if errno(&source) == Some(EOPNOTSUPP) {
                    NetworkdError::KindUnsupported {
                        link: name.to_string(),
                        kind: kind.name(),
                    }
                } else {
                    NetworkdError::Netlink {
                        op: "creating",
                        target: format!("{} link {name}", kind.name()),
                        source,
                    }
                }
            })
    }

    pub async fn delete_link(&self, link: &Link) -> Result<(), NetworkdError> {
        match self.handle.link().del(link.index).execute().await {
            Err(source) if !errno(&source).is_some_and(|e| GONE.contains(&e)) => {
                Err(failed("deleting", format!("link {}", link.name))(source))
            }
            _ => Ok(()),
        }
    }

    /// Enslaves `link` to `master` (or frees it with `None`). A bond takes members that are
    /// down, so the link is brought down first and up again after.
    pub async fn set_master(&self, link: &Link, master: Option<u32>) -> Result<(), NetworkdError> {
        let set = |message| async {
            self.handle
                .link()
                .set(message)
                .execute()
                .await
                .map_err(failed(
                    "setting the master of",
                    format!("link {}", link.name),
                ))
        };
        set(LinkUnspec::new_with_index(link.index).down().build()).await?;
        let message = match master {
            Some(master) => LinkUnspec::new_with_index(link.index).controller(master),
            None => LinkUnspec::new_with_index(link.index).nocontroller(),
        };
        set(message.build()).await?;
        set(LinkUnspec::new_with_index(link.index).up().build()).await
    }

    pub async fn set_mtu(&self, link: &Link, mtu: u32) -> Result<(), NetworkdError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(link.index).mtu(mtu).build())
            .execute()
            .await
            .map_err(failed(
                "setting the MTU of",
                format!("link {} to {mtu}", link.name),
            ))
    }

    /// Brings `link` up (or down).
    pub async fn set_up(&self, link: &Link, up: bool) -> Result<(), NetworkdError> {
        let message = LinkUnspec::new_with_index(link.index);
        let (message, op) = if up {
            (message.up(), "bringing up")
        } else {
            (message.down(), "bringing down")
        };
        self.handle
            .link()
            .set(message.build())
            .execute()
            .await
            .map_err(failed(op, format!("link {}", link.name)))
    }

    /// Adds `address` to `link`; an address already there is fine.
    pub async fn add_address(&self, link: &Link, address: IpNet) -> Result<(), NetworkdError> {
        match self
            .handle
            .address()
            .add(link.index, address.addr(), address.prefix_len())
            .execute()
            .await
        {
            Err(source) if errno(&source) != Some(EEXIST) => Err(failed(
                "adding",
                format!("address {address} on {}", link.name),
            )(source)),
            _ => Ok(()),
        }
    }

    pub async fn delete_address(&self, address: &Address) -> Result<(), NetworkdError> {
        match self
            .handle
            .address()
            .del(address.message.clone())
            .execute()
            .await
        {
            Err(source) if !errno(&source).is_some_and(|e| GONE.contains(&e)) => {
                Err(failed("deleting", format!("address {}", address.address))(
                    source,
                ))
            }
            _ => Ok(()),
        }
    }

    /// Adds the planned route out of link `index`; a route already there is fine.
    pub async fn add_route(&self, plan: &RoutePlan, index: u32) -> Result<(), NetworkdError> {
        let target = || format!("route {plan}");
        let invalid = |err| invalid_route(plan, err);
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(plan.destination.addr(), plan.destination.prefix_len())
            .map_err(invalid)?
            .priority(plan.metric)
            .protocol(RouteProtocol::Static);
        if plan.blackhole {
            builder = builder.kind(RouteType::BlackHole);
        } else {
            builder = builder.output_interface(index);
        }
        if let Some(gateway) = plan.gateway {
            builder = builder.gateway(gateway).map_err(invalid)?;
        } else if !plan.blackhole {
            builder = builder.scope(RouteScope::Link);
        }
        if let Some(source) = plan.source {
            builder = builder.pref_source(source).map_err(invalid)?;
        }
        if let Some(mtu) = plan.mtu {
            builder
                .get_mut()
                .attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        match self.handle.route().add(builder.build()).execute().await {
            Err(source) if errno(&source) != Some(EEXIST) => {
                Err(failed("adding", target())(source))
            }
            _ => Ok(()),
        }
    }

    pub async fn delete_route(&self, route: &Route) -> Result<(), NetworkdError> {
        match self
            .handle
            .route()
            .del(route.message.clone())
            .execute()
            .await
        {
            Err(source) if !errno(&source).is_some_and(|e| GONE.contains(&e)) => {
                Err(failed("deleting", format!("route {}", route.destination))(
                    source,
                ))
            }
            _ => Ok(()),
        }
    }
}

fn invalid_route(plan: &RoutePlan, err: impl std::fmt::Display) -> NetworkdError {
    NetworkdError::Route {
        route: format!("route {plan}"),
        message: err.to_string(),
    }
}

fn bond_message(name: &str, bond: &machineconfig::v1alpha1::Bond) -> LinkMessage {
    let mut b = LinkBond::new(name);
    // Validation guarantees these parse; a value that does not is left at the kernel default.
    if let Ok(mode) = bond.mode.parse::<BondMode>() {
        b = b.mode(mode);
    }
    macro_rules! opt {
        ($field:expr, $setter:ident) => {
            if let Some(value) = $field {
                b = b.$setter(value);
            }
        };
        ($field:expr, $setter:ident, parse $ty:ty) => {
            if let Some(value) = $field.as_deref().and_then(|v| v.parse::<$ty>().ok()) {
                b = b.$setter(value);
            }
        };
    }
    opt!(bond.miimon, miimon);
    opt!(bond.updelay, updelay);
    opt!(bond.downdelay, downdelay);
    opt!(bond.use_carrier, use_carrier);
    opt!(bond.arp_interval, arp_interval);
    opt!(bond.resend_igmp, resend_igmp);
    opt!(bond.num_peer_notif, num_peer_notif);
    opt!(bond.min_links, min_links);
    opt!(bond.lp_interval, lp_interval);
    opt!(bond.packets_per_slave, packets_per_port);
    opt!(bond.ad_actor_sys_prio, ad_actor_sys_prio);
    opt!(bond.ad_user_port_key, ad_user_port_key);
    opt!(bond.peer_notify_delay, peer_notif_delay);
    opt!(bond.tlb_dynamic_lb.map(|v| v != 0), tlb_dynamic_lb);
    opt!(
        bond.all_slaves_active.map(BondAllPortActive::from),
        all_ports_active
    );
    opt!(bond.xmit_hash_policy, xmit_hash_policy, parse BondXmitHashPolicy);
    opt!(bond.lacp_rate, ad_lacp_rate, parse BondLacpRate);
    opt!(bond.arp_validate, arp_validate, parse BondArpValidate);
    opt!(bond.arp_all_targets, arp_all_targets, parse BondArpAllTargets);
    opt!(bond.primary_reselect, primary_reselect, parse BondPrimaryReselect);
    opt!(bond.fail_over_mac, fail_over_mac, parse BondFailOverMac);
    opt!(bond.ad_select, ad_select, parse BondAdSelect);
    if let Some(mac) = bond.ad_actor_system.as_deref().and_then(dhcp::parse_mac) {
        b = b.ad_actor_system(mac);
    }
    let targets: Vec<Ipv4Addr> = bond
        .arp_ip_target
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    if !targets.is_empty() {
        b = b.arp_ip_target(targets);
    }
    b.build()
}

fn decode_link(message: LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        link_type: format!("{:?}", message.header.link_layer_type).to_lowercase(),
        mtu: 0,
        hardware_addr: Vec::new(),
        broadcast_addr: Vec::new(),
        oper_state: "unknown".to_string(),
        flags: message.header.flags.bits(),
        master: None,
        parent: None,
        vlan_id: None,
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::Address(addr) => link.hardware_addr = addr,
            LinkAttribute::Broadcast(addr) => link.broadcast_addr = addr,
            LinkAttribute::Controller(index) => link.master = Some(index),
            LinkAttribute::Link(index) if index != 0 => link.parent = Some(index),
            LinkAttribute::OperState(state) => link.oper_state = oper_state(state).to_string(),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => link.kind = Some(kind_name(&kind)),
                        LinkInfo::Data(InfoData::Vlan(vlan)) => {
                            for v in vlan {
                                if let InfoVlan::Id(id) = v {
                                    link.vlan_id = Some(id);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn kind_name(kind: &InfoKind) -> String {
    kind.to_string()
}

/// Upstream's spelling of the operational state.
fn oper_state(state: State) -> &'static str {
    match state {
        State::Up => "up",
        State::Down => "down",
        State::LowerLayerDown => "lowerLayerDown",
        State::Dormant => "dormant",
        State::NotPresent => "notPresent",
        State::Testing => "testing",
        _ => "unknown",
    }
}

fn address_scope(scope: AddressScope) -> String {
    match scope {
        AddressScope::Universe => "global".into(),
        AddressScope::Site => "site".into(),
        AddressScope::Link => "link".into(),
        AddressScope::Host => "host".into(),
        AddressScope::Nowhere => "nowhere".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn decode_address(message: AddressMessage) -> Option<Address> {
    // IFA_LOCAL is the address itself on point-to-point links; IFA_ADDRESS elsewhere.
    let mut ip = None;
    let mut flags = u32::from(message.header.flags.bits());
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(local) => ip = Some(*local),
            AddressAttribute::Address(address) if ip.is_none() => ip = Some(*address),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    let address = IpNet::new(ip?, message.header.prefix_len).ok()?;
    Some(Address {
        link_index: message.header.index,
        address,
        scope: address_scope(message.header.scope),
        flags,
        message,
    })
}

fn route_ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn decode_route(message: RouteMessage) -> Option<Route> {
    let header = &message.header;
    let unspecified = match header.address_family {
        rtnetlink::packet_route::AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        rtnetlink::packet_route::AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut destination = unspecified;
    let mut route = Route {
        destination: IpNet::new(unspecified, 0).ok()?,
        gateway: None,
        source: None,
        out_link: None,
        table: u32::from(header.table),
        priority: 0,
        scope: match header.scope {
            RouteScope::Universe => "global".into(),
            other => format!("{other:?}").to_lowercase(),
        },
        kind: route_type(header.kind),
        protocol: format!("{:?}", header.protocol).to_lowercase(),
        mtu: None,
        message: message.clone(),
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(address) => destination = route_ip(address)?,
            RouteAttribute::Gateway(address) => route.gateway = route_ip(address),
            RouteAttribute::PrefSource(address) => route.source = route_ip(address),
            RouteAttribute::Oif(index) => route.out_link = Some(*index),
            RouteAttribute::Table(table) => route.table = *table,
            RouteAttribute::Priority(priority) => route.priority = *priority,
            RouteAttribute::Metrics(metrics) => {
                for metric in metrics {
                    if let RouteMetric::Mtu(mtu) = metric {
                        route.mtu = Some(*mtu);
                    }
                }
            }
            _ => {}
        }
    }
    route.destination = IpNet::new(destination, header.destination_prefix_length).ok()?;
    Some(route)
}

fn route_type(kind: RouteType) -> String {
    format!("{kind:?}").to_lowercase()
}
