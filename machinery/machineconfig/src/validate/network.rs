//! Checks of `machine.network`.

use std::collections::BTreeMap;

use super::{Findings, formats};
use crate::MachineType;
use crate::v1alpha1::{
    Bond, Device, DeviceSelector, KubeSpan, NetworkConfig, Route, Vip, Vlan, Wireguard,
};

/// The smallest MTU KubeSpan's WireGuard link may have.
pub const KUBESPAN_MIN_MTU: u32 = 1280;

const BOND_MODES: &[&str] = &[
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
];

/// Bond options with a fixed set of values: (option, allowed values).
const BOND_ENUM_OPTIONS: &[(&str, &[&str])] = &[
    (
        "xmitHashPolicy",
        &["layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"],
    ),
    ("lacpRate", &["slow", "fast"]),
    (
        "arpValidate",
        &[
            "none",
            "active",
            "backup",
            "all",
            "filter",
            "filter_active",
            "filter_backup",
        ],
    ),
    ("arpAllTargets", &["any", "all"]),
    ("primaryReselect", &["always", "better", "failure"]),
    ("failOverMac", &["none", "active", "follow"]),
    ("adSelect", &["stable", "bandwidth", "count"]),
];

pub(super) fn validate(
    network: &NetworkConfig,
    machine_type: Option<MachineType>,
    f: &mut Findings,
) {
    let is_worker = machine_type == Some(MachineType::Worker);
    if let Some(hostname) = &network.hostname {
        f.check("machine.network.hostname", formats::hostname(hostname));
    }
    for (i, server) in network.nameservers.iter().enumerate() {
        f.check(
            format!("machine.network.nameservers[{i}]"),
            formats::ip(server),
        );
    }
    for (i, entry) in network.extra_host_entries.iter().enumerate() {
        f.check(
            format!("machine.network.extraHostEntries[{i}].ip"),
            formats::ip(&entry.ip),
        );
    }
    // Link name to the path of the setting that enslaved it first.
    let mut enslaved: BTreeMap<String, String> = BTreeMap::new();
    for (i, device) in network.interfaces.iter().enumerate() {
        let path = format!("machine.network.interfaces[{i}]");
        check_device(&path, device, is_worker, f);
        let master = device.interface.clone().unwrap_or_else(|| path.clone());
        let mut enslave = |link: &str, by: String, f: &mut Findings| {
            if let Some(first) = enslaved.get(link) {
                f.error(by, format!("link {link:?} is already enslaved by {first}"));
            } else {
                enslaved.insert(link.to_string(), by);
            }
        };
        if let Some(bond) = &device.bond {
            for (j, link) in bond.interfaces.iter().enumerate() {
                enslave(
                    link,
                    format!("{path}.bond.interfaces[{j}] (bond {master:?})"),
                    f,
                );
            }
        }
        if let Some(bridge) = &device.bridge {
            for (j, link) in bridge.interfaces.iter().enumerate() {
                enslave(
                    link,
                    format!("{path}.bridge.interfaces[{j}] (bridge {master:?})"),
                    f,
                );
            }
        }
        if let (Some(port), Some(link)) = (&device.bridge_port, &device.interface) {
            enslave(
                link,
                format!("{path}.bridgePort (bridge {:?})", port.master),
                f,
            );
        }
    }
    if let Some(kubespan) = &network.kubespan {
        check_kubespan(kubespan, f);
    }
}

