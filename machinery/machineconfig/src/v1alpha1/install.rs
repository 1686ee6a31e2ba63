//! `machine.install`.

use serde::{Deserialize, Serialize};

/// `machine.install`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstallConfig {
    /// The install disk (`/dev/sda`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
    /// Picks the install disk by its properties instead of `disk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_selector: Option<InstallDiskSelector>,
    /// Extra kernel command-line arguments.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_kernel_args: Vec<String>,
    /// Installer image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// System extension images (deprecated).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extensions: Vec<InstallExtension>,
    /// Install a bootloader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootloader: Option<bool>,
    /// Wipe the disk before installing.
    #[serde(default)]
    pub wipe: bool,
    /// Mark the partition bootable for legacy BIOS.
    #[serde(
        rename = "legacyBIOSSupport",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_bios_support: Option<bool>,
    /// Take GRUB's kernel command line from the UKI.
    #[serde(
        rename = "grubUseUKICmdline",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grub_use_uki_cmdline: Option<bool>,
}

/// `machine.install.diskSelector`: every given property must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstallDiskSelector {
    /// Size, optionally with a comparison: `4GB`, `>= 1TB`, `< 500GB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Disk name (`/sys/block/<dev>/device/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Disk model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Modalias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalias: Option<String>,
    /// Partition table UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// World Wide ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwid: Option<String>,
    /// `ssd`, `hdd`, `nvme` or `sd`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<String>,
    /// Bus path (`/pci0000:00/…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus_path: Option<String>,
}

/// `machine.install.extensions[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstallExtension {
    /// Extension image reference.
    #[serde(default)]
    pub image: String,
}
