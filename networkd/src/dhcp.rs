//! A DHCPv4 client (RFC 2131) on a UDP socket bound to one link: DISCOVER, OFFER, REQUEST,
//! ACK; renewal at T1 (unicast to the server), rebinding at T2 (broadcast), and a new discovery
//! when the lease runs out or the server says NAK. It only reports leases: the engine applies
//! them (address, default route, DNS) like any other desired state.
//!
//! Limits: no RELEASE or DECLINE (no ARP probe of the offered address), no DHCPv6, no classless
//! static routes (option 121). Replies are asked to be broadcast (the BROADCAST flag), which is
//! how a socket without an address yet receives them.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime};

use ipnet::Ipv4Net;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::NetworkdError;
use crate::packet_socket::LinkBroadcaster;

const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// BOOTP's minimum message size.
const MIN_SIZE: usize = 300;

const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const ACK: u8 = 5;
const NAK: u8 = 6;

/// A lease as the engine applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Net,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub server: Ipv4Addr,
    pub hostname: Option<String>,
    pub lease_seconds: u32,
    pub renew_seconds: u32,
    pub rebind_seconds: u32,
    /// When the last ACK arrived.
    pub acquired: SystemTime,
    /// How many renewals (or rebinds) the server acknowledged.
    pub renewals: u32,
}

/// A change of the lease on `link`; `None` means the link has no lease (any more).
#[derive(Clone, Debug)]
pub struct LeaseUpdate {
    pub link: String,
    pub lease: Option<Lease>,
}

/// Starts the client on `link` (index `index`, hardware address `mac`); it runs until aborted.
pub fn spawn(
    link: String,
    index: u32,
    mac: [u8; 6],
    updates: mpsc::UnboundedSender<LeaseUpdate>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Err(err) = session(&link, index, mac, &updates).await;
            tracing::warn!(%link, "DHCP: {err}; starting again in 5 s");
            let _ = updates.send(LeaseUpdate {
                link: link.clone(),
                lease: None,
            });
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
}

fn open(link: &str) -> Result<UdpSocket, NetworkdError> {
    let io = |step| {
        move |source| NetworkdError::Dhcp {
            link: link.to_string(),
            step,
            source,
        }
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(io("creating the socket"))?;
    socket.set_reuse_address(true).map_err(io("SO_REUSEADDR"))?;
    socket.set_broadcast(true).map_err(io("SO_BROADCAST"))?;
    socket
        .bind_device(Some(link.as_bytes()))
        .map_err(io("binding to the link"))?;
    socket
        .bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT).into())
        .map_err(io("binding port 68"))?;
    socket.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
    UdpSocket::from_std(socket.into()).map_err(io("registering the socket"))
}

struct Client<'a> {
    link: &'a str,
    mac: [u8; 6],
    /// Receives replies; sends once the link has the leased address.
    socket: UdpSocket,
    /// Sends from 0.0.0.0 while the link has no address (`None` in unit tests).
    broadcaster: Option<LinkBroadcaster>,
}

/// Where a message goes.
#[derive(Clone, Copy, Debug)]
enum To {
    /// Link-layer broadcast from 0.0.0.0 (no address yet).
    Unbound,
    /// A UDP datagram from the leased address.
    Bound(SocketAddrV4),
}

