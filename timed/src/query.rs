//! One SNTP query: resolve a configured server, send a client request over UDP, check the reply
//! (RFC 4330 section 5 / RFC 5905 section 8 sanity checks) and turn it into a [`Sample`].

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;

use crate::TimedError;
use crate::packet::{Exchange, LEAP_ALARM, MODE_SERVER, NtpTimestamp, Packet, short_to_nanos};

/// The NTP port.
pub const NTP_PORT: u16 = 123;

/// A server as written in the config: `host`, `host:port`, `1.2.3.4[:port]`, `::1` or `[::1]:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    text: String,
    host: String,
    port: u16,
}

impl ServerSpec {
    /// Parses one server entry.
    pub fn parse(text: &str) -> Result<Self, TimedError> {
        let invalid = |reason: &'static str| TimedError::InvalidServer {
            server: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty"));
        }
        let spec = |host: String, port: u16| ServerSpec {
            text: trimmed.to_string(),
            host,
            port,
        };
        if let Ok(ip) = trimmed.parse::<IpAddr>() {
            return Ok(spec(ip.to_string(), NTP_PORT));
        }
        if let Ok(address) = trimmed.parse::<SocketAddr>() {
            return Ok(spec(address.ip().to_string(), address.port()));
        }
        if let Some(inner) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let ip: Ipv6Addr = inner.parse().map_err(|_| invalid("bad IPv6 literal"))?;
            return Ok(spec(ip.to_string(), NTP_PORT));
        }
        if trimmed.starts_with('[') {
            return Err(invalid("bad IPv6 literal"));
        }
        let (host, port) = match trimmed.rsplit_once(':') {
            Some((_, _)) if trimmed.matches(':').count() > 1 => {
                return Err(invalid("bad IPv6 literal (use [addr]:port with a port)"));
            }
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| invalid("bad port"))?,
            ),
            None => (trimmed, NTP_PORT),
        };
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        let name = host.strip_suffix('.').unwrap_or(host);
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err(invalid("bad host name"));
        }
        Ok(spec(host.to_string(), port))
    }

    /// The entry as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The addresses the server name stands for (an IP literal is its own address).
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, TimedError> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|source| TimedError::Resolve {
                server: self.text.clone(),
                source,
            })?
            .collect();
        if addresses.is_empty() {
            return Err(TimedError::NoAddress {
                server: self.text.clone(),
            });
        }
        Ok(addresses)
    }
}

impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One accepted measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The server as configured.
    pub server: String,
    /// The address that answered.
    pub address: SocketAddr,
    /// Server clock minus local clock, nanoseconds.
    pub offset_nanos: i64,
    /// Round-trip delay, nanoseconds (never negative).
    pub delay_nanos: i64,
    /// The server's stratum.
    pub stratum: u8,
    /// The server's root delay plus root dispersion bound, nanoseconds.
    pub root_distance_nanos: i64,
    /// Local wall-clock time when the reply arrived (T4).
    pub received_at: SystemTime,
}

impl Sample {
    /// The server's clock at `received_at`: our best estimate of true time then.
    pub fn remote_time(&self) -> SystemTime {
        crate::packet::shift(self.received_at, self.offset_nanos)
    }
}

/// Queries `server`, trying its addresses in order until one gives a good sample; the error is
/// the last address's.
pub async fn query(server: &ServerSpec, timeout: Duration) -> Result<Sample, TimedError> {
    let mut last_error = None;
    for address in server.resolve().await? {
        match query_address(server, address, timeout).await {
            Ok(sample) => return Ok(sample),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| TimedError::NoAddress {
        server: server.to_string(),
    }))
}

/// One exchange with one address.
async fn query_address(
    server: &ServerSpec,
    address: SocketAddr,
    timeout: Duration,
) -> Result<Sample, TimedError> {
    let network = |source: std::io::Error| TimedError::Network {
        server: server.to_string(),
        address,
        source,
    };
    let local: SocketAddr = if address.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(network)?;
    socket.connect(address).await.map_err(network)?;

    // T4 is T1 plus the monotonic time elapsed, so a clock step during the exchange (ours, or
    // another program's) cannot distort the delay.
    let sent_wall = SystemTime::now();
    let sent = Instant::now();
    let t1 = NtpTimestamp::from_system_time(sent_wall);
    socket
        .send(&Packet::client_request(t1).encode())
        .await
        .map_err(network)?;

    let deadline = tokio::time::Instant::from_std(sent) + timeout;
    let mut buffer = [0u8; 1024];
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv(&mut buffer))
            .await
            .map_err(|_| TimedError::Timeout {
                server: server.to_string(),
                address,
                timeout,
            })?
            .map_err(network)?;
        let elapsed = sent.elapsed();
        let Some(reply) = Packet::decode(&buffer[..received]) else {
            continue; // runt datagram: keep waiting for the real reply
        };
        if reply.origin != t1 {
            continue; // not the answer to this request (late or forged): RFC 5905 "bogus"
        }
        let received_at = sent_wall + elapsed;
        let exchange = Exchange {
            t1,
            t2: reply.receive,
            t3: reply.transmit,
            t4: NtpTimestamp::from_system_time(received_at),
        };
        return check_reply(server, address, &reply, &exchange, received_at);
    }
}

