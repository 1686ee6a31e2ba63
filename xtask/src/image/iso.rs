//! The ISO (`talos-rs.iso`): BIOS El Torito boot through GRUB into the kernel + initramfs,
//! hence maintenance mode (nothing is installed to a disk yet). GRUB also hands the kernel,
//! the initramfs and the command line to the booted system as files under `/install` of the
//! initramfs (`initrd … newc:NAME:FILE`): what a node installs to its disk as slot A is exactly
//! what it booted from the ISO, with no CD-ROM driver or filesystem. Built with grub-mkimage and
//! xorriso directly (not grub-mkrescue, whose temporary files carry the current time): volume
//! dates are the epoch, file dates one second after it, and the boot catalog is hidden, so the
//! ISO is reproducible.

use std::path::Path;
use std::process::Command;

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
    std::fs::write(work.join("boot/cmdline"), format!("{cmdline}\n"))?;
    std::fs::write(
        grub.join("grub.cfg"),
        format!(
            "serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             set timeout=0\n\
             menuentry \"talos-rs (maintenance)\" {{\n\
             \x20 linux /boot/vmlinuz {cmdline}\n\
             \x20 initrd /boot/initramfs.img newc:/install/vmlinuz:/boot/vmlinuz \
             newc:/install/initramfs.img:/boot/initramfs.img newc:/install/cmdline:/boot/cmdline\n\
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
            "--grub2-mbr",
            "/usr/lib/grub/i386-pc/boot_hybrid.img",
            "--protective-msdos-label",
        ])
        .arg("-o")
        .arg(out)
        .arg(work)
        .env("SOURCE_DATE_EPOCH", "0"))
}