/// One run of the state machine; returns only on a socket error.
async fn session(
    link: &str,
    index: u32,
    mac: [u8; 6],
    updates: &mpsc::UnboundedSender<LeaseUpdate>,
) -> Result<std::convert::Infallible, NetworkdError> {
    let broadcaster = LinkBroadcaster::open(index).map_err(|source| NetworkdError::Dhcp {
        link: link.to_string(),
        step: "opening the packet socket",
        source,
    })?;
    let client = Client {
        link,
        mac,
        socket: open(link)?,
        broadcaster: Some(broadcaster),
    };
    let broadcast = To::Bound(SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT));
    loop {
        // INIT / SELECTING
        let xid = rand::random::<u32>();
        let discover = client.message(xid, DISCOVER, Ipv4Addr::UNSPECIFIED, &[]);
        let Some(offer) = client
            .exchange(&discover, To::Unbound, xid, &[OFFER], None)
            .await?
        else {
            continue;
        };
        let (Some(server), Some(yiaddr)) = (offer.server, offer.yiaddr) else {
            continue;
        };
        // REQUESTING
        let request = client.message(
            xid,
            REQUEST,
            Ipv4Addr::UNSPECIFIED,
            &[
                (50, yiaddr.octets().to_vec()),
                (54, server.octets().to_vec()),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let reply = client
            .exchange(&request, To::Unbound, xid, &[ACK, NAK], Some(deadline))
            .await?;
        let Some(mut lease) = reply.and_then(|r| r.lease(0)) else {
            continue;
        };
        tracing::info!(%link, address = %lease.address, "DHCP: lease acquired");
        let _ = updates.send(LeaseUpdate {
            link: link.to_string(),
            lease: Some(lease.clone()),
        });
        // BOUND, RENEWING, REBINDING
        loop {
            let bound_at = Instant::now();
            tokio::time::sleep(Duration::from_secs(lease.renew_seconds.into())).await;
            let xid = rand::random::<u32>();
            let request = client.message(xid, REQUEST, lease.address.addr(), &[]);
            let t2 = bound_at + Duration::from_secs(lease.rebind_seconds.into());
            let expiry = bound_at + Duration::from_secs(lease.lease_seconds.into());
            let mut reply = client
                .exchange(
                    &request,
                    To::Bound(SocketAddrV4::new(lease.server, SERVER_PORT)),
                    xid,
                    &[ACK, NAK],
                    Some(t2),
                )
                .await?;
            if reply.is_none() {
                reply = client
                    .exchange(&request, broadcast, xid, &[ACK, NAK], Some(expiry))
                    .await?;
            }
            match reply.and_then(|r| r.lease(lease.renewals + 1)) {
                Some(renewed) => {
                    tracing::debug!(%link, address = %renewed.address, "DHCP: lease renewed");
                    lease = renewed;
                    let _ = updates.send(LeaseUpdate {
                        link: link.to_string(),
                        lease: Some(lease.clone()),
                    });
                }
                None => {
                    tracing::warn!(%link, "DHCP: lease lost");
                    let _ = updates.send(LeaseUpdate {
                        link: link.to_string(),
                        lease: None,
                    });
                    break;
                }
            }
        }
    }
}

impl Client<'_> {
    /// A client message of `kind` with extra `options` (code, value).
    fn message(&self, xid: u32, kind: u8, ciaddr: Ipv4Addr, options: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut packet = vec![0u8; 236];
        packet[0] = 1; // BOOTREQUEST
        packet[1] = 1; // Ethernet
        packet[2] = 6;
        packet[4..8].copy_from_slice(&xid.to_be_bytes());
        if ciaddr.is_unspecified() {
            packet[10] = 0x80; // BROADCAST flag: answer to 255.255.255.255
        }
        packet[12..16].copy_from_slice(&ciaddr.octets());
        packet[28..34].copy_from_slice(&self.mac);
        packet.extend_from_slice(&MAGIC);
        packet.extend_from_slice(&[53, 1, kind]);
        let mut client_id = vec![1];
        client_id.extend_from_slice(&self.mac);
        let parameters = vec![1, 3, 6, 12, 15, 26, 51, 54, 58, 59];
        for (code, value) in [(61, client_id), (55, parameters)]
            .iter()
            .chain(options.iter())
        {
            packet.push(*code);
            packet.push(value.len() as u8);
            packet.extend_from_slice(value);
        }
        packet.push(255);
        if packet.len() < MIN_SIZE {
            packet.resize(MIN_SIZE, 0);
        }
        packet
    }

    /// Sends `packet` to `to` and waits for a reply of one of `kinds`, sending again with
    /// growing pauses (1 s, 2 s, ... 8 s); `None` when `until` passes first.
    async fn exchange(
        &self,
        packet: &[u8],
        to: To,
        xid: u32,
        kinds: &[u8],
        until: Option<Instant>,
    ) -> Result<Option<Reply>, NetworkdError> {
        let mut wait = Duration::from_secs(1);
        let mut buffer = vec![0u8; 1500];
        loop {
            if until.is_some_and(|u| Instant::now() >= u) {
                return Ok(None);
            }
            let sent = match (to, &self.broadcaster) {
                (To::Bound(to), _) => self.socket.send_to(packet, to).await.map(drop),
                (To::Unbound, Some(broadcaster)) => {
                    broadcaster.send(CLIENT_PORT, SERVER_PORT, packet)
                }
                (To::Unbound, None) => Err(std::io::Error::other("no packet socket")),
            };
            sent.map_err(|source| NetworkdError::Dhcp {
                link: self.link.to_string(),
                step: "sending",
                source,
            })?;
            let mut resend_at = Instant::now() + wait;
            if let Some(until) = until {
                resend_at = resend_at.min(until);
            }
            wait = (wait * 2).min(Duration::from_secs(8));
            while let Ok(received) =
                tokio::time::timeout_at(resend_at, self.socket.recv_from(&mut buffer)).await
            {
                let (len, _) = received.map_err(|source| NetworkdError::Dhcp {
                    link: self.link.to_string(),
                    step: "receiving",
                    source,
                })?;
                if let Some(reply) = Reply::parse(&buffer[..len], xid, &self.mac)
                    && kinds.contains(&reply.kind)
                {
                    return Ok(Some(reply));
                }
            }
        }
    }
}

