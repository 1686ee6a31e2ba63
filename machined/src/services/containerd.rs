//! Running services as tasks of the node's containerd, in namespace `system` (OS mode).
//!
//! A run, on a tokio task of its own (the supervisor does not wait: creating a task takes a
//! second or two under TCG), is: remove what an earlier run left behind, create the container (runtime
//! `io.containerd.runc.v2`, the [`oci`](super::oci) spec, no image and no snapshot: the root is
//! the image's own root filesystem), create the task with stdout and stderr on a FIFO that a
//! thread copies into the service log, start it, and wait for its exit on a tokio task, which
//! then deletes the task and the container before reporting the exit. A `Wait` cut short by a
//! containerd restart is asked again: the shim keeps the task running meanwhile.
//!
//! Every system service runs in one runc shim (the [`oci`](super::oci) spec's group
//! annotation). The shim is started by the first task's creation; tasks created while no shim
//! runs yet would each start one, so the first creation runs alone and the others wait for it.
//!
//! When the node goes down ([`ContainerdRunner::end_with_the_node`]), containerd's state, which
//! is in memory, goes with it: a run that ends then reports its exit as soon as `Wait` returns,
//! without deleting its task and container (`runc delete` is a Go program: seconds under TCG).
//!
//! containerd reports a task killed by signal N as exit status 128 + N; that is reported as the
//! signal, as containerd's own clients do.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use proto::containerd::services::containers::v1::containers_client::ContainersClient;
use proto::containerd::services::containers::v1::{
    Container, CreateContainerRequest, DeleteContainerRequest, container,
};
use proto::containerd::services::tasks::v1::tasks_client::TasksClient;
use proto::containerd::services::tasks::v1::{
    CloseIoRequest, CreateTaskRequest, DeleteTaskRequest, KillRequest, ListTasksRequest,
    ResizePtyRequest, StartRequest, WaitRequest,
};
use proto::containerd::v1::types::Process;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::ServiceError;
use super::log::ServiceLog;
use super::oci;
use super::reaper::ChildExit;
use super::runner::{ExitNotifier, RunHandle, Runner, pump};
use super::spec::ServiceSpec;

/// The containerd namespace of the system services.
pub const NAMESPACE: &str = "system";

/// The runtime (shim) every system service runs with.
const RUNTIME: &str = "io.containerd.runc.v2";

/// The OCI runtime the shim runs: crun (C) starts in a fraction of runc's (Go) time, and the
/// shim runs it three or four times per task.
const OCI_RUNTIME: &str = "/usr/bin/crun";

/// The shim's options (`containerd.runc.v1.Options`); only the runtime binary is set.
#[derive(Clone, PartialEq, prost::Message)]
struct RuncOptions {
    #[prost(string, tag = "6")]
    binary_name: String,
}

impl RuncOptions {
    fn any() -> prost_types::Any {
        prost_types::Any {
            type_url: "containerd.runc.v1.Options".to_string(),
            value: prost::Message::encode_to_vec(&RuncOptions {
                binary_name: OCI_RUNTIME.to_string(),
            }),
        }
    }
}

/// Limit for one containerd call that should answer at once.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Pause before asking again for an exit after containerd went away.
const WAIT_RETRY: Duration = Duration::from_secs(1);

/// Runs services as containerd tasks; see the module documentation.
#[derive(Debug)]
pub struct ContainerdRunner {
    socket: PathBuf,
    root: PathBuf,
    fifo_dir: PathBuf,
    channel: OnceLock<Channel>,
    runs: AtomicU64,
    /// Whether a task has been created, so that the group's shim runs; held while the first
    /// creation is under way.
    shim_started: Arc<tokio::sync::Mutex<bool>>,
    /// The node is going down: runs that end skip deleting their task and container.
    node_ending: Arc<AtomicBool>,
}

impl ContainerdRunner {
    /// Talks to containerd on `socket`; tasks run with `root` as their read-only root
    /// filesystem; log FIFOs are made in `fifo_dir`.
    pub fn new(socket: PathBuf, root: PathBuf, fifo_dir: PathBuf) -> Self {
        Self {
            socket,
            root,
            fifo_dir,
            channel: OnceLock::new(),
            runs: AtomicU64::new(0),
            shim_started: Arc::default(),
            node_ending: Arc::default(),
        }
    }

    /// The node is going down with containerd (a reboot, shutdown or reset, not a service
    /// restart): from now on a run whose task exits reports it at once and leaves the task and
    /// container to vanish with containerd's state.
    pub fn end_with_the_node(&self) {
        self.node_ending.store(true, Ordering::Relaxed);
    }

