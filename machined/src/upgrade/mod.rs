//! Upgrades and rollbacks on the system disk: two boot slots (`A/`, `B/` on BOOT, each a kernel
//! and an initramfs), chosen by GRUB from its environment block ([`grubenv`]), with
//! bookkeeping in [`meta`].
//!
//! An upgrade writes the imported installer ([`images`]) into the slot that did not boot,
//! records the booted slot as the fallback (META `Upgrade`) and sets GRUB's one-shot
//! `next_entry`; GRUB clears it before booting the new slot. If that trial boot reaches a
//! running node whose services are all healthy within [`TRIAL_TIMEOUT`], machined commits it
//! (`saved_entry`); if it does not (kernel panic: `panic=10` reboots; a fatal boot error:
//! machined reboots; unhealthy: machined reboots after the timeout), the next boot is the
//! fallback slot again, which notices the pending upgrade and records why it failed (META
//! `UpgradeStatus`, shown by `talosctl get metakeys`). A rollback is a trial boot of the other
//! slot's existing system. The active slot is never written, so a power cut at any point
//! leaves a bootable disk.

pub mod grubenv;
pub mod images;
pub mod meta;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::mount::{MsFlags, mount, umount};

use crate::error::MachinedError;
use crate::machine::{Lifecycle, Machine};
use grubenv::GrubEnv;
use meta::{Meta, keys};

/// How long a trial boot has to reach a running, healthy node.
pub const TRIAL_TIMEOUT: Duration = Duration::from_secs(300);
/// How many half-second waits for the ext4 module a BOOT mount makes.
const EXT4_WAIT_ATTEMPTS: u32 = 240;
/// Where BOOT is mounted while it is written.
const BOOT_MOUNT: &str = "/system/boot";

/// A boot slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn label(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }

    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    fn parse(label: &str) -> Option<Slot> {
        match label {
            "A" => Some(Slot::A),
            "B" => Some(Slot::B),
            _ => None,
        }
    }

    /// The slot GRUB booted, from the `BOOT_IMAGE=/A/vmlinuz` it puts on the command line.
    pub fn from_boot_image(boot_image: &str) -> Option<Slot> {
        let dir = boot_image.trim_start_matches('/').split('/').next()?;
        Slot::parse(dir)
    }
}

/// The system disk's partitions and the slot that booted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemDisk {
    pub boot: PathBuf,
    pub meta: PathBuf,
    pub booted: Slot,
}

/// One writer of BOOT and META at a time.
static DISK_LOCK: Mutex<()> = Mutex::new(());

fn lock_disk() -> std::sync::MutexGuard<'static, ()> {
    DISK_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a boot finds in META about an upgrade or rollback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trial {
    /// Nothing pending.
    None,
    /// This boot is the trial of a new slot: commit it once healthy.
    Running { fallback: Slot },
    /// The trial failed: the fallback booted again (the reason is recorded).
    Failed { failed: Slot },
}

impl SystemDisk {
    pub fn new(boot: PathBuf, meta: PathBuf, booted: Slot) -> Self {
        SystemDisk { boot, meta, booted }
    }

    /// Writes `kernel` and `initramfs` into the slot that did not boot and makes GRUB try it
    /// once at the next boot; records the fallback. Returns the slot written. Blocking.
    pub fn install(
        &self,
        kernel: &Path,
        initramfs: &Path,
        release: &str,
    ) -> Result<Slot, MachinedError> {
        let _guard = lock_disk();
        // Before writing: the other slot is the fallback of a running trial.
        refuse_during_trial(&Meta::read(&self.meta)?)?;
        let target = self.booted.other();
        self.with_boot(|boot| {
            let dir = boot.join(target.label());
            std::fs::create_dir_all(&dir).map_err(MachinedError::io("creating", &dir))?;
            copy_durably(kernel, &dir.join("vmlinuz"))?;
            copy_durably(initramfs, &dir.join("initramfs.img"))?;
            Ok(())
        })?;
        self.schedule_trial(
            target,
            &format!("upgrading to {release} in slot {}", target.label()),
        )?;
        Ok(target)
    }

