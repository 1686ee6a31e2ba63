//! Shared virtual IPs of control planes (upstream's VIP operator): `machine.network.interfaces[]
//! .vip` (and a VLAN's `vip`) and `Layer2VIPConfig` documents become
//! `OperatorSpecs.net.talos.dev` resources ([`OperatorVipConfigController`]); once the node's
//! etcd member runs and is healthy, [`run`] campaigns for each of them in an etcd election
//! ([`campaign`]) under upstream's key `talos:v1:vip:election:<ip>` with a 60 s lease (etcd's
//! default session TTL, as upstream). The winner holds the address: an
//! `AddressSpecs.net.talos.dev` resource (layer `operator`) and networkd's operator layer, which
//! adds it to the link and sends a gratuitous ARP (IPv4, as upstream; no unsolicited NA for
//! IPv6). Losing the election, the lease, or shutting down removes the address before the
//! election key is given up, so two nodes never hold it at once by this node's doing; a node
//! that dies holds its key until the lease runs out, then the next campaigner takes over.
//!
//! Limits: `equinixMetal` and `hcloud` VIPs (and `HCloudVIPConfig`) move the address with the
//! provider's API, which this environment cannot reach: they are decoded and validated, logged as
//! unsupported here and not campaigned for. Workers get their operator specs, as upstream, but
//! run no etcd, so they never campaign. A node that does not manage its network (dev mode
//! without `--manage-network`) does not campaign either: it could not hold the address.

mod campaign;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use resources::{Context, Controller, Kind, Requeue, Spec, State, WatchOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::controllers::{ServiceSpec, active_config, machine_config_kind};
use crate::machine::Machine;

/// Whether `document` is applied here (the other VIP kind is not: see the module docs).
pub fn applied_by_vip(document: &Document) -> bool {
    matches!(document, Document::Layer2Vip(_))
}

/// `OperatorSpecs.net.talos.dev` of a VIP (upstream's `OperatorSpecSpec` with its `vip`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorSpec {
    pub operator: String,
    pub link_name: String,
    pub require_up: bool,
    pub vip: VipOperatorSpec,
    pub layer: String,
}

/// upstream's `VIPOperatorSpec` (the cloud-API parts are never set here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VipOperatorSpec {
    pub ip: IpAddr,
    #[serde(rename = "gratuitousARP")]
    pub gratuitous_arp: bool,
}

impl Spec for OperatorSpec {
    const TYPE: &'static str = "OperatorSpecs.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

impl OperatorSpec {
    fn vip(ip: IpAddr, link: &str) -> Self {
        OperatorSpec {
            operator: "vip".into(),
            link_name: link.into(),
            require_up: true,
            vip: VipOperatorSpec {
                ip,
                gratuitous_arp: true,
            },
            layer: "configuration".into(),
        }
    }

    /// upstream's id: `vip/<link>/<ip>`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.operator, self.link_name, self.vip.ip)
    }

    /// The address the holder adds: the IP as a host prefix.
    fn address(&self) -> AddressSpec {
        let (family, bits) = match self.vip.ip {
            IpAddr::V4(_) => ("inet4", 32),
            IpAddr::V6(_) => ("inet6", 128),
        };
        AddressSpec {
            address: format!("{}/{bits}", self.vip.ip),
            link_name: self.link_name.clone(),
            family: family.into(),
            scope: "global".into(),
            flags: "permanent".into(),
            announce_with_arp: self.vip.ip.is_ipv4() && self.vip.gratuitous_arp,
            layer: "operator".into(),
        }
    }
}

/// `AddressSpecs.net.talos.dev` of a held VIP (layer `operator`, id `<link>/<address>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpec {
    pub address: String,
    pub link_name: String,
    pub family: String,
    pub scope: String,
    pub flags: String,
    #[serde(rename = "announceWithARP", skip_serializing_if = "std::ops::Not::not")]
    pub announce_with_arp: bool,
    pub layer: String,
}

