//! Microsoft Azure: the Instance Metadata Service (IMDS, every request with `Metadata: true`
//! and an `api-version`) and the wire server, as Microsoft documents them.
//!
//! - `metadata/instance/compute` (JSON): name and `osProfile.computerName` (the hostname),
//!   `vmId`, `vmSize`, `location`, `zone`, `platformFaultDomain`, `resourceId`,
//!   `evictionPolicy` (a spot VM when set);
//! - `metadata/instance/network/interface` (JSON): per NIC its MAC and IPv4/IPv6 addresses
//!   and subnets; DHCP on each NIC, IPv6 addresses set statically, public addresses reported
//!   as external IPs;
//! - `metadata/instance/compute/userData` (text, base64): the machine config. Without it the
//!   `CustomData` of `ovf-env.xml` on the provisioning media is read ([`custom_data`],
//!   mounted by the platform code);
//! - the wire server: `GET /machine/?comp=goalstate` gives the goal state's incarnation,
//!   container id and role instance id, and `POST /machine/?comp=health` with a `Health`
//!   document whose state is `Ready` reports the VM provisioned (what Azure waits for before
//!   it calls the deployment a success). A failed report is logged, not fatal.

use serde::Deserialize;

use super::netconfig::{Address, NetworkConfig};
use super::{
    Instance, MAX_DOCUMENT, MAX_USER_DATA, address, decode_base64, get, get_required, json,
    problem, value,
};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "azure";
const METADATA: (&str, &str) = ("Metadata", "true");
/// The IMDS api-version of the compute and network documents.
const API_VERSION: &str = "2021-12-13";
/// The first api-version that has `userData`.
const USER_DATA_API_VERSION: &str = "2021-01-01";
/// Azure's wire server (the host's fixed virtual address).
pub const WIRE_SERVER: &str = "http://168.63.129.16";
/// The headers the wire server expects of a guest agent.
const WIRE_HEADERS: [(&str, &str); 3] = [
    ("x-ms-agent-name", "WALinuxAgent"),
    ("x-ms-version", "2015-04-05"),
    ("Content-Type", "text/xml;charset=utf-8"),
];
/// Most NICs read from the interface document.
const MAX_INTERFACES: usize = 64;

