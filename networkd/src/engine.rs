//! The reconciler: one task owns the desired state ([`Plan`] plus DHCP leases), the ownership
//! record and the DHCP clients, and brings the kernel and the files in line with them on every
//! Apply, lease change and periodic tick.
//!
//! Order of a pass: stop DHCP where it left the config; remove owned routes, rules, addresses,
//! enslavements, MTU changes and links that are no longer wanted; create links (bonds, bridges,
//! dummies, then VLANs); enslave, set MTU, bring up; add addresses, then routes, then rules; write
//! resolv.conf and hosts, set the hostname; start DHCP where newly wanted. A step that fails is
//! reported and the rest goes on; the next pass retries it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::NetworkdError;
use crate::announce;
use crate::dhcp::{self, Lease, LeaseUpdate};
use crate::hostfiles::{self, DEFAULT_NAMESERVERS, HostFiles};
use crate::netlink::{Changes, Netlink, Snapshot};
use crate::owned::{Owned, Record};
use crate::plan::{AddressPlan, Hostname, Inputs, LinkKind, Plan, RoutePlan};

/// What changed, for the Apply answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Added,
    Removed,
    Updated,
}

/// One change a pass made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    /// `link`, `address`, `route`, `rule`, `hostname`, `resolvers`, `hosts`, `dhcp`.
    pub kind: &'static str,
    pub id: String,
}

/// The outcome of a pass.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub changes: Vec<Change>,
    pub errors: Vec<String>,
}

impl Report {
    fn change(&mut self, action: Action, kind: &'static str, id: impl Into<String>) {
        let id = id.into();
        tracing::info!(?action, kind, %id, "network change");
        self.changes.push(Change { action, kind, id });
    }

    fn error(&mut self, error: impl ToString) {
        let error = error.to_string();
        tracing::warn!("{error}");
        self.errors.push(error);
    }
}

/// What Status shows.
#[derive(Clone, Debug)]
pub struct StatusView {
    pub snapshot: Snapshot,
    pub owned: Owned,
    pub leases: BTreeMap<String, Lease>,
    pub hostname: Option<Hostname>,
    pub nameservers: Vec<IpAddr>,
    pub search_domains: Vec<String>,
}

/// Requests to the engine task.
#[derive(Debug)]
pub enum Command {
    /// Adopt `plan` (built from `inputs`) and reconcile.
    Apply {
        plan: Box<Plan>,
        inputs: Inputs,
        reply: oneshot::Sender<Report>,
    },
    Status {
        reply: oneshot::Sender<Result<StatusView, NetworkdError>>,
    },
    /// Replace the operator layer and reconcile.
    SetOperatorAddresses {
        addresses: Vec<OperatorAddress>,
        reply: oneshot::Sender<Report>,
    },
}

/// An address an operator of machined holds on top of the config (a shared VIP while this
/// node holds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorAddress {
    pub address: AddressPlan,
    /// Broadcast a gratuitous ARP when it is added (IPv4 on Ethernet links).
    pub announce_with_arp: bool,
}

/// Seconds between passes when nothing happens (picks up links that appear late).
const TICK_SECONDS: u64 = 30;

/// The state the engine task owns.
#[derive(Debug)]
pub struct Engine {
    netlink: Netlink,
    record: Record,
    owned: Owned,
    files: HostFiles,
    may_set_hostname: bool,
    plan: Option<Plan>,
    leases: BTreeMap<String, Lease>,
    clients: BTreeMap<String, JoinHandle<()>>,
    lease_tx: mpsc::UnboundedSender<LeaseUpdate>,
    lease_rx: mpsc::UnboundedReceiver<LeaseUpdate>,
    nameservers: Vec<IpAddr>,
    search_domains: Vec<String>,
    /// The operator layer; kept in memory only, so a networkd that stops gives it up.
    operator_addresses: Vec<OperatorAddress>,
    /// The latest status, for WatchStatus (`None` until the first one is read).
    status: watch::Sender<Option<StatusView>>,
}

/// The desired state of one pass: the plan with its device-less `ip=` resolved and the leases
/// folded in.
struct Desired {
    plan: Plan,
    hostname: Option<Hostname>,
}