    /// A client of containerd's namespace `system`.
    pub fn client(&self) -> Containerd {
        let channel = self
            .channel
            .get_or_init(|| crate::local_socket::channel(&self.socket));
        Containerd {
            channel: channel.clone(),
        }
    }

    fn new_fifo(&self, id: &str) -> io::Result<PathBuf> {
        std::fs::create_dir_all(&self.fifo_dir)?;
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        let path = self.fifo_dir.join(format!("{id}-{run}.log"));
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600))?;
        Ok(path)
    }
}

impl Runner for ContainerdRunner {
    fn start(
        &self,
        spec: &ServiceSpec,
        log: &ServiceLog,
        on_exit: ExitNotifier,
    ) -> Result<Box<dyn RunHandle>, ServiceError> {
        let id = spec.id.clone();
        let client = self.client();
        let spawn_error = |source| ServiceError::Spawn {
            id: id.clone(),
            command: spec.command.clone(),
            source,
        };
        // Bind mounts need their sources: the service's own directories are made here.
        for mount in &spec.mounts {
            std::fs::create_dir_all(&mount.path).map_err(spawn_error)?;
        }
        let fifo = self.new_fifo(&id).map_err(spawn_error)?;
        let pump = OutputPump::start(fifo.clone(), log.clone());
        let runtime_spec = oci::runtime_spec(spec, &self.root);
        let state = Arc::new(Mutex::new(TaskState::Creating { signal: None }));
        let run = TaskRun {
            id: id.clone(),
            client: client.clone(),
            state: Arc::clone(&state),
        };
        let log = log.clone();
        let shim_started = Arc::clone(&self.shim_started);
        let node_ending = Arc::clone(&self.node_ending);
        // Creating a task takes a second or two under TCG: the supervisor does not wait for it,
        // so services start side by side and the API keeps answering meanwhile.
        tokio::spawn(async move {
            client.remove(&id).await;
            let io = TaskIo::output(&fifo);
            let created = one_shim(&shim_started, client.create(&id, &runtime_spec, &io)).await;
            let pid = match created {
                Ok(pid) => pid,
                Err(error) => {
                    // The supervisor reports it (Failed, with this text); the log keeps it too.
                    log.append(format!("{error}\n").as_bytes());
                    pump.release();
                    client.remove(&id).await;
                    *lock(&state) = TaskState::Ended;
                    on_exit(ChildExit::NotStarted(error.to_string()));
                    return;
                }
            };
            let asked = std::mem::replace(&mut *lock(&state), TaskState::Started { pid });
            // A stop asked for meanwhile ends the new task outright: its program has no
            // handlers yet, and as PID 1 of its namespace it would ignore SIGTERM. Other signals
            // (SIGHUP: reload) have nothing to do for a program that has just read everything.
            if let TaskState::Creating {
                signal: Some(Signal::SIGTERM | Signal::SIGINT | Signal::SIGKILL),
            } = asked
                && let Err(status) = client.kill(&id, Signal::SIGKILL).await
            {
                tracing::warn!(id, error = %status.message(), "cannot stop the new task");
            }
            let exit = client.wait(&id).await;
            if !node_ending.load(Ordering::Relaxed) {
                client.remove(&id).await;
            }
            *lock(&state) = TaskState::Ended;
            on_exit(exit);
        });
        Ok(Box::new(run))
    }
}

/// Runs `create` alone while no task has been created yet (so that one shim starts), side by
/// side with others once one has.
async fn one_shim<T, E>(
    shim_started: &tokio::sync::Mutex<bool>,
    create: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut started = shim_started.lock().await;
    if *started {
        drop(started);
        return create.await;
    }
    let result = create.await;
    *started = result.is_ok();
    result
}

fn lock(state: &Mutex<TaskState>) -> std::sync::MutexGuard<'_, TaskState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A client of containerd, every request in namespace [`NAMESPACE`].
#[derive(Debug, Clone)]
pub struct Containerd {
    channel: Channel,
}