fn check_device(path: &str, device: &Device, is_worker: bool, f: &mut Findings) {
    match (&device.interface, &device.device_selector) {
        (None, None) => f.error(path, "interface or deviceSelector is required"),
        (Some(_), Some(_)) => f.error(path, "interface and deviceSelector are mutually exclusive"),
        (Some(name), None) if name.is_empty() => {
            f.error(
                format!("{path}.interface"),
                "interface name must not be empty",
            );
        }
        _ => {}
    }
    if let Some(selector) = &device.device_selector {
        check_selector(&format!("{path}.deviceSelector"), selector, f);
    }
    check_addresses(path, &device.addresses, device.cidr.as_deref(), f);
    check_routes(path, &device.routes, f);
    if device.bond.is_some() && device.bridge.is_some() {
        f.error(path, "a link cannot be both a bond and a bridge");
    }
    if let Some(bond) = &device.bond {
        check_bond(&format!("{path}.bond"), bond, f);
    }
    if let Some(port) = &device.bridge_port
        && port.master.is_empty()
    {
        f.error(
            format!("{path}.bridgePort.master"),
            "bridge name is required",
        );
    }
    for (j, vlan) in device.vlans.iter().enumerate() {
        check_vlan(&format!("{path}.vlans[{j}]"), vlan, is_worker, f);
    }
    if let Some(wireguard) = &device.wireguard {
        check_wireguard(&format!("{path}.wireguard"), wireguard, f);
    }
    if let Some(vip) = &device.vip {
        check_vip(&format!("{path}.vip"), vip, is_worker, f);
    }
}

fn check_selector(path: &str, selector: &DeviceSelector, f: &mut Findings) {
    if *selector == DeviceSelector::default() {
        f.error(path, "a device selector needs at least one property");
    }
}

fn check_addresses(path: &str, addresses: &[String], cidr: Option<&str>, f: &mut Findings) {
    if cidr.is_some() && !addresses.is_empty() {
        f.error(
            format!("{path}.cidr"),
            "cidr and addresses are mutually exclusive",
        );
    }
    if let Some(cidr) = cidr {
        f.check(format!("{path}.cidr"), formats::address(cidr));
    }
    for (i, address) in addresses.iter().enumerate() {
        f.check(format!("{path}.addresses[{i}]"), formats::address(address));
    }
}

fn check_routes(path: &str, routes: &[Route], f: &mut Findings) {
    for (i, route) in routes.iter().enumerate() {
        let route_path = format!("{path}.routes[{i}]");
        if !route.network.is_empty() {
            f.check(
                format!("{route_path}.network"),
                formats::cidr(&route.network),
            );
        }
        if let Some(gateway) = &route.gateway {
            f.check(format!("{route_path}.gateway"), formats::ip(gateway));
        }
        if let Some(source) = &route.source {
            f.check(format!("{route_path}.source"), formats::ip(source));
        }
    }
}

fn check_bond(path: &str, bond: &Bond, f: &mut Findings) {
    if !bond.interfaces.is_empty() && !bond.device_selectors.is_empty() {
        f.error(
            path,
            "bond interfaces and deviceSelectors are mutually exclusive",
        );
    }
    for (i, selector) in bond.device_selectors.iter().enumerate() {
        check_selector(&format!("{path}.deviceSelectors[{i}]"), selector, f);
    }
    for (i, target) in bond.arp_ip_target.iter().enumerate() {
        f.check(format!("{path}.arpIPTarget[{i}]"), formats::ip(target));
    }
    let mode = bond.mode.as_str();
    if !BOND_MODES.contains(&mode) {
        f.error(
            format!("{path}.mode"),
            format!(
                "unknown bond mode {mode:?} (one of {})",
                BOND_MODES.join(", ")
            ),
        );
    }
    let values = [
        bond.xmit_hash_policy.as_deref(),
        bond.lacp_rate.as_deref(),
        bond.arp_validate.as_deref(),
        bond.arp_all_targets.as_deref(),
        bond.primary_reselect.as_deref(),
        bond.fail_over_mac.as_deref(),
        bond.ad_select.as_deref(),
    ];
    for ((option, allowed), value) in BOND_ENUM_OPTIONS.iter().zip(values) {
        if let Some(value) = value
            && !allowed.contains(&value)
        {
            f.error(
                format!("{path}.{option}"),
                format!("invalid value {value:?} (one of {})", allowed.join(", ")),
            );
        }
    }
    let only_in = |option: &str, set: bool, modes: &[&str], f: &mut Findings| {
        if set && BOND_MODES.contains(&mode) && !modes.contains(&mode) {
            f.error(
                format!("{path}.{option}"),
                format!(
                    "{option} is not valid in bond mode {mode:?} (only in {})",
                    modes.join(", ")
                ),
            );
        }
    };
    let lacp = ["802.3ad"];
    only_in("lacpRate", bond.lacp_rate.is_some(), &lacp, f);
    only_in("adActorSystem", bond.ad_actor_system.is_some(), &lacp, f);
    only_in("adSelect", bond.ad_select.is_some(), &lacp, f);
    only_in("adActorSysPrio", bond.ad_actor_sys_prio.is_some(), &lacp, f);
    only_in("adUserPortKey", bond.ad_user_port_key.is_some(), &lacp, f);
    only_in(
        "primary",
        bond.primary.is_some(),
        &["active-backup", "balance-tlb", "balance-alb"],
        f,
    );
    only_in(
        "packetsPerSlave",
        bond.packets_per_slave.is_some(),
        &["balance-rr"],
        f,
    );
    only_in(
        "tlbDynamicLb",
        bond.tlb_dynamic_lb.is_some(),
        &["balance-tlb"],
        f,
    );
    let arp_modes = ["balance-rr", "active-backup", "balance-xor", "broadcast"];
    only_in(
        "arpInterval",
        bond.arp_interval.is_some_and(|v| v > 0),
        &arp_modes,
        f,
    );
}

