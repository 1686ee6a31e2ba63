//! timed: the talos-rs time daemon, an SNTP client (RFC 4330, client mode of RFC 5905).
//!
//! It polls the servers of `machine.time.servers` (default `time.cloudflare.com`), keeps the
//! sample with the smallest root distance, sets the clock on the first sync and then slews small
//! offsets (steps large ones) through the kernel, as upstream Talos does. It serves gRPC only on
//! the Unix socket `<state-dir>/system/run/timed/timed.sock`: upstream `time.TimeService` (so
//! machined forwards it unchanged) and `talosrs.timed.TimedService` (status, a status stream,
//! live configuration).
//!
//! Limits: one sample per server per poll (no clock filter or selection/clustering algorithm
//! of full NTP), no NTS, no authentication (MAC) and no leap-second handling; a sample's
//! offset is applied as measured. `machine.time.bootTimeout` is machined's to apply (it waits on
//! `WatchStatus`). With `--measure-only` the clock is never changed.

mod api;
mod clock;
pub mod packet;
pub mod query;
mod sync;

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proto::talosrs::timed::timed_service_server::TimedServiceServer;
use proto::time::time_service_server::TimeServiceServer;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;

pub use sync::{DEFAULT_SERVER, PollPolicy, Settings};

/// Everything that can go wrong in timed.
#[derive(Debug, thiserror::Error)]
pub enum TimedError {
    /// A file system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The machine config could not be read.
    #[error("machine config {}: {source}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// Why it was rejected (boxed: it is large).
        source: Box<machineconfig::ConfigError>,
    },
    /// A server entry is not `host`, `host:port` or an IP literal.
    #[error("invalid NTP server {server:?}: {reason}")]
    InvalidServer {
        /// The entry.
        server: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Name resolution failed.
    #[error("resolving NTP server {server}: {source}")]
    Resolve {
        /// The server.
        server: String,
        /// Why.
        source: io::Error,
    },
    /// The name resolved to no address.
    #[error("NTP server {server} has no address")]
    NoAddress {
        /// The server.
        server: String,
    },
    /// Sending or receiving failed (for example ICMP port unreachable).
    #[error("NTP server {server} ({address}): {source}")]
    Network {
        /// The server.
        server: String,
        /// The address queried.
        address: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// No reply in time.
    #[error("NTP server {server} ({address}) did not answer within {timeout:?}")]
    Timeout {
        /// The server.
        server: String,
        /// The address queried.
        address: std::net::SocketAddr,
        /// How long we waited.
        timeout: Duration,
    },
    /// The reply failed a sanity check.
    #[error("NTP server {server} ({address}) sent a bad reply: {reason}")]
    BadReply {
        /// The server.
        server: String,
        /// The address queried.
        address: std::net::SocketAddr,
        /// Which check failed.
        reason: String,
    },
    /// The server refused service (stratum 0).
    #[error("NTP server {server} ({address}) refused service: kiss code {code}")]
    KissOfDeath {
        /// The server.
        server: String,
        /// The address queried.
        address: std::net::SocketAddr,
        /// The kiss code (`RATE`, `DENY`, ...).
        code: String,
    },
    /// The server says its own clock is not synchronised.
    #[error("NTP server {server} ({address}) is not synchronised")]
    ServerUnsynchronised {
        /// The server.
        server: String,
        /// The address queried.
        address: std::net::SocketAddr,
    },
    /// A poll got no good sample from any server.
    #[error("no NTP server answered: {errors}")]
    NoServerAnswered {
        /// Each server's error.
        errors: String,
    },
    /// Reading or changing the system clock failed.
    #[error("{operation} the system clock: {source}")]
    Clock {
        /// What was being done.
        operation: &'static str,
        /// The errno.
        source: nix::Error,
    },
    /// The signal handlers could not be installed.
    #[error("installing signal handlers: {source}")]
    Signal {
        /// Why.
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("serving on {}: {source}", socket.display())]
    Serve {
        /// The socket.
        socket: PathBuf,
        /// Why.
        source: tonic::transport::Error,
    },
}

/// How timed runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Root of timed's files; the socket is `system/run/timed/timed.sock` under it.
    pub state_dir: PathBuf,
    /// Servers from the command line; they replace the config file's.
    pub servers: Vec<String>,
    /// A machine config whose `machine.time` is used.
    pub config: Option<PathBuf>,
    /// Never change the clock.
    pub measure_only: bool,
    /// Start with sync off, whatever the config says, until `Configure` turns it on.
    pub disabled: bool,
    /// Poll intervals.
    pub poll: PollPolicy,
    /// How long one query waits for its reply.
    pub query_timeout: Duration,
}

