//! OpenNebula: `context.sh` on the contextualization CD-ROM (the volume labelled `CONTEXT`),
//! shell variable assignments ([`super::shellvars`]).
//!
//! As upstream: each `ETHn_MAC` names interface `ethn` (in sorted order); its `ETHn_METHOD`
//! is `static` (or empty: `ETHn_IP` with `ETHn_MASK`, `ETHn_GATEWAY` as the default route,
//! `ETHn_ROUTES` as `DEST/PREFIX via GW` or `DEST MASK GW` separated by commas, `ETHn_DNS`),
//! `dhcp` or `skip`; IPv6 follows `ETHn_IP6_METHOD` (else the IPv4 method): `static`
//! (`ETHn_IP6` or `ETHn_IPV6` with `ETHn_IP6_PREFIX_LENGTH`, default 64, `ETHn_IP6_ULA`,
//! `ETHn_IP6_GATEWAY` or `ETHn_GATEWAY6`), `dhcp`, `auto`, `disable` or `skip`; aliases
//! `ETHn_ALIASm_*` add addresses unless detached or external. Global `DNS` resolvers come
//! first. The hostname is `SET_HOSTNAME` with characters other than letters, digits, `-` and
//! `.` made `-` (its first label in the metadata); the instance id is `VMID`. The user data
//! is `USER_DATA` (else `USERDATA`), base64 as upstream decodes it (`USERDATA_ENCODING`, when
//! given, must say `base64`).
//!
//! Limits: MTUs, route metrics, search domains and the link-scope route to OneGate are not
//! applied (the provider network here has none of them); DHCP is not told IPv4 from IPv6.

use std::collections::BTreeMap;

use super::netconfig::{Address, NetworkConfig, Route, cidr, netmask};
use super::{Instance, address, decode_base64, problem, shellvars, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "opennebula";

/// The label of the contextualization volume (any case).
pub const VOLUME_LABEL: &str = "context";
/// The file on it.
pub const CONTEXT_FILE: &str = "context.sh";

type Variables = BTreeMap<String, String>;

/// `context.sh` → the instance, its user data included.
pub fn parse(raw: &[u8]) -> Result<Instance, MachinedError> {
    let variables = shellvars::parse(PLATFORM, CONTEXT_FILE, raw)?;
    let get = |key: &str| variables.get(key).map_or("", |v| v.trim());
    let mut network = NetworkConfig::default();
    for server in get("DNS").split_whitespace() {
        network.resolvers.push(address(PLATFORM, "DNS", server)?);
    }
    let mut interfaces: Vec<&str> = variables
        .keys()
        .filter_map(|key| key.strip_suffix("_MAC"))
        .filter(|name| name.strip_prefix("ETH").is_some_and(digits))
        .collect();
    interfaces.sort_unstable();
    for interface in interfaces {
        configure(&variables, interface, &mut network)?;
        network.check(PLATFORM)?;
    }
    // As upstream, the metadata holds the host name without its domain.
    let fqdn = sanitized_hostname(get("SET_HOSTNAME"));
    let hostname = fqdn.split('.').next().unwrap_or_default();
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "SET_HOSTNAME", hostname)?,
        instance_id: value(PLATFORM, "VMID", get("VMID"))?,
        ..PlatformMetadataSpec::default()
    };
    let user_data = match variables.get("USER_DATA").or(variables.get("USERDATA")) {
        None => None,
        Some(data) => {
            let encoding = get("USERDATA_ENCODING");
            if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("base64") {
                return Err(problem(
                    PLATFORM,
                    format!("USERDATA_ENCODING: {encoding:?} (only base64 is read)"),
                ));
            }
            decode_base64(PLATFORM, "USER_DATA", data.as_bytes())?
        }
    };
    Ok(Instance {
        metadata,
        network: network.bounded(PLATFORM)?,
        user_data,
        notes: Vec::new(),
    })
}

