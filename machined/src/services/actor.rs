//! The task that owns every service's state; [`Supervisor`](super::Supervisor) handles send it
//! [`Command`]s.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use proto::machine::{ServiceInfo, ServiceStateEvent};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::ServiceError;
use super::health::spawn_prober;
use super::log::ServiceLog;
use super::reaper::ChildExit;
use super::runner::RunHandle;
use super::spec::{RestartPolicy, ServiceSpec};
use super::state::{Health, History, ServiceState, ServiceStateChange};
use super::supervisor::{Command, Operation, Reply, ServiceProcess, SupervisorConfig};
use crate::events::EventBus;

pub(super) struct Actor {
    services: Vec<Service>,
    config: SupervisorConfig,
    bus: EventBus,
    changes: broadcast::Sender<ServiceStateChange>,
    /// For tasks and exit callbacks: they must not keep the supervisor alive.
    commands: mpsc::WeakUnboundedSender<Command>,
    next_run: u64,
    /// The node's environment, added to each service's own at its start.
    environment: Vec<(String, String)>,
}

struct Service {
    spec: ServiceSpec,
    state: ServiceState,
    history: History,
    health: Health,
    log: ServiceLog,
    phase: Phase,
    /// Bumped whenever a pending back-off timer must be ignored.
    generation: u64,
    next_backoff: Duration,
    /// Replies to send once a stop completes; `true` entries start the service again first.
    after_stop: Vec<(bool, Reply<Result<(), ServiceError>>)>,
}

enum Phase {
    Idle,
    WaitingForDependencies,
    BackingOff,
    Running(Run),
    Stopping(Run),
}

struct Run {
    id: u64,
    handle: Box<dyn RunHandle>,
    prober: Option<JoinHandle<()>>,
    started: Instant,
}

impl Run {
    fn stop_probing(&mut self) {
        if let Some(prober) = self.prober.take() {
            prober.abort();
        }
    }
}

impl Service {
    fn is_up(&self) -> bool {
        match self.state {
            ServiceState::Running => {
                self.spec.health_check.is_none() || (!self.health.unknown && self.health.healthy)
            }
            ServiceState::Skipped => true,
            _ => false,
        }
    }

    fn info(&self) -> ServiceInfo {
        ServiceInfo {
            id: self.spec.id.clone(),
            state: self.state.as_str().to_owned(),
            events: Some(self.history.to_proto()),
            health: Some(self.health.to_proto()),
        }
    }

    fn process(&self) -> ServiceProcess {
        let pid = match &self.phase {
            Phase::Running(run) | Phase::Stopping(run) => run.handle.pid(),
            Phase::Idle | Phase::WaitingForDependencies | Phase::BackingOff => None,
        };
        ServiceProcess {
            id: self.spec.id.clone(),
            command: self.spec.command.clone(),
            state: self.state,
            pid,
        }
    }

    fn allows(&self, operation: Operation) -> bool {
        match operation {
            Operation::Start => self.spec.api.start,
            Operation::Stop => self.spec.api.stop,
            Operation::Restart => self.spec.api.restart,
        }
    }
}

impl Drop for Actor {
    /// Every handle is gone (or the runtime shuts down): nothing will supervise what still runs,
    /// so it is killed.
    fn drop(&mut self) {
        for service in &mut self.services {
            if let Phase::Running(run) | Phase::Stopping(run) = &mut service.phase {
                run.stop_probing();
                if let Err(error) = run.handle.signal(Signal::SIGKILL) {
                    tracing::warn!(service = %service.spec.id, %error, "cannot kill service");
                }
            }
        }
    }
}

impl Actor {
    pub(super) fn new(
        config: SupervisorConfig,
        bus: EventBus,
        changes: broadcast::Sender<ServiceStateChange>,
        commands: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        Self {
            services: Vec::new(),
            config,
            bus,
            changes,
            commands,
            next_run: 0,
            environment: Vec::new(),
        }
    }

