//! What a service is: the command to run, its dependencies, health check and restart policy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::runner::{ProcessRunner, Runner};

/// One supervised service.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Service id (`apid`, `trustd`, ...): the name in `ServiceList` and the log id.
    pub id: String,
    /// Absolute path of the program.
    pub command: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// The service's own environment (nothing is inherited from machined); the node's
    /// environment is added at each start as `node_environment` says, these win over it.
    pub env: Vec<(String, String)>,
    /// How the service takes the node's environment.
    pub node_environment: NodeEnvironment,
    /// Working directory; machined's own when `None`.
    pub working_dir: Option<PathBuf>,
    /// Ids of services that must be up (running, and healthy if health-checked) before this one
    /// starts. Unregistered ids are waited for too.
    pub depends_on: Vec<String>,
    /// Health check while running; without one the health stays "unknown" and the service is up
    /// as soon as it runs.
    pub health_check: Option<HealthCheck>,
    /// What happens when the program exits on its own.
    pub restart: RestartPolicy,
    /// Delay before each restart.
    pub backoff: Backoff,
    /// How long a stop waits after SIGTERM before sending SIGKILL.
    pub stop_grace: Duration,
    /// Which operations the `ServiceStart/Stop/Restart` RPCs may perform.
    pub api: ApiOperations,
    /// Host paths the service sees when it runs in a container (a child process sees the whole
    /// tree): its sockets, material and data.
    pub mounts: Vec<HostMount>,
    /// Largest memory the service's cgroup may use, in bytes (containers only).
    pub memory_limit: Option<u64>,
    /// Capabilities a container gets beyond the default set, e.g. `CAP_NET_ADMIN`.
    pub extra_capabilities: Vec<&'static str>,
    /// How the service is run.
    pub runner: Arc<dyn Runner>,
}

/// A host path bound into a service's container at the same path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    /// The path, on the host and in the container.
    pub path: PathBuf,
    /// Whether the service may write below it.
    pub writable: bool,
}

impl HostMount {
    /// `path`, read-only.
    pub fn read_only(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            writable: false,
        }
    }

    /// `path`, writable.
    pub fn writable(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            writable: true,
        }
    }
}

impl ServiceSpec {
    /// A child-process service with upstream's defaults: restart always, back-off 1 s doubling to
    /// 30 s, 10 s stop grace, no health check, no dependencies, no API operations.
    pub fn process(id: impl Into<String>, command: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            command: command.into(),
            args: Vec::new(),
            env: Vec::new(),
            node_environment: NodeEnvironment::Restart,
            working_dir: None,
            depends_on: Vec::new(),
            health_check: None,
            restart: RestartPolicy::Always,
            backoff: Backoff::default(),
            stop_grace: Duration::from_secs(10),
            api: ApiOperations::NONE,
            mounts: Vec::new(),
            memory_limit: None,
            extra_capabilities: Vec::new(),
            runner: Arc::new(ProcessRunner),
        }
    }
}

/// How a service takes the node's environment (`machine.env` and `EnvironmentConfig`, given to
/// [`Supervisor::set_environment`](super::Supervisor::set_environment)): at each start, and
/// again through a restart when it changes unless the service is [`NodeEnvironment::NextStart`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeEnvironment {
    /// Every variable; a change restarts the running service.
    Restart,
    /// Every variable but the proxy ones (`http_proxy`, `https_proxy`, `no_proxy`, in any
    /// case), which gRPC would dial its connections through (upstream leaves them out of apid);
    /// a change restarts the running service.
    RestartWithoutProxies,
    /// Every variable, from the next start on: a change leaves the running service alone
    /// (containerd, whose restart would cut every task it runs; upstream restarts nothing).
    NextStart,
}

/// The proxy variables [`NodeEnvironment::RestartWithoutProxies`] leaves out.
const PROXY_VARIABLES: &[&str] = &["http_proxy", "https_proxy", "no_proxy"];

