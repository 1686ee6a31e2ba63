//! `EtcdSpecs.etcd.talos.dev/etcd` (namespace `etcd`, owner `etcd.SpecController`): on control
//! planes, what the etcd member is started with — its name (the node's hostname as etcd gets it),
//! the address it advertises and listens on for peers and clients, and the config's image and
//! extra arguments. Other machine types have none.

use std::net::IpAddr;

use futures_util::future::BoxFuture;
use machineconfig::MachineType;
use machineconfig::v1alpha1::ExtraArgs;
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::Serialize;

use crate::controllers::{active_config, machine_config_kind};

/// `EtcdSpecs.etcd.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdSpec {
    pub name: String,
    pub advertised_addresses: Vec<IpAddr>,
    pub listen_peer_addresses: Vec<IpAddr>,
    pub listen_client_addresses: Vec<IpAddr>,
    pub image: String,
    pub extra_args: ExtraArgs,
}

impl Spec for EtcdSpec {
    const TYPE: &'static str = "EtcdSpecs.etcd.talos.dev";
    const NAMESPACE: &'static str = "etcd";
}

/// The machine config → the etcd spec of a control plane.
#[derive(Debug)]
pub struct EtcdSpecController {
    /// The node's address: etcd advertises and listens on it alone.
    pub address: IpAddr,
    /// The hostname when the config names none.
    pub default_hostname: String,
}

impl Controller for EtcdSpecController {
    fn name(&self) -> &'static str {
        "etcd.SpecController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<EtcdSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let spec = active_config(context)?.and_then(|config| {
                let v1alpha1 = config.v1alpha1?;
                let machine = v1alpha1.machine?;
                let machine_type: MachineType = machine.machine_type.parse().ok()?;
                if !machine_type.is_control_plane() {
                    return None;
                }
                let etcd = v1alpha1.cluster.and_then(|c| c.etcd).unwrap_or_default();
                Some(EtcdSpec {
                    name: machine
                        .network
                        .and_then(|n| n.hostname)
                        .unwrap_or_else(|| self.default_hostname.clone()),
                    advertised_addresses: vec![self.address],
                    listen_peer_addresses: vec![self.address],
                    listen_client_addresses: vec![self.address],
                    image: etcd.image.unwrap_or_default(),
                    extra_args: etcd.extra_args,
                })
            });
            match spec {
                Some(spec) => context.write("etcd", &spec).map(drop),
                None => context.keep_only::<EtcdSpec>(&[]),
            }
            .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use resources::{Runtime, State, WatchOptions};

    use super::*;
    use crate::controllers::ACTIVE_CONFIG_ID;

    const CONTROL_PLANE: &str = "version: v1alpha1\nmachine:\n  type: controlplane\n  \
        network:\n    hostname: cp-1\ncluster:\n  etcd:\n    image: gcr.io/etcd-development/etcd:v3.5.16\n    \
        extraArgs:\n      election-timeout: '5000'\n";

    #[tokio::test]
    async fn control_planes_get_an_etcd_spec_and_workers_none() {
        let state = Arc::new(State::new());
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(EtcdSpecController {
            address: "10.5.0.2".parse().unwrap(),
            default_hostname: "talos-default".into(),
        });
        let mut specs = state.watch(&Kind::of::<EtcdSpec>(), &WatchOptions::default());
        runtime.start();
        let write = |text: &str| {
            state
                .write(
                    "ConfigController",
                    &machine_config_kind(),
                    ACTIVE_CONFIG_ID,
                    text.into(),
                    Vec::new(),
                    BTreeMap::new(),
                )
                .unwrap()
        };
        write(CONTROL_PLANE);
        let created = tokio::time::timeout(Duration::from_secs(5), specs.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(created.resource.metadata.id, "etcd");
        assert_eq!(created.resource.metadata.owner, "etcd.SpecController");
        assert_eq!(
            created.resource.yaml_spec,
            "name: cp-1\nadvertisedAddresses:\n- 10.5.0.2\nlistenPeerAddresses:\n- 10.5.0.2\n\
             listenClientAddresses:\n- 10.5.0.2\nimage: gcr.io/etcd-development/etcd:v3.5.16\n\
             extraArgs:\n  election-timeout: '5000'\n"
        );
        write(&CONTROL_PLANE.replace("controlplane", "worker"));
        let destroyed = tokio::time::timeout(Duration::from_secs(5), specs.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(destroyed.kind, resources::EventKind::Destroyed);
    }
}
