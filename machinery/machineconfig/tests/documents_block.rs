//! Block and storage document kinds: full documents round-trip, unknown fields are refused,
//! invalid values are reported with the kind and field, named kinds refuse duplicates.

mod documents_support;

use documents_support::*;
use machineconfig::documents::{Document, EncryptionProvider, FilesystemType, VolumeType};

const GROUP: &str = "block";

/// (fixture, kind, named).
const KINDS: &[(&str, &str, bool)] = &[
    ("volume.yaml", "VolumeConfig", true),
    ("user_volume.yaml", "UserVolumeConfig", true),
    ("raw_volume.yaml", "RawVolumeConfig", true),
    ("existing_volume.yaml", "ExistingVolumeConfig", true),
    ("external_volume.yaml", "ExternalVolumeConfig", true),
    ("swap_volume.yaml", "SwapVolumeConfig", true),
    ("zswap.yaml", "ZswapConfig", false),
    ("filesystem_scrub.yaml", "FilesystemScrubConfig", false),
    ("filesystem_trim.yaml", "FilesystemTrimConfig", false),
    ("lvm_volume_group.yaml", "LVMVolumeGroupConfig", true),
    ("lvm_logical_volume.yaml", "LVMLogicalVolumeConfig", true),
    ("raid_array.yaml", "RAIDArrayConfig", true),
];

fn doc(kind: &str, body: &str) -> String {
    format!("apiVersion: v1alpha1\nkind: {kind}\n{body}")
}

#[test]
fn full_documents_round_trip() {
    for (file, kind, _) in KINDS {
        assert_valid_round_trip(&fixture(GROUP, file), kind);
    }
}

#[test]
fn decoded_values() {
    let config = assert_valid_round_trip(&fixture(GROUP, "volume.yaml"), "VolumeConfig");
    let Document::Volume(volume) = &config.documents[0] else {
        panic!("not a VolumeConfig");
    };
    let provisioning = volume.provisioning.as_ref().expect("provisioning");
    assert_eq!(
        provisioning.min_size.as_ref().map(|s| s.bytes()),
        Some(20 << 30)
    );
    let max = provisioning.max_size.as_ref().expect("maxSize");
    assert!(max.is_relative());
    let encryption = volume.encryption.as_ref().expect("encryption");
    assert_eq!(encryption.provider, Some(EncryptionProvider::Luks2));
    assert_eq!(encryption.keys.len(), 4);
    assert!(encryption.keys[2].node_id.is_some());

    let config = assert_valid_round_trip(&fixture(GROUP, "user_volume.yaml"), "UserVolumeConfig");
    let Document::UserVolume(user) = &config.documents[0] else {
        panic!("not a UserVolumeConfig");
    };
    assert_eq!(user.volume_type, Some(VolumeType::Partition));
    assert_eq!(
        user.filesystem.as_ref().and_then(|f| f.filesystem_type),
        Some(FilesystemType::Xfs)
    );

    let config = assert_valid_round_trip(&fixture(GROUP, "raw_volume.yaml"), "RawVolumeConfig");
    let Document::RawVolume(raw) = &config.documents[0] else {
        panic!("not a RawVolumeConfig");
    };
    let provisioning = raw.provisioning.as_ref().expect("provisioning");
    assert_eq!(
        provisioning.min_size.as_ref().map(|s| s.bytes()),
        Some(1 << 30)
    );
    let max = provisioning.max_size.as_ref().expect("maxSize");
    assert!(max.is_negative());
    assert_eq!(max.bytes(), Some(10 << 30));
}

#[test]
fn unknown_fields_are_rejected() {
    for (file, _, _) in KINDS {
        assert_unknown_top_level_field(&fixture(GROUP, file));
    }
    let (line, path, _) = decode_error(&doc(
        "UserVolumeConfig",
        "name: a\nencryption:\n  provider: luks2\n  keys:\n    - slot: 0\n      tpm:\n        pcr: [7]\n",
    ));
    assert_eq!(
        (line, path.as_str()),
        (Some(9), "encryption.keys[0].tpm.pcr")
    );
    let (line, path, _) = decode_error(&doc(
        "ExistingVolumeConfig",
        "name: a\ndiscovery:\n  diskSelector:\n    match: 'true'\n",
    ));
    assert_eq!((line, path.as_str()), (Some(5), "discovery.diskSelector"));
}