    pub(super) async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Command>) {
        while let Some(command) = receiver.recv().await {
            self.handle(command);
            self.start_ready_services();
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Register { spec, reply } => {
                let _ = reply.send(self.register(*spec));
            }
            Command::Update { spec, reply } => {
                let _ = reply.send(self.update(*spec));
            }
            Command::SetEnvironment { variables, reply } => {
                let _ = reply.send(self.set_environment(variables));
            }
            Command::Signal { id, signal, reply } => {
                let _ = reply.send(self.signal(&id, signal));
            }
            Command::Operate {
                operation,
                id,
                via_api,
                reply,
            } => self.operate(operation, &id, via_api, reply),
            Command::StopOrder { reply } => {
                let _ = reply.send(self.stop_order());
            }
            Command::List { reply } => {
                let _ = reply.send(self.services.iter().map(Service::info).collect());
            }
            Command::Processes { reply } => {
                let _ = reply.send(self.services.iter().map(Service::process).collect());
            }
            Command::Log { id, reply } => {
                let log = self.find(&id).map(|index| self.services[index].log.clone());
                let _ = reply.send(log);
            }
            Command::Status { id, reply } => {
                let status = self.find(&id).map(|index| {
                    let service = &self.services[index];
                    (service.state, service.is_up())
                });
                let _ = reply.send(status);
            }
            Command::Exited { id, run, exit } => self.exited(&id, run, exit),
            Command::Health { id, run, result } => self.health(&id, run, result),
            Command::BackoffElapsed { id, generation } => {
                if let Ok(index) = self.find(&id) {
                    let service = &self.services[index];
                    if matches!(service.phase, Phase::BackingOff)
                        && service.generation == generation
                    {
                        self.launch_or_wait(index);
                    }
                }
            }
            Command::StopGraceElapsed { id, run } => self.stop_grace_elapsed(&id, run),
        }
    }

    fn find(&self, id: &str) -> Result<usize, ServiceError> {
        self.services
            .iter()
            .position(|service| service.spec.id == id)
            .ok_or_else(|| ServiceError::NotFound { id: id.to_owned() })
    }

    fn register(&mut self, spec: ServiceSpec) -> Result<(), ServiceError> {
        let invalid = |reason| ServiceError::InvalidId {
            id: spec.id.clone(),
            reason,
        };
        if spec.id.is_empty() {
            return Err(invalid("it is empty"));
        }
        if spec.id.contains('/') || spec.id.starts_with('.') {
            return Err(invalid("it must be a plain file name"));
        }
        if self.find(&spec.id).is_ok() {
            return Err(ServiceError::AlreadyRegistered { id: spec.id });
        }
        if let Some(dependency) = spec
            .depends_on
            .iter()
            .find(|dependency| self.reaches(dependency, &spec.id))
        {
            return Err(ServiceError::DependencyCycle {
                id: spec.id.clone(),
                dependency: dependency.clone(),
            });
        }
        let path = self.config.log_dir.join(format!("{}.log", spec.id));
        let log = ServiceLog::open(&path, self.config.log_limits)
            .map_err(|source| ServiceError::LogFile { path, source })?;
        self.services.push(Service {
            next_backoff: spec.backoff.initial,
            spec,
            state: ServiceState::Initialized,
            history: History::default(),
            health: Health::unknown(),
            log,
            phase: Phase::Idle,
            generation: 0,
            after_stop: Vec::new(),
        });
        self.record(
            self.services.len() - 1,
            ServiceState::Initialized,
            "Service registered",
        );
        Ok(())
    }

    fn update(&mut self, spec: ServiceSpec) -> Result<(), ServiceError> {
        let index = self.find(&spec.id)?;
        if let Some(dependency) = spec
            .depends_on
            .iter()
            .find(|dependency| self.reaches(dependency, &spec.id))
        {
            return Err(ServiceError::DependencyCycle {
                id: spec.id.clone(),
                dependency: dependency.clone(),
            });
        }
        self.services[index].spec = spec;
        Ok(())
    }

    /// Replaces the node's environment; returns the running services that restart for it.
    fn set_environment(&mut self, variables: Vec<(String, String)>) -> Vec<String> {
        let before = std::mem::replace(&mut self.environment, variables);
        self.services
            .iter()
            .filter(|service| {
                let policy = service.spec.node_environment;
                policy.restarts()
                    && matches!(service.phase, Phase::Running(_))
                    && !policy.select(&before).eq(policy.select(&self.environment))
            })
            .map(|service| service.spec.id.clone())
            .collect()
    }

    fn signal(&mut self, id: &str, signal: Signal) -> Result<bool, ServiceError> {
        let index = self.find(id)?;
        let Phase::Running(run) = &self.services[index].phase else {
            return Ok(false);
        };
        if let Err(error) = run.handle.signal(signal) {
            tracing::warn!(service = id, %error, "cannot signal service");
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether `from` is `target` or depends on it, directly or not.
    fn reaches(&self, from: &str, target: &str) -> bool {
        let mut pending = vec![from];
        let mut seen = Vec::new();
        while let Some(id) = pending.pop() {
            if id == target {
                return true;
            }
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            if let Ok(index) = self.find(id) {
                pending.extend(
                    self.services[index]
                        .spec
                        .depends_on
                        .iter()
                        .map(String::as_str),
                );
            }
        }
        false
    }

    /// Service ids grouped by depth in the dependency graph, deepest first.
    fn stop_order(&self) -> Vec<Vec<String>> {
        let mut depths: HashMap<&str, usize> = HashMap::new();
        for service in &self.services {
            self.depth(&service.spec.id, &mut depths);
        }
        let deepest = depths.values().copied().max().unwrap_or(0);
        (0..=deepest)
            .rev()
            .map(|depth| {
                self.services
                    .iter()
                    .filter(|service| depths.get(service.spec.id.as_str()) == Some(&depth))
                    .map(|service| service.spec.id.clone())
                    .collect::<Vec<_>>()
            })
            .filter(|level| !level.is_empty())
            .collect()
    }

    fn depth<'a>(&'a self, id: &'a str, depths: &mut HashMap<&'a str, usize>) -> usize {
        if let Some(&depth) = depths.get(id) {
            return depth;
        }
        // Registration rejects cycles, so the recursion ends.
        let depth = match self.find(id) {
            Ok(index) => self.services[index]
                .spec
                .depends_on
                .iter()
                .filter(|dependency| self.find(dependency).is_ok())
                .map(|dependency| self.depth(dependency, depths) + 1)
                .max()
                .unwrap_or(0),
            Err(_) => 0,
        };
        depths.insert(id, depth);
        depth
    }

    fn operate(
        &mut self,
        operation: Operation,
        id: &str,
        via_api: bool,
        reply: Reply<Result<(), ServiceError>>,
    ) {
        let index = match self.find(id) {
            Ok(index) => index,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        if via_api && !self.services[index].allows(operation) {
            let _ = reply.send(Err(ServiceError::NotSupportedViaApi {
                id: id.to_owned(),
                operation: operation.as_str(),
            }));
            return;
        }
        let service = &mut self.services[index];
        match (operation, &service.phase) {
            (Operation::Start, Phase::Idle) => {
                self.begin_start(index);
                let _ = reply.send(Ok(()));
            }
            (Operation::Start, Phase::Stopping(_)) | (Operation::Restart, Phase::Stopping(_)) => {
                service.after_stop.push((true, reply));
            }
            (Operation::Start, _) => {
                let _ = reply.send(Ok(()));
            }
            (Operation::Stop, Phase::Idle) => {
                let _ = reply.send(Ok(()));
            }
            (Operation::Stop, Phase::Stopping(_)) => service.after_stop.push((false, reply)),
            (Operation::Stop | Operation::Restart, Phase::Running(_)) => {
                service
                    .after_stop
                    .push((operation == Operation::Restart, reply));
                self.begin_stop(index);
            }
            (Operation::Stop, Phase::WaitingForDependencies | Phase::BackingOff) => {
                service.generation += 1;
                service.phase = Phase::Idle;
                self.record(
                    index,
                    ServiceState::Finished,
                    "Service stopped before it started",
                );
                let _ = reply.send(Ok(()));
            }
            (
                Operation::Restart,
                Phase::Idle | Phase::WaitingForDependencies | Phase::BackingOff,
            ) => {
                service.generation += 1;
                service.phase = Phase::Idle;
                self.begin_start(index);
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn begin_start(&mut self, index: usize) {
        let service = &mut self.services[index];
        service.next_backoff = service.spec.backoff.initial;
        self.record(index, ServiceState::Starting, "Starting service");
        self.launch_or_wait(index);
    }

    /// Waits for the first dependency that is not up, or starts a run.
    fn launch_or_wait(&mut self, index: usize) {
        let service = &self.services[index];
        let unmet = service
            .spec
            .depends_on
            .iter()
            .find(|dependency| {
                self.find(dependency)
                    .map_or(true, |found| !self.services[found].is_up())
            })
            .cloned();
        if let Some(dependency) = unmet {
            let message = format!("Waiting for service {dependency:?} to be up");
            let service = &mut self.services[index];
            let already_said = matches!(service.phase, Phase::WaitingForDependencies)
                && service.history.last_message() == Some(message.as_str());
            service.phase = Phase::WaitingForDependencies;
            if !already_said {
                self.record(index, ServiceState::Waiting, &message);
            }
            return;
        }
        self.record(index, ServiceState::Preparing, "Creating service runner");
        let run_id = self.next_run;
        self.next_run += 1;
        let service = &self.services[index];
        let id = service.spec.id.clone();
        let commands = self.commands.clone();
        let notify_exit = Box::new(move |exit| {
            if let Some(commands) = commands.upgrade() {
                let _ = commands.send(Command::Exited {
                    id,
                    run: run_id,
                    exit,
                });
            }
        });
        let spec = service.spec.with_node_environment(&self.environment);
        match service.spec.runner.start(&spec, &service.log, notify_exit) {
            Ok(handle) => {
                let prober = service.spec.health_check.clone().map(|check| {
                    let id = service.spec.id.clone();
                    let commands = self.commands.clone();
                    spawn_prober(check, move |result| {
                        commands.upgrade().is_some_and(|commands| {
                            let id = id.clone();
                            commands
                                .send(Command::Health {
                                    id,
                                    run: run_id,
                                    result,
                                })
                                .is_ok()
                        })
                    })
                });
                let message = handle.started_message();
                let service = &mut self.services[index];
                service.health = Health::unknown();
                service.phase = Phase::Running(Run {
                    id: run_id,
                    handle,
                    prober,
                    started: Instant::now(),
                });
                self.record(index, ServiceState::Running, &message);
            }
            Err(error) => {
                self.record(index, ServiceState::Failed, &error.to_string());
                self.restart_or_rest(index, false, Duration::ZERO);
            }
        }
    }

    /// Starts every waiting service whose dependencies are now up.
    fn start_ready_services(&mut self) {
        let mut progressed = true;
        while progressed {
            progressed = false;
            for index in 0..self.services.len() {
                if matches!(self.services[index].phase, Phase::WaitingForDependencies) {
                    self.launch_or_wait(index);
                    progressed |=
                        !matches!(self.services[index].phase, Phase::WaitingForDependencies);
                }
            }
        }
    }

    fn begin_stop(&mut self, index: usize) {
        let service = &mut self.services[index];
        let Phase::Running(mut run) = std::mem::replace(&mut service.phase, Phase::Idle) else {
            return;
        };
        run.stop_probing();
        let grace = service.spec.stop_grace;
        let signalled = run.handle.signal(Signal::SIGTERM);
        let run_id = run.id;
        service.phase = Phase::Stopping(run);
        let message = match signalled {
            Ok(()) => format!("Stopping service: sent SIGTERM, SIGKILL after {grace:?}"),
            Err(error) => {
                format!("Stopping service: SIGTERM failed ({error}), SIGKILL after {grace:?}")
            }
        };
        self.record(index, ServiceState::Stopping, &message);
        let id = self.services[index].spec.id.clone();
        let commands = self.commands.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(commands) = commands.upgrade() {
                let _ = commands.send(Command::StopGraceElapsed { id, run: run_id });
            }
        });
    }

    fn stop_grace_elapsed(&mut self, id: &str, run_id: u64) {
        let Ok(index) = self.find(id) else { return };
        let service = &self.services[index];
        let Phase::Stopping(run) = &service.phase else {
            return;
        };
        if run.id != run_id {
            return;
        }
        let message = match run.handle.signal(Signal::SIGKILL) {
            Ok(()) => format!(
                "Sent SIGKILL: still running {:?} after SIGTERM",
                service.spec.stop_grace
            ),
            Err(error) => format!("SIGKILL failed: {error}"),
        };
        self.record(index, ServiceState::Stopping, &message);
    }

    fn exited(&mut self, id: &str, run_id: u64, exit: ChildExit) {
        let Ok(index) = self.find(id) else { return };
        let service = &mut self.services[index];
        let (Phase::Running(run) | Phase::Stopping(run)) = &service.phase else {
            return;
        };
        if run.id != run_id {
            return;
        }
        let (Phase::Running(mut run) | Phase::Stopping(mut run)) =
            std::mem::replace(&mut service.phase, Phase::Idle)
        else {
            return;
        };
        let was_stopping = service.state == ServiceState::Stopping;
        run.stop_probing();
        // Whatever the run left behind in its process group goes with it.
        if let Err(error) = run.handle.signal(Signal::SIGKILL) {
            tracing::warn!(service = %id, %error, "cannot kill what is left of the service");
        }
        service.health = Health::unknown();
        if was_stopping {
            self.record(
                index,
                ServiceState::Finished,
                &format!("Service stopped ({exit})"),
            );
            let waiters = std::mem::take(&mut self.services[index].after_stop);
            let mut started = false;
            for (start_again, reply) in waiters {
                if start_again && !started {
                    started = true;
                    self.begin_start(index);
                }
                let _ = reply.send(Ok(()));
            }
            return;
        }
        let state = if exit.success() {
            ServiceState::Finished
        } else {
            ServiceState::Failed
        };
        self.record(index, state, &format!("Process exited: {exit}"));
        self.restart_or_rest(index, exit.success(), run.started.elapsed());
    }

    /// After a run ended on its own: schedules a restart if the policy wants one.
    fn restart_or_rest(&mut self, index: usize, success: bool, ran_for: Duration) {
        let service = &mut self.services[index];
        let restart = match service.spec.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Never => false,
        };
        if !restart {
            service.phase = Phase::Idle;
            return;
        }
        let backoff = service.spec.backoff;
        if ran_for >= backoff.max {
            service.next_backoff = backoff.initial;
        }
        let delay = service.next_backoff;
        service.next_backoff = (delay * 2).min(backoff.max);
        service.generation += 1;
        service.phase = Phase::BackingOff;
        let generation = service.generation;
        let id = service.spec.id.clone();
        self.record(
            index,
            ServiceState::Waiting,
            &format!("Restarting in {delay:?}"),
        );
        let commands = self.commands.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(commands) = commands.upgrade() {
                let _ = commands.send(Command::BackoffElapsed { id, generation });
            }
        });
    }

    fn health(&mut self, id: &str, run_id: u64, result: Result<(), String>) {
        let Ok(index) = self.find(id) else { return };
        let service = &mut self.services[index];
        let Phase::Running(run) = &service.phase else {
            return;
        };
        if run.id != run_id {
            return;
        }
        let healthy = result.is_ok();
        let last_message = result.err().unwrap_or_default();
        if !service.health.unknown && service.health.healthy == healthy {
            service.health.last_message = last_message;
            return;
        }
        let message = if healthy {
            "Health check successful".to_owned()
        } else {
            format!("Health check failed: {last_message}")
        };
        service.health = Health {
            unknown: false,
            healthy,
            last_message,
            last_change: Some(SystemTime::now()),
        };
        self.record(index, ServiceState::Running, &message);
    }

    /// Enters `state`: history, watchers and the event bus.
    fn record(&mut self, index: usize, state: ServiceState, message: &str) {
        let service = &mut self.services[index];
        service.state = state;
        service.history.push(state, message);
        // As upstream prints `service[apid](Running): …` on the console; `at_ms` places it on
        // the boot timeline.
        tracing::info!(
            at_ms = %format_args!("{:.1}", crate::boot_clock::since_start_ms()),
            "service[{}]({}): {message}",
            service.spec.id,
            state.as_str()
        );
        let event = ServiceStateEvent {
            service: service.spec.id.clone(),
            action: state.action() as i32,
            message: message.to_owned(),
            health: Some(service.health.to_proto()),
        };
        self.bus.publish(&event, None);
        // Nobody watching is fine.
        let _ = self.changes.send(ServiceStateChange {
            id: service.spec.id.clone(),
            state,
            message: message.to_owned(),
            health: service.health.clone(),
            up: service.is_up(),
        });
    }
}
