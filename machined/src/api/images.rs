//! `machine.ImageService` for installer images: Import (upload of an image layout tarball),
//! List, Remove; Pull finds what is already stored and otherwise answers that no registry is
//! reachable. Only the `system` namespace holds
//! them (upstream's CRI namespace needs Kubernetes). An import is refused unless its signature
//! checks out (`upgrade::verify`): nothing unverified is stored, so Upgrade never writes it.

use std::io::Write as _;
use std::sync::Arc;

use proto::machine::image_service_server::ImageService;
use proto::machine::*;
use tokio_stream::StreamExt as _;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::MachinedError;
use crate::machine::Machine;
use crate::upgrade::images::{self, MAX_IMPORT_SIZE};
use crate::upgrade::verify;

/// `machine.ImageService` served from a [`Machine`].
#[derive(Clone, Debug)]
pub struct ImageApi {
    machine: Arc<Machine>,
}

impl ImageApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        ImageApi { machine }
    }
}

fn status(error: MachinedError) -> Status {
    Status::from(error)
}

fn require_system_namespace(
    containerd: Option<&proto::common::ContainerdInstance>,
) -> Result<(), MachinedError> {
    use proto::common::ContainerdNamespace;
    match containerd.map(|c| c.namespace()) {
        None | Some(ContainerdNamespace::NsSystem | ContainerdNamespace::NsUnknown) => Ok(()),
        Some(other) => Err(MachinedError::FailedPrecondition(format!(
            "namespace {} holds no images on talos-rs (no CRI): use the system namespace",
            other.as_str_name()
        ))),
    }
}

#[tonic::async_trait]
impl ImageService for ImageApi {
    async fn list(
        &self,
        request: Request<ImageServiceListRequest>,
    ) -> Result<Response<BoxStream<ImageServiceListResponse>>, Status> {
        require_system_namespace(request.get_ref().containerd.as_ref()).map_err(status)?;
        let store = self.machine.layout.image_dir();
        let stored = tokio::task::spawn_blocking(move || images::list(&store))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)?;
        let replies = stored.into_iter().map(|image| {
            Ok(ImageServiceListResponse {
                name: image.name,
                digest: image.digest,
                size: i64::try_from(image.size).unwrap_or(i64::MAX),
                created_at: Some(prost_types::Timestamp {
                    seconds: image.imported,
                    nanos: 0,
                }),
                labels: [(installer::RELEASE_LABEL.to_string(), image.release)].into(),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn pull(
        &self,
        request: Request<ImageServicePullRequest>,
    ) -> Result<Response<BoxStream<ImageServicePullResponse>>, Status> {
        let request = request.into_inner();
        require_system_namespace(request.containerd.as_ref()).map_err(status)?;
        let store = self.machine.layout.image_dir();
        let reference = request.image_ref.trim().to_string();
        let found = tokio::task::spawn_blocking(move || images::find(&store, &reference))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)?;
        let image = found.ok_or_else(|| {
            status(MachinedError::FailedPrecondition(format!(
                "cannot pull {:?}: talos-rs nodes reach no registry; import the image instead \
                 (talosctl image import FILE)",
                request.image_ref
            )))
        })?;
        Ok(Response::new(Box::pin(tokio_stream::iter(
            already_present(image),
        ))))
    }

    async fn import(
        &self,
        request: Request<Streaming<ImageServiceImportRequest>>,
    ) -> Result<Response<ImageServiceImportResponse>, Status> {
        let store = self.machine.layout.image_dir();
        std::fs::create_dir_all(&store)
            .map_err(MachinedError::io("creating", &store))
            .map_err(status)?;
        let upload = store.join(format!(".upload-{}.tar", uuid::Uuid::new_v4()));
        let received = receive(request.into_inner(), &upload).await;
        let imported = match received {
            Ok(()) => {
                let (store, upload) = (store.clone(), upload.clone());
                let config = self.machine.config.current();
                let root = self.machine.layout.root().to_path_buf();
                tokio::task::spawn_blocking(move || {
                    images::import(&store, &upload, |unpacked| {
                        let policy = verify::policy(&unpacked.name, config.as_deref(), &root)?;
                        verify::check(unpacked, &policy)
                    })
                })
                .await
                .map_err(|e| MachinedError::Internal(e.to_string()))
                .and_then(|result| result)
            }
            Err(error) => Err(error),
        };
        let _ = std::fs::remove_file(&upload);
        let image = imported.map_err(status)?;
        tracing::info!(name = %image.name, release = %image.release, "image imported");
        Ok(Response::new(ImageServiceImportResponse {
            name: image.name,
        }))
    }

    async fn remove(
        &self,
        request: Request<ImageServiceRemoveRequest>,
    ) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        require_system_namespace(request.containerd.as_ref()).map_err(status)?;
        let store = self.machine.layout.image_dir();
        let found = images::find(&store, &request.image_ref).map_err(status)?;
        let image = found.ok_or_else(|| {
            status(MachinedError::NotFound(format!(
                "image {:?} is not on the node",
                request.image_ref
            )))
        })?;
        std::fs::remove_dir_all(&image.dir)
            .map_err(MachinedError::io("removing", &image.dir))
            .map_err(status)?;
        Ok(Response::new(()))
    }
}

/// What a pull of an image already in the store answers, as containerd reports such a pull:
/// its one layer already there, then its name.
fn already_present(image: images::StoredImage) -> [Result<ImageServicePullResponse, Status>; 2] {
    use image_service_pull_layer_progress::Status as LayerStatus;
    use image_service_pull_response::Response as Pulled;
    let size = i64::try_from(image.size).unwrap_or(i64::MAX);
    [
        Ok(ImageServicePullResponse {
            response: Some(Pulled::PullProgress(ImageServicePullProgress {
                layer_id: image.digest,
                progress: Some(ImageServicePullLayerProgress {
                    status: LayerStatus::AlreadyExists as i32,
                    elapsed: None,
                    offset: size,
                    total: size,
                }),
            })),
        }),
        Ok(ImageServicePullResponse {
            response: Some(Pulled::Name(image.name)),
        }),
    ]
}

/// Writes the uploaded chunks to `path`, at most [`MAX_IMPORT_SIZE`] bytes.
async fn receive(
    mut stream: Streaming<ImageServiceImportRequest>,
    path: &std::path::Path,
) -> Result<(), MachinedError> {
    use image_service_import_request::Request as Part;
    let mut file = std::fs::File::create(path).map_err(MachinedError::io("creating", path))?;
    let mut total = 0u64;
    while let Some(message) = stream.next().await {
        let message =
            message.map_err(|e| MachinedError::InvalidArgument(e.message().to_string()))?;
        match message.request {
            Some(Part::Containerd(instance)) => require_system_namespace(Some(&instance))?,
            Some(Part::ImageChunk(chunk)) => {
                total += chunk.bytes.len() as u64;
                if total > MAX_IMPORT_SIZE {
                    return Err(MachinedError::InvalidArgument(format!(
                        "the image is larger than {MAX_IMPORT_SIZE} bytes"
                    )));
                }
                file.write_all(&chunk.bytes)
                    .map_err(MachinedError::io("writing", path))?;
            }
            None => {}
        }
    }
    if total == 0 {
        return Err(MachinedError::InvalidArgument(
            "no image data was sent".into(),
        ));
    }
    file.sync_all().map_err(MachinedError::io("syncing", path))
}
