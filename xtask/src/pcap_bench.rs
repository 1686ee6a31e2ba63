//! `cargo xtask bench-pcap`: what a packet capture costs. One dev-mode node (release build) with
//! apid on loopback; traffic between two sockets on `lo` (a bulk TCP stream and small UDP
//! datagrams), each for [`RUN`], measured three ways: without a capture, with `talosctl pcap -i
//! lo` whose filter matches none of it (every packet still runs the BPF program), and with a
//! capture of all of it streamed through apid to talosctl (`-o /dev/null`). Printed, as medians
//! of [`ROUNDS`] interleaved rounds: TCP MB/s, UDP datagrams/s, and the CPU of machined and apid
//! while the capture runs.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::bench::{cargo, release_dir, workspace_root};
use crate::figures::{Figure, Unit};
use crate::shipping_bench::{cpu_ticks, talosctl, ticks_per_second};

const NODE: &str = "127.69.0.2";
const TRAFFIC: &str = "127.69.0.1";
const RUN: Duration = Duration::from_secs(5);
const UDP_PAYLOAD: usize = 100;
/// Rounds of the three cases, interleaved; medians are printed.
const ROUNDS: usize = 3;

pub fn run() -> anyhow::Result<()> {
    let root = workspace_root();
    cargo(&root, &["build", "-q", "--release", "--bins"])?;
    let figures = measure_node(&root, &release_dir(&root))?;
    crate::bench::print_table(&figures);
    Ok(())
}

