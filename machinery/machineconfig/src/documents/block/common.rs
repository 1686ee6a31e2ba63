//! Parts shared by the volume kinds: provisioning, encryption, filesystem type, trim and scrub,
//! with their checks.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cel_expression;
use super::size::{ByteSize, VolumeSize};
use crate::GoDuration;
use crate::validate::Findings;

/// The shortest scrub interval accepted.
pub(super) const MIN_SCRUB_INTERVAL: Duration = Duration::from_secs(10);

/// A selector holding a CEL expression (`diskSelector`, `volumeSelector`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSelector {
    /// The CEL expression a disk or volume must satisfy.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

impl DiskSelector {
    /// The expression, when set and not empty.
    pub fn expression(&self) -> Option<&str> {
        self.expression.as_deref().filter(|e| !e.is_empty())
    }
}

/// Where and how big a volume is created (`provisioning`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeProvisioning {
    /// Which disk the volume is created on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_selector: Option<DiskSelector>,
    /// Grow the volume into the free space after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grow: Option<bool>,
    /// The smallest acceptable size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<ByteSize>,
    /// The largest size: bytes or a percentage of the disk; negative means "all but".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<VolumeSize>,
}

impl VolumeProvisioning {
    /// Whether anything asks for a dedicated volume to be provisioned.
    pub fn is_requested(&self) -> bool {
        self.disk_selector
            .as_ref()
            .is_some_and(|s| s.expression().is_some())
            || self.grow.is_some()
            || self.min_size.is_some()
            || self.max_size.is_some()
    }

    /// Checks the selector and sizes; `required`: a selector (and a size, when sizes apply)
    /// must be given; `sized`: sizes and `grow` apply to this kind of volume.
    pub(super) fn check(&self, path: &str, required: bool, sized: bool, f: &mut Findings) {
        match self
            .disk_selector
            .as_ref()
            .and_then(DiskSelector::expression)
        {
            Some(expression) => f.check(
                format!("{path}.diskSelector.match"),
                cel_expression(expression),
            ),
            None if required => f.error(
                format!("{path}.diskSelector.match"),
                "a disk selector is required",
            ),
            None => {}
        }
        if !sized {
            if self.min_size.is_some() || self.max_size.is_some() || self.grow.is_some() {
                f.error(
                    path,
                    "minSize, maxSize and grow do not apply to this volume type",
                );
            }
            return;
        }
        match (&self.min_size, &self.max_size) {
            (Some(min), Some(max)) => {
                if let Some(max_bytes) = max.bytes()
                    && !max.is_negative()
                    && min.bytes() > max_bytes
                {
                    f.error(
                        format!("{path}.minSize"),
                        format!("minSize {min} is larger than maxSize {max}"),
                    );
                }
            }
            (None, None) if required => f.error(path, "minSize or maxSize is required"),
            _ => {}
        }
        if let Some(min) = &self.min_size
            && min.is_negative()
        {
            f.error(format!("{path}.minSize"), "minSize cannot be negative");
        }
    }
}

/// Filesystem types known to Talos (`filesystem.type`, `filesystemType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesystemType {
    /// No filesystem.
    None,
    /// XFS.
    Xfs,
    /// FAT.
    Vfat,
    /// ext4.
    Ext4,
    /// ISO 9660.
    Iso9660,
    /// Swap space (spelled `swapi` upstream).
    #[serde(rename = "swapi")]
    Swap,
    /// A virtiofs share.
    Virtiofs,
    /// Btrfs.
    Btrfs,
}

impl FilesystemType {
    /// The spelling used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            FilesystemType::None => "none",
            FilesystemType::Xfs => "xfs",
            FilesystemType::Vfat => "vfat",
            FilesystemType::Ext4 => "ext4",
            FilesystemType::Iso9660 => "iso9660",
            FilesystemType::Swap => "swapi",
            FilesystemType::Virtiofs => "virtiofs",
            FilesystemType::Btrfs => "btrfs",
        }
    }
}

/// XFS options (`filesystem.xfs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct XfsSpec {
    /// The smallest allocation group size used when formatting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_allocation_group_size: Option<ByteSize>,
}

/// Periodic `fstrim` of a volume (`trim`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrimSpec {
    /// Turns trimming on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How often to trim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
}

