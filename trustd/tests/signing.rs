#![allow(clippy::unwrap_used)]
//! The real trustd binary on a loopback address: token checks, the node policy, signing, and
//! SIGHUP reloads of its serving certificate.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiclient::{Client, Endpoint, TlsSettings};
use pki::{
    CaKind, CertificateAuthority, CertificateInfo, CertificateRequest, ExtendedKeyUsage,
    PemCertificateAndKey, PrivateKey, SubjectAltNames, Validity,
};
use proto::securityapi::CertificateRequest as RpcRequest;
use proto::securityapi::security_service_client::SecurityServiceClient;
use rustls::pki_types::pem::PemObject as _;
use tonic::Code;

const TOKEN: &str = "abcdef.0123456789abcdef";

struct Trustd {
    child: Child,
    address: SocketAddr,
    ca: PemCertificateAndKey,
    dir: tempfile::TempDir,
}

impl Drop for Trustd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(temporary, dir.join(name)).unwrap();
}

fn write_serving_certificate(dir: &Path, ca: &PemCertificateAndKey, ip: IpAddr) {
    let authority = CertificateAuthority::from_pair(ca).unwrap();
    let names = SubjectAltNames {
        dns_names: vec![],
        ip_addresses: vec![ip],
    };
    let server = authority
        .issue_server_certificate("cp-1", &names, Validity::from_now(time::Duration::hours(1)))
        .unwrap();
    write(dir, "server.crt", server.crt.as_deref().unwrap());
    write(dir, "server.key", server.key.as_deref().unwrap());
}

