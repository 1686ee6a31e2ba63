//! Installing the node to a disk, from the ISO: a node booted from it ([`Media`]) that is
//! given a config with `machine.install.disk` in maintenance mode writes the system disk
//! (crate `bootdisk`: the layout of reference §7.5, the same as the disk image's, so upgrades
//! and rollbacks work on it), keeps the config on the new STATE, and reboots into it.
//!
//! Order, so that a power cut at any point never leaves a disk that boots a broken system:
//! the partition table goes first with MBR code that is not a boot loader (`int 0x18`: the
//! BIOS passes the disk over and boots the next device, the ISO again); then BOOT (GRUB's
//! files, slot A = the kernel and initramfs the ISO booted), META, STATE with the config,
//! EPHEMERAL's head cleared (the first boot formats it), GRUB's core.img, each synced; GRUB's
//! boot code goes into the MBR last.
//!
//! Checks before anything is written ([`target`]): the disk exists and is a whole disk, it
//! is large enough, nothing on it is mounted, and it is blank or already a talos-rs disk
//! unless `machine.install.wipe` is set (then its partition table and the heads of the old
//! partitions are cleared first). A node that booted from its disk never installs (no
//! [`Media`]); nor does dev mode.
//!
//! The disk is `machine.install.disk`, or the first disk `machine.install.diskSelector`
//! matches ([`select`]).
//!
//! Limits: BIOS boot only (EFI stays blank); the wipe is a fast one (tables and filesystem
//! signatures), not every byte.

mod select;
mod target;
mod write;

use std::path::{Path, PathBuf};

use machineconfig::Config;
use proto::storage::Disk;

use crate::error::MachinedError;
pub use target::Target;

/// GRUB's boot.img, modules and the system disk's core.img in the root filesystem.
pub const GRUB_ASSETS: &str = "/usr/lib/grub/i386-pc";

/// What the ISO handed over: `vmlinuz`, `initramfs.img` and `cmdline` in one folder.
#[derive(Clone, Debug)]
pub struct Media {
    pub dir: PathBuf,
    pub grub: PathBuf,
}

impl Media {
    pub fn new(dir: &Path) -> Self {
        Media {
            dir: dir.to_path_buf(),
            grub: PathBuf::from(GRUB_ASSETS),
        }
    }

    /// The installed kernel command line: the ISO's, then `extra`.
    fn cmdline(&self, extra: &[String]) -> Result<String, MachinedError> {
        let path = self.dir.join("cmdline");
        let base = std::fs::read_to_string(&path).map_err(MachinedError::io("reading", &path))?;
        let mut words: Vec<&str> = base.split_whitespace().collect();
        words.extend(extra.iter().map(String::as_str));
        Ok(words.join(" "))
    }
}

/// What `machine.install` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub disk: PathBuf,
    pub wipe: bool,
    pub extra_kernel_args: Vec<String>,
}

impl Plan {
    /// The install `config` asks for; `None` without `machine.install.disk` or `diskSelector`.
    /// A selector is matched against `disks()`, the machine's disks.
    pub fn from_config(
        config: &Config,
        disks: impl FnOnce() -> Vec<Disk>,
    ) -> Result<Option<Plan>, MachinedError> {
        let Some(install) = config
            .v1alpha1
            .as_ref()
            .and_then(|v| v.machine.as_ref()?.install.as_ref())
        else {
            return Ok(None);
        };
        let disk = match (&install.disk, &install.disk_selector) {
            (Some(disk), _) if !disk.is_empty() => disk.clone(),
            (_, Some(selector)) => select::select(selector, &disks())?,
            _ => return Ok(None),
        };
        for arg in &install.extra_kernel_args {
            if arg.is_empty() || arg.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(MachinedError::InvalidArgument(format!(
                    "machine.install.extraKernelArgs: {arg:?} is not one kernel argument"
                )));
            }
        }
        Ok(Some(Plan {
            disk: PathBuf::from(disk),
            wipe: install.wipe,
            extra_kernel_args: install.extra_kernel_args.clone(),
        }))
    }
}

/// Checks `plan` against the disks of this machine and installs; blocking. `config_text` is
/// kept on the new STATE.
pub fn install(plan: &Plan, media: &Media, config_text: &str) -> Result<(), MachinedError> {
    let target = Target::check(
        plan,
        Path::new("/sys/class/block"),
        Path::new("/proc/mounts"),
    )?;
    let cmdline = media.cmdline(&plan.extra_kernel_args)?;
    tracing::info!(
        disk = %plan.disk.display(),
        bytes = target.bytes,
        wipe = plan.wipe,
        "installing talos-rs"
    );
    write::System {
        target: &target,
        media,
        cmdline: &cmdline,
        config: config_text,
        wipe: plan.wipe,
    }
    .write()?;
    tracing::info!(disk = %plan.disk.display(), "install done: the disk boots talos-rs");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(install: &str) -> Config {
        Config::from_yaml(&format!(
            "version: v1alpha1\nmachine:\n  type: worker\n  install:\n{install}"
        ))
        .unwrap()
    }

    #[test]
    fn the_plan_comes_from_machine_install() {
        let plan = Plan::from_config(
            &config("    disk: /dev/vda\n    wipe: true\n    extraKernelArgs: [talos.test=1]\n"),
            Vec::new,
        )
        .unwrap()
        .unwrap();
        assert_eq!(plan.disk, PathBuf::from("/dev/vda"));
        assert!(plan.wipe);
        assert_eq!(plan.extra_kernel_args, ["talos.test=1"]);
        assert_eq!(
            Plan::from_config(&config("    wipe: true\n"), Vec::new).unwrap(),
            None
        );
        let error = Plan::from_config(
            &config("    disk: /dev/vda\n    extraKernelArgs: [\"a b\"]\n"),
            Vec::new,
        )
        .unwrap_err();
        assert!(error.to_string().contains("\"a b\""), "{error}");
    }

    #[test]
    fn a_disk_selector_chooses_among_the_machines_disks() {
        let disks = || {
            let mut small = Disk {
                device_name: "/dev/vda".into(),
                name: "vda".into(),
                size: 2 << 30,
                ..Disk::default()
            };
            small.set_type(proto::storage::disk::DiskType::Hdd);
            let mut large = small.clone();
            large.device_name = "/dev/vdb".into();
            large.name = "vdb".into();
            large.size = 20 << 30;
            vec![small, large]
        };
        let plan = Plan::from_config(&config("    diskSelector:\n      size: '>= 10GB'\n"), disks)
            .unwrap()
            .unwrap();
        assert_eq!(plan.disk, PathBuf::from("/dev/vdb"));
        // The disk named wins over a selector, and no disk is looked at.
        let plan = Plan::from_config(
            &config("    disk: /dev/vda\n    diskSelector:\n      size: '>= 10GB'\n"),
            || unreachable!("the disks are not read"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(plan.disk, PathBuf::from("/dev/vda"));
        let error =
            Plan::from_config(&config("    diskSelector:\n      type: nvme\n"), disks).unwrap_err();
        assert!(error.to_string().contains("matches no disk"), "{error}");
    }
}
