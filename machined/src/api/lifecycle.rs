//! Reboot and Shutdown: they answer at once with an actor id and the main loop runs the
//! sequence (stop every service in order, then restart or exit).

use proto::machine::*;

use crate::error::MachinedError;
use crate::machine::{Lifecycle, Machine};

pub(super) async fn reboot(machine: &Machine) -> Result<RebootResponse, MachinedError> {
    let actor_id = request(machine, Lifecycle::Reboot).await?;
    Ok(RebootResponse {
        messages: vec![Reboot {
            metadata: None,
            actor_id,
        }],
    })
}

pub(super) async fn shutdown(machine: &Machine) -> Result<ShutdownResponse, MachinedError> {
    let actor_id = request(machine, Lifecycle::Shutdown).await?;
    Ok(ShutdownResponse {
        messages: vec![Shutdown {
            metadata: None,
            actor_id,
        }],
    })
}

pub(super) async fn request(machine: &Machine, what: Lifecycle) -> Result<String, MachinedError> {
    if machine.platform.mode == machineconfig::RuntimeMode::Container {
        return Err(MachinedError::FailedPrecondition(
            "method is not supported in container mode".into(),
        ));
    }
    let actor_id = uuid::Uuid::new_v4().to_string();
    machine
        .lifecycle
        .try_send((what, actor_id.clone()))
        .map_err(|_| {
            MachinedError::FailedPrecondition("a reboot or shutdown is already in progress".into())
        })?;
    Ok(actor_id)
}
