#![allow(clippy::unwrap_used)]
//! networkd against the real kernel: each test makes a network namespace of its own with veth
//! pairs, runs the real networkd binary inside it and drives it over its socket. Needs root (CI
//! runs as root), `ip` (iproute2) and `dnsmasq`. Namespaces and processes are removed by Drop
//! guards, also when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::talosrs::networkd::network_service_client::NetworkServiceClient;
use proto::talosrs::networkd::{ApplyRequest, ApplyResponse, NetworkStatus};
use serde_json::Value;
use tonic::transport::Channel;

/// A network namespace, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("ndt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `program args` inside the namespace; panics on failure; returns stdout.
    fn exec(&self, program: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    fn ip(&self, args: &[&str]) -> String {
        self.exec("ip", args)
    }

    fn ip_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ip(&all)).unwrap()
    }

    /// A veth pair `inner`/`peer`, the peer up.
    fn veth(&self, inner: &str, peer: &str) {
        self.ip(&["link", "add", inner, "type", "veth", "peer", "name", peer]);
        self.ip(&["link", "set", peer, "up"]);
    }

    /// `cidr`s on `link`.
    fn addresses(&self, link: &str) -> Vec<String> {
        let json = self.ip_json(&["addr", "show", "dev", link]);
        json[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect()
    }

    /// IPv4 routes of the main table as "dst via gw dev link metric m".
    fn routes(&self) -> Vec<String> {
        let json = self.ip_json(&["-4", "route", "show", "table", "main"]);
        json.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut text = r["dst"].as_str().unwrap().to_string();
                if let Some(gw) = r["gateway"].as_str() {
                    text.push_str(&format!(" via {gw}"));
                }
                text.push_str(&format!(" dev {}", r["dev"].as_str().unwrap()));
                if let Some(metric) = r["metric"].as_u64() {
                    text.push_str(&format!(" metric {metric}"));
                }
                text
            })
            .collect()
    }

    /// `ip -d link show` of `link`, or None when it does not exist.
    fn link(&self, link: &str) -> Option<Value> {
        let mut all = vec![
            "netns", "exec", &self.name, "ip", "-j", "-d", "link", "show", link,
        ];
        all.retain(|a| !a.is_empty());
        let out = Command::new("ip").args(&all).output().unwrap();
        if !out.status.success() {
            return None;
        }
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        Some(json[0].clone())
    }

    /// Whether the kernel can make links of `kind` (this machine's kernel may lack 8021q or
    /// bonding); probed with `ip` on a scratch veth.
    fn supports(&self, kind: &str) -> bool {
        let ok = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &self.name, "ip", "link", "add"];
            all.extend_from_slice(args);
            Command::new("ip")
                .args(&all)
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        };
        self.ip(&[
            "link", "add", "probe0", "type", "veth", "peer", "name", "probe1",
        ]);
        let supported = match kind {
            "vlan" => ok(&[
                "link", "probe0", "name", "probe0.9", "type", "vlan", "id", "9",
            ]),
            other => ok(&["probe2", "type", other]),
        };
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.name, "ip", "link", "del", "probe2"])
            .stderr(Stdio::null())
            .status();
        self.ip(&["link", "del", "probe0"]);
        supported
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A child process, killed (by its PID) and reaped on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// networkd running inside a namespace.
struct Networkd {
    process: Process,
    state_dir: PathBuf,
    client: NetworkServiceClient<Channel>,
}

