//! The multi-document kinds (`apiVersion: v1alpha1` + `kind`): every kind upstream registers,
//! grouped as upstream groups them (network, k8s, runtime, block and storage, cri, cluster,
//! security, container, hardware, siderolink).
//!
//! Each kind is a plain struct without `apiVersion`/`kind`; [`Document`] adds them when written.
//! Its checks (`CheckDocument`) live next to it; the rules across documents are in
//! `validate/documents.rs`. A kind nobody registers is an error naming it.

mod block;
mod cluster;
mod container;
mod cri;
mod hardware;
mod k8s;
mod network;
mod runtime;
mod security;
mod siderolink;

use serde::Serialize;

use crate::ConfigError;
use crate::decode::DocumentText;
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

pub use block::{
    ByteSize, DiskSelector, EncryptionKey, EncryptionKeyKms, EncryptionKeyNodeId,
    EncryptionKeyStatic, EncryptionKeyTpm, EncryptionKeyTpmOptions, EncryptionProvider,
    EncryptionSpec, ExistingVolumeConfig, ExistingVolumeMount, ExternalVolumeConfig,
    ExternalVolumeMount, FilesystemScrubConfig, FilesystemTrimConfig, FilesystemType,
    LvmLogicalVolumeConfig, LvmLogicalVolumeProvisioning, LvmLogicalVolumeType,
    LvmVolumeGroupConfig, RaidArrayConfig, RaidLevel, RaidMetadata, RawVolumeConfig, ScrubSpec,
    SwapVolumeConfig, SystemVolumeFilesystem, TrimSpec, UserVolumeConfig, UserVolumeFilesystem,
    VirtiofsMount, VolumeConfig, VolumeDiscovery, VolumeMount, VolumeProvisioning,
    VolumeSelectorProvisioning, VolumeSize, VolumeType, XfsSpec, ZswapConfig,
};
pub use cluster::{DiscoveryIdentityConfig, DiscoveryServiceConfig};
pub(crate) use cluster::{check_across as check_cluster_across, discovery_enabled};
pub(crate) use container::check_across as check_container_across;
pub use container::{
    ContainerCapabilities, ContainerConfig, ContainerDependsOn, ContainerMount, ContainerNetwork,
    ContainerNetworkMode, ContainerResourceLimits, ContainerResources, ContainerRunAs,
    ContainerSecurity, HostPathMount, SecurityProfile, TmpfsMount, UserVolumeMount,
};
pub use cri::{
    CertificateAndKey as RegistryCertificateAndKey, CriBaseRuntimeSpecConfig,
    CriCustomizationConfig, ImageCacheConfig, LocalImageCache, RegistryAuthConfig,
    RegistryEndpoint, RegistryMirrorConfig, RegistryTlsConfig,
};
pub use hardware::PciDriverRebindConfig;
pub use k8s::{
    AuthorizerType, CertificateAndKey, KubeAdmissionControlConfig, KubeAggregatorCaConfig,
    KubeApiServerCaConfig, KubeApiServerConfig, KubeAuditPolicyConfig, KubeAuthenticationConfig,
    KubeAuthorizerConfig, KubeClusterConfig, KubeControllerManagerConfig, KubeCoreDnsConfig,
    KubeCredentialProviderConfig, KubeEtcdEncryptionConfig, KubeExternalManifestConfig,
    KubeFlannelCniConfig, KubeInlineManifestConfig, KubeNetworkConfig, KubeNodeConfig,
    KubePrismConfig, KubeProxyConfig, KubeSchedulerConfig, KubeServiceAccountConfig,
    KubeStaticPodConfig, KubeTalosApiAccessConfig, KubeletConfig, ProxyMode,
    ServiceAccountAccepted, ServiceAccountIssuer,
};
pub(crate) use network::check_across as check_network_across;
pub use network::*;
pub use runtime::{
    EnvironmentConfig, EtcFileConfig, EventSinkConfig, ExtensionServiceConfig,
    ExtensionServiceConfigFile, InstallDiskSelector, InstallProvisioning, InstallerSpec,
    KernelModuleConfig, KmsgLogConfig, OomConfig, SecurityProfileConfig, SysctlConfig, SysfsConfig,
    UdevRulesConfig, UnattendedInstallConfig, WatchdogTimerConfig,
};
pub use security::{
    ImageVerificationConfig, ImageVerificationRule, KeylessVerifier, PublicKeyVerifier,
    TrustedRootsConfig,
};
pub use siderolink::SideroLinkConfig;

