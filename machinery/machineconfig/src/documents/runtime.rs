//! Runtime kinds: `SysctlConfig`, `EnvironmentConfig`.

use std::collections::BTreeMap;

use super::document_kind;

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
