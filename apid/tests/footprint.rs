//! Memory goal: the apid binary stays under 20 MiB resident while relaying 100 concurrent
//! `logs -f` streams (half multiplexed on one connection, half on their own connections).

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::machine::LogsRequest;
use support::machined::Machined;
use support::{Pki, free_port, ip, machine_client, path, temp_dir};

const STREAMS: usize = 100;
const RSS_LIMIT_KIB: u64 = 20 * 1024;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_follow_streams_stay_under_20_mib() {
    let dir = temp_dir();
    let pki = Pki::new();
    let address = ip("127.0.41.2");
    let tls_dir = path(&dir, "tls");
    pki.write_tls_dir(&tls_dir, address, true);
    let machined = Machined::start(&path(&dir, "machine.sock"), "local");
    let addr = SocketAddr::new(address, free_port(&[address]));
    let child = Process(
        Command::new(env!("CARGO_BIN_EXE_apid"))
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--machined-socket")
            .arg(&machined.socket)
            .arg("--tls-dir")
            .arg(&tls_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apid starts"),
    );
    let admin = pki.client(&["os:admin"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while support::tls_connect(addr, support::client_tls(&pki.ca_crt, Some(&admin)))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "apid did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let shared = machine_client(addr, &pki.ca_crt, Some(&admin)).await;
    let mut readers = Vec::new();
    for index in 0..STREAMS {
        let mut client = if index % 2 == 0 {
            shared.clone()
        } else {
            machine_client(addr, &pki.ca_crt, Some(&admin)).await
        };
        let request = LogsRequest {
            follow: true,
            ..Default::default()
        };
        let mut stream = client.logs(request).await.expect("Logs -f").into_inner();
        readers.push(tokio::spawn(async move {
            let mut received = 0usize;
            while let Ok(Some(_)) = stream.message().await {
                received += 1;
            }
            received
        }));
    }
    // Lines arrive every 50 ms on every stream; let them flow for a while.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resident = resident_kib(child.0.id());
    assert!(
        readers.iter().all(|reader| !reader.is_finished()),
        "every stream is still open"
    );
    assert!(
        resident < RSS_LIMIT_KIB,
        "apid uses {resident} KiB with {STREAMS} streams (limit {RSS_LIMIT_KIB} KiB)"
    );
    for reader in readers {
        reader.abort();
    }
}
