//! Network kinds. `HostnameConfig`, `ResolverConfig` and `TimeSyncConfig` live here; links,
//! addressing, firewall, KubeSpan, probes and BGP in the submodules.

mod addressing;
mod bgp;
mod bond;
mod common;
mod firewall;
mod kubespan;
mod links;
mod probe;
mod wireguard;

pub use addressing::{
    BlackholeRouteConfig, ClientIdentifier, DhcpV4Config, DhcpV6Config, HCloudVipConfig,
    Layer2VipConfig, RoutingRuleAction, RoutingRuleConfig, StaticHostConfig,
};
pub use bgp::{BgpBfd, BgpImportRoute, BgpInstanceConfig, BgpNeighbor};
pub use bond::{
    AdLacpActive, AdSelect, ArpAllTargets, ArpValidate, BondConfig, BondMode, BondXmitHashPolicy,
    FailOverMac, LacpRate, PrimaryReselect,
};
pub use common::{AddressConfig, RouteConfig, RoutingTable};
pub(crate) use common::{check_across, named, require_name};
pub use firewall::{
    DefaultAction, IngressRule, NetworkDefaultActionConfig, NetworkRuleConfig, PortRange, Protocol,
    RulePortSelector,
};
pub use kubespan::{KubeSpanConfig, KubeSpanEndpointsConfig, KubeSpanFilters};
pub use links::{
    BridgeConfig, BridgeStp, BridgeVlan, DummyLinkConfig, EthernetChannels, EthernetConfig,
    EthernetRings, LinkAliasConfig, LinkConfig, LinkSelector, VethConfig, VethPeer, VlanConfig,
    VlanProtocol, VrfConfig, WakeOnLanMode,
};
pub use probe::{HttpProbeConfig, TcpProbeConfig};
pub use wireguard::{WireguardConfig, WireguardPeer};

use serde::{Deserialize, Serialize};

use super::{CheckDocument, DocumentKind, document_kind};
use crate::GoDuration;
use crate::v1alpha1::{HostDns, V1Alpha1Config};
use crate::validate::{Findings, formats};

/// How a hostname is picked when none is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoHostname {
    /// Stable, derived from the machine identity.
    Stable,
    /// Derived from the first address.
    Addr,
    /// No automatic hostname.
    Off,
}

document_kind! {
    /// `HostnameConfig`: a static hostname, or how to pick one automatically.
    pub struct HostnameConfig = "HostnameConfig" {
        /// Automatic hostname; only `off` may be combined with `hostname`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auto: Option<AutoHostname>,
        /// Static hostname.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hostname: Option<String>,
    }
}

document_kind! {
    /// `ResolverConfig`: DNS servers and search domains.
    pub struct ResolverConfig = "ResolverConfig" {
        /// DNS servers.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub nameservers: Vec<ResolverNameserver>,
        /// Search domains.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub search_domains: Option<ResolverSearchDomains>,
        /// The host DNS caching resolver.
        #[serde(rename = "hostDNS", default, skip_serializing_if = "Option::is_none")]
        pub host_dns: Option<HostDns>,
    }
}

/// `ResolverConfig.nameservers[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolverNameserver {
    /// Server IP address.
    #[serde(default)]
    pub address: String,
    /// Transport protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// TLS server name (DNS over TLS).
    #[serde(
        rename = "tlsServerName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_server_name: Option<String>,
}

/// `ResolverConfig.searchDomains`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolverSearchDomains {
    /// Search domains.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub domains: Vec<String>,
    /// Do not add the hostname's domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_default: Option<bool>,
}

document_kind! {
    /// `TimeSyncConfig`: NTP (or PTP) time synchronisation.
    pub struct TimeSyncConfig = "TimeSyncConfig" {
        /// Turns time sync on or off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enabled: Option<bool>,
        /// How long boot waits for time to sync.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub boot_timeout: Option<GoDuration>,
        /// NTP settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ntp: Option<NtpConfig>,
        /// PTP settings, kept as written (not interpreted by talos-rs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ptp: Option<serde_norway::Value>,
    }
}

/// `TimeSyncConfig.ntp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NtpConfig {
    /// NTP servers.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub servers: Vec<String>,
    /// Use Network Time Security.
    #[serde(rename = "useNTS", default, skip_serializing_if = "Option::is_none")]
    pub use_nts: Option<bool>,
}

impl CheckDocument for HostnameConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let auto_on = self.auto.is_some_and(|auto| auto != AutoHostname::Off);
        match &self.hostname {
            Some(name) => {
                f.check(format!("{kind}.hostname"), formats::hostname(name));
                if auto_on {
                    f.error(
                        kind,
                        "hostname and auto are mutually exclusive (unless auto is off)",
                    );
                }
            }
            None if !auto_on => f.error(kind, "either hostname or auto must be set"),
            None => {}
        }
        let v1alpha1_hostname = v1alpha1
            .and_then(|c| c.machine.as_ref())
            .and_then(|m| m.network.as_ref())
            .and_then(|n| n.hostname.as_ref());
        if v1alpha1_hostname.is_some() {
            f.error(
                kind,
                "a static hostname is already set in the v1alpha1 document (machine.network.hostname)",
            );
        }
    }
}

impl CheckDocument for ResolverConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        for (i, server) in self.nameservers.iter().enumerate() {
            f.check(
                format!("{kind}.nameservers[{i}].address"),
                formats::ip(&server.address),
            );
        }
        if let Some(search) = &self.search_domains {
            for (i, domain) in search.domains.iter().enumerate() {
                f.check(
                    format!("{kind}.searchDomains.domains[{i}]"),
                    formats::hostname(domain),
                );
            }
        }
        if let Some(host_dns) = &self.host_dns
            && host_dns.forward_kube_dns_to_host == Some(true)
            && host_dns.enabled != Some(true)
        {
            f.error(
                format!("{kind}.hostDNS.forwardKubeDNSToHost"),
                "forwardKubeDNSToHost requires hostDNS to be enabled",
            );
        }
    }
}

impl CheckDocument for TimeSyncConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(ntp) = &self.ntp {
            for (i, server) in ntp.servers.iter().enumerate() {
                if server.is_empty() {
                    f.error(
                        format!("{kind}.ntp.servers[{i}]"),
                        "server must not be empty",
                    );
                }
            }
        }
    }
}
