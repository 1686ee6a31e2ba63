//! Node commands run as a user runs them, against a fake apid on 127.0.0.1 that speaks mutual
//! TLS and answers like apid does: one element per node with `metadata.hostname` for `nodes`,
//! a bare element for `node`, `metadata.error` for a node that failed.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pki::{CaKind, CertificateAuthority, SubjectAltNames, Validity};
use proto::common::{Data, Metadata};
use proto::machine::{
    LogsRequest, MemInfo, Memory, MemoryResponse, MountStat, Mounts, MountsResponse, Version,
    VersionInfo, VersionResponse,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::transport::server::Connected;

/// The nodes a call is for, as apid reads them: `nodes` values, else the `node` value.
fn requested_nodes(metadata: &MetadataMap) -> (Vec<String>, bool) {
    let values = |key: &str| -> Vec<String> {
        metadata
            .get_all(key)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    };
    let nodes = values("nodes");
    if nodes.is_empty() {
        (values("node"), false)
    } else {
        (nodes, true)
    }
}

/// One reply element per node as apid's fan-out builds it; node `bad` fails. With `node` (or
/// nothing), one element without metadata.
fn fan_out<T: Default + HasMetadata>(metadata: &MetadataMap, answer: impl Fn(&str) -> T) -> Vec<T> {
    let (nodes, many) = requested_nodes(metadata);
    if !many {
        return vec![answer(nodes.first().map(String::as_str).unwrap_or("local"))];
    }
    nodes
        .iter()
        .map(|node| {
            let (mut element, error) = if node == "bad" {
                (T::default(), "connection refused".to_string())
            } else {
                (answer(node), String::new())
            };
            element.set_metadata(Metadata {
                hostname: node.clone(),
                error,
                status: None,
            });
            element
        })
        .collect()
}

trait HasMetadata {
    fn set_metadata(&mut self, metadata: Metadata);
}

impl HasMetadata for Version {
    fn set_metadata(&mut self, metadata: Metadata) {
        self.metadata = Some(metadata);
    }
}

impl HasMetadata for Memory {
    fn set_metadata(&mut self, metadata: Metadata) {
        self.metadata = Some(metadata);
    }
}

impl HasMetadata for Mounts {
    fn set_metadata(&mut self, metadata: Metadata) {
        self.metadata = Some(metadata);
    }
}

impl HasMetadata for Data {
    fn set_metadata(&mut self, metadata: Metadata) {
        self.metadata = Some(metadata);
    }
}

type Reply<T> = Pin<Box<dyn Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send>>;

/// A unary handler from a function of the request metadata.
struct Unary<F>(F);

impl<R, F> tonic::server::UnaryService<()> for Unary<F>
where
    F: Fn(&MetadataMap) -> Result<R, tonic::Status>,
    R: Send + 'static,
{
    type Response = R;
    type Future = Reply<R>;

    fn call(&mut self, request: tonic::Request<()>) -> Self::Future {
        let reply = (self.0)(request.metadata()).map(tonic::Response::new);
        Box::pin(async move { reply })
    }
}

/// `Kubeconfig`: a real admin kubeconfig of a freshly generated cluster `demo`, as the gzip
/// tar machined streams, cut into 100-byte chunks.
struct KubeconfigRpc;

impl tonic::server::ServerStreamingService<()> for KubeconfigRpc {
    type Response = Data;
    type ResponseStream = DataStream;
    type Future = Reply<DataStream>;

    fn call(&mut self, _request: tonic::Request<()>) -> Self::Future {
        let bundle = pki::SecretsBundle::generate().unwrap();
        let spec = machineconfig::generate::ClusterSpec::new("demo", "https://10.5.0.2:6443");
        let config = machineconfig::generate::controlplane(&bundle, &spec).unwrap();
        let archive =
            kubernetes::admin_kubeconfig_tar_gz(&config, time::Duration::hours(1)).unwrap();
        let chunks: Vec<Result<Data, tonic::Status>> = archive
            .chunks(100)
            .map(|chunk| {
                Ok(Data {
                    metadata: None,
                    bytes: chunk.to_vec(),
                })
            })
            .collect();
        Box::pin(async move { Ok(tonic::Response::new(tokio_stream::iter(chunks))) })
    }
}

/// `Logs`: two lines per node, the second split across two chunks.
struct Logs;

type DataStream = tokio_stream::Iter<std::vec::IntoIter<Result<Data, tonic::Status>>>;

impl tonic::server::ServerStreamingService<LogsRequest> for Logs {
    type Response = Data;
    type ResponseStream = DataStream;
    type Future = Reply<DataStream>;

    fn call(&mut self, request: tonic::Request<LogsRequest>) -> Self::Future {
        let id = request.get_ref().id.clone();
        let mut chunks = Vec::new();
        for piece in [
            format!("{id} started\n{id} ready"),
            " to serve\n".to_string(),
        ] {
            chunks.extend(fan_out(request.metadata(), |_| Data {
                metadata: None,
                bytes: piece.clone().into_bytes(),
            }));
        }
        let stream = tokio_stream::iter(chunks.into_iter().map(Ok).collect::<Vec<_>>());
        Box::pin(async move { Ok(tonic::Response::new(stream)) })
    }
}

fn grpc<T, U>() -> tonic::server::Grpc<tonic_prost::ProstCodec<T, U>>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
}

