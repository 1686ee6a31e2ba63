//! `talosctl wipe disk <device>...`: wipes disks or partitions through
//! `storage.StorageService/BlockDeviceWipe`, with upstream's flags. Upstream's `wipe lv|vg|pv|md`
//! remove LVM and RAID objects, which talos-rs nodes do not manage: not offered.

use clap::{Args, Subcommand, ValueEnum};
use proto::storage::block_device_wipe_descriptor::Method;
use proto::storage::storage_service_client::StorageServiceClient;
use proto::storage::{BlockDeviceWipeDescriptor, BlockDeviceWipeRequest};

use crate::cli::{GlobalArgs, InsecureArgs};
use crate::connection::{Session, block_on};
use crate::failures::Failures;

#[derive(Debug, Subcommand)]
pub enum WipeCommand {
    /// Wipe a block device (disks or partitions) which is not used as a volume
    Disk(WipeDiskArgs),
}

#[derive(Debug, Args)]
pub struct WipeDiskArgs {
    /// The devices to wipe (e.g. sdb, /dev/nvme0n1p2)
    #[arg(required = true)]
    pub devices: Vec<String>,
    /// Wipe method to use
    #[arg(long, value_enum, ignore_case = true, default_value = "FAST")]
    pub method: WipeMethod,
    /// Skip the volume check (wipe even the system disk or a mounted device)
    #[arg(long)]
    pub skip_volume_check: bool,
    /// Drop the partition after the wipe (if applicable)
    #[arg(long)]
    pub drop_partition: bool,
    /// Skip the secondary disk check (e.g. underlying disk for RAID or LVM)
    #[arg(long)]
    pub skip_secondary_check: bool,
    #[command(flatten)]
    pub access: InsecureArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "lower")]
pub enum WipeMethod {
    /// Zero the first and last MiB (tables and signatures)
    #[value(name = "FAST")]
    Fast,
    /// Zero the whole device
    #[value(name = "ZEROES")]
    Zeroes,
}

pub fn run(command: WipeCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let WipeCommand::Disk(args) = command;
    let request = request(&args);
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        let mut failures = Failures::default();
        for target in session.targets() {
            let mut storage = StorageServiceClient::new(target.channel());
            let reply = storage
                .block_device_wipe(target.request(request.clone())?)
                .await;
            target.unary(reply.map(|r| r.into_inner().messages), &mut failures);
        }
        failures.finish()
    })
}

fn request(args: &WipeDiskArgs) -> BlockDeviceWipeRequest {
    let method = match args.method {
        WipeMethod::Fast => Method::Fast,
        WipeMethod::Zeroes => Method::Zeroes,
    };
    BlockDeviceWipeRequest {
        devices: args
            .devices
            .iter()
            .map(|device| BlockDeviceWipeDescriptor {
                device: device.clone(),
                method: method.into(),
                skip_volume_check: args.skip_volume_check,
                drop_partition: args.drop_partition,
                skip_secondary_check: args.skip_secondary_check,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        wipe: WipeCommand,
    }

    #[test]
    fn every_device_gets_the_method_and_flags() {
        let Cli {
            wipe: WipeCommand::Disk(args),
        } = Cli::parse_from([
            "wipe",
            "disk",
            "sdb",
            "/dev/sdc1",
            "--method",
            "zeroes",
            "--skip-volume-check",
        ]);
        let request = request(&args);
        assert_eq!(request.devices.len(), 2);
        assert_eq!(request.devices[1].device, "/dev/sdc1");
        assert!(
            request
                .devices
                .iter()
                .all(|d| d.method() == Method::Zeroes && d.skip_volume_check)
        );
        let Cli {
            wipe: WipeCommand::Disk(args),
        } = Cli::parse_from(["wipe", "disk", "sdb"]);
        assert_eq!(request_method(&args), Method::Fast);
        assert!(Cli::try_parse_from(["wipe", "disk"]).is_err());
    }

    fn request_method(args: &WipeDiskArgs) -> Method {
        request(args).devices[0].method()
    }
}
