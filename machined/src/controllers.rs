//! machined's resources: what feeds the state and the controllers that turn it into more.
//!
//! Sources write what comes from outside the state, as the owners upstream names:
//! - the active machine config → `MachineConfigs.config.talos.dev/v1alpha1` (owner
//!   `ConfigController`; sensitive: admins only);
//! - service transitions (the supervisor's events) → `Services.v1alpha1.talos.dev`, one per
//!   service (owner `ServiceController`);
//! - the machine stage (MachineStatus events) → `MachineStatuses.runtime.talos.dev/machine`
//!   (owner `MachineStatusController`).
//!
//! Controllers (run by [`resources::Runtime`]) derive from the config: the machine type
//! (`MachineTypes.config.talos.dev/machine-type`), the Kubernetes files and specs
//! ([`crate::kubelet`]) and the hostname the node should have
//! (`HostnameSpecs.net.talos.dev/hostname`: `machine.network.hostname` or the `HostnameConfig`
//! document's, else the default). Two hand the config to the daemons that apply it once their
//! `Services` resource says they run: `machine.time` to timed
//! ([`crate::time_sync::TimedConfigController`]) and `machine.network` with the network
//! documents to networkd ([`crate::network::NetworkdConfigController`]). The log destinations
//! follow the config too ([`crate::log_shipping::LogShippingController`]), and control planes
//! publish what etcd runs with ([`crate::etcd::spec`]) and, while etcd runs, its member id
//! ([`crate::etcd::member`]).
//!
//! More sources and controllers, each in its module: [`host`] (kernel, mounts, hardware),
//! [`kernel_params`] (sysctls and sysfs),
//! [`from_config`] (cluster info, module and network specs, root secrets), [`cluster`] (node
//! identity, version, affiliate and member), [`time_status`] (timed's sync state) and
//! [`network_status`] (networkd's links, addresses, routes, hostname and resolvers) and
//! [`cert_sans`] (the names of the API certificates).

pub mod boot_artifacts;
pub mod cert_sans;
pub mod cluster;
pub mod disks;
pub mod from_config;
pub mod host;
pub mod kernel_params;
pub mod network_status;
pub mod time_status;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use proto::machine::{MachineStatusEvent, ServiceStateEvent, machine_status_event};
use resources::{Context, Controller, ControllerGraph, Kind, Requeue, Runtime, Spec, State};
use serde::{Deserialize, Serialize};

use crate::events::{EventBus, RuntimeEvent, SubscribeOptions, Tail};
use crate::node_config::NodeConfig;

/// The machine config resource's kind and the id of the active config.
pub const MACHINE_CONFIG_NAMESPACE: &str = "config";
pub const MACHINE_CONFIG_TYPE: &str = "MachineConfigs.config.talos.dev";
pub const ACTIVE_CONFIG_ID: &str = "v1alpha1";

pub(crate) fn machine_config_kind() -> Kind {
    Kind::new(MACHINE_CONFIG_NAMESPACE, MACHINE_CONFIG_TYPE)
}

/// `MachineTypes.config.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineTypeSpec {
    pub machine_type: String,
}

impl Spec for MachineTypeSpec {
    const TYPE: &'static str = "MachineTypes.config.talos.dev";
    const NAMESPACE: &'static str = "config";
}

/// `HostnameSpecs.net.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostnameSpec {
    pub hostname: String,
    pub domainname: String,
    pub layer: String,
}

impl Spec for HostnameSpec {
    const TYPE: &'static str = "HostnameSpecs.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// `Services.v1alpha1.talos.dev`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub running: bool,
    pub healthy: bool,
    pub unknown: bool,
}

