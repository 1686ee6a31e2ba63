//! One blocking lease for a link that has no address yet: the node's first address at boot.
//! A UDP socket bound to the link (`SO_BINDTODEVICE`) sends to 255.255.255.255 from 0.0.0.0 and
//! receives the broadcast answers, so no packet socket is needed.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::client::{Lease, Reply, message};
use crate::{ACK, CLIENT_PORT, DISCOVER, DhcpError, NAK, OFFER, REQUEST, SERVER_PORT};

/// Asks for a lease on `link` (hardware address `mac`), sending again after 1, 2, 4 … s;
/// `Ok(None)` when no server has acknowledged one by `timeout`.
pub fn acquire(link: &str, mac: [u8; 6], timeout: Duration) -> Result<Option<Lease>, DhcpError> {
    let until = Instant::now() + timeout;
    let socket = open(link)?;
    let error = |step| {
        move |source| DhcpError {
            link: link.to_string(),
            step,
            source,
        }
    };
    while Instant::now() < until {
        let xid = rand::random::<u32>();
        let discover = message(mac, xid, DISCOVER, Ipv4Addr::UNSPECIFIED, &[]);
        let Some(offer) =
            exchange(&socket, &discover, xid, &mac, OFFER, until).map_err(error("discovering"))?
        else {
            continue;
        };
        let (Some(server), Some(offered)) = (offer.server, offer.yiaddr) else {
            continue;
        };
        let request = message(
            mac,
            xid,
            REQUEST,
            Ipv4Addr::UNSPECIFIED,
            &[
                (50, offered.octets().to_vec()),
                (54, server.octets().to_vec()),
            ],
        );
        let answer =
            exchange(&socket, &request, xid, &mac, ACK, until).map_err(error("requesting"))?;
        if let Some(lease) = answer.and_then(|reply| reply.lease(0)) {
            return Ok(Some(lease));
        }
    }
    Ok(None)
}

fn open(link: &str) -> Result<UdpSocket, DhcpError> {
    let error = |step| {
        move |source| DhcpError {
            link: link.to_string(),
            step,
            source,
        }
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .map_err(error("creating the socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(error("SO_REUSEADDR"))?;
    socket.set_broadcast(true).map_err(error("SO_BROADCAST"))?;
    socket
        .bind_device(Some(link.as_bytes()))
        .map_err(error("binding to the link"))?;
    socket
        .bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT).into())
        .map_err(error("binding port 68"))?;
    Ok(socket.into())
}

/// Broadcasts `packet` and waits for a reply of kind `wanted` (or a NAK), sending again with
/// growing pauses; `None` when `until` passes first.
fn exchange(
    socket: &UdpSocket,
    packet: &[u8],
    xid: u32,
    mac: &[u8; 6],
    wanted: u8,
    until: Instant,
) -> std::io::Result<Option<Reply>> {
    let mut pause = Duration::from_secs(1);
    let mut buffer = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(None);
        }
        socket.send_to(packet, SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT))?;
        let resend_at = (now + pause).min(until);
        pause = (pause * 2).min(Duration::from_secs(8));
        loop {
            let left = resend_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
            let len = match socket.recv(&mut buffer) {
                Ok(len) => len,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            };
            if let Some(reply) = Reply::parse(&buffer[..len], xid, mac)
                && (reply.kind == wanted || reply.kind == NAK)
            {
                return Ok(Some(reply));
            }
        }
    }
}
