//! The three rtnetlink requests machined needs before networkd exists: set a link up, add an
//! IPv4 address, add an IPv4 default route. Messages are built by hand (linux/rtnetlink.h
//! layouts) and sent on a NETLINK_ROUTE socket; each request waits for its acknowledgement.

use std::net::Ipv4Addr;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto,
    socket,
};

use crate::error::MachinedError;

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFF_UP: u32 = 0x1;
const AF_INET: u8 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_HOST_OR_LINK_ADDR: u8 = 0;
const RTN_UNICAST: u8 = 1;

fn index_of(link: &str) -> Result<u32, MachinedError> {
    nix::net::if_::if_nametoindex(link).map_err(|errno| MachinedError::Io {
        what: "finding the link",
        path: link.into(),
        source: errno.into(),
    })
}

/// Sets `link` up.
pub fn link_up(link: &str) -> Result<(), MachinedError> {
    let index = index_of(link)?;
    let mut body = vec![0u8; 16];
    // struct ifinfomsg: family, pad, type, index, flags, change
    body[4..8].copy_from_slice(&index.to_ne_bytes());
    body[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
    body[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
    request(RTM_NEWLINK, 0, &body, link)
}

/// Adds `address/prefix` to `link` (an address already there is fine).
pub fn add_address(link: &str, address: Ipv4Addr, prefix: u8) -> Result<(), MachinedError> {
    let index = index_of(link)?;
    // struct ifaddrmsg: family, prefixlen, flags, scope, index
    let mut body = vec![AF_INET, prefix, 0, RT_SCOPE_HOST_OR_LINK_ADDR];
    body.extend_from_slice(&index.to_ne_bytes());
    attribute(&mut body, IFA_LOCAL, &address.octets());
    attribute(&mut body, IFA_ADDRESS, &address.octets());
    request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body, link)
}

/// Adds a default route via `gateway` out of `link` (one already there is fine).
pub fn add_default_route(link: &str, gateway: Ipv4Addr) -> Result<(), MachinedError> {
    let index = index_of(link)?;
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
    let mut body = vec![
        AF_INET,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ];
    body.extend_from_slice(&0u32.to_ne_bytes());
    attribute(&mut body, RTA_GATEWAY, &gateway.octets());
    attribute(&mut body, RTA_OIF, &index.to_ne_bytes());
    request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &body, link)
}

fn attribute(body: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let length = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    body.extend_from_slice(&length.to_ne_bytes());
    body.extend_from_slice(&kind.to_ne_bytes());
    body.extend_from_slice(value);
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
}

/// Sends one request and waits for its acknowledgement; EEXIST counts as success.
fn request(kind: u16, flags: u16, body: &[u8], link: &str) -> Result<(), MachinedError> {
    let failed = |what: &'static str| {
        move |errno: nix::errno::Errno| MachinedError::Io {
            what,
            path: link.into(),
            source: errno.into(),
        }
    };
    let socket = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(failed("opening a netlink socket for"))?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &NetlinkAddr::new(0, 0),
    )
    .map_err(failed("binding a netlink socket for"))?;
    let length = u32::try_from(16 + body.len()).unwrap_or(u32::MAX);
    let mut message = Vec::with_capacity(16 + body.len());
    message.extend_from_slice(&length.to_ne_bytes());
    message.extend_from_slice(&kind.to_ne_bytes());
    message.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    message.extend_from_slice(body);
    sendto(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &message,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(failed("sending a netlink request for"))?;
    let mut reply = [0u8; 1024];
    let received = recv(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &mut reply,
        MsgFlags::empty(),
    )
    .map_err(failed("reading the netlink reply for"))?;
    let reply = &reply[..received];
    let kind_of_reply = reply.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    if kind_of_reply != Some(NLMSG_ERROR) {
        return Ok(());
    }
    let code = reply
        .get(16..20)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let errno = nix::errno::Errno::from_raw(-code);
    if code == 0 || errno == nix::errno::Errno::EEXIST {
        return Ok(());
    }
    Err(failed("configuring")(errno))
}