impl Engine {
    pub fn new(
        netlink: Netlink,
        record: Record,
        files: HostFiles,
        may_set_hostname: bool,
    ) -> Result<Self, NetworkdError> {
        let owned = record.load()?;
        let (lease_tx, lease_rx) = mpsc::unbounded_channel();
        Ok(Engine {
            netlink,
            record,
            owned,
            files,
            may_set_hostname,
            plan: None,
            leases: BTreeMap::new(),
            clients: BTreeMap::new(),
            lease_tx,
            lease_rx,
            nameservers: Vec::new(),
            search_domains: Vec::new(),
            operator_addresses: Vec::new(),
            status: watch::Sender::new(None),
        })
    }

    /// Follows the status [`Engine::serve`] publishes: at start, on every kernel notification
    /// and after every pass.
    pub fn status_watch(&self) -> watch::Receiver<Option<StatusView>> {
        self.status.subscribe()
    }

    /// The inputs of the last Apply before a restart, if any.
    pub fn last_inputs(&self) -> Option<Inputs> {
        self.owned.last_inputs.clone()
    }

    /// Adopts `plan` and reconciles.
    pub async fn apply(&mut self, plan: Plan, inputs: Inputs) -> Report {
        let ignored = plan.ignored.clone();
        self.plan = Some(plan);
        self.owned.last_inputs = Some(inputs);
        let mut report = self.reconcile().await;
        for path in ignored {
            report.error(format!("{path}: not supported by networkd yet, ignored"));
        }
        report
    }

