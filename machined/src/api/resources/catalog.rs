//! The resource types machined serves, described as upstream's `ResourceDefinitions` so that
//! `talosctl get` (ours and stock) can resolve aliases and print columns.

use proto::cosi::resource::meta::ResourceDefinitionSpec;
use proto::cosi::resource::meta::resource_definition_spec::{PrintColumn, Sensitivity};
use resources::Spec;

use crate::controllers;
use crate::controllers::network_status;

/// Where a type's resources come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The node's resource state (Get, List and Watch).
    State,
    /// This catalog.
    Catalog,
}

/// One served resource type.
#[derive(Debug)]
pub struct Definition {
    pub source: Source,
    pub resource_type: &'static str,
    pub display_type: &'static str,
    pub namespace: &'static str,
    pub aliases: &'static [&'static str],
    /// Column name and JSONPath into the YAML spec.
    pub columns: &'static [(&'static str, &'static str)],
    pub sensitive: bool,
}

pub const MACHINE_CONFIG_TYPE: &str = controllers::MACHINE_CONFIG_TYPE;
const ADDRESS_STATUS_TYPE: &str = <network_status::AddressStatusSpec as Spec>::TYPE;
const ROUTE_STATUS_TYPE: &str = <network_status::RouteStatusSpec as Spec>::TYPE;
const LINK_STATUS_TYPE: &str = <network_status::LinkStatusSpec as Spec>::TYPE;
const HOSTNAME_STATUS_TYPE: &str = <network_status::HostnameStatusSpec as Spec>::TYPE;
const RESOLVER_STATUS_TYPE: &str = <network_status::ResolverStatusSpec as Spec>::TYPE;
const NODE_ADDRESS_TYPE: &str = <network_status::NodeAddressSpec as Spec>::TYPE;
const NETWORK_STATUS_TYPE: &str = <network_status::NetworkStatusSpec as Spec>::TYPE;
const ETCD_MEMBER_TYPE: &str = <crate::etcd::member::EtcdMemberSpec as Spec>::TYPE;
pub const RESOURCE_DEFINITION_TYPE: &str = "ResourceDefinitions.meta.cosi.dev";
const HOSTNAME_SPEC_TYPE: &str = <controllers::HostnameSpec as Spec>::TYPE;
const MACHINE_STATUS_TYPE: &str = <controllers::MachineStatusSpec as Spec>::TYPE;
const META_KEY_TYPE: &str = <controllers::MetaKeySpec as Spec>::TYPE;
const MACHINE_TYPE_TYPE: &str = <controllers::MachineTypeSpec as Spec>::TYPE;
const SERVICE_TYPE: &str = <controllers::ServiceSpec as Spec>::TYPE;
const KUBELET_SPEC_TYPE: &str = <crate::kubelet::KubeletSpec as Spec>::TYPE;
const STATIC_POD_TYPE: &str = <crate::kubelet::StaticPodSpec as Spec>::TYPE;
const REGISTRIES_TYPE: &str = <crate::cri::RegistriesSpec as Spec>::TYPE;

