//! `cargo xtask bench-node`: the node API's figures on three dev-mode nodes (release builds):
//! Version latency and throughput through apid against a direct call on machined's socket,
//! fan-out to three nodes against one, and the RSS of machined and apid idle and with 100
//! concurrent `logs -f` streams; whole `talosctl version`, `--help` and completion processes; the
//! CPU each of one idle node's daemons uses, and the memory of each after boot, after 1,000 API
//! calls and at the end; the resource watch figures ([`crate::watch_bench`]); trustd's
//! signing figures ([`crate::trustd_bench`]) and etcd's
//! ([`crate::etcd_bench`]).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use apiclient::{Client, NodeTarget};
use proto::machine::LogsRequest;
use proto::machine::machine_service_client::MachineServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::figures::{Figure, Unit};

const BENCH: &str = "node";

/// Calls per latency figure.
const CALLS: usize = 2000;
/// Concurrent callers for the throughput figure.
const CONCURRENCY: usize = 16;
/// Concurrent `logs -f` streams for the memory figure.
const STREAMS: usize = 100;
/// Whole-process `talosctl version` runs.
const CLI_RUNS: usize = 20;
/// How long a node idles for the idle CPU figure.
const IDLE: Duration = Duration::from_secs(60);
/// API calls between the two memory snapshots.
const MEMORY_CALLS: usize = 1000;

/// Three nodes, stopped (SIGTERM) when dropped.
struct Nodes {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.children {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let _ = child.wait();
        }
    }
}

pub fn run(bin: &Path, out: &Path) -> anyhow::Result<Vec<Figure>> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out)?;
    let status = Command::new(bin.join("talosctl"))
        .args(["gen", "config", "bench", "https://127.30.0.2:6443"])
        // The watch figures edit the config as text: plain YAML, as before the comments.
        .args(["--with-docs=false", "--with-examples=false", "-o"])
        .arg(out)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("gen config failed");
    }
    let addresses: Vec<Ipv4Addr> = (2..=4).map(|i| Ipv4Addr::new(127, 30, 0, i)).collect();
    let mut nodes = Nodes {
        children: Vec::new(),
        dir: out.to_path_buf(),
    };
    for address in &addresses {
        let state = out.join(address.to_string());
        std::fs::create_dir_all(state.join("system/state"))?;
        std::fs::copy(
            out.join("controlplane.yaml"),
            state.join("system/state/config.yaml"),
        )?;
        nodes.children.push(
            Command::new(bin.join("machined"))
                .arg("--state-dir")
                .arg(&state)
                .arg("--api-address")
                .arg(format!("{address}:50000"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
    }
    let mut figures = tokio::runtime::Runtime::new()?.block_on(measure(&nodes, &addresses))?;
    figures.extend(cli_latency(bin, out, addresses[0])?);
    figures.extend(idle_cpu(nodes.children[0].id())?);
    Ok(figures)
}

/// Wall time of whole talosctl processes against the first node: `version`, `--help`, and the
/// shell completion of a resource type and of a remote path (both ask the node).
fn cli_latency(bin: &Path, dir: &Path, node: Ipv4Addr) -> anyhow::Result<Vec<Figure>> {
    let talosconfig = dir.join("talosconfig");
    let node = node.to_string();
    for what in ["endpoint", "node"] {
        let status = Command::new(bin.join("talosctl"))
            .arg("--talosconfig")
            .arg(&talosconfig)
            .args(["config", what, &node])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("talosctl config {what} failed: {status}");
        }
    }
    let completion = |typed: &'static [&'static str]| {
        let mut command = Command::new(bin.join("talosctl"));
        command
            .arg("--")
            .arg("talosctl")
            .args(typed)
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", "2")
            .env("_CLAP_IFS", "\n")
            .env("TALOSCONFIG", &talosconfig);
        command
    };
    let mut version = Command::new(bin.join("talosctl"));
    version
        .arg("--talosconfig")
        .arg(&talosconfig)
        .arg("version");
    let mut help = Command::new(bin.join("talosctl"));
    help.arg("--help");
    let mut figures = Vec::new();
    let cases = [
        ("talosctl version", version),
        ("talosctl --help", help),
        ("completion of `get memb`", completion(&["get", "memb"])),
        ("completion of `list /pr`", completion(&["list", "/pr"])),
    ];
    for (label, mut command) in cases {
        let mut walls = Vec::with_capacity(CLI_RUNS);
        for _ in 0..CLI_RUNS {
            let started = Instant::now();
            let status = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            walls.push(started.elapsed());
            if !status.success() {
                bail!("{label} failed: {status}");
            }
        }
        walls.sort();
        let median = walls[CLI_RUNS / 2].as_secs_f64() * 1e3;
        println!(
            "  {label}, whole process ({CLI_RUNS} runs): median {median:.1} ms, max {:.1} ms",
            walls[CLI_RUNS - 1].as_secs_f64() * 1e3
        );
        let figure = Figure::new(
            BENCH,
            format!("{label}, whole process, median of {CLI_RUNS}"),
            median,
            Unit::Millis,
        );
        figures.push(if label == "talosctl version" {
            figure.at_most(30.0)
        } else {
            figure
        });
    }
    Ok(figures)
}

