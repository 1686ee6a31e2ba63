//! The server's side: a client's [`Request`] and the [`answer`] a server with static bindings
//! (one address per hardware address, as a provisioner knows its VMs) gives it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::{
    ACK, BROADCAST_FLAG, DISCOVER, MAGIC, NAK, OFFER, OPTIONS_AT, REQUEST, finish, ipv4_at, options,
};

/// A client message, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub kind: u8,
    pub xid: u32,
    pub mac: [u8; 6],
    /// The client's address when it renews (unspecified otherwise).
    pub ciaddr: Ipv4Addr,
    /// Option 50: the address it asks for.
    pub requested: Option<Ipv4Addr>,
    /// Option 54: the server it chose (REQUEST after an OFFER).
    pub server: Option<Ipv4Addr>,
    /// The client asked for a broadcast answer.
    pub broadcast: bool,
}

impl Request {
    /// Decodes a BOOTREQUEST from an Ethernet client.
    pub fn parse(packet: &[u8]) -> Option<Request> {
        if packet.len() < OPTIONS_AT || packet[0] != 1 || packet[1] != 1 || packet[2] != 6 {
            return None;
        }
        if packet[236..240] != MAGIC {
            return None;
        }
        let mut request = Request {
            kind: 0,
            xid: u32::from_be_bytes(packet[4..8].try_into().ok()?),
            mac: packet[28..34].try_into().ok()?,
            ciaddr: ipv4_at(packet, 12)?,
            requested: None,
            server: None,
            broadcast: packet[10] & BROADCAST_FLAG != 0,
        };
        for (code, value) in options(packet) {
            let address = || <[u8; 4]>::try_from(value).ok().map(Ipv4Addr::from);
            match code {
                53 => request.kind = *value.first()?,
                50 => request.requested = address(),
                54 => request.server = address(),
                _ => {}
            }
        }
        (request.kind != 0).then_some(request)
    }
}

/// What the server hands one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub address: Ipv4Net,
    pub router: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    pub mtu: Option<u16>,
    pub lease_seconds: u32,
}

