//! Time sync: timed as a service (its health is "the clock is in sync"), kept configured from
//! `machine.time` by a controller ([`TimedConfigController`]), and the bounded wait time-sensitive services do before they start (upstream:
//! `machine.time.bootTimeout`; after it they start anyway).
//!
//! Dev mode runs timed with `--measure-only`, since the clock is the host's, and never reaches
//! the upstream default server: a config that names no `machine.time.servers` (and maintenance
//! mode) turns sync off there, which timed reports as in sync.

use std::path::Path;
use std::time::Duration;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use proto::talosrs::timed::ConfigureRequest;
use proto::talosrs::timed::timed_service_client::TimedServiceClient;
use resources::{Context, Controller, Kind, Requeue};
use tonic::Status;
use tonic::transport::Channel;

use crate::controllers;
use crate::machine::Machine;
use crate::services::{ApiOperations, HealthCheck, HostMount, ServiceCondition, ServiceSpec};

/// How long time-sensitive services wait for sync when the config does not say.
const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// `machine.time` as timed is configured from it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TimeSettings {
    servers: Vec<String>,
    disabled: bool,
}

impl TimeSettings {
    fn of(config: Option<&Config>) -> Self {
        let time = config
            .and_then(|c| c.v1alpha1.as_ref()?.machine.as_ref()?.time.clone())
            .unwrap_or_default();
        TimeSettings {
            disabled: time.disabled.unwrap_or(false) || time.servers.is_empty(),
            servers: time.servers,
        }
    }
}

/// The timed service of a dev-mode node, started with the active config's settings so that its
/// first answer about sync already means them.
pub fn timed_spec(machine: &Machine, program: &Path) -> ServiceSpec {
    let socket = machine.layout.timed_socket();
    let mut args = vec![
        "--state-dir".to_string(),
        machine.layout.root().display().to_string(),
        "--measure-only".to_string(),
    ];
    let settings = TimeSettings::of(machine.config.current().as_deref());
    for server in &settings.servers {
        args.extend(["--server".to_string(), server.clone()]);
    }
    if settings.disabled {
        args.push("--disabled".to_string());
    }
    machine.system_service(ServiceSpec {
        args,
        health_check: Some(HealthCheck::time_synced(socket)),
        api: ApiOperations::NONE,
        mounts: vec![HostMount::writable(machine.layout.timed_socket_dir())],
        memory_limit: Some(32 << 20),
        ..ServiceSpec::process("timed", program)
    })
}

/// What the timed controller needs of timed: its `Configure` call.
pub trait TimedClient: Send + 'static {
    fn configure(&mut self, request: ConfigureRequest) -> BoxFuture<'_, Result<(), Status>>;
}

impl TimedClient for TimedServiceClient<Channel> {
    fn configure(&mut self, request: ConfigureRequest) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(async move { TimedServiceClient::configure(self, request).await.map(drop) })
    }
}

/// The timed client of the node whose timed listens on `socket`.
pub fn timed_client(socket: &Path) -> TimedServiceClient<Channel> {
    TimedServiceClient::new(crate::local_socket::channel(socket))
}

/// Pushes `machine.time` to timed: reconciles when the config or a service changes, configures
/// timed once it runs (again after each restart) and otherwise only when the settings differ
/// from what it last accepted. A timed that does not answer yet is retried by the runtime.
#[derive(Debug)]
pub struct TimedConfigController<C> {
    timed: C,
    configured: Option<TimeSettings>,
}

impl<C: TimedClient> TimedConfigController<C> {
    pub fn new(timed: C) -> Self {
        TimedConfigController {
            timed,
            configured: None,
        }
    }
}

impl<C: TimedClient> Controller for TimedConfigController<C> {
    fn name(&self) -> &'static str {
        "time.TimedConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![
            controllers::machine_config_kind(),
            Kind::of::<controllers::ServiceSpec>(),
        ]
    }

    fn outputs(&self) -> Vec<Kind> {
        Vec::new()
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            if !controllers::service_is_running(context.state(), "timed") {
                // A timed that starts again is configured again.
                self.configured = None;
                return Ok(Requeue::Never);
            }
            let settings = TimeSettings::of(controllers::active_config(context)?.as_ref());
            if self.configured.as_ref() == Some(&settings) {
                return Ok(Requeue::Never);
            }
            let request = ConfigureRequest {
                servers: settings.servers.clone(),
                disabled: settings.disabled,
            };
            self.timed
                .configure(request)
                .await
                .map_err(|status| format!("timed: {}", status.message()))?;
            tracing::info!(servers = ?settings.servers, disabled = settings.disabled, "timed configured");
            self.configured = Some(settings);
            Ok(Requeue::Never)
        })
    }
}

