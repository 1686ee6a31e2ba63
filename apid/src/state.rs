//! What every connection and call of one apid shares.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use tokio::sync::watch;

use crate::error::ApidError;
use crate::routing::RoutingPolicy;
use crate::tls::TlsState;
use crate::upstream::Upstreams;

/// State shared by all connections; the TLS part is swapped on reload.
#[derive(Debug)]
pub(crate) struct Shared {
    pub tls_dir: PathBuf,
    pub maintenance: bool,
    pub routing: RoutingPolicy,
    pub upstreams: Upstreams,
    tls: watch::Sender<Arc<TlsState>>,
}

impl Shared {
    pub fn new(
        tls_dir: PathBuf,
        maintenance: bool,
        routing: RoutingPolicy,
        upstreams: Upstreams,
    ) -> Result<Self, ApidError> {
        let tls = TlsState::load(&tls_dir, maintenance)?;
        Ok(Shared {
            tls_dir,
            maintenance,
            routing,
            upstreams,
            tls: watch::Sender::new(Arc::new(tls)),
        })
    }

    fn current(&self) -> Arc<TlsState> {
        self.tls.borrow().clone()
    }

    /// Each TLS state a reload installs from now on.
    pub fn tls_reloads(&self) -> watch::Receiver<Arc<TlsState>> {
        self.tls.subscribe()
    }

    /// The server configuration for a new connection.
    pub fn server_tls(&self) -> Arc<ServerConfig> {
        self.current().server.clone()
    }

    /// The client configuration for forwarding, if this node may forward.
    pub fn forwarding_tls(&self) -> Option<Arc<ClientConfig>> {
        self.current().forwarding.clone()
    }

    /// Re-reads the TLS directory. On success new connections (accepted and forwarded) use
    /// the new certificates and cached connections to other nodes are dropped; open
    /// connections and streams continue unless their client certificate is no longer
    /// accepted. On failure the previous certificates stay.
    pub fn reload_tls(&self) -> Result<(), ApidError> {
        let tls = TlsState::load(&self.tls_dir, self.maintenance)?;
        self.tls.send_replace(Arc::new(tls));
        self.upstreams.forget_nodes();
        Ok(())
    }
}