/// CPU that machined `pid` and each process below it (its daemons) use over [`IDLE`] with no
/// calls, per daemon and together.
fn idle_cpu(pid: u32) -> anyhow::Result<Vec<Figure>> {
    std::thread::sleep(Duration::from_secs(2));
    let daemons = daemons(pid)?;
    let before: Vec<u64> = daemons
        .iter()
        .map(|(_, pid)| crate::shipping_bench::cpu_ticks(*pid).unwrap_or(0))
        .collect();
    std::thread::sleep(IDLE);
    let percent = |ticks: u64| {
        ticks as f64 / crate::shipping_bench::ticks_per_second() / IDLE.as_secs_f64() * 100.0
    };
    let mut total = 0;
    let mut parts = Vec::with_capacity(daemons.len());
    let mut figures = Vec::with_capacity(daemons.len() + 1);
    for ((name, pid), before) in daemons.iter().zip(before) {
        let used = crate::shipping_bench::cpu_ticks(*pid)
            .unwrap_or(before)
            .saturating_sub(before);
        total += used;
        parts.push(format!("{name} {:.2} %", percent(used)));
        figures.push(Figure::new(
            BENCH,
            format!("idle node, {name}'s CPU over {} s", IDLE.as_secs()),
            percent(used),
            Unit::Percent,
        ));
    }
    println!(
        "  idle node over {} s: {:.2} % of one core ({})",
        IDLE.as_secs(),
        percent(total),
        parts.join(", ")
    );
    figures.insert(
        0,
        Figure::new(
            BENCH,
            format!(
                "idle node, CPU of all its daemons over {} s (% of one core)",
                IDLE.as_secs()
            ),
            percent(total),
            Unit::Percent,
        )
        .at_most(1.0),
    );
    Ok(figures)
}

/// machined `pid` and each process below it, by command name.
fn daemons(pid: u32) -> anyhow::Result<Vec<(String, u32)>> {
    Ok(descendants(pid)?
        .into_iter()
        .map(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            (name.trim().to_string(), pid)
        })
        .collect())
}

/// Prints and returns the RSS (MiB) of machined `pid` and of each of its daemons.
fn print_memory(when: &str, pid: u32) -> anyhow::Result<Vec<(String, f64)>> {
    let sizes: Vec<(String, f64)> = daemons(pid)?
        .into_iter()
        .filter_map(|(name, pid)| Some((name, rss_mib(pid).ok()?)))
        .collect();
    let parts: Vec<String> = sizes
        .iter()
        .map(|(name, mib)| format!("{name} {mib:.1} MiB"))
        .collect();
    println!("  RSS {when}: {}", parts.join(", "));
    Ok(sizes)
}

/// `pid` and every process below it.
fn descendants(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // After the command: state, then the parent's PID.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.push((child, parent));
        }
    }
    let mut found = vec![pid];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        at += 1;
    }
    Ok(found)
}

