//! Volume kinds: `VolumeConfig` (system volumes), `UserVolumeConfig`, `RawVolumeConfig`,
//! `ExistingVolumeConfig`, `ExternalVolumeConfig`, `SwapVolumeConfig`.

use serde::{Deserialize, Serialize};

use super::common::{
    DiskSelector, EncryptionSpec, FilesystemType, ScrubSpec, TrimSpec, VolumeProvisioning, XfsSpec,
    check_scrub_interval,
};
use super::{cel_expression, volume_name};
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

/// The longest partition label; user, raw, external and swap volumes add a two-character prefix.
const PARTITION_LABEL_LENGTH: usize = 36;
/// The longest name of a user, raw, external or swap volume.
const MAX_PREFIXED_NAME_LENGTH: usize = PARTITION_LABEL_LENGTH - 2;

/// The system volumes a `VolumeConfig` may configure.
const SYSTEM_VOLUMES: &[&str] = &[
    "STATE",
    "EPHEMERAL",
    "IMAGECACHE",
    "ETCD",
    "CRI",
    "KUBELET",
    "LOG",
];

/// How a user volume is backed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    /// A partition on a selected disk (the default).
    Partition,
    /// A whole selected disk.
    Disk,
    /// A tmpfs (not for user volumes).
    Tmpfs,
    /// A directory on the EPHEMERAL volume.
    Directory,
    /// A symlink (not for user volumes).
    Symlink,
    /// An overlay (not for user volumes).
    Overlay,
    /// An external volume (not for user volumes).
    External,
}

/// Mount options of system and user volumes (`mount`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMount {
    /// Mount with `nosuid`/`nodev` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// Mount with `noatime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_access_time: Option<bool>,
}

impl VolumeType {
    /// The spelling used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Partition => "partition",
            VolumeType::Disk => "disk",
            VolumeType::Tmpfs => "tmpfs",
            VolumeType::Directory => "directory",
            VolumeType::Symlink => "symlink",
            VolumeType::Overlay => "overlay",
            VolumeType::External => "external",
        }
    }
}

impl VolumeMount {
    fn is_empty(&self) -> bool {
        self.secure.is_none() && self.disable_access_time.is_none()
    }
}

/// Filesystem options of a system volume (`VolumeConfig.filesystem`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SystemVolumeFilesystem {
    /// XFS options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xfs: Option<XfsSpec>,
}

document_kind! {
    /// `VolumeConfig`: provisioning, encryption and mounting of a system volume (`STATE`,
    /// `EPHEMERAL`, `IMAGECACHE`, `ETCD`, `CRI`, `KUBELET`, `LOG`).
    pub struct VolumeConfig = "VolumeConfig", named {
        /// Where the volume is created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provisioning: Option<VolumeProvisioning>,
        /// Filesystem options.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub filesystem: Option<SystemVolumeFilesystem>,
        /// Encryption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub encryption: Option<EncryptionSpec>,
        /// Mount options.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mount: Option<VolumeMount>,
        /// Periodic trim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trim: Option<TrimSpec>,
        /// Periodic scrub.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrub: Option<ScrubSpec>,
    }
}

/// Filesystem of a user volume (`UserVolumeConfig.filesystem`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserVolumeFilesystem {
    /// The filesystem (`xfs` when unset; `xfs` or `ext4`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub filesystem_type: Option<FilesystemType>,
    /// Enable project quotas (XFS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_quota_support: Option<bool>,
    /// XFS options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xfs: Option<XfsSpec>,
}

impl UserVolumeFilesystem {
    fn is_empty(&self) -> bool {
        self.filesystem_type
            .is_none_or(|t| t == FilesystemType::None)
            && self.project_quota_support.is_none()
            && self.xfs.is_none()
    }

    fn check(&self, path: &str, f: &mut Findings) {
        let effective = match self.filesystem_type {
            None | Some(FilesystemType::None) => FilesystemType::Xfs,
            Some(t) => t,
        };
        if !matches!(effective, FilesystemType::Xfs | FilesystemType::Ext4) {
            f.error(
                format!("{path}.type"),
                format!(
                    "filesystem {} is not supported for volumes (use xfs or ext4)",
                    effective.as_str()
                ),
            );
            return;
        }
        if effective != FilesystemType::Xfs {
            if self.project_quota_support == Some(true) {
                f.error(
                    format!("{path}.projectQuotaSupport"),
                    "project quotas are only supported on xfs",
                );
            }
            if self.xfs.is_some() {
                f.error(
                    format!("{path}.xfs"),
                    "xfs options given for a filesystem that is not xfs",
                );
            }
        }
    }
}

document_kind! {
    /// `UserVolumeConfig`: a volume for workloads, mounted under `/var/mnt/<name>`.
    pub struct UserVolumeConfig = "UserVolumeConfig", named {
        /// How the volume is backed (`partition` when unset).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub volume_type: Option<VolumeType>,
        /// Where the volume is created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provisioning: Option<VolumeProvisioning>,
        /// The filesystem.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub filesystem: Option<UserVolumeFilesystem>,
        /// Encryption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub encryption: Option<EncryptionSpec>,
        /// Mount options.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mount: Option<VolumeMount>,
        /// Periodic trim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trim: Option<TrimSpec>,
        /// Periodic scrub.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrub: Option<ScrubSpec>,
    }
}