/// Reads IMDS at `base` and reports ready to the wire server at `wire`.
pub fn fetch(base: &str, wire: &str) -> Result<Instance, MachinedError> {
    let compute = get_required(
        PLATFORM,
        &format!("{base}/metadata/instance/compute?api-version={API_VERSION}&format=json"),
        &[METADATA],
    )?;
    let interfaces = get(
        PLATFORM,
        &format!(
            "{base}/metadata/instance/network/interface?api-version={API_VERSION}&format=json"
        ),
        &[METADATA],
        MAX_DOCUMENT,
    )?;
    let mut instance = parse(&compute, interfaces.as_deref())?;
    let user_data = get(
        PLATFORM,
        &format!(
            "{base}/metadata/instance/compute/userData?api-version={USER_DATA_API_VERSION}&format=text"
        ),
        &[METADATA],
        MAX_USER_DATA * 2,
    )?;
    instance.user_data = match user_data {
        Some(text) => decode_base64(PLATFORM, "userData", &text)?,
        None => None,
    };
    instance.notes.push(match report_ready(wire) {
        Ok(incarnation) => {
            format!("azure: reported ready to the wire server (incarnation {incarnation})")
        }
        Err(error) => format!("{error}; the VM may show as still provisioning"),
    });
    Ok(instance)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Compute {
    #[serde(default)]
    name: String,
    #[serde(default)]
    os_profile: OsProfile,
    #[serde(default)]
    vm_id: String,
    #[serde(default)]
    vm_size: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    platform_fault_domain: String,
    #[serde(default)]
    resource_id: String,
    #[serde(default)]
    eviction_policy: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OsProfile {
    #[serde(default)]
    computer_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Interface {
    #[serde(default)]
    ipv4: Family,
    #[serde(default)]
    ipv6: Family,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Family {
    #[serde(default)]
    ip_address: Vec<IpAddress>,
    #[serde(default)]
    subnet: Vec<Subnet>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IpAddress {
    #[serde(default)]
    private_ip_address: String,
    #[serde(default)]
    public_ip_address: String,
}

#[derive(Deserialize)]
struct Subnet {
    #[serde(default)]
    prefix: String,
}

/// The compute document and the interface list → the instance.
pub fn parse(compute: &[u8], interfaces: Option<&[u8]>) -> Result<Instance, MachinedError> {
    let c: Compute = json(PLATFORM, "compute metadata", compute)?;
    let vm_id = value(PLATFORM, "vmId", &c.vm_id)?;
    if vm_id.is_empty() {
        return Err(problem(PLATFORM, "compute metadata: no vmId"));
    }
    let hostname = match c.os_profile.computer_name.trim() {
        "" => value(PLATFORM, "name", &c.name)?,
        name => value(PLATFORM, "osProfile.computerName", name)?,
    };
    let location = value(PLATFORM, "location", &c.location)?;
    let zone = match value(PLATFORM, "zone", &c.zone)?.as_str() {
        "" => value(PLATFORM, "platformFaultDomain", &c.platform_fault_domain)?,
        zone => format!("{location}-{zone}"),
    };
    let resource_id = value(PLATFORM, "resourceId", &c.resource_id)?;
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname,
        region: location,
        zone,
        instance_type: value(PLATFORM, "vmSize", &c.vm_size)?,
        provider_id: if resource_id.is_empty() {
            String::new()
        } else {
            format!("azure://{}", resource_id.to_ascii_lowercase())
        },
        instance_id: vm_id,
        spot: !c.eviction_policy.trim().is_empty(),
        ..PlatformMetadataSpec::default()
    };
    let network = match interfaces {
        Some(raw) => network(raw)?,
        None => NetworkConfig::default(),
    };
    Ok(Instance {
        metadata,
        network: network.bounded(PLATFORM)?,
        ..Instance::default()
    })
}

/// The interface list: DHCP on `eth{n}` for NIC n, its IPv6 addresses with their subnet's
/// prefix, every public address an external IP.
fn network(raw: &[u8]) -> Result<NetworkConfig, MachinedError> {
    let interfaces: Vec<Interface> = json(PLATFORM, "network interfaces", raw)?;
    if interfaces.len() > MAX_INTERFACES {
        return Err(problem(
            PLATFORM,
            format!("network interfaces: more than {MAX_INTERFACES}"),
        ));
    }
    let mut config = NetworkConfig::default();
    for (index, nic) in interfaces.iter().enumerate() {
        let link = format!("eth{index}");
        config.dhcp.push(link.clone());
        let prefix6 = match nic.ipv6.subnet.first() {
            Some(subnet) => subnet
                .prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 128),
            None => None,
        }
        .unwrap_or(128);
        for ip in nic.ipv4.ip_address.iter().chain(&nic.ipv6.ip_address) {
            if !ip.public_ip_address.trim().is_empty() {
                config.external_ips.push(address(
                    PLATFORM,
                    "publicIpAddress",
                    &ip.public_ip_address,
                )?);
            }
        }
        for ip in &nic.ipv6.ip_address {
            if ip.private_ip_address.trim().is_empty() {
                continue;
            }
            config.addresses.push(Address {
                link: link.clone(),
                address: address(PLATFORM, "ipv6 privateIpAddress", &ip.private_ip_address)?,
                prefix: prefix6,
            });
        }
    }
    Ok(config)
}

/// The element of `document` at `path` (local names, namespaces ignored), from the root.
fn element<'a, 'input>(
    document: &'a roxmltree::Document<'input>,
    path: &[&str],
) -> Option<roxmltree::Node<'a, 'input>> {
    let (first, rest) = path.split_first()?;
    let mut node = document.root_element();
    if node.tag_name().name() != *first {
        return None;
    }
    for name in rest {
        node = node
            .children()
            .find(|child| child.is_element() && child.tag_name().name() == *name)?;
    }
    Some(node)
}

/// Parses XML text of at most [`MAX_DOCUMENT`] bytes.
fn xml<'input>(
    what: &str,
    raw: &'input [u8],
) -> Result<roxmltree::Document<'input>, MachinedError> {
    if raw.len() as u64 > MAX_DOCUMENT {
        return Err(problem(
            PLATFORM,
            format!("{what}: larger than {MAX_DOCUMENT} bytes"),
        ));
    }
    let text =
        std::str::from_utf8(raw).map_err(|_| problem(PLATFORM, format!("{what}: not UTF-8")))?;
    roxmltree::Document::parse(text).map_err(|e| problem(PLATFORM, format!("{what}: {e}")))
}

/// The user data of `ovf-env.xml`: the base64 `CustomData` of its Linux provisioning
/// configuration set; `None` when it has none.
pub fn custom_data(ovf_env: &[u8]) -> Result<Option<Vec<u8>>, MachinedError> {
    let document = xml("ovf-env.xml", ovf_env)?;
    if document.root_element().tag_name().name() != "Environment" {
        return Err(problem(
            PLATFORM,
            "ovf-env.xml: the root element is not Environment",
        ));
    }
    let path = [
        "Environment",
        "ProvisioningSection",
        "LinuxProvisioningConfigurationSet",
        "CustomData",
    ];
    match element(&document, &path).and_then(|node| node.text()) {
        Some(text) => decode_base64(PLATFORM, "ovf-env.xml CustomData", text.as_bytes()),
        None => Ok(None),
    }
}

/// What the goal state names: the incarnation, the container and the role instance.
#[derive(Debug, PartialEq, Eq)]
pub struct GoalState {
    pub incarnation: String,
    pub container_id: String,
    pub instance_id: String,
}

/// The wire server's goal state document.
pub fn goal_state(raw: &[u8]) -> Result<GoalState, MachinedError> {
    let document = xml("goal state", raw)?;
    let text = |path: &[&str]| -> Result<String, MachinedError> {
        let found = element(&document, path)
            .and_then(|node| node.text())
            .unwrap_or_default();
        let what = path.join("/");
        let text = value(PLATFORM, &what, found)?;
        if text.is_empty() {
            return Err(problem(PLATFORM, format!("goal state: no {what}")));
        }
        Ok(text)
    };
    Ok(GoalState {
        incarnation: text(&["GoalState", "Incarnation"])?,
        container_id: text(&["GoalState", "Container", "ContainerId"])?,
        instance_id: text(&[
            "GoalState",
            "Container",
            "RoleInstanceList",
            "RoleInstance",
            "InstanceId",
        ])?,
    })
}

/// The `Health` document that reports `goal`'s role instance ready.
pub fn health_report(goal: &GoalState) -> String {
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n",
            "<Health xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ",
            "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">",
            "<GoalStateIncarnation>{}</GoalStateIncarnation>",
            "<Container><ContainerId>{}</ContainerId>",
            "<RoleInstanceList><Role><InstanceId>{}</InstanceId>",
            "<Health><State>Ready</State></Health>",
            "</Role></RoleInstanceList></Container></Health>\n"
        ),
        escape(&goal.incarnation),
        escape(&goal.container_id),
        escape(&goal.instance_id)
    )
}