/// The server's answer to `request`, from `server` (its own address on the link) and the
/// client's `binding`: an OFFER to a DISCOVER, an ACK to a REQUEST for the bound address, a NAK
/// to one for another address; nothing for a client without a binding, a REQUEST meant for
/// another server, or other message types.
pub fn answer(request: &Request, binding: Option<&Binding>, server: Ipv4Addr) -> Option<Vec<u8>> {
    let binding = binding?;
    let kind = match request.kind {
        DISCOVER => OFFER,
        REQUEST if request.server.is_some_and(|chosen| chosen != server) => return None,
        REQUEST => {
            let asked = request
                .requested
                .or((!request.ciaddr.is_unspecified()).then_some(request.ciaddr));
            if asked == Some(binding.address.addr()) {
                ACK
            } else {
                NAK
            }
        }
        _ => return None,
    };
    let mut packet = vec![0u8; OPTIONS_AT - MAGIC.len()];
    packet[0] = 2; // BOOTREPLY
    packet[1] = 1;
    packet[2] = 6;
    packet[4..8].copy_from_slice(&request.xid.to_be_bytes());
    if request.broadcast {
        packet[10] = BROADCAST_FLAG;
    }
    packet[28..34].copy_from_slice(&request.mac);
    let mut reply = vec![(53, vec![kind]), (54, server.octets().to_vec())];
    if kind != NAK {
        packet[12..16].copy_from_slice(&request.ciaddr.octets());
        packet[16..20].copy_from_slice(&binding.address.addr().octets());
        packet[20..24].copy_from_slice(&server.octets());
        let lease = binding.lease_seconds.max(4);
        reply.extend([
            (51, lease.to_be_bytes().to_vec()),
            (58, (lease / 2).to_be_bytes().to_vec()),
            (59, (lease / 8 * 7).to_be_bytes().to_vec()),
            (1, binding.address.netmask().octets().to_vec()),
        ]);
        if let Some(router) = binding.router {
            reply.push((3, router.octets().to_vec()));
        }
        if let Some(hostname) = &binding.hostname {
            reply.push((12, hostname.as_bytes().to_vec()));
        }
        if let Some(mtu) = binding.mtu {
            reply.push((26, mtu.to_be_bytes().to_vec()));
        }
    }
    Some(finish(packet, &reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reply;
    use crate::client::message;

    const MAC: [u8; 6] = [0x52, 0x54, 10, 5, 0, 2];
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 5, 0, 1);

    fn binding() -> Binding {
        Binding {
            address: "10.5.0.2/24".parse().unwrap(),
            router: Some(SERVER),
            hostname: Some("demo-controlplane-1".into()),
            mtu: Some(1500),
            lease_seconds: 86_400,
        }
    }

    #[test]
    fn a_client_gets_its_bound_address_through_offer_and_ack() {
        let discover = message(MAC, 7, DISCOVER, Ipv4Addr::UNSPECIFIED, &[]);
        let request = Request::parse(&discover).unwrap();
        assert_eq!((request.kind, request.xid, request.mac), (DISCOVER, 7, MAC));
        assert!(request.broadcast);
        let offer = answer(&request, Some(&binding()), SERVER).unwrap();
        let offer = Reply::parse(&offer, 7, &MAC).unwrap();
        assert_eq!(offer.kind, OFFER);
        assert_eq!(offer.yiaddr, Some(Ipv4Addr::new(10, 5, 0, 2)));

        let asked = message(
            MAC,
            7,
            REQUEST,
            Ipv4Addr::UNSPECIFIED,
            &[(50, vec![10, 5, 0, 2]), (54, SERVER.octets().to_vec())],
        );
        let ack = answer(&Request::parse(&asked).unwrap(), Some(&binding()), SERVER).unwrap();
        let lease = Reply::parse(&ack, 7, &MAC).unwrap().lease(0).unwrap();
        assert_eq!(lease.address, binding().address);
        assert_eq!(lease.router, Some(SERVER));
        assert_eq!(lease.server, SERVER);
        assert_eq!(lease.hostname.as_deref(), Some("demo-controlplane-1"));
        assert_eq!(lease.mtu, Some(1500));
        assert_eq!(
            (
                lease.renew_seconds,
                lease.rebind_seconds,
                lease.lease_seconds
            ),
            (43_200, 75_600, 86_400)
        );

        // A renewal names the address in ciaddr.
        let renew = message(MAC, 8, REQUEST, Ipv4Addr::new(10, 5, 0, 2), &[]);
        let ack = answer(&Request::parse(&renew).unwrap(), Some(&binding()), SERVER).unwrap();
        assert_eq!(Reply::parse(&ack, 8, &MAC).unwrap().kind, ACK);
    }

    #[test]
    fn other_addresses_servers_and_clients_are_refused_or_ignored() {
        let wrong = message(
            MAC,
            9,
            REQUEST,
            Ipv4Addr::UNSPECIFIED,
            &[(50, vec![10, 5, 0, 9])],
        );
        let nak = answer(&Request::parse(&wrong).unwrap(), Some(&binding()), SERVER).unwrap();
        let nak = Reply::parse(&nak, 9, &MAC).unwrap();
        assert_eq!((nak.kind, nak.lease(0)), (NAK, None));

        let elsewhere = message(
            MAC,
            9,
            REQUEST,
            Ipv4Addr::UNSPECIFIED,
            &[(50, vec![10, 5, 0, 2]), (54, vec![10, 5, 0, 254])],
        );
        assert_eq!(
            answer(
                &Request::parse(&elsewhere).unwrap(),
                Some(&binding()),
                SERVER
            ),
            None
        );
        let discover = message(MAC, 7, DISCOVER, Ipv4Addr::UNSPECIFIED, &[]);
        assert_eq!(
            answer(&Request::parse(&discover).unwrap(), None, SERVER),
            None
        );
    }

    #[test]
    fn malformed_requests_are_not_requests() {
        let discover = message(MAC, 7, DISCOVER, Ipv4Addr::UNSPECIFIED, &[]);
        assert_eq!(Request::parse(&discover[..239]), None);
        let mut reply = discover.clone();
        reply[0] = 2;
        assert_eq!(Request::parse(&reply), None);
        let mut no_type = discover[..240].to_vec();
        no_type.extend_from_slice(&[50, 4, 10, 5, 0, 2, 255]);
        assert_eq!(Request::parse(&no_type), None);
        // An option whose length runs past the end ends the options.
        let mut cut = discover[..240].to_vec();
        cut.extend_from_slice(&[53, 1, DISCOVER, 50, 200, 1]);
        assert_eq!(Request::parse(&cut).unwrap().requested, None);
    }
}
