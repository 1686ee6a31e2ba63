//! The service supervisor: starts machined's services in dependency order, watches their health,
//! restarts them with back-off, captures their logs and stops them in reverse order.
//!
//! One task owns every service's state ([`Supervisor`] is a cheap handle that sends it commands).
//! Services are run by a [`Runner`]; the [`ProcessRunner`] runs child processes, whose exits are
//! collected by the process-wide [`ChildReaper`] (the only code in machined that may wait for
//! children). Every transition is appended to the service's history (64 entries), sent to
//! [`Supervisor::subscribe`] watchers and published on the [`EventBus`](crate::events::EventBus)
//! as a `ServiceStateEvent`.
//!
//! State machine (strings as in `ServiceInfo`): `Initialized` → `Starting` → `Waiting` (while a
//! dependency is not up) → `Preparing` → `Running` (health changes add `Running` entries) →
//! `Finished`/`Failed` on exit → `Waiting` ("Restarting in …") → `Preparing` → `Running` … A stop
//! goes `Stopping` (SIGTERM, SIGKILL after the grace period) → `Finished`. A service is up when it
//! runs and, if it has a health check, is healthy.
//!
//! In OS mode the system services run as containerd tasks ([`ContainerdRunner`], namespace
//! `system`, specs from [`oci`]); containerd itself is a child process.
//!
//! Limits: a dependency that goes down does not stop its dependents
//! (as upstream); `Skipped` is never produced (every service here has something to run).

mod actor;
mod containerd;
mod health;
mod log;
pub(crate) mod oci;
mod reaper;
mod runner;
mod spec;
mod state;
mod supervisor;

use std::io;
use std::path::PathBuf;

pub(crate) use containerd::TaskIo;
pub use containerd::{Containerd, ContainerdRunner, NAMESPACE as SYSTEM_NAMESPACE};
pub use health::answered_by_another;
pub use log::{LogLimits, LogReader, ServiceLog};
pub use oci::cgroup_path;
pub use reaper::{ChildExit, ChildReaper};
pub use runner::{ExitNotifier, ProcessRunner, RunHandle, Runner};
pub use spec::{
    ApiOperations, Backoff, HealthCheck, HealthProbe, HostMount, NodeEnvironment, RestartPolicy,
    ServiceSpec,
};
pub use state::{HISTORY_LEN, Health, ServiceState, ServiceStateChange};
pub use supervisor::{ServiceCondition, ServiceProcess, Supervisor, SupervisorConfig};

/// What went wrong with a service request.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No service has this id.
    #[error("service {id:?} is not registered")]
    NotFound {
        /// The requested id.
        id: String,
    },
    /// A service with this id exists already.
    #[error("service {id:?} is already registered")]
    AlreadyRegistered {
        /// The id.
        id: String,
    },
    /// The id cannot name a service (it also names the log file).
    #[error("invalid service id {id:?}: {reason}")]
    InvalidId {
        /// The id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Registering the service would make services wait for each other forever.
    #[error("service {id:?} cannot depend on {dependency:?}: that closes a dependency cycle")]
    DependencyCycle {
        /// The service being registered.
        id: String,
        /// The dependency that leads back to it.
        dependency: String,
    },
    /// The machine API asked for an operation the service does not allow.
    #[error("service {id:?} doesn't support {operation} operation via API")]
    NotSupportedViaApi {
        /// The service.
        id: String,
        /// `start`, `stop` or `restart`.
        operation: &'static str,
    },
    /// The service's program could not be started.
    #[error("service {id:?}: cannot start {}: {source}", command.display())]
    Spawn {
        /// The service.
        id: String,
        /// Its program.
        command: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The service runs from a container image that is not available on the node.
    #[error("service {id:?}: image {image} is not available: {reason}")]
    ImageUnavailable {
        /// The service.
        id: String,
        /// The image reference.
        image: String,
        /// Why it cannot be had.
        reason: &'static str,
    },
    /// containerd refused or failed a step of running the service as a task.
    #[error("service {id:?}: containerd could not {operation}: {message}")]
    Containerd {
        /// The service.
        id: String,
        /// The step, e.g. `create the task`.
        operation: &'static str,
        /// containerd's answer.
        message: String,
    },
    /// The log directory or a log file could not be opened.
    #[error("service log {}: {source}", path.display())]
    LogFile {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The supervisor task has ended.
    #[error("the service supervisor has stopped")]
    SupervisorGone,
}
