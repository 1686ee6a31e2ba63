//! The multi-document kinds (`apiVersion: v1alpha1` + `kind`) that talos-rs decodes, and the
//! list of kinds upstream registers.
//!
//! Each kind is a plain struct without `apiVersion`/`kind`; [`Document`] adds them when written.
//! Kinds registered upstream but not implemented here are rejected when decoding, by name.

mod cluster;
mod k8s;
mod network;
mod runtime;

use serde::Serialize;

pub use cluster::DiscoveryIdentityConfig;
pub use k8s::{KubeClusterConfig, KubeNetworkConfig};
pub use network::{
    AutoHostname, HostnameConfig, NtpConfig, ResolverConfig, ResolverNameserver,
    ResolverSearchDomains, TimeSyncConfig,
};
pub use runtime::{EnvironmentConfig, SysctlConfig};

/// The `apiVersion` every multi-document kind carries.
pub const API_VERSION: &str = "v1alpha1";

/// A multi-document kind: its `kind` value.
pub trait DocumentKind {
    /// The `kind` value.
    const KIND: &'static str;
}

/// Declares a document kind: the public struct (fields without `apiVersion`/`kind`) and a
/// private twin used for decoding that also accepts (and drops) `apiVersion` and `kind`, so that
/// strict decoding works on the document text as written.
macro_rules! document_kind {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $kind:literal {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $crate::documents::DocumentKind for $name {
            const KIND: &'static str = $kind;
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(serde::Deserialize)]
                #[serde(rename = $kind, deny_unknown_fields, rename_all = "camelCase")]
                struct Wire {
                    #[serde(rename = "apiVersion", default)]
                    _api_version: serde::de::IgnoredAny,
                    #[serde(rename = "kind", default)]
                    _kind: serde::de::IgnoredAny,
                    $( $(#[$field_meta])* $field: $ty, )*
                }
                let wire = Wire::deserialize(d)?;
                Ok($name { $( $field: wire.$field, )* })
            }
        }
    };
}
pub(crate) use document_kind;

/// One decoded multi-document kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Document {
    /// `HostnameConfig`.
    Hostname(HostnameConfig),
    /// `ResolverConfig`.
    Resolver(ResolverConfig),
    /// `TimeSyncConfig`.
    TimeSync(TimeSyncConfig),
    /// `SysctlConfig`.
    Sysctl(SysctlConfig),
    /// `EnvironmentConfig`.
    Environment(EnvironmentConfig),
    /// `DiscoveryIdentityConfig`.
    DiscoveryIdentity(DiscoveryIdentityConfig),
    /// `KubeClusterConfig`.
    KubeCluster(KubeClusterConfig),
    /// `KubeNetworkConfig`.
    KubeNetwork(KubeNetworkConfig),
}

impl Document {
    /// The `kind` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Hostname(_) => HostnameConfig::KIND,
            Document::Resolver(_) => ResolverConfig::KIND,
            Document::TimeSync(_) => TimeSyncConfig::KIND,
            Document::Sysctl(_) => SysctlConfig::KIND,
            Document::Environment(_) => EnvironmentConfig::KIND,
            Document::DiscoveryIdentity(_) => DiscoveryIdentityConfig::KIND,
            Document::KubeCluster(_) => KubeClusterConfig::KIND,
            Document::KubeNetwork(_) => KubeNetworkConfig::KIND,
        }
    }

    /// The `name` of a named kind; every kind supported so far is a singleton.
    pub fn name(&self) -> Option<&str> {
        None
    }
}

/// A document as written: `apiVersion`, `kind`, then the kind's own fields.
#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

