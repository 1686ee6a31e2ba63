//! networkd: owns the node's links, addresses, routes, hostname and resolvers.
//!
//! It turns the v1alpha1 `machine.network` section and the kernel `ip=` argument into a desired
//! state ([`plan::Plan`]), refuses an invalid one with every problem and its YAML path before
//! changing anything, and reconciles the kernel (rtnetlink) and the resolver files with it:
//! static addresses and routes, MTU, VLAN/bond/bridge/dummy links, DHCPv4 leases
//! ([`dhcp`]), `resolv.conf` and `hosts`. What it creates is written down in an ownership record
//! ([`owned`]) and removed when it leaves the config; nothing else is ever deleted.
//!
//! machined drives it over gRPC (`talosrs.networkd.NetworkService`) on the Unix socket
//! `<state-dir>/system/run/networkd/networkd.sock`; networkd never listens on the network.
//! machined follows the status through `WatchStatus`, which networkd re-reads on the kernel's
//! link, address and route notifications ([`netlink::Changes`]) and after every pass.
//!
//! Besides the config, machined's operators hand it an operator layer of addresses (a shared
//! VIP while the node holds it; `SetOperatorAddresses`), announced with a gratuitous ARP
//! ([`announce`]) when added and given up when networkd stops.
//!
//! Limits: `deviceSelector`, WireGuard and KubeSpan are accepted but not acted on (Apply lists
//! them as ignored); no DHCPv6; bond `primary` is not set; link kinds the kernel lacks are
//! reported per link while the rest applies.

pub mod announce;
pub mod dhcp;
pub mod engine;
mod error;
pub mod hostfiles;
pub mod kernel_ip;
pub mod netlink;
pub mod owned;
#[allow(unsafe_code)]
mod packet_socket;
pub mod plan;
pub mod service;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tokio_stream::wrappers::UnixListenerStream;

pub use error::NetworkdError;

use crate::engine::Engine;
use crate::plan::{Inputs, Plan};

/// How networkd runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Root of networkd's files (socket, ownership record, resolv.conf, hosts).
    pub state_dir: PathBuf,
    /// A machine config whose `machine.network` is applied at start.
    pub config: Option<PathBuf>,
    /// The kernel `ip=` argument applied at start.
    pub kernel_ip: Option<String>,
    /// Set the kernel hostname even in the host's UTS namespace (OS mode).
    pub set_hostname: bool,
}

/// The socket networkd serves on under `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("system/run/networkd/networkd.sock")
}

/// The inputs of `--config`/`--kernel-ip`: `machine.network` and the network documents of the
/// machine config, and `ip=`.
fn start_inputs(options: &Options) -> Result<Option<Inputs>, NetworkdError> {
    let kernel_ip = options.kernel_ip.clone().unwrap_or_default();
    let Some(path) = &options.config else {
        return Ok(options.kernel_ip.clone().map(|kernel_ip| Inputs {
            kernel_ip,
            ..Inputs::default()
        }));
    };
    let config_error = |message: String| NetworkdError::Config {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| NetworkdError::Io {
        path: path.clone(),
        step: "reading the machine config",
        source,
    })?;
    let config =
        machineconfig::Config::from_yaml(&text).map_err(|e| config_error(e.to_string()))?;
    let network = config
        .v1alpha1
        .and_then(|v| v.machine)
        .and_then(|m| m.network)
        .unwrap_or_default();
    let network_yaml =
        serde_norway::to_string(&network).map_err(|e| config_error(e.to_string()))?;
    let documents = machineconfig::Config {
        v1alpha1: None,
        documents: config.documents,
    };
    let documents_yaml = documents
        .to_yaml()
        .map_err(|e| config_error(e.to_string()))?;
    Ok(Some(Inputs {
        network_yaml,
        kernel_ip,
        documents_yaml,
    }))
}

/// Runs networkd until `shutdown` completes.
pub async fn run(
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NetworkdError> {
    let socket = socket_path(&options.state_dir);
    let run_dir = socket.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&run_dir).map_err(|source| NetworkdError::Io {
        path: run_dir.clone(),
        step: "creating the run directory",
        source,
    })?;
    let may_set_hostname = options.set_hostname || hostfiles::own_uts_namespace();
    let netlink = netlink::Netlink::connect()?;
    let changes = netlink::Changes::subscribe()?;
    let mut engine = Engine::new(
        netlink,
        owned::Record::new(&run_dir),
        hostfiles::HostFiles::under(&options.state_dir),
        may_set_hostname,
    )?;
    let inputs = match start_inputs(&options)? {
        Some(inputs) => Some(inputs),
        None => engine.last_inputs(),
    };
    if let Some(inputs) = inputs {
        let plan = Plan::from_inputs(&inputs).map_err(NetworkdError::Invalid)?;
        let report = engine.apply(plan, inputs).await;
        tracing::info!(
            changes = report.changes.len(),
            errors = report.errors.len(),
            "initial configuration applied"
        );
    }
    let (commands, receiver) = mpsc::channel(16);
    let status = engine.status_watch();
    let engine_task = tokio::spawn(engine.serve(receiver, changes));

    match std::fs::remove_file(&socket) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(NetworkdError::Io {
                path: socket,
                step: "removing the stale socket",
                source: err,
            });
        }
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(&socket).map_err(|source| NetworkdError::Io {
        path: socket.clone(),
        step: "binding",
        source,
    })?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).map_err(
        |source| NetworkdError::Io {
            path: socket.clone(),
            step: "restricting the socket",
            source,
        },
    )?;
    tracing::info!(socket = %socket.display(), may_set_hostname, "serving");
    let (stopping, stopping_seen) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let served = tonic::transport::Server::builder()
        .add_service(
            proto::talosrs::networkd::network_service_server::NetworkServiceServer::new(
                service::Service::new(commands, status, stopping_seen),
            ),
        )
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    tracing::debug!("server stopped");
    let _ = std::fs::remove_file(&socket);
    // The server (and with it the last command sender) is gone: the engine stops its DHCP
    // clients and ends. Addresses and routes stay, so a restart does not drop the network.
    let _ = engine_task.await;
    tracing::debug!("engine stopped");
    served.map_err(|source| NetworkdError::Serve {
        path: socket,
        source,
    })
}
