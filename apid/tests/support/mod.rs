//! Shared test fixtures: a PKI, a machined stand-in on a Unix socket, in-process apid
//! instances, and mutual-TLS gRPC clients.

#![allow(dead_code)] // each test file uses a different part of the fixtures

pub mod machined;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apid::{Apid, Config, TlsReloader};
use hyper_util::rt::TokioIo;
use proto::machine::machine_service_client::MachineServiceClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint};

/// A certificate and key, PEM.
#[derive(Clone, Debug)]
pub struct Identity {
    pub crt: String,
    pub key: String,
}

impl From<pki::PemCertificateAndKey> for Identity {
    fn from(pair: pki::PemCertificateAndKey) -> Self {
        Identity {
            crt: pair.crt.expect("issued certificate"),
            key: pair.key.expect("issued key"),
        }
    }
}

/// A Talos CA that issues the certificates of a test.
pub struct Pki {
    pub ca_crt: String,
    pub authority: pki::CertificateAuthority,
}

impl Pki {
    pub fn new() -> Self {
        let ca =
            pki::generate_ca(pki::CaKind::Talos, pki::Validity::from_now(pki::CA_TTL)).expect("CA");
        Pki {
            ca_crt: ca.crt.clone().expect("CA certificate"),
            authority: pki::CertificateAuthority::from_pair(&ca).expect("CA loads"),
        }
    }

    pub fn client(&self, roles: &[&str]) -> Identity {
        self.client_valid(roles, pki::Validity::from_now(pki::CLIENT_CERTIFICATE_TTL))
    }

    pub fn client_valid(&self, roles: &[&str], validity: pki::Validity) -> Identity {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.authority
            .issue_client_certificate("test-client", &roles, validity)
            .expect("client certificate")
            .into()
    }

    pub fn server(&self, ip: IpAddr) -> Identity {
        let names = pki::SubjectAltNames {
            dns_names: vec!["apid.test".into()],
            ip_addresses: vec![ip],
        };
        self.authority
            .issue_server_certificate(
                "apid.test",
                &names,
                pki::Validity::from_now(pki::SERVER_CERTIFICATE_TTL),
            )
            .expect("server certificate")
            .into()
    }

    /// Writes a TLS directory for an apid at `ip`; with `forwarding`, also its
    /// `os:impersonator` client certificate.
    pub fn write_tls_dir(&self, dir: &Path, ip: IpAddr, forwarding: bool) -> Identity {
        std::fs::create_dir_all(dir).expect("tls dir");
        let server = self.server(ip);
        std::fs::write(dir.join("ca.crt"), &self.ca_crt).expect("ca.crt");
        std::fs::write(dir.join("server.crt"), &server.crt).expect("server.crt");
        std::fs::write(dir.join("server.key"), &server.key).expect("server.key");
        if forwarding {
            let client = self.client(&["os:impersonator"]);
            std::fs::write(dir.join("client.crt"), &client.crt).expect("client.crt");
            std::fs::write(dir.join("client.key"), &client.key).expect("client.key");
        }
        server
    }
}

/// An apid running in this process.
pub struct RunningApid {
    pub addr: SocketAddr,
    pub reloader: TlsReloader,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningApid {
    pub async fn start(config: Config) -> Self {
        let apid = Apid::bind(config).await.expect("apid binds");
        let addr = apid.local_addr();
        let reloader = apid.reloader();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(apid.serve(async {
            let _ = stopped.await;
        }));
        RunningApid {
            addr,
            reloader,
            stop: Some(stop),
            task,
        }
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("apid task");
    }
}

/// Settings of an apid at `ip:port` with its TLS directory and machined socket.
pub fn config(ip: IpAddr, port: u16, tls_dir: &Path, machined: &Path) -> Config {
    Config {
        listen: SocketAddr::new(ip, port),
        machined_socket: machined.to_owned(),
        tls_dir: tls_dir.to_owned(),
        maintenance: false,
        remote_port: port,
        local_names: vec![],
        max_connections: 4096,
        idle_timeout_seconds: 300,
    }
}

/// A port free on every given address right now.
pub fn free_port(ips: &[IpAddr]) -> u16 {
    loop {
        let first = std::net::TcpListener::bind((ips[0], 0)).expect("bind");
        let port = first.local_addr().expect("addr").port();
        if ips[1..]
            .iter()
            .all(|ip| std::net::TcpListener::bind((*ip, port)).is_ok())
        {
            return port;
        }
    }
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().expect("IP address")
}

/// A rustls client trusting `ca_pem`, presenting `identity` if given.
pub fn client_tls(ca_pem: &str, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.expect("CA PEM")).expect("CA added");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.crt.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate PEM");
            let key = pki::PrivateKey::from_pem(&identity.key).expect("key PEM");
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A raw TLS connection to `addr`, verifying the server as `addr`'s IP.
pub async fn tls_connect(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    TlsConnector::from(tls)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
}

/// A gRPC channel to the apid at `addr` over TLS.
pub async fn channel(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let connector = tower::service_fn(move |_: http::Uri| {
        let tls = tls.clone();
        async move { tls_connect(addr, tls).await.map(TokioIo::new) }
    });
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_with_connector(connector)
        .await
}

/// A MachineService client of the apid at `addr`, as `identity`, trusting `ca_pem`.
pub async fn machine_client(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<&Identity>,
) -> MachineServiceClient<Channel> {
    let channel = channel(addr, client_tls(ca_pem, identity))
        .await
        .expect("connects to apid");
    MachineServiceClient::new(channel)
}

/// A request carrying metadata `key` once per value.
pub fn with_metadata<T>(message: T, key: &'static str, values: &[&str]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for value in values {
        request
            .metadata_mut()
            .append(key, value.parse().expect("ASCII metadata"));
    }
    request
}

/// A temporary directory with a short path (Unix socket paths are limited to 108 bytes).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("apid")
        .tempdir_in("/tmp")
        .expect("temporary directory")
}

pub fn path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
