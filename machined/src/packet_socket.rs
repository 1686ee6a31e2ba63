//! The one socket machined opens on a link itself: an `AF_PACKET` socket for packet capture.
//! Binding to a link, attaching a BPF program and joining promiscuous mode take C structures
//! nix does not wrap, hence the `unsafe` blocks here, each with its SAFETY note.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::libc;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType};

use crate::error::MachinedError;

/// A non-blocking packet socket bound to one link, with its filter attached.
#[derive(Debug)]
pub struct CaptureSocket {
    fd: OwnedFd,
}

impl CaptureSocket {
    /// Opens a capture of `interface`; `filter` empty means every packet.
    pub fn open(
        interface: &str,
        promiscuous: bool,
        filter: &[libc::sock_filter],
    ) -> Result<CaptureSocket, MachinedError> {
        if interface.is_empty() || interface.len() >= libc::IFNAMSIZ || interface.contains('/') {
            return Err(MachinedError::InvalidArgument(format!(
                "interface {interface:?} is not a link name"
            )));
        }
        let index = nix::net::if_::if_nametoindex(interface).map_err(|_| {
            MachinedError::NotFound(format!("interface {interface:?} not found on the node"))
        })?;
        let failed = |what: &str| {
            let what = what.to_string();
            move |error: nix::Error| {
                MachinedError::Internal(format!("packet capture: {what}: {error}"))
            }
        };
        // Protocol 0: the socket receives nothing until it is bound below, after the filter.
        let fd = nix::sys::socket::socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(failed("opening a packet socket"))?;
        let socket = CaptureSocket { fd };
        if !filter.is_empty() {
            socket.attach_filter(filter)?;
        }
        socket.bind(index).map_err(failed("binding to the link"))?;
        if promiscuous {
            socket
                .promiscuous(index)
                .map_err(failed("promiscuous mode"))?;
        }
        Ok(socket)
    }

    fn attach_filter(&self, filter: &[libc::sock_filter]) -> Result<(), MachinedError> {
        let program = libc::sock_fprog {
            len: u16::try_from(filter.len()).unwrap_or(u16::MAX),
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at `filter`, which outlives the call; the kernel copies the
        // program during setsockopt and keeps no pointer to it.
        let result = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                std::ptr::from_ref(&program).cast(),
                size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if result != 0 {
            let error = std::io::Error::last_os_error();
            return Err(MachinedError::InvalidArgument(format!(
                "the kernel refused the BPF filter: {error}"
            )));
        }
        Ok(())
    }

    fn bind(&self, index: u32) -> nix::Result<()> {
        // SAFETY: an all-zero sockaddr_ll is a valid value of the plain C structure.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        address.sll_ifindex = i32::try_from(index).map_err(|_| nix::Error::EINVAL)?;
        // SAFETY: the pointer and length describe `address`, alive for the call.
        let result = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                std::ptr::from_ref(&address).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        nix::errno::Errno::result(result).map(drop)
    }

    /// Joins promiscuous mode for the socket's life (the kernel leaves it when it closes).
    fn promiscuous(&self, index: u32) -> nix::Result<()> {
        let request = libc::packet_mreq {
            mr_ifindex: i32::try_from(index).map_err(|_| nix::Error::EINVAL)?,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        // SAFETY: the pointer and length describe `request`, alive for the call.
        let result = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                std::ptr::from_ref(&request).cast(),
                size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        nix::errno::Errno::result(result).map(drop)
    }

    /// Reads one packet into `buffer` (cut to its length); returns the packet's whole length,
    /// or `None` for a loopback packet on its way out (the same packet is read again coming
    /// in, and capture tools show it once).
    pub fn receive(&self, buffer: &mut [u8]) -> std::io::Result<Option<usize>> {
        let mut iov = [std::io::IoSliceMut::new(buffer)];
        let message = nix::sys::socket::recvmsg::<nix::sys::socket::LinkAddr>(
            self.fd.as_raw_fd(),
            &mut iov,
            None,
            MsgFlags::MSG_TRUNC,
        )
        .map_err(std::io::Error::from)?;
        let looped_out = message.address.is_some_and(|address| {
            address.hatype() == libc::ARPHRD_LOOPBACK && address.pkttype() == libc::PACKET_OUTGOING
        });
        Ok((!looped_out).then_some(message.bytes))
    }
}

impl AsRawFd for CaptureSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for CaptureSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
