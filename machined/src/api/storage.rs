//! `storage.StorageService`: the node's disks and wiping them (`talosctl wipe disk`). Only a
//! node that owns its disks serves it: dev mode and containers share the host's devices and
//! answer FailedPrecondition.

use std::sync::Arc;

use proto::storage::storage_service_server::StorageService;
use proto::storage::*;
use tonic::{Request, Response, Status};

use crate::block::BlockDevices;
use crate::error::MachinedError;
use crate::machine::Machine;

/// How many devices one wipe request may name.
const MAX_DEVICES: usize = 64;

/// `storage.StorageService` served from a [`Machine`].
#[derive(Clone, Debug)]
pub struct StorageApi {
    machine: Arc<Machine>,
}

impl StorageApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        StorageApi { machine }
    }

    /// The node's block devices and its system disk's name, if it manages disks.
    fn devices(&self) -> Result<(BlockDevices, Option<String>), MachinedError> {
        if matches!(self.machine.platform.name.as_str(), "dev" | "container") {
            return Err(MachinedError::FailedPrecondition(format!(
                "a node in {} mode shares the host's disks and manages none",
                self.machine.platform.name
            )));
        }
        let devices = BlockDevices {
            sys: "/sys".into(),
            dev: "/dev".into(),
        };
        let system_disk = self
            .machine
            .system_disk
            .as_ref()
            .and_then(|disk| devices.disk_of(&disk.boot.display().to_string()));
        Ok((devices, system_disk))
    }
}

#[tonic::async_trait]
impl StorageService for StorageApi {
    async fn disks(&self, _: Request<()>) -> Result<Response<DisksResponse>, Status> {
        let (devices, system_disk) = self.devices()?;
        let disks = tokio::task::spawn_blocking(move || devices.disks(system_disk.as_deref()))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(DisksResponse {
            messages: vec![Disks {
                metadata: None,
                disks,
            }],
        }))
    }

    async fn block_device_wipe(
        &self,
        request: Request<BlockDeviceWipeRequest>,
    ) -> Result<Response<BlockDeviceWipeResponse>, Status> {
        let descriptors = request.into_inner().devices;
        if descriptors.is_empty() || descriptors.len() > MAX_DEVICES {
            return Err(MachinedError::InvalidArgument(format!(
                "name between 1 and {MAX_DEVICES} devices to wipe"
            ))
            .into());
        }
        if let Some(d) = descriptors.iter().find(|d| d.drop_partition) {
            return Err(MachinedError::FailedPrecondition(format!(
                "{}: dropping a partition from its table is not supported by talos-rs; wipe it without --drop-partition",
                d.device
            ))
            .into());
        }
        let (devices, system_disk) = self.devices()?;
        let result = tokio::task::spawn_blocking(move || {
            let mounts = std::fs::read_to_string("/proc/mounts")
                .map_err(MachinedError::io("reading", "/proc/mounts"))?;
            for d in &descriptors {
                devices.wipe(
                    &d.device,
                    d.method(),
                    d.skip_volume_check,
                    system_disk.as_deref(),
                    &mounts,
                )?;
                tracing::info!(device = %d.device, method = ?d.method(), "wiped");
            }
            Ok::<_, MachinedError>(())
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        result?;
        Ok(Response::new(BlockDeviceWipeResponse {
            messages: vec![BlockDeviceWipe { metadata: None }],
        }))
    }
}
