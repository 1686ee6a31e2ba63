//! trustd's figures, on the first node of `bench-node`: `Certificate` latency and signing
//! throughput on one connection, and the latency a joining worker sees (a new TLS connection
//! per request, as machined makes one).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use apiclient::{Client, Endpoint, TlsSettings};
use proto::securityapi::CertificateRequest;
use proto::securityapi::security_service_client::SecurityServiceClient;
use tonic::transport::Channel;

use crate::figures::{Figure, Unit};
use crate::node_bench::{latency, print_latency};

/// New-connection requests for the joining-worker figure.
const FRESH_CONNECTIONS: usize = 200;

pub async fn measure(generated: &Path, address: Ipv4Addr) -> anyhow::Result<Vec<Figure>> {
    let config = std::fs::read_to_string(generated.join("worker.yaml"))?;
    let config = machineconfig::Config::from_yaml(&config)?;
    let machine = config
        .v1alpha1
        .and_then(|c| c.machine)
        .context("worker.yaml has no machine section")?;
    let ca = machine.ca.and_then(|ca| ca.crt).context("no machine.ca")?;
    let token = machine.token;
    let key = pki::PrivateKey::generate_ed25519()?;
    let csr = pki::generate_csr(
        &key,
        &pki::CertificateRequest {
            common_name: Some("bench-worker".into()),
            subject_alt_names: pki::SubjectAltNames {
                dns_names: vec!["bench-worker".into()],
                ip_addresses: vec!["127.30.0.9".parse()?],
            },
            extended_key_usages: vec![pki::ExtendedKeyUsage::ServerAuth],
            ..pki::CertificateRequest::default()
        },
    )?;
    let tls = TlsSettings::server_only(&ca)?;
    let endpoint = Endpoint::parse(&format!("{address}:50001"))?;
    let connect = || {
        Client::connect(
            std::slice::from_ref(&endpoint),
            &tls,
            Duration::from_secs(5),
        )
    };
    let request = || {
        let mut request = tonic::Request::new(CertificateRequest {
            csr: csr.clone().into_bytes(),
        });
        if let Ok(value) = token.parse() {
            request.metadata_mut().insert("token", value);
        }
        request
    };
    let client = SecurityServiceClient::new(connect().await?.channel());

    println!("trustd (Ed25519 CA, release build)");
    let signing = latency(|| {
        let mut client: SecurityServiceClient<Channel> = client.clone();
        let request = request();
        async move { client.certificate(request).await.map(drop) }
    })
    .await?;
    print_latency("Certificate on one connection", &signing);

    let mut samples = Vec::with_capacity(FRESH_CONNECTIONS);
    for _ in 0..FRESH_CONNECTIONS {
        let start = Instant::now();
        let channel = connect().await?.channel();
        SecurityServiceClient::new(channel)
            .certificate(request())
            .await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    let fresh_p50 = samples[FRESH_CONNECTIONS / 2].as_secs_f64() * 1e6;
    println!(
        "  Certificate on a new TLS connection each (as a joining worker): p50 {fresh_p50:.0} µs, p99 {:.0} µs",
        samples[FRESH_CONNECTIONS * 99 / 100].as_secs_f64() * 1e6
    );
    let mut figures = signing
        .figures("node", "trustd `Certificate` on one connection")
        .to_vec();
    figures.push(Figure::new(
        "node",
        "trustd `Certificate` on a new TLS connection each (a joining worker), p50",
        fresh_p50,
        Unit::Micros,
    ));
    Ok(figures)
}