#[derive(Clone, Debug)]
struct FakeApid;

impl NamedService for FakeApid {
    const NAME: &'static str = "machine.MachineService";
}

type HttpReply =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for FakeApid {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = HttpReply;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        match request.uri().path() {
            "/machine.MachineService/Version" => Box::pin(async move {
                let version = Unary(|metadata: &MetadataMap| {
                    Ok(VersionResponse {
                        messages: fan_out(metadata, |node| Version {
                            version: Some(VersionInfo {
                                tag: "v1.14.0".into(),
                                sha: format!("for-{node}"),
                                os: "linux".into(),
                                arch: "amd64".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                    })
                });
                Ok(grpc().unary(version, request).await)
            }),
            "/machine.MachineService/Memory" => Box::pin(async move {
                let memory = Unary(|metadata: &MetadataMap| {
                    Ok(MemoryResponse {
                        messages: fan_out(metadata, |_| Memory {
                            metadata: None,
                            meminfo: Some(MemInfo {
                                memtotal: 2048 * 1024,
                                memfree: 1024 * 1024,
                                memavailable: 1536 * 1024,
                                ..Default::default()
                            }),
                        }),
                    })
                });
                Ok(grpc().unary(memory, request).await)
            }),
            "/machine.MachineService/Mounts" => Box::pin(async move {
                let mounts = Unary(|metadata: &MetadataMap| {
                    Ok(MountsResponse {
                        messages: fan_out(metadata, |_| Mounts {
                            metadata: None,
                            stats: vec![
                                MountStat {
                                    filesystem: "/dev/vda6".into(),
                                    size: 4 << 30,
                                    available: 3 << 30,
                                    mounted_on: "/var".into(),
                                },
                                MountStat {
                                    filesystem: "tmpfs".into(),
                                    size: 1 << 20,
                                    available: 1 << 20,
                                    mounted_on: "/run".into(),
                                },
                            ],
                        }),
                    })
                });
                Ok(grpc().unary(mounts, request).await)
            }),
            "/machine.MachineService/Kubeconfig" => {
                Box::pin(async move { Ok(grpc().server_streaming(KubeconfigRpc, request).await) })
            }
            "/machine.MachineService/Logs" => {
                Box::pin(async move { Ok(grpc().server_streaming(Logs, request).await) })
            }
            _ => Box::pin(async {
                Ok(tonic::Status::permission_denied("not authorized").into_http())
            }),
        }
    }
}

struct ServerIo(TlsStream<TcpStream>);

impl Connected for ServerIo {
    type ConnectInfo = ();

    fn connect_info(&self) {}
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

/// Starts the fake apid and writes a talosconfig for it (context `test`, no nodes).
async fn fake_apid(dir: &Path) -> (SocketAddr, PathBuf) {
    let ca = pki::generate_ca(CaKind::Talos, Validity::from_now(pki::CA_TTL)).unwrap();
    let authority = CertificateAuthority::from_pair(&ca).unwrap();
    let sans = SubjectAltNames {
        dns_names: vec![],
        ip_addresses: vec!["127.0.0.1".parse().unwrap()],
    };
    let server = authority
        .issue_server_certificate(
            "apid",
            &sans,
            Validity::from_now(pki::SERVER_CERTIFICATE_TTL),
        )
        .unwrap();
    let client = authority
        .issue_client_certificate(
            "admin",
            &["os:admin".to_string()],
            Validity::from_now(pki::CLIENT_CERTIFICATE_TTL),
        )
        .unwrap();
    let ca_pem = ca.crt.clone().unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let chain = CertificateDer::pem_slice_iter(server.crt.as_deref().unwrap().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = pki::PrivateKey::from_pem(server.key.as_deref().unwrap()).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<ServerIo>>(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    let _ = sender.send(Ok(ServerIo(stream))).await;
                }
            });
        }
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(FakeApid)
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(receiver)),
    );

    let context = talosconfig::Context::new(
        vec![addr.to_string()],
        &ca_pem,
        client.crt.as_deref().unwrap(),
        client.key.as_deref().unwrap(),
    );
    let mut talosconfig = talosconfig::Talosconfig::default();
    talosconfig.add("test", context).unwrap();
    talosconfig.use_context("test").unwrap();
    let path = dir.join("talosconfig");
    std::fs::write(&path, talosconfig.to_yaml()).unwrap();
    (addr, path)
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

async fn talosctl(talosconfig: &Path, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_talosctl"))
        .arg("--talosconfig")
        .arg(talosconfig)
        .args(args)
        .env_remove("TALOSCONFIG")
        .output()
        .await
        .expect("talosctl runs");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_of_one_node_is_labelled_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, talosconfig) = fake_apid(dir.path()).await;

    let run = talosctl(&talosconfig, &["version", "-n", "10.5.0.2"]).await;
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.starts_with("Client:\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "Server:\n\tNODE:        10.5.0.2\n\tTag:         v1.14.0\n\tSHA:         for-10.5.0.2\n"
        ),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_json_prints_one_protojson_line_per_node_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (_, talosconfig) = fake_apid(dir.path()).await;

    let run = talosctl(&talosconfig, &["version", "--json", "-n", "a,b"]).await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "{\"metadata\":{\"hostname\":\"a\"},\"version\":{\"tag\":\"v1.14.0\",\"sha\":\"for-a\",\
         \"os\":\"linux\",\"arch\":\"amd64\"}}\n\
         {\"metadata\":{\"hostname\":\"b\"},\"version\":{\"tag\":\"v1.14.0\",\"sha\":\"for-b\",\
         \"os\":\"linux\",\"arch\":\"amd64\"}}\n"
    );

    let run = talosctl(&talosconfig, &["version", "--short", "-n", "a"]).await;
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(concat!(
            "Client:\ntalos-rs v",
            env!("CARGO_PKG_VERSION"),
            "\nServer:\n\tNODE:        a\n\tTag:         v1.14.0\n"
        )),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes_print_successes_and_report_the_failed_node() {
    let dir = tempfile::tempdir().unwrap();
    let (_, talosconfig) = fake_apid(dir.path()).await;

    let run = talosctl(&talosconfig, &["version", "-n", "10.5.0.2,bad,10.5.0.3"]).await;
    assert!(!run.success);
    assert!(
        run.stdout.contains("\tNODE:        10.5.0.2\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\tNODE:        10.5.0.3\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("NODE:        bad"), "{}", run.stdout);
    assert_eq!(run.stderr, "error from node bad: connection refused\n");

    let run = talosctl(
        &talosconfig,
        &["memory", "--nodes", "10.5.0.2", "-n", "10.5.0.3"],
    )
    .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "NODE       TOTAL   USED   FREE   SHARED   BUFFERS   CACHE   AVAILABLE\n\
         10.5.0.2   2048    1024   1024   0        0         0       1536\n\
         10.5.0.3   2048    1024   1024   0        0         0       1536\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_several_nodes_are_prefixed_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_, talosconfig) = fake_apid(dir.path()).await;

    let run = talosctl(&talosconfig, &["logs", "apid", "-n", "a,b"]).await;
    assert!(run.success, "{}", run.stderr);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "a: apid ready to serve",
            "a: apid started",
            "b: apid ready to serve",
            "b: apid started"
        ]
    );

    let single = talosctl(&talosconfig, &["logs", "apid", "-n", "a"]).await;
    assert!(single.success, "{}", single.stderr);
    assert_eq!(single.stdout, "apid started\napid ready to serve\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_errors_show_the_grpc_code_and_missing_nodes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, talosconfig) = fake_apid(dir.path()).await;

    let run = talosctl(&talosconfig, &["processes", "-n", "10.5.0.2"]).await;
    assert!(!run.success);
    assert_eq!(
        run.stderr,
        "error from node 10.5.0.2: rpc error: code = PermissionDenied desc = not authorized\n"
    );

    let run = talosctl(&talosconfig, &["memory"]).await;
    assert!(!run.success);
    assert_eq!(
        run.stderr,
        "error: nodes are not set for the command: please use `--nodes` flag or configuration \
         file to set the nodes to run the command against\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_is_fetched_written_and_merged() {
    let dir = tempfile::tempdir().unwrap();
    let (_, talosconfig) = fake_apid(dir.path()).await;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let out_arg = out.to_str().unwrap();

    let run = talosctl(&talosconfig, &["kubeconfig", out_arg, "-n", "10.5.0.2"]).await;
    assert!(run.success, "{}", run.stderr);
    let path = out.join("kubeconfig");
    let text = std::fs::read_to_string(&path).unwrap();
    let first = kubernetes::Kubeconfig::from_yaml(&text, "written").unwrap();
    assert_eq!(first.current_context, "admin@demo");
    assert_eq!(first.clusters[0].cluster.server, "https://10.5.0.2:6443");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A second fetch is another cluster CA: merged under renamed entries.
    let run = talosctl(&talosconfig, &["kubeconfig", out_arg, "-n", "10.5.0.2"]).await;
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("renamed cluster \"demo\" -> \"demo-1\""),
        "{}",
        run.stdout
    );
    let merged = std::fs::read_to_string(&path).unwrap();
    let merged = kubernetes::Kubeconfig::from_yaml(&merged, "merged").unwrap();
    assert_eq!(merged.current_context, "admin@demo-1");
    assert_eq!(merged.contexts.len(), 2);

    // Without merging, an existing file needs --force.
    let run = talosctl(
        &talosconfig,
        &["kubeconfig", out_arg, "--merge=false", "-n", "10.5.0.2"],
    )
    .await;
    assert!(!run.success);
    assert!(
        run.stderr.contains("use --force to overwrite"),
        "{}",
        run.stderr
    );
    let run = talosctl(
        &talosconfig,
        &["kubeconfig", out_arg, "-m=false", "-f", "-n", "10.5.0.2"],
    )
    .await;
    assert!(run.success, "{}", run.stderr);
    let replaced = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        kubernetes::Kubeconfig::from_yaml(&replaced, "replaced")
            .unwrap()
            .contexts
            .len(),
        1
    );

    let run = talosctl(&talosconfig, &["kubeconfig", out_arg, "-n", "a,b"]).await;
    assert!(!run.success);
    assert!(run.stderr.contains("multiple nodes"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diskfree_lists_each_nodes_volumes_in_upstreams_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (_, talosconfig) = fake_apid(dir.path()).await;

    let run = talosctl(&talosconfig, &["df", "-n", "a,bad,b"]).await;
    assert!(!run.success);
    assert_eq!(
        run.stdout,
        "NODE   VOLUME      FILESYSTEM   SIZE     USED     AVAILABLE   USAGE   MOUNT POINT\n\
         a      EPHEMERAL   /dev/vda6    4.0GiB   1.0GiB   3.0GiB      25%     /var\n\
         b      EPHEMERAL   /dev/vda6    4.0GiB   1.0GiB   3.0GiB      25%     /var\n"
    );
    assert_eq!(run.stderr, "error from node bad: connection refused\n");

    let run = talosctl(&talosconfig, &["diskfree", "STATE", "-n", "a"]).await;
    assert!(!run.success);
    assert_eq!(
        run.stderr,
        "error from node a: volume \"STATE\" not mounted\n"
    );
}
