//! The TLS boundary: which client certificates apid accepts, and reloading its certificates
//! (connections of a CA a reload drops are closed).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use proto::machine::LogsRequest;
use proto::machine::machine_service_client::MachineServiceClient;
use support::machined::{LOG_LINES, Machined};
use support::{
    Identity, Pki, RunningApid, channel, client_tls, config, free_port, ip, machine_client, path,
    temp_dir, tls_connect,
};

/// Calls Version as `identity`; any failure (handshake, HTTP/2 set-up or the call) is an error.
async fn version_as(addr: SocketAddr, ca: &str, identity: Option<&Identity>) -> Result<(), String> {
    let channel = channel(addr, client_tls(ca, identity))
        .await
        .map_err(|error| format!("connect: {error}"))?;
    MachineServiceClient::new(channel)
        .version(())
        .await
        .map(drop)
        .map_err(|status| format!("call: {status}"))
}

/// The serial of the certificate apid presents to a new connection.
async fn server_serial(addr: SocketAddr, ca: &str, identity: &Identity) -> String {
    let tls = tls_connect(addr, client_tls(ca, Some(identity)))
        .await
        .expect("TLS connection");
    let chain = tls.get_ref().1.peer_certificates().expect("server chain");
    pki::CertificateInfo::from_der(&chain[0])
        .expect("server certificate")
        .serial
}

#[tokio::test]
async fn only_client_auth_certificates_from_accepted_cas_get_in() {
    let dir = temp_dir();
    let pki = Pki::new();
    let address = ip("127.0.30.2");
    pki.write_tls_dir(&path(&dir, "tls"), address, false);
    let machined = Machined::start(&path(&dir, "machine.sock"), "local");
    let port = free_port(&[address]);
    let apid =
        RunningApid::start(config(address, port, &path(&dir, "tls"), &machined.socket)).await;
    let ca = pki.ca_crt.as_str();

    let admin = pki.client(&["os:admin"]);
    version_as(apid.addr, ca, Some(&admin))
        .await
        .expect("a valid admin certificate works");
    // A node whose clock is behind the client's (set back an hour) still takes a certificate
    // made just now; one that starts hours after the tolerance does not.
    let now = time::OffsetDateTime::now_utc();
    let valid_from = |hours| {
        pki.client_valid(
            &["os:admin"],
            pki::Validity {
                not_before: now + time::Duration::hours(hours),
                not_after: now + time::Duration::days(365),
            },
        )
    };
    version_as(apid.addr, ca, Some(&valid_from(1)))
        .await
        .expect("a certificate valid from an hour ahead of the node's clock");
    assert!(
        version_as(apid.addr, ca, Some(&valid_from(3)))
            .await
            .is_err(),
        "valid only from three hours ahead of the node's clock"
    );

    let calls_before = machined.calls().len();

    let no_certificate = version_as(apid.addr, ca, None).await;
    assert!(no_certificate.is_err(), "no client certificate must fail");

    let other_ca = Pki::new().client(&["os:admin"]);
    assert!(
        version_as(apid.addr, ca, Some(&other_ca)).await.is_err(),
        "foreign CA"
    );

    let now = time::OffsetDateTime::now_utc();
    let expired = pki.client_valid(
        &["os:admin"],
        pki::Validity {
            not_before: now - time::Duration::hours(2),
            not_after: now - time::Duration::hours(1),
        },
    );
    assert!(
        version_as(apid.addr, ca, Some(&expired)).await.is_err(),
        "expired"
    );

    let server_only = pki.server(address);
    assert!(
        version_as(apid.addr, ca, Some(&server_only)).await.is_err(),
        "server-auth only"
    );

    // Passes webpki's ClientAuth check but is not exactly [ClientAuth].
    let key = pki::PrivateKey::generate_ed25519().expect("key");
    let csr = pki::generate_csr(
        &key,
        &pki::CertificateRequest {
            common_name: Some("both".into()),
            roles: vec!["os:admin".into()],
            extended_key_usages: vec![
                pki::ExtendedKeyUsage::ClientAuth,
                pki::ExtendedKeyUsage::ServerAuth,
            ],
            ..Default::default()
        },
    )
    .expect("CSR");
    let both = Identity {
        crt: pki
            .authority
            .sign_csr(&csr, pki::Validity::from_now(pki::CLIENT_CERTIFICATE_TTL))
            .expect("signed"),
        key: key.to_pem(),
    };
    let info = pki::CertificateInfo::from_pem(&both.crt).expect("parsed");
    assert_eq!(
        info.extended_key_usages.len(),
        2,
        "fixture has two purposes"
    );
    assert!(
        version_as(apid.addr, ca, Some(&both)).await.is_err(),
        "ClientAuth + ServerAuth"
    );

    assert_eq!(
        machined.calls().len(),
        calls_before,
        "no refused caller reached machined"
    );
}

