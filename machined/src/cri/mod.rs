//! The CRI side of the machine config, a controller ([`CriConfigController`]): the registries
//! (`machine.registries` and the `RegistryMirrorConfig`, `RegistryAuthConfig`,
//! `RegistryTLSConfig` documents) as the `RegistryConfigs.cri.talos.dev/registries` resource,
//! and the files upstream's containerd reads, under the node's root:
//!
//! - `etc/cri/conf.d/hosts/<registry>/hosts.toml` with its CA and client certificate files
//!   ([`hosts`]), synced: a registry that goes away takes its directory with it;
//! - `etc/cri/conf.d/cri.toml`, the merged CRI plugin configuration ([`parts`]) with the
//!   registries part and each `CRICustomizationConfig` fragment.
//!
//! Files are written atomically and only when their contents change. No CRI containerd runs
//! here (no Kubernetes images): the files are the contract, checked as files.

mod hosts;
mod parts;
mod registries;

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use resources::{Context, Controller, Kind, Requeue};

use crate::error::MachinedError;
use registries::REGISTRIES_ID;
pub use registries::RegistriesSpec;

/// Whether this controller applies `document` (it is not reported as unapplied).
pub fn applied_by_cri(document: &Document) -> bool {
    matches!(
        document,
        Document::RegistryMirror(_)
            | Document::RegistryAuth(_)
            | Document::RegistryTls(_)
            | Document::CriCustomization(_)
    )
}

/// From the active config: the registries resource and the CRI files under `root`.
#[derive(Debug)]
pub struct CriConfigController {
    /// The node's root (`/` in OS mode, the state directory in dev mode).
    pub root: PathBuf,
}

impl Controller for CriConfigController {
    fn name(&self) -> &'static str {
        "files.CRIConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![crate::controllers::machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<RegistriesSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let Some(config) = crate::controllers::active_config(context)? else {
                context
                    .keep_only::<RegistriesSpec>(&[])
                    .map_err(|e| e.to_string())?;
                return Ok(Requeue::Never);
            };
            let spec = RegistriesSpec::from_config(Some(&config)).map_err(|e| e.to_string())?;
            self.write_files(&config, &spec)
                .map_err(|e| e.to_string())?;
            context
                .write(REGISTRIES_ID, &spec)
                .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

impl CriConfigController {
    fn write_files(&self, config: &Config, spec: &RegistriesSpec) -> Result<(), MachinedError> {
        let conf_d = self.root.join("etc/cri/conf.d");
        let hosts_dir = conf_d.join("hosts");
        let directories = hosts::generate(spec, &hosts_dir)?;
        let mut parts = parts::physical_parts(&conf_d)?;
        parts.insert(
            "01-registries.part".into(),
            parts::Part {
                contents: parts::registries_part(spec, &hosts_dir)?,
                origin: "in-memory registries".into(),
            },
        );
        for document in &config.documents {
            if let Document::CriCustomization(customization) = document {
                parts.insert(
                    format!("20-{}.part", customization.name),
                    parts::Part {
                        contents: customization.content.clone(),
                        origin: format!("in-memory customization {:?}", customization.name),
                    },
                );
            }
        }
        let merged = parts::merge(&parts)?;
        std::fs::create_dir_all(&conf_d).map_err(MachinedError::io("creating", &conf_d))?;
        hosts::sync(&hosts_dir, &directories)?;
        let cri_toml = conf_d.join("cri.toml");
        if std::fs::read(&cri_toml).is_ok_and(|old| old == merged.as_bytes()) {
            return Ok(());
        }
        atomicfile::write(
            &cri_toml,
            merged.as_bytes(),
            0o600,
            atomicfile::Overwrite::Allow,
        )?;
        Ok(())
    }
}
