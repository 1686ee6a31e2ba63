//! `machine.disks` and `machine.systemDiskEncryption`.

use serde::{Deserialize, Serialize};

use super::DiskSize;

/// `machine.disks[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiskConfig {
    /// Device path (`/dev/sdb`).
    #[serde(default)]
    pub device: String,
    /// Partitions to create, in order.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub partitions: Vec<DiskPartition>,
}

/// `machine.disks[].partitions[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiskPartition {
    /// Size; absent or 0 means "the rest of the disk" (last partition only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<DiskSize>,
    /// Where the partition is mounted.
    #[serde(default)]
    pub mountpoint: String,
}

/// `machine.systemDiskEncryption`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SystemDiskEncryption {
    /// Encryption of the STATE partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<EncryptionConfig>,
    /// Encryption of the EPHEMERAL partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<EncryptionConfig>,
}

/// One encrypted partition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionConfig {
    /// `luks2`.
    #[serde(default)]
    pub provider: String,
    /// Key slots.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub keys: Vec<EncryptionKey>,
    /// Cipher (`aes-xts-plain64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// Key size in bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    /// Sector size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u64>,
    /// Extra cryptsetup options.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// One key slot: exactly one of `static`, `nodeID`, `kms`, `tpm`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncryptionKey {
    /// A fixed passphrase.
    #[serde(rename = "static", default, skip_serializing_if = "Option::is_none")]
    pub static_key: Option<StaticKey>,
    /// A key derived from the node identity.
    #[serde(rename = "nodeID", default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeIdKey>,
    /// A key sealed by a KMS server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms: Option<KmsKey>,
    /// A key sealed by the TPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<TpmKey>,
    /// LUKS key slot number.
    #[serde(default)]
    pub slot: u32,
    /// Bind the key to the STATE partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_to_state: Option<bool>,
}

/// `static` key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticKey {
    /// The passphrase.
    #[serde(default)]
    pub passphrase: String,
}

/// `nodeID` key (no settings).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeIdKey {}

/// `kms` key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KmsKey {
    /// KMS server endpoint.
    #[serde(default)]
    pub endpoint: String,
}

/// `tpm` key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TpmKey {
    /// Refuse to enroll unless Secure Boot is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_secureboot_status_on_enroll: Option<bool>,
    /// PCRs the key is sealed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcrs: Option<Vec<u32>>,
}
