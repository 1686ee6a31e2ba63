//! `ContainerConfig`: a container run by the node itself, outside Kubernetes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::network::{named, require_name};
use super::{CheckDocument, Document, DocumentKind, document_kind};
use crate::v1alpha1::{V1Alpha1Config, parse_byte_size};
use crate::validate::Findings;

document_kind! {
    /// `ContainerConfig`: a container run by the node.
    pub struct ContainerConfig = "ContainerConfig", named {
        /// Image reference.
        #[serde(default)]
        pub image: String,
        /// Entrypoint, replacing the image's.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub entrypoint: Vec<String>,
        /// Arguments.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub args: Vec<String>,
        /// Working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub working_dir: Option<String>,
        /// User and group to run as.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub run_as: Option<ContainerRunAs>,
        /// Environment, `KEY=value` entries.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub environment: Vec<String>,
        /// Mounts.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Vec::is_empty")]
        pub mounts: Vec<ContainerMount>,
        /// Security profile and capabilities.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub security: Option<ContainerSecurity>,
        /// Network mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub network: Option<ContainerNetwork>,
        /// Resource limits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ContainerResources>,
        /// What must be ready before the container starts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub depends_on: Option<ContainerDependsOn>,
    }
}

/// `ContainerConfig.runAs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerRunAs {
    /// User ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<i32>,
    /// Group ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<i32>,
}

/// `ContainerConfig.mounts[]`: exactly one of the three sources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerMount {
    /// A user volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_volume: Option<UserVolumeMount>,
    /// A tmpfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsMount>,
    /// A host directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathMount>,
}

/// `ContainerConfig.mounts[].userVolume`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserVolumeMount {
    /// The user volume's name.
    #[serde(default)]
    pub name: String,
    /// Absolute path in the container.
    #[serde(default)]
    pub destination: String,
    /// Mount options.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// `ContainerConfig.mounts[].tmpfs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TmpfsMount {
    /// Absolute path in the container.
    #[serde(default)]
    pub destination: String,
    /// Size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Mount options.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// `ContainerConfig.mounts[].hostPath`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostPathMount {
    /// Absolute path on the host.
    #[serde(default)]
    pub source: String,
    /// Absolute path in the container.
    #[serde(default)]
    pub destination: String,
    /// Mount options.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// A container's security profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityProfile {
    /// Few capabilities, read-only root (the default).
    Restricted,
    /// Every capability.
    Privileged,
}

/// `ContainerConfig.security`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerSecurity {
    /// Security profile (`restricted` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<SecurityProfile>,
    /// Capabilities added to or dropped from the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<ContainerCapabilities>,
}

/// `ContainerConfig.security.capabilities`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerCapabilities {
    /// Capabilities to add (`NET_ADMIN`, no `CAP_` prefix).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub add: Vec<String>,
    /// Capabilities to drop (`ALL` allowed).
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub drop: Vec<String>,
}

/// A container's network mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerNetworkMode {
    /// No network (the default).
    None,
    /// The host's network namespace.
    Host,
}

/// `ContainerConfig.network`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerNetwork {
    /// Network mode (`none` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ContainerNetworkMode>,
}

/// `ContainerConfig.resources`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerResources {
    /// Limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ContainerResourceLimits>,
}

/// `ContainerConfig.resources.limits`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerResourceLimits {
    /// CPU limit in millicores (`1500m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory limit (`512MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// `ContainerConfig.dependsOn`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerDependsOn {
    /// Paths that must exist.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub paths: Vec<String>,
    /// Network conditions: `addresses`, `connectivity`, `hostname`, `etcfiles`.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub networks: Vec<String>,
    /// Wait for time sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<bool>,
    /// Other containers that must be running.
    #[serde(
        default,
        deserialize_with = "crate::v1alpha1::nullable::deserialize",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub containers: Vec<String>,
}

const MOUNT_OPTIONS: &[&str] = &[
    "ro", "rw", "noexec", "nosuid", "nodev", "noatime", "rbind", "rshared",
];
const NETWORK_CONDITIONS: &[&str] = &["addresses", "connectivity", "hostname", "etcfiles"];

fn absolute_path(what: &str, path: &str) -> Result<(), String> {
    if path.is_empty() {
        Err(format!("{what} is required"))
    } else if !path.starts_with('/') {
        Err(format!("{what} {path:?} must be an absolute path"))
    } else {
        Ok(())
    }
}

fn mount_options(at: &str, options: &[String], f: &mut Findings) {
    for option in options {
        if !MOUNT_OPTIONS.contains(&option.as_str()) {
            f.error(
                format!("{at}.options"),
                format!("unsupported mount option {option:?}"),
            );
        }
    }
    if options.iter().any(|o| o == "ro") && options.iter().any(|o| o == "rw") {
        f.error(format!("{at}.options"), "ro and rw are mutually exclusive");
    }
}

