//! The ISO (`talos-rs.iso`): El Torito boot through GRUB, for BIOS and for UEFI firmware (a
//! second boot entry: a small FAT image holding GRUB's EFI image, which finds the ISO's
//! `/boot/grub` by a file only the ISO has), into the kernel + initramfs, hence maintenance
//! mode (nothing is installed to a disk yet). GRUB loads a second,
//! uncompressed archive after the initramfs, `install.cpio`: `/install/vmlinuz`,
//! `/install/initramfs.img` and `/install/cmdline`, copies of what it boots. What a node
//! installs to its disk as slot A is thus exactly what it booted, with no CD-ROM driver or
//! filesystem. (GRUB 2.06's own `newc:` files cannot do this: their names lack the NUL the
//! kernel requires.) Built with grub-mkimage and xorriso directly (not grub-mkrescue, whose
//! temporary files carry the current time): volume dates are the epoch, file dates one second
//! after it, and the boot catalog is hidden, so the ISO is reproducible.

use std::path::Path;
use std::process::Command;

use installer::cpio;

use super::run;

/// Builds `out` from the kernel, initramfs and command line, using `work` as scratch space.
pub fn build(
    kernel: &Path,
    initramfs: &Path,
    cmdline: &str,
    work: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    if work.exists() {
        std::fs::remove_dir_all(work)?;
    }
    let grub = work.join("boot/grub");
    std::fs::create_dir_all(grub.join("i386-pc"))?;
    std::fs::copy(kernel, work.join("boot/vmlinuz"))?;
    std::fs::copy(initramfs, work.join("boot/initramfs.img"))?;
    let mut archive = Vec::new();
    cpio::write(
        &mut archive,
        &[
            cpio::Entry::Dir {
                path: "install".into(),
                mode: 0o755,
            },
            cpio::Entry::File {
                path: "install/cmdline".into(),
                mode: 0o444,
                data: format!("{cmdline}\n").into_bytes(),
            },
            cpio::Entry::File {
                path: "install/initramfs.img".into(),
                mode: 0o444,
                data: std::fs::read(initramfs)?,
            },
            cpio::Entry::File {
                path: "install/vmlinuz".into(),
                mode: 0o444,
                data: std::fs::read(kernel)?,
            },
        ],
    )?;
    std::fs::write(work.join("boot/install.cpio"), archive)?;
    std::fs::write(
        grub.join("grub.cfg"),
        format!(
            "serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             set timeout=0\n\
             menuentry \"talos-rs (maintenance)\" {{\n\
             \x20 linux /boot/vmlinuz {cmdline}\n\
             \x20 initrd /boot/initramfs.img /boot/install.cpio\n\
             }}\n"
        ),
    )?;
    run(Command::new("grub-mkimage")
        .args(["-O", "i386-pc-eltorito", "-p", "/boot/grub", "-o"])
        .arg(grub.join("i386-pc/eltorito.img"))
        .args([
            "biosdisk",
            "iso9660",
            "normal",
            "linux",
            "configfile",
            "echo",
            "test",
            "gzio",
        ])
        .args(["serial", "terminal"]))?;
    efi_boot_image(work, &grub.join("efi.img"))?;
    super::disk::set_times(work)?;
    let _ = std::fs::remove_file(out);
    run(Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-graft-points",
            "-r",
            "-volid",
            "TALOS_RS",
        ])
        .args([
            "--modification-date=1970010100000000",
            // "=N": N seconds after the epoch (the long form and "=0" are silently not applied).
            "--set_all_file_dates",
            "=1",
        ])
        .args([
            "-b",
            "boot/grub/i386-pc/eltorito.img",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
        ])
        .args([
            "-boot-info-table",
            "--grub2-boot-info",
            "--boot-catalog-hide",
        ])
        .args([
            "-eltorito-alt-boot",
            "-e",
            "boot/grub/efi.img",
            "-no-emul-boot",
        ])
        .args([
            "--grub2-mbr",
            "/usr/lib/grub/i386-pc/boot_hybrid.img",
            "--protective-msdos-label",
        ])
        .arg("-o")
        .arg(out)
        .arg(work)
        .env("SOURCE_DATE_EPOCH", "0"))
}

/// The El Torito image UEFI firmware starts: FAT with `EFI/BOOT/BOOTX64.EFI`, a GRUB EFI image
/// whose embedded config sets the root to the volume holding `/boot/install.cpio` (the ISO
/// itself, whatever the firmware calls it) before reading the ISO's grub.cfg.
fn efi_boot_image(work: &Path, out: &Path) -> anyhow::Result<()> {
    let scratch = work.with_extension("efi");
    std::fs::create_dir_all(&scratch)?;
    let early = scratch.join("early.cfg");
    std::fs::write(
        &early,
        "search --no-floppy --file --set=root /boot/install.cpio\nset prefix=($root)/boot/grub\n",
    )?;
    let efi = scratch.join("BOOTX64.EFI");
    run(Command::new("grub-mkimage")
        .args(["-O", "x86_64-efi", "-p", "/boot/grub", "-c"])
        .arg(&early)
        .arg("-o")
        .arg(&efi)
        .args([
            "iso9660",
            "search",
            "search_fs_file",
            "normal",
            "linux",
            "configfile",
            "echo",
            "test",
            "gzio",
            "serial",
            "terminal",
            "efi_gop",
        ]))?;
    let size = std::fs::metadata(&efi)?.len();
    super::disk::fat_image_with(out, "EFIBOOT", size + (1 << 20), &efi)?;
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}