/// The sanity checks a client applies to a reply whose origin matched, then the sample.
pub fn check_reply(
    server: &ServerSpec,
    address: SocketAddr,
    reply: &Packet,
    exchange: &Exchange,
    received_at: SystemTime,
) -> Result<Sample, TimedError> {
    let bad = |reason: String| TimedError::BadReply {
        server: server.to_string(),
        address,
        reason,
    };
    if reply.mode != MODE_SERVER {
        return Err(bad(format!("mode {} is not a server reply", reply.mode)));
    }
    if !(1..=4).contains(&reply.version) {
        return Err(bad(format!("unsupported version {}", reply.version)));
    }
    if reply.stratum == 0 {
        return Err(TimedError::KissOfDeath {
            server: server.to_string(),
            address,
            code: reply.kiss_code(),
        });
    }
    if reply.stratum > 15 || reply.leap == LEAP_ALARM {
        return Err(TimedError::ServerUnsynchronised {
            server: server.to_string(),
            address,
        });
    }
    if reply.transmit.is_zero() || reply.receive.is_zero() {
        return Err(bad("zero receive or transmit timestamp".to_string()));
    }
    let delay_nanos = exchange.delay_nanos();
    if delay_nanos < 0 {
        return Err(bad(format!("negative round-trip delay {delay_nanos} ns")));
    }
    let root_distance_nanos = short_to_nanos(reply.root_delay) / 2
        + short_to_nanos(reply.root_dispersion)
        + delay_nanos / 2;
    Ok(Sample {
        server: server.to_string(),
        address,
        offset_nanos: exchange.offset_nanos(),
        delay_nanos,
        stratum: reply.stratum,
        root_distance_nanos,
        received_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (String, u16) {
        let spec = ServerSpec::parse(text).unwrap();
        (spec.host, spec.port)
    }

    #[test]
    fn server_forms() {
        assert_eq!(
            parsed("time.cloudflare.com"),
            ("time.cloudflare.com".into(), 123)
        );
        assert_eq!(parsed("pool.ntp.org:1123"), ("pool.ntp.org".into(), 1123));
        assert_eq!(parsed("127.0.0.1"), ("127.0.0.1".into(), 123));
        assert_eq!(parsed("127.0.0.1:4123"), ("127.0.0.1".into(), 4123));
        assert_eq!(parsed("::1"), ("::1".into(), 123));
        assert_eq!(parsed("2001:db8::1"), ("2001:db8::1".into(), 123));
        assert_eq!(parsed("[::1]"), ("::1".into(), 123));
        assert_eq!(parsed("[::1]:4123"), ("::1".into(), 4123));
        assert_eq!(parsed(" localhost "), ("localhost".into(), 123));
        assert_eq!(
            ServerSpec::parse("[::1]:4123").unwrap().as_str(),
            "[::1]:4123"
        );
    }

    #[test]
    fn bad_servers_are_rejected() {
        for text in [
            "",
            "host:",
            "host:0",
            "host:70000",
            "[::1",
            "[nope]",
            "a b",
            "x..y",
            "1:2:3:zz",
        ] {
            assert!(
                matches!(
                    ServerSpec::parse(text),
                    Err(TimedError::InvalidServer { .. })
                ),
                "{text:?} accepted"
            );
        }
    }

    fn reply(stratum: u8, leap: u8, mode: u8) -> Packet {
        Packet {
            leap,
            version: 4,
            mode,
            stratum,
            reference_id: *b"DENY",
            receive: NtpTimestamp(5 << 32),
            transmit: NtpTimestamp(5 << 32),
            ..Packet::default()
        }
    }

    fn exchange() -> Exchange {
        Exchange {
            t1: NtpTimestamp(4 << 32),
            t2: NtpTimestamp(5 << 32),
            t3: NtpTimestamp(5 << 32),
            t4: NtpTimestamp(4 << 32 | 1 << 31),
        }
    }

    #[test]
    fn replies_are_checked() {
        let server = ServerSpec::parse("127.0.0.1:4123").unwrap();
        let address: SocketAddr = "127.0.0.1:4123".parse().unwrap();
        let now = SystemTime::now();
        let check = |packet: &Packet| check_reply(&server, address, packet, &exchange(), now);

        let sample = check(&reply(2, 0, MODE_SERVER)).unwrap();
        assert_eq!(sample.delay_nanos, 500_000_000);
        assert_eq!(sample.offset_nanos, 750_000_000);
        assert_eq!(sample.stratum, 2);
        assert_eq!(sample.remote_time(), crate::packet::shift(now, 750_000_000));

        assert!(matches!(
            check(&reply(0, 0, MODE_SERVER)),
            Err(TimedError::KissOfDeath { code, .. }) if code == "DENY"
        ));
        assert!(matches!(
            check(&reply(2, LEAP_ALARM, MODE_SERVER)),
            Err(TimedError::ServerUnsynchronised { .. })
        ));
        assert!(matches!(
            check(&reply(16, 0, MODE_SERVER)),
            Err(TimedError::ServerUnsynchronised { .. })
        ));
        assert!(matches!(
            check(&reply(2, 0, 3)),
            Err(TimedError::BadReply { .. })
        ));
        let mut zero = reply(2, 0, MODE_SERVER);
        zero.transmit = NtpTimestamp(0);
        assert!(matches!(check(&zero), Err(TimedError::BadReply { .. })));
    }
}