/// Non-empty and ASCII digits only.
fn digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Interface `name` (`ETH0`) into `network`.
fn configure(
    variables: &Variables,
    name: &str,
    network: &mut NetworkConfig,
) -> Result<(), MachinedError> {
    let get = |suffix: &str| {
        variables
            .get(&format!("{name}_{suffix}"))
            .map_or("", |v| v.trim())
    };
    let link = name.to_ascii_lowercase();
    let method = get("METHOD").to_ascii_lowercase();
    let ip6_method = match get("IP6_METHOD").to_ascii_lowercase() {
        empty if empty.is_empty() => method.clone(),
        given => given,
    };
    let dhcp = |network: &mut NetworkConfig| {
        if !network.dhcp.contains(&link) {
            network.dhcp.push(link.clone());
        }
    };
    match method.as_str() {
        "skip" => {}
        "dhcp" => dhcp(network),
        "" | "static" => {
            let ip = get("IP");
            let (address_, prefix) = prefix_of(&format!("{name}_IP"), ip, get("MASK"))?;
            network.addresses.push(Address {
                link: link.clone(),
                address: address_,
                prefix,
            });
            let gateway = get("GATEWAY");
            if !gateway.is_empty() {
                network.routes.push(Route {
                    link: link.clone(),
                    destination: None,
                    gateway: address(PLATFORM, &format!("{name}_GATEWAY"), gateway)?,
                });
            }
            routes(&format!("{name}_ROUTES"), get("ROUTES"), &link, network)?;
            for server in get("DNS").split_whitespace() {
                network
                    .resolvers
                    .push(address(PLATFORM, &format!("{name}_DNS"), server)?);
            }
        }
        other => {
            return Err(problem(
                PLATFORM,
                format!("{name}_METHOD: {other:?} is not static, dhcp or skip"),
            ));
        }
    }
    match ip6_method.as_str() {
        "disable" | "skip" | "auto" => {}
        "dhcp" => dhcp(network),
        "" | "static" => {
            let ip6 = match get("IP6") {
                "" => get("IPV6"),
                given => given,
            };
            if !ip6.is_empty() {
                let length = get("IP6_PREFIX_LENGTH");
                network.addresses.push(v6_address(
                    &format!("{name}_IP6"),
                    ip6,
                    if length.is_empty() { "64" } else { length },
                    &link,
                )?);
            }
            let ula = get("IP6_ULA");
            if !ula.is_empty() {
                network
                    .addresses
                    .push(v6_address(&format!("{name}_IP6_ULA"), ula, "64", &link)?);
            }
            let gateway = match get("IP6_GATEWAY") {
                "" => get("GATEWAY6"),
                given => given,
            };
            if !gateway.is_empty() {
                network.routes.push(Route {
                    link: link.clone(),
                    destination: None,
                    gateway: address(PLATFORM, &format!("{name}_IP6_GATEWAY"), gateway)?,
                });
            }
        }
        other => {
            return Err(problem(
                PLATFORM,
                format!("{name}_IP6_METHOD: {other:?} is not static, dhcp, auto, disable or skip"),
            ));
        }
    }
    aliases(variables, name, &link, network)
}

