//! What a local cluster is made of, kept in `<state>/<name>/state.yaml` and rewritten (atomically)
//! after every resource the provisioner creates, so that `cluster destroy` finds everything even
//! after a create that stopped half-way.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The state file's name inside the cluster's folder.
const STATE_FILE: &str = "state.yaml";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Controlplane,
    Worker,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Controlplane => "controlplane",
            NodeKind::Worker => "worker",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    pub ip: Ipv4Addr,
    pub cpus: f64,
    pub memory_bytes: u64,
    /// The container's name, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The VM's process (qemu), once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Bytes of the node's disks (qemu).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disk_bytes: u64,
    /// Disk files created for the node (qemu).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<PathBuf>,
    /// Volumes created for the node (docker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Published ports, `host address:port->container port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub name: String,
    pub provisioner: String,
    pub cidr: String,
    pub gateway: Ipv4Addr,
    pub mtu: u32,
    pub image: String,
    /// The network, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The network namespace holding the cluster's bridge and taps (qemu), once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The process publishing the nodes' ports on the host (qemu), once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper_pid: Option<u32>,
    /// apid of the first control plane as the host reaches it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// The Kubernetes API of the first control plane as the host reaches it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_endpoint: String,
    pub nodes: Vec<NodeState>,
}

impl ClusterState {
    /// `<state>/<name>`.
    pub fn dir(state_root: &Path, name: &str) -> PathBuf {
        state_root.join(name)
    }

    pub fn load(dir: &Path) -> anyhow::Result<Option<ClusterState>> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        serde_norway::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not a cluster state file", path.display()))
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(STATE_FILE);
        let text = serde_norway::to_string(self)?;
        atomicfile::write(&path, text.as_bytes(), 0o600, atomicfile::Overwrite::Allow)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn control_planes(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes
            .iter()
            .filter(|node| node.kind == NodeKind::Controlplane)
    }

    pub fn workers(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes
            .iter()
            .filter(|node| node.kind == NodeKind::Worker)
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let state = ClusterState {
            name: "demo".into(),
            provisioner: "docker".into(),
            cidr: "10.5.0.0/24".into(),
            gateway: Ipv4Addr::new(10, 5, 0, 1),
            mtu: 1500,
            image: "talos-rs/talos:v0.1.0".into(),
            network: Some("demo".into()),
            namespace: None,
            helper_pid: None,
            endpoint: "127.0.0.1:40000".into(),
            kubernetes_endpoint: String::new(),
            nodes: vec![NodeState {
                name: "demo-controlplane-1".into(),
                kind: NodeKind::Controlplane,
                ip: Ipv4Addr::new(10, 5, 0, 2),
                cpus: 2.0,
                memory_bytes: 2 << 30,
                container: Some("abc".into()),
                pid: None,
                disk_bytes: 0,
                disks: vec![],
                volumes: vec!["demo-controlplane-1-state".into()],
                ports: vec![],
            }],
        };
        assert_eq!(ClusterState::load(dir.path()).unwrap(), None);
        state.save(dir.path()).unwrap();
        assert_eq!(ClusterState::load(dir.path()).unwrap(), Some(state));
        std::fs::write(dir.path().join(STATE_FILE), "nodes: 3").unwrap();
        let error = ClusterState::load(dir.path()).unwrap_err();
        assert!(format!("{error:#}").contains("not a cluster state file"));
    }
}
