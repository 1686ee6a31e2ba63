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

use proto::cluster::cluster_service_server::ClusterServiceServer;
use proto::cosi::resource::state_server::StateServer;
use proto::inspect::inspect_service_server::InspectServiceServer;
use proto::machine::debug_service_server::DebugServiceServer;
use proto::machine::image_service_server::ImageServiceServer;
use proto::machine::lifecycle_service_server::LifecycleServiceServer;
use proto::machine::machine_service_server::MachineServiceServer;
use proto::machine::{
    ConfigLoadErrorEvent, MachineStatusEvent, SequenceEvent, TaskEvent, machine_status_event,
    sequence_event, task_event,
};
use proto::storage::storage_service_server::StorageServiceServer;
use proto::time::time_service_server::TimeServiceServer;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnixListenerStream;

use crate::api::{
    AuthorizationLayer, HealthApi, ImageApi, InspectApi, LifecycleApi, MachineApi, ResourceApi,
    StorageApi, TimeApi,
};
use crate::api_services::{self, ApiServices};
use crate::containerd::SystemContainerd;
use crate::environment;
use crate::error::MachinedError;
use crate::etcd;
use crate::events::EventBus;
use crate::kubelet;
use crate::layout::Layout;
use crate::machine::{Lifecycle, Machine, Platform, ResetPlan};
use crate::network;
use crate::node_config::NodeConfig;
use crate::services::{LogLimits, Supervisor, SupervisorConfig};
use crate::time_sync;

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
    /// The apid and trustd programs and the certificate lifetime.
    pub api_services: ApiServices,
    /// The timed program.
    pub timed: PathBuf,
    /// The networkd program, when machined owns the network namespace it runs in.
    pub networkd: Option<PathBuf>,
    /// The etcd program (control planes).
    pub etcd: PathBuf,
    /// containerd, when the system services run as its tasks (OS mode).
    pub containerd: Option<SystemContainerd>,
    /// The platform Version reports (`dev` in dev mode) and the mode configs are checked for.
    pub platform: Platform,
    /// The release Version reports (the image's, or this build's in dev mode).
    pub release: String,
    /// The system disk's boot slots and META, when the node booted from one.
    pub system_disk: Option<Arc<crate::upgrade::SystemDisk>>,
    /// The digests of what booted, as PID 1 measures them (OS mode).
    pub boot_artifacts:
        Option<tokio::sync::watch::Receiver<Vec<crate::controllers::boot_artifacts::BootArtifact>>>,
    /// The ISO's install files, when the node booted from it ([`crate::install`]).
    pub install_media: Option<PathBuf>,
    /// Where the kernel log goes besides the config's `KmsgLogConfig` documents: the kernel
    /// command line's `talos.logging.kernel` (OS mode), `--kernel-log-destination` (dev mode).
    pub kernel_log_destination: Option<String>,
    /// Told how the node will end as soon as it is known, before the services stop, so that
    /// PID 1 prepares the reboot (stages kexec) while they do.
    pub ending: Option<std::sync::mpsc::Sender<Exit>>,
    /// The event sink (`HOST:PORT`) of `talos.events.sink=` (OS mode) or `--events-sink`.
    pub events_sink: Option<String>,
    /// Variables of the kernel's `talos.environment` arguments, beneath the config's.
    pub kernel_environment: Vec<(String, String)>,
}

/// The release of this build (`v` and the crate version), reported when no image says otherwise.
pub const BUILD_RELEASE: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// How [`run`] ended: the caller restarts the process for a reboot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Reboot,
    /// A reboot through the firmware (no kexec).
    PowerCycle,
    Shutdown,
    /// Wipe what the plan says, then reboot or power off.
    Reset(ResetPlan),
}