/// Starts the node from the release binaries in `bin` and measures.
pub fn measure_node(root: &Path, bin: &Path) -> anyhow::Result<Vec<Figure>> {
    let out = root.join("_out/bench-pcap");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("node/system/state"))?;
    talosctl(
        bin,
        &[
            "gen",
            "config",
            "bench",
            &format!("https://{NODE}:6443"),
            "-o",
        ],
        &out,
    )?;
    std::fs::copy(
        out.join("controlplane.yaml"),
        out.join("node/system/state/config.yaml"),
    )?;
    let mut node = Command::new(bin.join("machined"))
        .arg("--state-dir")
        .arg(out.join("node"))
        .args(["--api-address", &format!("{NODE}:50000")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = measure(bin, &out, node.id());
    stop(&mut node);
    result
}

fn measure(bin: &Path, out: &Path, machined: u32) -> anyhow::Result<Vec<Figure>> {
    let talosctl = Talosctl {
        bin: bin.join("talosctl"),
        talosconfig: out.join("talosconfig"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !talosctl.command(&["version"]).status()?.success() {
        if Instant::now() > deadline {
            bail!("the node did not answer over mutual TLS");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let apid = pid_of_child(machined, "apid").context("apid is not running")?;
    let tcp = TcpListener::bind((TRAFFIC, 0))?;
    let udp = UdpSocket::bind((TRAFFIC, 0))?;
    let (tcp_port, udp_port) = (tcp.local_addr()?.port(), udp.local_addr()?.port());
    let traffic = Traffic { tcp, udp };
    println!(
        "packet capture on lo, one dev node (release), {} s of traffic per case, median of {ROUNDS} rounds",
        RUN.as_secs()
    );
    let cases = [
        ("no capture", None),
        (
            "capture, filter matches none",
            Some("udp port 9".to_string()),
        ),
        (
            "capture of all the traffic",
            Some(format!("tcp port {tcp_port} or udp port {udp_port}")),
        ),
    ];
    let mut figures = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (case, (_, filter)) in cases.iter().enumerate() {
            figures[case].push(one_case(
                &talosctl,
                &traffic,
                filter.as_deref(),
                machined,
                apid,
            )?);
        }
    }
    println!(
        "  case                          TCP MB/s   UDP datagrams/s   machined CPU   apid CPU"
    );
    let mut table = Vec::new();
    for ((label, _), runs) in cases.iter().zip(&figures) {
        let median = |field: usize| {
            let mut values: Vec<f64> = runs.iter().map(|f| f[field]).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        println!(
            "  {label:<29} {:>8.0}   {:>15.0}   {:>11.0}%   {:>7.0}%",
            median(0),
            median(1),
            median(2),
            median(3)
        );
        let metric = |what: &str| format!("{what} on lo, {label}");
        table.extend([
            Figure::new("pcap", metric("TCP"), median(0), Unit::MegabytesPerSecond),
            Figure::new(
                "pcap",
                metric("UDP (100-byte datagrams)"),
                median(1),
                Unit::PerSecond("datagrams"),
            ),
        ]);
        if label.starts_with("capture") {
            table.extend([
                Figure::new("pcap", metric("machined CPU"), median(2), Unit::Percent),
                Figure::new("pcap", metric("apid CPU"), median(3), Unit::Percent),
            ]);
        }
    }
    Ok(table)
}

/// One case: [TCP MB/s, UDP datagrams/s, machined CPU %, apid CPU %].
fn one_case(
    talosctl: &Talosctl,
    traffic: &Traffic,
    filter: Option<&str>,
    machined: u32,
    apid: u32,
) -> anyhow::Result<[f64; 4]> {
    let mut capture = match filter {
        Some(filter) => Some(
            talosctl
                .command(&[
                    "pcap",
                    "-i",
                    "lo",
                    "--bpf-filter",
                    filter,
                    "-o",
                    "/dev/null",
                    "--duration",
                    &format!("{}s", 2 * RUN.as_secs() + 3),
                ])
                .spawn()?,
        ),
        None => None,
    };
    std::thread::sleep(Duration::from_secs(1));
    let cpu_before = (cpu_ticks(machined)?, cpu_ticks(apid)?);
    let started = Instant::now();
    let mb_per_s = traffic.tcp_bulk()?;
    let datagrams_per_s = traffic.udp_small()?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = |before: u64, pid: u32| -> anyhow::Result<f64> {
        Ok((cpu_ticks(pid)? - before) as f64 / ticks_per_second() / elapsed * 100.0)
    };
    let figures = [
        mb_per_s,
        datagrams_per_s,
        cpu(cpu_before.0, machined)?,
        cpu(cpu_before.1, apid)?,
    ];
    if let Some(capture) = capture.as_mut() {
        stop(capture);
    }
    Ok(figures)
}

struct Talosctl {
    bin: PathBuf,
    talosconfig: PathBuf,
}

impl Talosctl {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--talosconfig")
            .arg(&self.talosconfig)
            .args(["-e", NODE, "-n", NODE])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }
}

/// The two sockets the traffic goes to.
struct Traffic {
    tcp: TcpListener,
    udp: UdpSocket,
}

impl Traffic {
    /// One TCP connection sending 64 KiB writes for [`RUN`]; MB/s received.
    fn tcp_bulk(&self) -> anyhow::Result<f64> {
        let mut sender = TcpStream::connect(self.tcp.local_addr()?)?;
        let (mut receiver, _) = self.tcp.accept()?;
        let reading = std::thread::spawn(move || {
            let mut buffer = vec![0u8; 1 << 16];
            let mut total = 0u64;
            while let Ok(n @ 1..) = receiver.read(&mut buffer) {
                total += n as u64;
            }
            total
        });
        let chunk = vec![0x5au8; 1 << 16];
        let started = Instant::now();
        while started.elapsed() < RUN {
            sender.write_all(&chunk)?;
        }
        drop(sender);
        let total = reading.join().map_err(|_| anyhow::anyhow!("reader"))?;
        Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
    }

    /// Datagrams of [`UDP_PAYLOAD`] bytes sent as fast as one thread can for [`RUN`];
    /// datagrams/s received.
    fn udp_small(&self) -> anyhow::Result<f64> {
        let receiver = self.udp.try_clone()?;
        receiver.set_read_timeout(Some(Duration::from_millis(200)))?;
        let done = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let counting = {
            let (done, received) = (Arc::clone(&done), Arc::clone(&received));
            std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                while !done.load(Ordering::Relaxed) {
                    if receiver.recv(&mut buffer).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let sender = UdpSocket::bind((TRAFFIC, 0))?;
        sender.connect(self.udp.local_addr()?)?;
        let payload = [0x5au8; UDP_PAYLOAD];
        let started = Instant::now();
        while started.elapsed() < RUN {
            // A full receive queue drops datagrams; only those received count.
            let _ = sender.send(&payload);
        }
        let elapsed = started.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(300));
        done.store(true, Ordering::Relaxed);
        counting.join().map_err(|_| anyhow::anyhow!("counter"))?;
        Ok(received.load(Ordering::Relaxed) as f64 / elapsed)
    }
}

/// The PID of `parent`'s child process named `name`.
fn pid_of_child(parent: u32, name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (command, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (command == name && ppid == parent).then_some(pid)
        })
}

fn stop(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = child.wait();
}