fn check_vlan(path: &str, vlan: &Vlan, is_worker: bool, f: &mut Findings) {
    if !(1..=4095).contains(&vlan.vlan_id) {
        f.error(
            format!("{path}.vlanId"),
            format!("VLAN ID {} is out of range (1 to 4095)", vlan.vlan_id),
        );
    }
    check_addresses(path, &vlan.addresses, vlan.cidr.as_deref(), f);
    check_routes(path, &vlan.routes, f);
    if let Some(vip) = &vlan.vip {
        check_vip(&format!("{path}.vip"), vip, is_worker, f);
    }
}

fn check_wireguard(path: &str, wireguard: &Wireguard, f: &mut Findings) {
    f.check(
        format!("{path}.privateKey"),
        formats::wireguard_key(&wireguard.private_key),
    );
    for (i, peer) in wireguard.peers.iter().enumerate() {
        let peer_path = format!("{path}.peers[{i}]");
        f.check(
            format!("{peer_path}.publicKey"),
            formats::wireguard_key(&peer.public_key),
        );
        if let Some(endpoint) = &peer.endpoint {
            f.check(
                format!("{peer_path}.endpoint"),
                formats::host_port(endpoint),
            );
        }
        for (j, allowed) in peer.allowed_ips.iter().enumerate() {
            f.check(
                format!("{peer_path}.allowedIPs[{j}]"),
                formats::address(allowed),
            );
        }
    }
}

fn check_vip(path: &str, vip: &Vip, is_worker: bool, f: &mut Findings) {
    if is_worker {
        f.error(path, "virtual (shared) IP is not allowed on worker nodes");
    }
    f.check(format!("{path}.ip"), formats::ip(&vip.ip));
}

fn check_kubespan(kubespan: &KubeSpan, f: &mut Findings) {
    if kubespan.enabled == Some(true)
        && let Some(mtu) = kubespan.mtu
        && mtu < KUBESPAN_MIN_MTU
    {
        f.error(
            "machine.network.kubespan.mtu",
            format!("KubeSpan MTU {mtu} is below the minimum of {KUBESPAN_MIN_MTU}"),
        );
    }
    if let Some(filters) = &kubespan.filters {
        for (i, endpoint) in filters.endpoints.iter().enumerate() {
            f.check(
                format!("machine.network.kubespan.filters.endpoints[{i}]"),
                formats::subnet_filter(endpoint),
            );
        }
        for (i, network) in filters.exclude_advertised_networks.iter().enumerate() {
            f.check(
                format!("machine.network.kubespan.filters.excludeAdvertisedNetworks[{i}]"),
                formats::cidr(network),
            );
        }
    }
}