fn start(ip: [u8; 4]) -> Trustd {
    let ip = IpAddr::from(ip);
    let address = SocketAddr::new(ip, 50001);
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::generate_ca(CaKind::Talos, Validity::from_now(pki::CA_TTL)).unwrap();
    let ca_crt = ca.crt.as_deref().unwrap();
    write(dir.path(), "ca.crt", ca_crt);
    write(dir.path(), "ca.key", ca.key.as_deref().unwrap());
    write(dir.path(), "accepted-cas.crt", ca_crt);
    write(dir.path(), "token", TOKEN);
    write(dir.path(), "protected-names", &format!("{ip}\ncp-1\n"));
    write_serving_certificate(dir.path(), &ca, ip);
    let child = Command::new(env!("CARGO_BIN_EXE_trustd"))
        .args(["--listen", &address.to_string(), "--tls-dir"])
        .arg(dir.path())
        .args(["--certificate-ttl-seconds", "60"])
        .spawn()
        .unwrap();
    let trustd = Trustd {
        child,
        address,
        ca,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "trustd did not listen on {address}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    trustd
}

impl Trustd {
    async fn client(&self) -> SecurityServiceClient<tonic::transport::Channel> {
        let tls = TlsSettings::server_only(self.ca.crt.as_deref().unwrap()).unwrap();
        let endpoint = Endpoint::parse(&self.address.to_string()).unwrap();
        let client = Client::connect(&[endpoint], &tls, Duration::from_secs(5))
            .await
            .unwrap();
        SecurityServiceClient::new(client.channel())
    }

    async fn ask(&self, csr: &str, token: Option<&str>) -> Result<(String, String), tonic::Status> {
        let mut request = tonic::Request::new(RpcRequest {
            csr: csr.as_bytes().to_vec(),
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("token", token.parse().unwrap());
        }
        let reply = self.client().await.certificate(request).await?.into_inner();
        Ok((
            String::from_utf8(reply.ca).unwrap(),
            String::from_utf8(reply.crt).unwrap(),
        ))
    }
}

fn csr(request: CertificateRequest) -> String {
    let key = PrivateKey::generate_ed25519().unwrap();
    pki::generate_csr(&key, &request).unwrap()
}

fn node_request(dns: &str, ip: &str) -> CertificateRequest {
    CertificateRequest {
        common_name: Some(dns.to_string()),
        subject_alt_names: SubjectAltNames {
            dns_names: vec![dns.to_string()],
            ip_addresses: vec![ip.parse().unwrap(), "127.0.0.1".parse().unwrap()],
        },
        extended_key_usages: vec![ExtendedKeyUsage::ServerAuth],
        ..CertificateRequest::default()
    }
}

#[tokio::test]
async fn a_node_with_the_token_gets_a_server_certificate() {
    let trustd = start([127, 51, 0, 2]);
    let (ca, crt) = trustd
        .ask(&csr(node_request("worker-1", "127.51.0.5")), Some(TOKEN))
        .await
        .unwrap();
    let ca_crt = trustd.ca.crt.as_deref().unwrap();
    assert_eq!(ca, ca_crt);
    pki::verify_signed_by(&crt, ca_crt).unwrap();
    let info = CertificateInfo::from_pem(&crt).unwrap();
    assert_eq!(info.extended_key_usages, [ExtendedKeyUsage::ServerAuth]);
    assert!(info.organizations.is_empty());
    assert!(!info.is_ca);
    assert_eq!(info.dns_names, ["worker-1"]);
    assert_eq!(
        info.not_after - info.not_before,
        time::Duration::seconds(60) + pki::CLOCK_SKEW
    );
}

#[tokio::test]
async fn wrong_or_missing_tokens_are_unauthenticated() {
    let trustd = start([127, 51, 0, 3]);
    let request = csr(node_request("worker-1", "127.51.0.5"));
    let wrong = trustd
        .ask(&request, Some("zzzzzz.zzzzzzzzzzzzzzzz"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(wrong.message(), "invalid token");
    let missing = trustd.ask(&request, None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.message(), "missing token");
}

#[tokio::test]
async fn requests_for_more_than_a_node_may_have_are_refused() {
    let trustd = start([127, 51, 0, 4]);
    let malformed = trustd.ask("not a CSR", Some(TOKEN)).await.unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed:?}");
    assert!(malformed.message().contains("certificate signing request"));

    let mut roles = node_request("worker-1", "127.51.0.5");
    roles.roles = vec!["os:admin".into()];
    let mut client = node_request("worker-1", "127.51.0.5");
    client.extended_key_usages = vec![ExtendedKeyUsage::ClientAuth];
    let key = PrivateKey::generate_ed25519().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["worker-1".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_request = params
        .serialize_request(key.key_pair())
        .unwrap()
        .pem()
        .unwrap();
    let cases = [
        (csr(roles), "os:admin"),
        (csr(client), "ClientAuth"),
        (csr(node_request("cp-1", "127.51.0.5")), "\"cp-1\" belongs"),
        (
            csr(node_request("worker-1", "127.51.0.4")),
            "127.51.0.4 belongs",
        ),
        (ca_request, "certificate authority"),
    ];
    for (request, reason) in cases {
        let refused = trustd.ask(&request, Some(TOKEN)).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert!(refused.message().contains(reason), "{refused:?}");
    }
}

/// The serial of the certificate `address` serves, from a fresh TLS handshake.
async fn serving_serial(address: SocketAddr, ca_pem: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::from(address.ip());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let leaf = &tls.get_ref().1.peer_certificates().unwrap()[0];
    CertificateInfo::from_der(leaf).unwrap().serial
}

#[tokio::test]
async fn sighup_serves_a_new_certificate_to_new_connections() {
    let trustd = start([127, 51, 0, 6]);
    let ca_pem = trustd.ca.crt.clone().unwrap();
    let before = serving_serial(trustd.address, &ca_pem).await;
    write_serving_certificate(trustd.dir.path(), &trustd.ca, trustd.address.ip());
    let pid = nix::unistd::Pid::from_raw(i32::try_from(trustd.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = serving_serial(trustd.address, &ca_pem).await;
        if now != before {
            break;
        }
        assert!(Instant::now() < deadline, "still serving serial {before}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Signing still works with the reloaded material.
    trustd
        .ask(&csr(node_request("worker-2", "127.51.0.7")), Some(TOKEN))
        .await
        .unwrap();

    // The protected names are reloaded too: a control plane's certSAN and another control
    // plane's address, learnt later, are refused from then on (an audit finding: any token
    // holder could get a serving certificate for them and impersonate apid).
    write(
        trustd.dir.path(),
        "protected-names",
        "127.51.0.6\napi.cluster.example\n127.51.0.8\n",
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let claims = [
        node_request("api.cluster.example", "127.51.0.7"),
        node_request("worker-2", "127.51.0.8"),
    ];
    for claim in claims {
        let request = csr(claim);
        loop {
            match trustd.ask(&request, Some(TOKEN)).await {
                Err(refused) => {
                    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
                    assert!(refused.message().contains("belongs to the control plane"));
                    break;
                }
                Ok(_) => assert!(Instant::now() < deadline, "still signed after SIGHUP"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
