//! The Kubernetes side of a configured node: the kubelet configuration and, on control planes,
//! the static pod manifests of the API server, controller manager and scheduler are written under
//! `<root>/etc/kubernetes/` from the active config, and the kubelet service is registered.
//!
//! The kubelet runs from its container image (`machine.kubelet.image`). This machine has no
//! container registry and no image store holding it, so the kubelet service fails to start
//! with a message naming the missing image, retried with back-off, instead of crash-looping in
//! silence: the boundary stated in the README.

use std::path::Path;
use std::sync::Arc;

use atomicfile::Overwrite;
use machineconfig::Config;

use crate::error::MachinedError;
use crate::machine::Machine;
use crate::services::{
    ApiOperations, ExitNotifier, RunHandle, Runner, ServiceError, ServiceLog, ServiceSpec,
};

/// Runs a service from a container image, which must be in the node's image store first.
#[derive(Debug)]
struct ImageRunner {
    image: String,
}

impl Runner for ImageRunner {
    fn start(
        &self,
        spec: &ServiceSpec,
        _log: &ServiceLog,
        _on_exit: ExitNotifier,
    ) -> Result<Box<dyn RunHandle>, ServiceError> {
        Err(ServiceError::ImageUnavailable {
            id: spec.id.clone(),
            image: self.image.clone(),
            reason: "no container registry is reachable and no image store on this node holds it",
        })
    }
}

/// The kubelet image of `config`.
fn kubelet_image(config: &Config) -> Option<String> {
    config
        .v1alpha1
        .as_ref()?
        .machine
        .as_ref()?
        .kubelet
        .as_ref()?
        .image
        .clone()
}

/// Writes the Kubernetes files for the active config and registers the kubelet once; runs
/// until the config watch ends.
pub async fn keep_in_step(machine: Arc<Machine>) {
    let mut changes = machine.config.subscribe();
    let mut registered = false;
    loop {
        let config = changes.borrow_and_update().clone();
        if let Some(config) = config.as_deref() {
            if let Err(error) = write_files(&machine, config) {
                tracing::error!(%error, "cannot write the Kubernetes files");
            }
            if let (false, Some(image)) = (registered, kubelet_image(config)) {
                let spec = ServiceSpec {
                    api: ApiOperations {
                        start: true,
                        stop: false,
                        restart: true,
                    },
                    runner: Arc::new(ImageRunner {
                        image: image.clone(),
                    }),
                    ..ServiceSpec::process("kubelet", image)
                };
                let started = async {
                    machine.services.register(spec).await?;
                    machine.services.start("kubelet").await
                };
                match started.await {
                    Ok(()) => registered = true,
                    Err(error) => tracing::error!(%error, "cannot register the kubelet"),
                }
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

fn write_files(machine: &Machine, config: &Config) -> Result<(), MachinedError> {
    let node = kubernetes::NodeInfo {
        hostname: machine.hostname(),
        domainname: None,
        // Dev-mode nodes live on loopback addresses: they are the node's addresses there.
        addresses: vec![machine.address()],
    };
    let dir = machine.layout.root().join("etc/kubernetes");
    write(
        &dir,
        "kubelet.yaml",
        &kubernetes::kubelet_configuration(config, &node)?,
    )?;
    let control_plane = config
        .v1alpha1
        .as_ref()
        .and_then(|c| c.machine.as_ref())
        .and_then(|m| m.machine_type.parse::<machineconfig::MachineType>().ok())
        .is_some_and(|t| t.is_control_plane());
    if control_plane {
        for (name, manifest) in kubernetes::static_pods(config, &node)? {
            write(&dir.join("manifests"), &name, &manifest)?;
        }
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), MachinedError> {
    std::fs::create_dir_all(dir).map_err(MachinedError::io("creating", dir))?;
    Ok(atomicfile::write(
        &dir.join(name),
        text.as_bytes(),
        0o600,
        Overwrite::Allow,
    )?)
}
