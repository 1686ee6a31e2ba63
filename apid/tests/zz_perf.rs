mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use proto::machine::LogsRequest;
use proto::machine::machine_service_client::MachineServiceClient;
use support::machined::Machined;
use support::{Pki, free_port, ip, machine_client, path, temp_dir};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with("VmRSS")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf() {
    let dir = temp_dir();
    let pki = Pki::new();
    let address = ip("127.0.50.2");
    let tls_dir = path(&dir, "tls");
    pki.write_tls_dir(&tls_dir, address, true);
    let machined = Machined::start(&path(&dir, "machine.sock"), "local");
    let port = free_port(&[address]);
    let addr = SocketAddr::new(address, port);
    let mut child = Command::new(env!("CARGO_BIN_EXE_apid"))
        .arg("--listen").arg(addr.to_string())
        .arg("--machined-socket").arg(&machined.socket)
        .arg("--tls-dir").arg(&tls_dir)
        .stdout(Stdio::null()).stderr(Stdio::inherit())
        .spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id();
    println!("RSS at start: {} KiB", rss_kib(pid));

    let socket = machined.socket.clone();
    let direct = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let socket = socket.clone();
            async move { tokio::net::UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await.unwrap();
    let mut direct = MachineServiceClient::new(direct);
    let admin = pki.client(&["os:admin"]);
    let mut via = machine_client(addr, &pki.ca_crt, Some(&admin)).await;
    for _ in 0..200 { direct.version(()).await.unwrap(); via.version(()).await.unwrap(); }
    let n = 3000;
    for round in 0..2 {
        let t = Instant::now();
        for _ in 0..n { direct.version(()).await.unwrap(); }
        let d = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n { via.version(()).await.unwrap(); }
        let v = t.elapsed() / n;
        println!("round {round}: direct {d:?} via apid {v:?} ratio {:.2}", v.as_secs_f64() / d.as_secs_f64());
    }
    println!("RSS after Version: {} KiB", rss_kib(pid));

    let mut streams = Vec::new();
    for i in 0..100 {
        // half on one connection, half on separate ones
        let mut client = if i % 2 == 0 { via.clone() } else { machine_client(addr, &pki.ca_crt, Some(&admin)).await };
        let s = client.logs(LogsRequest { follow: true, ..Default::default() }).await.unwrap().into_inner();
        streams.push(tokio::spawn(async move { let mut s = s; let mut c = 0u64; while let Ok(Some(_)) = s.message().await { c += 1; } c }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("RSS with 100 logs -f: {} KiB", rss_kib(pid));
    let mut fan = Vec::new();
    for _ in 0..100 {
        let mut client = via.clone();
        let s = client.logs(support::with_metadata(LogsRequest { follow: true, ..Default::default() }, "nodes", &["127.0.50.2"])).await.unwrap().into_inner();
        fan.push(tokio::spawn(async move { let mut s = s; while let Ok(Some(_)) = s.message().await {} }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("RSS with 100 logs -f + 100 fan-out logs -f: {} KiB", rss_kib(pid));
    for s in streams { s.abort(); }
    for s in fan { s.abort(); }
    child.kill().unwrap();
}
