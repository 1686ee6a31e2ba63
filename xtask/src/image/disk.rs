//! The bootable disk image (`disk.raw`, `disk.qcow2`): GPT with the partitions of reference
//! §7.5 and GRUB for BIOS, written without loop devices or mounts.
//!
//! | # | name | type | size | content |
//! |---|---|---|---|---|
//! | 1 | EFI | EFI System | 100 MiB | empty vfat (UEFI boot is not built yet) |
//! | 2 | BIOS | BIOS boot, legacy-bootable | 1 MiB | GRUB core.img |
//! | 3 | BOOT | Linux data | 1000 MiB | ext4: `grub/` (grub.cfg, modules), slot `A/` (vmlinuz, initramfs.img), slot `B/` (empty until an upgrade) |
//! | 4 | META | Linux data | 1 MiB | zeroes |
//! | 5 | STATE | Linux data | 100 MiB | blank: machined formats it (xfs) on first boot |
//! | 6 | EPHEMERAL | Linux data | rest (≥ 2 GiB) | blank: machined formats it (xfs) on first boot |
//!
//! GRUB's MBR code (boot.img) is patched with core.img's sector and core.img's first sector
//! with the block list of the rest, as grub-bios-setup would do. BOOT is ext4 rather than
//! upstream's xfs: `mke2fs -d` fills it from a folder and GRUB 2.06 reads it without surprises.
//! All GUIDs, UUIDs, serials and times are fixed, so the image is reproducible.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context as _, ensure};

use super::run;

const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
const DISK_SIZE: u64 = 4096 * MIB;
const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";
/// Every GUID and UUID of the image: fixed, so that the bytes are.
const DISK_GUID: &str = "5a1f0c2e-0000-4000-8000-000000000000";
const BOOT_UUID: &str = "5a1f0c2e-0000-4000-8000-000000000003";

/// (number, name, sgdisk type code, size in MiB; 0 = the rest of the disk)
const PARTITIONS: [(u32, &str, &str, u64); 6] = [
    (1, "EFI", "EF00", 100),
    (2, "BIOS", "EF02", 1),
    (3, "BOOT", "8300", 1000),
    (4, "META", "8300", 1),
    (5, "STATE", "8300", 100),
    (6, "EPHEMERAL", "8300", 0),
];

/// The inputs of the disk image.
#[derive(Debug)]
pub struct DiskInputs<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    pub cmdline: &'a str,
    /// A scratch folder (emptied first).
    pub work: &'a Path,
}

/// The first sector of partition `number`.
fn start_sector(number: u32) -> u64 {
    let before: u64 = PARTITIONS
        .iter()
        .take_while(|(n, ..)| *n != number)
        .map(|(.., size)| size * MIB)
        .sum();
    (MIB + before) / SECTOR
}

/// Builds `raw` and converts it to `qcow2`.
pub fn build(inputs: &DiskInputs, raw: &Path, qcow2: &Path) -> anyhow::Result<()> {
    if inputs.work.exists() {
        std::fs::remove_dir_all(inputs.work)?;
    }
    std::fs::create_dir_all(inputs.work)?;
    let _ = std::fs::remove_file(raw);
    File::create(raw)?.set_len(DISK_SIZE)?;

    let mut sgdisk = Command::new("sgdisk");
    sgdisk.args(["--clear", &format!("--disk-guid={DISK_GUID}")]);
    for (number, name, kind, size) in PARTITIONS {
        let start = start_sector(number);
        let end = if size == 0 {
            0
        } else {
            start + size * MIB / SECTOR - 1
        };
        sgdisk
            .arg(format!("--new={number}:{start}:{end}"))
            .arg(format!("--typecode={number}:{kind}"))
            .arg(format!("--change-name={number}:{name}"))
            .arg(format!(
                "--partition-guid={number}:5a1f0c2e-0000-4000-8000-00000000010{number}"
            ));
    }
    // BIOS boot partition: legacy BIOS bootable (attribute bit 2).
    sgdisk
        .args(["--attributes=2:set:2"])
        .arg(raw)
        .stdout(std::process::Stdio::null());
    run(&mut sgdisk)?;

    let efi = inputs.work.join("efi.img");
    File::create(&efi)?.set_len(100 * MIB)?;
    run(Command::new("mkfs.fat")
        .args(["-F", "32", "-n", "EFI", "-i", "5A1F0C2E", "--invariant"])
        .arg(&efi)
        .stdout(std::process::Stdio::null()))?;
    copy_sparse(&efi, raw, start_sector(1) * SECTOR)?;

    install_grub(inputs.work, raw)?;

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
    copy_sparse(&boot, raw, start_sector(3) * SECTOR)?;

    let _ = std::fs::remove_file(qcow2);
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(raw)
        .arg(qcow2))?;
    Ok(())
}

