//! Pieces shared by the network kinds: the common link settings (addresses, routes, MTU) that
//! every link kind carries, routing tables, hardware addresses, and the checks across documents
//! (one link name configured by two documents, two VIP kinds for one address).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::documents::Document;
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

/// The path of a named document: `LinkConfig "eth0"`.
pub(crate) fn named(kind: &str, name: &str) -> String {
    format!("{kind} {name:?}")
}

/// Reports an empty `name` of a named kind.
pub(crate) fn require_name(kind: &str, name: &str, f: &mut Findings) {
    if name.is_empty() {
        f.error(format!("{kind}.name"), "name is required");
    }
}

/// Declares a named link kind: the fields given plus the settings every link carries
/// (`up`, `mtu`, `addresses`, `routes`, `multicast`), written inline as upstream does.
macro_rules! link_kind {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $kind:literal {
            $( $body:tt )*
        }
    ) => {
        $crate::documents::document_kind! {
            $(#[$meta])*
            pub struct $name = $kind, named {
                $( $body )*
                /// Bring the link up (or keep it down).
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub up: Option<bool>,
                /// Link MTU.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub mtu: Option<u32>,
                /// Static addresses.
                #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
                pub addresses: Vec<$crate::documents::network::AddressConfig>,
                /// Static routes.
                #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
                pub routes: Vec<$crate::documents::network::RouteConfig>,
                /// Multicast flag of the link.
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub multicast: Option<bool>,
            }
        }
    };
}
pub(super) use link_kind;

/// Declares a closed set of names (upstream's enums): written in the spelling given, read in any
/// letter case as upstream does; `| "alias"` adds other accepted spellings (numbers upstream
/// also takes). Integers are read as their decimal text.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal $(| $alias:literal)*, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )*
        }

        impl $name {
            /// The spelling written in the configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = $crate::documents::network::common::scalar_text(d)?;
                match text.to_ascii_lowercase().as_str() {
                    $( $text $(| $alias)* => Ok($name::$variant), )*
                    _ => Err(serde::de::Error::custom(format!(
                        "unknown value {text:?}, expected one of: {}",
                        [$( $text ),*].join(", ")
                    ))),
                }
            }
        }
    };
}
pub(super) use text_enum;

/// A scalar (string or integer) as text, for [`text_enum`].
pub(super) fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Text(String),
        Number(u64),
    }
    Ok(match Wire::deserialize(d)? {
        Wire::Text(text) => text,
        Wire::Number(n) => n.to_string(),
    })
}

/// One static address of a link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddressConfig {
    /// Address with prefix length (`192.168.1.10/24`).
    #[serde(default)]
    pub address: String,
    /// Priority (metric) of the prefix route the address creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_priority: Option<u32>,
}

/// One static route of a link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteConfig {
    /// Destination prefix; the default route when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Gateway address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Preferred source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Route metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// Route MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Routing table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<RoutingTable>,
}

/// Checks the addresses and routes of a link; `path` names the document (or the veth peer).
pub(super) fn check_link(
    path: &str,
    addresses: &[AddressConfig],
    routes: &[RouteConfig],
    f: &mut Findings,
) {
    for (i, address) in addresses.iter().enumerate() {
        let at = format!("{path}.addresses[{i}].address");
        if address.address.is_empty() {
            f.error(at, "address is required");
            continue;
        }
        match formats::cidr(&address.address) {
            Ok(net) if net.addr().is_unspecified() => {
                f.error(at, "the unspecified address can not be assigned to a link");
            }
            Ok(_) => {}
            Err(message) => f.error(at, message),
        }
    }
    for (i, route) in routes.iter().enumerate() {
        if let Some(destination) = &route.destination {
            let at = format!("{path}.routes[{i}].destination");
            match formats::cidr(destination) {
                Ok(net) if net.addr().is_unspecified() => f.error(
                    at,
                    "leave destination out for a default route instead of an unspecified prefix",
                ),
                Ok(_) => {}
                Err(message) => f.error(at, message),
            }
        }
        for (field, value) in [("gateway", &route.gateway), ("source", &route.source)] {
            if let Some(value) = value {
                f.check(format!("{path}.routes[{i}].{field}"), specified_ip(value));
            }
        }
    }
}

/// An IP address that is not `0.0.0.0` or `::`.
pub(super) fn specified_ip(text: &str) -> Result<(), String> {
    let ip = formats::ip(text)?;
    if ip.is_unspecified() {
        Err(format!("{text:?} is the unspecified address"))
    } else {
        Ok(())
    }
}

/// A hardware (MAC) address or DUID: hex bytes, optionally separated by `:`; empty means
/// unset, as upstream reads it.
pub(super) fn hardware_addr(text: &str) -> Result<(), String> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    if digits.len().is_multiple_of(2) && digits.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is not a valid hardware address (expected hex bytes such as 02:00:00:00:00:01)"
        ))
    }
}

