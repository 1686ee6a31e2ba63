//! `machine.LifecycleService`, the upgrade API of upstream's talosctl from v1.13: it pulls the
//! installer with `ImageService.Pull` (answered here for an image already in the node's store),
//! calls `Upgrade`, then `MachineService.Reboot`. `Upgrade` writes the stored installer into the
//! slot that did not boot, as the older `MachineService.Upgrade` does, but leaves the reboot to
//! the caller; its stream carries progress lines and ends with an exit code (0: the new
//! release boots once at the next reboot).

use std::sync::Arc;

use proto::machine::lifecycle_service_install_progress::Response as Progress;
use proto::machine::lifecycle_service_server::LifecycleService;
use proto::machine::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::upgrade::{stored_installer, system_disk};
use crate::error::MachinedError;
use crate::machine::Machine;

/// `machine.LifecycleService` served from a [`Machine`].
#[derive(Clone, Debug)]
pub struct LifecycleApi {
    machine: Arc<Machine>,
}

impl LifecycleApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        LifecycleApi { machine }
    }
}

#[tonic::async_trait]
impl LifecycleService for LifecycleApi {
    async fn install(
        &self,
        _request: Request<LifecycleServiceInstallRequest>,
    ) -> Result<Response<BoxStream<LifecycleServiceInstallResponse>>, Status> {
        let refusal = if self.machine.system_disk.is_some() {
            MachinedError::AlreadyExists("machine is already installed".into())
        } else {
            MachinedError::FailedPrecondition(
                "a talos-rs node installs itself from its boot medium: apply a config with \
                 machine.install.disk (or a diskSelector) instead"
                    .into(),
            )
        };
        Err(Status::from(refusal))
    }

    async fn upgrade(
        &self,
        request: Request<LifecycleServiceUpgradeRequest>,
    ) -> Result<Response<BoxStream<LifecycleServiceUpgradeResponse>>, Status> {
        let request = request.into_inner();
        let disk = system_disk(&self.machine).map_err(Status::from)?;
        let name = request.source.map(|s| s.image_name).unwrap_or_default();
        let image = stored_installer(&self.machine, &name).map_err(Status::from)?;
        let (progress, replies) = mpsc::channel(4);
        tokio::spawn(async move {
            let send = |response| {
                let progress = progress.clone();
                async move {
                    let reply = LifecycleServiceUpgradeResponse {
                        progress: Some(LifecycleServiceInstallProgress {
                            response: Some(response),
                        }),
                    };
                    let _ = progress.send(Ok(reply)).await;
                }
            };
            let release = image.release.clone();
            send(Progress::Message(format!(
                "installing {release} from {} into the inactive slot",
                image.name
            )))
            .await;
            let written = tokio::task::spawn_blocking(move || {
                disk.install(&image.kernel(), &image.initramfs(), &image.release)
            })
            .await
            .unwrap_or_else(|e| Err(MachinedError::Internal(e.to_string())));
            match written {
                Ok(slot) => {
                    tracing::info!(
                        "upgrade: {release} written to slot {}; it boots once at the next reboot",
                        slot.label()
                    );
                    send(Progress::Message(format!(
                        "{release} written to slot {}: it boots once at the next reboot",
                        slot.label()
                    )))
                    .await;
                    send(Progress::ExitCode(0)).await;
                }
                Err(error) => {
                    tracing::warn!("upgrade to {release} failed: {error}");
                    send(Progress::Message(format!("upgrade failed: {error}"))).await;
                    send(Progress::ExitCode(1)).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(replies))))
    }
}