/// `text` with XML's special characters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Reads the goal state from the wire server at `wire` and reports its role instance ready;
/// the incarnation reported.
fn report_ready(wire: &str) -> Result<String, MachinedError> {
    let url = format!("{wire}/machine/?comp=goalstate");
    let raw = get_required(PLATFORM, &url, &WIRE_HEADERS)?;
    let goal = goal_state(&raw)?;
    let url = format!("{wire}/machine/?comp=health");
    let answer = super::http::post(
        &url,
        &WIRE_HEADERS,
        health_report(&goal).as_bytes(),
        MAX_DOCUMENT,
    )
    .map_err(|e| problem(PLATFORM, e))?;
    if !(200..300).contains(&answer.status) {
        return Err(problem(
            PLATFORM,
            format!("{url}: the wire server answered {}", answer.status),
        ));
    }
    Ok(goal.incarnation)
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    const COMPUTE: &[u8] = include_bytes!("testdata/azure-compute.json");
    const INTERFACES: &[u8] = include_bytes!("testdata/azure-interfaces.json");
    const OVF_ENV: &[u8] = include_bytes!("testdata/azure-ovf-env.xml");
    const GOAL_STATE: &[u8] = include_bytes!("testdata/azure-goalstate.xml");

    #[test]
    fn compute_and_interfaces_give_the_instance() {
        let instance = parse(COMPUTE, Some(INTERFACES)).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.hostname, "talos-node-1");
        assert_eq!(m.instance_id, "02aab8a4-74ef-476e-8182-f6d2ba4166a6");
        assert_eq!(m.instance_type, "Standard_D2s_v5");
        assert_eq!(
            (m.region.as_str(), m.zone.as_str()),
            ("westeurope", "westeurope-2")
        );
        assert_eq!(
            m.provider_id,
            "azure:///subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourcegroups/talos/providers/microsoft.compute/virtualmachines/talos-node-1"
        );
        assert!(m.spot);
        let n = &instance.network;
        assert_eq!(n.dhcp, ["eth0", "eth1"]);
        assert_eq!(
            n.external_ips,
            ["20.61.10.5".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(n.addresses.len(), 1);
        assert_eq!(n.addresses[0].link, "eth0");
        assert_eq!(n.addresses[0].address.to_string(), "fd00:db8:deca:deed::4");
        assert_eq!(n.addresses[0].prefix, 64);
    }

    #[test]
    fn without_a_computer_name_or_zone_the_name_and_fault_domain_serve() {
        let compute =
            br#"{"name":"vm-7","vmId":"x","location":"eastus","platformFaultDomain":"1"}"#;
        let instance = parse(compute, None).unwrap();
        assert_eq!(instance.metadata.hostname, "vm-7");
        assert_eq!(instance.metadata.zone, "1");
        assert!(!instance.metadata.spot);
        assert!(instance.metadata.provider_id.is_empty());
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        let error = parse(b"{}", None).unwrap_err().to_string();
        assert!(error.contains("no vmId"), "{error}");
        let error = parse(br#"{"vmId":"a","name":"x\u0007"}"#, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("control characters"), "{error}");
        let error = parse(
            br#"{"vmId":"a"}"#,
            Some(br#"[{"ipv4":{"ipAddress":[{"publicIpAddress":"not-an-ip"}]}}]"#),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("not an IP address"), "{error}");
        let error = custom_data(b"<Environment><unclosed>")
            .unwrap_err()
            .to_string();
        assert!(error.contains("ovf-env.xml"), "{error}");
        let error = goal_state(b"<GoalState><Incarnation>1</Incarnation></GoalState>")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no GoalState/Container/ContainerId"),
            "{error}"
        );
    }

    #[test]
    fn ovf_env_custom_data_is_the_user_data() {
        let data = custom_data(OVF_ENV).unwrap().unwrap();
        assert_eq!(data, b"version: v1alpha1\nmachine:\n  type: worker\n");
        let without = br#"<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"><ProvisioningSection/></Environment>"#;
        assert_eq!(custom_data(without).unwrap(), None);
        let error = custom_data(b"<Other/>").unwrap_err().to_string();
        assert!(error.contains("not Environment"), "{error}");
    }

    #[test]
    fn the_goal_state_gives_the_health_report() {
        let goal = goal_state(GOAL_STATE).unwrap();
        assert_eq!(
            goal,
            GoalState {
                incarnation: "1".into(),
                container_id: "a1b2c3d4-0000-4000-8000-00000000c0de".into(),
                instance_id: "896c2e2a-60a1-4cbb-b0cb-6e1ba2b8c1a8._talos-node-1".into(),
            }
        );
        let report = health_report(&goal);
        let parsed = roxmltree::Document::parse(&report).unwrap();
        let state = parsed
            .descendants()
            .find(|n| n.has_tag_name("State"))
            .and_then(|n| n.text());
        assert_eq!(state, Some("Ready"));
        let hostile = GoalState {
            incarnation: "1</GoalStateIncarnation><x>".into(),
            ..goal
        };
        let report = health_report(&hostile);
        let parsed = roxmltree::Document::parse(&report).unwrap();
        let incarnation = parsed
            .descendants()
            .find(|n| n.has_tag_name("GoalStateIncarnation"))
            .and_then(|n| n.text());
        assert_eq!(incarnation, Some("1</GoalStateIncarnation><x>"));
    }

    #[test]
    fn fetch_sends_the_metadata_header_decodes_user_data_and_reports_ready() {
        let compute =
            format!("GET /metadata/instance/compute?api-version={API_VERSION}&format=json");
        let interfaces = format!(
            "GET /metadata/instance/network/interface?api-version={API_VERSION}&format=json"
        );
        let user_data = format!(
            "GET /metadata/instance/compute/userData?api-version={USER_DATA_API_VERSION}&format=text"
        );
        let answers = table(&[
            (compute.as_str(), COMPUTE),
            (interfaces.as_str(), INTERFACES),
            (user_data.as_str(), b"dmVyc2lvbjogdjFhbHBoYTEK\n"),
            ("GET /machine/?comp=goalstate", GOAL_STATE),
            ("POST /machine/?comp=health", b""),
        ]);
        let (base, seen) = serve(
            answers,
            vec![
                ("GET /metadata/", "Metadata: true"),
                ("GET /machine/", "x-ms-version: 2015-04-05"),
                ("POST /machine/", "x-ms-agent-name: WALinuxAgent"),
            ],
        );
        let instance = fetch(&base, &base).unwrap();
        assert_eq!(instance.metadata.hostname, "talos-node-1");
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
        assert_eq!(
            instance.notes,
            ["azure: reported ready to the wire server (incarnation 1)"]
        );
        let seen = seen.lock().unwrap();
        assert!(
            seen.last()
                .unwrap()
                .starts_with("POST /machine/?comp=health")
        );

        // A wire server that refuses: the instance still comes, the failure is noted.
        let (base, _) = serve(table(&[(compute.as_str(), COMPUTE)]), vec![]);
        let instance = fetch(&base, &base).unwrap();
        assert_eq!(instance.user_data, None);
        assert!(
            instance.notes[0].contains("still provisioning"),
            "{:?}",
            instance.notes
        );
    }
}