impl Serialize for Document {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fn tagged<'a, T: DocumentKind>(body: &'a T) -> Tagged<'a, T> {
            Tagged {
                api_version: API_VERSION,
                kind: T::KIND,
                body,
            }
        }
        match self {
            Document::Hostname(d) => tagged(d).serialize(s),
            Document::Resolver(d) => tagged(d).serialize(s),
            Document::TimeSync(d) => tagged(d).serialize(s),
            Document::Sysctl(d) => tagged(d).serialize(s),
            Document::Environment(d) => tagged(d).serialize(s),
            Document::DiscoveryIdentity(d) => tagged(d).serialize(s),
            Document::KubeCluster(d) => tagged(d).serialize(s),
            Document::KubeNetwork(d) => tagged(d).serialize(s),
        }
    }
}

/// Every kind upstream registers (`pkg/machinery/config/types/*`), supported here or not.
pub const UPSTREAM_KINDS: &[&str] = &[
    // network
    "HostnameConfig",
    "ResolverConfig",
    "StaticHostConfig",
    "TimeSyncConfig",
    "LinkConfig",
    "LinkAliasConfig",
    "DummyLinkConfig",
    "BondConfig",
    "BridgeConfig",
    "VLANConfig",
    "VRFConfig",
    "VethConfig",
    "WireguardConfig",
    "EthernetConfig",
    "DHCPv4Config",
    "DHCPv6Config",
    "Layer2VIPConfig",
    "HCloudVIPConfig",
    "BlackholeRouteConfig",
    "RoutingRuleConfig",
    "NetworkRuleConfig",
    "NetworkDefaultActionConfig",
    "KubeSpanConfig",
    "KubeSpanEndpointsConfig",
    "TCPProbeConfig",
    "HTTPProbeConfig",
    "BGPInstanceConfig",
    // k8s
    "KubeClusterConfig",
    "KubeNetworkConfig",
    "KubeNodeConfig",
    "KubeletConfig",
    "KubeStaticPodConfig",
    "KubeAPIServerConfig",
    "KubeAPIServerCAConfig",
    "KubeAggregatorCAConfig",
    "KubeServiceAccountConfig",
    "KubeEtcdEncryptionConfig",
    "KubeAdmissionControlConfig",
    "KubeAuditPolicyConfig",
    "KubeAuthenticationConfig",
    "KubeAuthorizerConfig",
    "KubeControllerManagerConfig",
    "KubeSchedulerConfig",
    "KubeProxyConfig",
    "KubeCoreDNSConfig",
    "KubeFlannelCNIConfig",
    "KubeExternalManifestConfig",
    "KubeInlineManifestConfig",
    "KubeCredentialProviderConfig",
    "KubePrismConfig",
    "KubeTalosAPIAccessConfig",
    // runtime
    "EnvironmentConfig",
    "EtcFileConfig",
    "EventSinkConfig",
    "ExtensionServiceConfig",
    "KernelModuleConfig",
    "KmsgLogConfig",
    "OOMConfig",
    "SecurityProfileConfig",
    "SysctlConfig",
    "SysfsConfig",
    "UdevRulesConfig",
    "UnattendedInstallConfig",
    "WatchdogTimerConfig",
    // block
    "VolumeConfig",
    "UserVolumeConfig",
    "RawVolumeConfig",
    "ExistingVolumeConfig",
    "ExternalVolumeConfig",
    "SwapVolumeConfig",
    "ZswapConfig",
    "FilesystemScrubConfig",
    "FilesystemTrimConfig",
    // storage
    "LVMVolumeGroupConfig",
    "LVMLogicalVolumeConfig",
    "RAIDArrayConfig",
    // cri
    "RegistryMirrorConfig",
    "RegistryAuthConfig",
    "RegistryTLSConfig",
    "CRICustomizationConfig",
    "CRIBaseRuntimeSpecConfig",
    "ImageCacheConfig",
    // cluster
    "DiscoveryServiceConfig",
    "DiscoveryIdentityConfig",
    // security
    "TrustedRootsConfig",
    "ImageVerificationConfig",
    // container
    "ContainerConfig",
    // hardware
    "PCIDriverRebindConfig",
    // siderolink
    "SideroLinkConfig",
];