/// Periodic filesystem scrub of a volume (`scrub`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScrubSpec {
    /// Turns scrubbing on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How often to scrub (at least ten seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
}

/// Checks a scrub interval: unset, zero, or at least [`MIN_SCRUB_INTERVAL`].
pub(super) fn check_scrub_interval(path: String, interval: Option<&GoDuration>, f: &mut Findings) {
    if let Some(interval) = interval
        && !interval.as_duration().is_zero()
        && interval.as_duration() < MIN_SCRUB_INTERVAL
    {
        f.error(
            path,
            format!("{interval} is shorter than the minimum of 10s"),
        );
    }
}

/// Encryption providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionProvider {
    /// No encryption.
    None,
    /// LUKS2.
    Luks2,
}

/// Volume encryption (`encryption`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionSpec {
    /// The provider; only `luks2` encrypts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<EncryptionProvider>,
    /// Key slots.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub keys: Vec<EncryptionKey>,
    /// The cipher (`aes-xts-plain64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// The key size in bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    /// The sector size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u64>,
    /// Performance options passed to cryptsetup.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
    /// Pass discards through to the disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_discards: Option<bool>,
}

/// One key slot (`encryption.keys[]`): exactly how the key is obtained.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionKey {
    /// The LUKS key slot.
    #[serde(default)]
    pub slot: i32,
    /// A static passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#static: Option<EncryptionKeyStatic>,
    /// A key derived from the node's identity.
    #[serde(rename = "nodeID", default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<EncryptionKeyNodeId>,
    /// A key sealed by a KMS server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<EncryptionKeyKms>,
    /// A key sealed by the TPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<EncryptionKeyTpm>,
    /// Bind the key to the STATE partition's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_to_state: Option<bool>,
}

impl EncryptionKey {
    fn has_source(&self) -> bool {
        self.r#static.is_some()
            || self.node_id.is_some()
            || self.kms.is_some()
            || self.tpm.is_some()
    }
}

/// `keys[].static`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionKeyStatic {
    /// The passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
}

/// `keys[].nodeID`: no settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKeyNodeId {}

/// `keys[].kms`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionKeyKms {
    /// The KMS server's endpoint.
    #[serde(default)]
    pub endpoint: String,
}

/// `keys[].tpm`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionKeyTpm {
    /// Sealing options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<EncryptionKeyTpmOptions>,
    /// Check the Secure Boot state when enrolling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_secureboot_status_on_enroll: Option<bool>,
}

/// `keys[].tpm.options`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionKeyTpmOptions {
    /// PCRs the key is sealed to (0 to 23).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub pcrs: Vec<i64>,
}

impl EncryptionSpec {
    /// Whether the spec asks for encryption at all (a provider other than `none`).
    pub fn is_enabled(&self) -> bool {
        self.provider.is_some_and(|p| p != EncryptionProvider::None)
    }

    /// Whether the spec neither enables encryption nor lists keys.
    pub fn is_empty(&self) -> bool {
        !self.is_enabled() && self.keys.is_empty()
    }

    pub(super) fn check(&self, path: &str, f: &mut Findings) {
        if self.is_empty() {
            return;
        }
        if self.provider != Some(EncryptionProvider::Luks2) {
            f.error(
                format!("{path}.provider"),
                "the encryption provider must be luks2",
            );
        }
        if self.keys.is_empty() {
            f.error(format!("{path}.keys"), "at least one key is required");
        }
        let mut slots = BTreeSet::new();
        for (i, key) in self.keys.iter().enumerate() {
            if !slots.insert(key.slot) {
                f.error(
                    format!("{path}.keys[{i}].slot"),
                    format!("key slot {} is used twice", key.slot),
                );
            }
            if !key.has_source() {
                f.error(
                    format!("{path}.keys[{i}]"),
                    "the key needs a source: static, nodeID, kms or tpm",
                );
            }
            let pcrs = key
                .tpm
                .as_ref()
                .and_then(|t| t.options.as_ref())
                .map(|o| o.pcrs.as_slice())
                .unwrap_or_default();
            for pcr in pcrs {
                if !(0..=23).contains(pcr) {
                    f.error(
                        format!("{path}.keys[{i}].tpm.options.pcrs"),
                        format!("PCR {pcr} is out of range (0 to 23)"),
                    );
                }
            }
        }
    }
}
