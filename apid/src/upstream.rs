//! Connections to where calls go: machined's Unix socket (plaintext HTTP/2) and other nodes'
//! apid (mutual TLS on the remote port). One connection per upstream is kept and shared by all
//! calls (HTTP/2 multiplexes them); a closed one is replaced on next use. A node that cannot
//! be dialled leaves no trace, and at most [`MAX_NODES`] nodes are kept.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use crate::body::ProxyBody;
use crate::error::ApidError;

/// Upper bound for dialing another node (upstream's minimum connect timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Other nodes with a kept connection, at most.
pub(crate) const MAX_NODES: usize = 256;

/// The cached upstream connections of one apid.
#[derive(Debug)]
pub(crate) struct Upstreams {
    machined_socket: PathBuf,
    remote_port: u16,
    machined: Slot,
    nodes: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One upstream's cached connection.
#[derive(Debug)]
struct Slot {
    /// How errors name this upstream.
    name: Arc<str>,
    scheme: Scheme,
    authority: Authority,
    sender: Mutex<Option<SendRequest<ProxyBody>>>,
    /// Held while dialing, so that concurrent calls share one new connection.
    dialing: tokio::sync::Mutex<()>,
}

/// A ready connection to one upstream, for one call.
#[derive(Debug)]
pub(crate) struct Upstream {
    name: Arc<str>,
    sender: SendRequest<ProxyBody>,
    scheme: Scheme,
    authority: Authority,
}

impl Upstreams {
    pub fn new(machined_socket: PathBuf, remote_port: u16) -> Self {
        Upstreams {
            machined: Slot::new(
                "machined".into(),
                Scheme::HTTP,
                Authority::from_static("localhost"),
            ),
            machined_socket,
            remote_port,
            nodes: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to the local machined.
    pub async fn machined(&self) -> Result<Upstream, ApidError> {
        self.machined
            .get(|| async {
                let socket =
                    UnixStream::connect(&self.machined_socket)
                        .await
                        .map_err(|source| ApidError::Connect {
                            upstream: self.machined.name.to_string(),
                            source,
                        })?;
                handshake(socket, &self.machined.name).await
            })
            .await
    }

    /// The connection to `target`'s apid (a host name or IP address without port), using
    /// `tls` (the node's client certificate, trusting the accepted CAs).
    pub async fn node(&self, target: &str, tls: &Arc<ClientConfig>) -> Result<Upstream, ApidError> {
        let slot = self.node_slot(target)?;
        let port = self.remote_port;
        let upstream = slot
            .get(|| async {
                let server_name =
                    ServerName::try_from(target.to_owned()).map_err(|_| ApidError::BadTarget {
                        target: target.to_owned(),
                    })?;
                let dial = async {
                    let tcp = TcpStream::connect((target, port)).await?;
                    tcp.set_nodelay(true)?;
                    TlsConnector::from(tls.clone())
                        .connect(server_name, tcp)
                        .await
                };
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, dial)
                    .await
                    .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")))
                    .map_err(|source| ApidError::Connect {
                        upstream: slot.name.to_string(),
                        source,
                    })?;
                handshake(stream, &slot.name).await
            })
            .await;
        if upstream.is_err() {
            self.forget_node(target, &slot);
        }
        upstream
    }

    /// Drops `target`'s slot if it is still `slot` (a dial failed).
    fn forget_node(&self, target: &str, slot: &Arc<Slot>) {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        if nodes
            .get(target)
            .is_some_and(|kept| Arc::ptr_eq(kept, slot))
        {
            nodes.remove(target);
        }
    }

    /// Drops the cached connections to other nodes (after the certificates changed). Calls
    /// already running on them continue.
    pub fn forget_nodes(&self) {
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn node_slot(&self, target: &str) -> Result<Arc<Slot>, ApidError> {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = nodes.get(target) {
            return Ok(slot.clone());
        }
        if nodes.len() >= MAX_NODES {
            // Make room from slots with no open connection (none being dialled).
            nodes.retain(|_, slot| Arc::strong_count(slot) > 1 || slot.cached().is_some());
            if nodes.len() >= MAX_NODES {
                return Err(ApidError::TooManyUpstreams { max: MAX_NODES });
            }
        }
        let authority = match target.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.remote_port),
            _ => format!("{target}:{}", self.remote_port),
        };
        let parsed = authority.parse().map_err(|_| ApidError::BadTarget {
            target: target.to_owned(),
        })?;
        let slot = Arc::new(Slot::new(authority.into(), Scheme::HTTPS, parsed));
        nodes.insert(target.to_owned(), slot.clone());
        Ok(slot)
    }
}

impl Slot {
    fn new(name: Arc<str>, scheme: Scheme, authority: Authority) -> Self {
        Slot {
            name,
            scheme,
            authority,
            sender: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self) -> Option<SendRequest<ProxyBody>> {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|sender| !sender.is_closed())
            .cloned()
    }

    async fn get<F, Fut>(&self, dial: F) -> Result<Upstream, ApidError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SendRequest<ProxyBody>, ApidError>>,
    {
        let sender = match self.cached() {
            Some(sender) => sender,
            None => {
                let _dialing = self.dialing.lock().await;
                match self.cached() {
                    Some(sender) => sender,
                    None => {
                        // Boxed: dialing (TLS handshake included) is rare and its future is
                        // large; every call's future would otherwise carry its size.
                        let sender = Box::pin(dial()).await?;
                        *self.sender.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(sender.clone());
                        sender
                    }
                }
            }
        };
        Ok(Upstream {
            name: self.name.clone(),
            sender,
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
        })
    }
}

impl Upstream {
    /// Sends one call: `head` with its path kept and scheme and authority replaced by this
    /// upstream's; the response head arrives when the upstream answers.
    pub async fn send(
        mut self,
        mut head: http::request::Parts,
        body: ProxyBody,
    ) -> Result<Response<Incoming>, ApidError> {
        let path = head
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(self.scheme);
        uri.authority = Some(self.authority);
        uri.path_and_query = Some(path);
        head.uri = Uri::from_parts(uri).unwrap_or_default();
        let request = Request::from_parts(head, body);
        let result = async {
            self.sender.ready().await?;
            self.sender.send_request(request).await
        }
        .await;
        result.map_err(|source| ApidError::Upstream {
            upstream: self.name.to_string(),
            source,
        })
    }

    /// How errors name this upstream.
    pub fn name(&self) -> &str {
        &self.name
    }
}

async fn handshake<T>(io: T, upstream: &str) -> Result<SendRequest<ProxyBody>, ApidError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .map_err(|source| ApidError::Upstream {
            upstream: upstream.to_owned(),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upstream connection ended");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_node_that_cannot_be_dialled_leaves_no_slot() {
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let upstreams = Upstreams::new(PathBuf::from("/nonexistent"), closed_port);
        let tls = Arc::new(
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocols")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        );
        for target in ["127.0.0.1", "127.0.0.2", "127.0.0.1"] {
            let error = upstreams
                .node(target, &tls)
                .await
                .expect_err("nothing listens");
            assert!(matches!(error, ApidError::Connect { .. }), "{error}");
        }
        assert!(upstreams.nodes.lock().expect("lock").is_empty());
    }
}
