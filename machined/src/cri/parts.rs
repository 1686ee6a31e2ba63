//! The merged CRI plugin configuration, `etc/cri/conf.d/cri.toml`, made as upstream makes it:
//! the `*.part` files found in `etc/cri/conf.d/`, the registries part (`01-registries.part`:
//! where the host files are and each registry's credentials) and one `20-<name>.part` per
//! `CRICustomizationConfig`, merged in name order (tables merge, arrays append, later values
//! win), under a header naming each part's origin and SHA-256.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use toml::{Table, Value};

use super::hosts::default_host;
use super::registries::RegistriesSpec;
use crate::error::MachinedError;

/// The containerd plugin that pulls images (containerd 2's name, as upstream writes it).
const IMAGES_PLUGIN: &str = "io.containerd.cri.v1.images";

/// The largest `*.part` file read from disk.
const MAX_PART_BYTES: u64 = 1 << 20;

/// One named fragment and where it came from.
#[derive(Clone, Debug)]
pub struct Part {
    pub contents: String,
    pub origin: String,
}

/// Part name → part.
pub type Parts = BTreeMap<String, Part>;

/// `01-registries.part`: `config_path` (the host files under `hosts_dir`) and the credentials
/// of each registry, keyed by the host containerd talks to.
pub fn registries_part(spec: &RegistriesSpec, hosts_dir: &Path) -> Result<String, MachinedError> {
    let mut configs = Table::new();
    for (registry, auth) in &spec.auths {
        let mut fields = Table::new();
        fields.insert("username".into(), auth.username.clone().into());
        fields.insert("password".into(), auth.password.clone().into());
        fields.insert("auth".into(), auth.auth.clone().into());
        fields.insert("identitytoken".into(), auth.identity_token.clone().into());
        let mut config = Table::new();
        config.insert("auth".into(), Value::Table(fields));
        configs.insert(default_host(registry).to_string(), Value::Table(config));
    }
    let mut registry = Table::new();
    registry.insert("config_path".into(), hosts_dir.display().to_string().into());
    registry.insert("configs".into(), Value::Table(configs));
    let document = nest(&["plugins", IMAGES_PLUGIN, "registry"], registry);
    toml::to_string(&document).map_err(|e| MachinedError::CriConfig {
        what: "01-registries.part".into(),
        reason: e.to_string(),
    })
}

/// `value` under the chain of table `keys`.
fn nest(keys: &[&str], value: Table) -> Table {
    keys.iter().rev().fold(value, |inner, key| {
        let mut outer = Table::new();
        outer.insert((*key).to_string(), Value::Table(inner));
        outer
    })
}

/// The `*.part` files in `dir` (none when it does not exist).
pub fn physical_parts(dir: &Path) -> Result<Parts, MachinedError> {
    let mut parts = Parts::new();
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(parts),
        Err(e) => return Err(MachinedError::io("listing", dir)(e)),
        Ok(entries) => entries,
    };
    for entry in entries {
        let entry = entry.map_err(MachinedError::io("listing", dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !name.ends_with(".part") || !path.is_file() {
            continue;
        }
        let size = entry
            .metadata()
            .map_err(MachinedError::io("reading", &path))?
            .len();
        if size > MAX_PART_BYTES {
            return Err(MachinedError::CriConfig {
                what: path.display().to_string(),
                reason: format!("larger than {MAX_PART_BYTES} bytes"),
            });
        }
        let contents =
            std::fs::read_to_string(&path).map_err(MachinedError::io("reading", &path))?;
        parts.insert(
            name,
            Part {
                contents,
                origin: format!("file {}", path.display()),
            },
        );
    }
    Ok(parts)
}

/// The parts merged in name order, under the header of their origins.
pub fn merge(parts: &Parts) -> Result<String, MachinedError> {
    let mut merged = Table::new();
    let mut header = String::new();
    for (name, part) in parts {
        let table: Table =
            part.contents
                .parse()
                .map_err(|e: toml::de::Error| MachinedError::CriConfig {
                    what: format!("{name} ({})", part.origin),
                    reason: e.to_string(),
                })?;
        merge_tables(&mut merged, table);
        let digest = ring::digest::digest(&ring::digest::SHA256, part.contents.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(header, "## {} (sha256:{hex})", part.origin);
    }
    let body = toml::to_string(&merged).map_err(|e| MachinedError::CriConfig {
        what: "cri.toml".into(),
        reason: e.to_string(),
    })?;
    Ok(format!("{header}\n{body}"))
}

/// Merges `right` into `left`: tables recursively, arrays appended, anything else replaced.
fn merge_tables(left: &mut Table, right: Table) {
    for (key, value) in right {
        match (left.get_mut(&key), value) {
            (Some(Value::Table(l)), Value::Table(r)) => merge_tables(l, r),
            (Some(Value::Array(l)), Value::Array(r)) => l.extend(r),
            (_, value) => {
                left.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::registries::Auth;
    use super::*;

    fn part(contents: &str) -> Part {
        Part {
            contents: contents.to_string(),
            origin: "test".to_string(),
        }
    }

    #[test]
    fn docker_hub_credentials_are_keyed_by_its_registry_host() {
        let mut spec = RegistriesSpec::default();
        spec.auths.insert(
            "docker.io".into(),
            Auth {
                username: "u".into(),
                password: "p".into(),
                ..Auth::default()
            },
        );
        let part: Table = registries_part(&spec, Path::new("/etc/cri/conf.d/hosts"))
            .unwrap()
            .parse()
            .unwrap();
        let registry = &part["plugins"][IMAGES_PLUGIN]["registry"];
        assert_eq!(
            registry["config_path"].as_str(),
            Some("/etc/cri/conf.d/hosts")
        );
        let auth = &registry["configs"]["registry-1.docker.io"]["auth"];
        assert_eq!(auth["username"].as_str(), Some("u"));
        assert_eq!(auth["identitytoken"].as_str(), Some(""));
    }

    #[test]
    fn later_parts_win_tables_merge_and_arrays_append() {
        let parts = Parts::from([
            (
                "01-a.part".to_string(),
                part("x = 1\nlist = [1]\n[t]\na = 1\n"),
            ),
            (
                "20-b.part".to_string(),
                part("x = 2\nlist = [2]\n[t]\nb = 2\n"),
            ),
        ]);
        let merged = merge(&parts).unwrap();
        assert!(merged.starts_with("## test (sha256:"), "{merged}");
        let table: Table = merged.parse().unwrap();
        assert_eq!(table["x"].as_integer(), Some(2));
        assert_eq!(table["list"].as_array().unwrap().len(), 2);
        assert_eq!(table["t"]["a"].as_integer(), Some(1));
        assert_eq!(table["t"]["b"].as_integer(), Some(2));
    }

    #[test]
    fn a_part_that_is_not_toml_is_named() {
        let parts = Parts::from([("20-bad.part".to_string(), part("[unclosed\n"))]);
        let error = merge(&parts).unwrap_err().to_string();
        assert!(error.contains("20-bad.part"), "{error}");
    }
}
