//! Kernel parameters, as upstream's runtime resources: sysctls under `/proc/sys` and sysfs
//! attributes under `/sys`, named by ids `proc.sys.<key>` and `sys.<key>`.
//!
//! - `runtime.KernelParamConfigController`: `machine.sysctls`, `machine.sysfs` and the
//!   `SysctlConfig` and `SysfsConfig` documents (later documents win a shared key) →
//!   `KernelParamSpecs.runtime.talos.dev`;
//! - the settings the boot sequence made itself (kernel self-protection, the module lock) →
//!   `KernelParamDefaultSpecs.runtime.talos.dev`, written once by [`publish_defaults`] (owner
//!   [`DEFAULTS_OWNER`]);
//! - `runtime.KernelParamSpecController` writes each spec's value under its root, publishes
//!   `KernelParamStatuses.runtime.talos.dev` for every spec and default (the value it read
//!   before its first write as `default`; `unsupported` where the kernel has no such file),
//!   and when the config drops a key puts back the boot default or the value it found.
//!   Defaults are the boot sequence's to write: the controller only reads them, unless the
//!   config overrides one. `kernel.modules_disabled` is never the config's: machined sets it
//!   once the image's modules are in (written earlier, it would stop them loading; the kernel
//!   refuses to clear it), so a config that sets it is refused for that key.
//!
//! A key or value that cannot be written fails only itself: the others are written, the
//! failures (key, path, value and the kernel's reason) are the pass's error, which the
//! runtime logs and retries with back-off. Keys are bounded and confined to their root (no
//! empty, `.` or `..` segments); values are bounded and hold no NUL.
//!
//! machined registers the spec controller only as PID 1: in dev mode the host is not
//! machined's, so specs are published and nothing is written.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use resources::{Context, Controller, Kind, Requeue, Spec, State};
use serde::{Deserialize, Serialize};

use super::{active_config, machine_config_kind};

/// The owner of the boot sequence's defaults.
pub const DEFAULTS_OWNER: &str = "runtime.KernelParamDefaultsController";
/// The id prefix of sysctls and of sysfs attributes (their directory under the root).
const SYSCTL_PREFIX: &str = "proc.sys";
const SYSFS_PREFIX: &str = "sys";
/// The module lock, set by the boot sequence alone (`os::modules`).
const MODULE_LOCK: &str = "proc.sys.kernel.modules_disabled";
/// How often statuses are read again (defaults change outside the controller).
const REFRESH: Duration = Duration::from_secs(10);
/// Bounds on what the config can ask for.
const MAX_KEY: usize = 1024;
const MAX_SEGMENT: usize = 255;
const MAX_VALUE: usize = 4096;
/// The most of a parameter's file that is read.
const MAX_READ: u64 = 64 * 1024;

/// `KernelParamSpecs.runtime.talos.dev`: a value the config asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelParamSpec {
    pub value: String,
    pub ignore_errors: bool,
}

impl Spec for KernelParamSpec {
    const TYPE: &'static str = "KernelParamSpecs.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `KernelParamDefaultSpecs.runtime.talos.dev`: a value the boot sequence sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelParamDefaultSpec {
    pub value: String,
    pub ignore_errors: bool,
}