impl Spec for AddressSpec {
    const TYPE: &'static str = "AddressSpecs.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

impl AddressSpec {
    fn id(&self) -> String {
        format!("{}/{}", self.link_name, self.address)
    }
}

/// The VIP operators `config` asks for, and the v1alpha1 VIPs it asks for that are not
/// supported here (each with its path).
pub fn vip_operators(config: &Config) -> (Vec<OperatorSpec>, Vec<String>) {
    let mut operators = Vec::new();
    let mut unsupported = Vec::new();
    let mut add = |path: String, link: String, vip: &machineconfig::v1alpha1::Vip| {
        if vip.equinix_metal.is_some() || vip.hcloud.is_some() {
            unsupported.push(format!(
                "{path}: a VIP moved through a cloud provider's API is not supported here: \
                 accepted, not applied"
            ));
        } else if let Ok(ip) = vip.ip.parse() {
            operators.push(OperatorSpec::vip(ip, &link));
        }
    };
    let interfaces = config
        .v1alpha1
        .as_ref()
        .and_then(|v| v.machine.as_ref()?.network.as_ref())
        .map(|n| n.interfaces.as_slice())
        .unwrap_or_default();
    for (i, device) in interfaces.iter().enumerate() {
        let Some(name) = device.interface.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        if device.ignore == Some(true) {
            continue;
        }
        let path = format!("machine.network.interfaces[{i}]");
        if let Some(vip) = &device.vip {
            add(format!("{path}.vip"), name.to_string(), vip);
        }
        for (j, vlan) in device.vlans.iter().enumerate() {
            if let Some(vip) = &vlan.vip {
                let link = format!("{name}.{}", vlan.vlan_id);
                add(format!("{path}.vlans[{j}].vip"), link, vip);
            }
        }
    }
    // `HCloudVIPConfig` is reported with the other documents not applied (node_config).
    for document in &config.documents {
        if let Document::Layer2Vip(vip) = document
            && let Ok(ip) = vip.name.parse()
        {
            operators.push(OperatorSpec::vip(ip, &vip.link));
        }
    }
    (operators, unsupported)
}

/// The machine config → one `OperatorSpec` per VIP (upstream's OperatorVIPConfigController).
#[derive(Debug, Default)]
pub struct OperatorVipConfigController;

impl Controller for OperatorVipConfigController {
    fn name(&self) -> &'static str {
        "network.OperatorVIPConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<OperatorSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let (operators, unsupported) = active_config(context)?
                .map(|config| vip_operators(&config))
                .unwrap_or_default();
            for problem in unsupported {
                tracing::warn!("{problem}");
            }
            let mut ids = Vec::new();
            for operator in &operators {
                let id = operator.id();
                context.write(&id, operator).map_err(|e| e.to_string())?;
                ids.push(id);
            }
            let keep: Vec<&str> = ids.iter().map(String::as_str).collect();
            context
                .keep_only::<OperatorSpec>(&keep)
                .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

/// Who writes the held addresses (upstream's operator runner; its inputs are etcd's election,
/// outside the state).
pub const ADDRESS_OWNER: &str = "network.OperatorSpecController";
/// How long a stopping campaign may take to give its address and key up.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The addresses this node holds, shared by its campaigns: each change is written to the state
/// and handed, whole, to networkd's operator layer.
#[derive(Clone, Debug)]
pub struct Holdings {
    machine: Arc<Machine>,
    held: Arc<Mutex<BTreeMap<String, AddressSpec>>>,
}

impl Holdings {
    fn new(machine: Arc<Machine>) -> Self {
        Holdings {
            machine,
            held: Arc::default(),
        }
    }

    /// Holds (`Some`) or gives up the address of operator `id`, then tells networkd.
    async fn set(&self, id: &str, address: Option<AddressSpec>) {
        let state: &State = &self.machine.resources;
        {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            let result = match address {
                Some(address) => {
                    let written = state.write_spec(ADDRESS_OWNER, &address.id(), &address);
                    held.insert(id.to_string(), address);
                    written.map(drop)
                }
                None => match held.remove(id) {
                    Some(old) => state
                        .destroy(ADDRESS_OWNER, &Kind::of::<AddressSpec>(), &old.id())
                        .map(drop),
                    None => Ok(()),
                },
            };
            if let Err(error) = result {
                tracing::error!(%error, "cannot record the VIP address spec");
            }
        }
        self.push().await;
    }

