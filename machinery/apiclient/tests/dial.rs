//! Dials a real tonic server over rustls on 127.0.0.1: mutual TLS from a talosconfig context,
//! node metadata, endpoint failover, CA and server-name checks, and insecure mode.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apiclient::{ApiClientError, Client, Endpoint, NodeTarget, TlsSettings};
use pki::{CaKind, CertificateAuthority, PemCertificateAndKey, SubjectAltNames, Validity};
use proto::machine::{Version, VersionInfo, VersionResponse};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::server::NamedService;
use tonic::transport::server::Connected;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// A CA and what it issued for one test.
struct Pki {
    ca: PemCertificateAndKey,
    authority: CertificateAuthority,
}

impl Pki {
    fn new() -> Pki {
        let ca = pki::generate_ca(CaKind::Talos, Validity::from_now(pki::CA_TTL)).expect("CA");
        let authority = CertificateAuthority::from_pair(&ca).expect("authority");
        Pki { ca, authority }
    }

    fn ca_pem(&self) -> &str {
        self.ca.crt.as_deref().expect("CA certificate")
    }

    fn server(&self, dns_names: &[&str], ip_addresses: &[&str]) -> PemCertificateAndKey {
        let sans = SubjectAltNames {
            dns_names: dns_names.iter().map(|n| n.to_string()).collect(),
            ip_addresses: ip_addresses
                .iter()
                .map(|ip| ip.parse().expect("IP address"))
                .collect(),
        };
        self.authority
            .issue_server_certificate(
                "apid",
                &sans,
                Validity::from_now(pki::SERVER_CERTIFICATE_TTL),
            )
            .expect("server certificate")
    }

    fn client_context(&self, endpoints: Vec<String>) -> talosconfig::Context {
        let client = self
            .authority
            .issue_client_certificate(
                "admin",
                &["os:admin".to_string()],
                Validity::from_now(pki::CLIENT_CERTIFICATE_TTL),
            )
            .expect("client certificate");
        talosconfig::Context::new(
            endpoints,
            self.ca_pem(),
            client.crt.as_deref().expect("crt"),
            client.key.as_deref().expect("key"),
        )
    }
}

/// The client certificate the server saw, handed to handlers as tonic connect info.
#[derive(Clone, Debug)]
struct Peer {
    certificate: Option<Vec<u8>>,
}

struct ServerIo(TlsStream<TcpStream>);

impl Connected for ServerIo {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        let (_, connection) = self.0.get_ref();
        Peer {
            certificate: connection
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|c| c.to_vec()),
        }
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Answers `machine.MachineService/Version` with what it saw: the tag is the client
/// certificate's subject (or `anonymous`), `sha` the `node` values, `built` the `nodes` values.
#[derive(Clone, Debug)]
struct VersionEcho;

impl NamedService for VersionEcho {
    const NAME: &'static str = "machine.MachineService";
}

type BoxedResponse =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for VersionEcho {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxedResponse;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != "/machine.MachineService/Version" {
            return Box::pin(async {
                Ok(tonic::Status::unimplemented("only Version").into_http())
            });
        }
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(VersionEcho, request).await)
        })
    }
}

type VersionReply =
    Pin<Box<dyn Future<Output = Result<tonic::Response<VersionResponse>, tonic::Status>> + Send>>;

impl tonic::server::UnaryService<()> for VersionEcho {
    type Response = VersionResponse;
    type Future = VersionReply;

    fn call(&mut self, request: tonic::Request<()>) -> Self::Future {
        let subject = request
            .extensions()
            .get::<Peer>()
            .and_then(|peer| peer.certificate.clone())
            .map(|der| {
                let (_, certificate) = X509Certificate::from_der(&der).expect("client certificate");
                certificate.subject().to_string()
            })
            .unwrap_or_else(|| "anonymous".to_string());
        let values = |key: &str| -> String {
            request
                .metadata()
                .get_all(key)
                .iter()
                .map(|v| v.to_str().expect("ascii").to_string())
                .collect::<Vec<_>>()
                .join("|")
        };
        let reply = VersionResponse {
            messages: vec![Version {
                version: Some(VersionInfo {
                    tag: subject,
                    sha: values("node"),
                    built: values("nodes"),
                    ..Default::default()
                }),
                ..Default::default()
            }],
        };
        Box::pin(async move { Ok(tonic::Response::new(reply)) })
    }
}

