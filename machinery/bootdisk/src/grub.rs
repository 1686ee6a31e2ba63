//! GRUB for BIOS and UEFI boot of the system disk: what `grub-mkimage` must embed in core.img
//! (BIOS) and in `BOOTX64.EFI` (UEFI, on the EFI system partition), the grub.cfg both read
//! from BOOT that picks slot A or B, its environment block, and the two patches
//! grub-bios-setup would make (core.img's block list, boot.img's pointer to core.img).
//!
//! core.img, the EFI image and the modules come from Debian's `grub-pc-bin` and
//! `grub-efi-amd64-bin` at image build time; the node installing itself only patches and
//! writes bytes.

use crate::BootDiskError;
use crate::gpt::BOOT_CODE_SIZE;
use crate::layout::{self, MIB, SECTOR};

/// Where core.img finds its modules and grub.cfg: BOOT's `grub/`.
pub const PREFIX: &str = "(hd0,gpt3)/grub";
/// The modules core.img embeds (the rest load from BOOT).
pub const CORE_MODULES: [&str; 11] = [
    "biosdisk",
    "part_gpt",
    "ext2",
    "normal",
    "linux",
    "configfile",
    "echo",
    "test",
    "gzio",
    "serial",
    "terminal",
];
/// The modules `BOOTX64.EFI` embeds; the rest load from BOOT's `grub/x86_64-efi`.
pub const EFI_MODULES: [&str; 12] = [
    "part_gpt",
    "ext2",
    "normal",
    "linux",
    "configfile",
    "echo",
    "test",
    "gzio",
    "serial",
    "terminal",
    "loadenv",
    "efi_gop",
];
/// Where UEFI firmware looks for the boot loader of a removable (or any unregistered) disk.
pub const EFI_BOOT_FILE: &str = "EFI/BOOT/BOOTX64.EFI";
/// The folders of BOOT's `grub/` that hold each platform's modules.
pub const MODULE_DIRS: [&str; 2] = ["i386-pc", "x86_64-efi"];
/// MBR code that is not a boot loader: `int 0x18` ("no bootable disk", the BIOS tries the next
/// boot device), then `hlt` in a loop. Written first by an install, replaced by GRUB's boot
/// code last, so a disk whose install was cut short is passed over rather than booted.
pub const NOT_BOOTABLE: [u8; BOOT_CODE_SIZE] = {
    let mut code = [0u8; BOOT_CODE_SIZE];
    code[0] = 0xcd;
    code[1] = 0x18;
    code[2] = 0xf4;
    code[3] = 0xeb;
    code[4] = 0xfd;
    code
};

/// grub.cfg: slot A, or the slot the environment block names (see [`env_block`]); slot B is
/// offered only once it holds a kernel. `cmdline` is the kernel command line of both.
pub fn config(cmdline: &str) -> String {
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
         \x20 linux /A/vmlinuz {cmdline}\n\
         \x20 initrd /A/initramfs.img\n\
         }}\n\
         if [ -f /B/vmlinuz ]; then\n\
         \x20 menuentry \"talos-rs (B)\" --id B {{\n\
         \x20   linux /B/vmlinuz {cmdline}\n\
         \x20   initrd /B/initramfs.img\n\
         \x20 }}\n\
         fi\n"
    )
}

/// An empty GRUB environment block: the header line, then `#` up to 1024 bytes. Whole and
/// preallocated, because GRUB's `save_env` rewrites it in place.
pub fn env_block() -> Vec<u8> {
    let mut block = b"# GRUB Environment Block\n".to_vec();
    block.resize(1024, b'#');
    block
}

/// The sector core.img starts at: the BIOS boot partition's first.
pub fn core_sector() -> u64 {
    layout::partition("BIOS").map_or(0, |p| layout::start_sector(p.number))
}

/// Pads `core` (grub-mkimage's i386-pc core.img) to whole sectors and writes the block list of
/// its first sector (diskboot.img's last 12 bytes: start, sector count) for core.img at
/// [`core_sector`].
pub fn patch_core(core: &mut Vec<u8>) -> Result<(), BootDiskError> {
    let sectors = core.len().div_ceil(SECTOR as usize);
    let rest = u16::try_from(sectors.saturating_sub(1))
        .ok()
        .filter(|_| sectors as u64 * SECTOR <= MIB && sectors > 1)
        .ok_or(BootDiskError::CoreTooLarge(core.len()))?;
    core.resize(sectors * SECTOR as usize, 0);
    core[0x1f4..0x1fc].copy_from_slice(&(core_sector() + 1).to_le_bytes());
    core[0x1fc..0x1fe].copy_from_slice(&rest.to_le_bytes());
    Ok(())
}

/// The MBR code area from `boot_img` (GRUB's boot.img) pointing at core.img.
pub fn boot_code(boot_img: &[u8]) -> Result<[u8; BOOT_CODE_SIZE], BootDiskError> {
    if boot_img.len() != SECTOR as usize {
        return Err(BootDiskError::BootCodeSize(boot_img.len()));
    }
    let mut code = [0u8; BOOT_CODE_SIZE];
    code.copy_from_slice(&boot_img[..BOOT_CODE_SIZE]);
    code[0x5c..0x64].copy_from_slice(&core_sector().to_le_bytes());
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_img_gets_the_block_list_of_the_bios_partition() {
        let mut core = vec![1u8; 3 * 512 + 10];
        patch_core(&mut core).unwrap();
        assert_eq!(core.len(), 4 * 512);
        assert_eq!(core_sector(), 2048 + 100 * 2048);
        assert_eq!(&core[0x1f4..0x1fc], &(core_sector() + 1).to_le_bytes());
        assert_eq!(&core[0x1fc..0x1fe], &3u16.to_le_bytes());
        let mut huge = vec![0u8; 2 << 20];
        assert!(patch_core(&mut huge).is_err());
    }

    #[test]
    fn boot_code_points_at_core_and_refuses_a_wrong_size() {
        let code = boot_code(&[0x90; 512]).unwrap();
        assert_eq!(&code[0x5c..0x64], &core_sector().to_le_bytes());
        assert!(boot_code(&[0; 100]).is_err());
    }

    #[test]
    fn the_config_boots_the_command_line_from_both_slots() {
        let text = config("console=ttyS0 talos.platform=metal");
        assert_eq!(
            text.matches("console=ttyS0 talos.platform=metal").count(),
            2
        );
        assert_eq!(env_block().len(), 1024);
    }
}
