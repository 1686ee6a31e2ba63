//! apid endpoints: `host`, `host:port`, `[v6]:port` or a URL, with the default port 50000.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use rustls::pki_types::ServerName;

use crate::error::ApiClientError;

/// The Talos API port apid listens on.
pub const DEFAULT_PORT: u16 = 50000;

/// One apid address the client dials.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port`, a bare IPv6 address, or a URL such as
    /// `https://host:port/` (the scheme and path are ignored: the client always speaks TLS).
    pub fn parse(text: &str) -> Result<Self, ApiClientError> {
        let invalid = |reason: &str| ApiClientError::InvalidEndpoint {
            endpoint: text.to_string(),
            reason: reason.to_string(),
        };
        let mut rest = text.trim();
        if let Some((_, after_scheme)) = rest.split_once("://") {
            rest = after_scheme.split('/').next().unwrap_or_default();
        }
        if rest.is_empty() {
            return Err(invalid("the host is empty"));
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("missing `]` after an IPv6 address"))?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(invalid("the text in brackets is not an IPv6 address"));
            }
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid("unexpected text after `]`"))?,
                ),
            };
            (host, port)
        } else if rest.parse::<Ipv6Addr>().is_ok() {
            (rest, None)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        if host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
            return Err(invalid("the host contains whitespace, `/` or `@`"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => match port.parse::<u16>() {
                Ok(0) | Err(_) => return Err(invalid("the port is not a number from 1 to 65535")),
                Ok(port) => port,
            },
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The name the server certificate must carry: an IP address endpoint must match an IP SAN,
    /// a host name a DNS SAN.
    pub(crate) fn server_name(&self) -> Result<ServerName<'static>, ApiClientError> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(ServerName::IpAddress(ip.into()));
        }
        ServerName::try_from(self.host.clone()).map_err(|e| ApiClientError::InvalidEndpoint {
            endpoint: self.to_string(),
            reason: format!("not usable as a TLS server name: {e}"),
        })
    }
}

impl fmt::Display for Endpoint {
    /// `host:port`, with IPv6 addresses in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Endpoint {
    type Err = ApiClientError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (String, u16) {
        let endpoint = Endpoint::parse(text).expect("valid endpoint");
        (endpoint.host().to_string(), endpoint.port())
    }

    #[test]
    fn host_alone_gets_the_default_port() {
        assert_eq!(parsed("10.5.0.2"), ("10.5.0.2".into(), 50000));
        assert_eq!(parsed("cp1.example.com"), ("cp1.example.com".into(), 50000));
        assert_eq!(parsed(" 10.5.0.2 "), ("10.5.0.2".into(), 50000));
    }

    #[test]
    fn explicit_ports_are_kept() {
        assert_eq!(parsed("10.5.0.2:50001"), ("10.5.0.2".into(), 50001));
        assert_eq!(parsed("localhost:1234"), ("localhost".into(), 1234));
    }

    #[test]
    fn ipv6_forms() {
        assert_eq!(parsed("::1"), ("::1".into(), 50000));
        assert_eq!(parsed("[fd00::2]"), ("fd00::2".into(), 50000));
        assert_eq!(parsed("[fd00::2]:443"), ("fd00::2".into(), 443));
        assert_eq!(
            Endpoint::parse("[fd00::2]:443").expect("valid").to_string(),
            "[fd00::2]:443"
        );
    }

    #[test]
    fn urls_lose_scheme_and_path() {
        assert_eq!(
            parsed("https://10.5.0.2:50000/"),
            ("10.5.0.2".into(), 50000)
        );
        assert_eq!(parsed("tcp://node1"), ("node1".into(), 50000));
        assert_eq!(parsed("https://[::1]:7/x/y"), ("::1".into(), 7));
    }

    #[test]
    fn invalid_endpoints_say_why() {
        for (text, reason) in [
            ("", "the host is empty"),
            ("https://", "the host is empty"),
            (":50000", "the host is empty"),
            ("10.5.0.2:0", "the port is not a number"),
            ("10.5.0.2:port", "the port is not a number"),
            ("10.5.0.2:70000", "the port is not a number"),
            ("[::1", "missing `]`"),
            ("[nothost]:1", "not an IPv6 address"),
            ("[::1]x", "unexpected text after `]`"),
            ("a b", "whitespace"),
        ] {
            let error = Endpoint::parse(text).expect_err(text).to_string();
            assert!(error.contains(reason), "{text:?}: {error}");
            assert!(error.contains(&format!("{text:?}")), "{text:?}: {error}");
        }
    }

    #[test]
    fn ip_endpoints_verify_against_ip_sans() {
        let ip = Endpoint::parse("127.0.0.1").expect("valid");
        assert!(matches!(ip.server_name(), Ok(ServerName::IpAddress(_))));
        let name = Endpoint::parse("node1.local").expect("valid");
        assert!(matches!(name.server_name(), Ok(ServerName::DnsName(_))));
    }
}
