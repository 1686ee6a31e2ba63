//! Running a node as an ordinary process (dev mode): the node's tree lives under a state
//! directory, apid listens on the address given, and the services are child processes.
//!
//! The sequence: create the layout, load the persisted config (or start in maintenance), serve
//! the machine API on the Unix socket, keep apid's TLS material and mode in step with the
//! active config, and wait for a reboot or shutdown request (API or SIGTERM/SIGINT), which stops
//! every service in order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use proto::cosi::resource::state_server::StateServer;
use proto::machine::machine_service_server::MachineServiceServer;
use proto::machine::{
    ConfigLoadErrorEvent, MachineStatusEvent, SequenceEvent, TaskEvent, machine_status_event,
    sequence_event, task_event,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnixListenerStream;

use crate::api::{AuthorizationLayer, MachineApi, ResourceApi};
use crate::apid_tls::TlsInputs;
use crate::error::MachinedError;
use crate::events::EventBus;
use crate::layout::Layout;
use crate::machine::{Lifecycle, Machine, Platform};
use crate::node_config::NodeConfig;
use crate::services::{
    ApiOperations, HealthCheck, LogLimits, ServiceSpec, Supervisor, SupervisorConfig,
};

/// Largest gRPC message in either direction, as upstream.
const MAX_MESSAGE_SIZE: usize = 32 << 20;

/// How a dev-mode node is run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Root of the node's file tree.
    pub state_dir: PathBuf,
    /// Where apid listens (its IP is the node's address).
    pub api_address: SocketAddr,
    /// Hostname when the config names none.
    pub hostname: String,
    /// The apid binary.
    pub apid: PathBuf,
    /// The platform Version reports (`dev` in dev mode) and the mode configs are checked for.
    pub platform: Platform,
}

/// How [`run`] ended: the caller restarts the process for a reboot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Reboot,
    Shutdown,
}

/// Runs the node until a reboot or shutdown request has stopped every service.
pub async fn run(options: Options) -> Result<Exit, MachinedError> {
    let layout = Layout::new(&options.state_dir);
    layout.create()?;
    let events = EventBus::default();
    publish_sequence(&events, "boot", sequence_event::Action::Start, None);
    let services = Supervisor::spawn(
        SupervisorConfig {
            log_dir: layout.log_dir(),
            log_limits: LogLimits::default(),
        },
        events.clone(),
    )?;
    let platform = options.platform.clone();
    let (config, problem) = NodeConfig::load(layout.config_file(), platform.mode);
    if let Some(error) = problem {
        tracing::error!(%error, "cannot load the machine config: starting in maintenance mode");
        events.publish(&ConfigLoadErrorEvent { error }, None);
    }
    let state = layout.root().to_path_buf();
    let files = filebrowse::Roots::new([
        ("/proc", PathBuf::from("/proc")),
        ("/sys", PathBuf::from("/sys")),
        ("/system", state.join("system")),
        ("/var", state.join("var")),
    ])?;
    let (lifecycle, mut lifecycle_requests) = mpsc::channel(1);
    let machine = Arc::new(Machine {
        layout,
        platform,
        api_address: options.api_address,
        events: events.clone(),
        services: services.clone(),
        config,
        host: hostinfo::Host::new("/proc", "/sys"),
        files,
        lifecycle,
        default_hostname: options.hostname.clone(),
    });

    let (stop_api, api) = serve_api(&machine)?;
    let apid = tokio::spawn(keep_apid_in_step(
        Arc::clone(&machine),
        options.apid.clone(),
    ));
    publish_sequence(&events, "boot", sequence_event::Action::Stop, None);

    let request = tokio::select! {
        request = lifecycle_requests.recv() => request,
        () = termination_signal() => None,
    };
    let (exit, actor_id) = match request {
        Some((Lifecycle::Reboot, actor)) => (Exit::Reboot, Some(actor)),
        Some((Lifecycle::Shutdown, actor)) => (Exit::Shutdown, Some(actor)),
        None => (Exit::Shutdown, None),
    };
    let sequence = match exit {
        Exit::Reboot => "reboot",
        Exit::Shutdown => "shutdown",
    };
    let actor = actor_id.as_deref();
    publish_sequence(&events, sequence, sequence_event::Action::Start, actor);
    let stage = match exit {
        Exit::Reboot => machine_status_event::MachineStage::Rebooting,
        Exit::Shutdown => machine_status_event::MachineStage::ShuttingDown,
    };
    events.publish(
        &MachineStatusEvent {
            stage: stage as i32,
            status: None,
        },
        actor,
    );
    // Let the reply to Reboot/Shutdown travel back through apid before apid stops.
    tokio::time::sleep(Duration::from_millis(300)).await;
    apid.abort();
    publish_task(&events, "stopAllServices", task_event::Action::Start, actor);
    services.stop_all().await?;
    publish_task(&events, "stopAllServices", task_event::Action::Stop, actor);
    let _ = stop_api.send(());
    let _ = api.await;
    let _ = std::fs::remove_file(machine.layout.machine_socket());
    publish_sequence(&events, sequence, sequence_event::Action::Stop, actor);
    Ok(exit)
}

