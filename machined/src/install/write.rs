//! Writing the system disk, in the order the module docs give.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bootdisk::grub;
use bootdisk::layout::{self, MIB, SECTOR};
use nix::mount::MsFlags;

use super::Media;
use super::target::{Contents, Target};
use crate::error::MachinedError;
use crate::services::ChildReaper;

const MKE2FS: &str = "/usr/sbin/mke2fs";
const MKFS_XFS: &str = "/usr/sbin/mkfs.xfs";
/// Where the new BOOT and STATE are mounted while they are filled.
const MOUNT_DIR: &str = "/system/install";
/// How long the kernel may take to show the new partitions.
const PARTITIONS_DEADLINE: Duration = Duration::from_secs(10);

/// How long a mount waits for its filesystem's module.
const MODULE_DEADLINE: Duration = Duration::from_secs(120);

/// Everything one install writes.
pub struct System<'a> {
    pub target: &'a Target,
    pub media: &'a Media,
    pub cmdline: &'a str,
    pub config: &'a str,
    pub wipe: bool,
}

impl System<'_> {
    pub fn write(&self) -> Result<(), MachinedError> {
        let path = &self.target.disk;
        let disk = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(MachinedError::io("opening", path))?;
        let table = layout::table(self.target.bytes, uuid::Uuid::new_v4(), |_| {
            uuid::Uuid::new_v4()
        })?;
        if self.wipe && self.target.contents == Contents::Other {
            step("wiping the disk's partition tables and signatures");
            zero(&disk, path, 0, MIB)?;
            zero(&disk, path, self.target.bytes - MIB, MIB)?;
        }
        step("writing the partition table (not bootable yet)");
        write_at(&disk, path, &table.primary(&grub::NOT_BOOTABLE), 0)?;
        write_at(&disk, path, &table.backup(), table.backup_offset())?;
        sync(&disk, path)?;
        crate::os::loopdev::reread_partitions(&disk, path)?;
        self.wait_for_partitions()?;
        // Old filesystems' signatures go, so nothing stale is mounted or kept.
        for partition in layout::PARTITIONS.iter().filter(|p| p.name != "BIOS") {
            let start = layout::start_sector(partition.number) * SECTOR;
            zero(&disk, path, start, MIB)?;
        }
        sync(&disk, path)?;

        step("BOOT: GRUB and slot A");
        let boot = self.target.partition(number("BOOT"));
        run(
            MKE2FS,
            &["-q", "-F", "-t", "ext4", "-L", "BOOT", &text(&boot)],
            &[],
        )?;
        with_mounted(&boot, "ext4", |dir| self.fill_boot(dir))?;

        step("STATE: the machine config");
        let state = self.target.partition(number("STATE"));
        let state_text = text(&state);
        // mkfs.xfs refuses filesystems under 300 MB unless it believes it runs in xfstests.
        run(
            MKFS_XFS,
            &["-q", "-f", "-L", "STATE", &state_text],
            &[
                ("TEST_DIR", "/tmp"),
                ("TEST_DEV", &state_text),
                ("QA_CHECK_FS", "1"),
            ],
        )?;
        with_mounted(&state, "xfs", |dir| {
            atomicfile::write(
                &dir.join("config.yaml"),
                self.config.as_bytes(),
                0o600,
                atomicfile::Overwrite::Allow,
            )?;
            Ok(())
        })?;

        step("GRUB core.img and the EFI system partition, then the boot code: the disk boots");
        let bios = self.media.grub.join("i386-pc");
        let mut core = read(&bios.join("core.img"))?;
        // The image builder patched it already; patching again writes the same bytes.
        grub::patch_core(&mut core)?;
        write_at(&disk, path, &core, grub::core_sector() * SECTOR)?;
        self.write_esp(&disk)?;
        sync(&disk, path)?;
        let boot_code = grub::boot_code(&read(&bios.join("boot.img"))?)?;
        let primary = table.primary(&boot_code);
        write_at(&disk, path, &primary[..SECTOR as usize], 0)?;
        sync(&disk, path)
    }

    /// The EFI system partition: zeroed whole, then the sparse image's runs.
    fn write_esp(&self, disk: &File) -> Result<(), MachinedError> {
        let path = &self.target.disk;
        let partition = layout::partition("EFI")
            .ok_or_else(|| MachinedError::Internal("the layout has no EFI partition".into()))?;
        let start = layout::start_sector(partition.number) * SECTOR;
        let size = partition.size_mib * MIB;
        let encoded = read(&self.media.grub.join("esp.sparse"))?;
        let image = bootdisk::sparse::decode(&encoded, size)?;
        for offset in (0..size).step_by(MIB as usize) {
            zero(disk, path, start + offset, MIB)?;
        }
        for run in &image.runs {
            write_at(disk, path, run.bytes, start + run.offset)?;
        }
        Ok(())
    }

    /// BOOT's files: GRUB's modules (BIOS and UEFI), grub.cfg, grubenv, slot A, an empty
    /// slot B.
    fn fill_boot(&self, dir: &Path) -> Result<(), MachinedError> {
        let slot = dir.join("A");
        for d in [&slot, &dir.join("B")] {
            std::fs::create_dir_all(d).map_err(MachinedError::io("creating", d))?;
        }
        for platform in grub::MODULE_DIRS {
            let from_dir = self.media.grub.join(platform);
            let modules = dir.join("grub").join(platform);
            std::fs::create_dir_all(&modules).map_err(MachinedError::io("creating", &modules))?;
            let listing =
                std::fs::read_dir(&from_dir).map_err(MachinedError::io("listing", &from_dir))?;
            for entry in listing {
                let from = entry
                    .map_err(MachinedError::io("listing", &from_dir))?
                    .path();
                if from.extension().is_some_and(|e| e == "mod" || e == "lst") {
                    let name = from.file_name().unwrap_or_default();
                    copy(&from, &modules.join(name))?;
                }
            }
        }
        let cfg = dir.join("grub/grub.cfg");
        std::fs::write(&cfg, grub::config(self.cmdline))
            .map_err(MachinedError::io("writing", &cfg))?;
        let env = dir.join("grub/grubenv");
        std::fs::write(&env, grub::env_block()).map_err(MachinedError::io("writing", &env))?;
        copy(&self.media.dir.join("vmlinuz"), &slot.join("vmlinuz"))?;
        copy(
            &self.media.dir.join("initramfs.img"),
            &slot.join("initramfs.img"),
        )
    }

    fn wait_for_partitions(&self) -> Result<(), MachinedError> {
        let last = self.target.partition(layout::PARTITIONS.len() as u32);
        let deadline = Instant::now() + PARTITIONS_DEADLINE;
        while !last.exists() {
            if Instant::now() > deadline {
                return Err(MachinedError::FailedPrecondition(format!(
                    "the kernel shows no {} after the new partition table was written",
                    last.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

fn step(what: &str) {
    tracing::info!("install: {what}");
}

fn number(name: &str) -> u32 {
    layout::partition(name).map_or(0, |p| p.number)
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

fn read(path: &Path) -> Result<Vec<u8>, MachinedError> {
    std::fs::read(path).map_err(MachinedError::io("reading", path))
}

fn copy(from: &Path, to: &Path) -> Result<(), MachinedError> {
    std::fs::copy(from, to).map_err(MachinedError::io("writing", to))?;
    Ok(())
}

fn write_at(disk: &File, path: &Path, bytes: &[u8], offset: u64) -> Result<(), MachinedError> {
    disk.write_all_at(bytes, offset)
        .map_err(MachinedError::io("writing", path))
}

fn zero(disk: &File, path: &Path, offset: u64, length: u64) -> Result<(), MachinedError> {
    write_at(disk, path, &vec![0u8; length as usize], offset)
}

fn sync(disk: &File, path: &Path) -> Result<(), MachinedError> {
    disk.sync_all().map_err(MachinedError::io("syncing", path))
}

/// Runs `work` with `device` mounted at [`MOUNT_DIR`]; syncs and unmounts after.
fn with_mounted(
    device: &Path,
    fstype: &str,
    work: impl FnOnce(&Path) -> Result<(), MachinedError>,
) -> Result<(), MachinedError> {
    let target = PathBuf::from(MOUNT_DIR);
    std::fs::create_dir_all(&target).map_err(MachinedError::io("creating", &target))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // ext4 comes with the root filesystem's modules, loaded once the API answers: an install
    // requested early in a boot waits for it.
    let deadline = Instant::now() + MODULE_DEADLINE;
    loop {
        match nix::mount::mount(Some(device), &target, Some(fstype), flags, None::<&str>) {
            Ok(()) => break,
            Err(nix::errno::Errno::ENODEV) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(errno) => return Err(MachinedError::io("mounting", device)(errno.into())),
        }
    }
    let result = work(&target);
    nix::unistd::sync();
    let unmounted = nix::mount::umount(&target)
        .map_err(|errno| MachinedError::io("unmounting", device)(errno.into()));
    result.and(unmounted)
}

/// Runs a program of the root filesystem through machined's reaper; its stderr is in the error.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), MachinedError> {
    let log = std::env::temp_dir().join("install-tool.log");
    let stderr = File::create(&log).map_err(MachinedError::io("creating", &log))?;
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    let (_, exited) = ChildReaper::global()
        .spawn_waitable(&mut command)
        .map_err(MachinedError::io("running", program))?;
    let exit = exited
        .blocking_recv()
        .map_err(|_| MachinedError::Internal(format!("{program}'s exit was not reported")))?;
    let output = std::fs::read(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    if exit.success() {
        return Ok(());
    }
    let mut message = String::from_utf8_lossy(&output).trim().to_string();
    message.truncate(message.floor_char_boundary(2000));
    Err(MachinedError::FailedPrecondition(format!(
        "{program} {}: {exit}: {message}",
        args.join(" ")
    )))
}