/// `ETHn_ALIASm_*`: more addresses on the link, unless detached or external.
fn aliases(
    variables: &Variables,
    name: &str,
    link: &str,
    network: &mut NetworkConfig,
) -> Result<(), MachinedError> {
    let prefix = format!("{name}_ALIAS");
    // Only the keys that start with the prefix (the map is sorted).
    let mut aliases: Vec<&str> = variables
        .range(prefix.clone()..)
        .map(|(key, _)| key)
        .take_while(|key| key.starts_with(prefix.as_str()))
        .filter_map(|key| key.strip_suffix("_MAC"))
        .filter(|alias| alias.strip_prefix(prefix.as_str()).is_some_and(digits))
        .collect();
    aliases.sort_unstable();
    for alias in aliases {
        let get = |suffix: &str| {
            variables
                .get(&format!("{alias}_{suffix}"))
                .map_or("", |v| v.trim())
        };
        if !get("DETACH").is_empty() || get("EXTERNAL").eq_ignore_ascii_case("yes") {
            continue;
        }
        if !get("IP").is_empty() {
            let (ip, prefix) = prefix_of(&format!("{alias}_IP"), get("IP"), get("MASK"))?;
            network.addresses.push(Address {
                link: link.into(),
                address: ip,
                prefix,
            });
        }
        let ip6 = match get("IP6") {
            "" => get("IPV6"),
            given => given,
        };
        if !ip6.is_empty() {
            let length = get("IP6_PREFIX_LENGTH");
            network.addresses.push(v6_address(
                &format!("{alias}_IP6"),
                ip6,
                if length.is_empty() { "64" } else { length },
                link,
            )?);
        }
        if !get("IP6_ULA").is_empty() {
            network.addresses.push(v6_address(
                &format!("{alias}_IP6_ULA"),
                get("IP6_ULA"),
                "64",
                link,
            )?);
        }
        network.check(PLATFORM)?;
    }
    Ok(())
}

/// An address with a netmask or prefix (`MASK`, or `/N` on the address; none is a host
/// address).
fn prefix_of(what: &str, ip: &str, mask: &str) -> Result<(std::net::IpAddr, u8), MachinedError> {
    if ip.contains('/') || mask.is_empty() {
        return cidr(PLATFORM, what, ip);
    }
    let address_ = address(PLATFORM, what, ip)?;
    let prefix = netmask(PLATFORM, &format!("{what} mask"), mask)?;
    if address_.is_ipv4() && prefix > 32 {
        return Err(problem(
            PLATFORM,
            format!("{what}: mask {mask:?} is longer than 32 bits"),
        ));
    }
    Ok((address_, prefix))
}

/// An IPv6 address with its prefix length.
fn v6_address(what: &str, ip: &str, length: &str, link: &str) -> Result<Address, MachinedError> {
    let address_ = address(PLATFORM, what, ip)?;
    let prefix = length
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= 128)
        .ok_or_else(|| {
            problem(
                PLATFORM,
                format!("{what}: prefix length {length:?} is not 0 to 128"),
            )
        })?;
    Ok(Address {
        link: link.into(),
        address: address_,
        prefix,
    })
}

/// `ETHn_ROUTES`: comma-separated `DEST/PREFIX via GW` or `DEST MASK GW` (the second word
/// is skipped in the first form, as OpenNebula's own scripts do; a metric after the gateway
/// is ignored).
fn routes(
    what: &str,
    text: &str,
    link: &str,
    network: &mut NetworkConfig,
) -> Result<(), MachinedError> {
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let words: Vec<&str> = entry.split_whitespace().take(5).collect();
        let [destination, second, gateway, ..] = words[..] else {
            return Err(problem(
                PLATFORM,
                format!("{what}: {entry:?} is not DEST/PREFIX via GW or DEST MASK GW"),
            ));
        };
        let (ip, prefix) = if destination.contains('/') {
            cidr(PLATFORM, what, destination)?
        } else {
            prefix_of(what, destination, second)?
        };
        network.routes.push(Route {
            link: link.into(),
            destination: Some((ip, prefix)),
            gateway: address(PLATFORM, what, gateway)?,
        });
        network.check(PLATFORM)?;
    }
    Ok(())
}