/// Waits until timed reports sync, at most `machine.time.bootTimeout`; false when the wait ran
/// out. With sync off (no servers, or `machine.time.disabled`) the clock is trusted as it is,
/// which is what timed reports once it runs: nothing waits for timed's start then.
pub async fn wait_until_synced(machine: &Machine) -> bool {
    let config = machine.config.current();
    if TimeSettings::of(config.as_deref()).disabled {
        return true;
    }
    let bound = config
        .and_then(|c| {
            c.v1alpha1
                .as_ref()?
                .machine
                .as_ref()?
                .time
                .as_ref()?
                .boot_timeout
                .as_ref()
                .map(|t| t.as_duration())
        })
        .unwrap_or(DEFAULT_BOOT_TIMEOUT);
    let synced = machine.services.wait_for("timed", ServiceCondition::Up);
    match tokio::time::timeout(bound, synced).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot wait for time sync");
            false
        }
        Err(_) => {
            tracing::warn!(
                ?bound,
                "time is not in sync after the boot timeout: going on"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use resources::{Runtime, State};
    use tokio::sync::mpsc;

    use super::*;
    use crate::controllers::test_inputs::{settle, write_config, write_service};

    /// Records every request; refuses the first `failures` of them.
    #[derive(Debug)]
    struct FakeTimed {
        calls: mpsc::UnboundedSender<ConfigureRequest>,
        failures: usize,
    }

    impl TimedClient for FakeTimed {
        fn configure(&mut self, request: ConfigureRequest) -> BoxFuture<'_, Result<(), Status>> {
            Box::pin(async move {
                self.calls.send(request).unwrap();
                if self.failures > 0 {
                    self.failures -= 1;
                    return Err(Status::unavailable("not listening yet"));
                }
                Ok(())
            })
        }
    }

    fn write_timed_running(state: &State, running: bool) {
        let spec = controllers::ServiceSpec {
            running,
            healthy: false,
            unknown: true,
        };
        write_service(state, "timed", &spec);
    }

    #[tokio::test]
    async fn timed_is_configured_once_it_runs_retried_and_only_on_change() {
        const SERVERS: &str =
            "version: v1alpha1\nmachine:\n  time:\n    servers: [ntp.example.org]\n";
        let state = Arc::new(State::new());
        let (calls, mut requests) = mpsc::unbounded_channel();
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(TimedConfigController::new(FakeTimed { calls, failures: 1 }));
        let failures = runtime.failures();
        write_config(&state, SERVERS);
        runtime.start();
        settle().await;
        assert!(requests.try_recv().is_err(), "timed is not running yet");

        write_timed_running(&state, true);
        let wanted = ConfigureRequest {
            servers: vec!["ntp.example.org".into()],
            disabled: false,
        };
        for _ in 0..2 {
            assert_eq!(requests.recv().await.unwrap(), wanted);
        }
        settle().await;
        assert!(requests.try_recv().is_err(), "accepted: not sent again");
        assert!(
            failures.lock().unwrap().is_empty(),
            "recovered after the retries"
        );

        // Another change to the config, the same time settings: nothing to tell timed.
        write_config(
            &state,
            &SERVERS.replace("machine:\n", "machine:\n  type: worker\n"),
        );
        settle().await;
        assert!(requests.try_recv().is_err());

        // No servers: sync off.
        write_config(&state, "version: v1alpha1\nmachine:\n  type: worker\n");
        assert_eq!(
            requests.recv().await.unwrap(),
            ConfigureRequest {
                servers: Vec::new(),
                disabled: true,
            }
        );
        // A timed that stopped is not called; once it runs again it is configured again.
        write_timed_running(&state, false);
        write_config(&state, SERVERS);
        settle().await;
        assert!(requests.try_recv().is_err());
        write_timed_running(&state, true);
        assert_eq!(requests.recv().await.unwrap(), wanted);
        settle().await;
        assert!(requests.try_recv().is_err());
    }
}
