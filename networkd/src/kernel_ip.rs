//! The kernel's `ip=` argument, as Documentation/admin-guide/nfs/nfsroot.rst describes it:
//! `client-ip:server-ip:gw-ip:netmask:hostname:device:autoconf:dns0-ip:dns1-ip:ntp0-ip`, or one
//! of the autoconf words alone (`ip=dhcp`, `ip=off`).
//!
//! Limits: `server-ip` and `ntp0-ip` are parsed and dropped (NTP is timed's concern); autoconf
//! `bootp`/`rarp` are taken as DHCP; without a device the engine picks the first physical link.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use machineconfig::ValidationIssue;

/// What `ip=` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelIp {
    pub address: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    pub hostname: Option<String>,
    pub device: Option<String>,
    pub dhcp: bool,
    pub nameservers: Vec<IpAddr>,
}

const FIELDS: [&str; 10] = [
    "client-ip",
    "server-ip",
    "gw-ip",
    "netmask",
    "hostname",
    "device",
    "autoconf",
    "dns0-ip",
    "dns1-ip",
    "ntp0-ip",
];

fn issue(field: &str, message: String) -> ValidationIssue {
    ValidationIssue {
        path: format!("kernel ip= {field}"),
        message,
    }
}

/// Whether `word` turns autoconfiguration on (`Some(true)`), off (`Some(false)`), or is not an
/// autoconf word.
fn autoconf(word: &str) -> Option<bool> {
    match word {
        "off" | "none" => Some(false),
        "on" | "any" | "dhcp" | "bootp" | "rarp" | "both" => Some(true),
        _ => None,
    }
}

/// Parses the value of `ip=`.
pub fn parse(text: &str) -> Result<KernelIp, ValidationIssue> {
    if let Some(on) = autoconf(text) {
        return Ok(KernelIp {
            dhcp: on,
            ..KernelIp::default()
        });
    }
    let fields: Vec<&str> = text.split(':').collect();
    if fields.len() > FIELDS.len() {
        return Err(issue(
            "",
            format!(
                "{text:?} has {} fields, at most {} are allowed",
                fields.len(),
                FIELDS.len()
            ),
        ));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    let ip = |i: usize| -> Result<Option<Ipv4Addr>, ValidationIssue> {
        let value = field(i);
        if value.is_empty() {
            return Ok(None);
        }
        value
            .parse()
            .map(Some)
            .map_err(|_| issue(FIELDS[i], format!("{value:?} is not an IPv4 address")))
    };
    let client = ip(0)?;
    ip(1)?;
    let gateway = ip(2)?;
    let netmask = ip(3)?;
    let prefix = match netmask {
        Some(mask) => {
            let bits = u32::from(mask);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return Err(issue(
                    FIELDS[3],
                    format!("{mask} is not a contiguous netmask"),
                ));
            }
            Some(bits.leading_ones() as u8)
        }
        None => None,
    };
    let address = match client {
        Some(client) => {
            // Without a netmask the kernel falls back to the address class.
            let prefix = prefix.unwrap_or(match client.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                _ => 24,
            });
            let net =
                Ipv4Net::new(client, prefix).map_err(|err| issue(FIELDS[3], err.to_string()))?;
            Some(IpNet::V4(net))
        }
        None => None,
    };
    let hostname = Some(field(4)).filter(|h| !h.is_empty()).map(str::to_string);
    let device = Some(field(5)).filter(|d| !d.is_empty()).map(str::to_string);
    let dhcp = match field(6) {
        "" => client.is_none(),
        word => autoconf(word)
            .ok_or_else(|| issue(FIELDS[6], format!("unknown autoconf method {word:?}")))?,
    };
    let nameservers = [ip(7)?, ip(8)?]
        .into_iter()
        .flatten()
        .map(IpAddr::V4)
        .collect();
    ip(9)?;
    Ok(KernelIp {
        address,
        gateway: gateway.map(IpAddr::V4),
        hostname,
        device,
        dhcp,
        nameservers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_static_form() {
        let ip =
            parse("192.168.1.10:192.168.1.1:192.168.1.254:255.255.255.0:box:eth1:none:1.1.1.1")
                .unwrap();
        assert_eq!(ip.address, Some("192.168.1.10/24".parse().unwrap()));
        assert_eq!(ip.gateway, Some("192.168.1.254".parse().unwrap()));
        assert_eq!(ip.hostname.as_deref(), Some("box"));
        assert_eq!(ip.device.as_deref(), Some("eth1"));
        assert!(!ip.dhcp);
        assert_eq!(ip.nameservers, vec!["1.1.1.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn short_forms() {
        assert!(parse("dhcp").unwrap().dhcp);
        assert!(!parse("off").unwrap().dhcp);
        let ip = parse(":::::eth0:dhcp").unwrap();
        assert!(ip.dhcp);
        assert_eq!(ip.device.as_deref(), Some("eth0"));
        assert_eq!(
            parse("10.1.2.3").unwrap().address,
            Some("10.1.2.3/8".parse().unwrap())
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse("10.0.0.1::10.0.0.999").unwrap_err();
        assert_eq!(err.path, "kernel ip= gw-ip");
        let err = parse("10.0.0.1:::255.0.255.0").unwrap_err();
        assert_eq!(err.path, "kernel ip= netmask");
        let err = parse("10.0.0.1::::::sometimes").unwrap_err();
        assert_eq!(err.path, "kernel ip= autoconf");
    }
}