impl Spec for KernelParamDefaultSpec {
    const TYPE: &'static str = "KernelParamDefaultSpecs.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `KernelParamStatuses.runtime.talos.dev`.
#[derive(Debug, PartialEq, Serialize)]
pub struct KernelParamStatusSpec {
    pub current: String,
    pub default: String,
    pub unsupported: bool,
}

impl Spec for KernelParamStatusSpec {
    const TYPE: &'static str = "KernelParamStatuses.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// The id of sysctl `key` (as under `/proc/sys`, dots or slashes).
pub fn sysctl_id(key: &str) -> String {
    format!("{SYSCTL_PREFIX}.{key}")
}

/// The id of sysfs attribute `key` (as under `/sys`, dots or slashes).
pub fn sysfs_id(key: &str) -> String {
    format!("{SYSFS_PREFIX}.{key}")
}

/// Publishes the boot sequence's `(sysctl key, value)` settings as defaults.
pub fn publish_defaults(state: &State, sysctls: &[(String, String)]) {
    for (key, value) in sysctls {
        let spec = KernelParamDefaultSpec {
            value: value.clone(),
            ignore_errors: false,
        };
        if let Err(error) = state.write_spec(DEFAULTS_OWNER, &sysctl_id(key), &spec) {
            tracing::error!(%error, "cannot publish the kernel parameter default {key}");
        }
    }
}

/// The config's parameters → `KernelParamSpecs`.
pub struct KernelParamConfigController;

impl Controller for KernelParamConfigController {
    fn name(&self) -> &'static str {
        "runtime.KernelParamConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<KernelParamSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let wanted = configured(active_config(context)?.as_ref());
            for (id, value) in &wanted {
                let spec = KernelParamSpec {
                    value: value.clone(),
                    ignore_errors: false,
                };
                context.write(id, &spec).map_err(|e| e.to_string())?;
            }
            let ids: Vec<&str> = wanted.keys().map(String::as_str).collect();
            context
                .keep_only::<KernelParamSpec>(&ids)
                .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

/// Every parameter of `config`, by id.
fn configured(config: Option<&Config>) -> BTreeMap<String, String> {
    let mut wanted = BTreeMap::new();
    let Some(config) = config else {
        return wanted;
    };
    if let Some(machine) = config.v1alpha1.as_ref().and_then(|v| v.machine.as_ref()) {
        for (key, value) in &machine.sysctls {
            wanted.insert(sysctl_id(key), value.clone());
        }
        for (key, value) in &machine.sysfs {
            wanted.insert(sysfs_id(key), value.clone());
        }
    }
    for document in &config.documents {
        match document {
            Document::Sysctl(sysctls) => {
                for (key, value) in &sysctls.params {
                    wanted.insert(sysctl_id(key), value.clone());
                }
            }
            Document::Sysfs(sysfs) => {
                for (key, value) in &sysfs.params {
                    wanted.insert(sysfs_id(key), value.clone());
                }
            }
            _ => {}
        }
    }
    wanted
}

/// Whether the kernel parameter controllers apply `document` (it is not reported as unapplied).
pub fn applied_by_kernel_params(document: &Document) -> bool {
    matches!(document, Document::Sysctl(_) | Document::Sysfs(_))
}

/// `KernelParamSpecs` and `KernelParamDefaultSpecs` → the files under `root`, and
/// `KernelParamStatuses`.
pub struct KernelParamSpecController {
    root: PathBuf,
    /// What each parameter held before this controller first wrote it.
    found: BTreeMap<String, String>,
}

impl KernelParamSpecController {
    /// Writes under `root` (`/` as PID 1; `root/proc/sys` and `root/sys`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        KernelParamSpecController {
            root: root.into(),
            found: BTreeMap::new(),
        }
    }

    /// Writes `value` to `id` unless it holds it already, remembering what it held first.
    fn set(&mut self, id: &str, value: &str) -> Result<(), String> {
        let path = param_path(&self.root, id)?;
        check_value(id, value)?;
        let current = read_param(&path).map_err(|error| failure(id, &path, value, &error))?;
        if current == value.trim() {
            return Ok(());
        }
        self.found.entry(id.to_string()).or_insert(current);
        write_param(&path, value).map_err(|error| failure(id, &path, value, &error))
    }

    fn status(&self, id: &str) -> KernelParamStatusSpec {
        let current = param_path(&self.root, id).and_then(|path| {
            read_param(&path).map_err(|error| format!("{}: {error}", path.display()))
        });
        KernelParamStatusSpec {
            unsupported: current.is_err(),
            current: current.unwrap_or_default(),
            default: self.found.get(id).cloned().unwrap_or_default(),
        }
    }
}

impl Controller for KernelParamSpecController {
    fn name(&self) -> &'static str {
        "runtime.KernelParamSpecController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![
            Kind::of::<KernelParamSpec>(),
            Kind::of::<KernelParamDefaultSpec>(),
        ]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<KernelParamStatusSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let wanted = specs::<KernelParamSpec>(context.state(), |s| s.value.clone());
            let defaults = specs::<KernelParamDefaultSpec>(context.state(), |s| s.value.clone());
            let mut failures = Vec::new();
            for (id, value) in &wanted {
                let outcome = if id == MODULE_LOCK {
                    Err(format!(
                        "{id}: machined locks module loading itself once the image's modules \
                         are in; the config cannot set it"
                    ))
                } else {
                    self.set(id, value)
                };
                if let Err(error) = outcome {
                    failures.push(error);
                }
            }
            // What the config no longer sets goes back to what it was.
            let dropped: Vec<(String, String)> = self
                .found
                .iter()
                .filter(|(id, _)| !wanted.contains_key(*id))
                .map(|(id, value)| (id.clone(), value.clone()))
                .collect();
            for (id, found) in dropped {
                let restored = defaults.get(&id).cloned().unwrap_or(found);
                match self.set(&id, &restored) {
                    Ok(()) => {
                        self.found.remove(&id);
                    }
                    Err(error) => failures.push(format!("restoring {error}")),
                }
            }
            let mut ids: Vec<&str> = wanted.keys().map(String::as_str).collect();
            ids.extend(defaults.keys().map(String::as_str));
            for id in &ids {
                context
                    .write(id, &self.status(id))
                    .map_err(|e| e.to_string())?;
            }
            context
                .keep_only::<KernelParamStatusSpec>(&ids)
                .map_err(|e| e.to_string())?;
            if failures.is_empty() {
                Ok(Requeue::After(REFRESH))
            } else {
                Err(failures.join("; "))
            }
        })
    }
}