/// Serves [`VersionEcho`] on a fresh 127.0.0.1 port with `server` as its certificate; client
/// certificates chaining to `client_ca` are required when it is given.
async fn serve(server: &PemCertificateAndKey, client_ca: Option<&str>) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(server.crt.as_deref().expect("crt").as_bytes())
            .collect::<Result<_, _>>()
            .expect("server chain");
    let key = pki::PrivateKey::from_pem(server.key.as_deref().expect("key")).expect("server key");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.as_bytes()).expect("client CA"))
                .expect("client CA root");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<ServerIo>>(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    let _ = sender.send(Ok(ServerIo(stream))).await;
                }
            });
        }
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(VersionEcho)
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(receiver)),
    );
    addr
}

/// A port that accepts TCP connections and then never says anything.
async fn silent_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    addr
}

/// Calls Version through `client` for `target`: (tag, node values, nodes values).
async fn version(
    client: &Client,
    target: &NodeTarget,
) -> Result<(String, String, String), ApiClientError> {
    let reply = client
        .machine()
        .version(target.request(())?)
        .await?
        .into_inner();
    let info = reply.messages[0].version.clone().expect("version info");
    Ok((info.tag, info.sha, info.built))
}

#[tokio::test]
async fn talosconfig_dial_presents_the_client_certificate() {
    let pki = Pki::new();
    let addr = serve(&pki.server(&[], &["127.0.0.1"]), Some(pki.ca_pem())).await;
    let context = pki.client_context(vec![addr.to_string()]);

    let client = Client::from_context("test", &context, &[])
        .await
        .expect("connect");
    assert_eq!(client.endpoint().to_string(), addr.to_string());
    let (subject, node, nodes) = version(&client, &NodeTarget::Endpoint)
        .await
        .expect("Version");
    assert!(subject.contains("CN=admin"), "{subject}");
    assert!(subject.contains("O=os:admin"), "{subject}");
    assert_eq!((node.as_str(), nodes.as_str()), ("", ""));
}

#[tokio::test]
async fn node_and_nodes_metadata_reach_the_server() {
    let pki = Pki::new();
    let addr = serve(&pki.server(&[], &["127.0.0.1"]), Some(pki.ca_pem())).await;
    let context = pki.client_context(vec![addr.to_string()]);
    let client = Client::from_context("test", &context, &[])
        .await
        .expect("connect");

    let one = NodeTarget::for_nodes(&["10.5.0.2".to_string()]);
    let (_, node, nodes) = version(&client, &one).await.expect("Version");
    assert_eq!((node.as_str(), nodes.as_str()), ("10.5.0.2", ""));

    let several = NodeTarget::for_nodes(&["10.5.0.2".to_string(), "10.5.0.3".to_string()]);
    let (_, node, nodes) = version(&client, &several).await.expect("Version");
    assert_eq!((node.as_str(), nodes.as_str()), ("", "10.5.0.2|10.5.0.3"));
}

#[tokio::test]
async fn endpoint_overrides_replace_the_context_endpoints() {
    let pki = Pki::new();
    let addr = serve(&pki.server(&[], &["127.0.0.1"]), Some(pki.ca_pem())).await;
    let unused = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed = unused.local_addr().expect("address");
    drop(unused);
    let context = pki.client_context(vec![closed.to_string()]);

    let error = Client::from_context("test", &context, &[])
        .await
        .expect_err("nothing listens on the context's endpoint");
    assert!(error.to_string().contains(&closed.to_string()), "{error}");

    let client = Client::from_context("test", &context, &[addr.to_string()])
        .await
        .expect("override");
    assert!(version(&client, &NodeTarget::Endpoint).await.is_ok());
}

