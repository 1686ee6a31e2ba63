//! The ownership record: what networkd created or changed, so that it removes exactly that (and
//! nothing else) when it leaves the config, also after a restart of networkd. It also keeps the
//! last applied inputs, so a restarted networkd resumes the same configuration.
//!
//! It lives in `<state-dir>/system/run/networkd/owned.json`: under `run/` because the kernel
//! objects it describes do not outlive a reboot either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::NetworkdError;
use crate::plan::{AddressPlan, Inputs, LinkKind, RoutePlan, RulePlan};

/// What networkd owns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owned {
    /// Links networkd created, with the settings they were created with.
    pub links: BTreeMap<String, LinkKind>,
    /// Links networkd enslaved to a bond or bridge, with that master's name.
    pub enslaved: BTreeMap<String, String>,
    /// Links whose MTU networkd changed, with the MTU they had before.
    pub mtu: BTreeMap<String, u32>,
    /// Addresses networkd added.
    pub addresses: BTreeSet<AddressPlan>,
    /// Routes networkd added.
    pub routes: BTreeSet<RoutePlan>,
    /// Routing rules networkd added.
    #[serde(default)]
    pub rules: BTreeSet<RulePlan>,
    /// The inputs of the last accepted Apply.
    pub last_inputs: Option<Inputs>,
}

/// The ownership record's file.
#[derive(Debug, Clone)]
pub struct Record {
    path: PathBuf,
}

impl Record {
    /// The record of the networkd whose run directory is `run_dir`.
    pub fn new(run_dir: &Path) -> Self {
        Record {
            path: run_dir.join("owned.json"),
        }
    }

    /// Reads the record; a missing file is an empty record.
    pub fn load(&self) -> Result<Owned, NetworkdError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| NetworkdError::Record {
                path: self.path.clone(),
                source,
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Owned::default()),
            Err(source) => Err(NetworkdError::Io {
                path: self.path.clone(),
                step: "reading the ownership record",
                source,
            }),
        }
    }

    /// Writes the record atomically.
    pub fn save(&self, owned: &Owned) -> Result<(), NetworkdError> {
        let bytes = serde_json::to_vec_pretty(owned).map_err(|source| NetworkdError::Record {
            path: self.path.clone(),
            source,
        })?;
        atomicfile::write(&self.path, &bytes, 0o600, atomicfile::Overwrite::Allow)?;
        Ok(())
    }
}
