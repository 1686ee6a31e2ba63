//! apid: the node's only network-facing API endpoint (TCP 50000).
//!
//! apid terminates mutual TLS, takes the caller's roles from the client certificate's Subject
//! Organizations, authorizes every call with [`authz`], and forwards it without decoding it:
//! to the local machined over its Unix socket (plaintext HTTP/2), to one other node's apid
//! (`node` metadata) or to several (`nodes` metadata, replies aggregated and stamped with each
//! node's name). Reference: `talos-api.md` §2 (routing and proxying), §3 (roles), §4.2
//! (certificates).
//!
//! The TLS directory (written by machined) holds `ca.crt` (accepted CAs), `server.crt`,
//! `server.key` and, on nodes that may forward, `client.crt` + `client.key` (the node's
//! `os:impersonator` certificate). [`TlsReloader::reload`] (and SIGHUP under [`run`]) re-reads it:
//! new connections use the new certificates, open ones continue.
//!
//! Calls are forwarded at the HTTP/2 level: one-to-one calls (local or remote) relay request
//! and response streams frame by frame, headers and trailers included, so every kind of stream
//! works and nothing is copied or parsed. Only one-to-many calls look at gRPC message
//! boundaries, to append `metadata` to each reply element or streamed message.
//!
//! Limits: maintenance mode gives every caller `os:reader` (upstream's SideroLink `os:admin`
//! exception is not implemented). The 32 MiB message limit is enforced where apid reads
//! messages (one-to-many); relayed calls leave it to the endpoints. Compressed replies cannot be
//! aggregated (one-to-many asks upstreams for uncompressed replies). apid's own addresses and
//! hostname come from `--local-name` rather than from a watch on machined's resources.

mod body;
mod error;
mod fanout;
mod grpc;
mod injection;
mod proxy;
mod routing;
mod server;
mod state;
mod tls;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

pub use error::ApidError;

use routing::RoutingPolicy;
use state::Shared;
use upstream::Upstreams;

/// apid's settings, the same in dev mode and OS mode.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "apid",
    version,
    about = "The Talos API endpoint: mutual TLS, roles, routing"
)]
pub struct Config {
    /// Address to listen on, e.g. `0.0.0.0:50000`.
    #[arg(long)]
    pub listen: SocketAddr,
    /// machined's API socket, e.g. `/system/run/machined/machine.sock`.
    #[arg(long)]
    pub machined_socket: PathBuf,
    /// Directory holding ca.crt, server.crt, server.key and optionally client.crt + client.key.
    #[arg(long)]
    pub tls_dir: PathBuf,
    /// Maintenance mode: no client certificate, every caller is os:reader, no routing.
    #[arg(long)]
    pub maintenance: bool,
    /// Port of other nodes' apid when forwarding.
    #[arg(long, default_value_t = 50000)]
    pub remote_port: u16,
    /// This node's addresses and names (repeatable): on a node without a client certificate,
    /// a `node`/`nodes` target equal to one of them is served locally.
    #[arg(long = "local-name")]
    pub local_names: Vec<String>,
    /// Connections open at once, at most: one beyond that is closed at once.
    #[arg(long, default_value_t = server::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a connection may stay open with no call in flight before it is closed.
    #[arg(long, default_value_t = server::IDLE_TIMEOUT.as_secs())]
    pub idle_timeout_seconds: u64,
}

/// A bound apid, ready to serve.
#[derive(Debug)]
pub struct Apid {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    limits: server::Limits,
}

/// Re-reads apid's TLS directory on demand; clones share one apid.
#[derive(Clone, Debug)]
pub struct TlsReloader {
    shared: Arc<Shared>,
}

impl TlsReloader {
    /// Re-reads the TLS directory. New connections then use the new certificates and CAs and
    /// forwarding dials other nodes afresh; open connections and streams are left alone. If the
    /// directory is invalid the error is returned and the previous certificates stay in use.
    pub fn reload(&self) -> Result<(), ApidError> {
        self.shared.reload_tls()
    }
}

impl Apid {
    /// Loads the TLS directory and binds the listener.
    pub async fn bind(config: Config) -> Result<Self, ApidError> {
        raise_open_file_limit();
        let routing = RoutingPolicy {
            enabled: !config.maintenance,
            local_names: config.local_names,
        };
        let upstreams = Upstreams::new(config.machined_socket, config.remote_port);
        let shared = Shared::new(config.tls_dir, config.maintenance, routing, upstreams)?;
        let limits = server::Limits {
            max_connections: config.max_connections,
            idle_timeout: std::time::Duration::from_secs(config.idle_timeout_seconds),
        };
        let listen_error = |source| ApidError::Listen {
            address: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        Ok(Apid {
            listener,
            local_addr,
            shared: Arc::new(shared),
            limits,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that reloads this apid's TLS directory.
    pub fn reloader(&self) -> TlsReloader {
        TlsReloader {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes, then closes all connections.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        server::serve(self.listener, self.shared, self.limits, shutdown).await;
    }
}

/// Runs apid until SIGTERM or SIGINT; SIGHUP reloads the TLS directory.
pub async fn run(config: Config) -> Result<(), ApidError> {
    let signal_error = |signal| move |source| ApidError::Signal { signal, source };
    let mut hangups = signal(SignalKind::hangup()).map_err(signal_error("SIGHUP"))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error("SIGTERM"))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error("SIGINT"))?;

    let apid = Apid::bind(config).await?;
    tracing::info!(address = %apid.local_addr(), "serving the Talos API");
    let reloader = apid.reloader();
    let reloads = async move {
        while hangups.recv().await.is_some() {
            match reloader.reload() {
                Ok(()) => tracing::info!("TLS certificates reloaded"),
                Err(error) => {
                    tracing::error!(%error, "TLS reload failed; keeping the previous certificates")
                }
            }
        }
    };
    let shutdown = async {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
            _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
        }
    };
    tokio::select! {
        () = apid.serve(shutdown) => {}
        () = reloads => {}
    }
    Ok(())
}

/// Lets apid hold as many connections as the system allows: the soft limit on open files is
/// raised to the hard limit (Go's runtime does the same for upstream's apid).
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(%error, soft, hard, "cannot raise the open file limit");
    }
}
