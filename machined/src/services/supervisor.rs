//! The supervisor's handle and the commands it sends to the supervisor task.

use std::path::PathBuf;

use proto::machine::ServiceInfo;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::ServiceError;
use super::actor::Actor;
use super::log::{LogLimits, ServiceLog};
use super::reaper::ChildExit;
use super::spec::ServiceSpec;
use super::state::{ServiceState, ServiceStateChange};
use crate::events::EventBus;

/// Where and how the supervisor keeps service logs.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Directory of the `<service>.log` files (created if missing).
    pub log_dir: PathBuf,
    /// Limits of each service log.
    pub log_limits: LogLimits,
}

/// What [`Supervisor::wait_for`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceCondition {
    /// Running and, if health-checked, healthy.
    Up,
    /// Finished, Failed or Skipped.
    Down,
}

impl ServiceCondition {
    fn holds(self, state: ServiceState, up: bool) -> bool {
        match self {
            Self::Up => up,
            Self::Down => matches!(
                state,
                ServiceState::Finished | ServiceState::Failed | ServiceState::Skipped
            ),
        }
    }
}

/// A service and the process it runs now, as [`Supervisor::processes`] reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProcess {
    /// The service id.
    pub id: String,
    /// The service's program.
    pub command: PathBuf,
    /// Its state.
    pub state: ServiceState,
    /// The pid of the program while it runs (also while it is being stopped); `None` when
    /// nothing runs or the runner has no single process.
    pub pid: Option<u32>,
}

/// Handle to the supervisor task; cheap to clone. When every handle is gone (or the runtime
/// shuts down) the task ends and kills whatever still runs.
#[derive(Debug, Clone)]
pub struct Supervisor {
    commands: mpsc::UnboundedSender<Command>,
    changes: broadcast::Sender<ServiceStateChange>,
}

/// How many state changes a slow watcher may fall behind before it sees `Lagged`.
const CHANGES_CAPACITY: usize = 256;

impl Supervisor {
    /// Starts the supervisor task on the current tokio runtime.
    pub fn spawn(config: SupervisorConfig, bus: EventBus) -> Result<Self, ServiceError> {
        std::fs::create_dir_all(&config.log_dir).map_err(|source| ServiceError::LogFile {
            path: config.log_dir.clone(),
            source,
        })?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        let actor = Actor::new(config, bus, changes.clone(), commands.downgrade());
        tokio::spawn(actor.run(receiver));
        Ok(Self { commands, changes })
    }

    /// Adds a service (in state `Initialized`; it does not start).
    pub async fn register(&self, spec: ServiceSpec) -> Result<(), ServiceError> {
        self.request(|reply| Command::Register {
            spec: Box::new(spec),
            reply,
        })
        .await?
    }

    /// Replaces the spec of a registered service (same id); the new command line, environment
    /// and checks take effect at its next start. Its state, history and log are kept.
    pub async fn update(&self, spec: ServiceSpec) -> Result<(), ServiceError> {
        self.request(|reply| Command::Update {
            spec: Box::new(spec),
            reply,
        })
        .await?
    }

    /// Sets the node's environment (`machine.env` and `EnvironmentConfig`, in the order they
    /// apply), which every service gets at its next start as its spec's
    /// [`NodeEnvironment`](super::NodeEnvironment) says. Returns the running services whose
    /// environment this changes and that restart for it: the caller restarts them.
    pub async fn set_environment(
        &self,
        variables: Vec<(String, String)>,
    ) -> Result<Vec<String>, ServiceError> {
        self.request(|reply| Command::SetEnvironment { variables, reply })
            .await
    }

    /// Sends `signal` to a running service's process (e.g. SIGHUP to reload). Returns whether
    /// the service was running.
    pub async fn signal(
        &self,
        id: &str,
        signal: nix::sys::signal::Signal,
    ) -> Result<bool, ServiceError> {
        let id = id.to_owned();
        self.request(|reply| Command::Signal { id, signal, reply })
            .await?
    }

    /// Starts a service; returns once the start is under way (it may wait for dependencies).
    /// Starting an active service does nothing.
    pub async fn start(&self, id: &str) -> Result<(), ServiceError> {
        self.operate(Operation::Start, id, false).await
    }

    /// Stops a service: SIGTERM, then SIGKILL after its grace period. Returns once it stopped.
    pub async fn stop(&self, id: &str) -> Result<(), ServiceError> {
        self.operate(Operation::Stop, id, false).await
    }

    /// Stops the service if it runs, then starts it again.
    pub async fn restart(&self, id: &str) -> Result<(), ServiceError> {
        self.operate(Operation::Restart, id, false).await
    }

