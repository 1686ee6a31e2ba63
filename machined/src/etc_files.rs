//! `EtcFileConfig` documents applied, a controller ([`EtcFilesController`], upstream's
//! `files.EtcFileConfigController` with the file writer behind it): each document's contents
//! written atomically to `<root>/etc/<name>` with its mode (0644 when unset), and published as
//! `EtcFileSpecs.files.talos.dev/<name>`. A document that goes away takes its file with it.
//!
//! The resources are the record of what this controller wrote: a file whose document was
//! removed while machined was not running stays until it is written or removed again (upstream
//! rebuilds `/etc` at every boot instead).

use std::path::{Component, Path, PathBuf};

use futures_util::future::BoxFuture;
use machineconfig::documents::Document;
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::Serialize;

use crate::error::MachinedError;

/// The mode of a file whose document sets none.
const DEFAULT_MODE: u32 = 0o644;

/// Whether this controller applies `document` (it is not reported as unapplied).
pub fn applied_by_etc_files(document: &Document) -> bool {
    matches!(document, Document::EtcFile(_))
}

/// `EtcFileSpecs.files.talos.dev`: one file under `/etc`.
#[derive(Debug, Serialize)]
pub struct EtcFileSpec {
    pub contents: String,
    pub mode: u32,
}

impl Spec for EtcFileSpec {
    const TYPE: &'static str = "EtcFileSpecs.files.talos.dev";
    const NAMESPACE: &'static str = "files";
}

/// From the active config: the `EtcFileConfig` files under `<root>/etc`.
#[derive(Debug)]
pub struct EtcFilesController {
    /// The node's root (`/` in OS mode, the state directory in dev mode).
    pub root: PathBuf,
}

impl Controller for EtcFilesController {
    fn name(&self) -> &'static str {
        "files.EtcFileConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![crate::controllers::machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<EtcFileSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let config = crate::controllers::active_config(context)?;
            let etc = self.root.join("etc");
            let mut wanted = Vec::new();
            for document in config.iter().flat_map(|c| &c.documents) {
                let Document::EtcFile(file) = document else {
                    continue;
                };
                let relative = inside_etc(&file.name).map_err(|e| e.to_string())?;
                let spec = EtcFileSpec {
                    contents: file.contents.clone(),
                    mode: file.mode.as_ref().map_or(DEFAULT_MODE, |mode| mode.0),
                };
                write_file(&etc.join(&relative), &spec).map_err(|e| e.to_string())?;
                let id = relative.display().to_string();
                context.write(&id, &spec).map_err(|e| e.to_string())?;
                wanted.push(id);
            }
            let kind = Kind::of::<EtcFileSpec>();
            for resource in context.state().list(&kind) {
                let id = &resource.metadata.id;
                if resource.metadata.owner == self.name() && !wanted.contains(id) {
                    remove_file(&etc.join(id)).map_err(|e| e.to_string())?;
                }
            }
            let keep: Vec<&str> = wanted.iter().map(String::as_str).collect();
            context
                .keep_only::<EtcFileSpec>(&keep)
                .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

/// `name` as a normalised path inside `/etc` (validation refuses the others; checked again
/// here because the path is joined to the node's root).
fn inside_etc(name: &str) -> Result<PathBuf, MachinedError> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir if parts.pop().is_some() => {}
            _ => {
                return Err(MachinedError::InvalidArgument(format!(
                    "EtcFileConfig {name:?}: not a path inside /etc"
                )));
            }
        }
    }
    if parts.is_empty() {
        return Err(MachinedError::InvalidArgument(format!(
            "EtcFileConfig {name:?}: names no file"
        )));
    }
    Ok(parts.iter().collect())
}

fn write_file(path: &Path, spec: &EtcFileSpec) -> Result<(), MachinedError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(MachinedError::io("creating", dir))?;
    }
    if std::fs::read(path).is_ok_and(|old| old == spec.contents.as_bytes()) {
        use std::os::unix::fs::PermissionsExt as _;
        let permissions = std::fs::Permissions::from_mode(spec.mode);
        return std::fs::set_permissions(path, permissions)
            .map_err(MachinedError::io("setting the mode of", path));
    }
    atomicfile::write(
        path,
        spec.contents.as_bytes(),
        spec.mode,
        atomicfile::Overwrite::Allow,
    )?;
    Ok(())
}

fn remove_file(path: &Path) -> Result<(), MachinedError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(MachinedError::io("removing", path)(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_inside_etc() {
        assert_eq!(inside_etc("a/./b/../c").unwrap(), PathBuf::from("a/c"));
        assert!(inside_etc("../passwd").is_err());
        assert!(inside_etc("/etc/passwd").is_err());
        assert!(inside_etc("a/..").is_err());
    }
}
