//! containerd in OS mode: machined runs it as a child process (as upstream's system
//! containerd) and the system services as its tasks in namespace `system`.

use std::path::PathBuf;
use std::time::Duration;

use crate::layout::Layout;
use crate::services::{
    ApiOperations, ContainerdRunner, HealthCheck, NodeEnvironment, ServiceCondition, ServiceError,
    ServiceSpec, Supervisor,
};

/// How long a node in maintenance holds containerd back for apid.
const APID_FIRST: Duration = Duration::from_secs(10);

/// The service id other system services depend on.
pub const SERVICE_ID: &str = "containerd";

/// Where the image keeps containerd and what its tasks run from.
#[derive(Clone, Debug)]
pub struct SystemContainerd {
    /// The containerd program.
    pub program: PathBuf,
    /// Its config file (which plugins it loads).
    pub config: PathBuf,
    /// The read-only root filesystem every task runs from.
    pub task_root: PathBuf,
}

impl SystemContainerd {
    /// The runner that makes tasks of this containerd.
    pub fn runner(&self, layout: &Layout) -> ContainerdRunner {
        ContainerdRunner::new(
            layout.containerd_socket(),
            self.task_root.clone(),
            layout.task_output_dir(),
        )
    }

    /// The containerd service: its socket, state and data where the layout puts them, healthy
    /// once its socket accepts connections. Its root holds only the metadata database (no
    /// images, no snapshots: tasks run from the image's root), so it lives in memory beside
    /// the state, as upstream's system containerd: containerd needs no disk to start.
    pub fn spec(&self, layout: &Layout) -> ServiceSpec {
        let socket = layout.containerd_socket();
        let state = socket.parent().map(PathBuf::from).unwrap_or_default();
        let args = vec![
            "--config".to_string(),
            self.config.display().to_string(),
            "--address".to_string(),
            socket.display().to_string(),
            "--state".to_string(),
            state.display().to_string(),
            "--root".to_string(),
            layout.containerd_root().display().to_string(),
        ];
        ServiceSpec {
            args,
            // The runc shim is found on PATH.
            env: vec![("PATH".to_string(), "/usr/bin:/usr/sbin".to_string())],
            // A restart would cut the connection to every task it runs.
            node_environment: NodeEnvironment::NextStart,
            health_check: Some(HealthCheck::socket(socket)),
            api: ApiOperations::NONE,
            ..ServiceSpec::process(SERVICE_ID, &self.program)
        }
    }
}

/// Starts containerd once apid answers, at most [`APID_FIRST`] later: in maintenance mode apid
/// is machined's own child and nothing needs containerd before a config arrives, so the first
/// answer does not share the CPUs with containerd's start.
pub async fn start_after_apid(services: Supervisor) {
    let waited = tokio::time::timeout(APID_FIRST, async {
        loop {
            match services.wait_for("apid", ServiceCondition::Up).await {
                // Not registered yet: apid's certificates are still being made.
                Err(ServiceError::NotFound { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => return,
            }
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!(limit = ?APID_FIRST, "apid is not up: starting containerd anyway");
    }
    if let Err(error) = services.start(SERVICE_ID).await {
        tracing::error!(%error, "cannot start containerd");
    }
}
