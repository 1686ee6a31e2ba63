//! The talos-rs system disk, as both the image builder (`cargo xtask image`) and a node
//! installing itself from the ISO write it: the partitions of reference §7.5 ([`layout`]), a
//! GPT writer ([`gpt`]) and GRUB's pieces for BIOS boot ([`grub`]: grub.cfg, its environment
//! block, core.img's block list and the MBR boot code; GRUB's EFI image for UEFI boot) and
//! the EFI system partition as a [`sparse`] image.
//!
//! Limits: 512-byte sectors.

pub mod gpt;
pub mod grub;
pub mod layout;
pub mod sparse;

/// What went wrong laying a disk out.
#[derive(Debug, thiserror::Error)]
pub enum BootDiskError {
    /// The disk cannot hold the layout.
    #[error("the disk has {size} bytes; the talos-rs layout needs at least {needed}")]
    DiskTooSmall { size: u64, needed: u64 },
    /// GRUB's core.img is larger than the BIOS boot partition or its block list allows.
    #[error("GRUB core.img of {0} bytes does not fit the BIOS boot partition")]
    CoreTooLarge(usize),
    /// GRUB's boot.img is not one sector.
    #[error("GRUB boot.img has {0} bytes, not one 512-byte sector")]
    BootCodeSize(usize),
    /// A sparse partition image that cannot be written as it is.
    #[error("bad sparse image: {0}")]
    BadSparseImage(String),
}
