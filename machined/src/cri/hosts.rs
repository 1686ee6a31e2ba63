//! containerd's registry host files (its `hosts.toml` format), laid out as upstream lays them:
//! one directory per registry under `etc/cri/conf.d/hosts/` (`*` is `_default`, `host:port` is
//! `host_port_`) holding `hosts.toml` and the CA and client certificate files it names.
//!
//! A mirrored registry lists its endpoints as `[host."<url>"]` tables, in order, each with
//! `capabilities = ["pull", "resolve"]`; with `skipFallback` the last endpoint becomes the
//! top-level `server`, so containerd never falls back to the registry itself. A registry with
//! only TLS settings gets its own default host as `server`.

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

use super::registries::{RegistriesSpec, Tls};
use crate::error::MachinedError;

/// One file of a registry's directory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostsFile {
    pub name: String,
    pub contents: String,
}

/// Directory name → its files.
pub type HostsDirectories = BTreeMap<String, Vec<HostsFile>>;

/// The directory a registry's files live in. A name that could leave the hosts directory
/// (validation refuses it first) is an error.
pub fn directory_name(registry: &str) -> Result<String, MachinedError> {
    if registry == "*" {
        return Ok("_default".to_string());
    }
    if registry.is_empty() || registry.starts_with('.') || registry.contains(['/', '\\', '\0']) {
        return Err(MachinedError::CriConfig {
            what: format!("registry {registry:?}"),
            reason: "not a registry host name".into(),
        });
    }
    Ok(match registry.rfind(':') {
        Some(colon) if colon > 0 => {
            format!("{}_{}_", &registry[..colon], &registry[colon + 1..])
        }
        _ => registry.to_string(),
    })
}

/// The host containerd talks to for `registry` (Docker Hub's registry lives elsewhere).
pub fn default_host(registry: &str) -> &str {
    if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// The host (and port) of an endpoint URL.
fn endpoint_host(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// The directories and files for `spec`; paths inside `hosts.toml` are under `base` (the
/// directory the registry directories live in, as the node sees it).
pub fn generate(spec: &RegistriesSpec, base: &Path) -> Result<HostsDirectories, MachinedError> {
    let mut directories = HostsDirectories::new();
    for (registry, mirror) in &spec.mirrors {
        let directory = directory_name(registry)?;
        let mut files = Vec::new();
        let mut entries = Vec::new();
        for endpoint in &mirror.endpoints {
            let host =
                endpoint_host(&endpoint.endpoint).ok_or_else(|| MachinedError::CriConfig {
                    what: format!("registry {registry:?}"),
                    reason: format!("mirror endpoint {:?} is not a URL", endpoint.endpoint),
                })?;
            let mut table = Table::new();
            table.insert(
                "capabilities".into(),
                Value::Array(vec!["pull".into(), "resolve".into()]),
            );
            if endpoint.override_path {
                table.insert("override_path".into(), Value::Boolean(true));
            }
            if let Some(tls) = spec.tls.get(&host) {
                add_tls(&mut table, &mut files, &host, tls, &base.join(&directory));
            }
            entries.push((endpoint.endpoint.clone(), table));
        }
        let root = if mirror.skip_fallback {
            entries.pop()
        } else {
            None
        };
        files.push(HostsFile {
            name: "hosts.toml".into(),
            contents: render(root, entries)?,
        });
        directories.insert(directory, files);
    }
    for (registry, tls) in &spec.tls {
        let directory = directory_name(registry)?;
        if directories.contains_key(&directory) || !tls.is_effective() {
            continue;
        }
        if registry == "*" {
            return Err(MachinedError::CriConfig {
                what: "registry \"*\"".into(),
                reason: "TLS settings for every registry (`*`) are not supported".into(),
            });
        }
        let mut files = Vec::new();
        let mut table = Table::new();
        add_tls(
            &mut table,
            &mut files,
            registry,
            tls,
            &base.join(&directory),
        );
        let server = format!("https://{}", default_host(registry));
        files.push(HostsFile {
            name: "hosts.toml".into(),
            contents: render(Some((server, table)), Vec::new())?,
        });
        directories.insert(directory, files);
    }
    Ok(directories)
}

/// Adds `tls` of `host` to an entry, and the files it names to the directory at `dir`.
fn add_tls(table: &mut Table, files: &mut Vec<HostsFile>, host: &str, tls: &Tls, dir: &Path) {
    if let Some(ca) = &tls.ca {
        let name = format!("{host}-ca.crt");
        table.insert("ca".into(), dir.join(&name).display().to_string().into());
        files.push(HostsFile {
            name,
            contents: ca.clone(),
        });
    }
    if let Some(identity) = &tls.client_identity {
        let crt = format!("{host}-client.crt");
        let key = format!("{host}-client.key");
        let pair = vec![
            Value::from(dir.join(&crt).display().to_string()),
            Value::from(dir.join(&key).display().to_string()),
        ];
        table.insert("client".into(), Value::Array(vec![Value::Array(pair)]));
        files.push(HostsFile {
            name: crt,
            contents: identity.crt.clone().unwrap_or_default(),
        });
        files.push(HostsFile {
            name: key,
            contents: identity.key.clone().unwrap_or_default(),
        });
    }
    if tls.insecure_skip_verify {
        table.insert("skip_verify".into(), Value::Boolean(true));
    }
}

/// `hosts.toml`: the root entry's `server` and settings, then each host table in order.
fn render(
    root: Option<(String, Table)>,
    hosts: Vec<(String, Table)>,
) -> Result<String, MachinedError> {
    let mut document = Table::new();
    if let Some((server, settings)) = root {
        document.insert("server".into(), Value::String(server));
        document.extend(settings);
    }
    if !hosts.is_empty() {
        let hosts: Table = hosts
            .into_iter()
            .map(|(url, table)| (url, Value::Table(table)))
            .collect();
        document.insert("host".into(), Value::Table(hosts));
    }
    toml::to_string(&document).map_err(|e| MachinedError::CriConfig {
        what: "hosts.toml".into(),
        reason: e.to_string(),
    })
}

/// Makes the directories under `base` hold exactly `directories`: changed files are rewritten
/// atomically, files and directories nobody wants any more are removed.
pub fn sync(base: &Path, directories: &HostsDirectories) -> Result<(), MachinedError> {
    for (name, files) in directories {
        let dir = base.join(name);
        create_private_dir(&dir)?;
        for file in files {
            let path = dir.join(&file.name);
            if std::fs::read(&path).is_ok_and(|old| old == file.contents.as_bytes()) {
                continue;
            }
            atomicfile::write(
                &path,
                file.contents.as_bytes(),
                0o600,
                atomicfile::Overwrite::Allow,
            )?;
        }
        for entry in read_dir(&dir)? {
            let wanted = files.iter().any(|f| entry.file_name() == f.name.as_str());
            if !wanted {
                remove(&entry.path())?;
            }
        }
    }
    for entry in read_dir(base)? {
        let wanted = entry
            .file_name()
            .to_str()
            .is_some_and(|name| directories.contains_key(name));
        if !wanted {
            remove(&entry.path())?;
        }
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), MachinedError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(MachinedError::io("creating", dir))
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, MachinedError> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(MachinedError::io("listing", dir)(e)),
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(MachinedError::io("listing", dir)),
    }
}

fn remove(path: &Path) -> Result<(), MachinedError> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.map_err(MachinedError::io("removing", path))
}

