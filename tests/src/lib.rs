//! A harness for tests that cross daemons: dev-mode nodes (real `machined`, which runs the real
//! `apid`) on loopback addresses of their own, driven with the real `talosctl`.
//!
//! The binaries come from the same target directory as the test executable; `scripts/test.sh`
//! builds them first (`cargo build --workspace --bins`). Each test uses its own `127.N.0.0/24`
//! block so that tests can run in parallel; apid always listens on port 50000, as upstream.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod chrony;
mod local_cluster;
mod metadata_server;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use chrony::{Chrony, free_udp_port};
pub use local_cluster::LocalCluster;
pub use metadata_server::{Answer, MetadataServer, Reply, Request};

/// A built binary of the workspace (`machined`, `apid`, `talosctl`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// One dev-mode node: a machined process with its own state directory.
#[derive(Debug)]
pub struct Node {
    pub address: Ipv4Addr,
    pub state_dir: PathBuf,
    machined_args: Vec<String>,
    /// The network namespace machined runs in, if not the host's.
    namespace: Option<String>,
    machined: Option<Child>,
}

impl Node {
    /// Starts machined for `address` with `config` (None: maintenance mode).
    pub fn start(address: Ipv4Addr, state_dir: PathBuf, config: Option<&str>) -> Node {
        Node::start_with(address, state_dir, config, &[])
    }

    /// Like [`Node::start`], with extra machined arguments (e.g. `--certificate-ttl-seconds`).
    pub fn start_with(
        address: Ipv4Addr,
        state_dir: PathBuf,
        config: Option<&str>,
        machined_args: &[&str],
    ) -> Node {
        if let Some(config) = config {
            let dir = state_dir.join("system/state");
            std::fs::create_dir_all(&dir).expect("state dir");
            std::fs::write(dir.join("config.yaml"), config).expect("config written");
        }
        let mut node = Node {
            address,
            state_dir,
            machined_args: machined_args.iter().map(|a| a.to_string()).collect(),
            namespace: None,
            machined: None,
        };
        node.boot();
        node
    }

    /// Like [`Node::start_with`], with machined in `namespace` (`ip netns exec`, which execs,
    /// so the child is machined itself).
    pub fn start_in(
        namespace: &NetworkNamespace,
        address: Ipv4Addr,
        state_dir: PathBuf,
        config: Option<&str>,
        machined_args: &[&str],
    ) -> Node {
        let mut node = Node::start_with(address, state_dir, config, machined_args);
        node.stop();
        node.namespace = Some(namespace.name.clone());
        node.boot();
        node
    }

    /// Starts (again) the machined process of this node.
    pub fn boot(&mut self) {
        std::fs::create_dir_all(&self.state_dir).expect("state dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state_dir.join("machined.log"))
            .expect("machined log");
        let mut command = match &self.namespace {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", namespace])
                    .arg(binary("machined"));
                command
            }
            None => Command::new(binary("machined")),
        };
        let child = command
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--api-address")
            .arg(format!("{}:50000", self.address))
            .arg("--hostname")
            .arg(format!("node-{}", self.address.octets()[3]))
            .args(&self.machined_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("machined starts");
        self.machined = Some(child);
    }

    /// Stops machined (SIGTERM: it stops its services first) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.machined.take() {
            let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The machined process id.
    pub fn machined_pid(&self) -> Option<u32> {
        self.machined.as_ref().map(Child::id)
    }

    /// The PID of this node's apid (a child of machined, found by its TLS directory).
    pub fn apid_pid(&self) -> Option<u32> {
        self.api_service_pid("apid")
    }

    /// The PID of this node's `apid` or `trustd` (children of machined, found by their TLS
    /// directories).
    pub fn api_service_pid(&self, program: &str) -> Option<u32> {
        let marker = self.state_dir.join("system/secrets").join(program);
        let marker = marker.to_string_lossy();
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline);
                (cmdline.contains(program) && cmdline.contains(&*marker)).then_some(pid)
            })
    }

    /// The node's persisted config.
    pub fn persisted_config(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("system/state/config.yaml")).unwrap_or_default()
    }

    /// machined's, apid's and trustd's logs, for failure messages.
    pub fn logs(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- machined ---\n{}\n--- apid ---\n{}\n--- trustd ---\n{}",
            read(self.state_dir.join("machined.log")),
            read(self.state_dir.join("var/log/apid.log")),
            read(self.state_dir.join("var/log/trustd.log"))
        )
    }

    /// The serial of the certificate apid serves to a new connection (lower-case hex), or
    /// `None` while nothing answers TLS there.
    pub fn serving_serial(&self) -> Option<String> {
        let leaf = self.serving_certificate()?;
        Some(pki::CertificateInfo::from_der(&leaf).ok()?.serial)
    }

    /// The DER certificate apid serves to a new connection, or `None` while nothing answers
    /// TLS there.
    pub fn serving_certificate(&self) -> Option<Vec<u8>> {
        use std::io::Write as _;
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(RecordAnyCertificate))
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from(self.address));
        let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).ok()?;
        let tcp = std::net::TcpStream::connect((self.address, 50000)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        tls.flush().ok()?;
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).ok()?;
        }
        Some(tls.conn.peer_certificates()?.first()?.to_vec())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A network namespace of a test's own, with `lo` up, deleted when dropped.
