//! Runtime kinds: kernel parameters and environment here; files, modules and udev rules in
//! [`files`]; logging, events, the watchdog, OOM handling, the security profile and unattended
//! installs in [`system`].

mod files;
mod system;

use std::collections::BTreeMap;

use super::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

pub use files::{
    EtcFileConfig, ExtensionServiceConfig, ExtensionServiceConfigFile, KernelModuleConfig,
    SysfsConfig, UdevRulesConfig,
};
pub use system::{
    EventSinkConfig, InstallDiskSelector, InstallProvisioning, InstallerSpec, KmsgLogConfig,
    OomConfig, SecurityProfileConfig, UnattendedInstallConfig, WatchdogTimerConfig,
};

document_kind! {
    /// `SysctlConfig`: kernel parameters.
    pub struct SysctlConfig = "SysctlConfig" {
        /// Parameter name to value.
        #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
        pub params: BTreeMap<String, String>,
    }
}

document_kind! {
    /// `EnvironmentConfig`: environment variables for system services.
    pub struct EnvironmentConfig = "EnvironmentConfig" {
        /// Variable name to value.
        #[serde(
        default,
        deserialize_with = "crate::v1alpha1::string_map::deserialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
        pub variables: BTreeMap<String, String>,
    }
}

impl CheckDocument for SysctlConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        for key in self.params.keys() {
            if key.is_empty() || key.contains(char::is_whitespace) {
                f.error(
                    format!("{kind}.params"),
                    format!("invalid parameter name {key:?}"),
                );
            }
        }
    }
}

impl CheckDocument for EnvironmentConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        for (name, value) in &self.variables {
            f.check(
                format!("{kind}.variables.{name}"),
                formats::environment_variable(name, value),
            );
        }
    }
}
