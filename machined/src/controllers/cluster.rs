//! The node as a cluster member, as upstream's `cluster` resources, and the running version.
//!
//! - `Identities.cluster.talos.dev/local`: the node id, 32 random bytes in base62 made once and
//!   kept on the STATE partition (`system/state/node-identity.yaml`), as upstream does;
//! - `Versions.runtime.talos.dev/version`: the release machined runs;
//! - `cluster.LocalAffiliateController`: identity, hostname spec and machine type →
//!   `Affiliates.cluster.talos.dev/<node id>` (this node; talos-rs runs no discovery, so it is
//!   the only affiliate);
//! - `cluster.MemberController`: affiliates → `Members.cluster.talos.dev/<node name>`.

use std::net::IpAddr;
use std::path::Path;

use futures_util::future::BoxFuture;
use resources::{Context, Controller, Kind, Requeue, Spec, State};
use serde::{Deserialize, Serialize};

use super::{HostnameSpec, MachineTypeSpec};
use crate::error::MachinedError;

/// `Identities.cluster.talos.dev`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySpec {
    pub node_id: String,
}

impl Spec for IdentitySpec {
    const TYPE: &'static str = "Identities.cluster.talos.dev";
    const NAMESPACE: &'static str = "cluster";
}

/// `Versions.runtime.talos.dev`.
#[derive(Debug, Serialize)]
pub struct VersionSpec {
    pub name: String,
    pub version: String,
}

impl Spec for VersionSpec {
    const TYPE: &'static str = "Versions.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `controlPlane` of an affiliate or member.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct ControlPlaneSpec {
    pub port: u16,
}

/// `Affiliates.cluster.talos.dev`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AffiliateSpec {
    pub node_id: String,
    pub addresses: Vec<IpAddr>,
    pub hostname: String,
    pub nodename: String,
    pub operating_system: String,
    pub machine_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlaneSpec>,
}

impl Spec for AffiliateSpec {
    const TYPE: &'static str = "Affiliates.cluster.talos.dev";
    const NAMESPACE: &'static str = "cluster";
}

/// `Members.cluster.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberSpec {
    pub node_id: String,
    pub addresses: Vec<IpAddr>,
    pub hostname: String,
    pub machine_type: String,
    pub operating_system: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlaneSpec>,
}

impl Spec for MemberSpec {
    const TYPE: &'static str = "Members.cluster.talos.dev";
    const NAMESPACE: &'static str = "cluster";
}