/// Serves the machine API on the Unix socket until `stop` fires.
fn serve_api(
    machine: &Arc<Machine>,
) -> Result<(oneshot::Sender<()>, tokio::task::JoinHandle<()>), MachinedError> {
    let socket = machine.layout.machine_socket();
    let _ = std::fs::remove_file(&socket);
    let listener =
        tokio::net::UnixListener::bind(&socket).map_err(MachinedError::io("binding", &socket))?;
    let service = MachineServiceServer::new(MachineApi::new(Arc::clone(machine)))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .layer(AuthorizationLayer)
        .add_service(service)
        .add_service(StateServer::new(ResourceApi::new(Arc::clone(machine))))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
            let _ = stopped.await;
        });
    let task = tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "machine API server failed");
        }
    });
    tracing::info!(socket = %socket.display(), "machine API listening");
    Ok((stop, task))
}

/// Keeps apid's certificates and mode (maintenance or normal) in step with the active config:
/// new inputs issue new certificates; a mode change restarts apid with the new command line;
/// otherwise apid reloads its certificates on SIGHUP without dropping open streams.
async fn keep_apid_in_step(machine: Arc<Machine>, apid: PathBuf) {
    let mut changes = machine.config.subscribe();
    let tls_dir = machine.layout.apid_tls_dir();
    let mut applied: Option<(TlsInputs, bool)> = None;
    loop {
        let config = changes.borrow_and_update().clone();
        let inputs = TlsInputs::new(
            machine.hostname(),
            vec![machine.address()],
            config.as_deref(),
        );
        if applied.as_ref().map(|(i, _)| i) != Some(&inputs) {
            let issued = inputs
                .issue()
                .and_then(|tls| tls.write(&tls_dir).map(|()| tls));
            match issued {
                Ok(tls) => {
                    let spec = apid_spec(&machine, &apid, tls.maintenance);
                    let result = match &applied {
                        None => start_service(&machine.services, spec).await,
                        Some((_, maintenance)) if *maintenance != tls.maintenance => {
                            // Let the ApplyConfiguration reply leave through apid first.
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            restart_with(&machine.services, spec).await
                        }
                        Some(_) => machine
                            .services
                            .signal("apid", Signal::SIGHUP)
                            .await
                            .map(drop)
                            .map_err(MachinedError::from),
                    };
                    match result {
                        Ok(()) => applied = Some((inputs, tls.maintenance)),
                        Err(error) => tracing::error!(%error, "cannot run apid"),
                    }
                    publish_status(&machine.events, tls.maintenance);
                }
                Err(error) => {
                    tracing::error!(%error, "cannot issue apid certificates");
                    let _ = machine.services.stop("apid").await;
                    applied = None;
                }
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

async fn start_service(services: &Supervisor, spec: ServiceSpec) -> Result<(), MachinedError> {
    let id = spec.id.clone();
    match services.register(spec.clone()).await {
        Ok(()) => {}
        Err(crate::services::ServiceError::AlreadyRegistered { .. }) => {
            services.update(spec).await?;
        }
        Err(error) => return Err(error.into()),
    }
    services.start(&id).await?;
    Ok(())
}

async fn restart_with(services: &Supervisor, spec: ServiceSpec) -> Result<(), MachinedError> {
    let id = spec.id.clone();
    services.update(spec).await?;
    services.restart(&id).await?;
    Ok(())
}

fn apid_spec(machine: &Machine, apid: &std::path::Path, maintenance: bool) -> ServiceSpec {
    let address = machine.api_address.to_string();
    let socket = machine.layout.machine_socket();
    let tls_dir = machine.layout.apid_tls_dir();
    let mut args = vec![
        "--listen".to_string(),
        address,
        "--machined-socket".to_string(),
        socket.display().to_string(),
        "--tls-dir".to_string(),
        tls_dir.display().to_string(),
        "--local-name".to_string(),
        machine.hostname(),
        "--local-name".to_string(),
        machine.address().to_string(),
    ];
    if maintenance {
        args.push("--maintenance".to_string());
    }
    let mut env = vec![];
    if let Ok(filter) = std::env::var("RUST_LOG") {
        env.push(("RUST_LOG".to_string(), filter));
    }
    ServiceSpec {
        args,
        env,
        health_check: Some(HealthCheck::tcp(machine.api_address)),
        api: ApiOperations::NONE,
        ..ServiceSpec::process("apid", apid)
    }
}

fn publish_status(events: &EventBus, maintenance: bool) {
    let stage = if maintenance {
        machine_status_event::MachineStage::Maintenance
    } else {
        machine_status_event::MachineStage::Running
    };
    events.publish(
        &MachineStatusEvent {
            stage: stage as i32,
            status: Some(machine_status_event::MachineStatus {
                ready: true,
                unmet_conditions: Vec::new(),
            }),
        },
        None,
    );
}

fn publish_sequence(
    events: &EventBus,
    sequence: &str,
    action: sequence_event::Action,
    actor: Option<&str>,
) {
    events.publish(
        &SequenceEvent {
            sequence: sequence.to_string(),
            action: action as i32,
            error: None,
        },
        actor,
    );
}

fn publish_task(events: &EventBus, task: &str, action: task_event::Action, actor: Option<&str>) {
    events.publish(
        &TaskEvent {
            task: task.to_string(),
            action: action as i32,
        },
        actor,
    );
}

async fn termination_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}
