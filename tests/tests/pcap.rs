//! `talosctl pcap` against a dev node: a ping to a loopback address is captured on `lo` through
//! a BPF filter compiled by talosctl, and the file is a valid pcap holding exactly those ICMP
//! packets; a ping into a network namespace of the test's own is captured, promiscuously, on the
//! node's end of the veth pair that reaches it; tcpdump reads both files back; a filter that
//! matches nothing gives a pcap with no packet; bad input is refused with a clear error and the
//! node goes on. Loopback block 127.47.0.0/24; the namespace's link is 10.86.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::process::{Command, Stdio};

use tests::{Cluster, NetworkNamespace, binary, failure, success};

const PINGED: [u8; 4] = [127, 47, 0, 77];
/// The host's and the namespace's ends of the veth pair.
const HOST_END: &str = "10.86.0.1";
const NAMESPACE_END: [u8; 4] = [10, 86, 0, 2];

/// `tcpdump -nn -r file`'s lines.
fn tcpdump_read(file: &std::path::Path) -> Vec<String> {
    let lines = success(
        Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(file)
            .output()
            .unwrap(),
    );
    lines.lines().map(str::to_string).collect()
}

/// A veth pair from the host (`pcap<pid>`, [`HOST_END`]) into a namespace of the test's own
/// ([`NAMESPACE_END`]); returns the namespace (dropping it removes both ends) and the host end's
/// name.
fn veth_into_a_namespace() -> (NetworkNamespace, String) {
    let namespace = NetworkNamespace::new("pcap");
    let host_end = format!("pcap{}", std::process::id() % 10_000_000);
    let ip = |args: &[&str]| success(Command::new("ip").args(args).output().unwrap());
    ip(&[
        "link",
        "add",
        &host_end,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &namespace.name,
    ]);
    ip(&["addr", "add", &format!("{HOST_END}/24"), "dev", &host_end]);
    ip(&["link", "set", &host_end, "up"]);
    let inside = std::net::Ipv4Addr::from(NAMESPACE_END);
    namespace.run(&["ip", "addr", "add", &format!("{inside}/24"), "dev", "eth0"]);
    namespace.run(&["ip", "link", "set", "eth0", "up"]);
    (namespace, host_end)
}

/// (link type, records) of a little-endian, microsecond pcap file.
fn parse_pcap(bytes: &[u8]) -> (u32, Vec<Vec<u8>>) {
    assert!(bytes.len() >= 24, "no pcap header");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(word(0), 0xa1b2_c3d4, "pcap magic");
    assert_eq!(&bytes[4..8], &[2, 0, 4, 0], "pcap version 2.4");
    let mut records = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let captured = word(at + 8) as usize;
        let original = word(at + 12) as usize;
        assert!(captured <= original, "captured more than the packet");
        records.push(bytes[at + 16..at + 16 + captured].to_vec());
        at += 16 + captured;
    }
    assert_eq!(at, bytes.len(), "a record runs past the end");
    (word(20), records)
}

#[test]
fn a_ping_is_captured_through_a_filter_and_bad_input_is_refused() {
    let cluster = Cluster::start(47, 1);
    let node = cluster.nodes[0].address.to_string();
    let out = tempfile::tempdir().unwrap();
    let (_namespace, host_end) = veth_into_a_namespace();
    let capture = |interface: &str, filter: &str, file: &str| {
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(cluster.talosconfig())
            .args([
                "-e",
                &node,
                "-n",
                &node,
                "pcap",
                "-i",
                interface,
                "--promiscuous",
                "--duration",
                "4s",
            ])
            .args(["--bpf-filter", filter, "-o"])
            .arg(out.path().join(file))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let pinged = std::net::Ipv4Addr::from(PINGED).to_string();
    let inside = std::net::Ipv4Addr::from(NAMESPACE_END).to_string();
    let icmp = capture("lo", &format!("icmp and host {pinged}"), "icmp.pcap");
    let tcp = capture("lo", "tcp port 80 and host 127.47.0.77", "tcp.pcap");
    let veth = capture(&host_end, "icmp", "veth.pcap");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for address in [&pinged, &inside] {
        success(
            Command::new("ping")
                .args(["-c", "3", "-i", "0.2", address])
                .output()
                .unwrap(),
        );
    }
    success(icmp.wait_with_output().unwrap());
    success(tcp.wait_with_output().unwrap());
    success(veth.wait_with_output().unwrap());

    let (link, records) = parse_pcap(&std::fs::read(out.path().join("icmp.pcap")).unwrap());
    assert_eq!(link, 1, "Ethernet");
    // Three echo requests and their replies, nothing else.
    assert_eq!(records.len(), 6, "{} packets", records.len());
    for frame in &records {
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4");
        assert_eq!(frame[23], 1, "ICMP");
        assert!(frame[26..30] == PINGED || frame[30..34] == PINGED);
    }
    let read_back = tcpdump_read(&out.path().join("icmp.pcap"));
    assert_eq!(read_back.len(), 6, "{read_back:?}");
    // The kernel answers from the pinged address to the source it chose (127.0.0.1).
    for (line, expected) in read_back.iter().zip(
        [
            format!("> {pinged}: ICMP echo request"),
            format!("IP {pinged} > 127.0.0.1: ICMP echo reply"),
        ]
        .iter()
        .cycle(),
    ) {
        assert!(line.contains(expected), "{line}");
    }

    // Into the namespace: three requests out of the host's end, three replies from eth0, on a
    // real Ethernet link (the frames carry the two ends' MAC addresses).
    let (link, records) = parse_pcap(&std::fs::read(out.path().join("veth.pcap")).unwrap());
    assert_eq!(link, 1, "Ethernet");
    assert_eq!(records.len(), 6, "{} packets", records.len());
    let read_back = tcpdump_read(&out.path().join("veth.pcap"));
    let requests = format!("IP {HOST_END} > {inside}: ICMP echo request");
    let replies = format!("IP {inside} > {HOST_END}: ICMP echo reply");
    assert_eq!(
        read_back
            .iter()
            .filter(|line| line.contains(&requests))
            .count(),
        3,
        "{read_back:?}"
    );
    assert_eq!(
        read_back
            .iter()
            .filter(|line| line.contains(&replies))
            .count(),
        3,
        "{read_back:?}"
    );

    let (_, none) = parse_pcap(&std::fs::read(out.path().join("tcp.pcap")).unwrap());
    assert!(
        none.is_empty(),
        "the tcp filter let {} packets by",
        none.len()
    );

    let talosctl = |args: &[&str]| {
        let mut all = vec!["-n", node.as_str(), "pcap", "--duration", "2s"];
        all.extend_from_slice(args);
        cluster.talosctl(&all)
    };
    let error = failure(talosctl(&["-i", "nosuch0", "-o", "/dev/null"]));
    assert!(error.contains("interface \"nosuch0\" not found"), "{error}");
    let error = failure(talosctl(&["-i", "lo", "--bpf-filter", "vlan 10"]));
    assert!(error.contains("\"vlan\" is not understood"), "{error}");
    let error = failure(talosctl(&[
        "-i",
        "lo",
        "-s",
        "999999999",
        "-o",
        "/dev/null",
    ]));
    assert!(error.contains("snap_len"), "{error}");
    success(cluster.talosctl(&["-n", &node, "version"]));
}
