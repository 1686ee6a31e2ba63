//! apid under load: many concurrent clients with mixed calls, a client that stops reading its
//! streams, and a flood of failing authentications. What is asserted holds whatever the
//! machine's speed: every call succeeds, nobody is stalled by the slow reader, apid's open files
//! return to where they were, and failing handshakes do not grow its memory. The figures
//! (latency, memory, descriptors) are printed; `cargo xtask bench-load` runs this test on a
//! release build with 1,000 connections and 10,000 failing handshakes.
//!
//! `LOAD_CONNECTIONS` and `LOAD_FAILED_AUTHS` set the sizes (CI: 200 and 2,000).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiclient::Client;
use pki::{CaKind, CertificateAuthority, Validity};
use proto::machine::{ListRequest, LogsRequest, ReadRequest};
use tests::Cluster;
use tokio::io::AsyncReadExt;

fn size(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Waits until apid holds at most `limit` open files (connections close asynchronously).
async fn settle_open_files(pid: u32, limit: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = open_files(pid);
        if open <= limit || Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn apid_holds_many_clients_slow_readers_and_failing_handshakes() {
    let connections = size("LOAD_CONNECTIONS", 200);
    let failed_auths = size("LOAD_FAILED_AUTHS", 2_000);
    // Each client connection is a file here too.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).unwrap();

    let cluster = Cluster::start(35, 1);
    let node = &cluster.nodes[0];
    let apid = node.apid_pid().unwrap();
    // A large file for streamed reads that nobody finishes.
    std::fs::write(node.state_dir.join("var/large.bin"), vec![7u8; 16 << 20]).unwrap();
    let talosconfig = talosconfig::Talosconfig::load(&cluster.talosconfig()).unwrap();
    let (name, context) = talosconfig.context(None).unwrap();
    let context = context.clone();
    let name = name.to_string();
    let endpoint = [node.address.to_string()];

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let idle_files = open_files(apid);
        let idle_rss = status_kib(apid, "VmRSS:");

        // The slow reader: a following log stream and a 16 MiB read, opened and never read.
        let slow = Client::from_context(&name, &context, &endpoint).await.unwrap();
        let mut slow_machine = slow.machine();
        let _follow = slow_machine
            .logs(LogsRequest {
                id: "apid".into(),
                follow: true,
                tail_lines: -1,
                ..LogsRequest::default()
            })
            .await
            .unwrap();
        let _read = slow_machine
            .read(ReadRequest {
                path: "/var/large.bin".into(),
            })
            .await
            .unwrap();

        // Many clients, each on its own connection, each making mixed calls.
        let started = Instant::now();
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            clients.push(Client::from_context(&name, &context, &endpoint).await.unwrap());
        }
        let connect_time = started.elapsed();
        let mut calls = tokio::task::JoinSet::new();
        for client in &clients {
            let mut machine = client.machine();
            calls.spawn(async move {
                let mut version_latencies = Vec::new();
                for _ in 0..3 {
                    let call = Instant::now();
                    machine.version(()).await?;
                    version_latencies.push(call.elapsed());
                    let mut list = machine
                        .list(ListRequest {
                            root: "/var".into(),
                            ..ListRequest::default()
                        })
                        .await?
                        .into_inner();
                    while list.message().await?.is_some() {}
                    let mut logs = machine
                        .logs(LogsRequest {
                            id: "apid".into(),
                            tail_lines: 20,
                            ..LogsRequest::default()
                        })
                        .await?
                        .into_inner();
                    while logs.message().await?.is_some() {}
                }
                Ok::<_, tonic::Status>(version_latencies)
            });
        }
        let mut latencies = Vec::new();
        while let Some(result) = calls.join_next().await {
            latencies.extend(result.unwrap().expect("every call succeeds under load"));
        }
        let load_time = started.elapsed() - connect_time;
        let loaded_files = open_files(apid);
        let loaded_rss = status_kib(apid, "VmRSS:");
        latencies.sort();
        drop(clients);

        // The slow reader is still open and stalls nobody.
        let other = Client::from_context(&name, &context, &endpoint).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), other.machine().version(()))
            .await
            .expect("a call beside the slow reader is answered")
            .unwrap();
        drop(other);
        drop(slow);
        let after_files = settle_open_files(apid, idle_files + 4).await;
        let after_rss = status_kib(apid, "VmRSS:");

        // Failing authentications: a client certificate from a CA the node does not trust.
        let foreign = pki::generate_ca(CaKind::Talos, Validity::from_now(pki::CA_TTL)).unwrap();
        let client = CertificateAuthority::from_pair(&foreign)
            .unwrap()
            .issue_client_certificate("intruder", &["os:admin".into()], Validity::from_now(time::Duration::hours(1)))
            .unwrap();
        let tls = Arc::new(intruder_tls(
            &context.credentials(&name).unwrap().ca_pem,
            client.crt.as_deref().unwrap(),
            client.key.as_deref().unwrap(),
        ));
        let address = std::net::SocketAddr::from((node.address, 50000));
        let before_auths = status_kib(apid, "VmRSS:");
        let started = Instant::now();
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut attempts = tokio::task::JoinSet::new();
        for worker in 0..16 {
            let tls = Arc::clone(&tls);
            let refused = Arc::clone(&refused);
            attempts.spawn(async move {
                for _ in (worker..failed_auths).step_by(16) {
                    if intrude(&tls, address).await {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
        while attempts.join_next().await.is_some() {}
        let auth_time = started.elapsed();
        let after_auths_files = settle_open_files(apid, idle_files + 4).await;
        let after_auths = status_kib(apid, "VmRSS:");
        let peak = status_kib(apid, "VmHWM:");

        println!("apid under load ({connections} connections, {failed_auths} failing handshakes)");
        println!(
            "  {connections} mTLS connections in {connect_time:.2?}; {} Version + {0} List + {0} Logs in {load_time:.2?}",
            latencies.len()
        );
        println!(
            "  Version under load: p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0)
        );
        println!(
            "  apid RSS: idle {:.1} MiB, loaded {:.1} MiB, after {:.1} MiB, peak {:.1} MiB",
            mib(idle_rss),
            mib(loaded_rss),
            mib(after_rss),
            mib(peak)
        );
        println!("  apid open files: idle {idle_files}, loaded {loaded_files}, after {after_files}");
        println!(
            "  {failed_auths} failing handshakes in {auth_time:.2?}: RSS {:.1} -> {:.1} MiB, open files after {after_auths_files}",
            mib(before_auths),
            mib(after_auths)
        );

        assert!(loaded_files >= connections, "connections held: {loaded_files}");
        assert!(after_files <= idle_files + 4, "descriptors leaked: {idle_files} -> {after_files}");
        assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), failed_auths);
        assert!(
            after_auths_files <= idle_files + 4,
            "descriptors leaked by failing handshakes: {idle_files} -> {after_auths_files}"
        );
        let grown = after_auths.saturating_sub(before_auths);
        assert!(grown < 16 * 1024, "failing handshakes grew apid by {:.1} MiB", mib(grown));
    });
}

/// A TLS client presenting a certificate of a foreign CA (trusting the node's CA).
fn intruder_tls(ca: &str, crt: &str, key: &str) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_slice_iter(crt.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    // Talos's key PEM labels are its own: read the key with pki, hand rustls its PKCS#8.
    let key = pki::PrivateKey::from_pem(key).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

/// One handshake with a foreign certificate; true when apid refused it (the connection ends
/// with an alert or is closed without serving anything).
async fn intrude(tls: &Arc<rustls::ClientConfig>, address: std::net::SocketAddr) -> bool {
    let Ok(tcp) = tokio::net::TcpStream::connect(address).await else {
        return false;
    };
    let name = rustls::pki_types::ServerName::from(address.ip());
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
    match connector.connect(name, tcp).await {
        // TLS 1.3: the client finishes first; the server's refusal arrives as the next read.
        Ok(mut stream) => {
            let mut byte = [0u8; 1];
            !matches!(
                tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await,
                Ok(Ok(n)) if n > 0
            )
        }
        Err(_) => true,
    }
}