    /// Serves commands until `commands` closes; then stops the DHCP clients. Publishes the
    /// status at start, after each kernel notification (`changes`) and after each pass.
    pub async fn serve(mut self, mut commands: mpsc::Receiver<Command>, mut changes: Changes) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(TICK_SECONDS));
        tick.tick().await;
        let mut notified = true;
        self.publish_status().await;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Apply { plan, inputs, reply }) => {
                        let report = self.apply(*plan, inputs).await;
                        let _ = reply.send(report);
                    }
                    Some(Command::Status { reply }) => {
                        let _ = reply.send(self.status().await);
                        continue;
                    }
                    Some(Command::SetOperatorAddresses { addresses, reply }) => {
                        let report = self.set_operator_addresses(addresses).await;
                        let _ = reply.send(report);
                    }
                },
                Some(update) = self.lease_rx.recv() => {
                    match update.lease {
                        Some(lease) => self.leases.insert(update.link, lease),
                        None => self.leases.remove(&update.link),
                    };
                    self.reconcile().await;
                }
                more = changes.next(), if notified => {
                    if !more {
                        tracing::warn!("the netlink notifications stopped: status follows passes only");
                        notified = false;
                    }
                }
                _ = tick.tick() => {
                    if self.plan.is_some() {
                        self.reconcile().await;
                    }
                }
            }
            self.publish_status().await;
        }
        for (_, client) in std::mem::take(&mut self.clients) {
            client.abort();
        }
        // Operator addresses are held only while machined's operator can renew them (a VIP's
        // etcd lease): a networkd that stops gives them up rather than leave a stale holder.
        if !self.operator_addresses.is_empty() {
            self.set_operator_addresses(Vec::new()).await;
        }
    }

    /// Replaces the operator layer; reconciles when it changed.
    pub async fn set_operator_addresses(&mut self, addresses: Vec<OperatorAddress>) -> Report {
        if addresses == self.operator_addresses {
            return Report::default();
        }
        self.operator_addresses = addresses;
        self.reconcile().await
    }

    /// Reads the status and hands it to the watchers (a failed read keeps the last one).
    async fn publish_status(&self) {
        match self.status().await {
            Ok(view) => {
                self.status.send_replace(Some(view));
            }
            Err(error) => tracing::warn!(%error, "cannot read the status for its watchers"),
        }
    }

    async fn status(&self) -> Result<StatusView, NetworkdError> {
        let hostname = self
            .plan
            .as_ref()
            .and_then(|p| p.hostname.clone())
            .or_else(|| self.lease_hostname())
            .or_else(|| {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .map(|h| Hostname {
                        host: h,
                        domain: String::new(),
                    })
            });
        Ok(StatusView {
            snapshot: self.netlink.snapshot().await?,
            owned: self.owned.clone(),
            leases: self.leases.clone(),
            hostname,
            nameservers: self.nameservers.clone(),
            search_domains: self.search_domains.clone(),
        })
    }

    fn lease_hostname(&self) -> Option<Hostname> {
        self.leases
            .values()
            .find_map(|l| l.hostname.as_deref())
            .map(|h| Hostname {
                host: h.split('.').next().unwrap_or(h).to_string(),
                domain: h
                    .split_once('.')
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_default(),
            })
    }

    /// One pass; see the module docs for the order.
    pub async fn reconcile(&mut self) -> Report {
        let mut report = Report::default();
        let Some(plan) = self.plan.clone() else {
            return report;
        };
        self.stop_dhcp(&plan, &mut report);
        let snapshot = match self.netlink.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(err) => {
                report.error(err);
                return report;
            }
        };
        let desired = self.desired(plan, &snapshot, &mut report);
        self.remove_stale(&desired.plan, &snapshot, &mut report)
            .await;
        self.save(&mut report);
        self.create_links(&desired.plan, &mut report).await;
        self.configure_links(&desired.plan, &mut report).await;
        self.add_addresses_and_routes(&desired.plan, &mut report)
            .await;
        self.add_rules(&desired.plan, &mut report).await;
        self.write_files(&desired, &mut report).await;
        self.start_dhcp(&desired.plan, &mut report).await;
        self.save(&mut report);
        report
    }

    fn save(&self, report: &mut Report) {
        if let Err(err) = self.record.save(&self.owned) {
            report.error(err);
        }
    }

    /// Resolves the device-less link `""` and folds the leases into `plan`.
    fn desired(&self, mut plan: Plan, snapshot: &Snapshot, report: &mut Report) -> Desired {
        if plan.links.contains_key("") {
            let first = snapshot
                .links
                .iter()
                .filter(|l| l.link_type == "ether" && !plan.links.contains_key(&l.name))
                .filter(|l| matches!(l.kind.as_deref(), None | Some("veth")))
                .min_by_key(|l| l.index)
                .map(|l| l.name.clone());
            let rename = |link: &mut String| {
                if link.is_empty()
                    && let Some(first) = &first
                {
                    link.clone_from(first);
                }
            };
            if let Some(settings) = plan.links.remove("") {
                match &first {
                    Some(first) => {
                        plan.links.insert(first.clone(), settings);
                    }
                    None => report.error(
                        "kernel ip= names no device and there is no physical link to use (yet)",
                    ),
                }
            }
            plan.addresses.iter_mut().for_each(|a| rename(&mut a.link));
            plan.routes
                .iter_mut()
                .filter(|r| !r.blackhole)
                .for_each(|r| rename(&mut r.link));
            if let Some(dhcp) = plan.dhcp.remove("")
                && let Some(first) = &first
            {
                plan.dhcp.insert(first.clone(), dhcp);
            }
            plan.addresses.retain(|a| !a.link.is_empty());
            plan.routes.retain(|r| r.blackhole || !r.link.is_empty());
        }
        for operator in &self.operator_addresses {
            if !plan.addresses.contains(&operator.address) {
                plan.addresses.push(operator.address.clone());
            }
        }
        let mut lease_dns = Vec::new();
        for (link, lease) in &self.leases {
            let Some(dhcp) = plan.dhcp.get(link) else {
                continue;
            };
            plan.addresses.push(AddressPlan {
                link: link.clone(),
                address: IpNet::V4(lease.address),
            });
            if let Some(router) = lease.router {
                plan.routes.push(RoutePlan {
                    link: link.clone(),
                    destination: IpNet::V4(ipnet::Ipv4Net::default()),
                    gateway: Some(IpAddr::V4(router)),
                    source: None,
                    metric: dhcp.route_metric,
                    mtu: None,
                    blackhole: false,
                });
            }
            lease_dns.extend(lease.dns.iter().map(|d| IpAddr::V4(*d)));
        }
        if plan.nameservers.is_empty() {
            plan.nameservers = lease_dns;
        }
        if plan.nameservers.is_empty() {
            plan.nameservers = DEFAULT_NAMESERVERS
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect();
        }
        plan.nameservers.dedup();
        let hostname = plan.hostname.clone().or_else(|| self.lease_hostname());
        Desired { plan, hostname }
    }

    fn stop_dhcp(&mut self, plan: &Plan, report: &mut Report) {
        // Clients on links that left the config; "" (ip= without device) maps to a real link
        // only at resolve time, so such clients stay while the plan has a device-less DHCP.
        let stale: Vec<String> = self
            .clients
            .keys()
            .filter(|link| !plan.dhcp.contains_key(*link) && !plan.dhcp.contains_key(""))
            .cloned()
            .collect();
        for link in stale {
            if let Some(client) = self.clients.remove(&link) {
                client.abort();
            }
            self.leases.remove(&link);
            report.change(Action::Removed, "dhcp", link);
        }
    }

    async fn start_dhcp(&mut self, plan: &Plan, report: &mut Report) {
        let wanted: Vec<String> = plan
            .dhcp
            .keys()
            .filter(|link| !self.clients.contains_key(*link))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let snapshot = match self.netlink.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(err) => return report.error(err),
        };
        for link in wanted {
            let Some(found) = snapshot.link(&link) else {
                report.error(NetworkdError::LinkMissing(link));
                continue;
            };
            let Ok(mac) = <[u8; 6]>::try_from(found.hardware_addr.as_slice()) else {
                report.error(format!("DHCP on {link}: the link has no Ethernet address"));
                continue;
            };
            let client = dhcp::spawn(link.clone(), found.index, mac, self.lease_tx.clone());
            self.clients.insert(link.clone(), client);
            report.change(Action::Added, "dhcp", link);
        }
    }

    async fn remove_stale(&mut self, plan: &Plan, snapshot: &Snapshot, report: &mut Report) {
        let index = |name: &str| snapshot.link(name).map(|l| l.index);
        for route in self.owned.routes.clone() {
            if plan.routes.contains(&route) {
                continue;
            }
            if let Some(link) = route_link(snapshot, &route) {
                for found in snapshot.routes.iter().filter(|r| r.matches(&route, link)) {
                    if let Err(err) = self.netlink.delete_route(found).await {
                        report.error(err);
                        continue;
                    }
                }
            }
            self.owned.routes.remove(&route);
            report.change(Action::Removed, "route", route.to_string());
        }
        for rule in self.owned.rules.clone() {
            if plan.rules.contains(&rule) {
                continue;
            }
            for found in snapshot.rules.iter().filter(|r| r.is(&rule)) {
                if let Err(err) = self.netlink.delete_rule(found).await {
                    report.error(err);
                }
            }
            self.owned.rules.remove(&rule);
            report.change(Action::Removed, "rule", rule.to_string());
        }
        for address in self.owned.addresses.clone() {
            if plan.addresses.contains(&address) {
                continue;
            }
            if let Some(link) = index(&address.link) {
                let found = snapshot
                    .addresses
                    .iter()
                    .find(|a| a.link_index == link && a.address == address.address);
                if let Some(found) = found
                    && let Err(err) = self.netlink.delete_address(found).await
                {
                    report.error(err);
                    continue;
                }
            }
            self.owned.addresses.remove(&address);
            report.change(Action::Removed, "address", address.to_string());
        }
        for (name, master) in self.owned.enslaved.clone() {
            let wanted = plan.links.get(&name).and_then(|l| l.master.as_ref());
            if wanted == Some(&master) {
                continue;
            }
            if let (Some(link), Some(master_index)) = (snapshot.link(&name), index(&master))
                && link.master == Some(master_index)
                && let Err(err) = self.netlink.set_master(link, None).await
            {
                report.error(err);
                continue;
            }
            self.owned.enslaved.remove(&name);
            report.change(
                Action::Updated,
                "link",
                format!("{name} released from {master}"),
            );
        }
        for (name, original) in self.owned.mtu.clone() {
            if plan.links.get(&name).is_some_and(|l| l.mtu.is_some()) {
                continue;
            }
            if let Some(link) = snapshot.link(&name)
                && link.mtu != original
                && let Err(err) = self.netlink.set_mtu(link, original).await
            {
                report.error(err);
                continue;
            }
            self.owned.mtu.remove(&name);
            report.change(Action::Updated, "link", format!("{name} mtu {original}"));
        }
        // VLANs first: they sit on the other links.
        let mut stale: Vec<(String, LinkKind)> = self
            .owned
            .links
            .iter()
            .filter(|(name, kind)| {
                plan.links.get(*name).and_then(|l| l.create.as_ref()) != Some(kind)
            })
            .map(|(name, kind)| (name.clone(), kind.clone()))
            .collect();
        stale.sort_by_key(|(_, kind)| !matches!(kind, LinkKind::Vlan { .. }));
        for (name, _) in stale {
            if let Some(link) = snapshot.link(&name)
                && let Err(err) = self.netlink.delete_link(link).await
            {
                report.error(err);
                continue;
            }
            self.owned.links.remove(&name);
            self.owned.mtu.remove(&name);
            self.owned
                .enslaved
                .retain(|link, master| link != &name && master != &name);
            self.owned.addresses.retain(|a| a.link != name);
            self.owned.routes.retain(|r| r.link != name);
            report.change(Action::Removed, "link", name);
        }
    }

    async fn create_links(&mut self, plan: &Plan, report: &mut Report) {
        // Masters and dummies first, then VLANs (whose parent may be a new bond).
        for vlans in [false, true] {
            let snapshot = match self.netlink.snapshot().await {
                Ok(snapshot) => snapshot,
                Err(err) => return report.error(err),
            };
            for (name, link) in &plan.links {
                let Some(kind) = &link.create else { continue };
                if matches!(kind, LinkKind::Vlan { .. }) != vlans || snapshot.link(name).is_some() {
                    continue;
                }
                let parent = match kind {
                    LinkKind::Vlan { parent, .. } => match snapshot.link(parent) {
                        Some(parent) => Some(parent.index),
                        None => {
                            report.error(NetworkdError::LinkMissing(parent.clone()));
                            continue;
                        }
                    },
                    _ => None,
                };
                match self.netlink.create_link(name, kind, parent).await {
                    Ok(()) => {
                        self.owned.links.insert(name.clone(), kind.clone());
                        self.save(report);
                        report.change(Action::Added, "link", format!("{name} ({})", kind.name()));
                    }
                    Err(err) => report.error(err),
                }
            }
        }
    }

    async fn configure_links(&mut self, plan: &Plan, report: &mut Report) {
        let snapshot = match self.netlink.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(err) => return report.error(err),
        };
        // Masters before members: a bond must exist before it takes members (it does), and
        // members are brought up by set_master.
        for (name, settings) in &plan.links {
            let Some(link) = snapshot.link(name) else {
                if settings.create.is_none() {
                    report.error(NetworkdError::LinkMissing(name.clone()));
                }
                continue;
            };
            if let Some(mtu) = settings.mtu
                && link.mtu != mtu
            {
                match self.netlink.set_mtu(link, mtu).await {
                    Ok(()) => {
                        if !self.owned.links.contains_key(name) {
                            self.owned.mtu.entry(name.clone()).or_insert(link.mtu);
                        }
                        report.change(Action::Updated, "link", format!("{name} mtu {mtu}"));
                    }
                    Err(err) => report.error(err),
                }
            }
            if let Some(master) = &settings.master {
                let Some(master_link) = snapshot.link(master) else {
                    report.error(NetworkdError::LinkMissing(master.clone()));
                    continue;
                };
                if link.master != Some(master_link.index) {
                    match self.netlink.set_master(link, Some(master_link.index)).await {
                        Ok(()) => {
                            self.owned.enslaved.insert(name.clone(), master.clone());
                            report.change(
                                Action::Updated,
                                "link",
                                format!("{name} enslaved to {master}"),
                            );
                        }
                        Err(err) => report.error(err),
                    }
                    continue;
                }
            }
            if settings.down {
                if link.is_up() {
                    match self.netlink.set_up(link, false).await {
                        Ok(()) => report.change(Action::Updated, "link", format!("{name} down")),
                        Err(err) => report.error(err),
                    }
                }
            } else if !link.is_up() {
                match self.netlink.set_up(link, true).await {
                    Ok(()) => report.change(Action::Updated, "link", format!("{name} up")),
                    Err(err) => report.error(err),
                }
            }
        }
    }

    async fn add_addresses_and_routes(&mut self, plan: &Plan, report: &mut Report) {
        let snapshot = match self.netlink.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(err) => return report.error(err),
        };
        for address in &plan.addresses {
            let Some(link) = snapshot.link(&address.link) else {
                continue; // reported by configure_links
            };
            let present = snapshot
                .addresses
                .iter()
                .any(|a| a.link_index == link.index && a.address == address.address);
            if present {
                continue;
            }
            match self.netlink.add_address(link, address.address).await {
                Ok(()) => {
                    self.owned.addresses.insert(address.clone());
                    report.change(Action::Added, "address", address.to_string());
                    self.announce(address, link, report);
                }
                Err(err) => report.error(err),
            }
        }
        for route in &plan.routes {
            let Some(link) = route_link(&snapshot, route) else {
                continue;
            };
            if snapshot.routes.iter().any(|r| r.matches(route, link)) {
                continue;
            }
            match self.netlink.add_route(route, link).await {
                Ok(()) => {
                    self.owned.routes.insert(route.clone());
                    report.change(Action::Added, "route", route.to_string());
                }
                Err(err) => report.error(err),
            }
        }
    }

    /// A gratuitous ARP for a newly added operator address that asks for one.
    fn announce(&self, address: &AddressPlan, link: &crate::netlink::Link, report: &mut Report) {
        let wanted = self
            .operator_addresses
            .iter()
            .any(|o| o.announce_with_arp && o.address == *address);
        let (IpAddr::V4(ip), Ok(mac)) = (
            address.address.addr(),
            <[u8; 6]>::try_from(link.hardware_addr.as_slice()),
        ) else {
            return;
        };
        if !wanted {
            return;
        }
        match announce::send_gratuitous_arp(link.index, mac, ip) {
            Ok(()) => tracing::info!(address = %ip, link = %address.link, "sent gratuitous ARP"),
            Err(err) => report.error(format!(
                "gratuitous ARP for {ip} on {}: {err}",
                address.link
            )),
        }
    }

    async fn add_rules(&mut self, plan: &Plan, report: &mut Report) {
        if plan.rules.is_empty() {
            return;
        }
        let present = match self.netlink.rules().await {
            Ok(rules) => rules,
            Err(err) => return report.error(err),
        };
        for rule in &plan.rules {
            if present.iter().any(|r| r.is(rule)) {
                self.owned.rules.insert(rule.clone());
                continue;
            }
            match self.netlink.add_rule(rule).await {
                Ok(()) => {
                    self.owned.rules.insert(rule.clone());
                    report.change(Action::Added, "rule", rule.to_string());
                }
                Err(err) => report.error(err),
            }
        }
    }

    async fn write_files(&mut self, desired: &Desired, report: &mut Report) {
        let plan = &desired.plan;
        let resolv = hostfiles::resolv_conf(&plan.nameservers, &plan.search_domains);
        match hostfiles::write_if_changed(&self.files.resolv_conf, &resolv) {
            Ok(true) => report.change(
                Action::Updated,
                "resolvers",
                plan.nameservers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Ok(false) => {}
            Err(err) => report.error(err),
        }
        self.nameservers.clone_from(&plan.nameservers);
        self.search_domains.clone_from(&plan.search_domains);
        let node_address = plan
            .addresses
            .iter()
            .map(|a| a.address.addr())
            .find(IpAddr::is_ipv4);
        let hosts = hostfiles::hosts(desired.hostname.as_ref(), node_address, &plan.hosts);
        match hostfiles::write_if_changed(&self.files.hosts, &hosts) {
            Ok(true) => report.change(
                Action::Updated,
                "hosts",
                self.files.hosts.display().to_string(),
            ),
            Ok(false) => {}
            Err(err) => report.error(err),
        }
        if self.may_set_hostname
            && let Some(hostname) = &desired.hostname
        {
            match hostfiles::set_hostname(&hostname.host) {
                Ok(true) => report.change(Action::Updated, "hostname", hostname.fqdn()),
                Ok(false) => {}
                Err(err) => report.error(err),
            }
        }
    }
}

/// The index of the link `route` goes out of (0 for a blackhole route, which has none), or
/// `None` while that link is missing.
pub fn route_link(snapshot: &Snapshot, route: &RoutePlan) -> Option<u32> {
    if route.blackhole {
        Some(0)
    } else {
        snapshot.link(&route.link).map(|l| l.index)
    }
}