#[tokio::test]
async fn a_silent_endpoint_times_out_and_the_next_one_is_used() {
    let pki = Pki::new();
    let addr = serve(&pki.server(&[], &["127.0.0.1"]), Some(pki.ca_pem())).await;
    let silent = silent_port().await;
    let context = pki.client_context(vec![]);
    let tls = TlsSettings::mutual(&context.credentials("test").expect("credentials")).expect("tls");
    let endpoints = [
        Endpoint::parse(&silent.to_string()).expect("endpoint"),
        Endpoint::parse(&addr.to_string()).expect("endpoint"),
    ];

    let started = std::time::Instant::now();
    let client = Client::connect(&endpoints, &tls, Duration::from_millis(500))
        .await
        .expect("second endpoint");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(client.endpoint(), &endpoints[1]);
    assert!(version(&client, &NodeTarget::Endpoint).await.is_ok());

    let error = Client::connect(&endpoints[..1], &tls, Duration::from_millis(300))
        .await
        .expect_err("silent endpoint alone");
    let text = error.to_string();
    assert!(text.contains(&silent.to_string()), "{text}");
    assert!(text.contains("no TLS handshake within"), "{text}");
}

#[tokio::test]
async fn a_server_from_another_ca_is_refused() {
    let server_pki = Pki::new();
    let client_pki = Pki::new();
    let addr = serve(
        &server_pki.server(&[], &["127.0.0.1"]),
        Some(client_pki.ca_pem()),
    )
    .await;
    let context = client_pki.client_context(vec![addr.to_string()]);

    let error = Client::from_context("test", &context, &[])
        .await
        .expect_err("unknown server CA");
    let text = error.to_string();
    assert!(
        text.starts_with("rpc error: code = Unavailable desc = connection error: "),
        "{text}"
    );
    assert!(text.contains("TLS handshake with"), "{text}");
    // Both CAs are named like Talos CAs, so the issuer is found by name and its signature fails.
    assert!(text.contains("invalid peer certificate"), "{text}");
    assert!(!text.contains("transport error"), "{text}");
}

#[tokio::test]
async fn an_ip_endpoint_must_match_an_ip_san() {
    let pki = Pki::new();
    let addr = serve(&pki.server(&["localhost"], &[]), Some(pki.ca_pem())).await;

    let by_ip = pki.client_context(vec![addr.to_string()]);
    let error = Client::from_context("test", &by_ip, &[])
        .await
        .expect_err("no IP SAN");
    assert!(
        error
            .to_string()
            // Quoted inside upstream's `desc = "…"`, hence the escaped quotes.
            .contains("certificate not valid for name \\\"127.0.0.1\\\""),
        "{error}"
    );

    let by_name = pki.client_context(vec![format!("localhost:{}", addr.port())]);
    let client = Client::from_context("test", &by_name, &[])
        .await
        .expect("DNS SAN matches");
    assert!(version(&client, &NodeTarget::Endpoint).await.is_ok());
}

#[tokio::test]
async fn insecure_mode_talks_to_a_server_of_unknown_ca() {
    let pki = Pki::new();
    let addr = serve(&pki.server(&[], &["127.0.0.1"]), None).await;

    let endpoint = Endpoint::parse(&addr.to_string()).expect("endpoint");
    let client = Client::insecure(&endpoint).await.expect("insecure connect");
    let (subject, _, _) = version(&client, &NodeTarget::Endpoint)
        .await
        .expect("Version");
    assert_eq!(subject, "anonymous");

    let strict = Pki::new().client_context(vec![addr.to_string()]);
    assert!(Client::from_context("test", &strict, &[]).await.is_err());
}

#[tokio::test]
async fn insecure_mode_can_pin_the_server_key() {
    let pki = Pki::new();
    let server = pki.server(&[], &["127.0.0.1"]);
    let addr = serve(&server, None).await;
    let der = CertificateDer::from_pem_slice(server.crt.as_deref().expect("crt").as_bytes())
        .expect("PEM");
    let own = apiclient::SpkiFingerprint::of_certificate(&der).expect("fingerprint");
    let endpoint = Endpoint::parse(&addr.to_string()).expect("endpoint");

    let client = Client::insecure_pinned(&endpoint, &[own])
        .await
        .expect("pinned key matches");
    assert!(version(&client, &NodeTarget::Endpoint).await.is_ok());

    let other = apiclient::SpkiFingerprint::parse(&"00".repeat(32)).expect("fingerprint");
    let error = Client::insecure_pinned(&endpoint, &[other])
        .await
        .expect_err("key not pinned");
    let text = error.to_string();
    assert!(text.contains("TLS handshake with"), "{text}");
    assert!(
        text.contains(&format!(
            "server certificate fingerprint {own} does not match any of the accepted fingerprints"
        )),
        "{text}"
    );
}