#[test]
fn bad_sizes_and_enums_are_decode_errors() {
    let (line, path, message) = decode_error(&doc(
        "UserVolumeConfig",
        "name: a\nprovisioning:\n  maxSize: 150%\n",
    ));
    assert_eq!(
        (line, path.as_str()),
        (Some(5), "provisioning.maxSize"),
        "{message}"
    );
    let (_, path, _) = decode_error(&doc(
        "RawVolumeConfig",
        "name: a\nprovisioning:\n  minSize: ten gigs\n",
    ));
    assert_eq!(path, "provisioning.minSize");
    let (_, path, _) = decode_error(&doc("UserVolumeConfig", "name: a\nvolumeType: lvm\n"));
    assert_eq!(path, "volumeType");
    let (_, path, _) = decode_error(&doc("RAIDArrayConfig", "name: a\nlevel: raid5\n"));
    assert_eq!(path, "level");
    let (_, path, _) = decode_error(&doc("FilesystemTrimConfig", "interval: -1h\n"));
    assert_eq!(path, "interval");
}

const SELECTOR: &str = "provisioning:\n  diskSelector:\n    match: 'true'\n";

#[test]
fn invalid_values_are_reported() {
    // VolumeConfig
    assert_invalid(
        &doc("VolumeConfig", "name: DATA\n"),
        "VolumeConfig.name",
        "not a system volume",
    );
    assert_invalid(
        &doc(
            "VolumeConfig",
            "name: STATE\nprovisioning:\n  maxSize: 1GiB\n",
        ),
        "VolumeConfig \"STATE\".provisioning",
        "cannot be provisioned",
    );
    assert_invalid(
        &doc(
            "VolumeConfig",
            "name: STATE\nencryption:\n  provider: luks2\n  keys:\n    - slot: 0\n      nodeID: {}\n      lockToState: true\n",
        ),
        "VolumeConfig \"STATE\".encryption.keys[0].lockToState",
        "locked",
    );
    assert_invalid(
        &doc("VolumeConfig", "name: IMAGECACHE\nmount:\n  secure: true\n"),
        "VolumeConfig \"IMAGECACHE\".mount",
        "not allowed",
    );
    assert_invalid(
        &doc(
            "VolumeConfig",
            "name: ETCD\nmount:\n  disableAccessTime: true\n",
        ),
        "VolumeConfig \"ETCD\".mount",
        "dedicated partition",
    );
    assert_invalid(
        &doc(
            "VolumeConfig",
            "name: EPHEMERAL\nprovisioning:\n  minSize: 10GiB\n  maxSize: 5GiB\n",
        ),
        "VolumeConfig \"EPHEMERAL\".provisioning.minSize",
        "larger than maxSize",
    );
    assert_invalid(
        &doc(
            "VolumeConfig",
            "name: EPHEMERAL\nencryption:\n  provider: none\n  keys:\n    - slot: 0\n      nodeID: {}\n",
        ),
        "VolumeConfig \"EPHEMERAL\".encryption.provider",
        "luks2",
    );
    assert_invalid(
        &doc(
            "VolumeConfig",
            "name: EPHEMERAL\nencryption:\n  provider: luks2\n  keys:\n    - slot: 1\n      nodeID: {}\n    - slot: 1\n      tpm:\n        options:\n          pcrs: [24]\n    - slot: 2\n",
        ),
        "VolumeConfig \"EPHEMERAL\".encryption.keys[1].slot",
        "used twice",
    );
    let errors = validation_errors(&doc(
        "VolumeConfig",
        "name: EPHEMERAL\nencryption:\n  provider: luks2\n  keys:\n    - slot: 1\n      tpm:\n        options:\n          pcrs: [24]\n    - slot: 2\n",
    ));
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.contains(&"VolumeConfig \"EPHEMERAL\".encryption.keys[0].tpm.options.pcrs"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"VolumeConfig \"EPHEMERAL\".encryption.keys[1]"),
        "{paths:?}"
    );
    assert_invalid(
        &doc(
            "VolumeConfig",
            "name: EPHEMERAL\nencryption:\n  provider: luks2\n",
        ),
        "VolumeConfig \"EPHEMERAL\".encryption.keys",
        "at least one key",
    );
    assert_invalid(
        &doc("VolumeConfig", "name: LOG\nscrub:\n  interval: 5s\n"),
        "VolumeConfig \"LOG\".scrub.interval",
        "minimum",
    );

    // UserVolumeConfig
    assert_invalid(
        &doc(
            "UserVolumeConfig",
            &format!("name: a.b\n{SELECTOR}  maxSize: 1GiB\n"),
        ),
        "UserVolumeConfig.name",
        "may only contain",
    );
    assert_invalid(
        &doc(
            "UserVolumeConfig",
            &format!("name: {}\n{SELECTOR}  maxSize: 1GiB\n", "x".repeat(35)),
        ),
        "UserVolumeConfig.name",
        "longer than 34",
    );
    assert_invalid(
        &doc("UserVolumeConfig", "name: a\n"),
        "UserVolumeConfig \"a\".provisioning.diskSelector.match",
        "required",
    );
    assert_invalid(
        &doc("UserVolumeConfig", &format!("name: a\n{SELECTOR}")),
        "UserVolumeConfig \"a\".provisioning",
        "minSize or maxSize",
    );
    assert_invalid(
        &doc(
            "UserVolumeConfig",
            &format!("name: a\nvolumeType: disk\n{SELECTOR}  maxSize: 1GiB\n"),
        ),
        "UserVolumeConfig \"a\".provisioning",
        "do not apply",
    );
    assert_invalid(
        &doc(
            "UserVolumeConfig",
            "name: a\nvolumeType: directory\nfilesystem:\n  type: ext4\n",
        ),
        "UserVolumeConfig \"a\".filesystem",
        "directory",
    );
    assert_invalid(
        &doc("UserVolumeConfig", "name: a\nvolumeType: tmpfs\n"),
        "UserVolumeConfig \"a\".volumeType",
        "not supported",
    );
    assert_invalid(
        &doc(
            "UserVolumeConfig",
            &format!("name: a\n{SELECTOR}  maxSize: 1GiB\nfilesystem:\n  type: btrfs\n"),
        ),
        "UserVolumeConfig \"a\".filesystem.type",
        "not supported",
    );
    assert_invalid(
        &doc(
            "UserVolumeConfig",
            &format!(
                "name: a\n{SELECTOR}  maxSize: 1GiB\nfilesystem:\n  type: ext4\n  projectQuotaSupport: true\n"
            ),
        ),
        "UserVolumeConfig \"a\".filesystem.projectQuotaSupport",
        "xfs",
    );
    assert_invalid(
        &doc(
            "UserVolumeConfig",
            "name: a\nprovisioning:\n  diskSelector:\n    match: 'disk.size > (1u * GB'\n  maxSize: 1GiB\n",
        ),
        "UserVolumeConfig \"a\".provisioning.diskSelector.match",
        "never closed",
    );
    assert_invalid(
        &doc(
            "UserVolumeConfig",
            &format!("name: a\n{SELECTOR}  minSize: -1GiB\n"),
        ),
        "UserVolumeConfig \"a\".provisioning.minSize",
        "negative",
    );

    // RawVolumeConfig, SwapVolumeConfig
    assert_invalid(
        &doc(
            "RawVolumeConfig",
            &format!("name: r_1\n{SELECTOR}  maxSize: 1GiB\n"),
        ),
        "RawVolumeConfig.name",
        "may only contain",
    );
    assert_invalid(
        &doc(
            "RawVolumeConfig",
            "name: r\nprovisioning:\n  maxSize: 1GiB\n",
        ),
        "RawVolumeConfig \"r\".provisioning.diskSelector.match",
        "required",
    );
    assert_invalid(
        &doc("SwapVolumeConfig", &format!("name: s\n{SELECTOR}")),
        "SwapVolumeConfig \"s\".provisioning",
        "minSize or maxSize",
    );
    assert_invalid(
        &doc(
            "SwapVolumeConfig",
            &format!(
                "name: s\n{SELECTOR}  maxSize: 1GiB\nencryption:\n  keys:\n    - slot: 0\n      nodeID: {{}}\n"
            ),
        ),
        "SwapVolumeConfig \"s\".encryption.provider",
        "luks2",
    );

    // ExistingVolumeConfig
    assert_invalid(
        &doc("ExistingVolumeConfig", "name: e\n"),
        "ExistingVolumeConfig \"e\".discovery.volumeSelector.match",
        "required",
    );
    assert_invalid(
        &doc(
            "ExistingVolumeConfig",
            "name: e/x\ndiscovery:\n  volumeSelector:\n    match: 'true'\n",
        ),
        "ExistingVolumeConfig.name",
        "may only contain",
    );

    // ExternalVolumeConfig
    assert_invalid(
        &doc("ExternalVolumeConfig", "name: x\nfilesystemType: ext4\n"),
        "ExternalVolumeConfig \"x\".filesystemType",
        "virtiofs",
    );
    assert_invalid(
        &doc("ExternalVolumeConfig", "name: x\n"),
        "ExternalVolumeConfig \"x\".filesystemType",
        "virtiofs",
    );
    assert_invalid(
        &doc(
            "ExternalVolumeConfig",
            "name: x\nfilesystemType: virtiofs\n",
        ),
        "ExternalVolumeConfig \"x\".mount.virtiofs",
        "required",
    );
    assert_invalid(
        &doc(
            "ExternalVolumeConfig",
            "name: x\nfilesystemType: virtiofs\nmount:\n  virtiofs:\n    tag: ''\n",
        ),
        "ExternalVolumeConfig \"x\".mount.virtiofs.tag",
        "required",
    );

    // ZswapConfig, FilesystemScrubConfig
    assert_invalid(
        &doc("ZswapConfig", "maxPoolPercent: 101\n"),
        "ZswapConfig.maxPoolPercent",
        "percentage",
    );
    assert_invalid(
        &doc("ZswapConfig", "maxPoolPercent: -1\n"),
        "ZswapConfig.maxPoolPercent",
        "percentage",
    );
    assert_invalid(
        &doc("FilesystemScrubConfig", "interval: 9s\n"),
        "FilesystemScrubConfig.interval",
        "minimum",
    );

    // LVM and RAID
    assert_invalid(
        &doc("LVMVolumeGroupConfig", "name: vg0\n"),
        "LVMVolumeGroupConfig \"vg0\".provisioning.volumeSelector.match",
        "required",
    );
    assert_invalid(
        &doc(
            "LVMVolumeGroupConfig",
            &format!(
                "name: {}\nprovisioning:\n  volumeSelector:\n    match: 'true'\n",
                "v".repeat(64)
            ),
        ),
        "LVMVolumeGroupConfig.name",
        "longer than 63",
    );
    let lv = |extra: &str| {
        doc(
            "LVMLogicalVolumeConfig",
            &format!("name: lv0\n{extra}provisioning:\n  volumeGroup: vg0\n  maxSize: 10GiB\n"),
        )
    };
    assert_invalid(
        &lv("mirrors: 1\n"),
        "LVMLogicalVolumeConfig \"lv0\".mirrors",
        "raid1 and raid10",
    );
    assert_invalid(
        &lv("type: raid0\nstripes: 1\n"),
        "LVMLogicalVolumeConfig \"lv0\".stripes",
        "at least 2",
    );
    assert_invalid(
        &lv("type: raid1\nmirrors: 0\n"),
        "LVMLogicalVolumeConfig \"lv0\".mirrors",
        "at least 1",
    );
    assert_invalid(
        &lv("type: raid1\nstripes: 2\n"),
        "LVMLogicalVolumeConfig \"lv0\".stripes",
        "raid0 and raid10",
    );
    assert_invalid(
        &doc("LVMLogicalVolumeConfig", "name: lv0\n"),
        "LVMLogicalVolumeConfig \"lv0\".provisioning.volumeGroup",
        "required",
    );
    assert_invalid(
        &doc("LVMLogicalVolumeConfig", "name: lv0\n"),
        "LVMLogicalVolumeConfig \"lv0\".provisioning.maxSize",
        "required",
    );
    assert_invalid(
        &doc(
            "LVMLogicalVolumeConfig",
            "name: lv0\nprovisioning:\n  volumeGroup: vg\n  minSize: 2GiB\n  maxSize: 1GiB\n",
        ),
        "LVMLogicalVolumeConfig \"lv0\".provisioning.minSize",
        "larger",
    );
    assert_invalid(
        &doc(
            "LVMLogicalVolumeConfig",
            "name: lv0\nprovisioning:\n  volumeGroup: vg\n  maxSize: -10%\n",
        ),
        "LVMLogicalVolumeConfig \"lv0\".provisioning.maxSize",
        "negative",
    );
    assert_invalid(
        &doc(
            "RAIDArrayConfig",
            &format!(
                "name: {}\nprovisioning:\n  volumeSelector:\n    match: 'true'\n",
                "r".repeat(33)
            ),
        ),
        "RAIDArrayConfig.name",
        "longer than 32",
    );
    assert_invalid(
        &doc(
            "RAIDArrayConfig",
            "name: md0\nprovisioning:\n  volumeSelector:\n    match: 'volume.name == \"a\"]'\n",
        ),
        "RAIDArrayConfig \"md0\".provisioning.volumeSelector.match",
        "unbalanced",
    );
}

