//! The one unsafe seam of networkd: link-layer broadcasts through an `AF_PACKET` socket. A DHCP
//! client without an address must send its DISCOVER and REQUEST from `0.0.0.0` (RFC 2131 4.1);
//! a UDP socket would take the source address of another link instead. A gratuitous ARP is an
//! ARP frame, which only a packet socket sends. Building a `sockaddr_ll` is the only unsafe step.

use std::io;
use std::mem::size_of;
use std::net::Ipv4Addr;

use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};

/// The EtherTypes networkd broadcasts.
#[derive(Clone, Copy, Debug)]
pub enum EtherType {
    Ipv4,
    Arp,
}

/// Sends broadcast frames of one EtherType out of one link.
#[derive(Debug)]
pub struct LinkBroadcaster {
    socket: Socket,
    destination: SockAddr,
}

impl LinkBroadcaster {
    /// A packet socket for the link with index `link_index` sending `ether_type` frames.
    /// Protocol 0: it receives nothing.
    pub fn open(link_index: u32, ether_type: EtherType) -> io::Result<Self> {
        let protocol = match ether_type {
            EtherType::Ipv4 => libc::ETH_P_IP,
            EtherType::Arp => libc::ETH_P_ARP,
        };
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, None)?;
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: `view_as` asserts that a sockaddr_ll fits in the sockaddr_storage, and all
        // zeroes (what `zeroed` gave) is a valid sockaddr_ll.
        let ll: &mut libc::sockaddr_ll = unsafe { storage.view_as() };
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = (protocol as u16).to_be();
        ll.sll_ifindex = i32::try_from(link_index)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "link index out of range"))?;
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        // SAFETY: `storage` holds the sockaddr_ll initialised above and the length is its size.
        let destination =
            unsafe { SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t) };
        Ok(LinkBroadcaster {
            socket,
            destination,
        })
    }

    /// Sends `payload` as UDP `from_port` → `255.255.255.255:to_port` from `0.0.0.0`.
    pub fn send(&self, from_port: u16, to_port: u16, payload: &[u8]) -> io::Result<()> {
        let datagram = ipv4_udp(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            from_port,
            to_port,
            payload,
        );
        self.send_frame(&datagram)
    }

    /// Sends `payload` as one frame to the link-layer broadcast address.
    pub fn send_frame(&self, payload: &[u8]) -> io::Result<()> {
        self.socket.send_to(payload, &self.destination)?;
        Ok(())
    }
}

/// The one's-complement sum used by IPv4 and UDP checksums.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header and UDP header in front of `payload`.
fn ipv4_udp(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    from: u16,
    to: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = (8 + payload.len()) as u16;
    let total = 20 + udp_len;
    let mut ip = vec![0x45, 0x10];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&source.octets());
    ip.extend_from_slice(&destination.octets());
    let ip_sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&from.to_be_bytes());
    udp.extend_from_slice(&to.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&source.octets());
    pseudo.extend_from_slice(&destination.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&udp_len.to_be_bytes());
    let udp_sum = match checksum(&[&pseudo, &udp]) {
        0 => 0xffff,
        sum => sum,
    };
    udp[6..8].copy_from_slice(&udp_sum.to_be_bytes());
    ip.extend_from_slice(&udp);
    ip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_check_out() {
        let datagram = ipv4_udp(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 68, 67, b"hello");
        assert_eq!(datagram.len(), 20 + 8 + 5);
        // A correct header sums to zero (checksum of the checksummed header is 0).
        assert_eq!(checksum(&[&datagram[..20]]), 0);
        assert_eq!(&datagram[20..24], &[0, 68, 0, 67]);
    }
}
