//! The size and address flags of `cluster create`: memory (`2GiB`, `512MiB`, or a bare number
//! of MiB as older talosctl took), CPUs (`2.0`), and the network's CIDR.

use std::net::Ipv4Addr;

use anyhow::{Context as _, bail};

/// Bytes of a memory flag.
pub fn parse_memory(flag: &str, text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("--{flag} {text:?}: expected a size such as 2GiB or 512MiB"))?;
    let scale: f64 = match unit.trim() {
        "" | "MiB" | "Mi" | "M" | "MB" => (1u64 << 20) as f64,
        "GiB" | "Gi" | "G" | "GB" => (1u64 << 30) as f64,
        other => bail!("--{flag} {text:?}: unknown unit {other:?} (use MiB or GiB)"),
    };
    let bytes = number * scale;
    if !(bytes >= (64u64 << 20) as f64 && bytes <= (1u64 << 40) as f64) {
        bail!("--{flag} {text:?}: must be between 64MiB and 1024GiB");
    }
    Ok(bytes as u64)
}

/// CPUs of a CPU flag.
pub fn parse_cpus(flag: &str, text: &str) -> anyhow::Result<f64> {
    let cpus: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("--{flag} {text:?}: expected a number of CPUs such as 2.0"))?;
    if !(0.1..=256.0).contains(&cpus) {
        bail!("--{flag} {text:?}: must be between 0.1 and 256");
    }
    Ok(cpus)
}

/// `1.5 GiB`, `512 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// An IPv4 network: the gateway is its first host, nodes take the following ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(flag: &str, text: &str) -> anyhow::Result<Cidr> {
        let bad = || format!("--{flag} {text:?}: expected an IPv4 CIDR such as 10.5.0.0/24");
        let (address, prefix) = text.split_once('/').with_context(bad)?;
        let address: Ipv4Addr = address.parse().with_context(bad)?;
        let prefix: u8 = prefix.parse().with_context(bad)?;
        if prefix > 30 {
            bail!("--{flag} {text:?}: a /{prefix} network has no room for a gateway and nodes");
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            network: Ipv4Addr::from(u32::from(address) & mask),
            prefix,
        })
    }

    /// The `index`-th host address (1 is the gateway), if the network holds it (the broadcast
    /// address excluded).
    pub fn host(&self, index: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix);
        (u64::from(index) < size - 1).then(|| Ipv4Addr::from(u32::from(self.network) + index))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_takes_units_or_mebibytes() {
        assert_eq!(parse_memory("m", "2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_memory("m", "2.0GiB").unwrap(), 2 << 30);
        assert_eq!(parse_memory("m", "512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_memory("m", "2048").unwrap(), 2 << 30);
        assert!(format!("{:#}", parse_memory("m", "2TB").unwrap_err()).contains("unknown unit"));
        assert!(format!("{:#}", parse_memory("m", "1").unwrap_err()).contains("between"));
        assert!(parse_memory("m", "lots").is_err());
    }

    #[test]
    fn cpus_are_bounded() {
        assert_eq!(parse_cpus("c", "2.0").unwrap(), 2.0);
        assert!(parse_cpus("c", "0").is_err());
        assert!(parse_cpus("c", "NaN").is_err());
    }

    #[test]
    fn cidr_hosts_stop_before_broadcast() {
        let cidr = Cidr::parse("subnet", "10.5.0.7/24").unwrap();
        assert_eq!(cidr.to_string(), "10.5.0.0/24");
        assert_eq!(cidr.host(1), Some(Ipv4Addr::new(10, 5, 0, 1)));
        assert_eq!(cidr.host(254), Some(Ipv4Addr::new(10, 5, 0, 254)));
        assert_eq!(cidr.host(255), None);
        let small = Cidr::parse("subnet", "10.5.0.0/30").unwrap();
        assert_eq!(small.host(2), Some(Ipv4Addr::new(10, 5, 0, 2)));
        assert_eq!(small.host(3), None);
        assert!(Cidr::parse("subnet", "10.5.0.0/31").is_err());
        assert!(Cidr::parse("subnet", "10.5.0.0").is_err());
    }
}