async fn measure(nodes: &Nodes, addresses: &[Ipv4Addr]) -> anyhow::Result<Vec<Figure>> {
    let talosconfig = talosconfig::Talosconfig::load(&nodes.dir.join("talosconfig"))?;
    let (name, context) = talosconfig.context(None)?;
    let endpoint = [addresses[0].to_string()];
    let client = wait_for_api(name, context, &endpoint).await?;
    let all: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    for node in &all {
        wait_for_node(&client, node).await?;
    }
    let socket = nodes
        .dir
        .join(addresses[0].to_string())
        .join("system/run/machined/machine.sock");
    let direct = unix_client(&socket).await?;

    println!("node API, 3 dev-mode nodes, release builds");
    let mut figures = Vec::new();
    let machined_pid = nodes.children[0].id();
    let booted = print_memory("after boot", machined_pid)?;
    for (name, mib) in &booted {
        figures.push(Figure::new(
            BENCH,
            format!("RSS after boot, {name}"),
            *mib,
            Unit::MiB,
        ));
    }
    figures.push(memory_growth(&client, machined_pid, "after boot").await?);
    let apid = latency(|| {
        let mut machine = client.machine();
        async move { machine.version(tonic::Request::new(())).await.map(drop) }
    })
    .await?;
    let socket_only = latency(|| {
        let mut machine = direct.clone();
        async move { machine.version(admin_request()).await.map(drop) }
    })
    .await?;
    print_latency("Version via apid (mTLS) -> machined", &apid);
    print_latency("Version direct on machined's socket", &socket_only);
    println!(
        "  apid overhead: p50 x{:.2}, p99 x{:.2}",
        ratio(apid.p50, socket_only.p50),
        ratio(apid.p99, socket_only.p99)
    );
    figures.extend(apid.figures(BENCH, "Version via apid (mTLS) → machined"));
    figures.extend(socket_only.figures(BENCH, "Version on machined's socket"));
    figures.push(
        Figure::new(
            BENCH,
            "apid's overhead on Version, p50 (via apid ÷ direct)",
            ratio(apid.p50, socket_only.p50),
            Unit::Ratio,
        )
        .at_most(1.2),
    );
    figures.push(
        Figure::new(
            BENCH,
            "apid's overhead on Version, p99 (via apid ÷ direct)",
            ratio(apid.p99, socket_only.p99),
            Unit::Ratio,
        )
        .at_most(1.3),
    );
    for (label, target, target_is_fan_out) in [
        (
            "Version with `node` = another node (apid → apid → machined)",
            NodeTarget::for_nodes(&all[1..2]),
            false,
        ),
        (
            "Version with `nodes` = 3 nodes (fan-out)",
            NodeTarget::Nodes(all.clone()),
            true,
        ),
    ] {
        let latency = latency(|| {
            let mut machine = client.machine();
            let request = target.request(());
            async move {
                let request = request.map_err(|e| tonic::Status::internal(e.to_string()))?;
                machine.version(request).await.map(drop)
            }
        })
        .await?;
        print_latency(label, &latency);
        if target_is_fan_out {
            figures.push(
                Figure::new(
                    BENCH,
                    "Version with `nodes` = 3 nodes ÷ one node through apid, p50",
                    ratio(latency.p50, apid.p50),
                    Unit::Ratio,
                )
                .at_most(1.5),
            );
        }
        figures.extend(latency.figures(BENCH, label));
    }

    let config = std::fs::read_to_string(nodes.dir.join("controlplane.yaml"))?;
    figures.extend(crate::watch_bench::measure(&client, &config).await?);
    figures.extend(crate::trustd_bench::measure(&nodes.dir, addresses[0]).await?);
    figures.extend(crate::etcd_bench::measure(&client, &all[0]).await?);

    for (name, mib) in print_memory("after the API figures (etcd running)", machined_pid)? {
        figures.push(Figure::new(
            BENCH,
            format!("RSS after the API figures, {name}"),
            mib,
            Unit::MiB,
        ));
    }
    let apid_pid = apid_pid(&nodes.dir.join(addresses[0].to_string()))?;
    println!(
        "  RSS idle: machined {:.1} MiB, apid {:.1} MiB",
        rss_mib(machined_pid)?,
        rss_mib(apid_pid)?
    );
    let mut streams = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        let request = LogsRequest {
            namespace: "system".into(),
            id: "apid".into(),
            follow: true,
            tail_lines: -1,
            ..Default::default()
        };
        streams.push(client.machine().logs(request).await?.into_inner());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let apid_streaming = rss_mib(apid_pid)?;
    println!(
        "  RSS with {STREAMS} logs -f streams: machined {:.1} MiB, apid {apid_streaming:.1} MiB",
        rss_mib(machined_pid)?,
    );
    drop(streams);
    figures.push(memory_growth(&client, machined_pid, "after the figures (etcd running)").await?);
    figures.push(
        Figure::new(
            BENCH,
            format!("apid's RSS with {STREAMS} `logs -f` streams"),
            apid_streaming,
            Unit::MiB,
        )
        .at_most(20.0),
    );
    Ok(figures)
}