/// The API server's port that control plane affiliates announce.
const API_SERVER_PORT: u16 = 6443;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `bytes` as a base62 number (most significant digit first).
pub fn base62(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.to_vec();
    let mut digits = Vec::new();
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        digits.push(BASE62[remainder as usize]);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// The node id kept at `path`, made (and kept) on first use.
pub fn load_or_create_identity(path: &Path) -> Result<IdentitySpec, MachinedError> {
    let failed = |step: &str, reason: String| {
        MachinedError::Internal(format!(
            "node identity {}: {step}: {reason}",
            path.display()
        ))
    };
    if let Ok(text) = std::fs::read_to_string(path) {
        return serde_norway::from_str(&text).map_err(|e| failed("decoding", e.to_string()));
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| failed("random bytes", "the system gave none".into()))?;
    let identity = IdentitySpec {
        node_id: base62(&bytes),
    };
    let yaml = serde_norway::to_string(&identity).map_err(|e| failed("encoding", e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed("creating its directory", e.to_string()))?;
    }
    atomicfile::write(path, yaml.as_bytes(), 0o600, atomicfile::Overwrite::Allow)
        .map_err(|e| failed("writing", e.to_string()))?;
    Ok(identity)
}

/// Writes the node's identity and version (sources, owned as upstream names them).
pub fn publish_identity(state: &State, identity: &IdentitySpec, release: &str) {
    let version = VersionSpec {
        name: "Talos".into(),
        version: release.to_string(),
    };
    for written in [
        state.write_spec("cluster.NodeIdentityController", "local", identity),
        state.write_spec("runtime.VersionController", "version", &version),
    ] {
        if let Err(error) = written {
            tracing::error!(%error, "cannot publish the node's identity");
        }
    }
}

/// This node as an affiliate.
pub struct LocalAffiliateController {
    pub address: IpAddr,
    pub release: String,
}

impl Controller for LocalAffiliateController {
    fn name(&self) -> &'static str {
        "cluster.LocalAffiliateController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![
            Kind::of::<IdentitySpec>(),
            Kind::of::<HostnameSpec>(),
            Kind::of::<MachineTypeSpec>(),
        ]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<AffiliateSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let state = context.state();
            let decode = |kind: Kind, id: &str| -> Result<Option<serde_norway::Value>, String> {
                state
                    .get(&kind, id)
                    .map(|r| serde_norway::from_str(&r.yaml_spec).map_err(|e| e.to_string()))
                    .transpose()
            };
            let identity = decode(Kind::of::<IdentitySpec>(), "local")?;
            let hostname = decode(Kind::of::<HostnameSpec>(), "hostname")?;
            let machine_type = decode(Kind::of::<MachineTypeSpec>(), "machine-type")?;
            let (Some(identity), Some(hostname), Some(machine_type)) =
                (identity, hostname, machine_type)
            else {
                context
                    .keep_only::<AffiliateSpec>(&[])
                    .map_err(|e| e.to_string())?;
                return Ok(Requeue::Never);
            };
            let text = |value: &serde_norway::Value, key: &str| {
                value[key].as_str().unwrap_or_default().to_string()
            };
            let node_id = text(&identity, "nodeId");
            let nodename = text(&hostname, "hostname");
            let domain = text(&hostname, "domainname");
            let machine_type = text(&machine_type, "machineType");
            let spec = AffiliateSpec {
                node_id: node_id.clone(),
                addresses: vec![self.address],
                hostname: if domain.is_empty() {
                    nodename.clone()
                } else {
                    format!("{nodename}.{domain}")
                },
                nodename,
                operating_system: format!("Talos ({})", self.release),
                control_plane: (machine_type == "controlplane" || machine_type == "init")
                    .then_some(ControlPlaneSpec {
                        port: API_SERVER_PORT,
                    }),
                machine_type,
            };
            context.write(&node_id, &spec).map_err(|e| e.to_string())?;
            context
                .keep_only::<AffiliateSpec>(&[&node_id])
                .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

/// Every affiliate as a member, named by its node name.
pub struct MemberController;

impl Controller for MemberController {
    fn name(&self) -> &'static str {
        "cluster.MemberController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![Kind::of::<AffiliateSpec>()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<MemberSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            for resource in context.state().list(&Kind::of::<AffiliateSpec>()) {
                let affiliate: AffiliateSpec =
                    serde_norway::from_str(&resource.yaml_spec).map_err(|e| e.to_string())?;
                let spec = MemberSpec {
                    node_id: affiliate.node_id,
                    addresses: affiliate.addresses,
                    hostname: affiliate.hostname,
                    machine_type: affiliate.machine_type,
                    operating_system: affiliate.operating_system,
                    control_plane: affiliate.control_plane,
                };
                context
                    .write(&affiliate.nodename, &spec)
                    .map_err(|e| e.to_string())?;
                ids.push(affiliate.nodename);
            }
            let keep: Vec<&str> = ids.iter().map(String::as_str).collect();
            context
                .keep_only::<MemberSpec>(&keep)
                .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use resources::{Runtime, WatchOptions};

    use super::*;

    #[test]
    fn base62_counts_in_62s() {
        assert_eq!(base62(&[0]), "0");
        assert_eq!(base62(&[61]), "z");
        assert_eq!(base62(&[62]), "10");
        assert_eq!(base62(&[1, 0]), "48"); // 256 = 4·62 + 8
        assert_eq!(base62(&[0xff; 32]).len(), 43);
    }

    #[test]
    fn the_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/node-identity.yaml");
        let first = load_or_create_identity(&path).unwrap();
        assert!(first.node_id.len() >= 40, "{}", first.node_id);
        assert_eq!(load_or_create_identity(&path).unwrap(), first);
        std::fs::write(&path, "- not an identity").unwrap();
        assert!(load_or_create_identity(&path).is_err());
    }

    #[tokio::test]
    async fn the_node_is_its_own_affiliate_and_member() {
        let state = Arc::new(State::new());
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(LocalAffiliateController {
            address: "10.5.0.2".parse().unwrap(),
            release: "v0.1.0".into(),
        });
        runtime.register(MemberController);
        let mut members = state.watch(&Kind::of::<MemberSpec>(), &WatchOptions::default());
        runtime.start();
        let identity = IdentitySpec {
            node_id: "abc".into(),
        };
        publish_identity(&state, &identity, "v0.1.0");
        state
            .write_spec(
                "network.HostnameConfigController",
                "hostname",
                &HostnameSpec {
                    hostname: "cp-1".into(),
                    domainname: "example.org".into(),
                    layer: "configuration".into(),
                },
            )
            .unwrap();
        assert!(state.list(&Kind::of::<AffiliateSpec>()).is_empty());
        state
            .write_spec(
                "config.MachineTypeController",
                "machine-type",
                &MachineTypeSpec {
                    machine_type: "controlplane".into(),
                },
            )
            .unwrap();
        let member = tokio::time::timeout(std::time::Duration::from_secs(5), members.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(member.resource.metadata.id, "cp-1");
        assert_eq!(
            member.resource.yaml_spec,
            "nodeId: abc\naddresses:\n- 10.5.0.2\nhostname: cp-1.example.org\n\
             machineType: controlplane\noperatingSystem: Talos (v0.1.0)\ncontrolPlane:\n  port: 6443\n"
        );
        let affiliate = state.get(&Kind::of::<AffiliateSpec>(), "abc").unwrap();
        assert!(affiliate.yaml_spec.contains("nodename: cp-1\n"));
        let version = state.get(&Kind::of::<VersionSpec>(), "version").unwrap();
        assert_eq!(version.yaml_spec, "name: Talos\nversion: v0.1.0\n");
    }
}
