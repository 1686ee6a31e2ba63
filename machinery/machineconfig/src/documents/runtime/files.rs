//! Runtime kinds that put things on the machine: `EtcFileConfig`, `KernelModuleConfig`,
//! `UdevRulesConfig`, `SysfsConfig`, `ExtensionServiceConfig`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::{FileMode, V1Alpha1Config};
use crate::validate::Findings;

document_kind! {
    /// `EtcFileConfig`: a file under `/etc` written by the user.
    pub struct EtcFileConfig = "EtcFileConfig", named {
        /// Permissions of the file (0644 when unset).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mode: Option<FileMode>,
        /// The file's contents.
        #[serde(default)]
        pub contents: String,
    }
}

document_kind! {
    /// `KernelModuleConfig`: a kernel module to load, by its name.
    pub struct KernelModuleConfig = "KernelModuleConfig", named {
        /// Module parameters (`key=value`).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub parameters: Vec<String>,
    }
}

document_kind! {
    /// `UdevRulesConfig`: extra udev rules.
    pub struct UdevRulesConfig = "UdevRulesConfig" {
        /// Rules, one per entry.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub rules: Vec<String>,
    }
}

document_kind! {
    /// `SysfsConfig`: values written to `/sys`.
    pub struct SysfsConfig = "SysfsConfig" {
        /// Dotted path under `/sys` to value.
        #[serde(
            default,
            deserialize_with = "crate::v1alpha1::string_map::deserialize",
            skip_serializing_if = "BTreeMap::is_empty"
        )]
        pub params: BTreeMap<String, String>,
    }
}

document_kind! {
    /// `ExtensionServiceConfig`: files and environment for a system extension's service.
    pub struct ExtensionServiceConfig = "ExtensionServiceConfig", named {
        /// Files mounted into the service.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub config_files: Vec<ExtensionServiceConfigFile>,
        /// Environment variables (`NAME=value`).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub environment: Vec<String>,
    }
}

/// `ExtensionServiceConfig.configFiles[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtensionServiceConfigFile {
    /// The file's contents.
    #[serde(default)]
    pub content: String,
    /// Where the file is mounted in the service's container.
    #[serde(default)]
    pub mount_path: String,
}

/// Files directly under `/etc` that Talos writes itself.
const MANAGED_ETC_FILES: &[&str] = &[
    "resolv.conf",
    "hosts",
    "machine-id",
    "extensions.yaml",
    "localtime",
    "os-release",
    "xattr.conf",
];

/// Directories under `/etc` that Talos owns.
const MANAGED_ETC_DIRECTORIES: &[&str] = &[
    "apparmor.d",
    "apparmor",
    "ca-certificates",
    "cni",
    "cri",
    "iscsi",
    "kubernetes",
    "lvm",
    "nvme",
    "pki",
    "selinux",
    "ssl",
];

/// A file name relative to `/etc` that stays inside it, is not hidden and is not Talos's own
/// (checked on the name with `.` and `..` resolved, so `a/../cri/x` is Talos's too).
fn etc_file_path(path: &str) -> Result<(), String> {
    let mut parts: Vec<&str> = Vec::new();
    let mut escapes = false;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => escapes |= parts.pop().is_none(),
            _ => parts.push(part),
        }
    }
    if path.starts_with('/') || path.starts_with('.') || escapes || parts.is_empty() {
        return Err(format!(
            "{path:?} must be a relative path inside /etc (not absolute, not hidden, no \"..\" above /etc)"
        ));
    }
    let resolved = parts.join("/");
    let managed = MANAGED_ETC_FILES.contains(&resolved.as_str())
        || MANAGED_ETC_DIRECTORIES.iter().any(|dir| {
            resolved == *dir
                || resolved
                    .strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
    if managed {
        return Err(format!("/etc/{resolved} is managed by Talos"));
    }
    Ok(())
}

impl CheckDocument for EtcFileConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.name.is_empty() {
            f.error(format!("{kind}.name"), "the file name is required");
            return;
        }
        f.check(
            format!("{kind} {:?}.name", self.name),
            etc_file_path(&self.name),
        );
    }
}

impl CheckDocument for KernelModuleConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.name.is_empty() {
            f.error(format!("{kind}.name"), "the module name is required");
        }
    }
}

impl CheckDocument for UdevRulesConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.trim().is_empty() {
                f.error(format!("{kind}.rules[{i}]"), "a rule must not be empty");
            }
        }
    }
}

impl CheckDocument for SysfsConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.params.contains_key("") {
            f.error(format!("{kind}.params"), "a sysfs path must not be empty");
        }
    }
}

impl CheckDocument for ExtensionServiceConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.name.is_empty() {
            f.error(
                format!("{kind}.name"),
                "the extension service name is required",
            );
            return;
        }
        let path = format!("{kind} {:?}", self.name);
        if self.config_files.is_empty() && self.environment.is_empty() {
            f.error(
                &path,
                "configFiles or environment must be given (the document configures nothing)",
            );
        }
        for (i, file) in self.config_files.iter().enumerate() {
            if file.content.is_empty() {
                f.error(
                    format!("{path}.configFiles[{i}].content"),
                    "the file content is required",
                );
            }
            if file.mount_path.is_empty() {
                f.error(
                    format!("{path}.configFiles[{i}].mountPath"),
                    "the mount path is required",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::etc_file_path;

    #[test]
    fn etc_paths() {
        assert!(etc_file_path("nfsmount.conf").is_ok());
        assert!(etc_file_path("foo/bar.conf").is_ok());
        assert!(etc_file_path("foo/../bar.conf").is_ok());
        assert!(etc_file_path("../passwd").is_err());
        assert!(etc_file_path("foo/../../x").is_err());
        assert!(etc_file_path("/etc/x").is_err());
        assert!(etc_file_path(".hidden").is_err());
        assert!(etc_file_path("hosts").is_err());
        assert!(etc_file_path("cni/net.d/x.conf").is_err());
        assert!(etc_file_path("cni").is_err());
        assert!(etc_file_path("cnifoo").is_ok());
    }
}
