//! trustd: the control plane's certificate service (TCP 50001, server-only TLS).
//!
//! A joining node sends `securityapi.SecurityService/Certificate` with a PEM certificate signing
//! request and the machine token in the `token` metadata; trustd checks the token, checks that the
//! request asks only for what a node's serving certificate may have, and signs it with the Talos
//! issuing CA (`machine.ca`) as a server certificate (ServerAuth only, no Organization).
//!
//! Everything trustd serves with comes from its TLS directory, written by machined (see
//! [`material`]); SIGHUP re-reads it, so rotated serving certificates apply to new connections
//! while open ones carry on.
//!
//! What a node may not claim, beyond a CA, roles and client authentication, is listed in the
//! directory's `protected-names` (the control planes' names and addresses, `machine.certSANs`,
//! the endpoint's host); the signed certificate carries exactly the names that were checked.
//!
//! Limits: no rate limiting; the peer address is logged, not matched against the request (a
//! node may have addresses other than the one it connects from).

mod error;
pub mod material;
mod policy;
mod service;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::securityapi::security_service_server::SecurityServiceServer;
use tokio::signal::unix::{SignalKind, signal};

pub use error::TrustdError;

/// How trustd is run.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    version,
    about = "trustd: signs the serving certificates of joining nodes"
)]
pub struct Config {
    /// Address to listen on
    #[arg(long, default_value = "0.0.0.0:50001")]
    pub listen: SocketAddr,
    /// Directory with ca.crt/ca.key (issuing CA), accepted-cas.crt, server.crt/server.key, token,
    /// protected-names
    #[arg(long)]
    pub tls_dir: PathBuf,
    /// Lifetime of the certificates trustd signs, in seconds
    #[arg(long, default_value_t = 24 * 3600)]
    pub certificate_ttl_seconds: u64,
}

/// How long a stop waits for open connections to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(3);

/// Serves until SIGTERM or SIGINT (open connections get [`DRAIN_LIMIT`] to finish); SIGHUP
/// reloads the TLS directory.
pub async fn run(config: Config) -> Result<(), TrustdError> {
    let signal_error = |name: &'static str| move |source| TrustdError::Signal { name, source };
    let mut hangups = signal(SignalKind::hangup()).map_err(signal_error("SIGHUP"))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error("SIGTERM"))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error("SIGINT"))?;

    let state = Arc::new(material::Reloadable::load(config.tls_dir.clone())?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| TrustdError::Bind {
            address: config.listen,
            source,
        })?;
    tracing::info!(address = %config.listen, "listening");
    let service = service::Signer::new(
        Arc::clone(&state),
        Duration::from_secs(config.certificate_ttl_seconds),
    );
    let reloads = {
        let state = Arc::clone(&state);
        async move {
            while hangups.recv().await.is_some() {
                match state.reload() {
                    Ok(()) => tracing::info!("TLS directory reloaded"),
                    Err(error) => {
                        tracing::error!(%error, "reload failed: keeping the old material")
                    }
                }
            }
        }
    };
    let (stopping, stopped) = tokio::sync::oneshot::channel();
    let shutdown = async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("stopping");
        let _ = stopping.send(());
    };
    // Open connections get a moment to finish, not forever: a stop must not need SIGKILL.
    let drained = async {
        match stopped.await {
            Ok(()) => tokio::time::sleep(DRAIN_LIMIT).await,
            Err(_) => std::future::pending().await,
        }
    };
    let server = tonic::transport::Server::builder()
        .add_service(SecurityServiceServer::new(service))
        .serve_with_incoming_shutdown(tls::accept(listener, state), shutdown);
    tokio::select! {
        result = server => result.map_err(TrustdError::Serve),
        () = reloads => Ok(()),
        () = drained => {
            tracing::warn!(limit = ?DRAIN_LIMIT, "connections still open: stopping anyway");
            Ok(())
        }
    }
}