/// The `apiVersion` every multi-document kind carries.
pub const API_VERSION: &str = "v1alpha1";

/// A multi-document kind: its `kind` value, its name when the kind is named, and its checks.
pub trait DocumentKind {
    /// The `kind` value.
    const KIND: &'static str;

    /// The `name` of a named kind (several documents of the kind may coexist, one per name).
    fn name(&self) -> Option<&str> {
        None
    }
}

/// The checks of one kind, alone and against the v1alpha1 document; each problem is recorded
/// with a path that starts with the kind (and the name of a named kind).
pub(crate) trait CheckDocument {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings);
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
        $crate::documents::document_kind! {
            $(#[$meta])*
            pub struct $name = $kind, unnamed {
                $( $(#[$field_meta])* pub $field : $ty, )*
            }
        }
        impl $crate::documents::DocumentKind for $name {
            const KIND: &'static str = $kind;
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $kind:literal, named {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $crate::documents::document_kind! {
            $(#[$meta])*
            pub struct $name = $kind, unnamed {
                /// The document's name, unique among the documents of its kind.
                #[serde(default)]
                pub name: String,
                $( $(#[$field_meta])* pub $field : $ty, )*
            }
        }
        impl $crate::documents::DocumentKind for $name {
            const KIND: &'static str = $kind;
            fn name(&self) -> Option<&str> {
                Some(&self.name)
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $kind:literal, unnamed {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
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

/// Declares [`Document`], one variant per implemented kind, with its dispatch (kind, name,
/// decoding, checks, encoding).
macro_rules! documents {
    ( $( $(#[$meta:meta])* $variant:ident($ty:ty), )* ) => {
        /// One decoded multi-document kind.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Document {
            $( $(#[$meta])* $variant($ty), )*
        }

        impl Document {
            /// The `kind` value.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Document::$variant(_) => <$ty as DocumentKind>::KIND, )*
                }
            }

            /// The `name` of a named kind.
            pub fn name(&self) -> Option<&str> {
                match self {
                    $( Document::$variant(d) => d.name(), )*
                }
            }

            /// Decodes `text` as `kind`; `None` when the kind is not implemented here.
            pub(crate) fn decode(
                kind: &str,
                text: &DocumentText,
            ) -> Option<Result<Document, ConfigError>> {
                match kind {
                    $( <$ty as DocumentKind>::KIND => Some(text.decode_again().map(Document::$variant)), )*
                    _ => None,
                }
            }

            pub(crate) fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
                match self {
                    $( Document::$variant(d) => d.check(v1alpha1, f), )*
                }
            }
        }

        impl Serialize for Document {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Document::$variant(d) => tagged(d).serialize(s), )*
                }
            }
        }
    };
}

documents! {
    // network
    /// `HostnameConfig`.
    Hostname(HostnameConfig),
    /// `ResolverConfig`.
    Resolver(ResolverConfig),
    /// `TimeSyncConfig`.
    TimeSync(TimeSyncConfig),
    /// `StaticHostConfig`.
    StaticHost(StaticHostConfig),
    /// `LinkConfig`.
    Link(LinkConfig),
    /// `LinkAliasConfig`.
    LinkAlias(LinkAliasConfig),
    /// `DummyLinkConfig`.
    DummyLink(DummyLinkConfig),
    /// `BondConfig`.
    Bond(BondConfig),
    /// `BridgeConfig`.
    Bridge(BridgeConfig),
    /// `VLANConfig`.
    Vlan(VlanConfig),
    /// `VRFConfig`.
    Vrf(VrfConfig),
    /// `VethConfig`.
    Veth(VethConfig),
    /// `WireguardConfig`.
    Wireguard(WireguardConfig),
    /// `EthernetConfig`.
    Ethernet(EthernetConfig),
    /// `DHCPv4Config`.
    DhcpV4(DhcpV4Config),
    /// `DHCPv6Config`.
    DhcpV6(DhcpV6Config),
    /// `Layer2VIPConfig`.
    Layer2Vip(Layer2VipConfig),
    /// `HCloudVIPConfig`.
    HCloudVip(HCloudVipConfig),
    /// `BlackholeRouteConfig`.
    BlackholeRoute(BlackholeRouteConfig),
    /// `RoutingRuleConfig`.
    RoutingRule(RoutingRuleConfig),
    /// `NetworkRuleConfig`.
    NetworkRule(NetworkRuleConfig),
    /// `NetworkDefaultActionConfig`.
    NetworkDefaultAction(NetworkDefaultActionConfig),
    /// `KubeSpanConfig`.
    KubeSpan(KubeSpanConfig),
    /// `KubeSpanEndpointsConfig`.
    KubeSpanEndpoints(KubeSpanEndpointsConfig),
    /// `TCPProbeConfig`.
    TcpProbe(TcpProbeConfig),
    /// `HTTPProbeConfig`.
    HttpProbe(HttpProbeConfig),
    /// `BGPInstanceConfig`.
    BgpInstance(BgpInstanceConfig),

    // runtime
    /// `SysctlConfig`.
    Sysctl(SysctlConfig),
    /// `EnvironmentConfig`.
    Environment(EnvironmentConfig),
    /// `EtcFileConfig`.
    EtcFile(EtcFileConfig),
    /// `EventSinkConfig`.
    EventSink(EventSinkConfig),
    /// `ExtensionServiceConfig`.
    ExtensionService(ExtensionServiceConfig),
    /// `KernelModuleConfig`.
    KernelModule(KernelModuleConfig),
    /// `KmsgLogConfig`.
    KmsgLog(KmsgLogConfig),
    /// `OOMConfig`.
    Oom(OomConfig),
    /// `SecurityProfileConfig`.
    SecurityProfile(SecurityProfileConfig),
    /// `SysfsConfig`.
    Sysfs(SysfsConfig),
    /// `UdevRulesConfig`.
    UdevRules(UdevRulesConfig),
    /// `UnattendedInstallConfig`.
    UnattendedInstall(UnattendedInstallConfig),
    /// `WatchdogTimerConfig`.
    WatchdogTimer(WatchdogTimerConfig),

    // cluster
    /// `DiscoveryIdentityConfig`.
    DiscoveryIdentity(DiscoveryIdentityConfig),
    /// `DiscoveryServiceConfig`.
    DiscoveryService(DiscoveryServiceConfig),

    // k8s
    /// `KubeClusterConfig`.
    KubeCluster(KubeClusterConfig),
    /// `KubeNetworkConfig`.
    KubeNetwork(KubeNetworkConfig),
    /// `KubeNodeConfig`.
    KubeNode(KubeNodeConfig),
    /// `KubeletConfig`.
    Kubelet(KubeletConfig),
    /// `KubeStaticPodConfig`.
    KubeStaticPod(KubeStaticPodConfig),
    /// `KubeAPIServerConfig`.
    KubeApiServer(KubeApiServerConfig),
    /// `KubeAPIServerCAConfig`.
    KubeApiServerCa(KubeApiServerCaConfig),
    /// `KubeAggregatorCAConfig`.
    KubeAggregatorCa(KubeAggregatorCaConfig),
    /// `KubeServiceAccountConfig`.
    KubeServiceAccount(KubeServiceAccountConfig),
    /// `KubeEtcdEncryptionConfig`.
    KubeEtcdEncryption(KubeEtcdEncryptionConfig),
    /// `KubeAdmissionControlConfig`.
    KubeAdmissionControl(KubeAdmissionControlConfig),
    /// `KubeAuditPolicyConfig`.
    KubeAuditPolicy(KubeAuditPolicyConfig),
    /// `KubeAuthenticationConfig`.
    KubeAuthentication(KubeAuthenticationConfig),
    /// `KubeAuthorizerConfig`.
    KubeAuthorizer(KubeAuthorizerConfig),
    /// `KubeControllerManagerConfig`.
    KubeControllerManager(KubeControllerManagerConfig),
    /// `KubeSchedulerConfig`.
    KubeScheduler(KubeSchedulerConfig),
    /// `KubeProxyConfig`.
    KubeProxy(KubeProxyConfig),
    /// `KubeCoreDNSConfig`.
    KubeCoreDns(KubeCoreDnsConfig),
    /// `KubeFlannelCNIConfig`.
    KubeFlannelCni(KubeFlannelCniConfig),
    /// `KubeExternalManifestConfig`.
    KubeExternalManifest(KubeExternalManifestConfig),
    /// `KubeInlineManifestConfig`.
    KubeInlineManifest(KubeInlineManifestConfig),
    /// `KubeCredentialProviderConfig`.
    KubeCredentialProvider(KubeCredentialProviderConfig),
    /// `KubePrismConfig`.
    KubePrism(KubePrismConfig),
    /// `KubeTalosAPIAccessConfig`.
    KubeTalosApiAccess(KubeTalosApiAccessConfig),

    // block, storage
    /// `VolumeConfig`.
    Volume(VolumeConfig),
    /// `UserVolumeConfig`.
    UserVolume(UserVolumeConfig),
    /// `RawVolumeConfig`.
    RawVolume(RawVolumeConfig),
    /// `ExistingVolumeConfig`.
    ExistingVolume(ExistingVolumeConfig),
    /// `ExternalVolumeConfig`.
    ExternalVolume(ExternalVolumeConfig),
    /// `SwapVolumeConfig`.
    SwapVolume(SwapVolumeConfig),
    /// `ZswapConfig`.
    Zswap(ZswapConfig),
    /// `FilesystemScrubConfig`.
    FilesystemScrub(FilesystemScrubConfig),
    /// `FilesystemTrimConfig`.
    FilesystemTrim(FilesystemTrimConfig),
    /// `LVMVolumeGroupConfig`.
    LvmVolumeGroup(LvmVolumeGroupConfig),
    /// `LVMLogicalVolumeConfig`.
    LvmLogicalVolume(LvmLogicalVolumeConfig),
    /// `RAIDArrayConfig`.
    RaidArray(RaidArrayConfig),

    // cri
    /// `RegistryMirrorConfig`.
    RegistryMirror(RegistryMirrorConfig),
    /// `RegistryAuthConfig`.
    RegistryAuth(RegistryAuthConfig),
    /// `RegistryTLSConfig`.
    RegistryTls(RegistryTlsConfig),
    /// `CRICustomizationConfig`.
    CriCustomization(CriCustomizationConfig),
    /// `CRIBaseRuntimeSpecConfig`.
    CriBaseRuntimeSpec(CriBaseRuntimeSpecConfig),
    /// `ImageCacheConfig`.
    ImageCache(ImageCacheConfig),

    // security, container, hardware, siderolink
    /// `TrustedRootsConfig`.
    TrustedRoots(TrustedRootsConfig),
    /// `ImageVerificationConfig`.
    ImageVerification(ImageVerificationConfig),
    /// `ContainerConfig`.
    Container(ContainerConfig),
    /// `PCIDriverRebindConfig`.
    PciDriverRebind(PciDriverRebindConfig),
    /// `SideroLinkConfig`.
    SideroLink(SideroLinkConfig),
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

fn tagged<T: DocumentKind>(body: &T) -> Tagged<'_, T> {
    Tagged {
        api_version: API_VERSION,
        kind: T::KIND,
        body,
    }
}

/// Every kind upstream registers (`pkg/machinery/config/types/*`); each is decoded here.
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
