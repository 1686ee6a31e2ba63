//! Resources and their metadata.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::Serialize;

use crate::StateError;

/// A kind of resource: its namespace and type (e.g. `network`, `AddressStatuses.net.talos.dev`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    pub namespace: String,
    pub resource_type: String,
}

impl Kind {
    pub fn new(namespace: impl Into<String>, resource_type: impl Into<String>) -> Self {
        Kind {
            namespace: namespace.into(),
            resource_type: resource_type.into(),
        }
    }

    /// The kind of the typed spec `S`.
    pub fn of<S: Spec>() -> Self {
        Kind::new(S::NAMESPACE, S::TYPE)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.resource_type)
    }
}

/// A resource's life phase, as upstream names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    TearingDown,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::TearingDown => "tearingDown",
        }
    }
}

/// What the state records about a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub kind: Kind,
    pub id: String,
    /// Starts at 1, grows by one with every change.
    pub version: u64,
    /// The controller (or component) that wrote it; only it may change or destroy it.
    pub owner: String,
    pub phase: Phase,
    pub created: SystemTime,
    pub updated: SystemTime,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub finalizers: Vec<String>,
}

/// A resource: metadata and its spec in upstream's two wire forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub metadata: Metadata,
    /// The spec as upstream's YAML (what `talosctl get -o yaml` prints under `spec:`).
    pub yaml_spec: String,
    /// The spec as upstream's protobuf message, where one is defined (else empty).
    pub proto_spec: Vec<u8>,
}

/// A typed spec: its kind, its YAML form (serde, upstream's field names) and, where upstream
/// defines one, its protobuf form.
pub trait Spec: Serialize {
    /// The resource type, e.g. `MachineStatuses.runtime.talos.dev`.
    const TYPE: &'static str;
    /// The namespace, e.g. `runtime`.
    const NAMESPACE: &'static str;

    /// The protobuf encoding of the spec; empty where upstream has none.
    fn proto_spec(&self) -> Vec<u8> {
        Vec::new()
    }

    /// The YAML encoding of the spec.
    fn yaml_spec(&self) -> Result<String, StateError> {
        serde_norway::to_string(self).map_err(|e| StateError::Encode {
            resource_type: Self::TYPE.to_string(),
            reason: e.to_string(),
        })
    }
}
