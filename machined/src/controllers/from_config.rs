//! Controllers that turn the active machine config into upstream's specs, one controller per
//! upstream controller name:
//!
//! - `cluster.InfoController`: `cluster.id` and `cluster.clusterName` →
//!   `Infos.cluster.talos.dev/current`;
//! - `runtime.KernelModuleConfigController`: `machine.kernel.modules` →
//!   `KernelModuleSpecs.runtime.talos.dev` (id: the module);
//! - `network.ResolverConfigController`: `machine.network.nameservers`, else networkd's
//!   defaults → `ResolverSpecs.net.talos.dev/resolvers`;
//! - `network.TimeServerConfigController`: `machine.time.servers` →
//!   `TimeServerSpecs.net.talos.dev/timeservers` (talos-rs has no default server: none
//!   configured means sync is off);
//! - `v1alpha1.AcquireConfigController`: a config is active →
//!   `AcquireConfigStatuses.v1alpha1.talos.dev/machine-config`;
//! - `secrets.RootController`: the CAs and tokens the config carries →
//!   `OSRootSecrets.secrets.talos.dev/os`, and on control planes
//!   `EtcdRootSecrets.secrets.talos.dev/etcd` and `KubernetesRootSecrets.secrets.talos.dev/k8s`
//!   (all sensitive).

use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::v1alpha1::{ClusterConfig, MachineConfig};
use pki::{PemCertificate, PemCertificateAndKey, PemKey};
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::Serialize;

use super::{active_config, machine_config_kind};

/// `Infos.cluster.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfoSpec {
    pub cluster_id: String,
    pub cluster_name: String,
}

impl Spec for ClusterInfoSpec {
    const TYPE: &'static str = "Infos.cluster.talos.dev";
    const NAMESPACE: &'static str = "cluster";
}

/// `KernelModuleSpecs.runtime.talos.dev` (upstream names the module's field `string`).
#[derive(Debug, Serialize)]
pub struct KernelModuleSpec {
    #[serde(rename = "string")]
    pub name: String,
    pub parameters: Vec<String>,
}

impl Spec for KernelModuleSpec {
    const TYPE: &'static str = "KernelModuleSpecs.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `ResolverSpecs.net.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolverSpec {
    pub dns_servers: Vec<String>,
    pub layer: String,
}

