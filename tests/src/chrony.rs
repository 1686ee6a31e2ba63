//! A real NTP server for tests: chronyd on loopback, killed by PID when dropped.

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// chronyd serving NTP on 127.0.0.1:`port` and [::1]:`port`, stratum 8 from its local clock,
/// never touching the system clock (`-x`), no command port.
#[derive(Debug)]
pub struct Chrony {
    child: Child,
    /// The server as timed and the machine config take it (`127.0.0.1:PORT`).
    pub server: String,
    /// The port; chronyd also answers on `[::1]:PORT`.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Chrony {
    /// Starts chronyd and waits (up to 10 s) until it answers an SNTP query.
    pub fn start() -> Chrony {
        let dir = tempfile::tempdir().expect("temp dir");
        // chronyd drops root to its own user: let it write its drift file here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let port = free_udp_port();
        let conf = dir.path().join("chrony.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbindaddress 127.0.0.1\nbindaddress ::1\nlocal stratum 8\n\
                 allow 127.0.0.0/8\nallow ::1\n\
                 cmdport 0\npidfile {dir}/chronyd.pid\ndriftfile {dir}/drift\n",
                dir = dir.path().display()
            ),
        )
        .expect("chrony.conf");
        let child = Command::new(chronyd())
            .args(["-x", "-d", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chronyd starts (apt-get install chrony)");
        let chrony = Chrony {
            child,
            server: format!("127.0.0.1:{port}"),
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_sntp(port) {
            assert!(
                Instant::now() < deadline,
                "chronyd did not answer on {}",
                chrony.server
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        chrony
    }
}

impl Drop for Chrony {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free UDP port on 127.0.0.1 (bound, then released).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// Whether an SNTP client request (version 4, mode 3) to 127.0.0.1:`port` gets an answer.
fn answers_sntp(port: u16) -> bool {
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let mut request = [0u8; 48];
    request[0] = (4 << 3) | 3;
    // A non-zero transmit timestamp: servers echo it as the origin.
    request[40..48].copy_from_slice(&1u64.to_be_bytes());
    let mut reply = [0u8; 48];
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_ok()
        && socket.send_to(&request, ("127.0.0.1", port)).is_ok()
        && socket.recv(&mut reply).is_ok_and(|n| n == 48)
}

fn chronyd() -> PathBuf {
    ["/usr/sbin/chronyd", "/sbin/chronyd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("chronyd"))
}