#[cfg(test)]
mod tests {
    use super::super::registries::{Endpoint, Mirror};
    use super::*;

    fn mirror(endpoints: &[&str], skip_fallback: bool) -> Mirror {
        Mirror {
            endpoints: endpoints
                .iter()
                .map(|e| Endpoint {
                    endpoint: (*e).to_string(),
                    override_path: false,
                })
                .collect(),
            skip_fallback,
        }
    }

    #[test]
    fn directory_names_follow_upstream() {
        assert_eq!(directory_name("*").unwrap(), "_default");
        assert_eq!(
            directory_name("registry.local:5000").unwrap(),
            "registry.local_5000_"
        );
        assert_eq!(directory_name("ghcr.io").unwrap(), "ghcr.io");
        for outside in ["..", "../state", "a/b", ""] {
            assert!(directory_name(outside).is_err(), "{outside}");
        }
    }

    #[test]
    fn endpoints_keep_their_order_and_skip_fallback_makes_the_last_the_server() {
        let mut spec = RegistriesSpec::default();
        spec.mirrors.insert(
            "docker.io".into(),
            mirror(
                &[
                    "https://b.example",
                    "https://a.example:5000",
                    "http://c.example",
                ],
                true,
            ),
        );
        spec.tls.insert(
            "a.example:5000".into(),
            Tls {
                ca: Some("CA".into()),
                insecure_skip_verify: true,
                ..Tls::default()
            },
        );
        let dirs = generate(&spec, Path::new("/etc/cri/conf.d/hosts")).unwrap();
        let files = &dirs["docker.io"];
        assert_eq!(files[0].name, "a.example:5000-ca.crt");
        let hosts = &files[1].contents;
        let b = hosts.find("[host.\"https://b.example\"]").unwrap();
        let a = hosts.find("[host.\"https://a.example:5000\"]").unwrap();
        assert!(b < a, "{hosts}");
        let parsed: Table = hosts.parse().unwrap();
        assert_eq!(parsed["server"].as_str(), Some("http://c.example"));
        assert_eq!(
            parsed["host"]["https://a.example:5000"]["ca"].as_str(),
            Some("/etc/cri/conf.d/hosts/docker.io/a.example:5000-ca.crt")
        );
        assert_eq!(
            parsed["host"]["https://a.example:5000"]["skip_verify"].as_bool(),
            Some(true)
        );
    }

    #[test]
    fn tls_alone_gets_the_default_host_and_a_wildcard_is_refused() {
        let mut spec = RegistriesSpec::default();
        spec.tls.insert(
            "docker.io".into(),
            Tls {
                insecure_skip_verify: true,
                ..Tls::default()
            },
        );
        let dirs = generate(&spec, Path::new("/h")).unwrap();
        let parsed: Table = dirs["docker.io"][0].contents.parse().unwrap();
        assert_eq!(
            parsed["server"].as_str(),
            Some("https://registry-1.docker.io")
        );
        spec.tls.insert(
            "*".into(),
            Tls {
                insecure_skip_verify: true,
                ..Tls::default()
            },
        );
        assert!(generate(&spec, Path::new("/h")).is_err());
    }
}