impl Containerd {
    /// A request in namespace [`NAMESPACE`], without a time limit (`Wait`).
    fn in_namespace<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "containerd-namespace",
            tonic::metadata::MetadataValue::from_static(NAMESPACE),
        );
        request
    }

    /// A request in namespace [`NAMESPACE`] that must be answered within [`CALL_TIMEOUT`].
    fn request<T>(message: T) -> tonic::Request<T> {
        let mut request = Self::in_namespace(message);
        request.set_timeout(CALL_TIMEOUT);
        request
    }

    fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }

    /// The tasks of namespace `system` (a task's `id` is its container's).
    pub async fn list_tasks(&self) -> Result<Vec<Process>, Status> {
        let reply = self
            .tasks()
            .list(Self::request(ListTasksRequest::default()))
            .await?;
        Ok(reply.into_inner().tasks)
    }

    /// Creates and starts the task `id`; returns its pid.
    pub(crate) async fn create(
        &self,
        id: &str,
        runtime_spec: &serde_json::Value,
        io: &TaskIo,
    ) -> Result<u32, ServiceError> {
        let failed = |operation| {
            let id = id.to_string();
            move |status: Status| ServiceError::Containerd {
                id,
                operation,
                message: status.message().to_string(),
            }
        };
        let container = Container {
            id: id.to_string(),
            labels: [("talos.rs/service".to_string(), id.to_string())].into(),
            runtime: Some(container::Runtime {
                name: RUNTIME.to_string(),
                options: Some(RuncOptions::any()),
            }),
            spec: Some(prost_types::Any {
                type_url: oci::SPEC_TYPE_URL.to_string(),
                value: runtime_spec.to_string().into_bytes(),
            }),
            ..Container::default()
        };
        ContainersClient::new(self.channel.clone())
            .create(Self::request(CreateContainerRequest {
                container: Some(container),
            }))
            .await
            .map_err(failed("create the container"))?;
        let path = |fifo: Option<&Path>| fifo.map(|f| f.display().to_string()).unwrap_or_default();
        let stdout = path(Some(&io.stdout));
        self.tasks()
            .create(Self::request(CreateTaskRequest {
                container_id: id.to_string(),
                stdin: path(io.stdin.as_deref()),
                // A terminal carries both streams.
                stderr: if io.terminal {
                    String::new()
                } else {
                    stdout.clone()
                },
                stdout,
                terminal: io.terminal,
                options: Some(RuncOptions::any()),
                ..CreateTaskRequest::default()
            }))
            .await
            .map_err(failed("create the task"))?;
        let started = self
            .tasks()
            .start(Self::request(StartRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await
            .map_err(failed("start the task"))?;
        Ok(started.into_inner().pid)
    }

    /// Sends `signal` to every process of task `id`; a task that is gone is not an error.
    pub async fn kill(&self, id: &str, signal: Signal) -> Result<(), Status> {
        let request = KillRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
            signal: signal as u32,
            all: true,
        };
        match self.tasks().kill(Self::request(request)).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(status) => Err(status),
        }
    }

    /// Waits for task `id` to exit, asking again while containerd is away.
    async fn wait(&self, id: &str) -> ChildExit {
        match self.wait_status(id).await {
            Some(status) => exit_of(status),
            None => ChildExit::Code(-1),
        }
    }

    /// Waits for task `id` to exit and returns containerd's exit status (128 + N for signal
    /// N), asking again while containerd is away; `None` when the task disappeared.
    pub(crate) async fn wait_status(&self, id: &str) -> Option<u32> {
        loop {
            let request = Self::in_namespace(WaitRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            });
            match self.tasks().wait(request).await {
                Ok(reply) => return Some(reply.into_inner().exit_status),
                Err(status) if status.code() == Code::NotFound => {
                    tracing::warn!(id, "the task disappeared from containerd");
                    return None;
                }
                Err(status) => {
                    tracing::warn!(id, error = %status.message(), "waiting for the task failed; asking again");
                    tokio::time::sleep(WAIT_RETRY).await;
                }
            }
        }
    }

    /// Sets the size of task `id`'s terminal.
    pub(crate) async fn resize(&self, id: &str, width: u32, height: u32) -> Result<(), Status> {
        let request = ResizePtyRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
            width,
            height,
        };
        self.tasks().resize_pty(Self::request(request)).await?;
        Ok(())
    }

    /// Closes task `id`'s standard input (its reader sees the end).
    pub(crate) async fn close_stdin(&self, id: &str) -> Result<(), Status> {
        let request = CloseIoRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
            stdin: true,
        };
        self.tasks().close_io(Self::request(request)).await?;
        Ok(())
    }

    /// Removes task and container `id`, whatever state they are in; what is not there is fine.
    pub(crate) async fn remove(&self, id: &str) {
        let _ = self.kill(id, Signal::SIGKILL).await;
        let task = DeleteTaskRequest {
            container_id: id.to_string(),
        };
        // A task still stopping refuses deletion for a moment.
        for _ in 0..50 {
            match self.tasks().delete(Self::request(task.clone())).await {
                Err(status) if status.code() == Code::FailedPrecondition => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => break,
            }
        }
        let _ = ContainersClient::new(self.channel.clone())
            .delete(Self::request(DeleteContainerRequest { id: id.to_string() }))
            .await;
    }
}

