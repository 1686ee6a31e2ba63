//! The DHCP server of a QEMU cluster's helper (`talosctl cluster forward --dhcp`), asked by the
//! client machined runs at boot (`dhcp::acquire`), across a veth pair between two network
//! namespaces this test creates (as root): a bound hardware address gets its address, gateway,
//! name and MTU; an unbound one gets nothing.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::process::{Child, Command};
use std::time::Duration;

use nix::sched::CloneFlags;

const CLIENT_MAC: [u8; 6] = [0x52, 0x54, 10, 77, 0, 2];

/// Two namespaces joined by a veth pair, removed on drop.
struct Namespaces {
    client: String,
    server: String,
}

impl Namespaces {
    fn new() -> Namespaces {
        let id = std::process::id();
        let namespaces = Namespaces {
            client: format!("dhcp-client-{id}"),
            server: format!("dhcp-server-{id}"),
        };
        for namespace in [&namespaces.client, &namespaces.server] {
            ip(&["netns", "add", namespace]);
        }
        ip(&[
            "-n",
            &namespaces.client,
            "link",
            "add",
            "vc",
            "address",
            "52:54:0a:4d:00:02",
            "type",
            "veth",
            "peer",
            "name",
            "vs",
            "netns",
            &namespaces.server,
        ]);
        ip(&["-n", &namespaces.client, "link", "set", "vc", "up"]);
        ip(&[
            "-n",
            &namespaces.server,
            "address",
            "add",
            "10.77.0.1/24",
            "dev",
            "vs",
        ]);
        ip(&["-n", &namespaces.server, "link", "set", "vs", "up"]);
        namespaces
    }

    /// Runs `work` on a thread inside the client namespace.
    fn in_client<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.client);
        std::thread::spawn(move || {
            let namespace = std::fs::File::open(path).unwrap();
            nix::sched::setns(namespace, CloneFlags::CLONE_NEWNET).unwrap();
            work()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for namespace in [&self.client, &self.server] {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {}", args.join(" "));
}

/// The helper, serving DHCP in the server namespace; killed on drop.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bound_node_gets_its_address_name_and_mtu_and_a_stranger_nothing() {
    let namespaces = Namespaces::new();
    let _helper = Helper(
        Command::new(env!("CARGO_BIN_EXE_talosctl"))
            .args(["cluster", "forward", "--netns"])
            .arg(format!("/run/netns/{}", namespaces.server))
            .args(["--route", "127.0.0.1:0=10.77.0.2:50000"])
            .args(["--dhcp", "vs=10.77.0.1", "--mtu", "1400"])
            .args(["--lease", "52:54:0a:4d:00:02=10.77.0.2/24=demo-worker-1"])
            .spawn()
            .unwrap(),
    );

    let lease = namespaces
        .in_client(|| dhcp::acquire("vc", CLIENT_MAC, Duration::from_secs(20)))
        .unwrap()
        .expect("a lease from the helper");
    assert_eq!(lease.address.to_string(), "10.77.0.2/24");
    assert_eq!(lease.router, Some(Ipv4Addr::new(10, 77, 0, 1)));
    assert_eq!(lease.server, Ipv4Addr::new(10, 77, 0, 1));
    assert_eq!(lease.hostname.as_deref(), Some("demo-worker-1"));
    assert_eq!(lease.mtu, Some(1400));

    let stranger = namespaces
        .in_client(|| dhcp::acquire("vc", [2, 0, 0, 0, 0, 9], Duration::from_secs(3)))
        .unwrap();
    assert_eq!(stranger, None);
}
