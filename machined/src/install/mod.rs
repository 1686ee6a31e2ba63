//! Installing the node to a disk, from the ISO: a node booted from it ([`Media`]) that is
//! given a config with `machine.install.disk` in maintenance mode writes the system disk
//! (crate `bootdisk`: the layout of reference §7.5, the same as the disk image's, so upgrades
//! and rollbacks work on it), keeps the config on the new STATE, and reboots into it.
//!
//! Order, so that a power cut at any point never leaves a disk that boots a broken system:
//! the partition table goes first with MBR code that is not a boot loader (`int 0x18`: the
//! BIOS passes the disk over and boots the next device, the ISO again); then BOOT (GRUB's
//! files, slot A = the kernel and initramfs the ISO booted), META, STATE with the config,
//! EPHEMERAL's head cleared (the first boot formats it), GRUB's core.img and the EFI system
//! partition (GRUB's EFI image: UEFI firmware boots the disk from then on), each synced;
//! GRUB's BIOS boot code goes into the MBR last.
//!
//! Checks before anything is written ([`target`]): the disk exists and is a whole disk, it
//! is large enough, nothing on it is mounted, and it is blank or already a talos-rs disk
//! unless `machine.install.wipe` is set (then its partition table and the heads of the old
//! partitions are cleared first). A node that booted from its disk never installs (no
//! [`Media`]); nor does dev mode.
//!
//! The disk is `machine.install.disk`, or the first disk `machine.install.diskSelector`
//! matches, or the first disk an `UnattendedInstallConfig`'s CEL selector is true for
//! ([`select`]).
//!
//! Limits: the wipe is a fast one (tables and filesystem signatures), not every byte.

mod select;
mod target;
mod write;

use std::path::{Path, PathBuf};

use machineconfig::Config;
use machineconfig::documents::{Document, UnattendedInstallConfig};
use proto::storage::Disk;

use crate::error::MachinedError;
pub use target::Target;

/// GRUB's files in the root filesystem: both platforms' modules, boot.img and the system
/// disk's core.img in `i386-pc/`, the EFI system partition in `esp.sparse`.
pub const GRUB_ASSETS: &str = "/usr/lib/grub";

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

/// What `machine.install` or an `UnattendedInstallConfig` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub disk: PathBuf,
    pub wipe: bool,
    pub extra_kernel_args: Vec<String>,
    /// Reboot into the installed system once written (else it boots at the next reboot, and
    /// the node goes on from memory with its config).
    pub reboot: bool,
}

impl Plan {
    /// The install `config` asks for; `None` without `machine.install.disk` or `diskSelector`.
    /// A selector is matched against `disks()`, the machine's disks.
    pub fn from_config(
        config: &Config,
        disks: impl FnOnce() -> Vec<Disk>,
    ) -> Result<Option<Plan>, MachinedError> {
        if let Some(unattended) = config.documents.iter().find_map(|d| match d {
            Document::UnattendedInstall(unattended) => Some(unattended),
            _ => None,
        }) {
            return Self::unattended(unattended, disks).map(Some);
        }
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
            reboot: true,
        }))
    }

    /// An `UnattendedInstallConfig`'s install: the disk its CEL selector picks, wiped unless
    /// `wipe: false`; a reboot when `reboot` says so or, unset, when it names an installer
    /// image, as upstream. The installer image itself is not run: a talos-rs node installs
    /// the system it booted.
    fn unattended(
        unattended: &UnattendedInstallConfig,
        disks: impl FnOnce() -> Vec<Disk>,
    ) -> Result<Plan, MachinedError> {
        let provisioning = unattended.provisioning.as_ref();
        let expression = provisioning
            .and_then(|p| p.disk_selector.as_ref()?.expression.as_deref())
            .ok_or_else(|| {
                MachinedError::InvalidArgument(
                    "UnattendedInstallConfig.provisioning.diskSelector.match: a disk selector \
                     is required"
                        .into(),
                )
            })?;
        let image = unattended
            .installer
            .as_ref()
            .and_then(|i| i.image.as_deref());
        Ok(Plan {
            disk: PathBuf::from(select::select_by_expression(expression, &disks())?),
            wipe: provisioning.and_then(|p| p.wipe).unwrap_or(true),
            extra_kernel_args: Vec::new(),
            reboot: unattended
                .reboot
                .unwrap_or_else(|| image.is_some_and(|image| !image.is_empty())),
        })
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
    fn an_unattended_install_document_selects_by_cel_and_wipes_by_default() {
        let disks = || {
            let vda = Disk {
                device_name: "/dev/vda".into(),
                name: "vda".into(),
                size: 8 << 30,
                ..Disk::default()
            };
            vec![vda]
        };
        let unattended = |body: &str| {
            Config::from_yaml(&format!(
                "version: v1alpha1\nmachine:\n  type: worker\n---\n\
                 apiVersion: v1alpha1\nkind: UnattendedInstallConfig\n{body}"
            ))
            .unwrap()
        };
        let selector = "provisioning:\n  diskSelector:\n    match: disk.transport == 'virtio' && disk.size >= 4u * GiB\n";
        let plan = Plan::from_config(&unattended(selector), disks)
            .unwrap()
            .unwrap();
        assert_eq!(plan.disk, PathBuf::from("/dev/vda"));
        assert!(plan.wipe && !plan.reboot, "{plan:?}");
        let plan = Plan::from_config(
            &unattended(&format!(
                "installer:\n  image: ghcr.io/x/installer:v1\n{selector}"
            )),
            disks,
        )
        .unwrap()
        .unwrap();
        assert!(plan.reboot, "an installer image means a reboot");
        let plan = Plan::from_config(
            &unattended(
                "reboot: true\nprovisioning:\n  wipe: false\n  diskSelector:\n    match: 'true'\n",
            ),
            disks,
        )
        .unwrap()
        .unwrap();
        assert!(!plan.wipe && plan.reboot, "{plan:?}");
        let error = Plan::from_config(
            &unattended("provisioning:\n  diskSelector:\n    match: disk.size > 100u * GB\n"),
            disks,
        )
        .unwrap_err();
        assert!(error.to_string().contains("matches no disk"), "{error}");
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