    /// Makes GRUB try the other slot's existing system once at the next boot. Blocking.
    pub fn rollback(&self) -> Result<Slot, MachinedError> {
        let _guard = lock_disk();
        let target = self.booted.other();
        let filled =
            self.with_boot(|boot| Ok(boot.join(target.label()).join("vmlinuz").exists()))?;
        if !filled {
            return Err(MachinedError::FailedPrecondition(format!(
                "slot {} holds no system: there is nothing to roll back to",
                target.label()
            )));
        }
        self.schedule_trial(target, &format!("rolling back to slot {}", target.label()))?;
        Ok(target)
    }

    fn schedule_trial(&self, target: Slot, status: &str) -> Result<(), MachinedError> {
        let mut meta = Meta::read(&self.meta)?;
        refuse_during_trial(&meta)?;
        meta.values
            .insert(keys::UPGRADE, self.booted.label().as_bytes().to_vec());
        meta.values
            .insert(keys::UPGRADE_STATUS, status.as_bytes().to_vec());
        meta.write(&self.meta)?;
        self.with_boot(|boot| {
            update_grub_env(boot, |env| {
                if env.get("saved_entry").is_none() {
                    env.set("saved_entry", self.booted.label());
                }
                env.set("next_entry", target.label());
            })
        })
    }

    /// What this boot is, upgrade-wise; records a failed trial. Blocking.
    pub fn trial(&self) -> Result<Trial, MachinedError> {
        let _guard = lock_disk();
        let mut meta = Meta::read(&self.meta)?;
        let Some(fallback) = meta
            .get_text(keys::UPGRADE)
            .as_deref()
            .and_then(Slot::parse)
        else {
            return Ok(Trial::None);
        };
        if fallback != self.booted {
            return Ok(Trial::Running { fallback });
        }
        let failed = self.booted.other();
        let before = meta.get_text(keys::UPGRADE_STATUS).unwrap_or_default();
        let status = format!(
            "failed: {before}: slot {} did not come up healthy; slot {} booted again",
            failed.label(),
            self.booted.label()
        );
        meta.values.remove(&keys::UPGRADE);
        meta.values
            .insert(keys::UPGRADE_STATUS, status.into_bytes());
        meta.write(&self.meta)?;
        Ok(Trial::Failed { failed })
    }

    /// Commits the running trial: GRUB boots this slot from now on. Blocking.
    pub fn commit(&self, release: &str) -> Result<(), MachinedError> {
        let _guard = lock_disk();
        self.with_boot(|boot| {
            update_grub_env(boot, |env| env.set("saved_entry", self.booted.label()))
        })?;
        let mut meta = Meta::read(&self.meta)?;
        meta.values.remove(&keys::UPGRADE);
        meta.values.insert(
            keys::UPGRADE_STATUS,
            format!("done: {release} runs from slot {}", self.booted.label()).into_bytes(),
        );
        meta.write(&self.meta)
    }

    /// Records that the trial did not become healthy in time (the caller reboots).
    pub fn abandon(&self, reason: &str) -> Result<(), MachinedError> {
        let _guard = lock_disk();
        let mut meta = Meta::read(&self.meta)?;
        let before = meta.get_text(keys::UPGRADE_STATUS).unwrap_or_default();
        meta.values.insert(
            keys::UPGRADE_STATUS,
            format!("{before}: {reason}; rebooting into the previous slot").into_bytes(),
        );
        meta.write(&self.meta)
    }

    /// Runs `read` on the booted slot's folder of BOOT (`A/` or `B/`), mounted read-only,
    /// under the disk lock.
    pub fn read_booted_slot<T>(
        &self,
        read: impl FnOnce(&Path) -> Result<T, MachinedError>,
    ) -> Result<T, MachinedError> {
        let _guard = lock_disk();
        self.with_boot_mounted(MsFlags::MS_RDONLY, |boot| {
            read(&boot.join(self.booted.label()))
        })
    }

