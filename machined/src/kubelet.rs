//! The Kubernetes side of a configured node, a controller ([`KubernetesController`]): the kubelet
//! configuration (shaped by `machine.kubelet` or a `KubeletConfig` document), the static pod
//! manifests of the API server, controller manager and scheduler on control planes and of the
//! user's pods (`machine.pods`, `KubeStaticPodConfig`), as resources (`KubeletSpecs`,
//! `StaticPods`) and as files under `<root>/etc/kubernetes/` (a pod that goes away takes its
//! manifest), the `KubeCredentialProviderConfig` file there, and the kubelet service registered.
//!
//! The kubelet runs from its container image (`machine.kubelet.image`). This machine has no
//! container registry and no image store holding it, so the kubelet service fails to start
//! with a message naming the missing image, retried with back-off, instead of crash-looping in
//! silence: the boundary stated in the README.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use atomicfile::Overwrite;
use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::{Deserialize, Serialize};

use crate::controllers::HostnameSpec;
use crate::error::MachinedError;
use crate::services::{
    ApiOperations, ExitNotifier, RunHandle, Runner, ServiceError, ServiceLog, ServiceSpec,
    Supervisor,
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

/// Where the kubelet's image credential providers are configured (under `etc/kubernetes`).
const CREDENTIAL_PROVIDER_CONFIG: &str = "kubelet-credentialproviderconfig.yaml";

/// Whether the Kubernetes controller applies `document` (it is not reported as unapplied): the
/// `KubeletConfig` document shapes the kubelet configuration, each `KubeStaticPodConfig` is a
/// manifest beside the control plane's, `KubeCredentialProviderConfig` is the kubelet's
/// credential provider configuration.
pub fn applied_by_kubelet(document: &Document) -> bool {
    matches!(
        document,
        Document::Kubelet(_) | Document::KubeStaticPod(_) | Document::KubeCredentialProvider(_)
    )
}

/// The user's static pods, (name, pod manifest): `machine.pods` (named `<namespace>-<name>` from
/// their metadata, `default` for what is missing, as upstream) and the `KubeStaticPodConfig`
/// documents. A name that cannot be a file name is refused (validation refuses it first).
fn user_static_pods(config: &Config) -> Result<Vec<(String, serde_norway::Value)>, MachinedError> {
    let v1alpha1 = config
        .v1alpha1
        .as_ref()
        .and_then(|c| c.machine.as_ref())
        .map(|m| m.pods.as_slice())
        .unwrap_or_default();
    let mut pods: Vec<(String, serde_norway::Value)> = v1alpha1
        .iter()
        .map(|pod| {
            let field = |key: &str| {
                pod["metadata"][key]
                    .as_str()
                    .unwrap_or("default")
                    .to_string()
            };
            (
                format!("{}-{}", field("namespace"), field("name")),
                pod.clone(),
            )
        })
        .collect();
    for document in &config.documents {
        if let Document::KubeStaticPod(pod) = document {
            pods.push((
                pod.name.clone(),
                serde_norway::Value::Mapping(pod.pod.clone()),
            ));
        }
    }
    for (name, _) in &pods {
        let usable = !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !usable {
            return Err(MachinedError::InvalidArgument(format!(
                "static pod {name:?}: not usable as a manifest file name"
            )));
        }
    }
    Ok(pods)
}

/// `KubeletSpecs.kubernetes.talos.dev`: what the kubelet runs with.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletSpec {
    pub image: String,
    pub expected_nodename: String,
    pub config: serde_norway::Value,
}

impl Spec for KubeletSpec {
    const TYPE: &'static str = "KubeletSpecs.kubernetes.talos.dev";
    const NAMESPACE: &'static str = "k8s";
}

/// `StaticPods.kubernetes.talos.dev`: one control-plane static pod.
#[derive(Debug, Serialize)]
pub struct StaticPodSpec {
    pub pod: serde_norway::Value,
}

impl Spec for StaticPodSpec {
    const TYPE: &'static str = "StaticPods.kubernetes.talos.dev";
    const NAMESPACE: &'static str = "k8s";
}

/// The Kubernetes side of the config: from the machine config and the node's hostname spec, the
/// kubelet spec and the static pods as resources, their files under `etc/kubernetes/`, and the
/// kubelet service registered once. A failed write is retried by the runtime.
#[derive(Debug)]
pub struct KubernetesController {
    /// Where `etc/kubernetes` lives (the node's root).
    pub root: PathBuf,
    /// The node's address (dev-mode nodes live on loopback addresses).
    pub address: IpAddr,
    pub services: Supervisor,
    pub registered: bool,
}

