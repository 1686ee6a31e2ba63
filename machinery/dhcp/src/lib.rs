//! DHCPv4 (RFC 2131, options of RFC 2132) for both ends of the exchange:
//!
//! - [`client`]: the messages a client sends and the replies it reads, turned into a
//!   [`Lease`] (networkd's lease client, and [`acquire`] below);
//! - [`server`]: the requests a server reads and its answers from static bindings
//!   (talosctl's server for the nodes of a QEMU cluster, as upstream's provisioner runs one);
//! - [`acquire`]: one blocking DISCOVER/OFFER/REQUEST/ACK on a link that has no address yet,
//!   for machined's early boot (the node's first address when the command line has no `ip=`).
//!
//! Every parser reads bytes from the network: each read is bounded and none panics (`cargo xtask
//! fuzz` runs both on arbitrary packets). Limits: no RELEASE, DECLINE or INFORM handling, no
//! DHCPv6, no relay agents, no classless static routes (option 121).

mod boot;
pub mod client;
pub mod server;

pub use boot::acquire;
pub use client::{Lease, Reply};

/// The port servers listen on.
pub const SERVER_PORT: u16 = 67;
/// The port clients listen on.
pub const CLIENT_PORT: u16 = 68;
/// The cookie before the options.
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Where the options start.
const OPTIONS_AT: usize = 240;
/// BOOTP's minimum message size.
const MIN_SIZE: usize = 300;
/// The BROADCAST flag (answer to 255.255.255.255: the client has no address yet).
const BROADCAST_FLAG: u8 = 0x80;

/// Message types (option 53).
pub const DISCOVER: u8 = 1;
pub const OFFER: u8 = 2;
pub const REQUEST: u8 = 3;
pub const ACK: u8 = 5;
pub const NAK: u8 = 6;

/// Why a lease could not be asked for.
#[derive(Debug, thiserror::Error)]
#[error("DHCP on {link}: {step}: {source}")]
pub struct DhcpError {
    pub link: String,
    pub step: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// The options of a message (code, value), stopping at the end option or at the first one that
/// does not fit in the packet.
fn options(packet: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = packet.get(OPTIONS_AT..).unwrap_or_default();
    std::iter::from_fn(move || {
        loop {
            let (&code, after) = rest.split_first()?;
            match code {
                0 => rest = after,
                255 => return None,
                _ => {
                    let (&len, after) = after.split_first()?;
                    let value = after.get(..usize::from(len))?;
                    rest = &after[usize::from(len)..];
                    return Some((code, value));
                }
            }
        }
    })
}

/// Appends `options` (code, value) and the end option, and pads to BOOTP's minimum size.
/// Values longer than 255 bytes are cut (none of the options written here can be).
fn finish(mut packet: Vec<u8>, options: &[(u8, Vec<u8>)]) -> Vec<u8> {
    packet.extend_from_slice(&MAGIC);
    for (code, value) in options {
        let value = &value[..value.len().min(255)];
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

/// A hardware address as Linux prints it (`52:54:00:12:34:56`).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| u8::from_str_radix(part, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    bytes.try_into().ok()
}

fn ipv4s(value: &[u8]) -> Vec<std::net::Ipv4Addr> {
    value
        .chunks_exact(4)
        .map(|c| std::net::Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect()
}

fn ipv4_at(packet: &[u8], at: usize) -> Option<std::net::Ipv4Addr> {
    let bytes: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
    Some(bytes.into())
}