/// A routing table: `main`, `local`, `default`, `unspec`, or a table number from 1 to 252.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingTable {
    /// No table (`unspec`, 0).
    Unspec,
    /// A numbered table, 1 to 252.
    Id(u8),
    /// The `default` table (253).
    Default,
    /// The `main` table (254).
    Main,
    /// The `local` table (255).
    Local,
}

impl RoutingTable {
    /// Whether the table is one of the kernel's own (`unspec`, `default`, `main`, `local`).
    pub fn is_reserved(self) -> bool {
        !matches!(self, RoutingTable::Id(_))
    }

    /// The kernel's number of the table (`main` is 254).
    pub fn number(self) -> u32 {
        match self {
            RoutingTable::Unspec => 0,
            RoutingTable::Id(n) => u32::from(n),
            RoutingTable::Default => 253,
            RoutingTable::Main => 254,
            RoutingTable::Local => 255,
        }
    }

    fn from_number(n: u64) -> Option<Self> {
        match n {
            0 => Some(RoutingTable::Unspec),
            1..=252 => u8::try_from(n).ok().map(RoutingTable::Id),
            253 => Some(RoutingTable::Default),
            254 => Some(RoutingTable::Main),
            255 => Some(RoutingTable::Local),
            _ => None,
        }
    }

    fn from_name(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "unspec" => Some(RoutingTable::Unspec),
            "default" => Some(RoutingTable::Default),
            "main" => Some(RoutingTable::Main),
            "local" => Some(RoutingTable::Local),
            number => number
                .parse::<u64>()
                .ok()
                .and_then(RoutingTable::from_number),
        }
    }
}

impl fmt::Display for RoutingTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutingTable::Unspec => f.write_str("unspec"),
            RoutingTable::Id(n) => write!(f, "{n}"),
            RoutingTable::Default => f.write_str("default"),
            RoutingTable::Main => f.write_str("main"),
            RoutingTable::Local => f.write_str("local"),
        }
    }
}

impl Serialize for RoutingTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RoutingTable::Id(n) => s.serialize_u8(*n),
            named => s.collect_str(named),
        }
    }
}

impl<'de> Deserialize<'de> for RoutingTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Number(u64),
            Text(String),
        }
        let wire = Wire::deserialize(d)?;
        let table = match &wire {
            Wire::Number(n) => RoutingTable::from_number(*n),
            Wire::Text(text) => RoutingTable::from_name(text),
        };
        table.ok_or_else(|| {
            let written = match wire {
                Wire::Number(n) => n.to_string(),
                Wire::Text(text) => text,
            };
            serde::de::Error::custom(format!(
                "invalid routing table {written:?} (expected main, local, default, unspec or 1 to 252)"
            ))
        })
    }
}

/// The link kinds: a link name may be configured by one of them only.
const LINK_KINDS: &[&str] = &[
    "LinkConfig",
    "DummyLinkConfig",
    "BondConfig",
    "BridgeConfig",
    "VLANConfig",
    "VRFConfig",
    "VethConfig",
    "WireguardConfig",
];

/// Kinds that may not share a name with one another: the virtual IP kinds.
const VIP_KINDS: &[&str] = &["Layer2VIPConfig", "HCloudVIPConfig"];

/// Checks across the network documents: a link is configured by one document only (a veth
/// peer counts as a link of its own), and an address is a virtual IP of one kind only.
pub(crate) fn check_across(
    documents: &[Document],
    v1alpha1: Option<&V1Alpha1Config>,
    f: &mut Findings,
) {
    super::kubespan::check_across(documents, v1alpha1, f);
    // (kind, document name, link name) of every link claimed so far.
    let mut links: Vec<(&str, &str, &str)> = Vec::new();
    let mut vips: Vec<(&str, &str)> = Vec::new();
    for document in documents {
        let kind = document.kind();
        let Some(name) = document.name() else {
            continue;
        };
        if LINK_KINDS.contains(&kind) {
            let mut claimed = vec![name];
            if let Document::Veth(veth) = document
                && !veth.peer.name.is_empty()
            {
                claimed.push(veth.peer.name.as_str());
            }
            for link in claimed {
                if let Some((owner_kind, owner_name, _)) = links
                    .iter()
                    .find(|(k, n, claimed)| *claimed == link && !(*k == kind && *n == name))
                {
                    f.error(
                        named(kind, name),
                        format!(
                            "link {link:?} is already configured by {owner_kind} {owner_name:?}"
                        ),
                    );
                }
                links.push((kind, name, link));
            }
        }
        if VIP_KINDS.contains(&kind) {
            if let Some((other, _)) = vips.iter().find(|(k, n)| *n == name && *k != kind) {
                f.error(
                    named(kind, name),
                    format!("the address is also configured as a virtual IP by {other}"),
                );
            }
            vips.push((kind, name));
        }
    }
}
