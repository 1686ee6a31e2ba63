//! [`Machine`]: everything the API handlers and the boot sequence share about this node.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::events::EventBus;
use crate::layout::Layout;
use crate::node_config::NodeConfig;
use crate::services::{ContainerdRunner, ServiceSpec, Supervisor};

/// What a lifecycle request asks the main loop to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Stop every service in order and start the node again (by kexec where it can).
    Reboot,
    /// Reboot through the firmware, never by kexec (RebootRequest mode POWERCYCLE).
    PowerCycle,
    /// Stop every service in order and exit.
    Shutdown,
    /// Stop every service, wipe the system volumes, then reboot or power off.
    Reset(ResetPlan),
}

/// What a reset wipes and how it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResetPlan {
    pub reboot: bool,
    /// STATE: the machine config (the node comes back in maintenance mode).
    pub state: bool,
    /// EPHEMERAL: `/var`, etcd's data among it.
    pub ephemeral: bool,
    /// META.
    pub meta: bool,
}

impl ResetPlan {
    /// The GPT names of the partitions to wipe.
    pub fn labels(&self) -> Vec<&'static str> {
        [
            (self.state, "STATE"),
            (self.ephemeral, "EPHEMERAL"),
            (self.meta, "META"),
        ]
        .into_iter()
        .filter_map(|(wipe, label)| wipe.then_some(label))
        .collect()
    }
}

/// How machined is running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// Platform name reported by Version (`dev` for dev mode).
    pub name: String,
    /// Runtime mode reported by Version and used to validate configs.
    pub mode: machineconfig::RuntimeMode,
    /// What the provider's metadata service said about the instance (cloud platforms).
    pub metadata: Option<crate::controllers::PlatformMetadataSpec>,
    /// Why the provider's user data did not become the config (the node waits in
    /// maintenance mode and reports it as a config load error).
    pub user_data_problem: Option<String>,
    /// The provider's network as `machine.network` YAML: networkd applies it while the config
    /// has no `machine.network`.
    pub network_yaml: Option<String>,
}

/// The node: its layout, identity, config, services, events and host views.
#[derive(Debug)]
pub struct Machine {
    pub layout: Layout,
    pub platform: Platform,
    /// The address apid listens on; its IP is the node's address.
    pub api_address: std::net::SocketAddr,
    pub events: EventBus,
    pub services: Supervisor,
    pub config: Arc<NodeConfig>,
    pub host: hostinfo::Host,
    pub files: filebrowse::Roots,
    /// The node's resources (the COSI API reads them) and the controllers' graph.
    pub resources: Arc<resources::State>,
    pub controllers: Vec<resources::ControllerGraph>,
    /// Bounds the file walks running at once.
    pub file_walks: crate::api::FileWalks,
    pub lifecycle: mpsc::Sender<(Lifecycle, String)>,
    /// Hostname given on the command line (dev mode), used when the config names none.
    pub default_hostname: String,
    /// Whether networkd runs and owns the network (see [`crate::network`]).
    pub manages_network: bool,
    /// The etcd task, for Bootstrap.
    pub etcd: crate::etcd::EtcdHandle,
    /// Runs the system services as containerd tasks (OS mode); child processes without it.
    pub containers: Option<Arc<ContainerdRunner>>,
    /// The release this node runs (`v0.1.0`), reported by Version.
    pub release: String,
    /// The system disk's boot slots and META (OS mode with a disk).
    pub system_disk: Option<Arc<crate::upgrade::SystemDisk>>,
    /// The ISO's install files (kernel, initramfs, command line), when the node booted from it.
    pub install_media: Option<std::path::PathBuf>,
}

impl Machine {
    /// The node's hostname: `machine.network.hostname` from the active config, else the
    /// default.
    pub fn hostname(&self) -> String {
        self.config
            .current()
            .and_then(|config| {
                config
                    .v1alpha1
                    .as_ref()?
                    .machine
                    .as_ref()?
                    .network
                    .as_ref()?
                    .hostname
                    .clone()
            })
            .unwrap_or_else(|| self.default_hostname.clone())
    }

    /// `spec` as a system service: a containerd task, started once containerd is up, when the
    /// node runs containerd; a child process otherwise.
    pub fn system_service(&self, mut spec: ServiceSpec) -> ServiceSpec {
        if let Some(runner) = &self.containers {
            spec.runner = Arc::clone(runner) as Arc<dyn crate::services::Runner>;
            spec.depends_on
                .push(crate::containerd::SERVICE_ID.to_string());
        }
        spec
    }

    /// The node's address (the IP apid listens on).
    pub fn address(&self) -> IpAddr {
        self.api_address.ip()
    }

    /// True while no complete config is active.
    pub fn in_maintenance(&self) -> bool {
        self.config.current().is_none()
    }
}
