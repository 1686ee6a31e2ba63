//! `machine.ImageService` for installer and debug images: Import (upload of an image
//! tarball), List, Remove; Pull finds what is already stored and otherwise answers that no
//! registry is reachable. Only the `system` namespace holds them (upstream's CRI namespace
//! needs Kubernetes).
//!
//! An import that is an installer goes to the installer store and is refused unless its
//! signature checks out (`upgrade::verify`): nothing unverified is stored there, so Upgrade
//! never writes it. Any other container image goes, unsigned, to the in-memory debug store
//! (`debug::image`), which only `DebugService.ContainerRun` runs from.

use std::io::Write as _;
use std::sync::Arc;

use proto::machine::image_service_server::ImageService;
use proto::machine::*;
use tokio_stream::StreamExt as _;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::debug::image as debug_images;
use crate::error::MachinedError;
use crate::machine::Machine;
use crate::upgrade::images::{self, Imported, MAX_IMPORT_SIZE};
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

pub(crate) fn require_system_namespace(
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
        let debug_store = self.machine.layout.debug_image_dir();
        let (stored, debug) = tokio::task::spawn_blocking(move || {
            Ok::<_, MachinedError>((images::list(&store)?, debug_images::list(&debug_store)?))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(status)?;
        let listed = |name, digest, size: u64, seconds, labels| ImageServiceListResponse {
            name,
            digest,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            created_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            labels,
        };
        let installers = stored.into_iter().map(|image| {
            let labels = [(installer::RELEASE_LABEL.to_string(), image.release)].into();
            listed(image.name, image.digest, image.size, image.imported, labels)
        });
        let debug = debug.into_iter().map(|image| {
            let labels = Default::default();
            listed(image.name, image.digest, image.size, image.imported, labels)
        });
        let replies: Vec<_> = installers.chain(debug).map(Ok).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn pull(
        &self,
        request: Request<ImageServicePullRequest>,
    ) -> Result<Response<BoxStream<ImageServicePullResponse>>, Status> {
        let request = request.into_inner();
        require_system_namespace(request.containerd.as_ref()).map_err(status)?;
        let store = self.machine.layout.image_dir();
        let debug_store = self.machine.layout.debug_image_dir();
        let reference = request.image_ref.trim().to_string();
        let found = tokio::task::spawn_blocking(move || {
            if let Some(image) = images::find(&store, &reference)? {
                return Ok(Some((image.name, image.digest, image.size)));
            }
            let debug = debug_images::find(&debug_store, &reference)?;
            Ok::<_, MachinedError>(debug.map(|image| (image.name, image.digest, image.size)))
        })
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
        let debug_store = self.machine.layout.debug_image_dir();
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
                    let imported = images::import(&store, &upload, |unpacked| {
                        let policy = verify::policy(&unpacked.name, config.as_deref(), &root)?;
                        verify::check(unpacked, &policy)
                    })?;
                    match imported {
                        Imported::Installer(image) => {
                            tracing::info!(name = %image.name, release = %image.release, "installer image imported");
                            Ok(image.name)
                        }
                        Imported::NotInstaller(why) => {
                            let image = debug_images::import(&debug_store, &upload)
                                .map_err(|error| match error {
                                    MachinedError::InvalidArgument(reason) => {
                                        MachinedError::InvalidArgument(format!(
                                            "neither an installer ({why}) nor a container \
                                             image ({reason})"
                                        ))
                                    }
                                    other => other,
                                })?;
                            tracing::info!(name = %image.name, "debug image imported");
                            Ok(image.name)
                        }
                    }
                })
                .await
                .map_err(|e| MachinedError::Internal(e.to_string()))
                .and_then(|result| result)
            }
            Err(error) => Err(error),
        };
        let _ = std::fs::remove_file(&upload);
        let name = imported.map_err(status)?;
        Ok(Response::new(ImageServiceImportResponse { name }))
    }

    async fn remove(
        &self,
        request: Request<ImageServiceRemoveRequest>,
    ) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        require_system_namespace(request.containerd.as_ref()).map_err(status)?;
        let store = self.machine.layout.image_dir();
        let debug_store = self.machine.layout.debug_image_dir();
        let installer = images::find(&store, &request.image_ref).map_err(status)?;
        let dir = match installer {
            Some(image) => Some(image.dir),
            None => debug_images::find(&debug_store, &request.image_ref)
                .map_err(status)?
                .map(|image| image.dir),
        };
        let dir = dir.ok_or_else(|| {
            status(MachinedError::NotFound(format!(
                "image {:?} is not on the node",
                request.image_ref
            )))
        })?;
        std::fs::remove_dir_all(&dir)
            .map_err(MachinedError::io("removing", &dir))
            .map_err(status)?;
        Ok(Response::new(()))
    }
}

/// What a pull of an image already in the store answers, as containerd reports such a pull:
/// its one layer already there, then its name.
fn already_present(
    (name, digest, size): (String, String, u64),
) -> [Result<ImageServicePullResponse, Status>; 2] {
    use image_service_pull_layer_progress::Status as LayerStatus;
    use image_service_pull_response::Response as Pulled;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    [
        Ok(ImageServicePullResponse {
            response: Some(Pulled::PullProgress(ImageServicePullProgress {
                layer_id: digest,
                progress: Some(ImageServicePullLayerProgress {
                    status: LayerStatus::AlreadyExists as i32,
                    elapsed: None,
                    offset: size,
                    total: size,
                }),
            })),
        }),
        Ok(ImageServicePullResponse {
            response: Some(Pulled::Name(name)),
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
