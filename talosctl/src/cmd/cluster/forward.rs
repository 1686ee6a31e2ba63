//! `talosctl cluster forward` (hidden): the process that publishes a QEMU cluster's ports on the
//! host and gives its nodes their addresses. It binds its listeners on the host's loopback
//! first, then moves itself into the cluster's network namespace, so that every connection it
//! accepts on the host is relayed to a node's address inside the namespace; there it also serves
//! DHCP on the cluster's bridge, each node's address, gateway, name and MTU bound to its
//! hardware address (as upstream's provisioner runs a DHCP server for its VMs). `cluster create
//! qemu` starts it detached and records its PID; `cluster destroy` ends it.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use dhcp::server::{Binding, Request, answer};
use nix::sched::CloneFlags;

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// The network namespace to relay into (a file such as /run/netns/NAME)
    #[arg(long)]
    pub netns: PathBuf,
    /// LISTEN=TARGET, e.g. 127.0.0.1:40000=10.5.0.2:50000
    #[arg(long = "route", required = true)]
    pub routes: Vec<String>,
    /// Serve DHCP on this link of the namespace, from this address: LINK=ADDRESS
    #[arg(long)]
    pub dhcp: Option<String>,
    /// A DHCP binding: MAC=ADDRESS/PREFIX=HOSTNAME, e.g. 52:54:0a:05:00:02=10.5.0.2/24=node-1
    #[arg(long = "lease")]
    pub leases: Vec<String>,
    /// The MTU the DHCP server hands out
    #[arg(long)]
    pub mtu: Option<u16>,
}

/// How long a node's lease lasts (nodes do not renew what PID 1 obtained at boot).
const LEASE_SECONDS: u32 = 7 * 24 * 3600;

/// The DHCP server's link, own address and bindings.
struct DhcpServer {
    link: String,
    address: Ipv4Addr,
    bindings: Vec<([u8; 6], Binding)>,
}

pub fn run(args: ForwardArgs) -> anyhow::Result<()> {
    let routes = args
        .routes
        .iter()
        .map(|route| parse_route(route))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dhcp = args
        .dhcp
        .as_deref()
        .map(|server| parse_dhcp(server, &args.leases, args.mtu))
        .transpose()?;
    // Bound on the host, before the move: sockets keep the namespace they were made in.
    let mut listeners = Vec::new();
    for (listen, target) in routes {
        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("listening on {listen}"))?;
        listener.set_nonblocking(true)?;
        listeners.push((listener, target));
    }
    let namespace = std::fs::File::open(&args.netns)
        .with_context(|| format!("opening {}", args.netns.display()))?;
    nix::sched::setns(namespace, CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering {}", args.netns.display()))?;
    // One thread, the one that moved: every connection is made inside the namespace.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut tasks = Vec::new();
            for (listener, target) in listeners {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                tasks.push(tokio::spawn(relay(listener, target)));
            }
            if let Some(server) = dhcp {
                let socket = dhcp_socket(&server)?;
                tasks.push(tokio::spawn(serve_dhcp(socket, server)));
            }
            for task in tasks {
                task.await?;
            }
            anyhow::Ok(())
        })
}

fn parse_route(text: &str) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let bad = || format!("--route {text:?}: expected LISTEN=TARGET addresses with ports");
    let (listen, target) = text.split_once('=').with_context(bad)?;
    let listen: SocketAddr = listen.parse().with_context(bad)?;
    if !listen.ip().is_loopback() {
        bail!("--route {text:?}: ports are published on loopback only");
    }
    Ok((listen, target.parse().with_context(bad)?))
}

