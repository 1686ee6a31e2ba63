//! The client's side: the messages it sends ([`message`]) and the server replies it reads
//! ([`Reply`]), an ACK becoming a [`Lease`].

use std::net::Ipv4Addr;
use std::time::SystemTime;

use ipnet::Ipv4Net;

use crate::{ACK, BROADCAST_FLAG, MAGIC, OPTIONS_AT, finish, ipv4_at, ipv4s, options};

/// The parameters a client asks for (option 55): netmask, router, DNS, hostname, domain, MTU,
/// lease time, server, T1, T2.
const PARAMETERS: [u8; 10] = [1, 3, 6, 12, 15, 26, 51, 54, 58, 59];

/// A BOOTREQUEST of `kind` from hardware address `mac`, transaction `xid`, with extra `options`
/// (code, value). Without `ciaddr` (unspecified) the reply is asked to be broadcast.
pub fn message(
    mac: [u8; 6],
    xid: u32,
    kind: u8,
    ciaddr: Ipv4Addr,
    extra: &[(u8, Vec<u8>)],
) -> Vec<u8> {
    let mut packet = vec![0u8; OPTIONS_AT - MAGIC.len()];
    packet[0] = 1; // BOOTREQUEST
    packet[1] = 1; // Ethernet
    packet[2] = 6;
    packet[4..8].copy_from_slice(&xid.to_be_bytes());
    if ciaddr.is_unspecified() {
        packet[10] = BROADCAST_FLAG;
    }
    packet[12..16].copy_from_slice(&ciaddr.octets());
    packet[28..34].copy_from_slice(&mac);
    let mut client_id = vec![1];
    client_id.extend_from_slice(&mac);
    let mut all = vec![(53, vec![kind]), (61, client_id), (55, PARAMETERS.to_vec())];
    all.extend_from_slice(extra);
    finish(packet, &all)
}

/// A lease as granted by an ACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Net,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub server: Ipv4Addr,
    pub hostname: Option<String>,
    pub mtu: Option<u16>,
    pub lease_seconds: u32,
    pub renew_seconds: u32,
    pub rebind_seconds: u32,
    /// When the last ACK arrived.
    pub acquired: SystemTime,
    /// How many renewals (or rebinds) the server acknowledged.
    pub renewals: u32,
}

/// A server message, decoded.
#[derive(Debug, Default)]
pub struct Reply {
    pub kind: u8,
    pub yiaddr: Option<Ipv4Addr>,
    pub server: Option<Ipv4Addr>,
    pub netmask: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub hostname: Option<String>,
    pub mtu: Option<u16>,
    pub lease_seconds: Option<u32>,
    pub renew_seconds: Option<u32>,
    pub rebind_seconds: Option<u32>,
}

