//! The node's environment: the kernel's `talos.environment=NAME=value` arguments, `machine.env`
//! and the `EnvironmentConfig` documents, in that order (a later value of a name wins, as
//! upstream), given to every system service
//! ([`crate::services::Supervisor::set_environment`]).
//!
//! Upstream sets these variables on machined and passes them to each service when it starts, so
//! a change reaches the services at the next reboot. talos-rs applies configs without a reboot,
//! so a change restarts the running services whose environment it changes (apid leaves the
//! proxy variables out, and containerd takes the change at its next start: see
//! [`crate::services::NodeEnvironment`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::Serialize;

use crate::controllers::{active_config, machine_config_kind};
use crate::error::MachinedError;
use crate::machine::Machine;

/// How long a restart for a new environment waits, so that the ApplyConfiguration reply leaves
/// through apid first.
const REPLY_GRACE: Duration = Duration::from_millis(500);

/// The kernel argument that adds a variable (`talos.environment=NAME=value`, repeatable).
pub const KERNEL_ARGUMENT: &str = "talos.environment";

/// The variables of the kernel's `talos.environment` values: each `NAME=value` whose name is a
/// POSIX name, in order; any other value is logged and left out (a kernel argument cannot be
/// refused).
pub fn kernel_environment(values: &[&str]) -> Vec<(String, String)> {
    values
        .iter()
        .filter_map(|value| {
            let checked = value
                .split_once('=')
                .ok_or_else(|| "expected NAME=value".to_string())
                .and_then(|(name, value)| {
                    machineconfig::environment_variable(name, value).map(|()| (name, value))
                });
            match checked {
                Ok((name, value)) => Some((name.to_string(), value.to_string())),
                Err(error) => {
                    tracing::warn!(%error, value, "{KERNEL_ARGUMENT}: left out");
                    None
                }
            }
        })
        .collect()
}

/// The node's environment, sorted by name: the `kernel` variables, then `machine.env` of
/// `config`, then each of its `EnvironmentConfig` documents in order, a later value of a name
/// replacing an earlier one.
pub fn node_environment(
    kernel: &[(String, String)],
    config: Option<&Config>,
) -> Vec<(String, String)> {
    let mut variables: BTreeMap<String, String> = kernel.iter().cloned().collect();
    let Some(config) = config else {
        return variables.into_iter().collect();
    };
    let machine_env = config
        .v1alpha1
        .as_ref()
        .and_then(|v1alpha1| v1alpha1.machine.as_ref())
        .map(|machine| &machine.env);
    let documents = config
        .documents
        .iter()
        .filter_map(|document| match document {
            Document::Environment(environment) => Some(&environment.variables),
            _ => None,
        });
    for source in machine_env.into_iter().chain(documents) {
        variables.extend(
            source
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
    }
    variables.into_iter().collect()
}

/// Whether `document` is applied here.
pub fn applied_by_environment(document: &Document) -> bool {
    matches!(document, Document::Environment(_))
}

/// `Environments.runtime.talos.dev`: the node's environment as `NAME=value` entries, sorted.
/// Upstream's `machined` entry is machined's whole environment; here machined's own stays as it
/// started, so the entry is what the services get.
#[derive(Debug, Serialize)]
pub struct EnvironmentSpec {
    pub variables: Vec<String>,
}

impl Spec for EnvironmentSpec {
    const TYPE: &'static str = "Environments.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `runtime.EnvironmentController`: the kernel's variables and the active config →
/// `Environments.runtime.talos.dev/machined`.
#[derive(Debug)]
pub struct EnvironmentController {
    /// The kernel's `talos.environment` variables.
    pub kernel: Vec<(String, String)>,
}

impl Controller for EnvironmentController {
    fn name(&self) -> &'static str {
        "runtime.EnvironmentController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<EnvironmentSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let config = active_config(context)?;
            let variables = node_environment(&self.kernel, config.as_ref())
                .into_iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            context
                .write("machined", &EnvironmentSpec { variables })
                .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

/// Follows the active config: each new environment (with the `kernel` variables) goes to the
/// supervisor, and the running services it changes are restarted. The config of the moment is
/// looked at first (a change between boot and this task's start is not missed; an unchanged
/// environment restarts nothing). Runs until the config watch ends.
pub async fn keep_in_step(machine: Arc<Machine>, kernel: Vec<(String, String)>) {
    let mut changes = machine.config.subscribe();
    loop {
        let variables = node_environment(&kernel, changes.borrow_and_update().as_deref());
        if let Err(error) = apply(&machine, variables).await {
            tracing::error!(%error, "cannot apply the node's environment");
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

async fn apply(machine: &Machine, variables: Vec<(String, String)>) -> Result<(), MachinedError> {
    let restarts = machine.services.set_environment(variables).await?;
    if restarts.is_empty() {
        return Ok(());
    }
    tracing::info!(services = ?restarts, "the node's environment changed: restarting");
    tokio::time::sleep(REPLY_GRACE).await;
    for id in restarts {
        machine.services.restart(&id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_override_machine_env_which_overrides_the_kernel() {
        let config = Config::from_yaml(
            "version: v1alpha1\nmachine:\n  type: worker\n  env:\n    A: machine\n    B: machine\n\
             ---\napiVersion: v1alpha1\nkind: EnvironmentConfig\nvariables:\n  B: first\n  C: first\n",
        )
        .unwrap();
        let kernel = kernel_environment(&["A=kernel", "K=x=y", "bad-name=1", "novalue"]);
        let pair = |name: &str, value: &str| (name.to_string(), value.to_string());
        assert_eq!(kernel, [pair("A", "kernel"), pair("K", "x=y")]);
        assert_eq!(
            node_environment(&kernel, Some(&config)),
            [
                pair("A", "machine"),
                pair("B", "first"),
                pair("C", "first"),
                pair("K", "x=y"),
            ]
        );
        assert_eq!(node_environment(&kernel, None), kernel);
    }
}
