//! The bootable disk image (`disk.raw`, `disk.qcow2`): GPT with the partitions of reference
//! §7.5 and GRUB for both BIOS and UEFI firmware, written without loop devices or mounts.
//!
//! | # | name | type | size | content |
//! |---|---|---|---|---|
//! | 1 | EFI | EFI System | 100 MiB | vfat: GRUB's `EFI/BOOT/BOOTX64.EFI` ([`esp_img`]) |
//! | 2 | BIOS | BIOS boot, legacy-bootable | 1 MiB | GRUB core.img |
//! | 3 | BOOT | Linux data | 1000 MiB | ext4: `grub/` (grub.cfg, both platforms' modules), slot `A/` (vmlinuz, initramfs.img), slot `B/` (empty until an upgrade) |
//! | 4 | META | Linux data | 1 MiB | zeroes |
//! | 5 | STATE | Linux data | 100 MiB | blank: machined formats it (xfs) on first boot |
//! | 6 | EPHEMERAL | Linux data | rest | blank: machined formats it (xfs) on first boot |
//!
//! The layout, the GPT and GRUB's patches come from crate `bootdisk`, which a node installing
//! itself from the ISO uses too. BOOT is ext4 rather than
//! upstream's xfs: `mke2fs -d` fills it from a folder and GRUB 2.06 reads it without surprises.
//! All GUIDs, UUIDs, serials and times are fixed, so the image is reproducible.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use bootdisk::grub;
use bootdisk::layout::{self, MIB, SECTOR};

use super::run;

const DISK_SIZE: u64 = 4096 * MIB;
/// Debian's GRUB files, by platform (`grub-pc-bin`, `grub-efi-amd64-bin`).
pub const GRUB_LIB: &str = "/usr/lib/grub";
pub const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";
/// FAT cannot hold times before 1980: the EFI partition's files carry its first second.
const FAT_EPOCH: u64 = 315_532_800;
/// Every GUID and UUID of the image: fixed, so that the bytes are.
const DISK_GUID: u128 = 0x5a1f0c2e_0000_4000_8000_000000000000;
const BOOT_UUID: &str = "5a1f0c2e-0000-4000-8000-000000000003";

/// The inputs of the disk image.
#[derive(Debug)]
pub struct DiskInputs<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    pub cmdline: &'a str,
    /// GRUB's core.img for the BIOS partition, already patched ([`core_img`]).
    pub core_img: &'a Path,
    /// The EFI system partition ([`esp_img`]).
    pub esp_img: &'a Path,
    /// A scratch folder (emptied first).
    pub work: &'a Path,
}

/// Builds `raw` and converts it to `qcow2`.
pub fn build(inputs: &DiskInputs, raw: &Path, qcow2: &Path) -> anyhow::Result<()> {
    if inputs.work.exists() {
        std::fs::remove_dir_all(inputs.work)?;
    }
    std::fs::create_dir_all(inputs.work)?;
    let _ = std::fs::remove_file(raw);
    let disk = File::create(raw)?;
    disk.set_len(DISK_SIZE)?;
    let table = layout::table(DISK_SIZE, uuid_of(DISK_GUID), |n| {
        uuid_of(DISK_GUID + 0x100 + u128::from(n))
    })?;
    let boot_img = std::fs::read(Path::new(GRUB_DIR).join("boot.img"))?;
    disk.write_all_at(&table.primary(&grub::boot_code(&boot_img)?), 0)?;
    disk.write_all_at(&table.backup(), table.backup_offset())?;
    disk.write_all_at(
        &std::fs::read(inputs.core_img)?,
        grub::core_sector() * SECTOR,
    )?;
    drop(disk);

    copy_sparse(inputs.esp_img, raw, start_of("EFI") * SECTOR)?;

    let boot_dir = inputs.work.join("boot");
    stage_boot(inputs, &boot_dir)?;
    let boot = inputs.work.join("boot.img");
    run(Command::new("mke2fs")
        .args([
            "-q", "-F", "-t", "ext4", "-L", "BOOT", "-U", BOOT_UUID, "-N", "1024",
        ])
        .args([
            "-E",
            &format!("hash_seed={BOOT_UUID},root_owner=0:0,lazy_itable_init=1"),
        ])
        .arg("-d")
        .arg(&boot_dir)
        .arg(&boot)
        .arg("1000M")
        .env("E2FSPROGS_FAKE_TIME", "1")
        .stdout(std::process::Stdio::null()))?;
    // mke2fs -d copies each file's atime and ctime, which no one can set: zero them.
    let mut commands = String::new();
    for path in tree(&boot_dir, Path::new("/"))? {
        for field in ["atime", "ctime", "mtime", "crtime"] {
            commands.push_str(&format!("sif \"{}\" {field} 0\n", path.display()));
        }
    }
    let command_file = inputs.work.join("debugfs.cmds");
    std::fs::write(&command_file, commands)?;
    run(Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&command_file)
        .arg(&boot)
        .env("E2FSPROGS_FAKE_TIME", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null()))?;
    copy_sparse(&boot, raw, start_of("BOOT") * SECTOR)?;

    let _ = std::fs::remove_file(qcow2);
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(raw)
        .arg(qcow2))?;
    Ok(())
}

fn uuid_of(value: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(value)
}

fn start_of(name: &str) -> u64 {
    layout::partition(name).map_or(0, |p| layout::start_sector(p.number))
}

