//! `talosctl pcap` against a dev node: a ping to a loopback address is captured on `lo` through
//! a BPF filter compiled by talosctl, and the file is a valid pcap holding exactly those ICMP
//! packets; a filter that matches nothing gives a pcap with no packet; bad input is refused
//! with a clear error and the node goes on. Loopback block 127.47.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::process::{Command, Stdio};

use tests::{Cluster, binary, failure, success};

const PINGED: [u8; 4] = [127, 47, 0, 77];

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
    let capture = |filter: &str, file: &str| {
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
                "lo",
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
    let icmp = capture(&format!("icmp and host {pinged}"), "icmp.pcap");
    let tcp = capture("tcp port 80 and host 127.47.0.77", "tcp.pcap");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    success(
        Command::new("ping")
            .args(["-c", "3", "-i", "0.2", &pinged])
            .output()
            .unwrap(),
    );
    success(icmp.wait_with_output().unwrap());
    success(tcp.wait_with_output().unwrap());

    let (link, records) = parse_pcap(&std::fs::read(out.path().join("icmp.pcap")).unwrap());
    assert_eq!(link, 1, "Ethernet");
    // Three echo requests and their replies, nothing else.
    assert_eq!(records.len(), 6, "{} packets", records.len());
    for frame in &records {
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4");
        assert_eq!(frame[23], 1, "ICMP");
        assert!(frame[26..30] == PINGED || frame[30..34] == PINGED);
    }
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
