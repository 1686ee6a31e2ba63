//! Time sync: timed as a service (its health is "the clock is in sync"), kept configured from
//! `machine.time`, and the bounded wait time-sensitive services do before they start (upstream:
//! `machine.time.bootTimeout`; after it they start anyway).
//!
//! Dev mode runs timed with `--measure-only`, since the clock is the host's, and never reaches
//! the upstream default server: a config that names no `machine.time.servers` (and maintenance
//! mode) turns sync off there, which timed reports as in sync.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use machineconfig::Config;
use proto::talosrs::timed::ConfigureRequest;
use proto::talosrs::timed::timed_service_client::TimedServiceClient;

use crate::machine::Machine;
use crate::services::{ApiOperations, HealthCheck, HostMount, ServiceCondition, ServiceSpec};

/// How long time-sensitive services wait for sync when the config does not say.
const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between attempts to configure a timed that is not answering yet.
const CONFIGURE_RETRY: Duration = Duration::from_millis(200);

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

/// Pushes `machine.time` to timed whenever the active config changes; runs until the config
/// watch ends.
pub async fn keep_configured(machine: Arc<Machine>) {
    let mut changes = machine.config.subscribe();
    let mut timed =
        TimedServiceClient::new(crate::local_socket::channel(&machine.layout.timed_socket()));
    let mut configured: Option<TimeSettings> = None;
    loop {
        let settings = TimeSettings::of(changes.borrow_and_update().as_deref());
        if configured.as_ref() != Some(&settings) {
            let request = ConfigureRequest {
                servers: settings.servers.clone(),
                disabled: settings.disabled,
            };
            match timed.configure(request).await {
                Ok(_) => {
                    tracing::info!(servers = ?settings.servers, disabled = settings.disabled, "timed configured");
                    configured = Some(settings);
                }
                Err(status) => {
                    tracing::debug!(error = %status.message(), "timed not configured yet");
                    tokio::time::sleep(CONFIGURE_RETRY).await;
                    continue;
                }
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Waits until timed reports sync, at most `machine.time.bootTimeout`; false when the wait ran
/// out.
pub async fn wait_until_synced(machine: &Machine) -> bool {
    let bound = machine
        .config
        .current()
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