/// How long a stop waits for the client that asked for it to watch its events.
const WATCHERS_GRACE: Duration = Duration::from_millis(300);

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
    // A node with a saved config will run its system services as containerd's tasks: containerd
    // starts first, before the config is decoded and checked (seconds under TCG), so that its
    // own start overlaps that, the controllers and the API. It starts with the kernel's
    // environment: the config's applies at its next start (it pulls no images; its tasks get
    // the node's environment from their own specs). In maintenance nothing needs it before a
    // config.
    if let Some(containerd) = &options.containerd {
        services.register(containerd.spec(&layout)).await?;
        if layout.config_file().exists() {
            services
                .set_environment(environment::node_environment(
                    &options.kernel_environment,
                    None,
                ))
                .await?;
            services.start(crate::containerd::SERVICE_ID).await?;
            crate::boot_clock::stamp("containerd start requested");
        } else {
            tokio::spawn(crate::containerd::start_after_apid(services.clone()));
        }
    }
    let (config, problem) = NodeConfig::load(layout.config_file(), platform.mode);
    crate::boot_clock::stamp("config loaded");
    // Every service starts with the node's environment.
    services
        .set_environment(environment::node_environment(
            &options.kernel_environment,
            config.current().as_deref(),
        ))
        .await?;
    if let Some(error) = problem.or_else(|| platform.user_data_problem.clone()) {
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
    let (etcd_handle, etcd_requests) = etcd::EtcdHandle::new();
    let containers = options
        .containerd
        .as_ref()
        .map(|containerd| Arc::new(containerd.runner(&layout)));
    let kubernetes = kubelet::KubernetesController {
        root: layout.root().to_path_buf(),
        address: options.api_address.ip(),
        services: services.clone(),
        registered: false,
    };
    // As PID 1, machined set the kernel self-protection sysctls at boot and owns the host's
    // kernel parameters; as a process, none.
    let owns_host = std::process::id() == 1;
    let kernel_param_defaults = if owns_host {
        crate::os::managed_sysctls()
    } else {
        Vec::new()
    };
    let sources = crate::controllers::Sources {
        address: options.api_address.ip(),
        release: options.release.clone(),
        host: hostinfo::Host::new("/proc", "/sys"),
        owns_host,
        kernel_param_defaults,
        identity_file: layout.root().join("system/state/node-identity.yaml"),
        timed_socket: layout.timed_socket(),
        networkd_socket: options.networkd.as_ref().map(|_| layout.networkd_socket()),
        network_etc_files: layout.network_etc_files(),
        platform_network: platform.network_yaml.clone().unwrap_or_default(),
        kernel_log_destination: options.kernel_log_destination.clone(),
        events_sink: options.events_sink.clone(),
        platform_metadata: platform.metadata.clone(),
        // The node's disks are its own as PID 1 of a machine, not in a container.
        block_devices: (owns_host && platform.name != "container").then(|| {
            crate::block::BlockDevices {
                sys: "/sys".into(),
                dev: "/dev".into(),
            }
        }),
        boot_artifacts: options.boot_artifacts.clone(),
        kernel_environment: options.kernel_environment.clone(),
    };
    let (resources, controllers) =
        crate::controllers::start(&config, &events, &options.hostname, kubernetes, sources);
    crate::boot_clock::stamp("controllers started");
    let machine = Arc::new(Machine {
        resources,
        controllers,
        layout,
        platform,
        api_address: options.api_address,
        events: events.clone(),
        services: services.clone(),
        config,
        host: hostinfo::Host::new("/proc", "/sys"),
        files,
        file_walks: Default::default(),
        lifecycle,
        default_hostname: options.hostname.clone(),
        manages_network: options.networkd.is_some(),
        etcd: etcd_handle,
        containers,
        release: options.release.clone(),
        system_disk: options.system_disk.clone(),
        install_media: options.install_media.clone(),
    });

    let (stop_api, api) = serve_api(&machine)?;
    crate::boot_clock::stamp("machine API listening");
    let node_environment = tokio::spawn(environment::keep_in_step(
        Arc::clone(&machine),
        options.kernel_environment.clone(),
    ));
    services
        .register(time_sync::timed_spec(&machine, &options.timed))
        .await?;
    services.start("timed").await?;
    let etcd = tokio::spawn(etcd::run(
        Arc::clone(&machine),
        options.etcd.clone(),
        etcd_requests,
    ));
    if let Some(program) = &options.networkd {
        services
            .register(network::networkd_spec(&machine, program))
            .await?;
        services.start("networkd").await?;
    }
    let apid = tokio::spawn(api_services::keep_in_step(
        Arc::clone(&machine),
        options.api_services.clone(),
    ));
    let upgrade_trial = tokio::spawn(crate::upgrade::watch_trial(Arc::clone(&machine)));
    let (stop_vips, vips_stopped) = tokio::sync::watch::channel(false);
    let vips = tokio::spawn(crate::vip::run(Arc::clone(&machine), vips_stopped));
    publish_sequence(&events, "boot", sequence_event::Action::Stop, None);
    crate::boot_clock::stamp("boot sequence done");

    let request = tokio::select! {
        request = lifecycle_requests.recv() => request,
        () = termination_signal() => None,
    };
    let (exit, actor_id) = match request {
        Some((Lifecycle::Reboot, actor)) => (Exit::Reboot, Some(actor)),
        Some((Lifecycle::PowerCycle, actor)) => (Exit::PowerCycle, Some(actor)),
        Some((Lifecycle::Shutdown, actor)) => (Exit::Shutdown, Some(actor)),
        Some((Lifecycle::Reset(plan), actor)) => (Exit::Reset(plan), Some(actor)),
        None => (Exit::Shutdown, None),
    };
    let sequence = match exit {
        Exit::Reboot | Exit::PowerCycle => "reboot",
        Exit::Shutdown => "shutdown",
        Exit::Reset(_) => "reset",
    };
    if let Some(ending) = &options.ending {
        let _ = ending.send(exit);
    }
    let actor = actor_id.as_deref();
    publish_sequence(&events, sequence, sequence_event::Action::Start, actor);
    let stage = match exit {
        Exit::Reboot | Exit::PowerCycle => machine_status_event::MachineStage::Rebooting,
        Exit::Shutdown => machine_status_event::MachineStage::ShuttingDown,
        Exit::Reset(_) => machine_status_event::MachineStage::Resetting,
    };
    events.publish(
        &MachineStatusEvent {
            stage: stage as i32,
            status: None,
        },
        actor,
    );
    // A client that asked for this stop (`talosctl reboot --wait`) subscribes to the node's
    // events once it has the reply: give it time to, before apid stops taking new calls. (The
    // reply itself and the streams already open are drained by apid when it stops.)
    tokio::time::sleep(WATCHERS_GRACE).await;
    apid.abort();
    node_environment.abort();
    upgrade_trial.abort();
    etcd.abort();
    // A held VIP goes before networkd and etcd stop: address removed, election key given up,
    // so another control plane takes over at once.
    let _ = stop_vips.send(true);
    let _ = vips.await;
    publish_task(&events, "stopAllServices", task_event::Action::Start, actor);
    // Every end of the runtime ends the node, and containerd's in-memory state with it.
    if let Some(containers) = &machine.containers {
        containers.end_with_the_node();
    }
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
        .add_service(InspectServiceServer::new(InspectApi::new(Arc::clone(
            machine,
        ))))
        .add_service(ClusterServiceServer::new(HealthApi::new(Arc::clone(
            machine,
        ))))
        .add_service(
            ImageServiceServer::new(ImageApi::new(Arc::clone(machine)))
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(LifecycleServiceServer::new(LifecycleApi::new(Arc::clone(
            machine,
        ))))
        .add_service(
            DebugServiceServer::new(crate::debug::DebugApi::new(Arc::clone(machine)))
                .max_decoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(StorageServiceServer::new(StorageApi::new(Arc::clone(
            machine,
        ))))
        .add_service(TimeServiceServer::new(TimeApi::new(machine)))
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
