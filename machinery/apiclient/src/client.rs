//! Connecting to apid: dial endpoints in order (each attempt bounded), gRPC over HTTP/2 + TLS.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use proto::machine::machine_service_client::MachineServiceClient;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::Channel;

use crate::endpoint::Endpoint;
use crate::error::{ApiClientError, error_chain, go_io_text};
use crate::tls::{FingerprintMismatch, TlsSettings};

/// How long one endpoint may take to accept TCP and finish the TLS handshake. A TCP connect to a
/// forwarded port can succeed before anything listens behind it, so the handshake is bounded too.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest gRPC message sent or accepted (upstream's `GRPCMaxMessageSize`).
pub const MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;

/// A connection to one apid. Cheap to clone; calls may run concurrently.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    endpoint: Endpoint,
}

impl Client {
    /// Connects to the first of `endpoints` that completes a TLS handshake within
    /// `connect_timeout`; the others are tried in order after a failure.
    pub async fn connect(
        endpoints: &[Endpoint],
        tls: &TlsSettings,
        connect_timeout: Duration,
    ) -> Result<Client, ApiClientError> {
        if endpoints.is_empty() {
            return Err(ApiClientError::NoEndpoints);
        }
        let mut failures = Vec::new();
        for endpoint in endpoints {
            match connect_one(endpoint, tls, connect_timeout).await {
                Ok(channel) => {
                    return Ok(Client {
                        channel,
                        endpoint: endpoint.clone(),
                    });
                }
                Err(reason) => failures.push((endpoint.to_string(), reason)),
            }
        }
        Err(ApiClientError::Connect { failures })
    }

    /// Connects with mutual TLS using the talosconfig context `context` (named `name` in
    /// errors). `endpoint_overrides` (from `--endpoints`) replace the context's endpoints when
    /// not empty.
    pub async fn from_context(
        name: &str,
        context: &talosconfig::Context,
        endpoint_overrides: &[String],
    ) -> Result<Client, ApiClientError> {
        let texts = if endpoint_overrides.is_empty() {
            &context.endpoints
        } else {
            endpoint_overrides
        };
        let endpoints = texts
            .iter()
            .map(|text| Endpoint::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = TlsSettings::mutual(&context.credentials(name)?)?;
        Client::connect(&endpoints, &tls, DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Connects to one node in maintenance mode (see [`TlsSettings::insecure`]).
    pub async fn insecure(endpoint: &Endpoint) -> Result<Client, ApiClientError> {
        Client::connect(
            std::slice::from_ref(endpoint),
            &TlsSettings::insecure()?,
            DEFAULT_CONNECT_TIMEOUT,
        )
        .await
    }

    /// Connects to one node in maintenance mode, accepting only a server whose key is one of
    /// `fingerprints` (see [`TlsSettings::insecure_pinned`]; none: any server).
    pub async fn insecure_pinned(
        endpoint: &Endpoint,
        fingerprints: &[crate::SpkiFingerprint],
    ) -> Result<Client, ApiClientError> {
        Client::connect(
            std::slice::from_ref(endpoint),
            &TlsSettings::insecure_pinned(fingerprints)?,
            DEFAULT_CONNECT_TIMEOUT,
        )
        .await
    }

    /// The endpoint this client is connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The gRPC channel, for the clients of other services.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A `machine.MachineService` client on this connection, with the 32 MiB message limit.
    pub fn machine(&self) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(self.channel())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

/// Opens the channel eagerly so that an unreachable endpoint is noticed here; the reason of a
/// failure is the whole error chain as text.
async fn connect_one(
    endpoint: &Endpoint,
    tls: &TlsSettings,
    connect_timeout: Duration,
) -> Result<Channel, String> {
    let dialer = TlsDialer {
        endpoint: endpoint.clone(),
        tls: tls.clone(),
        timeout: connect_timeout,
    };
    // The dialer does TLS itself: tonic must not (it refuses `https` without its own TLS).
    let uri = format!("http://{endpoint}");
    let channel = tonic::transport::Endpoint::from_shared(uri)
        .map_err(|e| error_chain(&e))?
        .connect_timeout(connect_timeout)
        .connect_with_connector(dialer)
        .await
        .map_err(|e| dial_failure(&e))?;
    Ok(channel)
}

/// The reason a connection failed: from our own dial error when tonic wraps one (its generic
/// "transport error" adds nothing), else the whole chain.
fn dial_failure(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(ours) = e.downcast_ref::<ApiClientError>() {
            return error_chain(ours);
        }
        current = e.source();
    }
    error_chain(error)
}

/// Dials one endpoint: TCP, then the TLS handshake with the endpoint's host as server name.
#[derive(Clone, Debug)]
struct TlsDialer {
    endpoint: Endpoint,
    tls: TlsSettings,
    timeout: Duration,
}

type Dialing =
    Pin<Box<dyn Future<Output = Result<TokioIo<TlsStream<TcpStream>>, ApiClientError>> + Send>>;

impl tower::Service<http::Uri> for TlsDialer {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = ApiClientError;
    type Future = Dialing;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move {
            let endpoint = dialer.endpoint.to_string();
            tokio::time::timeout(dialer.timeout, dialer.dial())
                .await
                .map_err(|_| ApiClientError::DialTimeout {
                    endpoint,
                    timeout: dialer.timeout,
                })?
        })
    }
}

impl TlsDialer {
    async fn dial(&self) -> Result<TokioIo<TlsStream<TcpStream>>, ApiClientError> {
        let server_name = self.endpoint.server_name()?;
        let dial_error = |stage: &'static str| {
            let endpoint = self.endpoint.to_string();
            move |source| ApiClientError::Dial {
                endpoint,
                stage,
                source,
            }
        };
        // Worded as Go's net package words it: `dial tcp HOST:PORT: connect: connection refused`.
        let tcp = TcpStream::connect((self.endpoint.host(), self.endpoint.port()))
            .await
            .map_err(|error| {
                let text = format!("connect: {}", go_io_text(&error));
                dial_error("dial tcp")(std::io::Error::new(error.kind(), text))
            })?;
        tcp.set_nodelay(true)
            .map_err(dial_error("setting TCP_NODELAY for"))?;
        let stream = match TlsConnector::from(self.tls.client_config())
            .connect(server_name, tcp)
            .await
        {
            Ok(stream) => stream,
            Err(error) => {
                if let Some(mismatch) = FingerprintMismatch::in_handshake_error(&error) {
                    return Err(ApiClientError::NotPinned {
                        endpoint: self.endpoint.to_string(),
                        reason: mismatch.to_string(),
                    });
                }
                return Err(dial_error("TLS handshake with")(error));
            }
        };
        Ok(TokioIo::new(stream))
    }
}