    /// Stages the running slot's kernel and initramfs for a kexec reboot with `cmdline` (this
    /// boot's), when GRUB would boot that slot next: no trial (`next_entry`) pending and
    /// `saved_entry` (A when unset) naming it. Returns whether it staged them. Blocking.
    pub fn stage_kexec(&self, cmdline: &str) -> Result<bool, MachinedError> {
        let _guard = lock_disk();
        self.with_boot_mounted(MsFlags::MS_RDONLY, |boot| {
            let env_path = boot.join("grub/grubenv");
            let block =
                std::fs::read(&env_path).map_err(MachinedError::io("reading", &env_path))?;
            let env = GrubEnv::parse(&block)?;
            let next = env
                .get("next_entry")
                .filter(|entry| !entry.is_empty())
                .is_some();
            let saved = env
                .get("saved_entry")
                .and_then(Slot::parse)
                .unwrap_or(Slot::A);
            if next || saved != self.booted {
                return Ok(false);
            }
            let slot = boot.join(self.booted.label());
            let open = |name: &str| {
                let path = slot.join(name);
                std::fs::File::open(&path).map_err(MachinedError::io("opening", &path))
            };
            let (kernel, initramfs) = (open("vmlinuz")?, open("initramfs.img")?);
            crate::os::kexec::load(&kernel, &initramfs, cmdline)
                .map_err(MachinedError::io("staging by kexec_file_load", &slot))?;
            Ok(true)
        })
    }

    /// Runs `work` with BOOT mounted read-write at [`BOOT_MOUNT`].
    fn with_boot<T>(
        &self,
        work: impl FnOnce(&Path) -> Result<T, MachinedError>,
    ) -> Result<T, MachinedError> {
        self.with_boot_mounted(MsFlags::empty(), work)
    }

    /// Runs `work` with BOOT mounted at [`BOOT_MOUNT`] with `extra` mount flags.
    fn with_boot_mounted<T>(
        &self,
        extra: MsFlags,
        work: impl FnOnce(&Path) -> Result<T, MachinedError>,
    ) -> Result<T, MachinedError> {
        let target = Path::new(BOOT_MOUNT);
        std::fs::create_dir_all(target).map_err(MachinedError::io("creating", target))?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | extra;
        // ext4 comes with the root filesystem's modules, loaded once the API answers: a
        // commit early in a boot waits for it.
        let mut attempts = 0;
        loop {
            match mount(Some(&self.boot), target, Some("ext4"), flags, None::<&str>) {
                Ok(()) => break,
                Err(nix::errno::Errno::ENODEV) if attempts < EXT4_WAIT_ATTEMPTS => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(errno) => {
                    return Err(MachinedError::io("mounting BOOT at", target)(
                        std::io::Error::from(errno),
                    ));
                }
            }
        }
        let result = work(target);
        nix::unistd::sync();
        if let Err(errno) = umount(target) {
            tracing::warn!("unmounting {}: {errno}", target.display());
        }
        result
    }
}

/// At boot: publishes META, records a failed trial, and commits a running trial once the node
/// is healthy (or reboots into the fallback after [`TRIAL_TIMEOUT`]).
pub async fn watch_trial(machine: Arc<Machine>) {
    let Some(disk) = machine.system_disk.clone() else {
        return;
    };
    let blocking_disk = Arc::clone(&disk);
    let trial = match tokio::task::spawn_blocking(move || blocking_disk.trial()).await {
        Ok(Ok(trial)) => trial,
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot read the upgrade state from META");
            return;
        }
        Err(_) => return,
    };
    publish_meta(&machine, &disk).await;
    match trial {
        Trial::None => {}
        Trial::Failed { failed } => tracing::error!(
            "the trial boot of slot {} failed: slot {} runs again (META UpgradeStatus says why)",
            failed.label(),
            disk.booted.label()
        ),
        Trial::Running { fallback } => {
            tracing::info!(
                "trial boot of slot {}: committed once healthy, else slot {} boots again",
                disk.booted.label(),
                fallback.label()
            );
            let healthy = tokio::time::timeout(TRIAL_TIMEOUT, wait_healthy(&machine))
                .await
                .is_ok();
            let release = machine.release.clone();
            let blocking_disk = Arc::clone(&disk);
            let outcome = tokio::task::spawn_blocking(move || {
                if healthy {
                    blocking_disk.commit(&release)
                } else {
                    blocking_disk.abandon(&format!(
                        "slot {} was not healthy {} s after boot",
                        blocking_disk.booted.label(),
                        TRIAL_TIMEOUT.as_secs()
                    ))
                }
            })
            .await;
            publish_meta(&machine, &disk).await;
            match outcome {
                Ok(Ok(())) if healthy => tracing::info!(
                    "upgrade committed: slot {} boots from now on",
                    disk.booted.label()
                ),
                Ok(Ok(())) => {
                    if let Err(error) = machine
                        .lifecycle
                        .try_send((Lifecycle::Reboot, String::new()))
                    {
                        tracing::error!(%error, "cannot reboot out of a failed trial");
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "cannot record the trial's outcome"),
                Err(error) => tracing::error!(%error, "cannot record the trial's outcome"),
            }
        }
    }
}

