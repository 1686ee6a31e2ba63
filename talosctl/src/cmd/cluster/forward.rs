//! `talosctl cluster forward` (hidden): the process that publishes a QEMU cluster's ports on the
//! host. It binds its listeners on the host's loopback first, then moves itself into the
//! cluster's network namespace, so that every connection it accepts on the host is relayed to a
//! node's address inside the namespace. `cluster create qemu` starts it detached and records its
//! PID; `cluster destroy` ends it.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use nix::sched::CloneFlags;

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// The network namespace to relay into (a file such as /run/netns/NAME)
    #[arg(long)]
    pub netns: PathBuf,
    /// LISTEN=TARGET, e.g. 127.0.0.1:40000=10.5.0.2:50000
    #[arg(long = "route", required = true)]
    pub routes: Vec<String>,
}

pub fn run(args: ForwardArgs) -> anyhow::Result<()> {
    let routes = args
        .routes
        .iter()
        .map(|route| parse_route(route))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
}
