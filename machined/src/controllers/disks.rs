//! `Disks.block.talos.dev`: the node's disks as upstream's `block.DiskSpec` shows them
//! (`talosctl get disks`), read from sysfs ([`BlockDevices`]) at start and every [`POLL`] after
//! by one source (owner [`OWNER`]). Only a node that owns its disks publishes them: in dev mode
//! and in containers the host's disks are not the node's. Limits: no `symlinks` (there is no
//! udev to make `/dev/disk/by-*`), no device-mapper fields, no firmware version.

use std::sync::Arc;
use std::time::Duration;

use proto::storage::disk::DiskType;
use resources::{Spec, State};
use serde::Serialize;

use crate::block::{BlockDevices, pretty_size, transport};

/// The source's owner name, as upstream's graph names its disk status controller.
pub const OWNER: &str = "block.DisksController";
/// How often the disks are read again (a disk added at run time shows within it).
const POLL: Duration = Duration::from_secs(30);

/// `Disks.block.talos.dev`, with upstream's YAML field names and omissions.
#[derive(Debug, Serialize, PartialEq)]
pub struct DiskSpec {
    pub dev_path: String,
    pub size: u64,
    pub pretty_size: String,
    pub io_size: u64,
    pub sector_size: u64,
    pub readonly: bool,
    pub cdrom: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub serial: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub modalias: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wwid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bus_path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sub_system: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transport: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rotational: bool,
}

impl Spec for DiskSpec {
    const TYPE: &'static str = "Disks.block.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// Publishes the disks of `devices` now and every [`POLL`] after.
pub async fn run(devices: BlockDevices, state: Arc<State>) {
    loop {
        let read = devices.clone();
        match tokio::task::spawn_blocking(move || specs(&read)).await {
            Ok(disks) => super::host::replace_owned(&state, OWNER, disks),
            Err(error) => tracing::warn!(%error, "reading the disks failed"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every disk of `devices`, by name (`vda`, `sr0`).
pub fn specs(devices: &BlockDevices) -> Vec<(String, DiskSpec)> {
    devices
        .disks(None)
        .into_iter()
        .map(|disk| {
            let queue = |file: &str| devices.queue_value(&disk.name, file);
            let spec = DiskSpec {
                pretty_size: pretty_size(disk.size),
                io_size: queue("minimum_io_size"),
                sector_size: queue("logical_block_size"),
                readonly: disk.readonly,
                cdrom: disk.r#type() == DiskType::Cd,
                rotational: disk.r#type() == DiskType::Hdd,
                transport: transport(&disk.name).to_string(),
                dev_path: disk.device_name,
                size: disk.size,
                model: disk.model,
                serial: disk.serial,
                modalias: disk.modalias,
                wwid: disk.wwid,
                bus_path: disk.bus_path,
                sub_system: disk.subsystem,
            };
            (disk.name, spec)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sysfs with one virtio disk and one CD-ROM, as a QEMU guest has them.
    fn fake_sysfs(root: &std::path::Path) -> BlockDevices {
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("block/vda/size", "20971520\n");
        write("block/vda/ro", "0\n");
        write("block/vda/queue/rotational", "1\n");
        write("block/vda/queue/logical_block_size", "512\n");
        write("block/vda/queue/minimum_io_size", "4096\n");
        write("block/vda/device/serial", "disk-1\n");
        write("block/sr0/size", "0\n");
        write("block/sr0/ro", "1\n");
        write("block/loop0/size", "8\n");
        BlockDevices {
            sys: root.into(),
            dev: "/dev".into(),
        }
    }

    #[test]
    fn disks_are_read_from_sysfs_with_upstreams_fields() {
        let root = tempfile::tempdir().unwrap();
        let disks = specs(&fake_sysfs(root.path()));
        let names: Vec<&str> = disks.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["sr0", "vda"], "loop devices left out");
        let vda = &disks[1].1;
        assert_eq!(vda.dev_path, "/dev/vda");
        assert_eq!(vda.size, 10 << 30);
        assert_eq!(vda.pretty_size, "11 GB");
        assert_eq!((vda.io_size, vda.sector_size), (4096, 512));
        assert!(vda.rotational && !vda.readonly && !vda.cdrom);
        assert_eq!(vda.transport, "virtio");
        assert!(disks[0].1.cdrom && disks[0].1.readonly);

        let yaml = serde_norway::to_string(vda).unwrap();
        assert!(yaml.contains("dev_path: /dev/vda\n"), "{yaml}");
        assert!(yaml.contains("serial: disk-1\n"), "{yaml}");
        assert!(
            !yaml.contains("model:"),
            "empty fields are left out: {yaml}"
        );
    }

    #[tokio::test]
    async fn a_disk_gone_from_sysfs_goes_from_the_state() {
        let root = tempfile::tempdir().unwrap();
        let devices = fake_sysfs(root.path());
        let state = State::new();
        super::super::host::replace_owned(&state, OWNER, specs(&devices));
        assert_eq!(state.list(&resources::Kind::of::<DiskSpec>()).len(), 2);
        std::fs::remove_dir_all(root.path().join("block/sr0")).unwrap();
        super::super::host::replace_owned(&state, OWNER, specs(&devices));
        let left = state.list(&resources::Kind::of::<DiskSpec>());
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].metadata.id, "vda");
    }
}