impl Networkd {
    /// Starts networkd in `ns` (in a UTS namespace of its own when `own_uts`).
    async fn start(ns: &Netns, state_dir: &Path, extra: &[&str], own_uts: bool) -> Self {
        std::fs::create_dir_all(state_dir).unwrap();
        let socket = state_dir.join("system/run/networkd/networkd.sock");
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join("networkd.log"))
            .unwrap();
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &ns.name]);
        if own_uts {
            command.args(["unshare", "--uts"]);
        }
        command
            .arg(env!("CARGO_BIN_EXE_networkd"))
            .arg("--state-dir")
            .arg(state_dir)
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log);
        let process = Process(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(15);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "networkd did not start; log:\n{}",
                std::fs::read_to_string(state_dir.join("networkd.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let channel = tonic::transport::Endpoint::from_shared(format!("unix:{}", socket.display()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Networkd {
            process,
            state_dir: state_dir.to_path_buf(),
            client: NetworkServiceClient::new(channel),
        }
    }

    fn pid(&self) -> u32 {
        self.process.0.id()
    }

    async fn apply(&mut self, yaml: &str) -> Result<ApplyResponse, tonic::Status> {
        self.client
            .apply(ApplyRequest {
                network_yaml: yaml.to_string(),
                kernel_ip_arg: String::new(),
                documents_yaml: String::new(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn status(&mut self) -> NetworkStatus {
        self.client.status(()).await.unwrap().into_inner()
    }

    fn file(&self, relative: &str) -> String {
        std::fs::read_to_string(self.state_dir.join(relative)).unwrap_or_default()
    }
}

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|i| i == item)
}

const FIRST: &str = r#"
hostname: node1.example.org
nameservers: [10.10.0.53]
extraHostEntries:
  - {ip: 10.10.0.99, aliases: [db, db.lan]}
interfaces:
  - interface: eth0
    addresses: [10.10.0.2/24]
    mtu: 1400
    routes:
      - {network: 10.20.0.0/16, gateway: 10.10.0.1, metric: 50}
    vlans:
      - {vlanId: 7, addresses: [10.7.0.2/24]}
  - interface: br0
    bridge: {interfaces: [eth1]}
    addresses: [10.30.0.2/24]
  - interface: bond0
    bond: {mode: active-backup, miimon: 100, interfaces: [eth2]}
    addresses: [10.40.0.2/24]
"#;

const SECOND: &str = r#"
hostname: node2
nameservers: [10.10.0.54]
interfaces:
  - interface: eth0
    addresses: [10.10.0.3/24]
    routes:
      - {network: 10.21.0.0/16, gateway: 10.10.0.1}
"#;

#[tokio::test]
async fn configures_links_and_applies_changes_live() {
    let ns = Netns::new("live");
    ns.veth("eth0", "peer0");
    ns.veth("eth1", "peer1");
    ns.veth("eth2", "peer2");
    // Not networkd's: must survive every change.
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["addr", "add", "10.99.0.9/24", "dev", "eth0"]);
    ns.ip(&["route", "add", "10.98.0.0/16", "via", "10.99.0.1"]);
    let vlan = ns.supports("vlan");
    let bond = ns.supports("bond");
    let dir = tempfile::tempdir().unwrap();
    let mut networkd = Networkd::start(&ns, dir.path(), &[], false).await;

    let response = networkd.apply(FIRST).await.unwrap();
    let errors = response.errors.join("\n");
    assert_eq!(
        vlan,
        !errors.contains("link eth0.7: the kernel does not support vlan links"),
        "{errors}"
    );
    assert_eq!(
        bond,
        !errors.contains("link bond0: the kernel does not support bond links"),
        "{errors}"
    );
    let eth0 = ns.addresses("eth0");
    assert!(has(&eth0, "10.10.0.2/24"), "{eth0:?}");
    assert!(has(&eth0, "10.99.0.9/24"), "{eth0:?}");
    assert_eq!(ns.link("eth0").unwrap()["mtu"], 1400);
    let routes = ns.routes();
    assert!(
        has(&routes, "10.20.0.0/16 via 10.10.0.1 dev eth0 metric 50"),
        "{routes:?}"
    );
    let br0 = ns.link("br0").unwrap();
    assert_eq!(br0["linkinfo"]["info_kind"], "bridge");
    assert_eq!(ns.link("eth1").unwrap()["master"], "br0");
    assert!(has(&ns.addresses("br0"), "10.30.0.2/24"));
    if vlan {
        let link = ns.link("eth0.7").unwrap();
        assert_eq!(link["linkinfo"]["info_data"]["id"], 7);
        assert!(has(&ns.addresses("eth0.7"), "10.7.0.2/24"));
    } else {
        assert!(ns.link("eth0.7").is_none());
    }
    if bond {
        let link = ns.link("bond0").unwrap();
        assert_eq!(link["linkinfo"]["info_data"]["mode"], "active-backup");
        assert_eq!(ns.link("eth2").unwrap()["master"], "bond0");
        assert!(has(&ns.addresses("bond0"), "10.40.0.2/24"));
    }
    assert_eq!(
        networkd.file("system/resolved/resolv.conf"),
        "nameserver 10.10.0.53\nsearch example.org\n"
    );
    let hosts = networkd.file("system/etc/hosts");
    assert!(hosts.contains("10.10.0.99\tdb db.lan\n"), "{hosts}");
    assert!(hosts.contains("node1.example.org node1"), "{hosts}");

    let status = networkd.status().await;
    let managed = |name: &str| {
        status
            .links
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.managed)
    };
    assert_eq!(managed("br0"), Some(true));
    assert_eq!(managed("eth0"), Some(false));
    let eth0_status = status.links.iter().find(|l| l.name == "eth0").unwrap();
    assert_eq!(eth0_status.mtu, 1400);
    assert_eq!(eth0_status.kind, "veth");
    assert_eq!(eth0_status.r#type, "ether");
    assert_eq!(eth0_status.hardware_addr.len(), 17);
    let address = |cidr: &str| status.addresses.iter().find(|a| a.address == cidr).unwrap();
    assert!(address("10.10.0.2/24").managed);
    assert_eq!(address("10.10.0.2/24").family, "inet4");
    assert_eq!(address("10.10.0.2/24").link_name, "eth0");
    assert!(!address("10.99.0.9/24").managed);
    let route = status
        .routes
        .iter()
        .find(|r| r.destination == "10.20.0.0/16")
        .unwrap();
    assert!(route.managed);
    assert_eq!(
        (
            route.gateway.as_str(),
            route.out_link_name.as_str(),
            route.priority,
            route.table
        ),
        ("10.10.0.1", "eth0", 50, 254)
    );
    assert_eq!(status.hostname.unwrap().domainname, "example.org");
    assert_eq!(status.resolvers.unwrap().dns_servers, vec!["10.10.0.53"]);

    // A second config, live: changed address and route, MTU back, bridge/VLAN/bond gone.
    let response = networkd.apply(SECOND).await.unwrap();
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let eth0 = ns.addresses("eth0");
    assert!(has(&eth0, "10.10.0.3/24"), "{eth0:?}");
    assert!(!has(&eth0, "10.10.0.2/24"), "{eth0:?}");
    assert!(has(&eth0, "10.99.0.9/24"), "{eth0:?}");
    assert_eq!(ns.link("eth0").unwrap()["mtu"], 1500);
    let routes = ns.routes();
    assert!(
        has(&routes, "10.21.0.0/16 via 10.10.0.1 dev eth0 metric 1024"),
        "{routes:?}"
    );
    assert!(
        !routes.iter().any(|r| r.starts_with("10.20.0.0/16")),
        "{routes:?}"
    );
    assert!(
        has(&routes, "10.98.0.0/16 via 10.99.0.1 dev eth0"),
        "{routes:?}"
    );
    assert!(ns.link("br0").is_none());
    assert!(ns.link("eth0.7").is_none());
    assert!(ns.link("bond0").is_none());
    assert!(ns.link("eth1").unwrap().get("master").is_none());
    assert!(ns.link("eth2").unwrap().get("master").is_none());
    assert_eq!(
        networkd.file("system/resolved/resolv.conf"),
        "nameserver 10.10.0.54\n"
    );

    // The ownership record outlives networkd: after a restart, an empty config removes what
    // networkd made before, and still nothing else.
    drop(networkd);
    let mut networkd = Networkd::start(&ns, dir.path(), &[], false).await;
    let response = networkd.apply("").await.unwrap();
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let eth0 = ns.addresses("eth0");
    assert!(!has(&eth0, "10.10.0.3/24"), "{eth0:?}");
    assert!(has(&eth0, "10.99.0.9/24"), "{eth0:?}");
    let routes = ns.routes();
    assert!(
        !routes.iter().any(|r| r.starts_with("10.21.0.0/16")),
        "{routes:?}"
    );
    assert!(
        has(&routes, "10.98.0.0/16 via 10.99.0.1 dev eth0"),
        "{routes:?}"
    );
}

#[tokio::test]
async fn invalid_config_is_refused_before_anything_changes() {
    let ns = Netns::new("invalid");
    ns.veth("eth0", "peer0");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("machine.yaml");
    std::fs::write(
        &config,
        "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces:\n      - interface: eth0\n        addresses: [10.11.0.2/24]\n",
    )
    .unwrap();
    let mut networkd = Networkd::start(
        &ns,
        &dir.path().join("state"),
        &["--config", config.to_str().unwrap()],
        false,
    )
    .await;
    assert!(has(&ns.addresses("eth0"), "10.11.0.2/24"));
    let before = (
        ns.ip(&["-j", "addr"]),
        ns.ip(&["-j", "route", "show", "table", "all"]),
        ns.ip(&["-j", "-d", "link"]),
        networkd.file("system/run/networkd/owned.json"),
        networkd.file("system/resolved/resolv.conf"),
    );
    let status = networkd
        .apply(
            r#"
nameservers: [10.0.0.300]
interfaces:
  - interface: eth0
    addresses: [10.11.0.3/33]
    routes:
      - {network: 10.12.0.0/16, gateway: "fd00::1"}
      - {network: 10.13.0.0/16, gateway: 0.0.0.0}
  - interface: eth0
  - interface: bond0
    bond: {mode: fastest, interfaces: [eth1]}
    vlans: [{vlanId: 5000}]
"#,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let message = status.message();
    for path in [
        "machine.network.nameservers[0]",
        "machine.network.interfaces[0].addresses[0]",
        "machine.network.interfaces[0].routes[0].gateway",
        "machine.network.interfaces[0].routes[1].gateway",
        "machine.network.interfaces[1].interface",
        "machine.network.interfaces[2].bond.mode",
        "machine.network.interfaces[2].vlans[0].vlanId",
    ] {
        assert!(message.contains(path), "{path} missing in:\n{message}");
    }
    let after = (
        ns.ip(&["-j", "addr"]),
        ns.ip(&["-j", "route", "show", "table", "all"]),
        ns.ip(&["-j", "-d", "link"]),
        networkd.file("system/run/networkd/owned.json"),
        networkd.file("system/resolved/resolv.conf"),
    );
    assert_eq!(before, after);

    let status = networkd
        .apply("interfaces: [{interface: eth0, mtu: 9}]")
        .await
        .unwrap_err();
    assert!(
        status
            .message()
            .contains("machine.network.interfaces[0].mtu"),
        "{}",
        status.message()
    );
    let status = networkd
        .apply("interfaces: [{interface: eth0, colour: red}]")
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("colour"), "{}", status.message());
}

#[tokio::test]
async fn dhcp_lease_from_dnsmasq_is_applied_and_renewed() {
    // The server has a namespace of its own on the far end of the veth, as a real network
    // would: in one namespace the kernel would drop its replies (their source is local).
    let ns = Netns::new("dhcp");
    let server = Netns::new("dhcps");
    ns.ip(&[
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "srv0",
        "netns",
        &server.name,
    ]);
    server.ip(&["link", "set", "srv0", "up"]);
    server.ip(&["addr", "add", "10.50.0.1/24", "dev", "srv0"]);
    let dir = tempfile::tempdir().unwrap();
    let leases = dir.path().join("dnsmasq.leases");
    let dnsmasq_log = std::fs::File::create(dir.path().join("dnsmasq.log")).unwrap();
    let _dnsmasq = Process(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &server.name,
                "dnsmasq",
                "--keep-in-foreground",
            ])
            .args([
                "--conf-file=/dev/null",
                "--port=0",
                "--user=root",
                "--group=root",
                "--pid-file=",
                "--interface=srv0",
                "--bind-interfaces",
                "--dhcp-range=10.50.0.100,10.50.0.150,255.255.255.0,2m",
                "--dhcp-option=option:router,10.50.0.1",
                "--dhcp-option=option:dns-server,10.50.0.53",
                // Renew after 2 s so the test sees a renewal.
                "--dhcp-option=option:T1,2",
                "--dhcp-option=option:T2,4",
                "--log-dhcp",
                "--log-facility=-",
            ])
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .stdout(Stdio::null())
            .stderr(dnsmasq_log)
            .spawn()
            .unwrap(),
    );
    let mut networkd = Networkd::start(&ns, &dir.path().join("state"), &[], false).await;
    networkd
        .apply("interfaces: [{interface: eth0, dhcp: true}]")
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let lease = loop {
        let status = networkd.status().await;
        if let Some(lease) = status.dhcp_leases.first()
            && ns.routes().iter().any(|r| r.starts_with("default"))
        {
            break lease.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no lease; dnsmasq log:\n{}",
            std::fs::read_to_string(dir.path().join("dnsmasq.log")).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(lease.address.starts_with("10.50.0."), "{lease:?}");
    assert!(lease.address.ends_with("/24"), "{lease:?}");
    assert_eq!(lease.gateway, "10.50.0.1");
    assert_eq!(lease.dns_servers, vec!["10.50.0.53"]);
    assert_eq!(lease.server, "10.50.0.1");
    // dnsmasq sends T1 as asked (2 s), give or take its rounding.
    assert!((1..=4).contains(&lease.renew_seconds), "{lease:?}");
    assert!(has(&ns.addresses("eth0"), &lease.address));
    let routes = ns.routes();
    assert!(
        has(&routes, "default via 10.50.0.1 dev eth0 metric 1024"),
        "{routes:?}"
    );
    assert_eq!(
        networkd.file("system/resolved/resolv.conf"),
        "nameserver 10.50.0.53\n"
    );
    let leased_ip = lease.address.split('/').next().unwrap().to_string();
    assert!(
        std::fs::read_to_string(&leases)
            .unwrap()
            .contains(&leased_ip)
    );

    // Renewal at T1 (2 s): unicast REQUEST, ACK, same address.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = networkd.status().await;
        let lease = status.dhcp_leases.first().unwrap();
        if lease.renewals >= 1 {
            assert!(lease.address.starts_with(&leased_ip));
            break;
        }
        assert!(Instant::now() < deadline, "no renewal: {lease:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // DHCP off: the lease's address and route go.
    networkd
        .apply("interfaces: [{interface: eth0}]")
        .await
        .unwrap();
    assert!(!has(&ns.addresses("eth0"), &lease.address));
    assert!(!ns.routes().iter().any(|r| r.starts_with("default")));
    assert!(networkd.status().await.dhcp_leases.is_empty());
}

#[tokio::test]
async fn kernel_ip_argument_and_hostname_in_own_uts_namespace() {
    let ns = Netns::new("kip");
    ns.veth("eth0", "peer0");
    let host_hostname = run("hostname", &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut networkd = Networkd::start(
        &ns,
        dir.path(),
        &[
            "--kernel-ip",
            "10.60.0.2::10.60.0.1:255.255.255.0:kernode:eth0:off:10.60.0.53",
        ],
        true,
    )
    .await;
    assert!(has(&ns.addresses("eth0"), "10.60.0.2/24"));
    let routes = ns.routes();
    assert!(
        has(&routes, "default via 10.60.0.1 dev eth0 metric 1024"),
        "{routes:?}"
    );
    assert_eq!(
        networkd.file("system/resolved/resolv.conf"),
        "nameserver 10.60.0.53\n"
    );
    let pid = networkd.pid().to_string();
    let inside = run("nsenter", &["--uts", "--target", &pid, "hostname"]);
    assert_eq!(inside.trim(), "kernode");
    assert_eq!(run("hostname", &[]), host_hostname);
    assert_eq!(
        networkd.status().await.hostname.unwrap().hostname,
        "kernode"
    );

    // The config's hostname wins over ip='s, applied live.
    networkd
        .client
        .apply(ApplyRequest {
            network_yaml: "hostname: confnode".into(),
            kernel_ip_arg: "10.60.0.2::10.60.0.1:255.255.255.0:kernode:eth0:off".into(),
            documents_yaml: String::new(),
        })
        .await
        .unwrap();
    let inside = run("nsenter", &["--uts", "--target", &pid, "hostname"]);
    assert_eq!(inside.trim(), "confnode");
    assert_eq!(run("hostname", &[]), host_hostname);
}

/// The next status of `stream` that satisfies `wanted`, within 10 s.
async fn next_status(
    stream: &mut tonic::Streaming<NetworkStatus>,
    wanted: impl Fn(&NetworkStatus) -> bool,
) -> NetworkStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("a status within 10 s")
            .unwrap()
            .expect("the stream goes on");
        if wanted(&status) {
            return status;
        }
    }
}

#[tokio::test]
async fn watch_status_follows_the_kernel_and_the_config() {
    let ns = Netns::new("watch");
    ns.veth("eth0", "peer0");
    let dir = tempfile::tempdir().unwrap();
    let mut networkd = Networkd::start(&ns, dir.path(), &[], false).await;
    let mut stream = networkd.client.watch_status(()).await.unwrap().into_inner();
    let has_address = |address: &'static str| {
        move |status: &NetworkStatus| status.addresses.iter().any(|a| a.address == address)
    };

    // The current status at once: the links of the namespace.
    let first = next_status(&mut stream, |_| true).await;
    assert!(first.links.iter().any(|l| l.name == "eth0"), "{first:?}");

    // A change made behind networkd's back arrives through the kernel's notifications.
    ns.ip(&["addr", "add", "10.61.0.9/24", "dev", "peer0"]);
    let added = next_status(&mut stream, has_address("10.61.0.9/24")).await;
    let address = added
        .addresses
        .iter()
        .find(|a| a.address == "10.61.0.9/24")
        .unwrap();
    assert_eq!(
        (address.link_name.as_str(), address.managed),
        ("peer0", false)
    );
    ns.ip(&["addr", "del", "10.61.0.9/24", "dev", "peer0"]);
    next_status(&mut stream, |s| !has_address("10.61.0.9/24")(s)).await;

    // An Apply's address and hostname arrive too, the address as networkd's own.
    networkd
        .apply(
            "hostname: watched\ninterfaces:\n  - interface: eth0\n    addresses: [10.62.0.2/24]\n",
        )
        .await
        .unwrap();
    let applied = next_status(&mut stream, |s| {
        has_address("10.62.0.2/24")(s)
            && s.hostname.as_ref().is_some_and(|h| h.hostname == "watched")
    })
    .await;
    assert!(
        applied
            .addresses
            .iter()
            .any(|a| a.address == "10.62.0.2/24" && a.managed),
        "{applied:?}"
    );

    // SIGTERM with the stream still open: the stream ends and networkd exits at once (the
    // server's graceful shutdown waited for the stream, until machined's SIGKILL 10 s later).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(networkd.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while networkd.process.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "networkd still running 5 s after SIGTERM with a WatchStatus stream open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
    assert!(
        matches!(ended, Ok(Ok(None)) | Ok(Err(_))),
        "the stream ends with networkd: {ended:?}"
    );
}