pub struct Latency {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

/// Sequential calls for the percentiles, then `CONCURRENCY` callers for the throughput.
pub async fn latency<F, Fut>(call: F) -> anyhow::Result<Latency>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    for _ in 0..100 {
        call().await?;
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        call().await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let calls: Vec<Fut> = (0..CALLS / CONCURRENCY).map(|_| call()).collect();
        tasks.push(tokio::spawn(async move {
            for call in calls {
                call.await?;
            }
            Ok::<(), tonic::Status>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let per_second = (CALLS / CONCURRENCY * CONCURRENCY) as f64 / start.elapsed().as_secs_f64();
    Ok(Latency {
        p50: samples[CALLS / 2],
        p99: samples[CALLS * 99 / 100],
        per_second,
    })
}

/// [`MEMORY_CALLS`] API calls through apid (Version and ServiceList in turn): how much the RSS
/// of machined `pid` and its daemons grew over them, together.
async fn memory_growth(client: &Client, pid: u32, when: &str) -> anyhow::Result<Figure> {
    let before = print_memory(&format!("{when}, before {MEMORY_CALLS} API calls"), pid)?;
    for i in 0..MEMORY_CALLS {
        let mut machine = client.machine();
        if i % 2 == 0 {
            machine.version(()).await?;
        } else {
            machine.service_list(()).await?;
        }
    }
    let after = print_memory(&format!("{when}, after {MEMORY_CALLS} API calls"), pid)?;
    let growth: f64 = after
        .iter()
        .map(|(name, mib)| mib - before.iter().find(|(n, _)| n == name).map_or(0.0, |b| b.1))
        .sum();
    Ok(Figure::new(
        BENCH,
        format!("RSS growth of all daemons over {MEMORY_CALLS} API calls, {when}"),
        growth,
        Unit::MiB,
    )
    .at_most(1.0))
}

impl Latency {
    /// p50 and p99 in µs and the throughput, as `bench`'s figures named after `label`.
    pub fn figures(&self, bench: &'static str, label: &str) -> [Figure; 3] {
        [
            Figure::new(
                bench,
                format!("{label}, p50"),
                self.p50.as_secs_f64() * 1e6,
                Unit::Micros,
            ),
            Figure::new(
                bench,
                format!("{label}, p99"),
                self.p99.as_secs_f64() * 1e6,
                Unit::Micros,
            ),
            Figure::new(
                bench,
                format!("{label}, {CONCURRENCY} callers"),
                self.per_second,
                Unit::PerSecond("calls"),
            ),
        ]
    }
}

pub fn print_latency(label: &str, figures: &Latency) {
    println!(
        "  {label}: p50 {:.0} µs, p99 {:.0} µs, {:.0} calls/s with {CONCURRENCY} callers",
        figures.p50.as_secs_f64() * 1e6,
        figures.p99.as_secs_f64() * 1e6,
        figures.per_second
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// machined authorizes by the `talos-role` metadata apid sets; a direct caller sets it itself.
pub(crate) fn admin_request() -> tonic::Request<()> {
    let mut request = tonic::Request::new(());
    request.metadata_mut().insert(
        "talos-role",
        tonic::metadata::MetadataValue::from_static("os:admin"),
    );
    request
}

async fn wait_for_api(
    name: &str,
    context: &talosconfig::Context,
    endpoint: &[String],
) -> anyhow::Result<Client> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Client::from_context(name, context, endpoint).await {
            Ok(client) => return Ok(client),
            Err(error) if Instant::now() > deadline => return Err(error.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn wait_for_node(client: &Client, node: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let target = NodeTarget::for_nodes(&[node.to_string()]);
    loop {
        match client.machine().version(target.request(())?).await {
            Ok(_) => return Ok(()),
            Err(status) if Instant::now() > deadline => bail!("node {node}: {status}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub(crate) async fn unix_client(socket: &Path) -> anyhow::Result<MachineServiceClient<Channel>> {
    let socket = socket.to_path_buf();
    let channel = Endpoint::try_from("http://machined")?
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await?;
    Ok(MachineServiceClient::new(channel))
}

/// The apid child of the node whose state directory is `state`.
fn apid_pid(state: &Path) -> anyhow::Result<u32> {
    let marker = state.join("system/secrets/apid");
    let marker = marker.to_string_lossy();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("apid") && cmdline.contains(&*marker) {
            return Ok(pid);
        }
    }
    bail!("no apid process for {}", state.display())
}

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("no VmRSS")?
        .parse()?;
    Ok(kib / 1024.0)
}
