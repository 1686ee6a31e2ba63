//! Network kinds: `HostnameConfig`, `ResolverConfig`, `TimeSyncConfig`.

use serde::{Deserialize, Serialize};

use super::document_kind;
use crate::GoDuration;
use crate::v1alpha1::HostDns;

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
        pub ptp: Option<serde_yaml::Value>,
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