/// GRUB's core.img for the system disk, its block list patched for the BIOS partition
/// (as grub-bios-setup would); the node's installer writes the same bytes.
pub fn core_img(out: &Path) -> anyhow::Result<()> {
    run(Command::new("grub-mkimage")
        .args(["-O", "i386-pc", "-p", grub::PREFIX, "-o"])
        .arg(out)
        .args(grub::CORE_MODULES))?;
    let mut core = std::fs::read(out)?;
    grub::patch_core(&mut core)?;
    std::fs::write(out, core)?;
    Ok(())
}

/// The EFI system partition (100 MiB, FAT32) with GRUB's EFI image as the firmware's default
/// boot file; it reads grub.cfg and the x86_64-efi modules from BOOT, as core.img does. Fixed
/// serial, label and times, so the bytes are reproducible.
pub fn esp_img(out: &Path, work: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(work)?;
    let efi = work.join("BOOTX64.EFI");
    run(Command::new("grub-mkimage")
        .args(["-O", "x86_64-efi", "-p", grub::PREFIX, "-o"])
        .arg(&efi)
        .args(grub::EFI_MODULES))?;
    fat_image_with(out, "EFI", layout_size_of("EFI"), &efi)
}

/// A FAT image of `size` bytes at `out`, labelled `label`, holding `efi` as the firmware's
/// default boot file ([`grub::EFI_BOOT_FILE`]); serial and times fixed, so the bytes are too.
pub fn fat_image_with(out: &Path, label: &str, size: u64, efi: &Path) -> anyhow::Result<()> {
    File::open(efi)?.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(FAT_EPOCH))?;
    let _ = std::fs::remove_file(out);
    File::create(out)?.set_len(size.next_multiple_of(MIB))?;
    // FAT32 needs about 32 MiB at least; smaller images get the FAT size mkfs.fat picks.
    let fat32: &[&str] = if size >= 64 * MIB { &["-F", "32"] } else { &[] };
    run(Command::new("mkfs.fat")
        .args(fat32)
        .args(["-n", label, "-i", "5A1F0C2E", "--invariant"])
        .arg(out)
        .stdout(std::process::Stdio::null()))?;
    let (folder, _) = grub::EFI_BOOT_FILE
        .rsplit_once('/')
        .context("EFI boot file folder")?;
    let (parent, _) = folder.split_once('/').context("EFI folder")?;
    let mtools = |args: &[&str], tool: &str| {
        let mut command = Command::new(tool);
        command
            .arg("-i")
            .arg(out)
            .args(args)
            .env("SOURCE_DATE_EPOCH", FAT_EPOCH.to_string())
            .env("TZ", "UTC");
        run(&mut command)
    };
    mtools(&[&format!("::/{parent}"), &format!("::/{folder}")], "mmd")?;
    let efi_text = efi.display().to_string();
    mtools(
        &["-m", &efi_text, &format!("::/{}", grub::EFI_BOOT_FILE)],
        "mcopy",
    )?;
    Ok(())
}

fn layout_size_of(name: &str) -> u64 {
    layout::partition(name).map_or(0, |p| p.size_mib * MIB)
}

/// Copies Debian's GRUB modules of every platform into `grub_dir/<platform>/`, sorted.
pub fn copy_modules(grub_dir: &Path) -> anyhow::Result<()> {
    for platform in grub::MODULE_DIRS {
        let target = grub_dir.join(platform);
        std::fs::create_dir_all(&target)?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(Path::new(GRUB_LIB).join(platform))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for path in names {
            if path.extension().is_some_and(|e| e == "mod" || e == "lst") {
                let name = path.file_name().context("module name")?;
                std::fs::copy(&path, target.join(name))?;
            }
        }
    }
    Ok(())
}

/// The BOOT partition's files, every mtime at the epoch.
fn stage_boot(inputs: &DiskInputs, dir: &Path) -> anyhow::Result<()> {
    let grub_dir = dir.join("grub");
    let slot = dir.join("A");
    // Slot B stays empty until an upgrade writes it; GRUB offers it only then.
    for d in [&slot, &dir.join("B")] {
        std::fs::create_dir_all(d)?;
    }
    copy_modules(&grub_dir)?;
    std::fs::copy(inputs.kernel, slot.join("vmlinuz"))?;
    std::fs::copy(inputs.initramfs, slot.join("initramfs.img"))?;
    std::fs::write(grub_dir.join("grub.cfg"), grub::config(inputs.cmdline))?;
    std::fs::write(grub_dir.join("grubenv"), grub::env_block())?;
    set_times(dir)
}

/// `inside` and every path below `dir`, as paths inside the filesystem, sorted.
fn tree(dir: &Path, inside: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = vec![inside.to_path_buf()];
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let inner = inside.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            paths.extend(tree(&entry.path(), &inner)?);
        } else {
            paths.push(inner);
        }
    }
    Ok(paths)
}

pub(super) fn set_times(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            set_times(&entry?.path())?;
        }
    }
    File::open(path)?.set_modified(SystemTime::UNIX_EPOCH)?;
    Ok(())
}

/// Copies `from` into `to` at byte `offset`, skipping all-zero MiB so that `to` stays sparse.
fn copy_sparse(from: &Path, to: &Path, offset: u64) -> anyhow::Result<()> {
    let mut input = File::open(from)?;
    let mut output = File::options().write(true).open(to)?;
    let mut chunk = vec![0u8; MIB as usize];
    let mut at = offset;
    loop {
        let mut filled = 0;
        while filled < chunk.len() {
            let n = input.read(&mut chunk[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(());
        }
        if chunk[..filled].iter().any(|b| *b != 0) {
            output.seek(SeekFrom::Start(at))?;
            output.write_all(&chunk[..filled])?;
        }
        at += filled as u64;
    }
}
