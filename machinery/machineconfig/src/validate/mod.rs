//! Validation of a decoded configuration (upstream `v1alpha1_validation.go` and the
//! multi-document kinds' checks).
//!
//! Validation collects every problem instead of stopping at the first; each names the config
//! path it is about, certificate contents (parsing, CA bit, expiry, key match) included.

mod certificates;
mod cluster;
mod documents;
pub(crate) mod formats;
pub(crate) mod kubernetes_names;
mod machine;
mod network;

use std::fmt;

use crate::v1alpha1::{NetworkConfig, V1Alpha1Config, VERSION};
use crate::{Config, ConfigError, MachineType, RuntimeMode};

/// One problem found by validation: where (a YAML path such as
/// `machine.network.interfaces[0].vip`, or a document kind) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationIssue {
    /// The config path the problem is about.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The text of [`ConfigError::Invalid`].
pub(crate) fn format_validation_errors(errors: &[ValidationIssue]) -> String {
    let mut text = match errors.len() {
        1 => "1 error in the configuration:".to_string(),
        n => format!("{n} errors in the configuration:"),
    };
    for error in errors {
        text.push_str(&format!("\n  * {error}"));
    }
    text
}

/// Errors and warnings collected during validation.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    errors: Vec<ValidationIssue>,
    warnings: Vec<ValidationIssue>,
}

impl Findings {
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(ValidationIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records `Err(message)` of a check as an error at `path`.
    pub fn check<T>(&mut self, path: impl Into<String>, result: Result<T, String>) {
        if let Err(message) = result {
            self.error(path, message);
        }
    }

    /// The warnings, or all errors (warnings included when `strict`).
    fn finish(mut self, strict: bool) -> Result<Vec<ValidationIssue>, ConfigError> {
        if strict {
            self.errors.append(&mut self.warnings);
        }
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(ConfigError::Invalid {
                errors: self.errors,
            })
        }
    }
}

impl Config {
    /// Validates the configuration for a machine running in `mode`. Returns the warnings, or
    /// [`ConfigError::Invalid`] with every error found; `strict` turns warnings into errors.
    pub fn validate(
        &self,
        mode: RuntimeMode,
        strict: bool,
    ) -> Result<Vec<ValidationIssue>, ConfigError> {
        let mut findings = Findings::default();
        if let Some(v1alpha1) = &self.v1alpha1 {
            validate_v1alpha1(v1alpha1, mode, &mut findings);
        }
        documents::validate(&self.documents, self.v1alpha1.as_ref(), &mut findings);
        findings.finish(strict)
    }
}

impl V1Alpha1Config {
    /// Validates the v1alpha1 document alone; see [`Config::validate`].
    pub fn validate(
        &self,
        mode: RuntimeMode,
        strict: bool,
    ) -> Result<Vec<ValidationIssue>, ConfigError> {
        let mut findings = Findings::default();
        validate_v1alpha1(self, mode, &mut findings);
        findings.finish(strict)
    }
}

impl NetworkConfig {
    /// Validates `machine.network` alone (paths start with `machine.network`), for a machine of
    /// `machine_type` when known; see [`Config::validate`].
    pub fn validate(
        &self,
        machine_type: Option<MachineType>,
    ) -> Result<Vec<ValidationIssue>, ConfigError> {
        let mut findings = Findings::default();
        network::validate(self, machine_type, &mut findings);
        findings.finish(false)
    }
}

fn validate_v1alpha1(config: &V1Alpha1Config, mode: RuntimeMode, f: &mut Findings) {
    certificates::check(config, time::OffsetDateTime::now_utc(), f);
    if let Some(version) = &config.version
        && version != VERSION
    {
        f.error(
            "version",
            format!("unknown version {version:?}, expected {VERSION:?}"),
        );
    }
    if config.persist == Some(false) {
        f.error("persist", "persist should be enabled");
    }
    let Some(machine) = &config.machine else {
        f.error("machine", "machine instructions are required");
        return;
    };
    if config.cluster.is_none() {
        f.error("cluster", "cluster instructions are required");
    }
    let machine_type = check_machine_type(&machine.machine_type, f);
    machine::validate(machine, machine_type, mode, f);
    if let Some(cluster) = &config.cluster {
        cluster::validate(cluster, machine_type, f);
    }
}

/// Parses `machine.type`; an unknown type is an error, a non-canonical spelling a warning.
fn check_machine_type(text: &str, f: &mut Findings) -> Option<MachineType> {
    match text.parse::<MachineType>() {
        Ok(machine_type) => {
            if machine_type.as_str() != text {
                let written = if text.is_empty() {
                    "an empty machine type".to_string()
                } else {
                    format!("machine type {text:?}")
                };
                f.warn(
                    "machine.type",
                    format!(
                        "{written} is deprecated, use {:?} instead",
                        machine_type.as_str()
                    ),
                );
            }
            Some(machine_type)
        }
        Err(err) => {
            f.error("machine.type", err.to_string());
            None
        }
    }
}
