//! The checks of `ContainerConfig`: alone, and across documents (dependencies).

use std::collections::{BTreeMap, BTreeSet};

use super::ContainerConfig;
use crate::documents::network::{named, require_name};
use crate::documents::{CheckDocument, Document, DocumentKind};
use crate::v1alpha1::{V1Alpha1Config, parse_byte_size};
use crate::validate::Findings;

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

/// An image reference (`[registry/]repository[:tag][@algorithm:hex]`): a lower-case repository,
/// a tag of word characters, `.` and `-` (at most 128), a digest of an algorithm and hex. Returns
/// whether the reference is pinned by digest.
fn image_reference(image: &str) -> Result<bool, String> {
    let invalid = |why: &str| Err(format!("{image:?} is not a valid image reference: {why}"));
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repository, tag) = match last.rsplit_once(':') {
        Some((repo, tag)) => (&name[..name.len() - last.len() + repo.len()], Some(tag)),
        None => (name, None),
    };
    // The first segment is a registry when it looks like a host (a dot, a port, localhost).
    let path = match repository.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => repository,
    };
    let path_ok = !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        });
    if !path_ok {
        return invalid("the repository is lower-case letters, digits, '.', '_', '-' and '/'");
    }
    if let Some(tag) = tag {
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !tag_ok {
            return invalid("the tag is up to 128 letters, digits, '_', '.' and '-'");
        }
    }
    if let Some(digest) = digest {
        let digest_ok = digest.split_once(':').is_some_and(|(algorithm, hex)| {
            !algorithm.is_empty()
                && algorithm.chars().all(|c| c.is_ascii_alphanumeric())
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !digest_ok {
            return invalid("the digest is algorithm:hex (sha256:...)");
        }
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