/// Everything served, in the order `get rd` lists it.
pub const DEFINITIONS: &[Definition] = &[
    Definition {
        source: Source::State,
        resource_type: ETCD_MEMBER_TYPE,
        display_type: "EtcdMember",
        namespace: "etcd",
        aliases: &[],
        columns: &[("Member ID", "{.memberID}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <crate::etcd::spec::EtcdSpec as Spec>::TYPE,
        display_type: "EtcdSpec",
        namespace: "etcd",
        aliases: &[],
        columns: &[
            ("Name", "{.name}"),
            ("AdvertisedAddresses", "{.advertisedAddresses}"),
            ("ListenPeerAddresses", "{.listenPeerAddresses}"),
            ("ListenClientAddresses", "{.listenClientAddresses}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: NODE_ADDRESS_TYPE,
        display_type: "NodeAddress",
        namespace: "network",
        aliases: &[],
        columns: &[
            ("Addresses", "{.addresses}"),
            ("SortAlgorithm", "{.sortAlgorithm}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: ADDRESS_STATUS_TYPE,
        display_type: "AddressStatus",
        namespace: "network",
        aliases: &["address", "addresses"],
        columns: &[("ADDRESS", "{.address}"), ("LINK", "{.linkName}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: HOSTNAME_STATUS_TYPE,
        display_type: "HostnameStatus",
        namespace: "network",
        aliases: &["hostname", "hostnames"],
        columns: &[("HOSTNAME", "{.hostname}"), ("DOMAINNAME", "{.domainname}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: HOSTNAME_SPEC_TYPE,
        display_type: "HostnameSpec",
        namespace: "network",
        aliases: &["hostnamespec", "hostnamespecs"],
        columns: &[("HOSTNAME", "{.hostname}"), ("LAYER", "{.layer}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: KUBELET_SPEC_TYPE,
        display_type: "KubeletSpec",
        namespace: "k8s",
        aliases: &["kubeletspec", "kubeletspecs"],
        columns: &[("IMAGE", "{.image}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: REGISTRIES_TYPE,
        display_type: "RegistriesConfig",
        namespace: "cri",
        aliases: &["registryconfig", "registryconfigs", "registriesconfig"],
        columns: &[],
        sensitive: true,
    },
    Definition {
        source: Source::State,
        resource_type: LINK_STATUS_TYPE,
        display_type: "LinkStatus",
        namespace: "network",
        aliases: &["link", "links"],
        columns: &[
            ("TYPE", "{.type}"),
            ("KIND", "{.kind}"),
            ("HW ADDR", "{.hardwareAddr}"),
            ("OPER STATE", "{.operationalState}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: MACHINE_CONFIG_TYPE,
        display_type: "MachineConfig",
        namespace: "config",
        aliases: &["machineconfig", "machineconfigs", "mc"],
        columns: &[],
        sensitive: true,
    },
    Definition {
        source: Source::State,
        resource_type: MACHINE_STATUS_TYPE,
        display_type: "MachineStatus",
        namespace: "runtime",
        aliases: &["machinestatus", "machinestatuses"],
        columns: &[("STAGE", "{.stage}"), ("READY", "{.status.ready}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: MACHINE_TYPE_TYPE,
        display_type: "MachineType",
        namespace: "config",
        aliases: &["machinetype", "machinetypes"],
        columns: &[("TYPE", "{.machineType}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: META_KEY_TYPE,
        display_type: "MetaKey",
        namespace: "runtime",
        aliases: &["metakey", "metakeys"],
        columns: &[("VALUE", "{.value}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: NETWORK_STATUS_TYPE,
        display_type: "NetworkStatus",
        namespace: "network",
        aliases: &["netstatus", "netstatuses"],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: RESOLVER_STATUS_TYPE,
        display_type: "ResolverStatus",
        namespace: "network",
        aliases: &["resolvers", "resolver"],
        columns: &[("RESOLVERS", "{.dnsServers}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <crate::vip::AddressSpec as Spec>::TYPE,
        display_type: "AddressSpec",
        namespace: "network",
        aliases: &[],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <crate::vip::OperatorSpec as Spec>::TYPE,
        display_type: "OperatorSpec",
        namespace: "network",
        aliases: &[],
        columns: &[],
        sensitive: true,
    },
    Definition {
        source: Source::Catalog,
        resource_type: RESOURCE_DEFINITION_TYPE,
        display_type: "ResourceDefinition",
        namespace: "meta",
        aliases: &["rd", "rds", "resourcedefinition", "resourcedefinitions"],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: ROUTE_STATUS_TYPE,
        display_type: "RouteStatus",
        namespace: "network",
        aliases: &["route", "routes"],
        columns: &[
            ("DESTINATION", "{.dst}"),
            ("GATEWAY", "{.gateway}"),
            ("LINK", "{.outLinkName}"),
            ("METRIC", "{.priority}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: STATIC_POD_TYPE,
        display_type: "StaticPod",
        namespace: "k8s",
        aliases: &["staticpod", "staticpods"],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: SERVICE_TYPE,
        display_type: "Service",
        namespace: "runtime",
        aliases: &["service", "services", "svc"],
        columns: &[
            ("RUNNING", "{.running}"),
            ("HEALTHY", "{.healthy}"),
            ("HEALTH UNKNOWN", "{.unknown}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <crate::certificates::ApiCertificatesSpec as Spec>::TYPE,
        display_type: "ApiCertificate",
        namespace: "secrets",
        aliases: &[],
        columns: &[],
        sensitive: true,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::from_config::AcquireConfigStatusSpec as Spec>::TYPE,
        display_type: "AcquireConfigStatus",
        namespace: "runtime",
        aliases: &[],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::cluster::AffiliateSpec as Spec>::TYPE,
        display_type: "Affiliate",
        namespace: "cluster",
        aliases: &[],
        columns: &[
            ("Hostname", "{.hostname}"),
            ("Machine Type", "{.machineType}"),
            ("Addresses", "{.addresses}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::host::BootIdSpec as Spec>::TYPE,
        display_type: "BootID",
        namespace: "runtime",
        aliases: &[],
        columns: &[("Boot ID", "{.bootID}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::cert_sans::CertSansSpec as Spec>::TYPE,
        display_type: "CertSAN",
        namespace: "secrets",
        aliases: &[],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::from_config::EtcdRootSpec as Spec>::TYPE,
        display_type: "EtcdRootSecret",
        namespace: "secrets",
        aliases: &[],
        columns: &[],
        sensitive: true,
    },
    Definition {
        source: Source::State,
        resource_type: <crate::event_sink::EventSinkConfigSpec as Spec>::TYPE,
        display_type: "EventSinkConfig",
        namespace: "runtime",
        aliases: &[],
        columns: &[("Endpoint", "{.endpoint}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: "ExtensionStatuses.runtime.talos.dev",
        display_type: "ExtensionStatus",
        namespace: "runtime",
        aliases: &["extensions"],
        columns: &[
            ("Name", "{.metadata.name}"),
            ("Version", "{.metadata.version}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::cluster::IdentitySpec as Spec>::TYPE,
        display_type: "Identity",
        namespace: "cluster",
        aliases: &[],
        columns: &[("ID", "{.nodeId}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::from_config::ClusterInfoSpec as Spec>::TYPE,
        display_type: "Info",
        namespace: "cluster",
        aliases: &[],
        columns: &[
            ("Cluster ID", "{.clusterId}"),
            ("Cluster Name", "{.clusterName}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <crate::environment::EnvironmentSpec as Spec>::TYPE,
        display_type: "Environment",
        namespace: "runtime",
        aliases: &["env"],
        columns: &[("Variables", "{.variables}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::host::KernelCmdlineSpec as Spec>::TYPE,
        display_type: "KernelCmdline",
        namespace: "runtime",
        aliases: &["cmdline"],
        columns: &[("Cmdline", "{.cmdline}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::from_config::KernelModuleSpec as Spec>::TYPE,
        display_type: "KernelModuleSpec",
        namespace: "runtime",
        aliases: &[],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::kernel_params::KernelParamDefaultSpec as Spec>::TYPE,
        display_type: "KernelParamDefaultSpec",
        namespace: "runtime",
        aliases: &["kpds"],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::kernel_params::KernelParamSpec as Spec>::TYPE,
        display_type: "KernelParamSpec",
        namespace: "runtime",
        aliases: &[],
        columns: &[],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::kernel_params::KernelParamStatusSpec as Spec>::TYPE,
        display_type: "KernelParamStatus",
        namespace: "runtime",
        aliases: &["sysctls", "kernelparameters", "kernelparams"],
        columns: &[
            ("Current", "{.current}"),
            ("Default", "{.default}"),
            ("Unsupported", "{.unsupported}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::from_config::KubernetesRootSpec as Spec>::TYPE,
        display_type: "KubernetesRootSecret",
        namespace: "secrets",
        aliases: &[],
        columns: &[],
        sensitive: true,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::boot_artifacts::BootArtifactSpec as Spec>::TYPE,
        display_type: "BootArtifact",
        namespace: "runtime",
        aliases: &[],
        columns: &[("SHA256", "{.sha256}"), ("Source", "{.source}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::host::LoadedKernelModuleSpec as Spec>::TYPE,
        display_type: "LoadedKernelModule",
        namespace: "runtime",
        aliases: &[],
        columns: &[("State", "{.state}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::cluster::MemberSpec as Spec>::TYPE,
        display_type: "Member",
        namespace: "cluster",
        aliases: &[],
        columns: &[
            ("Hostname", "{.hostname}"),
            ("Machine Type", "{.machineType}"),
            ("OS", "{.operatingSystem}"),
            ("Addresses", "{.addresses}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::host::MountStatusSpec as Spec>::TYPE,
        display_type: "MountStatus",
        namespace: "runtime",
        aliases: &["mounts"],
        columns: &[
            ("Source", "{.source}"),
            ("Target", "{.target}"),
            ("Filesystem Type", "{.filesystemType}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::from_config::OsRootSpec as Spec>::TYPE,
        display_type: "OSRootSecret",
        namespace: "secrets",
        aliases: &[],
        columns: &[],
        sensitive: true,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::disks::DiskSpec as Spec>::TYPE,
        display_type: "Disk",
        namespace: "runtime",
        aliases: &[],
        columns: &[
            ("Size", "{.pretty_size}"),
            ("Read Only", "{.readonly}"),
            ("Transport", "{.transport}"),
            ("Rotational", "{.rotational}"),
            ("WWID", "{.wwid}"),
            ("Model", "{.model}"),
            ("Serial", "{.serial}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::host::PciDeviceSpec as Spec>::TYPE,
        display_type: "PCIDevice",
        namespace: "hardware",
        aliases: &["devices", "device"],
        columns: &[
            ("Class", "{.class}"),
            ("Subclass", "{.subclass}"),
            ("Vendor", "{.vendor}"),
            ("Product", "{.product}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::PlatformMetadataSpec as Spec>::TYPE,
        display_type: "PlatformMetadata",
        namespace: "runtime",
        aliases: &[],
        columns: &[
            ("Platform", "{.platform}"),
            ("Type", "{.instanceType}"),
            ("Region", "{.region}"),
            ("Zone", "{.zone}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::host::ProcessorSpec as Spec>::TYPE,
        display_type: "Processor",
        namespace: "hardware",
        aliases: &["cpus", "cpu"],
        columns: &[
            ("Manufacturer", "{.manufacturer}"),
            ("Model", "{.productName}"),
            ("Cores", "{.coreCount}"),
            ("Threads", "{.threadCount}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::from_config::ResolverSpec as Spec>::TYPE,
        display_type: "ResolverSpec",
        namespace: "network",
        aliases: &[],
        columns: &[
            ("Layer", "{.layer}"),
            ("Resolvers", "{.dnsServers}"),
            ("Search Domains", "{.searchDomains}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::host::SecurityStateSpec as Spec>::TYPE,
        display_type: "SecurityState",
        namespace: "runtime",
        aliases: &[],
        columns: &[
            ("SecureBoot", "{.secureBoot}"),
            ("UKISigningKeyFingerprint", "{.ukiSigningKeyFingerprint}"),
            ("PCRSigningKeyFingerprint", "{.pcrSigningKeyFingerprint}"),
            ("SELinuxState", "{.selinuxState}"),
            ("ModuleSignatureEnforced", "{.moduleSignatureEnforced}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::host::SystemInformationSpec as Spec>::TYPE,
        display_type: "SystemInformation",
        namespace: "hardware",
        aliases: &["systeminformation"],
        columns: &[
            ("Manufacturer", "{.manufacturer}"),
            ("ProductName", "{.productName}"),
            ("Version", "{.version}"),
            ("SerialNumber", "{.serialnumber}"),
            ("UUID", "{.uuid}"),
            ("WakeUpType", "{.wakeUpType}"),
            ("SKUNumber", "{.skuNumber}"),
        ],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::from_config::TimeServerSpec as Spec>::TYPE,
        display_type: "TimeServerSpec",
        namespace: "network",
        aliases: &[],
        columns: &[("Timeservers", "{.timeServers}"), ("UseNTS", "{.useNTS}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::time_status::TimeServerStatusSpec as Spec>::TYPE,
        display_type: "TimeServerStatus",
        namespace: "network",
        aliases: &["timeserver", "timeservers"],
        columns: &[("Timeservers", "{.timeServers}"), ("UseNTS", "{.useNTS}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::time_status::TimeStatusSpec as Spec>::TYPE,
        display_type: "TimeStatus",
        namespace: "runtime",
        aliases: &[],
        columns: &[("Synced", "{.synced}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <controllers::cluster::VersionSpec as Spec>::TYPE,
        display_type: "Version",
        namespace: "runtime",
        aliases: &[],
        columns: &[("Name", "{.name}"), ("Version", "{.version}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <crate::watchdog::WatchdogTimerConfigSpec as Spec>::TYPE,
        display_type: "WatchdogTimerConfig",
        namespace: "runtime",
        aliases: &[],
        columns: &[("Device", "{.device}"), ("Timeout", "{.timeout}")],
        sensitive: false,
    },
    Definition {
        source: Source::State,
        resource_type: <crate::watchdog::WatchdogTimerStatusSpec as Spec>::TYPE,
        display_type: "WatchdogTimerStatus",
        namespace: "runtime",
        aliases: &[],
        columns: &[
            ("Device", "{.device}"),
            ("Timeout", "{.timeout}"),
            ("Feed Interval", "{.feedInterval}"),
        ],
        sensitive: false,
    },
];

/// The definition of `resource_type`.
pub fn find(resource_type: &str) -> Option<&'static Definition> {
    DEFINITIONS
        .iter()
        .find(|d| d.resource_type == resource_type)
}

impl Definition {
    /// Upstream's spec: the aliases plus the type's lower-case forms.
    pub fn spec(&self) -> ResourceDefinitionSpec {
        let plural = self.resource_type.split('.').next().unwrap_or_default();
        let mut all_aliases: Vec<String> = self.aliases.iter().map(|a| a.to_string()).collect();
        for alias in [
            plural.to_ascii_lowercase(),
            self.display_type.to_ascii_lowercase(),
            self.resource_type.to_ascii_lowercase(),
        ] {
            if !all_aliases.contains(&alias) {
                all_aliases.push(alias);
            }
        }
        ResourceDefinitionSpec {
            resource_type: self.resource_type.into(),
            display_type: self.display_type.into(),
            default_namespace: self.namespace.into(),
            aliases: self.aliases.iter().map(|a| a.to_string()).collect(),
            all_aliases,
            print_columns: self
                .columns
                .iter()
                .map(|(name, path)| PrintColumn {
                    name: (*name).into(),
                    json_path: (*path).into(),
                })
                .collect(),
            sensitivity: if self.sensitive {
                Sensitivity::Sensitive
            } else {
                Sensitivity::NonSensitive
            } as i32,
        }
    }

    /// The spec as YAML, in upstream's field names.
    pub fn spec_yaml(&self) -> String {
        let spec = self.spec();
        let mut yaml = format!(
            "type: {}\ndisplayType: {}\ndefaultNamespace: {}\n",
            spec.resource_type, spec.display_type, spec.default_namespace
        );
        let list = |name: &str, items: &[String]| {
            let mut text = format!("{name}:\n");
            for item in items {
                text.push_str(&format!("    - {item}\n"));
            }
            text
        };
        yaml.push_str(&list("aliases", &spec.aliases));
        yaml.push_str(&list("allAliases", &spec.all_aliases));
        if !spec.print_columns.is_empty() {
            yaml.push_str("printColumns:\n");
            for column in &spec.print_columns {
                yaml.push_str(&format!(
                    "    - name: {}\n      jsonPath: '{}'\n",
                    column.name, column.json_path
                ));
            }
        }
        if self.sensitive {
            yaml.push_str("sensitivity: sensitive\n");
        }
        yaml
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_resolve_their_aliases() {
        let addresses = find(ADDRESS_STATUS_TYPE).expect("addresses");
        let spec = addresses.spec();
        for alias in ["address", "addresses", "addressstatuses", "addressstatus"] {
            assert!(spec.all_aliases.iter().any(|a| a == alias), "{alias}");
        }
        assert_eq!(spec.default_namespace, "network");
        let yaml: serde_norway::Value =
            serde_norway::from_str(&addresses.spec_yaml()).expect("yaml");
        assert_eq!(yaml["printColumns"][0]["jsonPath"], "{.address}");
        assert!(find(MACHINE_CONFIG_TYPE).expect("mc").sensitive);
        let platform = find("PlatformMetadatas.talos.dev").expect("platform metadata");
        assert!(
            platform
                .spec()
                .all_aliases
                .contains(&"platformmetadata".to_string())
        );
        assert_eq!(platform.namespace, "runtime");
    }
}