document_kind! {
    /// `RawVolumeConfig`: an unformatted partition.
    pub struct RawVolumeConfig = "RawVolumeConfig", named {
        /// Where the volume is created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provisioning: Option<VolumeProvisioning>,
        /// Encryption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub encryption: Option<EncryptionSpec>,
    }
}

document_kind! {
    /// `SwapVolumeConfig`: a swap partition.
    pub struct SwapVolumeConfig = "SwapVolumeConfig", named {
        /// Where the volume is created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provisioning: Option<VolumeProvisioning>,
        /// Encryption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub encryption: Option<EncryptionSpec>,
    }
}

/// How an existing volume is found (`ExistingVolumeConfig.discovery`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeDiscovery {
    /// CEL expression over `volume` (and `disk`) that finds the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_selector: Option<DiskSelector>,
}

/// Mount options of an existing volume (`ExistingVolumeConfig.mount`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExistingVolumeMount {
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Mount with `noatime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_access_time: Option<bool>,
    /// Mount with `nosuid`/`nodev` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
}

document_kind! {
    /// `ExistingVolumeConfig`: a volume already on a disk, mounted under `/var/mnt/<name>`.
    pub struct ExistingVolumeConfig = "ExistingVolumeConfig", named {
        /// How the volume is found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub discovery: Option<VolumeDiscovery>,
        /// Mount options.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mount: Option<ExistingVolumeMount>,
        /// Periodic trim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trim: Option<TrimSpec>,
        /// Periodic scrub.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrub: Option<ScrubSpec>,
    }
}

/// A virtiofs share (`ExternalVolumeConfig.mount.virtiofs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtiofsMount {
    /// The share's tag.
    #[serde(default)]
    pub tag: String,
}

