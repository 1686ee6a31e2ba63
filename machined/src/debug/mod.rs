//! `machine.DebugService`: a debug container on the node, attached to the caller's terminal.
//!
//! `ContainerRun` takes the spec first (image, arguments, environment, profile, tty), then the
//! caller's stdin, signals and terminal sizes, and streams back the container's output and,
//! last, its exit code. The image is a debug image from [`image`]'s store (imported through
//! `ImageService.Import`: any container image that is not an installer, unsigned, kept in
//! memory). Each run unpacks the image's layers into a fresh root filesystem, runs it as a task
//! of the system containerd in namespace `system` with the [`spec`] of `PROFILE_PRIVILEGED`
//! (the host's PID, network and IPC namespaces, as upstream), relays the streams through FIFOs
//! that the runc shim opens ([`session`]), and removes task, container, FIFOs and root
//! filesystem when the task ends or the caller goes away.
//!
//! Limits: at most [`MAX_RUNS`] debug containers at once; `PROFILE_HOST_NS` (upstream's
//! debug-build profile that runs on the host's root with the image at `/nix`) is refused as
//! unimplemented; dev mode (services as processes, no containerd) answers FailedPrecondition.

pub mod image;
mod session;
mod spec;

use std::sync::Arc;

use proto::machine::debug_container_run_request::Request as Part;
use proto::machine::debug_container_run_request_spec::Profile;
use proto::machine::debug_service_server::DebugService;
use proto::machine::{DebugContainerRunRequest, DebugContainerRunResponse};
use tokio::sync::Semaphore;
use tokio_stream::StreamExt as _;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::MachinedError;
use crate::machine::Machine;

/// How many debug containers may run at once.
pub const MAX_RUNS: usize = 4;
/// The most arguments and environment entries one spec may carry.
const MAX_SPEC_ITEMS: usize = 256;

/// `machine.DebugService` served from a [`Machine`].
#[derive(Clone, Debug)]
pub struct DebugApi {
    machine: Arc<Machine>,
    slots: Arc<Semaphore>,
}

impl DebugApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        DebugApi {
            machine,
            slots: Arc::new(Semaphore::new(MAX_RUNS)),
        }
    }
}

#[tonic::async_trait]
impl DebugService for DebugApi {
    async fn container_run(
        &self,
        request: Request<Streaming<DebugContainerRunRequest>>,
    ) -> Result<Response<BoxStream<DebugContainerRunResponse>>, Status> {
        let mut requests = request.into_inner();
        let first = requests
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("expected debug container spec"))?
            .map_err(|e| {
                Status::invalid_argument(format!("failed to receive spec: {}", e.message()))
            })?;
        let Some(Part::Spec(spec)) = first.request else {
            return Err(Status::invalid_argument("expected debug container spec"));
        };
        match spec.profile() {
            Profile::Privileged => {}
            Profile::HostNs => {
                return Err(Status::unimplemented(
                    "PROFILE_HOST_NS is not supported by talos-rs: use PROFILE_PRIVILEGED",
                ));
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "unsupported debug container profile: {}",
                    other.as_str_name()
                )));
            }
        }
        crate::api::require_system_namespace(spec.containerd.as_ref()).map_err(Status::from)?;
        if spec.args.len() + spec.env.len() > MAX_SPEC_ITEMS {
            return Err(Status::invalid_argument(format!(
                "more than {MAX_SPEC_ITEMS} arguments and environment variables"
            )));
        }
        let runner = self.machine.containers.clone().ok_or_else(|| {
            Status::from(MachinedError::FailedPrecondition(
                "debug containers run as containerd tasks, and this machined runs its services \
                 as processes (dev mode): use a node booted from the image"
                    .into(),
            ))
        })?;
        let permit = Arc::clone(&self.slots).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{MAX_RUNS} debug containers are running already: end one first"
            ))
        })?;
        let store = self.machine.layout.debug_image_dir();
        let name = spec.image_name.clone();
        let found = tokio::task::spawn_blocking(move || image::find(&store, &name))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(Status::from)?;
        let image = found.ok_or_else(|| {
            Status::not_found(format!(
                "image {} not found: import it first (talosctl debug FILE.tar, or talosctl \
                 image import FILE.tar)",
                spec.image_name
            ))
        })?;
        let prepared = session::Prepared {
            client: runner.client(),
            image,
            args: spec.args,
            env: spec
                .env
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            tty: spec.tty,
            containers: self.machine.layout.debug_container_dir(),
            fifos: self.machine.layout.task_output_dir(),
            host_root: self.machine.layout.root().to_path_buf(),
        };
        let replies = session::start(prepared, requests, permit)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(Box::pin(replies)))
    }
}