impl Spec for ServiceSpec {
    const TYPE: &'static str = "Services.v1alpha1.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `MachineStatuses.runtime.talos.dev`.
#[derive(Debug, Serialize)]
pub struct MachineStatusSpec {
    pub stage: String,
    pub status: MachineStatusDetail,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineStatusDetail {
    pub ready: bool,
    pub unmet_conditions: Vec<UnmetCondition>,
}

#[derive(Debug, Serialize)]
pub struct UnmetCondition {
    pub name: String,
    pub reason: String,
}

impl Spec for MachineStatusSpec {
    const TYPE: &'static str = "MachineStatuses.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `PlatformMetadatas.talos.dev`: what the cloud provider says about the instance (id
/// `platformmetadata`), published once at boot by the platform code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformMetadataSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub zone: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spot: bool,
    #[serde(rename = "internalDNS", skip_serializing_if = "String::is_empty")]
    pub internal_dns: String,
    #[serde(rename = "externalDNS", skip_serializing_if = "String::is_empty")]
    pub external_dns: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Spec for PlatformMetadataSpec {
    const TYPE: &'static str = "PlatformMetadatas.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// The one platform metadata resource's id and owner.
pub const PLATFORM_METADATA_ID: &str = "platformmetadata";
const PLATFORM_METADATA_OWNER: &str = "network.PlatformConfigController";

/// `MetaKeys.runtime.talos.dev`: one META entry, id `0x0a`-style.
#[derive(Debug, Serialize)]
pub struct MetaKeySpec {
    pub value: String,
}

impl Spec for MetaKeySpec {
    const TYPE: &'static str = "MetaKeys.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

const META_OWNER: &str = "MetaController";

/// META's entries as resources (after boot and after every change).
pub(crate) fn publish_meta_keys(state: &State, meta: &crate::upgrade::meta::Meta) {
    let ids: Vec<String> = meta
        .values
        .keys()
        .map(|key| format!("0x{key:02x}"))
        .collect();
    for ((_, value), id) in meta.values.iter().zip(&ids) {
        let spec = MetaKeySpec {
            value: String::from_utf8_lossy(value).into_owned(),
        };
        if let Err(error) = state.write_spec(META_OWNER, id, &spec) {
            tracing::error!(%error, "cannot publish META key {id}");
        }
    }
    let kind = Kind::of::<MetaKeySpec>();
    for stale in state.list(&kind) {
        if !ids.contains(&stale.metadata.id) {
            let _ = state.destroy(META_OWNER, &kind, &stale.metadata.id);
        }
    }
}

/// What the sources read from outside the state.
pub struct Sources {
    /// The node's address (apid's IP), which it announces as an affiliate.
    pub address: IpAddr,
    /// The release machined runs.
    pub release: String,
    /// procfs and sysfs.
    pub host: hostinfo::Host,
    /// Whether machined is PID 1 and so owns the host's kernel parameters and watchdogs (in
    /// dev mode the config's are published, never applied to the host).
    pub owns_host: bool,
    /// The sysctls the boot sequence set, `(key, value)` (none in dev mode).
    pub kernel_param_defaults: Vec<(String, String)>,
    /// Where the node identity is kept.
    pub identity_file: std::path::PathBuf,
    /// timed's socket.
    pub timed_socket: std::path::PathBuf,
    /// networkd's socket, when machined runs networkd (it owns the network).
    pub networkd_socket: Option<std::path::PathBuf>,
    /// The `hosts` and `resolv.conf` files networkd writes.
    pub network_etc_files: [std::path::PathBuf; 2],
    /// `machine.network` as the platform gives it (YAML), for a config without one.
    pub platform_network: String,
    /// The event sink of the kernel argument (`talos.events.sink`), unless a document names one.
    pub events_sink: Option<String>,
    /// Where the kernel log goes besides the config's `KmsgLogConfig` documents.
    pub kernel_log_destination: Option<String>,
    /// What the cloud provider said about the instance, if the platform has a metadata service.
    pub platform_metadata: Option<PlatformMetadataSpec>,
    /// The variables of the kernel's `talos.environment` arguments.
    pub kernel_environment: Vec<(String, String)>,
    /// The node's own disks, where it owns them (none in dev mode and containers).
    pub block_devices: Option<crate::block::BlockDevices>,
    /// The digests of what booted, as PID 1 measures them (none in dev mode and containers).
    pub boot_artifacts: Option<tokio::sync::watch::Receiver<Vec<boot_artifacts::BootArtifact>>>,
}

/// Builds the state, starts its sources and controllers (`kubernetes` among them); returns the
/// state and the graph.
pub fn start(
    config: &Arc<NodeConfig>,
    events: &EventBus,
    default_hostname: &str,
    kubernetes: crate::kubelet::KubernetesController,
    sources: Sources,
) -> (Arc<State>, Vec<ControllerGraph>) {
    let state = Arc::new(State::new());
    tokio::spawn(feed_config(Arc::clone(config), Arc::clone(&state)));
    tokio::spawn(feed_events(events.clone(), Arc::clone(&state)));
    match cluster::load_or_create_identity(&sources.identity_file) {
        Ok(identity) => cluster::publish_identity(&state, &identity, &sources.release),
        Err(error) => tracing::error!(%error, "the node has no identity"),
    }
    if let Some(metadata) = &sources.platform_metadata
        && let Err(error) =
            state.write_spec(PLATFORM_METADATA_OWNER, PLATFORM_METADATA_ID, metadata)
    {
        tracing::error!(%error, "cannot publish the platform metadata");
    }
    tokio::spawn(host::run(sources.host, Arc::clone(&state)));
    if let Some(devices) = sources.block_devices {
        tokio::spawn(disks::run(devices, Arc::clone(&state)));
    }
    if let Some(measured) = sources.boot_artifacts {
        tokio::spawn(boot_artifacts::run(measured, Arc::clone(&state)));
    }
    let mut runtime = Runtime::new(Arc::clone(&state));
    runtime.observe_first_passes(Arc::new(stamp_slow_first_pass));
    runtime.register(crate::time_sync::TimedConfigController::new(
        crate::time_sync::timed_client(&sources.timed_socket),
    ));
    if let Some(socket) = &sources.networkd_socket {
        runtime.register(crate::network::NetworkdConfigController::new(
            crate::network::networkd_client(socket),
            sources.platform_network,
        ));
        tokio::spawn(network_status::run(socket.clone(), Arc::clone(&state)));
        runtime.register(network_status::NodeAddressController);
        runtime.register(network_status::NetworkStatusController {
            etc_files: sources.network_etc_files,
        });
    }
    runtime.register(crate::vip::OperatorVipConfigController);
    runtime.register(crate::etcd::member::EtcdMemberController {
        member: crate::etcd::member::LocalMember {
            pki_dir: kubernetes.root.join("system/secrets/etcd"),
            address: sources.address,
        },
    });
    runtime.register(crate::etcd::spec::EtcdSpecController {
        address: sources.address,
        default_hostname: default_hostname.to_string(),
    });
    runtime.register(crate::log_shipping::LogShippingController::new(
        sources.kernel_log_destination,
    ));
    tokio::spawn(time_status::run(sources.timed_socket, Arc::clone(&state)));
    runtime.register(MachineTypeController);
    runtime.register(cert_sans::ApiCertSansController {
        address: sources.address,
    });
    runtime.register(HostnameController {
        default: default_hostname.to_string(),
    });
    runtime.register(crate::cri::CriConfigController {
        root: kubernetes.root.clone(),
    });
    runtime.register(crate::etc_files::EtcFilesController {
        root: kubernetes.root.clone(),
    });
    runtime.register(kubernetes);
    runtime.register(kernel_params::KernelParamConfigController);
    runtime.register(crate::watchdog::WatchdogTimerConfigController);
    runtime.register(crate::environment::EnvironmentController {
        kernel: sources.kernel_environment.clone(),
    });
    runtime.register(crate::event_sink::EventSinkConfigController {
        kernel_argument: sources.events_sink.clone(),
    });
    runtime.register(crate::event_sink::EventsSinkController::new(events.clone()));
    if sources.owns_host {
        kernel_params::publish_defaults(&state, &sources.kernel_param_defaults);
        runtime.register(kernel_params::KernelParamSpecController::new("/"));
        runtime.register(crate::watchdog::WatchdogTimerController::new(
            crate::os::watchdog::LinuxWatchdogs,
        ));
    }
    for controller in from_config::controllers() {
        runtime.register(controller);
    }
    runtime.register(cluster::LocalAffiliateController {
        address: sources.address,
        release: sources.release,
    });
    runtime.register(cluster::MemberController);
    let mut graph = runtime.graph();
    // The sources, as upstream's graph shows them: controllers with outputs only.
    let sourced: Vec<(&'static str, Vec<Kind>)> = vec![
        ("ConfigController", vec![machine_config_kind()]),
        ("ServiceController", vec![Kind::of::<ServiceSpec>()]),
        (
            "MachineStatusController",
            vec![Kind::of::<MachineStatusSpec>()],
        ),
        (META_OWNER, vec![Kind::of::<MetaKeySpec>()]),
        (
            PLATFORM_METADATA_OWNER,
            vec![Kind::of::<PlatformMetadataSpec>()],
        ),
        (
            "cluster.NodeIdentityController",
            vec![Kind::of::<cluster::IdentitySpec>()],
        ),
        (
            "runtime.VersionController",
            vec![Kind::of::<cluster::VersionSpec>()],
        ),
        (
            host::OWNER,
            vec![
                Kind::of::<host::LoadedKernelModuleSpec>(),
                Kind::of::<host::MountStatusSpec>(),
                Kind::of::<host::KernelCmdlineSpec>(),
                Kind::of::<host::BootIdSpec>(),
                Kind::of::<host::SecurityStateSpec>(),
                Kind::of::<host::ProcessorSpec>(),
                Kind::of::<host::SystemInformationSpec>(),
                Kind::of::<host::PciDeviceSpec>(),
            ],
        ),
        (
            kernel_params::DEFAULTS_OWNER,
            vec![Kind::of::<kernel_params::KernelParamDefaultSpec>()],
        ),
        (
            crate::vip::ADDRESS_OWNER,
            vec![Kind::of::<crate::vip::AddressSpec>()],
        ),
        (
            boot_artifacts::OWNER,
            vec![Kind::of::<boot_artifacts::BootArtifactSpec>()],
        ),
        (disks::OWNER, vec![Kind::of::<disks::DiskSpec>()]),
        (
            time_status::OWNER,
            vec![
                Kind::of::<time_status::TimeStatusSpec>(),
                Kind::of::<time_status::TimeServerStatusSpec>(),
            ],
        ),
        (
            crate::certificates::API_CERTIFICATES_OWNER,
            vec![Kind::of::<crate::certificates::ApiCertificatesSpec>()],
        ),
        (
            network_status::ADDRESS_OWNER,
            vec![Kind::of::<network_status::AddressStatusSpec>()],
        ),
        (
            network_status::LINK_OWNER,
            vec![Kind::of::<network_status::LinkStatusSpec>()],
        ),
        (
            network_status::ROUTE_OWNER,
            vec![Kind::of::<network_status::RouteStatusSpec>()],
        ),
        (
            network_status::HOSTNAME_OWNER,
            vec![Kind::of::<network_status::HostnameStatusSpec>()],
        ),
        (
            network_status::RESOLVER_OWNER,
            vec![Kind::of::<network_status::ResolverStatusSpec>()],
        ),
    ];
    for (name, outputs) in sourced {
        graph.push(ControllerGraph {
            name,
            inputs: Vec::new(),
            outputs,
        });
    }
    runtime.start();
    (state, graph)
}

/// A first pass that took longer than this is put on the boot timeline.
const SLOW_FIRST_PASS: std::time::Duration = std::time::Duration::from_millis(20);

fn stamp_slow_first_pass(controller: &'static str, took: std::time::Duration) {
    if took >= SLOW_FIRST_PASS {
        let took = took.as_secs_f64() * 1000.0;
        crate::boot_clock::stamp(&format!("{controller}'s first pass done in {took:.0} ms"));
    }
}

/// The active config as a resource, on every change.
async fn feed_config(config: Arc<NodeConfig>, state: Arc<State>) {
    const OWNER: &str = "ConfigController";
    let mut changes = config.subscribe();
    loop {
        let active = changes.borrow_and_update().clone();
        let kind = machine_config_kind();
        let written = match active.as_deref().map(Config::to_yaml) {
            Some(Ok(yaml)) => state
                .write(
                    OWNER,
                    &kind,
                    ACTIVE_CONFIG_ID,
                    yaml,
                    Vec::new(),
                    BTreeMap::new(),
                )
                .map(drop),
            Some(Err(error)) => {
                tracing::error!(%error, "cannot encode the active config");
                Ok(())
            }
            None => state.destroy(OWNER, &kind, ACTIVE_CONFIG_ID).map(drop),
        };
        if let Err(error) = written {
            tracing::error!(%error, "cannot publish the active config");
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Service and machine status events as resources.
async fn feed_events(events: EventBus, state: Arc<State>) {
    // A subscriber that falls behind the bus's buffer is cut off: start again from what the
    // buffer holds (writing a resource again as it is changes nothing).
    loop {
        let options = SubscribeOptions {
            tail: Tail::All,
            actor_id: None,
        };
        let Ok(mut subscription) = events.subscribe(options) else {
            return;
        };
        while let Ok(event) = subscription.recv().await {
            let written = if let Some(service) = ServiceStateEvent::from_event(&event) {
                Some(write_service(&state, &service))
            } else {
                MachineStatusEvent::from_event(&event)
                    .map(|status| write_machine_status(&state, &status))
            };
            if let Some(Err(error)) = written {
                tracing::error!(%error, "cannot publish a status resource");
            }
        }
        tracing::warn!("status resources fell behind the event bus: reading it again");
    }
}

fn write_service(state: &State, event: &ServiceStateEvent) -> Result<(), resources::StateError> {
    use proto::machine::service_state_event::Action;
    let running = event.action() == Action::Running;
    let health = event.health.clone().unwrap_or_default();
    let spec = ServiceSpec {
        running,
        healthy: running && health.healthy,
        unknown: health.unknown,
    };
    state
        .write_spec("ServiceController", &event.service, &spec)
        .map(drop)
}

fn write_machine_status(
    state: &State,
    event: &MachineStatusEvent,
) -> Result<(), resources::StateError> {
    use machine_status_event::MachineStage;
    let stage = match event.stage() {
        MachineStage::Unknown => "unknown",
        MachineStage::Booting => "booting",
        MachineStage::Installing => "installing",
        MachineStage::Maintenance => "maintenance",
        MachineStage::Running => "running",
        MachineStage::Rebooting => "rebooting",
        MachineStage::ShuttingDown => "shutting down",
        MachineStage::Resetting => "resetting",
        MachineStage::Upgrading => "upgrading",
    };
    let status = event.status.clone().unwrap_or_default();
    let spec = MachineStatusSpec {
        stage: stage.to_string(),
        status: MachineStatusDetail {
            ready: status.ready,
            unmet_conditions: status
                .unmet_conditions
                .into_iter()
                .map(|c| UnmetCondition {
                    name: c.name,
                    reason: c.reason,
                })
                .collect(),
        },
    };
    state
        .write_spec("MachineStatusController", "machine", &spec)
        .map(drop)
}

/// Whether the `Services` resource says service `id` runs (false when there is none).
pub(crate) fn service_is_running(state: &State, id: &str) -> bool {
    state
        .get(&Kind::of::<ServiceSpec>(), id)
        .and_then(|resource| serde_norway::from_str::<ServiceSpec>(&resource.yaml_spec).ok())
        .is_some_and(|spec| spec.running)
}

/// The active config, decoded from its resource.
pub(crate) fn active_config(context: &Context) -> Result<Option<Config>, String> {
    match context
        .state()
        .get(&machine_config_kind(), ACTIVE_CONFIG_ID)
    {
        Some(resource) => decoded(&resource.yaml_spec).map(Some),
        None => Ok(None),
    }
}

/// The last config text decoded and what it decoded to: every controller reads the same
/// active config, and decoding it (certificates and all) takes tens of milliseconds per
/// controller under TCG, so it is decoded once per change.
static LAST_DECODED: std::sync::Mutex<Option<(String, Config)>> = std::sync::Mutex::new(None);

fn decoded(yaml: &str) -> Result<Config, String> {
    let mut last = LAST_DECODED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((text, config)) = last.as_ref()
        && text == yaml
    {
        return Ok(config.clone());
    }
    let config = Config::from_yaml(yaml).map_err(|e| e.to_string())?;
    *last = Some((yaml.to_string(), config.clone()));
    Ok(config)
}

/// `machine.type` → `MachineTypes.config.talos.dev/machine-type`.
struct MachineTypeController;

impl Controller for MachineTypeController {
    fn name(&self) -> &'static str {
        "config.MachineTypeController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<MachineTypeSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let machine_type = active_config(context)?.and_then(|config| {
                let machine = config.v1alpha1?.machine?;
                machine
                    .machine_type
                    .parse::<machineconfig::MachineType>()
                    .ok()
            });
            match machine_type {
                Some(machine_type) => {
                    let spec = MachineTypeSpec {
                        machine_type: machine_type.as_str().to_string(),
                    };
                    context
                        .write("machine-type", &spec)
                        .map_err(|e| e.to_string())?;
                }
                None => context
                    .keep_only::<MachineTypeSpec>(&[])
                    .map_err(|e| e.to_string())?,
            }
            Ok(Requeue::Never)
        })
    }
}

/// `machine.network.hostname` (or the node's default) → `HostnameSpecs.net.talos.dev/hostname`.
struct HostnameController {
    default: String,
}

impl Controller for HostnameController {
    fn name(&self) -> &'static str {
        "network.HostnameConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<HostnameSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            // `machine.network.hostname`, or a HostnameConfig document's (never both: such a
            // config is refused).
            let configured = active_config(context)?.and_then(|config| {
                let from_document = config.documents.iter().find_map(|document| match document {
                    machineconfig::documents::Document::Hostname(hostname) => {
                        hostname.hostname.clone()
                    }
                    _ => None,
                });
                config
                    .v1alpha1
                    .and_then(|v| v.machine?.network?.hostname)
                    .or(from_document)
            });
            let (name, layer) = match configured {
                Some(name) => (name, "configuration"),
                None => (self.default.clone(), "default"),
            };
            let (hostname, domainname) = match name.split_once('.') {
                Some((host, domain)) => (host.to_string(), domain.to_string()),
                None => (name, String::new()),
            };
            let spec = HostnameSpec {
                hostname,
                domainname,
                layer: layer.to_string(),
            };
            context
                .write("hostname", &spec)
                .map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

/// Inputs written as their owners write them, for tests that run one controller alone.
#[cfg(test)]
pub mod test_inputs {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The active machine config, as the config source publishes it.
    pub fn write_config(state: &State, text: &str) {
        state
            .write(
                "ConfigController",
                &machine_config_kind(),
                ACTIVE_CONFIG_ID,
                text.into(),
                Vec::new(),
                BTreeMap::new(),
            )
            .unwrap();
    }

