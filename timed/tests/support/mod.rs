//! Real processes for timed's tests and bench: a chronyd NTP server on loopback and the timed
//! binary, each killed by PID when dropped.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::talosrs::timed::timed_service_client::TimedServiceClient;
use proto::time::time_service_client::TimeServiceClient;
use tonic::transport::Channel;

pub use tests::Chrony;

/// A UDP socket on loopback that receives and never answers: a dead NTP server.
#[derive(Debug)]
pub struct Silent {
    _socket: UdpSocket,
    /// The server as timed takes it.
    pub server: String,
}

impl Silent {
    /// Binds the silent socket.
    pub fn bind() -> Silent {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address: SocketAddr = socket.local_addr().unwrap();
        Silent {
            server: address.to_string(),
            _socket: socket,
        }
    }
}

/// The timed binary in measure-only mode with its own state dir.
#[derive(Debug)]
pub struct Timed {
    child: Child,
    /// Its state dir.
    pub dir: tempfile::TempDir,
}

impl Timed {
    /// Starts `timed --measure-only --state-dir <tmp> ARGS...` and waits for its socket.
    pub async fn start(args: &[&str]) -> Timed {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_timed"))
            .arg("--state-dir")
            .arg(dir.path())
            .arg("--measure-only")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let timed = Timed { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !timed.socket().exists() {
            assert!(Instant::now() < deadline, "timed did not create its socket");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        timed
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most 10 s) for timed to exit by itself.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "timed did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// timed's socket.
    pub fn socket(&self) -> PathBuf {
        timed::socket_path(self.dir.path())
    }

    /// A channel over the socket.
    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("unix:{}", self.socket().display()))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A `talosrs.timed.TimedService` client.
    pub async fn timed(&self) -> TimedServiceClient<Channel> {
        TimedServiceClient::new(self.channel().await)
    }

    /// A `time.TimeService` client.
    pub async fn time(&self) -> TimeServiceClient<Channel> {
        TimeServiceClient::new(self.channel().await)
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