#[derive(Debug)]
pub struct NetworkNamespace {
    pub name: String,
}

impl NetworkNamespace {
    /// Creates `talosrs-<name>-<pid>`.
    pub fn new(name: &str) -> NetworkNamespace {
        NetworkNamespace::named(format!("talosrs-{name}-{}", std::process::id()))
    }

    /// Creates the namespace `name` exactly (for tests whose namespaces have a prefix of their
    /// own).
    pub fn named(name: String) -> NetworkNamespace {
        let namespace = NetworkNamespace { name };
        namespace.ip(&["netns", "add", &namespace.name]);
        namespace.run(&["ip", "link", "set", "lo", "up"]);
        namespace
    }

    /// Runs `ip ARGS` on the host, panicking on failure.
    fn ip(&self, args: &[&str]) {
        let status = Command::new("ip").args(args).status().expect("ip runs");
        assert!(status.success(), "ip {args:?} failed");
    }

    /// Runs `program ARGS` inside the namespace, panicking on failure; returns stdout.
    pub fn run(&self, command: &[&str]) -> String {
        let output = self
            .command(command[0])
            .args(&command[1..])
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{command:?} in {}: {output:?}",
            self.name
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }
}

impl Drop for NetworkNamespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// Reads the server certificate without judging it: [`Node::serving_serial`] only looks.
#[derive(Debug)]
struct RecordAnyCertificate;

impl rustls::client::danger::ServerCertVerifier for RecordAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The nodes of one generated cluster, and the talosconfig to reach them.
#[derive(Debug)]
pub struct Cluster {
    pub block: u8,
    pub nodes: Vec<Node>,
    pub dir: tempfile::TempDir,
}

/// Which generated config a node gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    ControlPlane,
    Worker,
}

impl Cluster {
    /// `count` control planes on `127.<block>.0.2`, `.3`, …, all answering.
    pub fn start(block: u8, count: u8) -> Cluster {
        let mut cluster = Cluster::generate(block);
        for i in 0..count {
            cluster.add_node(NodeKind::ControlPlane, 2 + i, &[]);
        }
        for node in &cluster.nodes {
            cluster.wait_until_answering(node);
        }
        cluster
    }

