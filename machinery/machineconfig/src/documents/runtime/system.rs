//! Runtime kinds about the machine's own behaviour: `EventSinkConfig`, `KmsgLogConfig`,
//! `WatchdogTimerConfig`, `OOMConfig`, `SecurityProfileConfig`, `UnattendedInstallConfig`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::GoDuration;
use crate::documents::block::cel_expression;
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

/// The shortest watchdog timeout accepted.
const MIN_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(10);

document_kind! {
    /// `EventSinkConfig`: where machine events are streamed.
    pub struct EventSinkConfig = "EventSinkConfig" {
        /// The receiver, as `host:port`.
        #[serde(default)]
        pub endpoint: String,
    }
}

document_kind! {
    /// `KmsgLogConfig`: a destination for the kernel log.
    pub struct KmsgLogConfig = "KmsgLogConfig", named {
        /// `tcp://host:port` or `udp://host:port`.
        #[serde(default)]
        pub url: String,
    }
}

document_kind! {
    /// `WatchdogTimerConfig`: a hardware watchdog kept alive by Talos.
    pub struct WatchdogTimerConfig = "WatchdogTimerConfig" {
        /// The watchdog device (`/dev/watchdog0`).
        #[serde(default)]
        pub device: String,
        /// The watchdog timeout (one minute when unset, at least ten seconds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<GoDuration>,
    }
}

document_kind! {
    /// `OOMConfig`: the user-space out-of-memory handler.
    pub struct OomConfig = "OOMConfig" {
        /// CEL expression deciding when the handler acts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trigger_expression: Option<String>,
        /// CEL expression ranking cgroups for killing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cgroup_ranking_expression: Option<String>,
        /// Kill strictly by cgroup class order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub strict_cgroup_class_ordering: Option<bool>,
        /// How often memory pressure is sampled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sample_interval: Option<GoDuration>,
    }
}

document_kind! {
    /// `SecurityProfileConfig`: the machine's security profile.
    pub struct SecurityProfileConfig = "SecurityProfileConfig" {
        /// Isolate workloads from each other further (user namespaces and the like).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub workload_isolation: Option<bool>,
    }
}

document_kind! {
    /// `UnattendedInstallConfig`: install Talos without an operator, onto a selected disk.
    pub struct UnattendedInstallConfig = "UnattendedInstallConfig" {
        /// Reboot once installed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reboot: Option<bool>,
        /// The installer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub installer: Option<InstallerSpec>,
        /// The target disk.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provisioning: Option<InstallProvisioning>,
    }
}

/// `UnattendedInstallConfig.installer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstallerSpec {
    /// The installer image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// `UnattendedInstallConfig.provisioning`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstallProvisioning {
    /// Which disk to install to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_selector: Option<InstallDiskSelector>,
    /// Wipe the disk first (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wipe: Option<bool>,
}

/// `UnattendedInstallConfig.provisioning.diskSelector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallDiskSelector {
    /// CEL expression over `disk` that picks the install disk.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

impl CheckDocument for EventSinkConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        f.check(
            format!("{kind}.endpoint"),
            formats::host_port(&self.endpoint),
        );
    }
}

/// A kernel log destination: `tcp://` or `udp://`, a host and port, no path.
fn kmsg_log_url(text: &str) -> Result<(), String> {
    let url = formats::url(text)?;
    if !matches!(url.scheme(), "tcp" | "udp") {
        return Err(format!("{text:?}: the scheme must be tcp or udp"));
    }
    if !matches!(url.path(), "" | "/") {
        return Err(format!("{text:?}: a path is not allowed"));
    }
    if url.port().is_none() {
        return Err(format!("{text:?}: a port is required"));
    }
    Ok(())
}

impl CheckDocument for KmsgLogConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.name.is_empty() {
            f.error(format!("{kind}.name"), "the name is required");
        }
        let path = format!("{kind} {:?}.url", self.name);
        if self.url.is_empty() {
            f.error(path, "the URL is required");
        } else {
            f.check(path, kmsg_log_url(&self.url));
        }
    }
}

impl CheckDocument for WatchdogTimerConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.device.is_empty() {
            f.error(format!("{kind}.device"), "the watchdog device is required");
        }
        if let Some(timeout) = &self.timeout
            && !timeout.as_duration().is_zero()
            && timeout.as_duration() < MIN_WATCHDOG_TIMEOUT
        {
            f.error(
                format!("{kind}.timeout"),
                format!("{timeout} is shorter than the minimum of 10s"),
            );
        }
    }
}

impl CheckDocument for OomConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(expression) = &self.trigger_expression {
            f.check(
                format!("{kind}.triggerExpression"),
                cel_expression(expression),
            );
        }
        if let Some(expression) = &self.cgroup_ranking_expression {
            f.check(
                format!("{kind}.cgroupRankingExpression"),
                cel_expression(expression),
            );
        }
    }
}

impl CheckDocument for SecurityProfileConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, _: &mut Findings) {}
}

impl CheckDocument for UnattendedInstallConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self
            .installer
            .as_ref()
            .and_then(|i| i.image.as_deref())
            .is_none_or(str::is_empty)
        {
            f.warn(
                format!("{kind}.installer.image"),
                "no installer image: installing only works when Talos was booted from an Image Factory asset",
            );
        }
        let selector = self
            .provisioning
            .as_ref()
            .and_then(|p| p.disk_selector.as_ref())
            .and_then(|s| s.expression.as_deref());
        let path = format!("{kind}.provisioning.diskSelector.match");
        match selector {
            Some(expression) => f.check(path, cel_expression(expression)),
            None => f.error(path, "a disk selector is required"),
        }
        if v1alpha1
            .and_then(|c| c.machine.as_ref())
            .is_some_and(|m| m.install.is_some())
        {
            f.error(
                kind,
                "the v1alpha1 document also configures the install (machine.install); use one or the other",
            );
        }
    }
}