fn seconds(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

impl Reply {
    /// Decodes a BOOTREPLY for transaction `xid` and hardware address `mac`.
    pub fn parse(packet: &[u8], xid: u32, mac: &[u8; 6]) -> Option<Reply> {
        if packet.len() < OPTIONS_AT || packet[0] != 2 || packet[4..8] != xid.to_be_bytes() {
            return None;
        }
        if &packet[28..34] != mac || packet[236..240] != MAGIC {
            return None;
        }
        let mut reply = Reply {
            yiaddr: ipv4_at(packet, 16),
            ..Reply::default()
        };
        for (code, value) in options(packet) {
            match code {
                53 => reply.kind = *value.first()?,
                1 => reply.netmask = ipv4s(value).first().copied(),
                3 => reply.router = ipv4s(value).first().copied(),
                6 => reply.dns = ipv4s(value),
                12 => {
                    reply.hostname = std::str::from_utf8(value)
                        .ok()
                        .filter(|name| name.chars().all(|c| c.is_ascii_graphic()))
                        .map(str::to_string);
                }
                26 => reply.mtu = value.try_into().ok().map(u16::from_be_bytes),
                51 => reply.lease_seconds = seconds(value),
                54 => reply.server = ipv4s(value).first().copied(),
                58 => reply.renew_seconds = seconds(value),
                59 => reply.rebind_seconds = seconds(value),
                _ => {}
            }
        }
        (reply.kind != 0).then_some(reply)
    }

    /// The lease an ACK grants (`None` for a NAK or an unusable ACK).
    pub fn lease(self, renewals: u32) -> Option<Lease> {
        let yiaddr = self.yiaddr.filter(|a| !a.is_unspecified())?;
        if self.kind != ACK {
            return None;
        }
        let prefix = match self.netmask {
            Some(mask) => u32::from(mask).leading_ones() as u8,
            None => 24,
        };
        // Whatever the server says: 1 ≤ renew < rebind ≤ lease (RFC 2131 §4.4.5), with no
        // arithmetic that a value near u32::MAX can overflow.
        let lease_seconds = self.lease_seconds.unwrap_or(3600).max(4);
        let renew_seconds = self
            .renew_seconds
            .unwrap_or(lease_seconds / 2)
            .clamp(1, lease_seconds - 1);
        let rebind_seconds = self
            .rebind_seconds
            .unwrap_or(lease_seconds / 8 * 7)
            .clamp(renew_seconds + 1, lease_seconds);
        Some(Lease {
            address: Ipv4Net::new(yiaddr, prefix).ok()?,
            router: self.router,
            dns: self.dns,
            server: self.server?,
            hostname: self.hostname,
            // Below IPv4's minimum an MTU is not one to set.
            mtu: self.mtu.filter(|&mtu| mtu >= 576),
            lease_seconds,
            renew_seconds,
            rebind_seconds,
            acquired: SystemTime::now(),
            renewals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DISCOVER, MIN_SIZE};

    #[test]
    fn a_discover_asks_for_a_broadcast_answer() {
        let packet = message([2, 0, 0, 0, 0, 7], 42, DISCOVER, Ipv4Addr::UNSPECIFIED, &[]);
        assert_eq!(packet.len(), MIN_SIZE);
        assert_eq!(&packet[240..243], &[53, 1, DISCOVER]);
        assert_eq!(packet[10], BROADCAST_FLAG);
        let renewal = message([2, 0, 0, 0, 0, 7], 42, 3, Ipv4Addr::new(10, 0, 0, 9), &[]);
        assert_eq!(renewal[10], 0);
        assert_eq!(&renewal[12..16], &[10, 0, 0, 9]);
    }

    #[test]
    fn an_ack_becomes_a_lease() {
        let mac = [2, 0, 0, 0, 0, 7];
        let mut reply = message(mac, 42, DISCOVER, Ipv4Addr::UNSPECIFIED, &[])[..240].to_vec();
        reply[0] = 2;
        reply[16..20].copy_from_slice(&[10, 0, 0, 9]);
        for option in [
            &[53, 1, ACK][..],
            &[1, 4, 255, 255, 255, 0],
            &[3, 4, 10, 0, 0, 1],
            &[6, 8, 10, 0, 0, 53, 10, 0, 0, 54],
            &[12, 6, b'n', b'o', b'd', b'e', b'-', b'1'],
            &[26, 2, 5, 220],
            &[54, 4, 10, 0, 0, 1],
            &[51, 4, 0, 0, 0, 120],
            &[58, 4, 0, 0, 0, 10],
            &[255],
        ] {
            reply.extend_from_slice(option);
        }
        assert!(Reply::parse(&reply, 43, &mac).is_none(), "wrong xid");
        assert!(Reply::parse(&reply, 42, &[0; 6]).is_none(), "wrong address");
        let lease = Reply::parse(&reply, 42, &mac).unwrap().lease(0).unwrap();
        assert_eq!(lease.address.to_string(), "10.0.0.9/24");
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(lease.dns.len(), 2);
        assert_eq!(lease.hostname.as_deref(), Some("node-1"));
        assert_eq!(lease.mtu, Some(1500));
        assert_eq!(lease.renew_seconds, 10);
        assert_eq!(lease.rebind_seconds, 105);
    }

    #[test]
    fn lease_times_from_a_hostile_server_stay_ordered() {
        let ack = |lease: Option<u32>, renew: Option<u32>, rebind: Option<u32>| Reply {
            kind: ACK,
            yiaddr: Some(Ipv4Addr::new(10, 0, 0, 9)),
            server: Some(Ipv4Addr::new(10, 0, 0, 1)),
            lease_seconds: lease,
            renew_seconds: renew,
            rebind_seconds: rebind,
            ..Reply::default()
        };
        let times = |reply: Reply| {
            let lease = reply.lease(0).unwrap();
            (
                lease.renew_seconds,
                lease.rebind_seconds,
                lease.lease_seconds,
            )
        };
        // Option 58 = 0xFFFFFFFF used to overflow `renew + 1`.
        assert_eq!(times(ack(None, Some(u32::MAX), None)), (3599, 3600, 3600));
        let max = u32::MAX;
        assert_eq!(
            times(ack(Some(max), Some(max), Some(max))),
            (max - 1, max, max)
        );
        assert_eq!(times(ack(Some(100), Some(0), Some(0))), (1, 2, 100));
        assert_eq!(times(ack(Some(0), None, None)), (2, 3, 4));
    }

    #[test]
    fn a_hostname_with_control_characters_is_dropped() {
        let mac = [2, 0, 0, 0, 0, 7];
        let mut reply = message(mac, 1, DISCOVER, Ipv4Addr::UNSPECIFIED, &[])[..240].to_vec();
        reply[0] = 2;
        reply.extend_from_slice(&[53, 1, ACK, 12, 3, b'a', b'\n', b'b', 255]);
        assert_eq!(Reply::parse(&reply, 1, &mac).unwrap().hostname, None);
    }
}