/// A capability name: upper case letters and `_`, without the `CAP_` prefix.
fn capability(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("capability name must not be empty".to_string())
    } else if name.starts_with("CAP_") {
        Err(format!("{name:?}: leave out the CAP_ prefix"))
    } else if !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        Err(format!(
            "{name:?}: a capability is upper case letters and '_'"
        ))
    } else {
        Ok(())
    }
}

/// A plausible image reference: no whitespace, no upper case in the repository, a name.
fn image_reference(image: &str) -> Result<bool, String> {
    let invalid = |why: &str| Err(format!("{image:?} is not a valid image reference: {why}"));
    if image.chars().any(char::is_whitespace) {
        return invalid("it contains whitespace");
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let repository = match last.rsplit_once(':') {
        Some((_, "")) => return invalid("empty tag"),
        Some((repo, _)) => &name[..name.len() - last.len() + repo.len()],
        None => name,
    };
    let path = repository
        .split_once('/')
        .map_or(repository, |(first, rest)| {
            if first.contains(['.', ':']) || first == "localhost" {
                rest
            } else {
                repository
            }
        });
    if path.is_empty() || path.chars().any(|c| c.is_ascii_uppercase()) {
        return invalid("the repository must be non-empty and lower case");
    }
    if digest.is_some_and(|d| !d.contains(':')) {
        return invalid("a digest is algorithm:hex");
    }
    Ok(digest.is_some())
}

impl ContainerConfig {
    fn check_mounts(&self, path: &str, f: &mut Findings) {
        let mut destinations: Vec<&str> = Vec::new();
        for (i, mount) in self.mounts.iter().enumerate() {
            let at = format!("{path}.mounts[{i}]");
            let sources = [
                mount.user_volume.is_some(),
                mount.tmpfs.is_some(),
                mount.host_path.is_some(),
            ];
            if sources.iter().filter(|set| **set).count() != 1 {
                f.error(
                    at,
                    "exactly one of userVolume, tmpfs and hostPath must be set",
                );
                continue;
            }
            let destination = if let Some(volume) = &mount.user_volume {
                let at = format!("{at}.userVolume");
                if volume.name.is_empty() {
                    f.error(format!("{at}.name"), "the user volume's name is required");
                }
                f.check(
                    format!("{at}.destination"),
                    absolute_path("destination", &volume.destination),
                );
                mount_options(&at, &volume.options, f);
                &volume.destination
            } else if let Some(tmpfs) = &mount.tmpfs {
                let at = format!("{at}.tmpfs");
                f.check(
                    format!("{at}.destination"),
                    absolute_path("destination", &tmpfs.destination),
                );
                mount_options(&at, &tmpfs.options, f);
                &tmpfs.destination
            } else if let Some(host) = &mount.host_path {
                let at = format!("{at}.hostPath");
                f.check(
                    format!("{at}.source"),
                    absolute_path("source", &host.source),
                );
                f.check(
                    format!("{at}.destination"),
                    absolute_path("destination", &host.destination),
                );
                mount_options(&at, &host.options, f);
                &host.destination
            } else {
                continue;
            };
            if destinations.contains(&destination.as_str()) {
                f.error(
                    format!("{path}.mounts[{i}]"),
                    format!("destination {destination:?} is mounted twice"),
                );
            }
            destinations.push(destination);
        }
    }

    fn check_security(&self, path: &str, f: &mut Findings) {
        let Some(capabilities) = self.security.as_ref().and_then(|s| s.capabilities.as_ref())
        else {
            return;
        };
        let at = format!("{path}.security.capabilities");
        for name in &capabilities.add {
            if name == "ALL" {
                f.error(
                    format!("{at}.add"),
                    "ALL can not be added; use profile: privileged",
                );
            } else {
                f.check(format!("{at}.add"), capability(name));
            }
            if capabilities.drop.contains(name) {
                f.error(
                    format!("{at}.add"),
                    format!("{name:?} is both added and dropped"),
                );
            }
        }
        for name in capabilities.drop.iter().filter(|n| *n != "ALL") {
            f.check(format!("{at}.drop"), capability(name));
        }
    }

    fn check_limits(&self, path: &str, f: &mut Findings) {
        let Some(limits) = self.resources.as_ref().and_then(|r| r.limits.as_ref()) else {
            return;
        };
        if let Some(memory) = limits.memory.as_deref().filter(|m| !m.is_empty())
            && let Err(message) = parse_byte_size(memory)
        {
            f.error(
                format!("{path}.resources.limits.memory"),
                format!("{memory:?} is not a size: {message}"),
            );
        }
        if let Some(cpu) = limits.cpu.as_deref().filter(|c| !c.is_empty()) {
            let millicores = cpu.strip_suffix('m').and_then(|n| n.parse::<u64>().ok());
            if millicores.is_none_or(|m| m == 0) {
                f.error(
                    format!("{path}.resources.limits.cpu"),
                    format!("{cpu:?} is not a positive number of millicores (such as 1500m)"),
                );
            }
        }
    }

    fn check_depends_on(&self, path: &str, f: &mut Findings) {
        let Some(depends) = &self.depends_on else {
            return;
        };
        let at = format!("{path}.dependsOn");
        for entry in &depends.paths {
            f.check(format!("{at}.paths"), absolute_path("path", entry));
        }
        for condition in &depends.networks {
            if !NETWORK_CONDITIONS.contains(&condition.as_str()) {
                f.error(
                    format!("{at}.networks"),
                    format!(
                        "unknown condition {condition:?} (expected addresses, connectivity, hostname or etcfiles)"
                    ),
                );
            }
        }
        for container in &depends.containers {
            if container.is_empty() {
                f.error(
                    format!("{at}.containers"),
                    "container name must not be empty",
                );
            } else if *container == self.name {
                f.error(
                    format!("{at}.containers"),
                    "a container can not depend on itself",
                );
            }
        }
    }
}

impl CheckDocument for ContainerConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        require_name(kind, &self.name, f);
        let path = named(kind, &self.name);
        if self.name.len() > 63 {
            f.error(format!("{path}.name"), "name must be at most 63 characters");
        }
        if !self.name.is_empty()
            && !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            f.error(
                format!("{path}.name"),
                "name may only contain lower case letters, digits and '-'",
            );
        }
        if self.image.is_empty() {
            f.error(format!("{path}.image"), "image is required");
        } else {
            match image_reference(&self.image) {
                Ok(true) => {}
                Ok(false) => f.warn(
                    format!("{path}.image"),
                    "the image is not pinned by digest; what runs may change on restart",
                ),
                Err(message) => f.error(format!("{path}.image"), message),
            }
        }
        for (i, entry) in self.environment.iter().enumerate() {
            if !entry.contains('=') {
                f.error(
                    format!("{path}.environment[{i}]"),
                    format!("{entry:?} is not KEY=value"),
                );
            }
        }
        if let Some(run_as) = &self.run_as {
            for (field, id) in [("uid", run_as.uid), ("gid", run_as.gid)] {
                if let Some(id) = id
                    && id < 0
                {
                    f.error(
                        format!("{path}.runAs.{field}"),
                        format!("{field} must not be negative (got {id})"),
                    );
                }
            }
        }
        self.check_mounts(&path, f);
        self.check_security(&path, f);
        self.check_limits(&path, f);
        self.check_depends_on(&path, f);
    }
}

