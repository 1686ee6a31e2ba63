//! timed figures against a real chronyd on loopback (measure-only; the clock is never changed):
//! time from process start to first sync, the SNTP round trip, and timed's idle RSS.
//!
//! Run: `cargo bench -p timed --bench sync`.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // shared with the tests; the bench uses part of it
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Chrony, Timed};

/// Run sizes: full under `cargo bench` (which passes `--bench`), a quick smoke run under
/// `cargo test --all-targets`.
fn sizes() -> (usize, usize, Duration) {
    if std::env::args().any(|arg| arg == "--bench") {
        (10, 1000, Duration::from_secs(2))
    } else {
        (1, 20, Duration::from_millis(100))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn kib_of(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let (sync_runs, queries, idle) = sizes();
    let chrony = Chrony::start();

    // Time to first sync: from spawning timed to its status stream reporting synced.
    let mut first_sync = Vec::new();
    let mut idle_rss = Vec::new();
    for run in 0..sync_runs {
        let started = Instant::now();
        let timed = Timed::start(&["--server", &chrony.server, "--poll-interval", "64"]).await;
        let mut client = timed.timed().await;
        let mut stream = client.watch_status(()).await.unwrap().into_inner();
        while !stream.message().await.unwrap().unwrap().synced {}
        first_sync.push(started.elapsed());
        if run == 0 {
            // Idle: synced, next poll a minute away, one client connected.
            tokio::time::sleep(idle).await;
            idle_rss.push((kib_of(timed.pid(), "VmRSS:"), kib_of(timed.pid(), "VmHWM:")));
        }
    }
    first_sync.sort();

    // One SNTP exchange with chronyd, through timed's query code.
    let spec = timed::query::ServerSpec::parse(&chrony.server).unwrap();
    let mut wall = Vec::with_capacity(queries);
    let mut delay = Vec::with_capacity(queries);
    for _ in 0..queries {
        let started = Instant::now();
        let sample = timed::query::query(&spec, Duration::from_secs(1))
            .await
            .unwrap();
        wall.push(started.elapsed());
        delay.push(Duration::from_nanos(sample.delay_nanos.unsigned_abs()));
    }
    wall.sort();
    delay.sort();

    println!("timed vs chronyd on 127.0.0.1 (measure-only)");
    println!(
        "time to first sync (spawn -> synced), {sync_runs} runs: p50 {}  min {}  max {}",
        ms(percentile(&first_sync, 0.5)),
        ms(first_sync[0]),
        ms(first_sync[first_sync.len() - 1])
    );
    println!(
        "SNTP query (socket, send, recv, checks), {queries} queries: p50 {}  p99 {}",
        ms(percentile(&wall, 0.5)),
        ms(percentile(&wall, 0.99))
    );
    println!(
        "SNTP round-trip delay (T4-T1)-(T3-T2): p50 {}  p99 {}",
        ms(percentile(&delay, 0.5)),
        ms(percentile(&delay, 0.99))
    );
    let (rss, hwm) = idle_rss[0];
    println!("timed idle RSS: {rss} KiB (peak {hwm} KiB)");
}
