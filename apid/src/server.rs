//! Accepting connections: TLS handshake, the caller's roles from its certificate, and HTTP/2
//! serving of every call through [`crate::proxy`].
//!
//! At most [`Limits::max_connections`] connections are open at once (a connection beyond that
//! is closed at once); a client has [`HANDSHAKE_TIMEOUT`] for its TLS handshake; a connection
//! with no call in flight for [`Limits::idle_timeout`] is closed gracefully (and dropped
//! [`CLOSE_GRACE`] later if it has not gone by then); TCP keepalive finds peers that went away
//! without closing (HTTP/2 pings cost ≈ 0.1 ms per call in timer resets: measured). A TLS
//! reload closes at once, streams and all, the connections whose client certificate it no
//! longer accepts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use authz::Role;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::body::{BodyError, ProxyBody};
use crate::proxy;
use crate::state::Shared;
use crate::tls::certificate_roles;

/// Time a client gets to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (for example out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections open at once, at most, by default.
pub(crate) const MAX_CONNECTIONS: usize = 4096;
/// How long a connection may stay open with no call in flight, by default.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a connection closed for idleness may take to go away before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long a stopping apid lets calls in flight finish; streams that go on longer (`logs -f`,
/// event watches) are cut.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// TCP keepalive (done by the kernel, nothing per call): the first probe after this much
/// silence, then probes this far apart, this many unanswered ones and the peer counts as gone.
const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// What a client may hold of apid.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Connections open at once, at most.
    pub max_connections: usize,
    /// How long a connection may stay open with no call in flight.
    pub idle_timeout: Duration,
}

/// Accepts connections until `shutdown` completes, then lets the calls in flight finish
/// (each connection sends GOAWAY and closes once its calls are done) for at most
/// [`DRAIN_TIMEOUT`], and closes what is left: a reply machined sends while the node stops
/// (to Reboot, say) still reaches its client.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stop_signal) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match Arc::clone(&open).try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(serve_connection(
                            shared.clone(),
                            tcp,
                            peer,
                            limits.idle_timeout,
                            permit,
                            stop_signal.clone(),
                        ));
                    }
                    Err(_) => tracing::warn!(%peer, "too many connections: closed at once"),
                },
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::info!(
            open = connections.len(),
            "calls still in flight (streams) after the drain: closed"
        );
    }
    connections.shutdown().await;
}

async fn serve_connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    idle_timeout: Duration,
    _open: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
    // Subscribed before the handshake: a reload from here on re-checks this client.
    let mut reloads = shared.tls_reloads();
    let acceptor = TlsAcceptor::from(shared.server_tls());
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let chain: Vec<CertificateDer<'static>> = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let roles = if shared.maintenance {
        [Role::Reader].into_iter().collect()
    } else {
        chain.first().map(certificate_roles).unwrap_or_default()
    };
    tracing::debug!(%peer, roles = ?roles.roles().collect::<Vec<_>>(), "connection accepted");
    let roles = Arc::new(roles);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let service = {
        let in_flight = Arc::clone(&in_flight);
        service_fn(move |request| {
            let shared = shared.clone();
            let roles = roles.clone();
            let call = InFlight::start(&in_flight);
            async move {
                let response = proxy::handle(shared, roles, request).await;
                // A streamed reply counts as in flight until its body ends.
                Ok::<_, Infallible>(response.map(|body| TrackedBody { body, _call: call }))
            }
        })
    };
    let connection =
        http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    let mut idle_since = Instant::now();
    let mut closing = false;
    let result = loop {
        let wait = if closing { CLOSE_GRACE } else { idle_timeout };
        tokio::select! {
            result = connection.as_mut() => break result,
            Ok(()) = stopping.changed(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            Ok(()) = reloads.changed() => {
                if !reloads.borrow_and_update().accepts(&chain) {
                    tracing::info!(%peer, "client certificate no longer accepted: connection closed");
                    break Ok(());
                }
            }
            () = tokio::time::sleep_until(idle_since + wait) => {
                if in_flight.load(Ordering::Acquire) == 0 {
                    if closing {
                        // The client ignored the GOAWAY (or never spoke HTTP/2 at all).
                        tracing::debug!(%peer, "idle connection dropped");
                        break Ok(());
                    }
                    tracing::debug!(%peer, "idle connection closed");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                idle_since = Instant::now();
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// A reply's body, holding its call in flight until the body is dropped.
#[derive(Debug)]
struct TrackedBody {
    body: ProxyBody,
    _call: InFlight,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// One call in flight on a connection; dropped when the call's reply has ended.
#[derive(Debug)]
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