fn parse_dhcp(server: &str, leases: &[String], mtu: Option<u16>) -> anyhow::Result<DhcpServer> {
    let (link, address) = server
        .split_once('=')
        .with_context(|| format!("--dhcp {server:?}: expected LINK=ADDRESS"))?;
    let address = address
        .parse()
        .with_context(|| format!("--dhcp {server:?}: not an IPv4 address"))?;
    let bindings = leases
        .iter()
        .map(|lease| {
            let bad = || format!("--lease {lease:?}: expected MAC=ADDRESS/PREFIX=HOSTNAME");
            let mut parts = lease.splitn(3, '=');
            let (Some(mac), Some(net), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                bail!(bad());
            };
            let mac = dhcp::parse_mac(mac).with_context(bad)?;
            let binding = Binding {
                address: net.parse().with_context(bad)?,
                router: Some(address),
                hostname: Some(name.to_string()),
                mtu,
                lease_seconds: LEASE_SECONDS,
            };
            Ok((mac, binding))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(DhcpServer {
        link: link.to_string(),
        address,
        bindings,
    })
}

/// UDP port 67 on the server's link, able to broadcast (made inside the namespace).
fn dhcp_socket(server: &DhcpServer) -> anyhow::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    socket
        .bind_device(Some(server.link.as_bytes()))
        .with_context(|| format!("binding DHCP to {}", server.link))?;
    socket
        .bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, dhcp::SERVER_PORT).into())
        .context("binding DHCP's port 67")?;
    socket.set_nonblocking(true)?;
    Ok(tokio::net::UdpSocket::from_std(socket.into())?)
}

/// Answers every request of a bound client: broadcast while it has no address, else to it.
async fn serve_dhcp(socket: tokio::net::UdpSocket, server: DhcpServer) {
    let mut buffer = [0u8; 1500];
    loop {
        let Ok((len, _)) = socket.recv_from(&mut buffer).await else {
            // A socket error that repeats must not spin the helper.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let Some(request) = Request::parse(&buffer[..len]) else {
            continue;
        };
        let binding = server
            .bindings
            .iter()
            .find(|(mac, _)| *mac == request.mac)
            .map(|(_, binding)| binding);
        let Some(reply) = answer(&request, binding, server.address) else {
            continue;
        };
        let to = if request.broadcast || request.ciaddr.is_unspecified() {
            Ipv4Addr::BROADCAST
        } else {
            request.ciaddr
        };
        let _ = socket
            .send_to(&reply, SocketAddrV4::new(to, dhcp::CLIENT_PORT))
            .await;
    }
}

async fn relay(listener: tokio::net::TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            // Out of descriptors, say: let connections end before accepting more.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_publish_on_loopback_only() {
        let (listen, target) = parse_route("127.0.0.1:40000=10.5.0.2:50000").unwrap();
        assert_eq!(listen.port(), 40000);
        assert_eq!(target.to_string(), "10.5.0.2:50000");
        assert!(
            format!("{:#}", parse_route("0.0.0.0:1=10.5.0.2:50000").unwrap_err())
                .contains("loopback only")
        );
        assert!(parse_route("127.0.0.1:1").is_err());
    }

    #[test]
    fn leases_bind_a_hardware_address_to_an_address_and_a_name() {
        let server = parse_dhcp(
            "talos0=10.5.0.1",
            &["52:54:0a:05:00:02=10.5.0.2/24=demo-controlplane-1".to_string()],
            Some(1500),
        )
        .unwrap();
        assert_eq!(
            (server.link.as_str(), server.address),
            ("talos0", Ipv4Addr::new(10, 5, 0, 1))
        );
        let (mac, binding) = &server.bindings[0];
        assert_eq!(mac, &[0x52, 0x54, 10, 5, 0, 2]);
        assert_eq!(binding.address.to_string(), "10.5.0.2/24");
        assert_eq!(binding.router, Some(server.address));
        assert_eq!(binding.hostname.as_deref(), Some("demo-controlplane-1"));
        for bad in [
            "52:54:0a:05:00:02=10.5.0.2/24",
            "nope=10.5.0.2/24=n",
            "52:54:0a:05:00:02=10.5.0.2=n",
        ] {
            assert!(
                parse_dhcp("talos0=10.5.0.1", &[bad.to_string()], None).is_err(),
                "{bad}"
            );
        }
        assert!(parse_dhcp("talos0", &[], None).is_err());
    }
}
