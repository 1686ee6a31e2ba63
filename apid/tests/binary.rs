//! The built `apid` binary: command line, serving, SIGHUP reload and SIGTERM.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::machined::Machined;
use support::{Pki, client_tls, free_port, ip, machine_client, path, temp_dir, tls_connect};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name}");
}

async fn server_serial(
    addr: SocketAddr,
    pki: &Pki,
    identity: &support::Identity,
) -> Option<String> {
    let tls = tls_connect(addr, client_tls(&pki.ca_crt, Some(identity)))
        .await
        .ok()?;
    let chain = tls.get_ref().1.peer_certificates()?;
    pki::CertificateInfo::from_der(&chain[0])
        .ok()
        .map(|info| info.serial)
}

async fn wait_for_serial(addr: SocketAddr, pki: &Pki, identity: &support::Identity, serial: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_serial(addr, pki, identity).await.as_deref() != Some(serial) {
        assert!(
            Instant::now() < deadline,
            "apid never presented serial {serial}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn binary_serves_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = temp_dir();
    let pki = Pki::new();
    let address = ip("127.0.40.2");
    let tls_dir = path(&dir, "tls");
    let first = pki.write_tls_dir(&tls_dir, address, true);
    let machined = Machined::start(&path(&dir, "machine.sock"), "local");
    let port = free_port(&[address]);
    let addr = SocketAddr::new(address, port);

    let mut child = Process(
        Command::new(env!("CARGO_BIN_EXE_apid"))
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--machined-socket")
            .arg(&machined.socket)
            .arg("--tls-dir")
            .arg(&tls_dir)
            .args(["--remote-port", &port.to_string(), "--local-name", "node-1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apid starts"),
    );
    let admin = pki.client(&["os:admin"]);
    let first_serial = pki::CertificateInfo::from_pem(&first.crt)
        .expect("cert")
        .serial;
    wait_for_serial(addr, &pki, &admin, &first_serial).await;

    let mut client = machine_client(addr, &pki.ca_crt, Some(&admin)).await;
    let reply = client.version(()).await.expect("Version").into_inner();
    assert_eq!(
        reply.messages[0].version.as_ref().map(|v| v.tag.as_str()),
        Some("local")
    );

    let second = pki.write_tls_dir(&tls_dir, address, true);
    let second_serial = pki::CertificateInfo::from_pem(&second.crt)
        .expect("cert")
        .serial;
    signal(&child.0, "HUP");
    wait_for_serial(addr, &pki, &admin, &second_serial).await;

    signal(&child.0, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "apid did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "apid exits cleanly: {status}");
}

#[test]
fn bad_tls_directory_fails_start_up_naming_the_file() {
    let dir = temp_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_apid"))
        .args([
            "--listen",
            "127.0.40.3:0",
            "--machined-socket",
            "/nonexistent.sock",
        ])
        .arg("--tls-dir")
        .arg(dir.path())
        .output()
        .expect("apid runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ca.crt"), "{stderr}");
}