/// Letters, digits, `-` and `.` kept, anything else `-`; no label starts or ends with `-`.
fn sanitized_hostname(raw: &str) -> String {
    let replaced: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    replaced
        .trim_matches('-')
        .split('.')
        .map(|label| label.trim_matches('-'))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: &[u8] = include_bytes!("testdata/opennebula-context.sh");

    #[test]
    fn the_context_gives_the_instance_its_network_and_user_data() {
        let instance = parse(CONTEXT).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.platform, "opennebula");
        assert_eq!(m.hostname, "talos-one-1");
        assert_eq!(m.instance_id, "42");
        let n = &instance.network;
        let addresses: Vec<String> = n
            .addresses
            .iter()
            .map(|a| format!("{}/{} on {}", a.address, a.prefix, a.link))
            .collect();
        assert_eq!(
            addresses,
            [
                "192.0.2.10/24 on eth0",
                "2001:db8:1::10/64 on eth0",
                "fd00:1::10/64 on eth0",
                "192.0.2.11/24 on eth0",
            ]
        );
        let routes: Vec<String> = n
            .routes
            .iter()
            .map(|r| match r.destination {
                Some((ip, prefix)) => format!("{ip}/{prefix} via {} on {}", r.gateway, r.link),
                None => format!("default via {} on {}", r.gateway, r.link),
            })
            .collect();
        assert_eq!(
            routes,
            [
                "default via 192.0.2.1 on eth0",
                "10.0.0.0/8 via 192.0.2.254 on eth0",
                "172.16.0.0/16 via 192.0.2.253 on eth0",
                "default via 2001:db8:1::1 on eth0",
            ]
        );
        let resolvers: Vec<String> = n.resolvers.iter().map(ToString::to_string).collect();
        assert_eq!(resolvers, ["198.51.100.53", "192.0.2.53", "192.0.2.54"]);
        assert_eq!(n.dhcp, ["eth1"]);
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\nmachine:\n  type: worker\n"[..])
        );
    }

    #[test]
    fn hostnames_are_sanitized_and_user_data_is_optional() {
        assert_eq!(sanitized_hostname("-my_host.-lab-"), "my-host.lab");
        let instance = parse(b"SET_HOSTNAME='-my_host.-lab-'\nUSERDATA=''\n").unwrap();
        assert_eq!(instance.metadata.hostname, "my-host");
        assert_eq!(instance.user_data, None);
        assert_eq!(parse(b"VMID='1'\n").unwrap().user_data, None);
        let instance = parse(b"USERDATA='dmVyc2lvbjogdjFhbHBoYTEK'\n").unwrap();
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\n"[..])
        );
    }

    #[test]
    fn bad_contexts_are_clear_errors() {
        let cases: [(&[u8], &str); 9] = [
            (b"ETH0_MAC='m'\nETH0_IP='300.1.1.1'\n", "ETH0_IP: \"300.1.1.1\""),
            (
                b"ETH0_MAC='m'\nETH0_IP='192.0.2.1'\nETH0_MASK='255.0.255.0'\n",
                "not a contiguous netmask",
            ),
            (b"ETH0_MAC='m'\nETH0_METHOD='bogus'\n", "ETH0_METHOD: \"bogus\""),
            (
                b"ETH0_MAC='m'\nETH0_METHOD='dhcp'\nETH0_IP6_METHOD='static'\nETH0_IP6='2001:db8::1'\nETH0_IP6_PREFIX_LENGTH='200'\n",
                "prefix length \"200\"",
            ),
            (
                b"ETH0_MAC='m'\nETH0_IP='192.0.2.1/24'\nETH0_ROUTES='10.0.0.0/8 via'\n",
                "ETH0_ROUTES: \"10.0.0.0/8 via\"",
            ),
            (b"DNS='1.1.1.1 x'\n", "DNS: \"x\""),
            (b"USER_DATA='not base64!'\n", "USER_DATA: not base64"),
            (
                b"USER_DATA='eA=='\nUSERDATA_ENCODING='gzip'\n",
                "USERDATA_ENCODING: \"gzip\"",
            ),
            (b"VMID=$(id)\n", "context.sh line 1: VMID: an unquoted '$'"),
        ];
        for (context, expected) in cases {
            let error = parse(context).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
        let many: String = (0..100)
            .map(|i| format!("ETH{i}_MAC='m'\nETH{i}_METHOD='dhcp'\n"))
            .collect();
        let error = parse(many.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("more than 64 entries"), "{error}");
    }
}
