//! Storage kinds: `LVMVolumeGroupConfig`, `LVMLogicalVolumeConfig`, `RAIDArrayConfig`.

use serde::{Deserialize, Serialize};

use super::common::DiskSelector;
use super::size::{ByteSize, VolumeSize};
use super::{cel_expression, volume_name};
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

/// The longest LVM volume group or logical volume name.
const MAX_LVM_NAME_LENGTH: usize = 63;
/// The longest RAID array name.
const MAX_RAID_NAME_LENGTH: usize = 32;

/// Member selection of a volume group or array (`provisioning`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeSelectorProvisioning {
    /// CEL expression over `volume` (and `disk`) picking the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_selector: Option<DiskSelector>,
}

impl VolumeSelectorProvisioning {
    fn check(this: Option<&Self>, path: &str, f: &mut Findings) {
        let path = format!("{path}.provisioning.volumeSelector.match");
        match this
            .and_then(|p| p.volume_selector.as_ref())
            .and_then(DiskSelector::expression)
        {
            Some(expression) => f.check(path, cel_expression(expression)),
            None => f.error(path, "a volume selector is required"),
        }
    }
}

document_kind! {
    /// `LVMVolumeGroupConfig`: an LVM volume group over the selected physical volumes.
    pub struct LvmVolumeGroupConfig = "LVMVolumeGroupConfig", named {
        /// The physical volumes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provisioning: Option<VolumeSelectorProvisioning>,
    }
}

/// LVM logical volume layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LvmLogicalVolumeType {
    /// Linear (the default).
    Linear,
    /// Mirrored.
    Raid1,
    /// Striped.
    Raid0,
    /// Striped mirrors.
    Raid10,
}

impl LvmLogicalVolumeType {
    fn as_str(self) -> &'static str {
        match self {
            LvmLogicalVolumeType::Linear => "linear",
            LvmLogicalVolumeType::Raid1 => "raid1",
            LvmLogicalVolumeType::Raid0 => "raid0",
            LvmLogicalVolumeType::Raid10 => "raid10",
        }
    }
}

/// `LVMLogicalVolumeConfig.provisioning`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LvmLogicalVolumeProvisioning {
    /// The volume group the logical volume is created in.
    #[serde(default)]
    pub volume_group: String,
    /// The smallest acceptable size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<ByteSize>,
    /// The size: bytes or a percentage of the volume group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<VolumeSize>,
}

document_kind! {
    /// `LVMLogicalVolumeConfig`: an LVM logical volume.
    pub struct LvmLogicalVolumeConfig = "LVMLogicalVolumeConfig", named {
        /// The layout (`linear` when unset).
        #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
        pub volume_type: Option<LvmLogicalVolumeType>,
        /// Mirror count (raid1, raid10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mirrors: Option<u32>,
        /// Stripe count (raid0, raid10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stripes: Option<u32>,
        /// Where and how big.
        #[serde(default)]
        pub provisioning: LvmLogicalVolumeProvisioning,
    }
}

/// RAID levels of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RaidLevel {
    /// Mirroring.
    Raid1,
}

/// md superblock formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaidMetadata {
    /// Version 1.0 (at the end of the device).
    #[serde(rename = "1.0")]
    V1_0,
    /// Version 1.2 (4 KiB from the start).
    #[serde(rename = "1.2")]
    V1_2,
}

document_kind! {
    /// `RAIDArrayConfig`: a software RAID (md) array over the selected volumes.
    pub struct RaidArrayConfig = "RAIDArrayConfig", named {
        /// The RAID level (`raid1`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub level: Option<RaidLevel>,
        /// The superblock format.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metadata: Option<RaidMetadata>,
        /// The member volumes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provisioning: Option<VolumeSelectorProvisioning>,
    }
}

impl CheckDocument for LvmVolumeGroupConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        f.check(
            format!("{kind}.name"),
            volume_name(&self.name, Some(MAX_LVM_NAME_LENGTH), true),
        );
        VolumeSelectorProvisioning::check(
            self.provisioning.as_ref(),
            &format!("{kind} {:?}", self.name),
            f,
        );
    }
}

impl CheckDocument for LvmLogicalVolumeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = format!("{kind} {:?}", self.name);
        f.check(
            format!("{kind}.name"),
            volume_name(&self.name, Some(MAX_LVM_NAME_LENGTH), true),
        );
        let volume_type = self.volume_type.unwrap_or(LvmLogicalVolumeType::Linear);
        let mirrored = matches!(
            volume_type,
            LvmLogicalVolumeType::Raid1 | LvmLogicalVolumeType::Raid10
        );
        let striped = matches!(
            volume_type,
            LvmLogicalVolumeType::Raid0 | LvmLogicalVolumeType::Raid10
        );
        if let Some(mirrors) = self.mirrors {
            if !mirrored {
                f.error(
                    format!("{path}.mirrors"),
                    format!(
                        "mirrors apply to raid1 and raid10, not {}",
                        volume_type.as_str()
                    ),
                );
            } else if mirrors < 1 {
                f.error(format!("{path}.mirrors"), "at least 1 mirror is required");
            }
        }
        if let Some(stripes) = self.stripes {
            if !striped {
                f.error(
                    format!("{path}.stripes"),
                    format!(
                        "stripes apply to raid0 and raid10, not {}",
                        volume_type.as_str()
                    ),
                );
            } else if stripes < 2 {
                f.error(format!("{path}.stripes"), "at least 2 stripes are required");
            }
        }
        let provisioning = &self.provisioning;
        if provisioning.volume_group.is_empty() {
            f.error(
                format!("{path}.provisioning.volumeGroup"),
                "the volume group is required",
            );
        }
        match &provisioning.max_size {
            None => f.error(
                format!("{path}.provisioning.maxSize"),
                "the size (maxSize) is required",
            ),
            Some(max) => {
                if max.is_negative() {
                    f.error(
                        format!("{path}.provisioning.maxSize"),
                        "maxSize cannot be negative",
                    );
                }
                if let (Some(min), Some(max_bytes)) = (&provisioning.min_size, max.bytes())
                    && min.bytes() > max_bytes
                {
                    f.error(
                        format!("{path}.provisioning.minSize"),
                        format!("minSize {min} is larger than maxSize {max}"),
                    );
                }
            }
        }
    }
}

impl CheckDocument for RaidArrayConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        f.check(
            format!("{kind}.name"),
            volume_name(&self.name, Some(MAX_RAID_NAME_LENGTH), true),
        );
        VolumeSelectorProvisioning::check(
            self.provisioning.as_ref(),
            &format!("{kind} {:?}", self.name),
            f,
        );
    }
}
