//! The kernel's notifications of changed links, addresses and routes (what `ip monitor` shows),
//! as a signal: networkd reads the whole state again rather than patch it per message.

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::NetlinkMessage;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::SocketAddr;

use crate::NetworkdError;

/// The groups that change what Status shows.
const GROUPS: [MulticastGroup; 5] = [
    MulticastGroup::Link,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
];

/// A netlink socket subscribed to link, address and route notifications.
#[derive(Debug)]
pub struct Changes {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

impl Changes {
    /// Subscribes in the current network namespace and spawns the socket's driver task.
    pub fn subscribe() -> Result<Self, NetworkdError> {
        let (connection, _handle, messages) = rtnetlink::new_multicast_connection(&GROUPS)
            .map_err(|source| NetworkdError::Io {
                path: "netlink".into(),
                step: "subscribing to link, address and route notifications",
                source,
            })?;
        tokio::spawn(connection);
        Ok(Changes { messages })
    }

    /// Waits for the next notification, then takes every one already queued with it (a burst
    /// is one change). `false` once the socket is gone.
    pub async fn next(&mut self) -> bool {
        if self.messages.next().await.is_none() {
            return false;
        }
        while self.messages.try_recv().is_ok() {}
        true
    }
}