    /// Hands the held addresses to networkd (again: a restarted networkd starts without them).
    async fn push(&self) {
        let addresses = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|a| proto::talosrs::networkd::OperatorAddress {
                address: a.address.clone(),
                link_name: a.link_name.clone(),
                announce_with_arp: a.announce_with_arp,
            })
            .collect();
        let mut client = crate::network::networkd_client(&self.machine.layout.networkd_socket());
        let request = proto::talosrs::networkd::OperatorAddresses { addresses };
        match client.set_operator_addresses(request).await {
            Ok(reply) => {
                for error in &reply.get_ref().errors {
                    tracing::warn!(%error, "networkd could not apply a part of the VIP addresses");
                }
            }
            Err(status) => {
                tracing::warn!(error = %status.message(), "networkd did not take the VIP addresses");
            }
        }
    }
}

/// The operator specs to campaign for now: all of them once etcd runs healthy on a node that
/// manages its network, none otherwise.
fn wanted(machine: &Machine) -> BTreeMap<String, OperatorSpec> {
    let state: &State = &machine.resources;
    let etcd_healthy = state
        .get(&Kind::of::<ServiceSpec>(), "etcd")
        .and_then(|r| serde_norway::from_str::<ServiceSpec>(&r.yaml_spec).ok())
        .is_some_and(|s| s.running && s.healthy);
    if !etcd_healthy || !machine.manages_network {
        return BTreeMap::new();
    }
    state
        .list(&Kind::of::<OperatorSpec>())
        .iter()
        .filter_map(|r| serde_norway::from_str::<OperatorSpec>(&r.yaml_spec).ok())
        .map(|spec| (spec.id(), spec))
        .collect()
}

/// Runs the campaigns the node's operator specs ask for until `stop` turns true; then each
/// gives its address and election key up (bounded by [`STOP_TIMEOUT`]). It looks at its inputs
/// (the operator specs, the etcd service) when one of them changes.
pub async fn run(machine: Arc<Machine>, mut stop: watch::Receiver<bool>) {
    let holdings = Holdings::new(Arc::clone(&machine));
    let mut campaigns: BTreeMap<String, (OperatorSpec, campaign::Campaign)> = BTreeMap::new();
    let state: &State = &machine.resources;
    let etcd = || {
        let options = WatchOptions {
            id: Some("etcd".to_owned()),
            ..WatchOptions::default()
        };
        state.watch(&Kind::of::<ServiceSpec>(), &options)
    };
    let operators = || state.watch(&Kind::of::<OperatorSpec>(), &WatchOptions::default());
    // Watched before the first look: no change after it is missed.
    let (mut etcd_changes, mut operator_changes) = (etcd(), operators());
    loop {
        let wanted = wanted(&machine);
        let stale: Vec<String> = campaigns
            .iter()
            .filter(|(id, (spec, _))| wanted.get(*id) != Some(spec))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some((_, campaign)) = campaigns.remove(&id) {
                campaign.stop(STOP_TIMEOUT).await;
            }
        }
        for (id, spec) in wanted {
            if let std::collections::btree_map::Entry::Vacant(slot) = campaigns.entry(id) {
                let started = campaign::Campaign::start(&machine, &holdings, slot.key(), &spec);
                slot.insert((spec, started));
            }
        }
        // A watch that fell behind ends: it starts over, and the next look sees the state as is.
        tokio::select! {
            changed = etcd_changes.next() => if changed.is_none() { etcd_changes = etcd() },
            changed = operator_changes.next() => if changed.is_none() { operator_changes = operators() },
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
        }
    }
    for (_, (_, campaign)) in campaigns {
        campaign.stop(STOP_TIMEOUT).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::controllers::test_inputs::{settle, write_config};

    #[tokio::test]
    async fn the_controller_writes_one_operator_spec_per_vip_and_removes_it_with_the_vip() {
        let state = Arc::new(State::new());
        let mut runtime = resources::Runtime::new(Arc::clone(&state));
        runtime.register(OperatorVipConfigController);
        runtime.start();
        let ids = || -> Vec<String> {
            state
                .list(&Kind::of::<OperatorSpec>())
                .iter()
                .map(|r| r.metadata.id.clone())
                .collect()
        };
        write_config(
            &state,
            "apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 10.5.0.50\nlink: eth0\n",
        );
        settle().await;
        assert_eq!(ids(), ["vip/eth0/10.5.0.50"]);
        write_config(
            &state,
            "apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 10.5.0.51\nlink: eth1\n",
        );
        settle().await;
        assert_eq!(ids(), ["vip/eth1/10.5.0.51"]);
        write_config(
            &state,
            "apiVersion: v1alpha1\nkind: HCloudVIPConfig\nname: 10.5.0.52\nlink: eth1\napiToken: t\n",
        );
        settle().await;
        assert!(ids().is_empty(), "{:?}", ids());
    }

    #[test]
    fn vips_of_interfaces_vlans_and_documents_become_operator_specs() {
        let config = Config::from_yaml(
            "version: v1alpha1\nmachine:\n  type: controlplane\n  network:\n    interfaces:\n\
             \x20   - interface: eth0\n      vip:\n        ip: 10.5.0.50\n      vlans:\n\
             \x20       - vlanId: 7\n          vip:\n            ip: fd00::50\n\
             \x20   - interface: eth1\n      vip:\n        ip: 10.6.0.50\n        hcloud:\n\
             \x20         apiToken: secret\n---\napiVersion: v1alpha1\nkind: Layer2VIPConfig\n\
             name: 10.7.0.50\nlink: eth2\n",
        )
        .unwrap();
        let (operators, unsupported) = vip_operators(&config);
        let ids: Vec<String> = operators.iter().map(OperatorSpec::id).collect();
        assert_eq!(
            ids,
            [
                "vip/eth0/10.5.0.50",
                "vip/eth0.7/fd00::50",
                "vip/eth2/10.7.0.50"
            ]
        );
        assert_eq!(unsupported.len(), 1);
        assert!(
            unsupported[0].starts_with("machine.network.interfaces[1].vip:"),
            "{unsupported:?}"
        );
        let v4 = operators[0].address();
        assert_eq!(
            (v4.id().as_str(), v4.announce_with_arp, v4.family.as_str()),
            ("eth0/10.5.0.50/32", true, "inet4")
        );
        let v6 = operators[1].address();
        assert_eq!(
            (
                v6.address.as_str(),
                v6.announce_with_arp,
                v6.family.as_str()
            ),
            ("fd00::50/128", false, "inet6")
        );
        let yaml = serde_norway::to_string(&operators[0]).unwrap();
        assert!(
            yaml.contains("gratuitousARP: true") && yaml.contains("layer: configuration"),
            "{yaml}"
        );
        let yaml = serde_norway::to_string(&v4).unwrap();
        assert!(
            yaml.contains("announceWithARP: true") && yaml.contains("layer: operator"),
            "{yaml}"
        );
    }
}
