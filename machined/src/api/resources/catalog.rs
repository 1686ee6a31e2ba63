//! The resource types machined serves, described as upstream's `ResourceDefinitions` so that
//! `talosctl get` (ours and stock) can resolve aliases and print columns.

use proto::cosi::resource::meta::ResourceDefinitionSpec;
use proto::cosi::resource::meta::resource_definition_spec::{PrintColumn, Sensitivity};
use resources::Spec;

use crate::controllers;

/// Where a type's resources come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The node's resource state (Get, List and Watch).
    State,
    /// Asked of networkd on each call (Get and List).
    Networkd,
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
pub const ADDRESS_STATUS_TYPE: &str = "AddressStatuses.net.talos.dev";
pub const ROUTE_STATUS_TYPE: &str = "RouteStatuses.net.talos.dev";
pub const LINK_STATUS_TYPE: &str = "LinkStatuses.net.talos.dev";
pub const HOSTNAME_STATUS_TYPE: &str = "HostnameStatuses.net.talos.dev";
pub const RESOLVER_STATUS_TYPE: &str = "ResolverStatuses.net.talos.dev";
pub const RESOURCE_DEFINITION_TYPE: &str = "ResourceDefinitions.meta.cosi.dev";
const HOSTNAME_SPEC_TYPE: &str = <controllers::HostnameSpec as Spec>::TYPE;
const MACHINE_STATUS_TYPE: &str = <controllers::MachineStatusSpec as Spec>::TYPE;
const META_KEY_TYPE: &str = <controllers::MetaKeySpec as Spec>::TYPE;
const MACHINE_TYPE_TYPE: &str = <controllers::MachineTypeSpec as Spec>::TYPE;
const SERVICE_TYPE: &str = <controllers::ServiceSpec as Spec>::TYPE;
const KUBELET_SPEC_TYPE: &str = <crate::kubelet::KubeletSpec as Spec>::TYPE;
const STATIC_POD_TYPE: &str = <crate::kubelet::StaticPodSpec as Spec>::TYPE;

/// Everything served, in the order `get rd` lists it.
pub const DEFINITIONS: &[Definition] = &[
    Definition {
        source: Source::Networkd,
        resource_type: ADDRESS_STATUS_TYPE,
        display_type: "AddressStatus",
        namespace: "network",
        aliases: &["address", "addresses"],
        columns: &[("ADDRESS", "{.address}"), ("LINK", "{.linkName}")],
        sensitive: false,
    },
    Definition {
        source: Source::Networkd,
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
        source: Source::Networkd,
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
        source: Source::Networkd,
        resource_type: RESOLVER_STATUS_TYPE,
        display_type: "ResolverStatus",
        namespace: "network",
        aliases: &["resolvers", "resolver"],
        columns: &[("RESOLVERS", "{.dnsServers}")],
        sensitive: false,
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
        source: Source::Networkd,
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
        let yaml: serde_yaml::Value = serde_yaml::from_str(&addresses.spec_yaml()).expect("yaml");
        assert_eq!(yaml["printColumns"][0]["jsonPath"], "{.address}");
        assert!(find(MACHINE_CONFIG_TYPE).expect("mc").sensitive);
    }
}