    /// Generates the configs of a cluster whose control-plane endpoint is `127.<block>.0.2`,
    /// without starting any node.
    pub fn generate(block: u8) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Ipv4Addr::new(127, block, 0, 2);
        let output = Command::new(binary("talosctl"))
            .args([
                "gen",
                "config",
                "test",
                &format!("https://{first}:6443"),
                "-o",
            ])
            .arg(dir.path())
            .output()
            .expect("talosctl runs");
        assert!(output.status.success(), "gen config: {output:?}");
        Cluster {
            block,
            nodes: Vec::new(),
            dir,
        }
    }

    /// Starts a node on `127.<block>.0.<last_octet>` with the generated config of `kind` and
    /// extra machined arguments; returns its index in `nodes`. It is not waited for.
    pub fn add_node(&mut self, kind: NodeKind, last_octet: u8, machined_args: &[&str]) -> usize {
        let config = match kind {
            NodeKind::ControlPlane => self.controlplane_config(),
            NodeKind::Worker => self.worker_config(),
        };
        let address = Ipv4Addr::new(127, self.block, 0, last_octet);
        let state_dir = self.dir.path().join(format!("node-{last_octet}"));
        let node = Node::start_with(address, state_dir, Some(&config), machined_args);
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The generated talosconfig.
    pub fn talosconfig(&self) -> PathBuf {
        self.dir.path().join("talosconfig")
    }

    /// The generated control plane config.
    pub fn controlplane_config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("controlplane.yaml")).expect("config")
    }

    /// The generated worker config.
    pub fn worker_config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.yaml")).expect("config")
    }

    /// Runs talosctl with this cluster's talosconfig, through the first node's endpoint.
    pub fn talosctl(&self, args: &[&str]) -> Output {
        self.talosctl_via(&self.nodes[0], args)
    }

    /// Applies `config` (written to `name` in the cluster's folder) to the first node in
    /// no-reboot mode; the command's output.
    pub fn apply_no_reboot(&self, name: &str, config: &str) -> Output {
        let file = self.dir.path().join(name);
        std::fs::write(&file, config).expect("writing the config to apply");
        let node = self.nodes[0].address.to_string();
        self.talosctl(&[
            "-n",
            &node,
            "apply-config",
            "--mode",
            "no-reboot",
            "-f",
            &file.to_string_lossy(),
        ])
    }

    /// Runs talosctl with this cluster's talosconfig, dialling `endpoint`.
    pub fn talosctl_via(&self, endpoint: &Node, args: &[&str]) -> Output {
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(self.talosconfig())
            .arg("-e")
            .arg(endpoint.address.to_string())
            .args(args)
            .env_remove("TALOSCONFIG")
            .output()
            .expect("talosctl runs")
    }

    /// Waits (up to 30 s) until `node` answers Version through its own apid.
    pub fn wait_until_answering(&self, node: &Node) {
        let address = node.address.to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = self.talosctl_via(node, &["-n", &address, "version"]);
            if output.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {address} did not answer: {}\n{}",
                String::from_utf8_lossy(&output.stderr),
                node.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One VM at a time: a TCG guest takes two host cores, and two guests side by side on a
/// two-core machine starved each other into soft lockups while runc started their tasks.
/// (In-process only: runs of several test binaries take `flock /tmp/talos-rs-qemu.lock`.)
static ONE_VM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for the VM slot (held until the returned guard drops, even after a failed test).
pub fn one_vm() -> std::sync::MutexGuard<'static, ()> {
    ONE_VM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The image outputs (`_out/image`), panicking with the command that builds them when one of
/// `needs` (paths inside it) is missing.
pub fn image_dir(needs: &[&str], built_by: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../_out/image");
    for file in needs {
        assert!(
            dir.join(file).exists(),
            "{} is missing: run `{built_by}` first",
            dir.join(file).display()
        );
    }
    dir
}

/// Runs a command, killing it after `timeout` (QEMU's user networking accepts connections
/// before the guest listens, so a client can hang).
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Output {
    run_bounded_with_input(command, None, timeout)
}

/// [`run_bounded`] with `input` piped to its stdin (then closed).
pub fn run_bounded_with_input(
    command: &mut Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Output {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::inherit()
    };
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    if let Some(input) = input {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("the command's stdin");
        stdin.write_all(input).expect("writing the command's input");
    }
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("waiting for the command").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("the command's output")
}

/// stdout of a successful run, or a panic with its stderr.
pub fn success(output: Output) -> String {
    assert!(
        output.status.success(),
        "command failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a failed run, or a panic with its stdout.
pub fn failure(output: Output) -> String {
    assert!(
        !output.status.success(),
        "command unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Retries `attempt` for up to 30 s until it returns true.
pub fn eventually(what: &str, mut attempt: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !attempt() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}