/// A server message, decoded. It comes from the network: parsing bounds every read and never
/// panics (`cargo xtask fuzz` runs it on arbitrary packets).
#[derive(Debug, Default)]
pub struct Reply {
    kind: u8,
    yiaddr: Option<Ipv4Addr>,
    server: Option<Ipv4Addr>,
    netmask: Option<Ipv4Addr>,
    router: Option<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
    hostname: Option<String>,
    lease_seconds: Option<u32>,
    renew_seconds: Option<u32>,
    rebind_seconds: Option<u32>,
}

fn ipv4s(value: &[u8]) -> Vec<Ipv4Addr> {
    value
        .chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect()
}

fn seconds(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

impl Reply {
    /// Decodes a BOOTREPLY for transaction `xid` and hardware address `mac`.
    pub fn parse(packet: &[u8], xid: u32, mac: &[u8; 6]) -> Option<Reply> {
        if packet.len() < 240 || packet[0] != 2 || packet[4..8] != xid.to_be_bytes() {
            return None;
        }
        if &packet[28..34] != mac || packet[236..240] != MAGIC {
            return None;
        }
        let mut reply = Reply {
            yiaddr: Some(Ipv4Addr::new(
                packet[16], packet[17], packet[18], packet[19],
            )),
            ..Reply::default()
        };
        let mut options = &packet[240..];
        while let Some((&code, rest)) = options.split_first() {
            match code {
                0 => {
                    options = rest;
                    continue;
                }
                255 => break,
                _ => {}
            }
            let (&len, rest) = rest.split_first()?;
            let value = rest.get(..usize::from(len))?;
            options = &rest[usize::from(len)..];
            match code {
                53 => reply.kind = *value.first()?,
                1 => reply.netmask = ipv4s(value).first().copied(),
                3 => reply.router = ipv4s(value).first().copied(),
                6 => reply.dns = ipv4s(value),
                12 => reply.hostname = String::from_utf8(value.to_vec()).ok(),
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

    #[test]
    fn request_and_reply_round_trip() {
        let mac = [2, 0, 0, 0, 0, 7];
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let client = Client {
            link: "test0",
            mac,
            socket: UdpSocket::from_std(socket).unwrap(),
            broadcaster: None,
        };
        let packet = client.message(42, DISCOVER, Ipv4Addr::UNSPECIFIED, &[]);
        assert_eq!(packet.len(), MIN_SIZE);
        assert_eq!(&packet[240..243], &[53, 1, DISCOVER]);
        assert_eq!(packet[10], 0x80);

        // Turn it into an ACK as a server would.
        let mut reply = packet[..240].to_vec();
        reply[0] = 2;
        reply[16..20].copy_from_slice(&[10, 0, 0, 9]);
        for option in [
            &[53, 1, ACK][..],
            &[1, 4, 255, 255, 255, 0],
            &[3, 4, 10, 0, 0, 1],
            &[6, 8, 10, 0, 0, 53, 10, 0, 0, 54],
            &[54, 4, 10, 0, 0, 1],
            &[51, 4, 0, 0, 0, 120],
            &[58, 4, 0, 0, 0, 10],
            &[255],
        ] {
            reply.extend_from_slice(option);
        }
        assert!(Reply::parse(&reply, 43, &mac).is_none(), "wrong xid");
        let lease = Reply::parse(&reply, 42, &mac).unwrap().lease(0).unwrap();
        assert_eq!(lease.address.to_string(), "10.0.0.9/24");
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(lease.dns.len(), 2);
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
}
