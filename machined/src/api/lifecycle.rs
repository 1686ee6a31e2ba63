//! Reboot, Shutdown and Reset: they answer at once with an actor id and the main loop runs the
//! sequence (stop every service in order, then restart or exit; a reset wipes the system
//! volumes in between: see `os::sequence::stop` and dev mode's `main.rs`).

use proto::machine::*;

use crate::error::MachinedError;
use crate::machine::{Lifecycle, Machine, ResetPlan};

/// DEFAULT reboots by kexec where it can, POWERCYCLE always through the firmware; FORCE is a
/// DEFAULT reboot (services are stopped in order either way: no Kubernetes drain to skip).
pub(super) async fn reboot(
    machine: &Machine,
    request_mode: reboot_request::Mode,
) -> Result<RebootResponse, MachinedError> {
    let what = match request_mode {
        reboot_request::Mode::Powercycle => Lifecycle::PowerCycle,
        reboot_request::Mode::Default | reboot_request::Mode::Force => Lifecycle::Reboot,
    };
    let actor_id = request(machine, what).await?;
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

pub(super) async fn reset(
    machine: &Machine,
    reset: ResetRequest,
) -> Result<ResetResponse, MachinedError> {
    let plan = reset_plan(&reset)?;
    if machine.platform.mode == machineconfig::RuntimeMode::Container {
        return Err(MachinedError::FailedPrecondition(
            "method is not supported in container mode".into(),
        ));
    }
    if reset.graceful && crate::etcd::data_dir(machine).exists() {
        leave_etcd(machine).await?;
    }
    let actor_id = request(machine, Lifecycle::Reset(plan)).await?;
    Ok(ResetResponse {
        messages: vec![Reset {
            metadata: None,
            actor_id,
        }],
    })
}

/// What a reset request wipes: STATE and EPHEMERAL unless labels are named.
fn reset_plan(request: &ResetRequest) -> Result<ResetPlan, MachinedError> {
    use reset_request::WipeMode;
    let mode = WipeMode::try_from(request.mode).map_err(|_| {
        MachinedError::InvalidArgument(format!("unknown wipe mode {}", request.mode))
    })?;
    if !request.user_disks_to_wipe.is_empty() || mode == WipeMode::UserDisks {
        return Err(MachinedError::InvalidArgument(
            "talos-rs nodes have no user disks to wipe (wipe mode all or system-disk only)".into(),
        ));
    }
    let mut plan = ResetPlan {
        reboot: request.reboot,
        ..ResetPlan::default()
    };
    if request.system_partitions_to_wipe.is_empty() {
        plan.state = true;
        plan.ephemeral = true;
    }
    for partition in request.system_partitions_to_wipe.iter().filter(|p| p.wipe) {
        match partition.label.as_str() {
            "STATE" => plan.state = true,
            "EPHEMERAL" => plan.ephemeral = true,
            "META" => plan.meta = true,
            other => {
                return Err(MachinedError::InvalidArgument(format!(
                    "unknown system partition label {other:?}: STATE, EPHEMERAL or META"
                )));
            }
        }
    }
    Ok(plan)
}

/// A graceful reset of a control plane: hand leadership over and leave etcd, unless this is
/// the last member (leaving would destroy the cluster's data).
async fn leave_etcd(machine: &Machine) -> Result<(), MachinedError> {
    let (mut client, url) = crate::etcd::local_client(machine).await?;
    let members = client
        .member_list()
        .await
        .map_err(|e| crate::etcd::etcd_error(&url, e))?;
    if members.members().len() <= 1 {
        return Err(MachinedError::FailedPrecondition(
            "this node is the last etcd member: a graceful reset would destroy the cluster; \
             use --graceful=false to reset it anyway"
                .into(),
        ));
    }
    if let Err(error) = super::control_plane::forfeit_leadership(machine).await {
        tracing::warn!(%error, "reset: cannot hand etcd leadership over");
    }
    // etcd refuses to remove a member until every other one has been active for a while
    // ("unhealthy cluster"), as right after the cluster formed: wait for that, bounded.
    let mut attempts = 0;
    loop {
        match super::control_plane::leave(machine).await {
            Err(error)
                if attempts < LEAVE_ATTEMPTS && error.to_string().contains("unhealthy cluster") =>
            {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            result => return result.map(drop),
        }
    }
}

/// How many one-second waits a graceful reset gives etcd to accept the member's removal.
const LEAVE_ATTEMPTS: u32 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(label: &str) -> ResetPartitionSpec {
        ResetPartitionSpec {
            label: label.into(),
            wipe: true,
        }
    }

    #[test]
    fn a_reset_wipes_state_and_ephemeral_unless_told_otherwise() {
        let plan = reset_plan(&ResetRequest::default()).unwrap();
        assert_eq!(plan.labels(), ["STATE", "EPHEMERAL"]);
        let meta_only = ResetRequest {
            system_partitions_to_wipe: vec![partition("META")],
            reboot: true,
            ..ResetRequest::default()
        };
        let plan = reset_plan(&meta_only).unwrap();
        assert_eq!((plan.labels(), plan.reboot), (vec!["META"], true));
        let unknown = ResetRequest {
            system_partitions_to_wipe: vec![partition("BOOT")],
            ..ResetRequest::default()
        };
        assert!(
            reset_plan(&unknown)
                .unwrap_err()
                .to_string()
                .contains("BOOT")
        );
        let user = ResetRequest {
            user_disks_to_wipe: vec!["/dev/sdb".into()],
            ..ResetRequest::default()
        };
        assert!(reset_plan(&user).is_err());
    }
}