    /// Service `id`'s state, as the service controller publishes it.
    pub fn write_service(state: &State, id: &str, spec: &ServiceSpec) {
        state.write_spec("ServiceController", id, spec).unwrap();
    }

    /// Gives the runtime time to act on what was written (a pass takes microseconds; a
    /// retry comes after 0.5 s).
    pub async fn settle() {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use resources::WatchOptions;

    const CONFIG: &str = "version: v1alpha1\nmachine:\n  type: controlplane\n  network:\n    hostname: cp-1.example.org\n";

    #[test]
    fn platform_metadata_is_published_with_upstreams_field_names() {
        let state = State::new();
        let spec = PlatformMetadataSpec {
            platform: "aws".into(),
            hostname: "ip-10-0-0-1".into(),
            instance_type: "t3.small".into(),
            spot: true,
            internal_dns: "ip-10-0-0-1.ec2.internal".into(),
            tags: BTreeMap::from([("team".into(), "k8s".into())]),
            ..PlatformMetadataSpec::default()
        };
        state
            .write_spec(PLATFORM_METADATA_OWNER, PLATFORM_METADATA_ID, &spec)
            .unwrap();
        let resource = state
            .get(&Kind::of::<PlatformMetadataSpec>(), "platformmetadata")
            .unwrap();
        assert_eq!(resource.metadata.kind.namespace, "runtime");
        assert_eq!(
            resource.yaml_spec,
            "platform: aws\nhostname: ip-10-0-0-1\ninstanceType: t3.small\nspot: true\n\
             internalDNS: ip-10-0-0-1.ec2.internal\ntags:\n  team: k8s\n"
        );
    }

    #[tokio::test]
    async fn the_config_gives_the_machine_type_and_the_hostname() {
        let state = Arc::new(State::new());
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(MachineTypeController);
        runtime.register(HostnameController {
            default: "talos-default".into(),
        });
        let mut hostnames = state.watch(
            &Kind::of::<HostnameSpec>(),
            &WatchOptions {
                bootstrap_contents: true,
                ..WatchOptions::default()
            },
        );
        let mut types = state.watch(&Kind::of::<MachineTypeSpec>(), &WatchOptions::default());
        runtime.start();
        // No config yet: the default hostname, no machine type.
        let first = hostnames.next().await.unwrap();
        assert!(first.resource.yaml_spec.contains("hostname: talos-default"));
        assert!(first.resource.yaml_spec.contains("layer: default"));

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
        write(CONFIG);
        let named = hostnames.next().await.unwrap();
        assert_eq!(
            named.resource.yaml_spec,
            "hostname: cp-1\ndomainname: example.org\nlayer: configuration\n"
        );
        assert_eq!(
            named.resource.metadata.owner,
            "network.HostnameConfigController"
        );
        let machine_type = types.next().await.unwrap();
        assert_eq!(
            machine_type.resource.yaml_spec,
            "machineType: controlplane\n"
        );

        write(&format!(
            "{}---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: doc-name\n",
            CONFIG
                .replace("controlplane", "worker")
                .replace("  network:\n    hostname: cp-1.example.org\n", "")
        ));
        let from_document = hostnames.next().await.unwrap();
        assert!(
            from_document
                .resource
                .yaml_spec
                .starts_with("hostname: doc-name\n")
        );
        let changed = types.next().await.unwrap();
        assert_eq!(changed.resource.yaml_spec, "machineType: worker\n");
        assert_eq!(changed.resource.metadata.version, 2);
    }
}