impl Spec for ResolverSpec {
    const TYPE: &'static str = "ResolverSpecs.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `TimeServerSpecs.net.talos.dev`.
#[derive(Debug, Serialize)]
pub struct TimeServerSpec {
    #[serde(rename = "timeServers")]
    pub servers: Vec<String>,
    pub layer: String,
}

impl Spec for TimeServerSpec {
    const TYPE: &'static str = "TimeServerSpecs.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `AcquireConfigStatuses.v1alpha1.talos.dev`: an empty spec, present once a config is active.
#[derive(Debug, Serialize)]
pub struct AcquireConfigStatusSpec {}

impl Spec for AcquireConfigStatusSpec {
    const TYPE: &'static str = "AcquireConfigStatuses.v1alpha1.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `OSRootSecrets.secrets.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OsRootSpec {
    #[serde(rename = "issuingCA")]
    pub issuing_ca: Option<PemCertificateAndKey>,
    #[serde(rename = "acceptedCAs")]
    pub accepted_cas: Vec<PemCertificate>,
    #[serde(rename = "certSANIPs")]
    pub cert_san_ips: Vec<String>,
    #[serde(rename = "certSANDNSNames")]
    pub cert_san_dns_names: Vec<String>,
    pub token: String,
}

impl Spec for OsRootSpec {
    const TYPE: &'static str = "OSRootSecrets.secrets.talos.dev";
    const NAMESPACE: &'static str = "secrets";
}

/// `EtcdRootSecrets.secrets.talos.dev`.
#[derive(Debug, Serialize)]
pub struct EtcdRootSpec {
    #[serde(rename = "etcdCA")]
    pub etcd_ca: Option<PemCertificateAndKey>,
}

impl Spec for EtcdRootSpec {
    const TYPE: &'static str = "EtcdRootSecrets.secrets.talos.dev";
    const NAMESPACE: &'static str = "secrets";
}

/// `KubernetesRootSecrets.secrets.talos.dev` (the fields the config carries).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesRootSpec {
    pub name: String,
    pub endpoint: String,
    #[serde(rename = "certSANs")]
    pub cert_sans: Vec<String>,
    pub dns_domain: String,
    #[serde(rename = "issuingCA")]
    pub issuing_ca: Option<PemCertificateAndKey>,
    #[serde(rename = "acceptedCAs")]
    pub accepted_cas: Vec<PemCertificate>,
    #[serde(rename = "aggregatorCA")]
    pub aggregator_ca: Option<PemCertificateAndKey>,
    pub service_account: Option<PemKey>,
    #[serde(rename = "aesCBCEncryptionSecret")]
    pub aescbc_encryption_secret: String,
    #[serde(rename = "bootstrapTokenID")]
    pub bootstrap_token_id: String,
    pub bootstrap_token_secret: String,
    pub secretbox_encryption_secret: String,
}

impl Spec for KubernetesRootSpec {
    const TYPE: &'static str = "KubernetesRootSecrets.secrets.talos.dev";
    const NAMESPACE: &'static str = "secrets";
}

/// The default nameservers networkd uses when the config names none (upstream's too).
const DEFAULT_NAMESERVERS: [&str; 2] = ["1.1.1.1", "8.8.8.8"];

/// What a controller writes from the config (`None` while no config is active).
type Derive = fn(&Context, Option<&Config>) -> Result<(), resources::StateError>;

/// A controller that writes `outputs` from the active config with `derive`.
pub struct FromConfig {
    name: &'static str,
    outputs: Vec<Kind>,
    derive: Derive,
}

impl Controller for FromConfig {
    fn name(&self) -> &'static str {
        self.name
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        self.outputs.clone()
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let config = active_config(context)?;
            (self.derive)(context, config.as_ref()).map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

/// Every controller of this module.
pub fn controllers() -> Vec<FromConfig> {
    vec![
        FromConfig {
            name: "cluster.InfoController",
            outputs: vec![Kind::of::<ClusterInfoSpec>()],
            derive: cluster_info,
        },
        FromConfig {
            name: "runtime.KernelModuleConfigController",
            outputs: vec![Kind::of::<KernelModuleSpec>()],
            derive: kernel_modules,
        },
        FromConfig {
            name: "network.ResolverConfigController",
            outputs: vec![Kind::of::<ResolverSpec>()],
            derive: resolvers,
        },
        FromConfig {
            name: "network.TimeServerConfigController",
            outputs: vec![Kind::of::<TimeServerSpec>()],
            derive: time_servers,
        },
        FromConfig {
            name: "v1alpha1.AcquireConfigController",
            outputs: vec![Kind::of::<AcquireConfigStatusSpec>()],
            derive: acquired,
        },
        FromConfig {
            name: "secrets.RootController",
            outputs: vec![
                Kind::of::<OsRootSpec>(),
                Kind::of::<EtcdRootSpec>(),
                Kind::of::<KubernetesRootSpec>(),
            ],
            derive: root_secrets,
        },
    ]
}

fn machine(config: Option<&Config>) -> Option<&MachineConfig> {
    config?.v1alpha1.as_ref()?.machine.as_ref()
}

fn cluster(config: Option<&Config>) -> Option<&ClusterConfig> {
    config?.v1alpha1.as_ref()?.cluster.as_ref()
}

fn cluster_info(context: &Context, config: Option<&Config>) -> Result<(), resources::StateError> {
    match cluster(config) {
        Some(cluster) => context
            .write(
                "current",
                &ClusterInfoSpec {
                    cluster_id: cluster.id.clone().unwrap_or_default(),
                    cluster_name: cluster.cluster_name.clone().unwrap_or_default(),
                },
            )
            .map(drop),
        None => context.keep_only::<ClusterInfoSpec>(&[]),
    }
}

fn kernel_modules(context: &Context, config: Option<&Config>) -> Result<(), resources::StateError> {
    let modules = machine(config)
        .and_then(|m| m.kernel.as_ref())
        .map(|k| k.modules.clone())
        .unwrap_or_default();
    for module in &modules {
        context.write(
            &module.name,
            &KernelModuleSpec {
                name: module.name.clone(),
                parameters: module.parameters.clone(),
            },
        )?;
    }
    let ids: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    context.keep_only::<KernelModuleSpec>(&ids)
}

fn resolvers(context: &Context, config: Option<&Config>) -> Result<(), resources::StateError> {
    let configured = machine(config)
        .and_then(|m| m.network.as_ref())
        .map(|n| n.nameservers.clone())
        .unwrap_or_default();
    let spec = if configured.is_empty() {
        ResolverSpec {
            dns_servers: DEFAULT_NAMESERVERS.map(str::to_string).to_vec(),
            layer: "default".into(),
        }
    } else {
        ResolverSpec {
            dns_servers: configured,
            layer: "configuration".into(),
        }
    };
    context.write("resolvers", &spec).map(drop)
}

fn time_servers(context: &Context, config: Option<&Config>) -> Result<(), resources::StateError> {
    let servers = machine(config)
        .and_then(|m| m.time.as_ref())
        .map(|t| t.servers.clone())
        .unwrap_or_default();
    let layer = if servers.is_empty() {
        "default"
    } else {
        "configuration"
    };
    let spec = TimeServerSpec {
        servers,
        layer: layer.into(),
    };
    context.write("timeservers", &spec).map(drop)
}

fn acquired(context: &Context, config: Option<&Config>) -> Result<(), resources::StateError> {
    match config {
        Some(_) => context
            .write("machine-config", &AcquireConfigStatusSpec {})
            .map(drop),
        None => context.keep_only::<AcquireConfigStatusSpec>(&[]),
    }
}

fn root_secrets(context: &Context, config: Option<&Config>) -> Result<(), resources::StateError> {
    let Some(machine) = machine(config) else {
        context.keep_only::<OsRootSpec>(&[])?;
        context.keep_only::<EtcdRootSpec>(&[])?;
        return context.keep_only::<KubernetesRootSpec>(&[]);
    };
    let (ips, names): (Vec<&String>, Vec<&String>) = machine
        .cert_sans
        .iter()
        .partition(|san| san.parse::<std::net::IpAddr>().is_ok());
    context.write(
        "os",
        &OsRootSpec {
            issuing_ca: machine.ca.clone(),
            accepted_cas: machine.accepted_cas.clone(),
            cert_san_ips: ips.into_iter().cloned().collect(),
            cert_san_dns_names: names.into_iter().cloned().collect(),
            token: machine.token.clone(),
        },
    )?;
    let control_plane = machine
        .machine_type
        .parse::<machineconfig::MachineType>()
        .is_ok_and(|t| t != machineconfig::MachineType::Worker);
    match cluster(config).filter(|_| control_plane) {
        Some(cluster) => {
            let etcd_ca = cluster.etcd.as_ref().and_then(|e| e.ca.clone());
            context.write("etcd", &EtcdRootSpec { etcd_ca })?;
            let token = cluster.token.clone().unwrap_or_default();
            let (token_id, token_secret) = token.split_once('.').unwrap_or(("", ""));
            let spec = KubernetesRootSpec {
                name: cluster.cluster_name.clone().unwrap_or_default(),
                endpoint: cluster
                    .control_plane
                    .as_ref()
                    .map(|c| c.endpoint.clone())
                    .unwrap_or_default(),
                cert_sans: cluster
                    .api_server
                    .as_ref()
                    .map(|a| a.cert_sans.clone())
                    .unwrap_or_default(),
                dns_domain: cluster
                    .network
                    .as_ref()
                    .and_then(|n| n.dns_domain.clone())
                    .unwrap_or_else(|| "cluster.local".into()),
                issuing_ca: cluster.ca.clone(),
                accepted_cas: cluster.accepted_cas.clone(),
                aggregator_ca: cluster.aggregator_ca.clone(),
                service_account: cluster.service_account.clone(),
                aescbc_encryption_secret: cluster
                    .aescbc_encryption_secret
                    .clone()
                    .unwrap_or_default(),
                bootstrap_token_id: token_id.into(),
                bootstrap_token_secret: token_secret.into(),
                secretbox_encryption_secret: cluster
                    .secretbox_encryption_secret
                    .clone()
                    .unwrap_or_default(),
            };
            context.write("k8s", &spec).map(drop)
        }
        None => {
            context.keep_only::<EtcdRootSpec>(&[])?;
            context.keep_only::<KubernetesRootSpec>(&[])
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::sync::Arc;

    use resources::{Runtime, State};

    use super::*;
    use crate::controllers::ACTIVE_CONFIG_ID;

    const WORKER: &str = "version: v1alpha1\nmachine:\n  type: worker\n  token: abc.def\n  \
        certSANs: [10.0.0.1, node.example.org]\n  kernel:\n    modules:\n      - name: br_netfilter\n\
        \x20       parameters: [a=1]\n  time:\n    servers: [ntp.example.org]\n  network:\n    \
        nameservers: [9.9.9.9]\ncluster:\n  id: cluster-id\n  clusterName: demo\n  token: tok123.secret\n";

    /// The spec of `kind`/`id` once it exists and `wanted` says so (within 5 s; the last one
    /// seen otherwise).
    async fn settled(state: &State, kind: Kind, id: &str, wanted: &str) -> String {
        let mut seen = String::new();
        for _ in 0..500 {
            if let Some(current) = state.get(&kind, id) {
                seen = current.yaml_spec.clone();
                if seen.contains(wanted) {
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        seen
    }

    #[tokio::test]
    async fn the_config_gives_cluster_info_modules_resolvers_time_servers_and_secrets() {
        let state = Arc::new(State::new());
        let mut runtime = Runtime::new(Arc::clone(&state));
        for controller in controllers() {
            runtime.register(controller);
        }
        runtime.start();
        // Before any config: the defaults, and nothing that needs a config.
        assert_eq!(
            settled(&state, Kind::of::<ResolverSpec>(), "resolvers", "").await,
            "dnsServers:\n- 1.1.1.1\n- 8.8.8.8\nlayer: default\n"
        );
        assert!(
            state
                .list(&Kind::of::<AcquireConfigStatusSpec>())
                .is_empty()
        );

        state
            .write(
                "ConfigController",
                &machine_config_kind(),
                ACTIVE_CONFIG_ID,
                WORKER.into(),
                Vec::new(),
                BTreeMap::new(),
            )
            .unwrap();
        assert_eq!(
            settled(&state, Kind::of::<ClusterInfoSpec>(), "current", "").await,
            "clusterId: cluster-id\nclusterName: demo\n"
        );
        assert_eq!(
            settled(&state, Kind::of::<KernelModuleSpec>(), "br_netfilter", "").await,
            "string: br_netfilter\nparameters:\n- a=1\n"
        );
        assert_eq!(
            settled(
                &state,
                Kind::of::<TimeServerSpec>(),
                "timeservers",
                "configuration"
            )
            .await,
            "timeServers:\n- ntp.example.org\nlayer: configuration\n"
        );
        assert_eq!(
            settled(
                &state,
                Kind::of::<AcquireConfigStatusSpec>(),
                "machine-config",
                ""
            )
            .await,
            "{}\n"
        );
        let os = settled(&state, Kind::of::<OsRootSpec>(), "os", "").await;
        assert!(
            os.contains(
                "certSANIPs:\n- 10.0.0.1\ncertSANDNSNames:\n- node.example.org\ntoken: abc.def"
            ),
            "{os}"
        );
        // A worker holds no etcd or Kubernetes root secrets.
        assert!(state.list(&Kind::of::<EtcdRootSpec>()).is_empty());
        assert!(state.list(&Kind::of::<KubernetesRootSpec>()).is_empty());

        let control_plane = WORKER.replace("type: worker", "type: controlplane");
        state
            .write(
                "ConfigController",
                &machine_config_kind(),
                ACTIVE_CONFIG_ID,
                control_plane,
                Vec::new(),
                BTreeMap::new(),
            )
            .unwrap();
        let k8s = settled(&state, Kind::of::<KubernetesRootSpec>(), "k8s", "").await;
        assert!(k8s.contains("bootstrapTokenID: tok123\n"), "{k8s}");
        assert!(k8s.contains("dnsDomain: cluster.local\n"), "{k8s}");
        assert_eq!(
            settled(&state, Kind::of::<EtcdRootSpec>(), "etcd", "").await,
            "etcdCA: null\n"
        );
    }
}