    /// [`start`](Self::start) on behalf of the machine API: refused unless the service allows it.
    pub async fn start_via_api(&self, id: &str) -> Result<(), ServiceError> {
        self.operate(Operation::Start, id, true).await
    }

    /// [`stop`](Self::stop) on behalf of the machine API: refused unless the service allows it.
    pub async fn stop_via_api(&self, id: &str) -> Result<(), ServiceError> {
        self.operate(Operation::Stop, id, true).await
    }

    /// [`restart`](Self::restart) on behalf of the machine API: refused unless the service
    /// allows it.
    pub async fn restart_via_api(&self, id: &str) -> Result<(), ServiceError> {
        self.operate(Operation::Restart, id, true).await
    }

    /// Stops every service, dependents before their dependencies (services that do not depend
    /// on each other stop at the same time). Returns once all have stopped.
    pub async fn stop_all(&self) -> Result<(), ServiceError> {
        let levels = self.request(|reply| Command::StopOrder { reply }).await?;
        for level in levels {
            let stops = level.iter().map(|id| self.stop(id));
            for result in futures_util::future::join_all(stops).await {
                result?;
            }
        }
        Ok(())
    }

    /// Every service in registration order, as `ServiceList` reports them.
    pub async fn list(&self) -> Result<Vec<ServiceInfo>, ServiceError> {
        self.request(|reply| Command::List { reply }).await
    }

    /// Every service in registration order with the process it runs now.
    pub async fn processes(&self) -> Result<Vec<ServiceProcess>, ServiceError> {
        self.request(|reply| Command::Processes { reply }).await
    }

    /// The log of a service (also of a stopped one).
    pub async fn log(&self, id: &str) -> Result<ServiceLog, ServiceError> {
        let id = id.to_owned();
        self.request(|reply| Command::Log { id, reply }).await?
    }

    /// Every state change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ServiceStateChange> {
        self.changes.subscribe()
    }

    /// Waits until service `id` meets `condition` (returns at once if it does already).
    pub async fn wait_for(
        &self,
        id: &str,
        condition: ServiceCondition,
    ) -> Result<(), ServiceError> {
        let mut changes = self.subscribe();
        loop {
            let owned = id.to_owned();
            let (state, up) = self
                .request(|reply| Command::Status { id: owned, reply })
                .await??;
            if condition.holds(state, up) {
                return Ok(());
            }
            loop {
                match changes.recv().await {
                    Ok(change) if change.id == id && condition.holds(change.state, change.up) => {
                        return Ok(());
                    }
                    Ok(_) => {}
                    // Missed changes: look at the current state again.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(ServiceError::SupervisorGone);
                    }
                }
            }
        }
    }

    async fn operate(
        &self,
        operation: Operation,
        id: &str,
        via_api: bool,
    ) -> Result<(), ServiceError> {
        let id = id.to_owned();
        self.request(|reply| Command::Operate {
            operation,
            id,
            via_api,
            reply,
        })
        .await?
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ServiceError> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| ServiceError::SupervisorGone)?;
        response.await.map_err(|_| ServiceError::SupervisorGone)
    }
}

pub(super) type Reply<T> = oneshot::Sender<T>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    Start,
    Stop,
    Restart,
}

impl Operation {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

pub(super) enum Command {
    Register {
        spec: Box<ServiceSpec>,
        reply: Reply<Result<(), ServiceError>>,
    },
    Update {
        spec: Box<ServiceSpec>,
        reply: Reply<Result<(), ServiceError>>,
    },
    SetEnvironment {
        variables: Vec<(String, String)>,
        reply: Reply<Vec<String>>,
    },
    Signal {
        id: String,
        signal: nix::sys::signal::Signal,
        reply: Reply<Result<bool, ServiceError>>,
    },
    Operate {
        operation: Operation,
        id: String,
        via_api: bool,
        reply: Reply<Result<(), ServiceError>>,
    },
    StopOrder {
        reply: Reply<Vec<Vec<String>>>,
    },
    List {
        reply: Reply<Vec<ServiceInfo>>,
    },
    Processes {
        reply: Reply<Vec<ServiceProcess>>,
    },
    Log {
        id: String,
        reply: Reply<Result<ServiceLog, ServiceError>>,
    },
    Status {
        id: String,
        reply: Reply<Result<(ServiceState, bool), ServiceError>>,
    },
    Exited {
        id: String,
        run: u64,
        exit: ChildExit,
    },
    Health {
        id: String,
        run: u64,
        result: Result<(), String>,
    },
    BackoffElapsed {
        id: String,
        generation: u64,
    },
    StopGraceElapsed {
        id: String,
        run: u64,
    },
}