#[test]
fn system_disk_encryption_in_both_places_conflicts() {
    let volume = doc(
        "VolumeConfig",
        "name: STATE\nencryption:\n  provider: luks2\n  keys:\n    - slot: 0\n      nodeID: {}\n",
    );
    let legacy = "  systemDiskEncryption:\n    state:\n      provider: luks2\n      keys:\n        - slot: 0\n          nodeID: {}\n";
    assert_invalid(
        &with_v1alpha1(legacy, &volume),
        "VolumeConfig \"STATE\".encryption",
        "systemDiskEncryption",
    );
    let errors = validation_errors(&with_v1alpha1("", &volume));
    assert!(
        errors.iter().all(|e| !e.path.starts_with("VolumeConfig")),
        "{errors:?}"
    );
}

#[test]
fn user_and_existing_volumes_cannot_share_a_name() {
    let user = fixture(GROUP, "user_volume.yaml").replace("name: pg-data", "name: shared");
    let existing = fixture(GROUP, "existing_volume.yaml").replace("name: media", "name: shared");
    let both = format!("{user}---\n{existing}");
    assert_invalid(&both, "ExistingVolumeConfig \"shared\"", "UserVolumeConfig");
    let apart = format!(
        "{}---\n{}",
        fixture(GROUP, "user_volume.yaml"),
        fixture(GROUP, "existing_volume.yaml")
    );
    let config = machineconfig::Config::from_yaml(&apart).expect("decodes");
    assert!(
        config
            .validate(machineconfig::RuntimeMode::Metal, false)
            .is_ok()
    );
}

#[test]
fn named_kinds_refuse_duplicates() {
    for (file, kind, named) in KINDS {
        if *named {
            assert_duplicate_refused(&fixture(GROUP, file), kind);
        }
    }
}
