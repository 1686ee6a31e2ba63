//! Announcing an address that moved to this node: a gratuitous ARP (an ARP request whose sender
//! and target are the address, from the link's hardware address, to the broadcast address), as
//! upstream Talos sends for a shared VIP so that neighbours update their caches at once.

use std::io;
use std::net::Ipv4Addr;

use crate::packet_socket::{EtherType, LinkBroadcaster};

/// ARP over Ethernet for IPv4 (RFC 826): hardware type 1, protocol 0x0800, lengths 6 and 4.
const ARP_ETHERNET_IPV4: [u8; 6] = [0x00, 0x01, 0x08, 0x00, 6, 4];
const ARP_REQUEST: [u8; 2] = [0x00, 0x01];

/// The ARP payload announcing `address` at `mac`.
pub fn gratuitous_arp(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    let mut packet = Vec::with_capacity(28);
    packet.extend_from_slice(&ARP_ETHERNET_IPV4);
    packet.extend_from_slice(&ARP_REQUEST);
    packet.extend_from_slice(&mac);
    packet.extend_from_slice(&address.octets());
    packet.extend_from_slice(&mac);
    packet.extend_from_slice(&address.octets());
    packet
}

/// Broadcasts a gratuitous ARP for `address` out of the link with index `link_index`.
pub fn send_gratuitous_arp(link_index: u32, mac: [u8; 6], address: Ipv4Addr) -> io::Result<()> {
    LinkBroadcaster::open(link_index, EtherType::Arp)?.send_frame(&gratuitous_arp(mac, address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packet_names_the_address_as_sender_and_target() {
        let mac = [0x02, 0, 0, 0, 0, 0x0a];
        let packet = gratuitous_arp(mac, Ipv4Addr::new(10, 5, 0, 50));
        assert_eq!(packet.len(), 28);
        assert_eq!(&packet[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&packet[8..14], &mac);
        assert_eq!(&packet[14..18], &[10, 5, 0, 50]);
        assert_eq!(&packet[18..24], &mac);
        assert_eq!(&packet[24..28], &[10, 5, 0, 50]);
    }
}