/// Where a task's standard streams go: FIFOs the shim opens.
#[derive(Debug)]
pub(crate) struct TaskIo {
    pub stdin: Option<PathBuf>,
    /// stdout, and stderr too.
    pub stdout: PathBuf,
    /// The shim puts the task on a terminal of its own, between the FIFOs.
    pub terminal: bool,
}

impl TaskIo {
    /// Output only, to `fifo`.
    fn output(fifo: &Path) -> Self {
        TaskIo {
            stdin: None,
            stdout: fifo.to_path_buf(),
            terminal: false,
        }
    }
}

fn exit_of(status: u32) -> ChildExit {
    let signal = status
        .checked_sub(128)
        .and_then(|number| Signal::try_from(number as i32).ok());
    match signal {
        Some(signal) => ChildExit::Signal(signal),
        None => ChildExit::Code(status as i32),
    }
}

/// Where a run's task is.
#[derive(Debug)]
enum TaskState {
    /// Being created; a stop asked for meanwhile ends it once it has started.
    Creating {
        signal: Option<Signal>,
    },
    Started {
        pid: u32,
    },
    Ended,
}

#[derive(Debug)]
struct TaskRun {
    id: String,
    client: Containerd,
    state: Arc<Mutex<TaskState>>,
}

impl RunHandle for TaskRun {
    fn started_message(&self) -> String {
        format!("Starting task {} for container {}", self.id, self.id)
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        let mut state = lock(&self.state);
        match &mut *state {
            TaskState::Creating { signal: asked } => {
                // SIGKILL is never replaced by a milder signal.
                if *asked != Some(Signal::SIGKILL) {
                    *asked = Some(signal);
                }
            }
            TaskState::Started { .. } => {
                drop(state);
                let client = self.client.clone();
                let id = self.id.clone();
                tokio::spawn(async move {
                    if let Err(status) = client.kill(&id, signal).await {
                        tracing::warn!(id, error = %status.message(), "cannot signal the task");
                    }
                });
            }
            TaskState::Ended => {}
        }
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        match *lock(&self.state) {
            TaskState::Started { pid } => Some(pid),
            _ => None,
        }
    }
}

/// Copies what a task writes to its FIFO into the service log, on a thread of its own.
struct OutputPump {
    fifo: PathBuf,
}

impl OutputPump {
    fn start(fifo: PathBuf, log: ServiceLog) -> Self {
        let path = fifo.clone();
        let spawned = std::thread::Builder::new()
            .name("task-log".into())
            .spawn(move || {
                // Blocks until the shim opens the FIFO for writing; ends when every writer is
                // gone (the task exited).
                match File::open(&path) {
                    Ok(output) => pump(output, &log),
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "cannot open the task's output")
                    }
                }
                let _ = std::fs::remove_file(&path);
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start copying the task's output");
        }
        Self { fifo }
    }

    /// Ends a pump whose task never started: opening the FIFO for writing and closing it again
    /// lets the blocked open return and the copy end.
    fn release(self) {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&self.fifo);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn exit_statuses_above_128_are_signals() {
        assert_eq!(exit_of(0), ChildExit::Code(0));
        assert_eq!(exit_of(2), ChildExit::Code(2));
        assert_eq!(exit_of(137), ChildExit::Signal(Signal::SIGKILL));
        assert_eq!(exit_of(143), ChildExit::Signal(Signal::SIGTERM));
        assert_eq!(exit_of(255), ChildExit::Code(255));
    }

    #[tokio::test]
    async fn the_first_creation_runs_alone_and_the_others_side_by_side() {
        let shim_started = tokio::sync::Mutex::new(false);
        let active = AtomicU64::new(0);
        // How many creations were under way as each began.
        let under_way = Mutex::new(Vec::new());
        let create = || async {
            let now = active.fetch_add(1, Ordering::SeqCst) + 1;
            under_way.lock().unwrap().push(now);
            tokio::time::sleep(Duration::from_millis(20)).await;
            active.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        };
        let creations = (0..4).map(|_| one_shim(&shim_started, create()));
        futures_util::future::join_all(creations).await;
        // Without the gate: [1, 2, 3, 4].
        assert_eq!(*under_way.lock().unwrap(), [1, 1, 2, 3]);
    }
}