/// core.img into the BIOS partition, boot.img's code into the MBR.
fn install_grub(work: &Path, raw: &Path) -> anyhow::Result<()> {
    let core_path = work.join("core.img");
    run(Command::new("grub-mkimage")
        .args(["-O", "i386-pc", "-p", "(hd0,gpt3)/grub", "-o"])
        .arg(&core_path)
        .args([
            "biosdisk",
            "part_gpt",
            "ext2",
            "normal",
            "linux",
            "configfile",
            "echo",
            "test",
        ])
        .args(["gzio", "serial", "terminal"]))?;
    let mut core = std::fs::read(&core_path)?;
    let sectors = core.len().div_ceil(512);
    ensure!(
        (sectors as u64) * SECTOR <= MIB,
        "core.img does not fit the BIOS partition"
    );
    core.resize(sectors * 512, 0);
    let core_start = start_sector(2);
    // diskboot.img's block list (last 12 bytes of the first sector): start, length, segment.
    core[0x1f4..0x1fc].copy_from_slice(&(core_start + 1).to_le_bytes());
    let rest = u16::try_from(sectors - 1).context("core.img is too large")?;
    core[0x1fc..0x1fe].copy_from_slice(&rest.to_le_bytes());
    let mut disk = File::options().write(true).read(true).open(raw)?;
    disk.seek(SeekFrom::Start(core_start * SECTOR))?;
    disk.write_all(&core)?;

    let boot = std::fs::read(Path::new(GRUB_DIR).join("boot.img"))?;
    ensure!(boot.len() == 512, "boot.img is not one sector");
    let mut mbr = [0u8; 512];
    disk.seek(SeekFrom::Start(0))?;
    disk.read_exact(&mut mbr)?;
    // The code area only: the protective MBR's partition table and signature stay.
    mbr[..440].copy_from_slice(&boot[..440]);
    mbr[0x5c..0x64].copy_from_slice(&core_start.to_le_bytes());
    disk.seek(SeekFrom::Start(0))?;
    disk.write_all(&mbr)?;
    Ok(())
}

/// The BOOT partition's files, every mtime at the epoch.
fn stage_boot(inputs: &DiskInputs, dir: &Path) -> anyhow::Result<()> {
    let grub = dir.join("grub");
    let modules = grub.join("i386-pc");
    let slot = dir.join("A");
    // Slot B stays empty until an upgrade writes it; GRUB offers it only then.
    for d in [&modules, &slot, &dir.join("B")] {
        std::fs::create_dir_all(d)?;
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(GRUB_DIR)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for path in names {
        if path.extension().is_some_and(|e| e == "mod" || e == "lst") {
            let name = path.file_name().context("module name")?;
            std::fs::copy(&path, modules.join(name))?;
        }
    }
    std::fs::copy(inputs.kernel, slot.join("vmlinuz"))?;
    std::fs::copy(inputs.initramfs, slot.join("initramfs.img"))?;
    std::fs::write(
        grub.join("grub.cfg"),
        format!(
            "# talos-rs: slot A boots until an upgrade fills slot B. The environment block\n\
             # (grubenv) holds saved_entry, the committed slot, and next_entry, a slot tried\n\
             # once: GRUB clears it before booting it, so a trial that never commits falls\n\
             # back to saved_entry at the next boot.\n\
             serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             set default=A\n\
             load_env\n\
             if [ -n \"${{next_entry}}\" ]; then\n\
             \x20 set default=\"${{next_entry}}\"\n\
             \x20 set next_entry=\n\
             \x20 save_env next_entry\n\
             elif [ -n \"${{saved_entry}}\" ]; then\n\
             \x20 set default=\"${{saved_entry}}\"\n\
             fi\n\
             set timeout=0\n\
             menuentry \"talos-rs (A)\" --id A {{\n\
             \x20 linux /A/vmlinuz {}\n\
             \x20 initrd /A/initramfs.img\n\
             }}\n\
             if [ -f /B/vmlinuz ]; then\n\
             \x20 menuentry \"talos-rs (B)\" --id B {{\n\
             \x20   linux /B/vmlinuz {}\n\
             \x20   initrd /B/initramfs.img\n\
             \x20 }}\n\
             fi\n",
            inputs.cmdline, inputs.cmdline
        ),
    )?;
    // A whole, preallocated environment block: GRUB's save_env rewrites it in place.
    std::fs::write(grub.join("grubenv"), grub_env_block())?;
    set_times(dir)
}

/// An empty GRUB environment block: the header line, then `#` up to 1024 bytes.
fn grub_env_block() -> Vec<u8> {
    let mut block = b"# GRUB Environment Block\n".to_vec();
    block.resize(1024, b'#');
    block
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