/// Mount options of an external volume (`ExternalVolumeConfig.mount`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalVolumeMount {
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Mount with `noatime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_access_time: Option<bool>,
    /// Mount with `nosuid`/`nodev` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// The virtiofs share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtiofs: Option<VirtiofsMount>,
}

document_kind! {
    /// `ExternalVolumeConfig`: a volume from outside the machine (a virtiofs share).
    pub struct ExternalVolumeConfig = "ExternalVolumeConfig", named {
        /// The filesystem; only `virtiofs` is supported.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub filesystem_type: Option<FilesystemType>,
        /// Mount options.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mount: Option<ExternalVolumeMount>,
    }
}

/// `Kind "name"`, the start of every path of a named volume document.
fn document_path(kind: &str, name: &str) -> String {
    format!("{kind} {name:?}")
}

fn check_scrub(path: &str, scrub: Option<&ScrubSpec>, f: &mut Findings) {
    check_scrub_interval(
        format!("{path}.scrub.interval"),
        scrub.and_then(|s| s.interval.as_ref()),
        f,
    );
}

impl CheckDocument for VolumeConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = document_path(kind, &self.name);
        if !SYSTEM_VOLUMES.contains(&self.name.as_str()) {
            f.error(
                format!("{kind}.name"),
                format!(
                    "{:?} is not a system volume (one of {})",
                    self.name,
                    SYSTEM_VOLUMES.join(", ")
                ),
            );
            return;
        }
        let provisioning = self.provisioning.clone().unwrap_or_default();
        let mount_set = self.mount.as_ref().is_some_and(|m| !m.is_empty());
        match self.name.as_str() {
            "STATE" => {
                if provisioning.is_requested() {
                    f.error(
                        format!("{path}.provisioning"),
                        "the STATE volume cannot be provisioned",
                    );
                }
                let keys = self.encryption.iter().flat_map(|e| &e.keys);
                for (i, key) in keys.enumerate() {
                    if key.lock_to_state == Some(true) {
                        f.error(
                            format!("{path}.encryption.keys[{i}].lockToState"),
                            "a key of the STATE volume cannot be locked to STATE",
                        );
                    }
                }
                if mount_set {
                    f.error(
                        format!("{path}.mount"),
                        "mount options are not allowed for the STATE volume",
                    );
                }
            }
            "IMAGECACHE" => {
                if mount_set {
                    f.error(
                        format!("{path}.mount"),
                        "mount options are not allowed for the IMAGECACHE volume",
                    );
                }
                if self.filesystem.as_ref().is_some_and(|fs| fs.xfs.is_some()) {
                    f.error(
                        format!("{path}.filesystem"),
                        "filesystem options are not allowed for the IMAGECACHE volume",
                    );
                }
            }
            "ETCD" | "CRI" | "KUBELET" | "LOG" if mount_set && !provisioning.is_requested() => {
                f.error(
                    format!("{path}.mount"),
                    "mount options need the volume on a dedicated partition (set provisioning)",
                );
            }
            _ => {}
        }
        provisioning.check(&format!("{path}.provisioning"), false, true, f);
        if let Some(encryption) = &self.encryption {
            encryption.check(&format!("{path}.encryption"), f);
        }
        check_scrub(&path, self.scrub.as_ref(), f);

        let encrypted = self.encryption.as_ref().is_some_and(|e| e.is_enabled());
        let legacy = v1alpha1
            .and_then(|c| c.machine.as_ref())
            .and_then(|m| m.system_disk_encryption.as_ref());
        let legacy_set = match self.name.as_str() {
            "STATE" => legacy.is_some_and(|l| l.state.is_some()),
            "EPHEMERAL" => legacy.is_some_and(|l| l.ephemeral.is_some()),
            _ => false,
        };
        if encrypted && legacy_set {
            f.error(
                format!("{path}.encryption"),
                format!(
                    "the v1alpha1 document also encrypts {} (machine.systemDiskEncryption); use one or the other",
                    self.name
                ),
            );
        }
    }
}

impl CheckDocument for UserVolumeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = document_path(kind, &self.name);
        f.check(
            format!("{kind}.name"),
            volume_name(&self.name, Some(MAX_PREFIXED_NAME_LENGTH), false),
        );
        let provisioning = self.provisioning.clone().unwrap_or_default();
        let filesystem = self.filesystem.clone().unwrap_or_default();
        let encryption = self.encryption.clone().unwrap_or_default();
        match self.volume_type.unwrap_or(VolumeType::Partition) {
            VolumeType::Directory => {
                let given = [
                    ("provisioning", provisioning.is_requested()),
                    ("encryption", !encryption.is_empty()),
                    ("filesystem", !filesystem.is_empty()),
                    (
                        "mount.disableAccessTime",
                        self.mount
                            .as_ref()
                            .is_some_and(|m| m.disable_access_time.is_some()),
                    ),
                ];
                for (field, set) in given {
                    if set {
                        f.error(
                            format!("{path}.{field}"),
                            "not applicable to a directory volume",
                        );
                    }
                }
            }
            volume_type @ (VolumeType::Disk | VolumeType::Partition) => {
                let sized = volume_type == VolumeType::Partition;
                provisioning.check(&format!("{path}.provisioning"), true, sized, f);
                filesystem.check(&format!("{path}.filesystem"), f);
                encryption.check(&format!("{path}.encryption"), f);
            }
            other => f.error(
                format!("{path}.volumeType"),
                format!(
                    "volume type {} is not supported for user volumes (use partition, disk or directory)",
                    other.as_str()
                ),
            ),
        }
        check_scrub(&path, self.scrub.as_ref(), f);
    }
}

/// The checks of raw and swap volumes, which have the same shape.
fn check_partition_volume(
    kind: &str,
    name: &str,
    provisioning: Option<&VolumeProvisioning>,
    encryption: Option<&EncryptionSpec>,
    f: &mut Findings,
) {
    let path = document_path(kind, name);
    f.check(
        format!("{kind}.name"),
        volume_name(name, Some(MAX_PREFIXED_NAME_LENGTH), false),
    );
    provisioning
        .cloned()
        .unwrap_or_default()
        .check(&format!("{path}.provisioning"), true, true, f);
    if let Some(encryption) = encryption {
        encryption.check(&format!("{path}.encryption"), f);
    }
}

impl CheckDocument for RawVolumeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        check_partition_volume(
            Self::KIND,
            &self.name,
            self.provisioning.as_ref(),
            self.encryption.as_ref(),
            f,
        );
    }
}

impl CheckDocument for SwapVolumeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        check_partition_volume(
            Self::KIND,
            &self.name,
            self.provisioning.as_ref(),
            self.encryption.as_ref(),
            f,
        );
    }
}

impl CheckDocument for ExistingVolumeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = document_path(kind, &self.name);
        f.check(format!("{kind}.name"), volume_name(&self.name, None, false));
        let selector = self
            .discovery
            .as_ref()
            .and_then(|d| d.volume_selector.as_ref())
            .and_then(DiskSelector::expression);
        let selector_path = format!("{path}.discovery.volumeSelector.match");
        match selector {
            Some(expression) => f.check(selector_path, cel_expression(expression)),
            None => f.error(selector_path, "a volume selector is required"),
        }
        check_scrub(&path, self.scrub.as_ref(), f);
    }
}

impl CheckDocument for ExternalVolumeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = document_path(kind, &self.name);
        f.check(
            format!("{kind}.name"),
            volume_name(&self.name, Some(MAX_PREFIXED_NAME_LENGTH), false),
        );
        match self.filesystem_type {
            Some(FilesystemType::Virtiofs) => {
                match self.mount.as_ref().and_then(|m| m.virtiofs.as_ref()) {
                    None => f.error(
                        format!("{path}.mount.virtiofs"),
                        "virtiofs mount options are required",
                    ),
                    Some(virtiofs) if virtiofs.tag.is_empty() => f.error(
                        format!("{path}.mount.virtiofs.tag"),
                        "the virtiofs tag is required",
                    ),
                    Some(_) => {}
                }
            }
            other => f.error(
                format!("{path}.filesystemType"),
                format!(
                    "filesystem type {} is not supported for external volumes (use virtiofs)",
                    other.unwrap_or(FilesystemType::None).as_str()
                ),
            ),
        }
    }
}