#[tokio::test]
async fn reload_switches_certificates_for_new_connections_only() {
    let dir = temp_dir();
    let pki = Pki::new();
    let address = ip("127.0.31.2");
    let tls_dir = path(&dir, "tls");
    let first = pki.write_tls_dir(&tls_dir, address, false);
    let machined = Machined::start(&path(&dir, "machine.sock"), "local");
    let port = free_port(&[address]);
    let apid = RunningApid::start(config(address, port, &tls_dir, &machined.socket)).await;
    let admin = pki.client(&["os:admin"]);
    let ca = pki.ca_crt.as_str();
    let first_serial = pki::CertificateInfo::from_pem(&first.crt)
        .expect("cert")
        .serial;
    assert_eq!(server_serial(apid.addr, ca, &admin).await, first_serial);

    let mut client = machine_client(apid.addr, ca, Some(&admin)).await;
    let mut logs = client
        .logs(LogsRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .expect("Logs -f")
        .into_inner();
    for _ in 0..LOG_LINES {
        logs.message().await.expect("line").expect("stream open");
    }

    // A broken directory is refused and the old certificates stay.
    std::fs::write(tls_dir.join("server.key"), "not a key").expect("write");
    let error = apid.reloader.reload().expect_err("broken key");
    assert!(error.to_string().contains("server.key"), "{error}");
    assert_eq!(server_serial(apid.addr, ca, &admin).await, first_serial);

    let second = pki.write_tls_dir(&tls_dir, address, false);
    apid.reloader.reload().expect("reload");
    let second_serial = pki::CertificateInfo::from_pem(&second.crt)
        .expect("cert")
        .serial;
    assert_ne!(first_serial, second_serial);
    assert_eq!(server_serial(apid.addr, ca, &admin).await, second_serial);
    version_as(apid.addr, ca, Some(&admin))
        .await
        .expect("new connections work");

    // The stream opened before the reload keeps flowing.
    for _ in 0..3 {
        let line = tokio::time::timeout(Duration::from_secs(5), logs.message())
            .await
            .expect("line within 5 s")
            .expect("no error")
            .expect("stream still open");
        assert!(String::from_utf8_lossy(&line.bytes).starts_with("local line"));
    }
}

/// A followed log of the apid at `addr`, as `identity`, its first lines read.
async fn follow(
    addr: SocketAddr,
    ca: &str,
    identity: Identity,
) -> tonic::Streaming<proto::common::Data> {
    let mut client = machine_client(addr, ca, Some(&identity)).await;
    let mut logs = client
        .logs(LogsRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .expect("Logs -f")
        .into_inner();
    for _ in 0..LOG_LINES {
        logs.message().await.expect("line").expect("stream open");
    }
    logs
}

#[tokio::test]
async fn a_reload_that_drops_a_ca_closes_the_connections_it_no_longer_accepts() {
    let dir = temp_dir();
    let old = Pki::new();
    let new = Pki::new();
    let address = ip("127.0.32.2");
    let tls_dir = path(&dir, "tls");
    old.write_tls_dir(&tls_dir, address, false);
    // During a rotation both CAs are accepted.
    let both = format!("{}{}", old.ca_crt, new.ca_crt);
    std::fs::write(tls_dir.join("ca.crt"), &both).expect("ca.crt");
    let machined = Machined::start(&path(&dir, "machine.sock"), "local");
    let port = free_port(&[address]);
    let apid = RunningApid::start(config(address, port, &tls_dir, &machined.socket)).await;

    let mut leaked = follow(apid.addr, &old.ca_crt, old.client(&["os:admin"])).await;
    let mut rotated = follow(apid.addr, &old.ca_crt, new.client(&["os:admin"])).await;

    // The old CA is dropped (the server certificate stays: clients trust it by the old CA).
    std::fs::write(tls_dir.join("ca.crt"), &new.ca_crt).expect("ca.crt");
    apid.reloader.reload().expect("reload");

    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = leaked.message().await {}
    })
    .await;
    assert!(ended.is_ok(), "a stream of the dropped CA still flows");
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(5), rotated.message())
            .await
            .expect("line within 5 s")
            .expect("no error")
            .expect("the new CA's stream still open");
    }
    let refused = version_as(apid.addr, &old.ca_crt, Some(&old.client(&["os:admin"]))).await;
    assert!(refused.is_err(), "a new connection with the dropped CA");
}