/// Checks across documents: every container a `ContainerConfig` depends on is configured, and
/// the dependencies have no cycle.
pub(crate) fn check_across(documents: &[Document], f: &mut Findings) {
    let containers: BTreeMap<&str, &ContainerConfig> = documents
        .iter()
        .filter_map(|d| match d {
            Document::Container(c) => Some((c.name.as_str(), c)),
            _ => None,
        })
        .collect();
    let dependencies = |container: &ContainerConfig| -> Vec<String> {
        container
            .depends_on
            .as_ref()
            .map(|d| d.containers.clone())
            .unwrap_or_default()
    };
    for (name, container) in &containers {
        for dependency in dependencies(container) {
            if !dependency.is_empty() && !containers.contains_key(dependency.as_str()) {
                f.error(
                    format!(
                        "{}.dependsOn.containers",
                        named(ContainerConfig::KIND, name)
                    ),
                    format!("container {dependency:?} is not configured"),
                );
            }
        }
    }
    // Depth-first walk; a name met again while still on the stack closes a cycle.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut cycles: BTreeSet<String> = BTreeSet::new();
    for start in containers.keys() {
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        while let Some((name, next)) = stack.last().copied() {
            let deps = containers
                .get(name)
                .map(|c| dependencies(c))
                .unwrap_or_default();
            let Some(dependency) = deps.get(next) else {
                done.insert(name);
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            let Some((&dependency, _)) = containers.get_key_value(dependency.as_str()) else {
                continue;
            };
            if let Some(position) = stack.iter().position(|(n, _)| *n == dependency) {
                let mut cycle: Vec<&str> = stack[position..].iter().map(|(n, _)| *n).collect();
                cycle.push(dependency);
                cycles.insert(cycle.join(" -> "));
            } else if !done.contains(dependency) {
                stack.push((dependency, 0));
            }
        }
    }
    for cycle in cycles {
        f.error(
            format!("{}.dependsOn.containers", ContainerConfig::KIND),
            format!("dependency cycle: {cycle}"),
        );
    }
}
