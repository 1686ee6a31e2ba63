//! Upgrade, Rollback, MetaWrite and MetaDelete: the system disk's slots and META
//! ([`crate::upgrade`]).

use std::sync::Arc;

use proto::machine::machine_status_event::MachineStage;
use proto::machine::*;

use super::lifecycle;
use crate::error::MachinedError;
use crate::machine::{Lifecycle, Machine};
use crate::upgrade::images;
use crate::upgrade::meta::Meta;
use crate::upgrade::{SystemDisk, meta::keys};

/// The system disk, or why there is none to change.
pub(super) fn system_disk(machine: &Machine) -> Result<Arc<SystemDisk>, MachinedError> {
    if machine.platform.mode == machineconfig::RuntimeMode::Container {
        return Err(MachinedError::FailedPrecondition(
            "method is not supported in container mode".into(),
        ));
    }
    machine.system_disk.clone().ok_or_else(|| {
        MachinedError::FailedPrecondition(
            "this node has no system disk with boot slots (dev mode, or booted without one): \
             there is nothing to upgrade, roll back or write META to"
                .into(),
        )
    })
}

/// The installer image `reference` names in the node's store.
pub(super) fn stored_installer(
    machine: &Machine,
    reference: &str,
) -> Result<images::StoredImage, MachinedError> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(MachinedError::InvalidArgument(
            "installer image name is required".into(),
        ));
    }
    images::find(&machine.layout.image_dir(), reference)?.ok_or_else(|| {
        MachinedError::NotFound(format!(
            "image {reference:?} is not on the node, and talos-rs nodes pull from no registry: \
             import the installer first (talosctl image import FILE, or talosctl upgrade \
             --image FILE)"
        ))
    })
}

/// Refuses an upgrade whose reboot could cost etcd its quorum: on a control plane, every
/// member must be healthy before this one goes down for the reboot. A node whose own member does
/// not answer (a worker, etcd not started, or already down) loses nothing more by rebooting.
async fn etcd_allows_upgrade(machine: &Machine) -> Result<(), MachinedError> {
    let Ok(members) = crate::etcd::member_addresses(machine).await else {
        return Ok(());
    };
    crate::etcd::members_healthy(machine, &members)
        .await
        .map_err(|failure| {
            MachinedError::FailedPrecondition(format!(
                "etcd is not healthy ({failure}): this control plane's reboot could cost the \
                 cluster its quorum; use --force to upgrade anyway"
            ))
        })
}

pub(super) async fn upgrade(
    machine: &Machine,
    request: UpgradeRequest,
) -> Result<UpgradeResponse, MachinedError> {
    if !request.force {
        etcd_allows_upgrade(machine).await?;
    }
    let disk = system_disk(machine)?;
    let image = stored_installer(machine, &request.image)?;
    if image.release == machine.release && !request.force {
        return Err(MachinedError::FailedPrecondition(format!(
            "the node already runs {}: use --force to install it again",
            image.release
        )));
    }
    machine.events.publish(
        &MachineStatusEvent {
            stage: MachineStage::Upgrading as i32,
            status: None,
        },
        None,
    );
    let release = image.release.clone();
    let slot = tokio::task::spawn_blocking(move || {
        disk.install(&image.kernel(), &image.initramfs(), &image.release)
    })
    .await
    .map_err(|e| MachinedError::Internal(e.to_string()))??;
    tracing::info!(
        "upgrade: {release} written to slot {}; it boots once at the next reboot",
        slot.label()
    );
    let reboot = match request.reboot_mode() {
        upgrade_request::RebootMode::Powercycle => Lifecycle::PowerCycle,
        upgrade_request::RebootMode::Default => Lifecycle::Reboot,
    };
    let actor_id = if request.stage {
        String::new()
    } else {
        lifecycle::request(machine, reboot).await?
    };
    Ok(UpgradeResponse {
        messages: vec![Upgrade {
            metadata: None,
            ack: if request.stage {
                format!("Upgrade to {release} staged: it boots at the next reboot")
            } else {
                "Upgrade request received".into()
            },
            actor_id,
        }],
    })
}

pub(super) async fn rollback(machine: &Machine) -> Result<RollbackResponse, MachinedError> {
    let disk = system_disk(machine)?;
    let slot = tokio::task::spawn_blocking(move || disk.rollback())
        .await
        .map_err(|e| MachinedError::Internal(e.to_string()))??;
    tracing::info!(
        "rollback: slot {} boots once at the next reboot",
        slot.label()
    );
    lifecycle::request(machine, Lifecycle::Reboot).await?;
    Ok(RollbackResponse {
        messages: vec![Rollback { metadata: None }],
    })
}

pub(super) async fn meta_write(
    machine: &Machine,
    request: MetaWriteRequest,
) -> Result<MetaWriteResponse, MachinedError> {
    let key = user_key(request.key)?;
    change_meta(machine, move |meta| {
        meta.values.insert(key, request.value);
    })
    .await?;
    Ok(MetaWriteResponse {
        messages: vec![MetaWrite { metadata: None }],
    })
}

pub(super) async fn meta_delete(
    machine: &Machine,
    request: MetaDeleteRequest,
) -> Result<MetaDeleteResponse, MachinedError> {
    let key = user_key(request.key)?;
    let found = change_meta(machine, move |meta| meta.values.remove(&key).is_some()).await?;
    if !found {
        return Err(MachinedError::NotFound(format!(
            "META key 0x{key:02x} is not set"
        )));
    }
    Ok(MetaDeleteResponse {
        messages: vec![MetaDelete { metadata: None }],
    })
}

/// A key the API may change: one byte, not the ones upgrades own.
fn user_key(key: u32) -> Result<u8, MachinedError> {
    let key = u8::try_from(key)
        .map_err(|_| MachinedError::InvalidArgument(format!("META key {key} is not a byte")))?;
    if matches!(key, keys::UPGRADE | keys::UPGRADE_STATUS) {
        return Err(MachinedError::InvalidArgument(format!(
            "META key 0x{key:02x} is managed by upgrades"
        )));
    }
    Ok(key)
}

async fn change_meta<T: Send + 'static>(
    machine: &Machine,
    change: impl FnOnce(&mut Meta) -> T + Send + 'static,
) -> Result<T, MachinedError> {
    let disk = system_disk(machine)?;
    let resources = Arc::clone(&machine.resources);
    let meta = tokio::task::spawn_blocking(move || {
        let mut meta = Meta::read(&disk.meta)?;
        let outcome = change(&mut meta);
        meta.write(&disk.meta)?;
        Ok::<_, MachinedError>((meta, outcome))
    })
    .await
    .map_err(|e| MachinedError::Internal(e.to_string()))??;
    crate::controllers::publish_meta_keys(&resources, &meta.0);
    Ok(meta.1)
}