impl Controller for KubernetesController {
    fn name(&self) -> &'static str {
        "k8s.KubeletSpecController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![
            crate::controllers::machine_config_kind(),
            Kind::of::<HostnameSpec>(),
        ]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<KubeletSpec>(), Kind::of::<StaticPodSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let (Some(config), Some(hostname)) = (
                crate::controllers::active_config(context)?,
                context.state().get(&Kind::of::<HostnameSpec>(), "hostname"),
            ) else {
                context
                    .keep_only::<KubeletSpec>(&[])
                    .and_then(|()| context.keep_only::<StaticPodSpec>(&[]))
                    .map_err(|e| e.to_string())?;
                return Ok(Requeue::Never);
            };
            let hostname: HostnameFields =
                serde_norway::from_str(&hostname.yaml_spec).map_err(|e| e.to_string())?;
            let node = kubernetes::NodeInfo {
                hostname: hostname.hostname.clone(),
                domainname: Some(hostname.domainname).filter(|d| !d.is_empty()),
                addresses: vec![self.address],
            };
            self.write_files(context, &config, &node)
                .map_err(|e| e.to_string())?;
            if let (false, Some(image)) = (self.registered, kubernetes::kubelet_image(&config)) {
                self.register_kubelet(image)
                    .await
                    .map_err(|e| e.to_string())?;
                self.registered = true;
            }
            Ok(Requeue::Never)
        })
    }
}

/// The fields of a `HostnameSpec` this controller reads.
#[derive(Debug, Deserialize)]
struct HostnameFields {
    hostname: String,
    #[serde(default)]
    domainname: String,
}

impl KubernetesController {
    fn write_files(
        &self,
        context: &Context,
        config: &Config,
        node: &kubernetes::NodeInfo,
    ) -> Result<(), MachinedError> {
        let dir = self.root.join("etc/kubernetes");
        let kubelet = kubernetes::kubelet_configuration(config, node)?;
        write(&dir, "kubelet.yaml", &kubelet)?;
        let spec = KubeletSpec {
            image: kubernetes::kubelet_image(config).unwrap_or_default(),
            expected_nodename: node.hostname.clone(),
            config: serde_norway::from_str(&kubelet).unwrap_or_default(),
        };
        context.write("kubelet", &spec).map_err(resource_error)?;
        self.write_credential_provider_config(config, &dir)?;
        let control_plane = config
            .v1alpha1
            .as_ref()
            .and_then(|c| c.machine.as_ref())
            .and_then(|m| m.machine_type.parse::<machineconfig::MachineType>().ok())
            .is_some_and(|t| t.is_control_plane());
        let mut pods = if control_plane {
            kubernetes::static_pods(config, node)?
        } else {
            Vec::new()
        };
        for (name, pod) in user_static_pods(config)? {
            let file = format!("{name}.yaml");
            if pods.iter().any(|(taken, _)| *taken == file) {
                return Err(MachinedError::InvalidArgument(format!(
                    "static pod {name:?}: the name of another static pod"
                )));
            }
            let manifest = serde_norway::to_string(&pod).map_err(|e| {
                MachinedError::Internal(format!("encoding static pod {name:?}: {e}"))
            })?;
            pods.push((file, manifest));
        }
        let manifests = dir.join("manifests");
        let mut ids = Vec::with_capacity(pods.len());
        for (name, manifest) in &pods {
            write(&manifests, name, manifest)?;
            let id = name.trim_end_matches(".yaml");
            let spec = StaticPodSpec {
                pod: serde_norway::from_str(manifest).unwrap_or_default(),
            };
            context.write(id, &spec).map_err(resource_error)?;
            ids.push(id);
        }
        // The manifests of pods this controller wrote before and no longer wants.
        for resource in context.state().list(&Kind::of::<StaticPodSpec>()) {
            let id = resource.metadata.id.as_str();
            if resource.metadata.owner == self.name() && !ids.contains(&id) {
                let path = manifests.join(format!("{id}.yaml"));
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(MachinedError::io("removing", &path)(e));
                    }
                    _ => {}
                }
            }
        }
        context
            .keep_only::<StaticPodSpec>(&ids)
            .map_err(resource_error)
    }

    /// `KubeCredentialProviderConfig`'s configuration as
    /// `etc/kubernetes/kubelet-credentialproviderconfig.yaml`, removed without the document.
    fn write_credential_provider_config(
        &self,
        config: &Config,
        dir: &Path,
    ) -> Result<(), MachinedError> {
        let path = dir.join(CREDENTIAL_PROVIDER_CONFIG);
        let configuration = config.documents.iter().find_map(|document| match document {
            Document::KubeCredentialProvider(provider) => Some(&provider.configuration),
            _ => None,
        });
        let Some(configuration) = configuration else {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(MachinedError::io("removing", &path)(e))
                }
                _ => Ok(()),
            };
        };
        let text = serde_norway::to_string(configuration).map_err(|e| {
            MachinedError::Internal(format!("encoding KubeCredentialProviderConfig: {e}"))
        })?;
        write(dir, CREDENTIAL_PROVIDER_CONFIG, &text)
    }

    async fn register_kubelet(&self, image: String) -> Result<(), MachinedError> {
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
        self.services.register(spec).await?;
        self.services.start("kubelet").await?;
        Ok(())
    }
}

fn resource_error(error: resources::StateError) -> MachinedError {
    MachinedError::Internal(error.to_string())
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
