//! The COSI resource API (`cosi.resource.State`), read-only: Get and List of
//!
//! - the active machine config, `MachineConfigs.config.talos.dev/v1alpha1` in namespace
//!   `config` (what `talosctl edit|patch machineconfig` read); it holds secrets, so only
//!   `os:admin` may read it (upstream marks the type SENSITIVE);
//! - the network status resources of namespace `network` (addresses, routes, links, hostname,
//!   resolvers), from networkd when it runs;
//! - `ResourceDefinitions.meta.cosi.dev`, describing all of these for `talosctl get`.
//!
//! Other types answer NotFound; Watch and the write verbs answer Unimplemented.

mod catalog;
mod network;

use std::sync::Arc;

use proto::cosi::resource::state_server::State;
use proto::cosi::resource::{
    GetRequest, GetResponse, ListRequest, ListResponse, Metadata, Resource, Spec,
};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::CallerRoles;
use crate::error::MachinedError;
use crate::machine::Machine;
pub use catalog::MACHINE_CONFIG_TYPE;
use catalog::{Definition, RESOURCE_DEFINITION_TYPE};

/// The id of the active machine config.
pub const ACTIVE_CONFIG_ID: &str = "v1alpha1";

/// `cosi.resource.State` served from a [`Machine`].
#[derive(Clone, Debug)]
pub struct ResourceApi {
    machine: Arc<Machine>,
}

impl ResourceApi {
    pub fn new(machine: Arc<Machine>) -> Self {
        ResourceApi { machine }
    }
}

#[tonic::async_trait]
impl State for ResourceApi {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let roles = CallerRoles::of(&request);
        let request = request.into_inner();
        let resource = all(&self.machine, &roles, &request.namespace, &request.r#type)
            .await?
            .into_iter()
            .find(|r| r.metadata.as_ref().is_some_and(|m| m.id == request.id))
            .ok_or_else(|| {
                MachinedError::NotFound(format!(
                    "resource {}/{}/{} doesn't exist",
                    request.namespace, request.r#type, request.id
                ))
            })?;
        Ok(Response::new(GetResponse {
            resource: Some(resource),
        }))
    }

    async fn list(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<BoxStream<ListResponse>>, Status> {
        let roles = CallerRoles::of(&request);
        let request = request.into_inner();
        let resources = all(&self.machine, &roles, &request.namespace, &request.r#type).await?;
        let replies = resources.into_iter().map(|resource| {
            Ok(ListResponse {
                resource: Some(resource),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }
}

/// Every resource of `resource_type` in `namespace`.
async fn all(
    machine: &Machine,
    roles: &CallerRoles,
    namespace: &str,
    resource_type: &str,
) -> Result<Vec<Resource>, MachinedError> {
    let definition = catalog::find(resource_type).ok_or_else(|| {
        MachinedError::NotFound(format!("resource type {resource_type:?} is not supported"))
    })?;
    if definition.sensitive && !roles.is_admin() {
        return Err(MachinedError::PermissionDenied("not authorized".into()));
    }
    if namespace != definition.namespace {
        return Ok(Vec::new());
    }
    let items: Vec<(String, String, Vec<u8>)> = match resource_type {
        MACHINE_CONFIG_TYPE => match machine.config.current() {
            Some(config) => {
                let yaml = config.to_yaml()?;
                vec![(
                    ACTIVE_CONFIG_ID.to_string(),
                    yaml.clone(),
                    yaml.into_bytes(),
                )]
            }
            None => Vec::new(),
        },
        RESOURCE_DEFINITION_TYPE => catalog::DEFINITIONS
            .iter()
            .map(|d: &Definition| {
                let bytes = prost::Message::encode_to_vec(&d.spec());
                (d.resource_type.to_ascii_lowercase(), d.spec_yaml(), bytes)
            })
            .collect(),
        _ => {
            let status = crate::network::status(machine).await?;
            network::resources(resource_type, &status)?
                .into_iter()
                .map(|(id, yaml)| (id, yaml, Vec::new()))
                .collect()
        }
    };
    Ok(items
        .into_iter()
        .map(|(id, yaml_spec, proto_spec)| Resource {
            metadata: Some(Metadata {
                namespace: definition.namespace.into(),
                r#type: definition.resource_type.into(),
                id,
                version: "1".into(),
                phase: "running".into(),
                ..Default::default()
            }),
            spec: Some(Spec {
                proto_spec,
                yaml_spec,
            }),
        })
        .collect())
}