/// The socket timed serves on, under `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("system/run/timed/timed.sock")
}

/// The starting settings: the config file's `machine.time`, with `--server` replacing its servers.
pub fn initial_settings(options: &Options) -> Result<Settings, TimedError> {
    let mut servers = Vec::new();
    let mut disabled = false;
    if let Some(path) = &options.config {
        let text = std::fs::read_to_string(path).map_err(|source| TimedError::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        let config =
            machineconfig::Config::from_yaml(&text).map_err(|source| TimedError::Config {
                path: path.clone(),
                source: Box::new(source),
            })?;
        if let Some(time) = config
            .v1alpha1
            .as_ref()
            .and_then(|v| v.machine.as_ref())
            .and_then(|m| m.time.as_ref())
        {
            servers.clone_from(&time.servers);
            disabled = time.disabled.unwrap_or(false);
        }
    }
    if !options.servers.is_empty() {
        servers.clone_from(&options.servers);
    }
    Settings::new(&servers, disabled || options.disabled)
}

/// How long open connections may take to finish once timed is told to stop.
const DRAIN: Duration = Duration::from_millis(500);

/// Runs timed until SIGINT or SIGTERM.
pub async fn run(options: Options) -> Result<(), TimedError> {
    let settings = initial_settings(&options)?;
    let shutdown = shutdown_signal()?;
    let socket = socket_path(&options.state_dir);
    let listener = bind(&socket)?;

    match clock::kernel_unsynchronised() {
        Ok(unsynchronised) => tracing::info!(kernel_unsynchronised = unsynchronised, "clock state"),
        Err(error) => tracing::warn!(%error, "cannot read the kernel clock state"),
    }
    tracing::info!(
        servers = ?settings.servers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        disabled = settings.disabled,
        measure_only = options.measure_only,
        socket = %socket.display(),
        "timed listening"
    );

    let (settings_tx, settings_rx) = watch::channel(settings);
    let settings_tx = Arc::new(settings_tx);
    let (state_tx, state_rx) = watch::channel(sync::SyncState::default());
    let sync_task = tokio::spawn(
        sync::SyncLoop {
            settings: settings_rx,
            state: state_tx,
            measure_only: options.measure_only,
            poll: options.poll,
            query_timeout: options.query_timeout,
        }
        .run(),
    );

    let api = api::Api {
        settings: Arc::clone(&settings_tx),
        state: state_rx,
        query_timeout: options.query_timeout,
    };
    let (signalled, drain) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(TimeServiceServer::new(api.clone()))
        .add_service(TimedServiceServer::new(api))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            shutdown.await;
            let _ = signalled.send(());
        });
    // A client's open stream (machined watches the clock) would hold a graceful shutdown until
    // SIGKILL: once signalled, open connections get DRAIN to finish.
    let served = tokio::select! {
        result = server => result.map_err(|source| TimedError::Serve {
            socket: socket.clone(),
            source,
        }),
        () = async {
            if drain.await.is_ok() {
                tokio::time::sleep(DRAIN).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::info!(limit = ?DRAIN, "connections still open: stopping anyway");
            Ok(())
        }
    };
    sync_task.abort();
    let _ = std::fs::remove_file(&socket);
    tracing::info!("timed stopped");
    served
}

/// Binds the socket (directory 0700, stale socket replaced).
fn bind(socket: &Path) -> Result<tokio::net::UnixListener, TimedError> {
    let io_error = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| TimedError::Io {
            action,
            path,
            source,
        }
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_error("restricting", dir))?;
    }
    // Bind under a temporary name and rename into place, so the socket appears only once it
    // listens (a client never meets a socket file that refuses connections).
    let fresh = socket.with_extension("sock.new");
    for path in [&fresh, &socket.to_path_buf()] {
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(io_error("removing stale", path)(error));
            }
            _ => {}
        }
    }
    let listener = tokio::net::UnixListener::bind(&fresh).map_err(io_error("binding", &fresh))?;
    std::fs::rename(&fresh, socket).map_err(io_error("publishing", socket))?;
    Ok(listener)
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal from the moment the socket exists
/// stops timed cleanly) and returns a future that resolves on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, TimedError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|source| TimedError::Signal { source })?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|source| TimedError::Signal { source })?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("signal received; stopping");
    })
}
