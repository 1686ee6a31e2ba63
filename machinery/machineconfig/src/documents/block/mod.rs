//! Block and storage kinds: volumes ([`volumes`]), their shared parts ([`common`], [`size`]),
//! swap/scrub/trim settings ([`tuning`]), and LVM and RAID ([`storage`]).

mod common;
mod size;
mod storage;
mod tuning;
mod volumes;

pub use common::{
    DiskSelector, EncryptionKey, EncryptionKeyKms, EncryptionKeyNodeId, EncryptionKeyStatic,
    EncryptionKeyTpm, EncryptionKeyTpmOptions, EncryptionProvider, EncryptionSpec, FilesystemType,
    ScrubSpec, TrimSpec, VolumeProvisioning, XfsSpec,
};
pub use size::{ByteSize, VolumeSize};
pub use storage::{
    LvmLogicalVolumeConfig, LvmLogicalVolumeProvisioning, LvmLogicalVolumeType,
    LvmVolumeGroupConfig, RaidArrayConfig, RaidLevel, RaidMetadata, VolumeSelectorProvisioning,
};
pub use tuning::{FilesystemScrubConfig, FilesystemTrimConfig, ZswapConfig};
pub use volumes::{
    ExistingVolumeConfig, ExistingVolumeMount, ExternalVolumeConfig, ExternalVolumeMount,
    RawVolumeConfig, SwapVolumeConfig, SystemVolumeFilesystem, UserVolumeConfig,
    UserVolumeFilesystem, VirtiofsMount, VolumeConfig, VolumeDiscovery, VolumeMount, VolumeType,
};

/// Checks a CEL expression as far as talos-rs can without a CEL implementation: it must not be
/// empty, and its brackets and string quotes must be balanced.
pub(crate) fn cel_expression(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the expression is empty".to_string());
    }
    let mut open: Vec<char> = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut closed = false;
                while let Some(inner) = chars.next() {
                    if inner == '\\' {
                        chars.next();
                    } else if inner == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(format!("{text:?}: unterminated string literal"));
                }
            }
            '(' | '[' | '{' => open.push(c),
            ')' | ']' | '}' => {
                let expected = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open.pop() != Some(expected) {
                    return Err(format!("{text:?}: unbalanced {c:?}"));
                }
            }
            _ => {}
        }
    }
    match open.last() {
        Some(c) => Err(format!("{text:?}: {c:?} is never closed")),
        None => Ok(()),
    }
}

/// A volume or array name: 1 to `max_len` characters (no limit when `None`), ASCII letters and
/// digits, `-`, and `_` when `underscore` is allowed.
pub(crate) fn volume_name(
    name: &str,
    max_len: Option<usize>,
    underscore: bool,
) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is required".to_string());
    }
    if let Some(max) = max_len
        && name.len() > max
    {
        return Err(format!("{name:?} is longer than {max} characters"));
    }
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || (underscore && c == '_'));
    if !valid {
        let allowed = if underscore {
            "ASCII letters, digits, '-' and '_'"
        } else {
            "ASCII letters, digits and '-'"
        };
        return Err(format!("{name:?} may only contain {allowed}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{cel_expression, volume_name};

    #[test]
    fn cel_expressions() {
        assert!(cel_expression(r#"disk.transport == "nvme""#).is_ok());
        assert!(
            cel_expression("disk.size > 120u * GB && (disk.rotational || !system_disk)").is_ok()
        );
        assert!(cel_expression(r#"volume.name in ["a)", 'b']"#).is_ok());
        assert!(cel_expression("  ").is_err());
        assert!(cel_expression("(disk.size > 1").is_err());
        assert!(cel_expression("disk.size > 1)").is_err());
        assert!(cel_expression(r#"disk.model == "x"#).is_err());
        assert!(cel_expression("[a)").is_err());
    }

    #[test]
    fn volume_names() {
        assert!(volume_name("data-1", Some(34), false).is_ok());
        assert!(volume_name("", Some(34), false).is_err());
        assert!(volume_name(&"a".repeat(35), Some(34), false).is_err());
        assert!(volume_name("a_b", Some(34), false).is_err());
        assert!(volume_name("a_b", Some(63), true).is_ok());
        assert!(volume_name("a.b", None, true).is_err());
    }
}
