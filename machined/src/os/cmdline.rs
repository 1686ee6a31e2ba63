//! The kernel command line (`/proc/cmdline`): the `talos.*` arguments machined reads, `ip=`,
//! `console=`, and the hardening options machined insists on.

use std::net::Ipv4Addr;

/// Kernel arguments upstream Talos requires (KSPP): machined refuses to boot without them.
pub const REQUIRED_ARGUMENTS: &[(&str, Option<&str>)] = &[
    ("init_on_alloc", Some("1")),
    ("slab_nomerge", None),
    ("pti", Some("on")),
];

/// A parsed kernel command line: `key` or `key=value` words, in order (quotes respected).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    arguments: Vec<(String, Option<String>)>,
}

/// A static address from `ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticAddress {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    pub device: String,
}

impl Cmdline {
    pub fn parse(text: &str) -> Self {
        let mut arguments = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        let mut words = Vec::new();
        for c in text.chars() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                c => word.push(c),
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        for word in words {
            match word.split_once('=') {
                Some((key, value)) => arguments.push((key.to_string(), Some(value.to_string()))),
                None => arguments.push((word, None)),
            }
        }
        Cmdline { arguments }
    }

    /// The last value of `key` (the kernel's rule: a later argument wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.arguments
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value of `key`, in order (e.g. several `console=`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.arguments
            .iter()
            .filter(|(k, _)| k == key)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    fn has(&self, key: &str, value: Option<&str>) -> bool {
        self.arguments
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .is_some_and(|(_, v)| value.is_none() || v.as_deref() == value)
    }

    /// The required hardening arguments this command line lacks, as `key[=value]`.
    pub fn missing_hardening(&self) -> Vec<String> {
        REQUIRED_ARGUMENTS
            .iter()
            .filter(|(key, value)| !self.has(key, *value))
            .map(|(key, value)| match value {
                Some(value) => format!("{key}={value}"),
                None => (*key).to_string(),
            })
            .collect()
    }

    /// The static address of `ip=`, if it names one; `Err` describes an `ip=` machined cannot
    /// apply (e.g. `ip=dhcp`: DHCP belongs to networkd).
    pub fn static_address(&self) -> Option<Result<StaticAddress, String>> {
        let value = self.get("ip")?;
        let fields: Vec<&str> = value.split(':').collect();
        let field = |i: usize| fields.get(i).copied().filter(|f| !f.is_empty());
        let parse = || -> Result<StaticAddress, String> {
            let address = field(0)
                .ok_or("no client address")?
                .parse::<Ipv4Addr>()
                .map_err(|e| format!("client address: {e}"))?;
            let gateway = field(2)
                .map(|g| g.parse::<Ipv4Addr>().map_err(|e| format!("gateway: {e}")))
                .transpose()?;
            let prefix = match field(3) {
                Some(mask) => {
                    let mask = mask
                        .parse::<Ipv4Addr>()
                        .map_err(|e| format!("netmask: {e}"))?;
                    let bits = u32::from(mask);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(format!("netmask {mask} is not contiguous"));
                    }
                    u8::try_from(bits.leading_ones()).map_err(|e| e.to_string())?
                }
                None => 24,
            };
            Ok(StaticAddress {
                address,
                prefix,
                gateway,
                hostname: field(4).map(str::to_string),
                device: field(5).unwrap_or("eth0").to_string(),
            })
        };
        Some(parse().map_err(|e| format!("ip={value}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_talos_arguments_and_quotes() {
        let cmdline = Cmdline::parse(
            "console=tty0 console=ttyS0 talos.platform=nocloud talos.config=\"http://a b\" quiet\n",
        );
        assert_eq!(cmdline.get("talos.platform"), Some("nocloud"));
        assert_eq!(cmdline.get("talos.config"), Some("http://a b"));
        assert_eq!(cmdline.all("console"), vec!["tty0", "ttyS0"]);
    }

    #[test]
    fn lists_missing_hardening_options() {
        let ok = Cmdline::parse("init_on_alloc=1 slab_nomerge pti=on");
        assert!(ok.missing_hardening().is_empty());
        let weak = Cmdline::parse("init_on_alloc=0 pti=on pti=off");
        assert_eq!(
            weak.missing_hardening(),
            vec!["init_on_alloc=1", "slab_nomerge", "pti=on"]
        );
    }

    #[test]
    fn parses_static_ip() {
        let cmdline = Cmdline::parse("ip=10.5.0.2::10.5.0.1:255.255.255.0:node-1:eth1:off");
        assert_eq!(
            cmdline.static_address(),
            Some(Ok(StaticAddress {
                address: Ipv4Addr::new(10, 5, 0, 2),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(10, 5, 0, 1)),
                hostname: Some("node-1".into()),
                device: "eth1".into(),
            }))
        );
        assert!(matches!(
            Cmdline::parse("ip=dhcp").static_address(),
            Some(Err(_))
        ));
        assert!(matches!(
            Cmdline::parse("ip=10.0.0.2::10.0.0.1:255.0.255.0").static_address(),
            Some(Err(_))
        ));
        assert_eq!(Cmdline::parse("quiet").static_address(), None);
    }
}