/// Every resource of `S`'s kind, by id, as `value` reads it (undecodable ones left out).
fn specs<S: Spec + for<'de> Deserialize<'de>>(
    state: &State,
    value: impl Fn(&S) -> String,
) -> BTreeMap<String, String> {
    state
        .list(&Kind::of::<S>())
        .iter()
        .filter_map(|resource| {
            let spec: S = serde_norway::from_str(&resource.yaml_spec).ok()?;
            Some((resource.metadata.id.clone(), value(&spec)))
        })
        .collect()
}

/// The file of parameter `id` under `root`: `proc.sys.<key>` under `root/proc/sys`,
/// `sys.<key>` under `root/sys`; a key holding `/` is split there (dots stay, as for
/// interface names like `eth0.100`), else at its dots.
pub fn param_path(root: &Path, id: &str) -> Result<PathBuf, String> {
    let (base, key) = if let Some(key) = id.strip_prefix("proc.sys.") {
        ("proc/sys", key)
    } else if let Some(key) = id.strip_prefix("sys.") {
        ("sys", key)
    } else {
        return Err(format!(
            "{id}: not a sysctl (proc.sys.*) or sysfs (sys.*) key"
        ));
    };
    if key.len() > MAX_KEY {
        return Err(format!("{id}: the key is longer than {MAX_KEY} bytes"));
    }
    let separator = if key.contains('/') { '/' } else { '.' };
    let mut path = root.join(base);
    for segment in key.split(separator) {
        let allowed = !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.len() <= MAX_SEGMENT
            && !segment.contains(['\0', '\n']);
        if !allowed {
            return Err(format!("{id}: invalid key segment {segment:?}"));
        }
        path.push(segment);
    }
    Ok(path)
}

fn check_value(id: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE {
        return Err(format!("{id}: the value is longer than {MAX_VALUE} bytes"));
    }
    if value.contains('\0') {
        return Err(format!("{id}: the value holds a NUL byte"));
    }
    Ok(())
}

fn failure(id: &str, path: &Path, value: &str, error: &std::io::Error) -> String {
    let reason = match error.kind() {
        std::io::ErrorKind::NotFound => "the kernel has no such parameter".to_string(),
        _ => error.to_string(),
    };
    format!("{id} = {value:?} ({}): {reason}", path.display())
}

/// A parameter's value, trimmed.
fn read_param(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_READ)
        .read_to_string(&mut text)?;
    Ok(text.trim().to_string())
}

