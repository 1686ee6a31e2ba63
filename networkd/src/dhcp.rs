//! A DHCPv4 client (RFC 2131) on a UDP socket bound to one link: DISCOVER, OFFER, REQUEST,
//! ACK; renewal at T1 (unicast to the server), rebinding at T2 (broadcast), and a new discovery
//! when the lease runs out or the server says NAK. It only reports leases: the engine applies
//! them (address, default route, DNS) like any other desired state.
//!
//! Limits: no RELEASE or DECLINE (no ARP probe of the offered address), no DHCPv6, no classless
//! static routes (option 121). Replies are asked to be broadcast (the BROADCAST flag), which is
//! how a socket without an address yet receives them. The messages are the `dhcp` crate's.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use dhcp::{ACK, CLIENT_PORT, DISCOVER, NAK, OFFER, REQUEST, Reply, SERVER_PORT};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::NetworkdError;
use crate::packet_socket::{EtherType, LinkBroadcaster};

pub use dhcp::Lease;

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
    let broadcaster =
        LinkBroadcaster::open(index, EtherType::Ipv4).map_err(|source| NetworkdError::Dhcp {
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
        dhcp::client::message(self.mac, xid, kind, ciaddr, options)
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