impl NodeEnvironment {
    /// The variables of `node` this service gets.
    pub fn select(self, node: &[(String, String)]) -> impl Iterator<Item = &(String, String)> {
        node.iter().filter(move |(name, _)| {
            self != Self::RestartWithoutProxies
                || !PROXY_VARIABLES
                    .iter()
                    .any(|proxy| name.eq_ignore_ascii_case(proxy))
        })
    }

    /// Whether a change of the node's environment restarts the running service.
    pub fn restarts(self) -> bool {
        self != Self::NextStart
    }
}

impl ServiceSpec {
    /// This spec as started with the node's environment `node`: the variables it selects,
    /// then the service's own (which replace node variables of the same name).
    pub fn with_node_environment(&self, node: &[(String, String)]) -> ServiceSpec {
        let own = |name: &String| self.env.iter().any(|(own, _)| own == name);
        let mut env: Vec<(String, String)> = self
            .node_environment
            .select(node)
            .filter(|(name, _)| !own(name))
            .cloned()
            .collect();
        env.extend(self.env.iter().cloned());
        ServiceSpec {
            env,
            ..self.clone()
        }
    }
}

/// When a service that exited on its own is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// After every exit.
    Always,
    /// After an exit with a non-zero code or a signal.
    OnFailure,
    /// Never: the service stays Finished or Failed.
    Never,
}

/// Exponential restart back-off: the first restart waits `initial`, each further one twice as
/// long up to `max`. A run that lasted at least `max` resets the delay to `initial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The cap.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// A periodic health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// What is probed.
    pub probe: HealthProbe,
    /// Wait after the start before the first probe.
    pub initial_delay: Duration,
    /// Time between probes.
    pub period: Duration,
    /// Limit for one probe.
    pub timeout: Duration,
}

impl HealthCheck {
    /// timed's check: in sync, asked 200 ms after the start and then every second.
    pub fn time_synced(socket: PathBuf) -> Self {
        Self {
            probe: HealthProbe::TimeSynced(socket),
            initial_delay: Duration::from_millis(200),
            period: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
        }
    }

    /// A connection to the Unix socket `path`, probed every 500 ms from 100 ms after the start
    /// (services wait for it: a slow first probe delays them all).
    pub fn socket(path: PathBuf) -> Self {
        Self {
            probe: HealthProbe::SocketAccepts(path),
            initial_delay: Duration::from_millis(100),
            period: Duration::from_millis(500),
            timeout: Duration::from_millis(500),
        }
    }

    /// A TCP dial of `address` every 5 s and within 500 ms (upstream's timings), from 100 ms
    /// after the start (upstream waits 1 s: a boot would wait for it).
    pub fn tcp(address: SocketAddr) -> Self {
        Self {
            probe: HealthProbe::TcpDial(address),
            initial_delay: Duration::from_millis(100),
            period: Duration::from_secs(5),
            timeout: Duration::from_millis(500),
        }
    }
}

/// The kinds of health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthProbe {
    /// Healthy when a TCP connection to the address opens within the timeout.
    TcpDial(SocketAddr),
    /// Healthy when timed, asked on its socket, reports the clock in sync.
    TimeSynced(PathBuf),
    /// Healthy when the Unix socket accepts a connection (containerd).
    SocketAccepts(PathBuf),
}

/// The service operations the machine API may perform (upstream: kubelet allows start and
/// restart, extension services all three, everything else none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApiOperations {
    /// `ServiceStart`.
    pub start: bool,
    /// `ServiceStop`.
    pub stop: bool,
    /// `ServiceRestart`.
    pub restart: bool,
}

impl ApiOperations {
    /// No operation allowed.
    pub const NONE: Self = Self {
        start: false,
        stop: false,
        restart: false,
    };
    /// Every operation allowed.
    pub const ALL: Self = Self {
        start: true,
        stop: true,
        restart: true,
    };
}