/// Writes `value` in one write(2), as procfs and sysfs expect (truncating, as a shell
/// redirection does); never creates a file.
fn write_param(path: &Path, value: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all(value.as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use resources::Runtime;

    use super::*;
    use crate::controllers::test_inputs::{settle, write_config};

    #[test]
    fn ids_map_to_files_confined_to_their_root() {
        let root = Path::new("/r");
        let path = |id: &str| param_path(root, id);
        assert_eq!(
            path("proc.sys.net.ipv4.ip_forward").unwrap(),
            Path::new("/r/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path("proc.sys.net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            Path::new("/r/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
        assert_eq!(
            path("sys.block.vda.queue.read_ahead_kb").unwrap(),
            Path::new("/r/sys/block/vda/queue/read_ahead_kb")
        );
        for bad in [
            "proc.sys.net..ip_forward",
            "proc.sys.net/../../etc/passwd",
            "sys./etc",
            "sys.",
            "kernel.pid_max",
        ] {
            assert!(path(bad).is_err(), "{bad}");
        }
        let long = format!("sys.{}", "a.".repeat(MAX_KEY));
        assert!(path(&long).unwrap_err().contains("longer than"));
    }

    #[test]
    fn the_config_gives_specs_from_fields_and_documents() {
        let config = Config::from_yaml(
            "version: v1alpha1\nmachine:\n  type: worker\n  sysctls:\n    \
             net.ipv4.ip_forward: \"1\"\n    vm.swappiness: 10\n  sysfs:\n    \
             block.vda.queue.read_ahead_kb: \"256\"\n---\napiVersion: v1alpha1\n\
             kind: SysctlConfig\nparams:\n  vm.swappiness: \"20\"\n---\napiVersion: v1alpha1\n\
             kind: SysfsConfig\nparams:\n  kernel.mm.ksm.run: \"1\"\n",
        )
        .unwrap();
        let wanted = configured(Some(&config));
        assert_eq!(
            wanted.into_iter().collect::<Vec<_>>(),
            [
                ("proc.sys.net.ipv4.ip_forward".into(), "1".into()),
                ("proc.sys.vm.swappiness".into(), "20".into()),
                ("sys.block.vda.queue.read_ahead_kb".into(), "256".into()),
                ("sys.kernel.mm.ksm.run".into(), "1".into()),
            ]
        );
    }

    fn file(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(root: &Path, relative: &str) -> String {
        std::fs::read_to_string(root.join(relative)).unwrap()
    }

    fn status(state: &State, id: &str) -> Option<String> {
        state
            .get(&Kind::of::<KernelParamStatusSpec>(), id)
            .map(|resource| resource.yaml_spec.clone())
    }

    #[tokio::test]
    async fn specs_are_written_reported_and_put_back_when_the_config_drops_them() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        file(root, "proc/sys/net/ipv4/ip_forward", "0\n");
        file(root, "proc/sys/kernel/kptr_restrict", "1\n");
        file(root, "proc/sys/kernel/modules_disabled", "0\n");
        file(root, "sys/block/vda/queue/read_ahead_kb", "128\n");
        // A directory where a value is expected: the write fails as a bad value does.
        std::fs::create_dir_all(root.join("proc/sys/kernel/broken")).unwrap();

        let state = Arc::new(State::new());
        publish_defaults(
            &state,
            &[
                ("kernel.kptr_restrict".into(), "1".into()),
                ("kernel.modules_disabled".into(), "1".into()),
            ],
        );
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(KernelParamConfigController);
        runtime.register(KernelParamSpecController::new(root));
        let failures = runtime.failures();
        runtime.start();
        write_config(
            &state,
            "version: v1alpha1\nmachine:\n  type: worker\n  sysctls:\n    \
             net.ipv4.ip_forward: \"1\"\n    kernel.no_such_param: \"1\"\n    \
             kernel.broken: \"2\"\n    kernel.modules_disabled: \"1\"\n    \
             kernel.kptr_restrict: \"2\"\n  sysfs:\n    \
             block.vda.queue.read_ahead_kb: \"256\"\n",
        );
        settle().await;

        // The good ones are written despite the bad ones.
        assert_eq!(read(root, "proc/sys/net/ipv4/ip_forward"), "1");
        assert_eq!(read(root, "sys/block/vda/queue/read_ahead_kb"), "256");
        assert_eq!(
            status(&state, "proc.sys.net.ipv4.ip_forward").unwrap(),
            "current: '1'\ndefault: '0'\nunsupported: false\n"
        );
        assert_eq!(
            status(&state, "sys.block.vda.queue.read_ahead_kb").unwrap(),
            "current: '256'\ndefault: '128'\nunsupported: false\n"
        );
        assert!(
            status(&state, "proc.sys.kernel.no_such_param")
                .unwrap()
                .contains("unsupported: true")
        );
        // The module lock is the boot sequence's alone; other defaults can be overridden.
        assert_eq!(read(root, "proc/sys/kernel/modules_disabled"), "0\n");
        assert_eq!(
            status(&state, "proc.sys.kernel.modules_disabled").unwrap(),
            "current: '0'\ndefault: ''\nunsupported: false\n"
        );
        assert_eq!(
            status(&state, "proc.sys.kernel.kptr_restrict").unwrap(),
            "current: '2'\ndefault: '1'\nunsupported: false\n"
        );
        // Each bad key is named with its value, its file and the reason.
        let error = failures
            .lock()
            .unwrap()
            .get("runtime.KernelParamSpecController")
            .cloned()
            .unwrap();
        assert!(
            error.contains("proc.sys.kernel.no_such_param = \"1\"")
                && error.contains("the kernel has no such parameter"),
            "{error}"
        );
        assert!(
            error.contains("proc.sys.kernel.broken = \"2\"")
                && error.contains("proc/sys/kernel/broken"),
            "{error}"
        );
        assert!(
            error.contains("proc.sys.kernel.modules_disabled: machined locks module loading"),
            "{error}"
        );

        // The config drops them: the values found come back, the statuses go.
        write_config(&state, "version: v1alpha1\nmachine:\n  type: worker\n");
        settle().await;
        assert_eq!(read(root, "proc/sys/net/ipv4/ip_forward"), "0");
        assert_eq!(read(root, "sys/block/vda/queue/read_ahead_kb"), "128");
        assert_eq!(status(&state, "proc.sys.net.ipv4.ip_forward"), None);
        assert_eq!(read(root, "proc/sys/kernel/kptr_restrict"), "1");
        assert!(
            status(&state, "proc.sys.kernel.kptr_restrict")
                .unwrap()
                .starts_with("current: '1'\n")
        );
        assert!(failures.lock().unwrap().is_empty());
    }
}