/// Returns once every service (but the kubelet, which cannot run here) runs and is healthy.
async fn wait_healthy(machine: &Machine) {
    loop {
        if let Ok(services) = machine.services.list().await {
            let healthy = !services.is_empty()
                && services.iter().filter(|s| s.id != "kubelet").all(|s| {
                    s.state == "Running" && s.health.as_ref().is_none_or(|h| h.unknown || h.healthy)
                });
            if healthy && !machine.in_maintenance() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn publish_meta(machine: &Machine, disk: &Arc<SystemDisk>) {
    let device = disk.meta.clone();
    if let Ok(Ok(meta)) = tokio::task::spawn_blocking(move || Meta::read(&device)).await {
        crate::controllers::publish_meta_keys(&machine.resources, &meta);
    }
}

/// A trial that has not been committed yet keeps its fallback slot: nothing may overwrite it
/// or schedule another trial meanwhile.
fn refuse_during_trial(meta: &Meta) -> Result<(), MachinedError> {
    match meta.get_text(keys::UPGRADE) {
        Some(fallback) => Err(MachinedError::FailedPrecondition(format!(
            "an upgrade is still on trial (slot {fallback} is its fallback): wait until it is \
             committed, or reboot to fall back"
        ))),
        None => Ok(()),
    }
}

/// Copies `from` to `to` through a temporary file, synced, then renamed.
fn copy_durably(from: &Path, to: &Path) -> Result<(), MachinedError> {
    let temporary = to.with_extension("new");
    std::fs::copy(from, &temporary).map_err(MachinedError::io("writing", &temporary))?;
    std::fs::File::open(&temporary)
        .and_then(|f| f.sync_all())
        .map_err(MachinedError::io("syncing", &temporary))?;
    std::fs::rename(&temporary, to).map_err(MachinedError::io("renaming", to))
}

/// Rewrites GRUB's environment block in place (its blocks stay where GRUB finds them).
fn update_grub_env(boot: &Path, change: impl FnOnce(&mut GrubEnv)) -> Result<(), MachinedError> {
    use std::os::unix::fs::FileExt;
    let path = boot.join("grub/grubenv");
    let block = std::fs::read(&path).map_err(MachinedError::io("reading", &path))?;
    let mut env = GrubEnv::parse(&block)?;
    change(&mut env);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(MachinedError::io("opening", &path))?;
    file.write_all_at(&env.to_block()?, 0)
        .and_then(|()| file.sync_all())
        .map_err(MachinedError::io("writing", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_booted_slot_comes_from_grubs_boot_image() {
        assert_eq!(Slot::from_boot_image("/A/vmlinuz"), Some(Slot::A));
        assert_eq!(Slot::from_boot_image("/B/vmlinuz"), Some(Slot::B));
        assert_eq!(Slot::from_boot_image("/boot/vmlinuz"), None);
        assert_eq!(Slot::A.other(), Slot::B);
    }

    #[test]
    fn nothing_overwrites_the_fallback_of_a_running_trial() {
        let mut meta = Meta::default();
        assert!(refuse_during_trial(&meta).is_ok());
        meta.values.insert(keys::UPGRADE, b"A".to_vec());
        let error = refuse_during_trial(&meta).unwrap_err().to_string();
        assert!(error.contains("slot A is its fallback"), "{error}");
    }
}
